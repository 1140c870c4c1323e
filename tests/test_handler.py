"""Handler behaviour on a real engine: streaming, cancellation, bad input, lifecycle."""

from __future__ import annotations

import asyncio

import pytest
from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine.async_llm import AsyncLLM

from src.config import HandlerConfig
from src.errors import HandlerStateError, InvalidRequestError
from src.handler.enhanced_async_llm import EnhancedAsyncLLM
from src.handler.enhanced_llm_factory import EnhancedLLMFactory
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler
from tests.conftest import final_output, wait_until

pytestmark = pytest.mark.engine

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)
# Long enough that the request is still running when the test interferes.
LONG = SamplingParams(max_tokens=200, temperature=0.0, ignore_eos=True)


async def test_engine_is_the_subclass(handler) -> None:
    assert isinstance(handler.engine, EnhancedAsyncLLM)
    assert isinstance(handler.engine, AsyncLLM)


@pytest.mark.parametrize(
    "kind", [RequestOutputKind.CUMULATIVE, RequestOutputKind.DELTA, RequestOutputKind.FINAL_ONLY]
)
async def test_generate_matches_plain_asyncllm(handler, kind, namespace, monkeypatch) -> None:
    """On a miss, EnhancedAsyncLLM.generate streams exactly what AsyncLLM.generate streams.

    Under the default race policy: the session's hold policy would keep the first
    output back until the lookup ends, and vLLM merges the outputs that pile up
    meanwhile (all of them, when the engine finishes first). The answer is long
    enough that a stall of the shared CPU while it runs cannot merge it whole."""
    monkeypatch.setattr(handler.engine.similarity.config, "lookup_policy", "race")
    params = SamplingParams(max_tokens=150, temperature=0.0, ignore_eos=True, output_kind=kind)
    ours = [
        o
        async for o in handler.engine.generate(
            "the sea and the sky", params, f"ours-{kind}", namespace=namespace
        )
    ]
    plain = [
        o
        async for o in AsyncLLM.generate(handler.engine, "the sea and the sky", params, f"p-{kind}")
    ]

    # How tokens group into outputs depends on timing; what they add up to does not.
    def total(outputs):
        if kind is RequestOutputKind.DELTA:
            tokens = [t for o in outputs for t in o.outputs[0].token_ids]
            return "".join(o.outputs[0].text for o in outputs), tokens
        return outputs[-1].outputs[0].text, list(outputs[-1].outputs[0].token_ids)

    assert total(ours) == total(plain)
    assert [o.finished for o in ours] == [False] * (len(ours) - 1) + [True]
    assert ours[-1].outputs[0].finish_reason == plain[-1].outputs[0].finish_reason
    if kind is RequestOutputKind.FINAL_ONLY:
        assert len(ours) == 1
    else:
        assert len(ours) > 1


@pytest.mark.parametrize("kind", [RequestOutputKind.DELTA, RequestOutputKind.FINAL_ONLY])
async def test_handler_text_is_cumulative_for_every_kind(handler, kind) -> None:
    params = SamplingParams(max_tokens=12, temperature=0.0, output_kind=kind)
    cumulative = await final_output(await handler.add_request_v2("a green field", GREEDY))
    collector = await handler.add_request_v2("a green field", params)
    outputs = [o async for o in collector.get_outputs()]
    assert outputs[-1].text == cumulative.text
    assert "".join(o.delta_text for o in outputs) == cumulative.text
    assert outputs[-1].token_ids == cumulative.token_ids


async def test_n_greater_than_one_reports_every_completion(handler) -> None:
    params = SamplingParams(max_tokens=8, temperature=1.0, seed=7, n=3)
    out = await final_output(await handler.add_request_v2("three answers", params))
    assert len(out.texts) == 3 and out.texts[0] == out.text
    assert out.metadata["num_tokens"] == 24


async def test_early_break_aborts_engine_request(handler) -> None:
    collector = await handler.add_request_v2("keep talking", LONG)
    async for output in collector.get_outputs():
        assert not output.finished
        break
    assert await wait_until(lambda: handler.engine.get_num_unfinished_requests() == 0)
    assert await wait_until(lambda: collector.finished)
    assert collector.final_output.error == "request was aborted"


