"""Old import paths, the polling shim's result lifetime, settings and the tiny model.

No engine here: the polling shim runs over a stand-in ``add_request_v2`` so its
bookkeeping is tested with an injected clock.
"""

from __future__ import annotations

import asyncio
import importlib

import pytest
from pydantic import ValidationError
from transformers import AutoTokenizer

from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
from src.errors import ConfigurationError
from src.handler.legacy import LegacyPollingAPI
from src.handler.outputs import GenerationOutput, RequestCollector
from tests.support.clock import ManualClock

# ---------------------------------------------------------------------- old import paths


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("src.handler.nlp_enhanced_vllm_handler", "NLPEnhancedVLLMHandler"),
        ("src.handler.base_vllm_handler", "BaseVLLMHandler"),
    ],
)
def test_old_names_warn_and_name_the_replacement(module, name) -> None:
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match="create_enhanced_system"):
        cls = getattr(mod, name)
    from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler

    assert issubclass(cls, EnhancedVLLMHandler)


def test_old_import_statement_warns() -> None:
    with pytest.warns(DeprecationWarning, match="NLPEnhancedVLLMHandler is deprecated"):
        from src.handler.nlp_enhanced_vllm_handler import NLPEnhancedVLLMHandler  # noqa: F401


def test_old_constructor_checks_its_cache_manager() -> None:
    with pytest.warns(DeprecationWarning):
        from src.handler.nlp_enhanced_vllm_handler import NLPEnhancedVLLMHandler
    with pytest.raises(ConfigurationError, match="MultiLevelCacheManager"):
        NLPEnhancedVLLMHandler(VLLMConfig(), cache_manager=object())


# ---------------------------------------------------------------------- polling shim


class _Shim(LegacyPollingAPI):
    """The polling shim over a stand-in add_request_v2 that the test finishes by hand."""

    def __init__(self, clock: ManualClock, ttl: float) -> None:
        super().__init__(clock, lambda: ttl)
        self.collectors: list[RequestCollector] = []

    async def add_request_v2(self, prompt, sampling_params=None, *, request_id=None):
        collector = RequestCollector(request_id or f"r{len(self.collectors)}", lambda: None)
        self.collectors.append(collector)
        return collector


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_polling_states_and_result_lifetime() -> None:
    clock = ManualClock()
    shim = _Shim(clock, ttl=30.0)
    with pytest.warns(DeprecationWarning, match="add_request_v2"):
        ok = await shim.add_request("p")
        bad = await shim.add_request("q")
    assert (await shim.get_result(ok))["status"] == "PENDING"
    shim.collectors[0]._put(GenerationOutput(request_id=ok, text="par"))
    await _settle()
    assert (await shim.get_result(ok))["status"] == "RUNNING"
    shim.collectors[0]._put(
        GenerationOutput(request_id=ok, text="partial", finished=True, finish_reason="stop")
    )
    shim.collectors[1]._put(GenerationOutput(request_id=bad, text="", finished=True, error="boom"))
    await _settle()
    done = await shim.get_result(ok)
    assert done["status"] == "COMPLETED" and done["text"] == "partial"
    failed = await shim.get_result(bad)
    assert failed["status"] == "FAILED" and failed["error"] == "boom"
    clock.advance(29)
    assert await shim.get_result(ok) is not None
    clock.advance(2)
    assert await shim.get_result(ok) is None and await shim.get_result(bad) is None
    assert await shim.get_result("never-submitted") is None


# ---------------------------------------------------------------------- settings


def test_environment_overrides(monkeypatch) -> None:
    monkeypatch.setenv("EVLLM_CACHE__REDIS_URL", "redis://127.0.0.1:6390/2")
    monkeypatch.setenv("EVLLM_CACHE__TTL_S", "12.5")
    monkeypatch.setenv("EVLLM_HANDLER__FEATURES__ENABLE_DETAILED_LOGGING", "true")
    monkeypatch.setenv("EVLLM_ENGINE__MAX_MODEL_LEN", "512")
    assert CacheConfig().redis_url_value() == "redis://127.0.0.1:6390/2"
    assert CacheConfig().ttl_s == 12.5
    assert HandlerConfig().features.enable_detailed_logging is True
    assert VLLMConfig().max_model_len == 512


