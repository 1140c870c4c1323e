"""The response cache inside EnhancedAsyncLLM.generate, on a real engine and real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from vllm import SamplingParams
from vllm.outputs import RequestOutput
from vllm.sampling_params import RequestOutputKind

from src.cache import MultiLevelCacheManager
from src.cache.key import make_request_key
from src.cache.redis_server import RedisServer
from src.config import CacheConfig, HandlerConfig, SimilarityConfig
from src.handler.enhanced_async_llm import (
    CacheControl,
    CachedRequestOutput,
    EnhancedAsyncLLM,
)
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler
from tests.conftest import final_output, wait_until

pytestmark = pytest.mark.engine

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)
LONG = SamplingParams(max_tokens=200, temperature=0.0, ignore_eos=True)


async def ask(handler, prompt, params=GREEDY, namespace=None):
    return await final_output(await handler.add_request_v2(prompt, params, namespace=namespace))


def engine_requests(handler: EnhancedVLLMHandler) -> int:
    return handler.engine.cache_stats.engine_requests


@contextlib.contextmanager
def cache_swapped(engine: EnhancedAsyncLLM, cache: MultiLevelCacheManager) -> Iterator[None]:
    """Serve the shared engine through another cache for one test."""
    saved = (engine.cache, engine.cache_config, engine.cache_stats, engine.similarity)
    engine.attach(cache=cache, cache_config=CacheConfig(redis_url=None))
    try:
        yield
    finally:
        engine.cache, engine.cache_config, engine.cache_stats, engine.similarity = saved


# ---------------------------------------------------------------------- exact hits


async def test_repeat_is_a_memory_hit_with_the_same_answer(handler, namespace) -> None:
    first = await ask(handler, "where do rivers go", namespace=namespace)
    before = engine_requests(handler)
    second = await ask(handler, "where do rivers go", namespace=namespace)
    assert first.metadata["cache_hit"] is False and first.metadata["cache_level"] is None
    assert second.metadata["cache_hit"] is True and second.metadata["cache_level"] == "memory"
    assert (second.text, second.token_ids, second.finish_reason) == (
        first.text,
        first.token_ids,
        first.finish_reason,
    )
    assert engine_requests(handler) == before


async def test_a_memory_hit_is_complete_when_add_request_v2_returns(handler, namespace) -> None:
    """Answered without a task or a turn of the event loop, and counted once."""
    first = await ask(handler, "where the road bends", namespace=namespace)
    engine, before = handler.engine, handler.stats()
    hits = engine.cache_stats.exact_hits_by_level.get("memory", 0)
    requests = engine.cache_stats.requests
    collector = await handler.add_request_v2("where the road bends", GREEDY, namespace=namespace)
    assert collector.finished
    (only,) = [o async for o in collector.get_outputs()]
    assert only.metadata["cache_level"] == "memory"
    assert (only.text, only.token_ids, only.finish_reason) == (
        first.text,
        first.token_ids,
        first.finish_reason,
    )
    assert engine.cache_stats.exact_hits_by_level["memory"] == hits + 1
    assert engine.cache_stats.requests == requests + 1
    after = handler.stats()
    assert after["requests_submitted"] == before["requests_submitted"] + 1
    assert after["requests_served"] == before["requests_served"] + 1
    assert after["in_flight"] == before["in_flight"]  # no task of its own


async def test_a_failing_answer_now_leaves_the_request_to_its_own_run(
    handler, namespace, monkeypatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the memory level broke")

    monkeypatch.setattr(handler.engine, "answer_now", broken)
    out = await ask(handler, "a request past a broken shortcut", namespace=namespace)
    assert out.finished and out.error is None and out.token_ids


async def test_params_changed_after_a_miss_is_submitted_do_not_reach_it(handler, namespace) -> None:
    params = SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True)
    collector = await handler.add_request_v2("a long winter", params, namespace=namespace)
    params.max_tokens = 40  # the request has not started yet: it must hold its own copy
    assert len((await final_output(collector)).token_ids) == 4


@pytest.mark.parametrize(
    "kind", [RequestOutputKind.CUMULATIVE, RequestOutputKind.DELTA, RequestOutputKind.FINAL_ONLY]
)
async def test_hit_through_generate_for_each_output_kind(handler, namespace, kind) -> None:
    engine = handler.engine
    params = SamplingParams(max_tokens=12, temperature=0.0, output_kind=kind)
    miss = [
        o async for o in engine.generate("a quiet hill", params, f"m-{kind}", namespace=namespace)
    ]
    hit = [
        o async for o in engine.generate("a quiet hill", params, f"h-{kind}", namespace=namespace)
    ]
    assert not any(isinstance(o, CachedRequestOutput) for o in miss)
    assert len(hit) == 1 and isinstance(hit[0], CachedRequestOutput)
    (only,) = hit
    assert only.finished and only.request_id == f"h-{kind}"
    assert only.cache_info.level == "memory"
    assert only.prompt == "a quiet hill" and only.prompt_token_ids == miss[-1].prompt_token_ids
    # The one hit output carries the whole answer, which is what the miss streamed in total.
    if kind is RequestOutputKind.DELTA:
        assert only.outputs[0].text == "".join(o.outputs[0].text for o in miss)
        assert list(only.outputs[0].token_ids) == [t for o in miss for t in o.outputs[0].token_ids]
    else:
        assert only.outputs[0].text == miss[-1].outputs[0].text
        assert list(only.outputs[0].token_ids) == list(miss[-1].outputs[0].token_ids)
    assert only.outputs[0].finish_reason == miss[-1].outputs[0].finish_reason


async def test_hit_through_the_legacy_polling_api(handler, namespace) -> None:
    await ask(handler, "tell me about the moon")  # default namespace
    with pytest.warns(DeprecationWarning):
        request_id = await handler.add_request("tell me about the moon", GREEDY)
    assert await wait_until(lambda: handler._legacy_results[request_id].status.value == "COMPLETED")
    result = await handler.get_result(request_id)
    assert result["status"] == "COMPLETED"
    assert result["metadata"]["cache_hit"] is True


async def test_namespaces_never_share_answers(handler, namespace) -> None:
    await ask(handler, "the tenant's secret plan", namespace=namespace)
    other = await ask(handler, "the tenant's secret plan", namespace=namespace + "-other")
    assert other.metadata["cache_hit"] is False


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5, "seed": 1},
        {"max_tokens": 11},
        {"stop": ["the"]},
        {"ignore_eos": True},
    ],
)
async def test_changed_sampling_params_miss(handler, namespace, change) -> None:
    await ask(handler, "a field of wheat", namespace=namespace)
    params = SamplingParams(**{"max_tokens": 12, "temperature": 0.0, **change})
    out = await ask(handler, "a field of wheat", params, namespace=namespace)
    assert out.metadata["cache_hit"] is False


async def test_seeded_sampling_is_cached_and_unseeded_is_not(handler, namespace) -> None:
    seeded = SamplingParams(max_tokens=12, temperature=0.9, seed=11)
    first = await ask(handler, "pick a colour", seeded, namespace=namespace)
    again = await ask(handler, "pick a colour", seeded, namespace=namespace)
    assert again.metadata["cache_hit"] is True and again.text == first.text
    unseeded = SamplingParams(max_tokens=12, temperature=0.9)
    bypassed = handler.engine.cache_stats.bypassed
    for _ in range(2):
        out = await ask(handler, "pick a colour", unseeded, namespace=namespace)
        assert out.metadata["cache_hit"] is False
    assert handler.engine.cache_stats.bypassed == bypassed + 2


async def test_redis_hit_after_memory_is_lost(handler, namespace) -> None:
    first = await ask(handler, "the lighthouse keeper", namespace=namespace)
    await handler._cache.level("memory").clear(namespace)
    second = await ask(handler, "the lighthouse keeper", namespace=namespace)
    third = await ask(handler, "the lighthouse keeper", namespace=namespace)
    assert second.metadata["cache_level"] == "redis" and second.text == first.text
    assert third.metadata["cache_level"] == "memory"  # back-filled


async def test_second_system_on_the_same_redis_gets_a_redis_hit(
    handler, factory, vllm_config, redis_server, namespace
) -> None:
    first = await ask(handler, "an old stone bridge", namespace=namespace)
    other = await factory.create_system(
        vllm_config=vllm_config,
        cache_config=CacheConfig(redis_url=redis_server.url, key_prefix="evllm-test:"),
        similarity_config=SimilarityConfig(),
    )
    async with other:
        out = await ask(other, "an old stone bridge", namespace=namespace)
        assert out.metadata["cache_level"] == "redis" and out.text == first.text
        assert other.engine.cache_stats.engine_requests == 0


# ---------------------------------------------------------------------- in flight


async def test_identical_concurrent_requests_run_once(handler, namespace) -> None:
    before = engine_requests(handler)
    collectors = [
        await handler.add_request_v2("five at once", GREEDY, namespace=namespace) for _ in range(5)
    ]
    outs = await asyncio.gather(*(final_output(c) for c in collectors))
    assert engine_requests(handler) == before + 1
    assert len({o.text for o in outs}) == 1 and all(o.error is None for o in outs)
    levels = sorted(str(o.metadata["cache_level"]) for o in outs)
    assert levels == ["None"] + ["in_flight"] * 4


async def test_followers_run_their_own_request_when_the_leader_is_aborted(
    handler, namespace
) -> None:
    leader = await handler.add_request_v2("the leader gives up", LONG, namespace=namespace)
    assert await wait_until(lambda: handler.engine.get_num_unfinished_requests() == 1)
    followers = [
        await handler.add_request_v2("the leader gives up", LONG, namespace=namespace)
        for _ in range(2)
    ]
    await asyncio.sleep(0.05)
    leader.abort()
    assert (await final_output(leader)).error == "request was aborted"
    outs = await asyncio.gather(*(final_output(c) for c in followers))
    assert all(o.error is None and o.finish_reason == "length" for o in outs)
    assert outs[0].text == outs[1].text


# ---------------------------------------------------------------------- nothing partial


async def test_aborted_request_is_not_stored(handler, namespace) -> None:
    collector = await handler.add_request_v2("cut short", LONG, namespace=namespace)
    async for _ in collector.get_outputs():
        break  # the client stops reading: the request is aborted
    assert await wait_until(lambda: handler.engine.get_num_unfinished_requests() == 0)
    stored = handler.engine.cache_stats.stored
    out = await ask(handler, "cut short", LONG, namespace=namespace)
    assert out.metadata["cache_hit"] is False and out.finish_reason == "length"
    assert handler.engine.cache_stats.stored == stored + 1


async def test_failed_request_is_not_stored(handler, namespace) -> None:
    too_long = "word " * 400
    for _ in range(2):
        out = await ask(handler, too_long, namespace=namespace)
        assert out.error and "maximum context length" in out.error
        assert out.metadata["cache_hit"] is False


async def test_generate_caller_that_breaks_on_finished_still_stores(handler, namespace) -> None:
    params = SamplingParams(max_tokens=8, temperature=0.0)
    async for output in handler.engine.generate("break early", params, "b1", namespace=namespace):
        if output.finished:
            break
    hit = [
        o async for o in handler.engine.generate("break early", params, "b2", namespace=namespace)
    ]
    assert isinstance(hit[0], CachedRequestOutput)


# ---------------------------------------------------------------------- Redis trouble


@pytest.mark.faults
async def test_redis_killed_mid_run_fails_no_request(handler, tmp_path: Path, namespace) -> None:
    server = RedisServer(tmp_path).start()
    config = CacheConfig(
        redis_url=server.url, key_prefix="kill-test:", redis_timeout_s=0.2, redis_retry_interval_s=0
    )
    cache = MultiLevelCacheManager.from_config(config)
    restarted = RedisServer(tmp_path, port=server.port)
    try:
        async with cache:
            with cache_swapped(handler.engine, cache):
                prompts = [f"kill test prompt {i}" for i in range(6)]
                await ask(handler, prompts[0], namespace=namespace)
                server.kill()
                outs = [await ask(handler, p, namespace=namespace) for p in prompts]
                assert all(o.error is None and o.text for o in outs)
                assert outs[0].metadata["cache_level"] == "memory"
                health = await handler.health_check()
                assert health["healthy"] is True and health["degraded"] is True
                assert health["components"]["cache"]["levels"]["redis"]["state"] == "degraded"
                restarted.start()
                await cache.level("memory").clear()
                await ask(handler, "after redis returns", namespace=namespace)
                assert cache.state == "ok"
                await cache.level("memory").clear()
                out = await ask(handler, "after redis returns", namespace=namespace)
                assert out.metadata["cache_level"] == "redis"
    finally:
        server.kill()
        restarted.kill()


@pytest.mark.faults
async def test_redis_frozen_under_load_fails_no_request(handler, tmp_path: Path, namespace) -> None:
    """Redis stopped (SIGSTOP: connections stay open, nothing answers) while 30
    requests run: each waits at most redis_timeout_s once, then Redis is skipped."""
    server = RedisServer(tmp_path).start()
    config = CacheConfig(
        redis_url=server.url, key_prefix="freeze-test:", redis_timeout_s=0.2,
        redis_retry_interval_s=30,
    )  # fmt: skip
    cache = MultiLevelCacheManager.from_config(config)
    try:
        async with cache:
            with cache_swapped(handler.engine, cache):
                await ask(handler, "before the freeze", namespace=namespace)
                assert server.process is not None
                os.kill(server.process.pid, signal.SIGSTOP)
                # A hang fails here: every wait on Redis is bounded by its timeout.
                outs = await asyncio.wait_for(
                    asyncio.gather(
                        *(ask(handler, f"frozen redis {i}", namespace=namespace) for i in range(30))
                    ),
                    120,
                )
                assert all(o.error is None and o.text for o in outs)
                assert cache.state == "degraded"
                # Served while frozen: a repeat from memory, without touching Redis.
                again = await ask(handler, "frozen redis 3", namespace=namespace)
                assert again.metadata["cache_level"] == "memory"
                os.kill(server.process.pid, signal.SIGCONT)
    finally:
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.kill()


@pytest.mark.faults
async def test_corrupted_entry_in_redis_is_a_counted_miss(handler, redis_server, namespace) -> None:
    params = SamplingParams(max_tokens=12, temperature=0.0)
    key = make_request_key(
        "poisoned", params, model=handler.engine.model_config.model, namespace=namespace
    )
    raw = redis_server.client()
    raw.set(f"evllm-test:resp:{{{namespace}}}:{key.digest}", b"\x80\x04 not an entry", px=60_000)
    redis_level = handler._cache.level("redis")
    invalid = redis_level.stats.invalid
    out = await ask(handler, "poisoned", params, namespace=namespace)
    assert out.error is None and out.metadata["cache_hit"] is False
    assert redis_level.stats.invalid == invalid + 1
    # The valid answer replaced the bad bytes (written behind the request).
    await handler.engine.drain_writes(namespace)
    assert raw.get(f"evllm-test:resp:{{{namespace}}}:{key.digest}").startswith(b"{")
    raw.close()


# ---------------------------------------------------------------------- management


async def test_clear_cache_of_one_namespace(handler, namespace) -> None:
    other = namespace + "-kept"
    await ask(handler, "clear me", namespace=namespace)
    await ask(handler, "clear me", namespace=other)
    assert await handler.clear_cache(namespace) >= 1
    assert (await ask(handler, "clear me", namespace=namespace)).metadata["cache_hit"] is False
    assert (await ask(handler, "clear me", namespace=other)).metadata["cache_hit"] is True


async def test_cache_figures_in_health_and_factory_stats(handler, factory) -> None:
    health = await handler.health_check()
    cache = health["components"]["cache"]
    assert cache["state"] == "ok"
    assert set(cache["levels"]) == {"memory", "redis"}
    for figure in ("hits", "misses", "evictions", "errors", "invalid"):
        assert figure in cache["levels"]["memory"] and figure in cache["levels"]["redis"]
    assert cache["levels"]["memory"]["entries"] > 0
    stats = factory.get_instance_stats()[handler.instance_id]
    assert stats["cache"]["exact_hits"] == handler.engine.cache_stats.exact_hits


async def test_cache_can_be_switched_off(factory, vllm_config) -> None:
    handler_config = HandlerConfig()
    handler_config.features.enable_cache = False
    system = await factory.create_system(
        vllm_config=vllm_config,
        cache_config=CacheConfig(),
        similarity_config=SimilarityConfig(),
        handler_config=handler_config,
    )
    async with system:
        for _ in range(2):
            out = await ask(system, "no cache here", namespace=f"n-{uuid.uuid4().hex[:6]}")
            assert out.metadata["cache_hit"] is False
        out = await ask(system, "same twice")
        out = await ask(system, "same twice")
        assert out.metadata["cache_hit"] is False
        assert (await system.health_check())["components"]["cache"]["state"] == "disabled"


# ------------------------------------------------------- per-request cache control


async def test_cache_control_says_what_a_request_reads_and_writes(handler, namespace) -> None:
    engine = handler.engine
    paths: list[str] = []

    async def run(n: int, **control: bool) -> list[RequestOutput]:
        cache_control = CacheControl(on_decision=lambda path, _: paths.append(path), **control)
        stream = engine.generate(
            "a field of tall grass", GREEDY, f"cc-{n}-{namespace}",
            namespace=namespace, cache_control=cache_control,
        )  # fmt: skip
        return [o async for o in stream]

    unstored = await run(1, write=False)
    await engine.drain_writes()
    stored = await run(2)  # nothing was stored: the engine answers, and this one is kept
    await engine.drain_writes()
    hit = await run(3)
    fresh = await run(4, read=False)  # stored, yet not read
    neither = await run(5, read=False, write=False)
    assert paths == ["engine", "engine", "memory", "engine", "bypass"]
    assert isinstance(hit[-1], CachedRequestOutput)
    assert not any(isinstance(o, CachedRequestOutput) for o in unstored + stored + fresh + neither)
    texts = {out[-1].outputs[0].text for out in (unstored, stored, hit, fresh, neither)}
    assert len(texts) == 1


# ------------------------------------------------------------------ cancellation storm


@pytest.mark.faults
async def test_a_cancellation_storm_leaks_nothing_and_caches_no_partial_answer(
    handler, namespace
) -> None:
    """300 requests (each prompt three times, so followers join leaders that are
    cancelled), each cancelled after a random 0-400 ms: before its lookup ends,
    mid-stream, or not at all."""
    engine = handler.engine
    rng = random.Random(11)
    tokens = 48
    params = SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True)
    prompts = [f"storm {i} over the grey sea" for i in range(100)] * 3
    rng.shuffle(prompts)

    async def consume(i: int, prompt: str) -> None:
        async for _ in engine.generate(
            prompt, params, f"storm-{i}-{namespace}", namespace=namespace
        ):
            pass

    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(consume(i, p)) for i, p in enumerate(prompts)]
    for task in tasks:
        loop.call_later(rng.uniform(0, 0.4), task.cancel)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 180)
    cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
    finished = sum(r is None for r in results)
    assert cancelled >= 100 and cancelled + finished == len(tasks), results
    # Nothing left running, waiting or half-written.
    assert await wait_until(lambda: engine.get_num_unfinished_requests() == 0, timeout=30)
    await engine.drain_writes()
    assert not engine._in_flight_answers and engine._pending_lookups == 0
    # Every answer that was stored is whole.
    stored = 0
    for prompt in set(prompts):
        key = make_request_key(prompt, params, model=engine.model_config.model, namespace=namespace)
        hit = await engine.cache.lookup(namespace, key.digest)
        if hit is not None:
            stored += 1
            (completion,) = hit.entry.completions
            assert len(completion.token_ids) == tokens and completion.finish_reason == "length"
    assert stored >= 1  # control: answers that were not cancelled were stored
