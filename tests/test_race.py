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