@pytest.mark.faults
async def test_cancelled_consumer_aborts_engine_request(handler) -> None:
    collector = await handler.add_request_v2("keep talking", LONG)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in collector.get_outputs():
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until(lambda: handler.engine.get_num_unfinished_requests() == 0)
    assert await wait_until(lambda: handler.stats()["in_flight"] == 0)


async def test_collector_abort_ends_stream_with_error(handler) -> None:
    before = handler.stats()["requests_aborted"]
    collector = await handler.add_request_v2("keep talking", LONG)
    collector.abort()
    out = await final_output(collector)
    assert out.error == "request was aborted" and out.finished and out.error_kind == "aborted"
    assert handler.stats()["requests_aborted"] == before + 1
    assert await wait_until(lambda: handler.engine.get_num_unfinished_requests() == 0)


async def test_outputs_can_be_read_once(handler) -> None:
    collector = await handler.add_request_v2("once", GREEDY)
    await final_output(collector)
    with pytest.raises(RuntimeError, match="already being read"):
        async for _ in collector.get_outputs():
            pass


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "prompt is empty"),
        ("   \n", "prompt is empty"),
        (123, "not int"),
        (None, "not NoneType"),
        ({"prompt": ""}, "non-empty 'prompt'"),
        ({"prompt_token_ids": []}, "non-empty 'prompt'"),
        ({"prompt": "a", "prompt_token_ids": [1]}, "both"),
        ("lone \ud800 surrogate", "not valid Unicode"),
        ({"prompt": "lone \udfff"}, "not valid Unicode"),
    ],
)
async def test_bad_prompts_are_refused(handler, prompt, message) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        await handler.add_request_v2(prompt, GREEDY)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"no_such_field": 1}, "no_such_field"),
        ("greedy", "not str"),
    ],
)
async def test_bad_sampling_params_are_refused(handler, params, message) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        await handler.add_request_v2("fine prompt", params)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"seed": "abc"}, "seed"),
        ({"max_tokens": 8.5}, "max_tokens"),
        ({"ignore_eos": "yes"}, "ignore_eos"),
        ({"skip_special_tokens": 2}, "skip_special_tokens"),
        ({"logit_bias": {"a": 1.0}}, "logit_bias"),
        ({"bad_words": [5]}, "bad_words"),
        ({"allowed_token_ids": ["x"]}, "allowed_token_ids"),
    ],
)
async def test_wrong_typed_params_are_refused_and_the_engine_keeps_answering(
    handler, params, field
) -> None:
    """SamplingParams builds with these, but the engine process cannot decode them:
    they used to stop its input thread, and every later request hung."""
    with pytest.raises(InvalidRequestError, match=field):
        await handler.add_request_v2("fine prompt", {"max_tokens": 8, **params})
    # Also when the caller built the SamplingParams, and through generate() itself.
    built = SamplingParams(**{"max_tokens": 8, **params})
    with pytest.raises(InvalidRequestError, match=field):
        await handler.add_request_v2("fine prompt", built)
    with pytest.raises(InvalidRequestError, match=field):
        async for _ in handler.engine.generate("fine prompt", built, f"typed-{field}"):
            pass
    out = await final_output(await handler.add_request_v2(f"still alive {field}", GREEDY))
    assert out.error is None and out.finished


async def test_engine_side_rejection_arrives_as_error_output(handler) -> None:
    # A prompt longer than the context is only known to the engine's tokenizer.
    out = await final_output(await handler.add_request_v2("word " * 400, GREEDY))
    assert out.error and out.finished and "maximum context length is 256" in out.error
    assert out.error.startswith("VLLMValidationError") and out.error_kind == "request"
    assert await wait_until(lambda: handler.stats()["in_flight"] == 0)


async def test_max_tokens_beyond_the_context_is_capped_by_the_engine(handler) -> None:
    params = SamplingParams(max_tokens=10_000, temperature=0.0, ignore_eos=True)
    out = await final_output(await handler.add_request_v2("fine prompt", params))
    assert out.error is None and out.finish_reason == "length"
    assert out.metadata["num_tokens"] + 2 <= 256


