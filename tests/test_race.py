"""The miss path: the engine request goes out at once, beside the semantic lookup."""

from __future__ import annotations

import asyncio

import pytest
from vllm import SamplingParams

from tests.conftest import wait_until

pytestmark = pytest.mark.engine

GREEDY = SamplingParams(max_tokens=8, temperature=0.0)


async def test_a_slow_lookup_never_delays_a_miss(handler, namespace, monkeypatch) -> None:
    """Race: with a lookup that never ends, the engine's stream is the answer, and
    the lookup is abandoned (ordering, not time)."""
    engine = handler.engine
    monkeypatch.setattr(engine.similarity.config, "lookup_policy", "race")
    release = asyncio.Event()

    async def stuck(prepared):  # type: ignore[no-untyped-def]
        await release.wait()
        return None

    monkeypatch.setattr(engine, "_semantic_hit", stuck)
    lost = engine.cache_stats.lookups_lost
    outputs = [
        o
        async for o in engine.generate(
            "a slow lookup must not hold me", GREEDY, "race-1", namespace=namespace
        )
    ]
    assert outputs[-1].finished and outputs[-1].outputs[0].text
    assert not release.is_set() and engine.cache_stats.lookups_lost == lost + 1


async def test_a_hit_found_first_aborts_its_engine_request(handler, namespace, monkeypatch) -> None:
    """Hold: the lookup answers before the engine's output is released; the engine
    request it started is aborted and leaves nothing behind."""
    engine = handler.engine
    stored = [
        o async for o in engine.generate("Why do cats purr?", GREEDY, "race-2", namespace=namespace)
    ]
    assert stored[-1].finished
    won = engine.cache_stats.lookups_won
    outputs = [
        o
        async for o in engine.generate(
            "What makes cats purr?", GREEDY, "race-3", namespace=namespace
        )
    ]
    assert len(outputs) == 1 and outputs[0].cache_info.level == "semantic"
    assert outputs[0].outputs[0].text == stored[-1].outputs[0].text
    assert engine.cache_stats.lookups_won == won + 1
    assert await wait_until(lambda: engine.output_processor.get_num_unfinished_requests() == 0)


async def test_the_engines_whole_answer_wins_over_a_later_hit(
    handler, namespace, monkeypatch
) -> None:
    """Hold, FINAL_ONLY: the engine's one output is its whole answer; a lookup that
    finds a paraphrase only after it has arrived does not replace it."""
    from vllm.sampling_params import RequestOutputKind

    engine = handler.engine
    stored = [
        o async for o in engine.generate("Why do cats purr?", GREEDY, "race-4", namespace=namespace)
    ]
    real_hit = engine._semantic_hit

    async def after_the_engine(prepared):  # type: ignore[no-untyped-def]
        found = await real_hit(prepared)
        assert found is not None  # the paraphrase is there to be found
        while engine.output_processor.get_num_unfinished_requests():
            await asyncio.sleep(0.005)  # the engine has finished its answer
        return found

    monkeypatch.setattr(engine, "_semantic_hit", after_the_engine)
    final_only = SamplingParams(max_tokens=8, temperature=0.0,
                                output_kind=RequestOutputKind.FINAL_ONLY)  # fmt: skip
    lost = engine.cache_stats.lookups_lost
    outputs = [
        o
        async for o in engine.generate(
            "What makes cats purr?", final_only, "race-5", namespace=namespace
        )
    ]
    assert len(outputs) == 1 and getattr(outputs[0], "cache_info", None) is None
    assert outputs[0].finished and outputs[0].prompt == "What makes cats purr?"
    assert engine.cache_stats.lookups_lost == lost + 1
    assert stored[-1].finished