@pytest.mark.faults
async def test_the_redis_password_is_never_shown(caplog) -> None:
    """Not in the settings' repr or JSON, nor in what the Redis level logs when it
    cannot connect; the client still gets the whole URL."""
    import logging

    from src.cache.redis_backend import RedisBackend
    from src.cache.redis_server import free_port

    url = f"redis://app:hunter2@127.0.0.1:{free_port()}/0"
    config = CacheConfig(redis_url=url)
    shown = [repr(config), str(config), config.model_dump_json(), str(config.model_dump())]
    assert not any("hunter2" in text for text in shown), shown
    assert "app:***@127.0.0.1" in config.model_dump_json()
    assert config.redis_url_value() == url
    backend = RedisBackend(url, key_prefix="secret-test:", timeout_s=0.2, retry_interval_s=0)
    with caplog.at_level(logging.DEBUG):
        await backend.start()
        assert await backend.get("ns", "k") is None
        await backend.close()
    assert caplog.records and "hunter2" not in caplog.text
    assert "hunter2" not in str(backend.describe())


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: CacheConfig(redis_url="http://x"), "redis_url"),
        (lambda: CacheConfig(ttl_s=0), "ttl_s"),
        (lambda: CacheConfig(default_namespace="a:b"), "default_namespace"),
        (lambda: CacheConfig(no_such_option=1), "no_such_option"),
        (lambda: HandlerConfig(default_max_tokens=0), "default_max_tokens"),
        (lambda: VLLMConfig(max_num_seqs=0), "max_num_seqs"),
        (lambda: SimilarityConfig(enabled="maybe"), "enabled"),
    ],
)
def test_bad_settings_name_the_field(build, field) -> None:
    with pytest.raises(ValidationError, match=field):
        build()


def test_assignment_is_validated_too() -> None:
    config = HandlerConfig()
    with pytest.raises(ValidationError, match="result_ttl_s"):
        config.result_ttl_s = -1


def test_engine_args_pass_through_and_unknown_ones_are_named(tiny_model_dir) -> None:
    model = str(tiny_model_dir)
    args = VLLMConfig(model=model, engine_args={"block_size": 32}).to_engine_args()
    assert args.model == model and args.block_size == 32
    with pytest.raises(ConfigurationError, match="not_an_engine_arg"):
        VLLMConfig(engine_args={"not_an_engine_arg": 1}).to_engine_args()
    with pytest.raises(ValidationError, match="max_model_len"):
        VLLMConfig(engine_args={"max_model_len": 64})


# ---------------------------------------------------------------------- tiny model


def test_tiny_model_tokenizer_decodes_to_readable_text(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = list(range(5, min(tokenizer.vocab_size, 400), 7))
    text = tokenizer.decode(ids)
    assert "\ufffd" not in text
    assert sum(ch.isalpha() for ch in text) > len(text) / 2
    words = "the river runs through the old city"
    assert tokenizer.decode(tokenizer.encode(words, add_special_tokens=False)).strip() == words


def test_configuration_doc_lists_every_field() -> None:
    from pathlib import Path

    from src.config.handler_config import FeatureFlags

    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    for model in (VLLMConfig, CacheConfig, SimilarityConfig, HandlerConfig, FeatureFlags):
        for name in model.model_fields:
            assert f"| `{name}` |" in doc, f"{model.__name__}.{name} is not documented"


def test_every_error_the_library_defines_is_in_its_tree() -> None:
    import importlib
    import inspect
    import pkgutil

    import src
    from src.errors import EnhancedVLLMError

    outside = []
    for module_info in pkgutil.walk_packages(src.__path__, "src."):
        if module_info.name == "src.__main__":
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not issubclass(value, EnhancedVLLMError)
            ):
                outside.append(f"{module.__name__}.{name}")
    assert outside == []