async def test_token_prompt_dict_is_served(handler) -> None:
    out = await final_output(await handler.add_request_v2({"prompt_token_ids": [5, 6, 7]}, GREEDY))
    assert out.error is None and out.token_ids


async def test_duplicate_and_malformed_request_ids(handler) -> None:
    collector = await handler.add_request_v2("one", LONG, request_id="dup-id")
    with pytest.raises(InvalidRequestError, match="already in flight"):
        await handler.add_request_v2("two", GREEDY, request_id="dup-id")
    collector.abort()
    await final_output(collector)
    with pytest.raises(InvalidRequestError, match="request_id"):
        await handler.add_request_v2("two", GREEDY, request_id="has space")
    with pytest.raises(InvalidRequestError, match="namespace"):
        await handler.add_request_v2("two", GREEDY, namespace="")
    # A trailing newline is no part of a name ($ would have let it through).
    with pytest.raises(InvalidRequestError, match="request_id"):
        await handler.add_request_v2("two", GREEDY, request_id="id\n")
    with pytest.raises(InvalidRequestError, match="namespace"):
        await handler.add_request_v2("two", GREEDY, namespace="tenant\n")


async def test_batch_submission_checks_all_prompts_first(handler) -> None:
    submitted = handler.stats()["requests_submitted"]
    with pytest.raises(InvalidRequestError, match=r"prompts\[1\]"):
        await handler.add_requests_v2(["fine", ""], GREEDY)
    assert handler.stats()["requests_submitted"] == submitted
    collectors = await handler.add_requests_v2(["one", "two"], GREEDY)
    outs = await asyncio.gather(*(final_output(c) for c in collectors))
    assert all(o.error is None for o in outs)


async def test_unknown_legacy_id_gives_none(handler) -> None:
    assert await handler.get_result("never-submitted") is None


async def test_calls_before_start_are_refused(vllm_config) -> None:
    handler = EnhancedVLLMHandler(vllm_config)
    with pytest.raises(HandlerStateError, match="not started"):
        await handler.add_request_v2("hello", GREEDY)
    health = await handler.health_check()
    assert health["healthy"] is False and health["state"] == "new"
    await handler.stop()
    await handler.stop()
    with pytest.raises(HandlerStateError, match="stopped"):
        await handler.start()


async def test_factory_rejects_wrong_config_types(vllm_config) -> None:
    factory = EnhancedLLMFactory()
    with pytest.raises(ValueError, match="cache_config must be a CacheConfig"):
        await factory.create_system(vllm_config, {"redis_url": None}, None)  # type: ignore[arg-type]
    assert factory.get_instance_stats() == {}


async def test_cleanup_all_stops_every_instance(vllm_config) -> None:
    from src.config import CacheConfig, SimilarityConfig

    factory = EnhancedLLMFactory()
    made = [
        await factory.create_system(vllm_config, CacheConfig(), SimilarityConfig())
        for _ in range(2)
    ]
    assert set(factory.get_instance_stats()) == {h.instance_id for h in made}
    await factory.cleanup_all()
    assert factory.get_instance_stats() == {}
    assert all(h.state.value == "stopped" for h in made)


async def test_stop_drains_then_aborts(vllm_config) -> None:
    """One engine of its own: stop() lets short requests finish and aborts the rest."""
    config = HandlerConfig(shutdown_timeout_s=0.0)
    async with EnhancedVLLMHandler(vllm_config, handler_config=config) as handler:
        collector = await handler.add_request_v2("keep talking", LONG)
        first = await collector.get_outputs().__anext__()
        assert not first.finished
        engine = handler.engine
        await handler.stop()
        assert engine.errored  # shut down
    out = collector.final_output
    assert out is not None and out.error == "request was aborted"
    with pytest.raises(HandlerStateError, match="stopped"):
        await handler.add_request_v2("late", GREEDY)

    config = HandlerConfig(shutdown_timeout_s=30.0)
    handler = EnhancedVLLMHandler(vllm_config, handler_config=config)
    await handler.start()
    collector = await handler.add_request_v2("short answer", GREEDY)
    await handler.stop()
    out = await final_output(collector)
    assert out.error is None and out.finish_reason == "length"


async def test_a_component_that_cannot_start_fails_start_clearly(vllm_config, tmp_path) -> None:
    import psutil

    from src.config import CacheConfig, SimilarityConfig
    from src.errors import EngineStartError
    from src.handler.enhanced_vllm_handler import HandlerState

    missing = tmp_path / "no-such-model"
    handler = EnhancedVLLMHandler(
        vllm_config, CacheConfig(), SimilarityConfig(embedding_model=str(missing))
    )

    def engines() -> set[int]:
        found = set()
        for child in psutil.Process().children(recursive=True):
            try:
                if "VLLM" in child.name() + " ".join(child.cmdline()):
                    found.add(child.pid)
            except psutil.NoSuchProcess:
                pass
        return found

    before = engines()
    with pytest.raises(EngineStartError, match="could not start the system"):
        await handler.start()
    assert handler.state is HandlerState.NEW and handler._cache is None

    # The engine started beside the failing component was shut down, not leaked.
    assert await wait_until(lambda: not engines() - before, timeout=30), engines() - before
    with pytest.raises(HandlerStateError, match="not started"):
        await handler.add_request_v2("hello", GREEDY)


def _engine_processes() -> list:  # type: ignore[type-arg]
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "EngineCore" in child.name() or "EngineCore" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.mark.faults
async def test_a_killed_engine_ends_every_request_with_an_error(vllm_config) -> None:
    """One engine of its own, killed mid-generation: no request hangs, health says so."""
    before = {p.pid for p in _engine_processes()}
    handler = EnhancedVLLMHandler(vllm_config)
    await handler.start()
    try:
        collectors = [await handler.add_request_v2(f"talk {i}", LONG) for i in range(8)]
        streams = [c.get_outputs() for c in collectors]
        first = await streams[0].__anext__()
        assert not first.finished  # generating

        async def last(stream):  # type: ignore[no-untyped-def]
            outputs = [first]
            async for output in stream:
                outputs.append(output)
            return outputs[-1]

        ours = [p for p in _engine_processes() if p.pid not in before]
        assert ours, "the handler's engine process was not found"
        for process in ours:
            process.kill()
        finals = await asyncio.wait_for(asyncio.gather(*(last(s) for s in streams)), timeout=30)
        assert all(out.finished and out.error and out.error_kind == "fatal" for out in finals)
        assert handler.engine.cache_stats.stored == 0  # no partial answer kept
        health = await handler.health_check()
        assert health["healthy"] is False
    finally:
        await handler.stop()
    assert not [p for p in _engine_processes() if p.pid not in before and p.is_running()]


@pytest.mark.faults
async def test_a_stalled_engine_is_detected_and_reported(vllm_config) -> None:
    """The engine process frozen (SIGSTOP): requests end with a fatal error, not a hang."""
    import signal

    before = {p.pid for p in _engine_processes()}
    handler = EnhancedVLLMHandler(
        vllm_config, handler_config=HandlerConfig(engine_stall_timeout_s=2)
    )
    await handler.start()
    ours = [p for p in _engine_processes() if p.pid not in before]
    assert ours, "the handler's engine process was not found"
    try:
        quick = await final_output(await handler.add_request_v2("still fine", GREEDY))
        assert quick.error is None  # a healthy engine is not taken as stalled
        for process in ours:
            process.send_signal(signal.SIGSTOP)
        collectors = [await handler.add_request_v2(f"frozen {i}", LONG) for i in range(3)]
        finals = await asyncio.wait_for(
            asyncio.gather(*(final_output(c) for c in collectors)), timeout=30
        )
        assert all(out.error_kind == "fatal" and "no output" in out.error for out in finals)
        health = await handler.health_check()
        assert health["healthy"] is False
        assert health["components"]["engine"]["state"] == "stalled"
        with pytest.raises(HandlerStateError, match="restart"):
            await handler.add_request_v2("after the stall", GREEDY)
    finally:
        for process in ours:
            process.send_signal(signal.SIGCONT)
        await handler.stop()
