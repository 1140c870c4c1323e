"""Prometheus metrics after known traffic, read without a server."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest
from vllm import SamplingParams

from src.handler.metrics import read_metrics

pytestmark = pytest.mark.engine

GREEDY = SamplingParams(max_tokens=8, temperature=0.0)


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


async def run(engine, prompt: str, request_id: str, namespace: str):  # type: ignore[no-untyped-def]
    return [o async for o in engine.generate(prompt, GREEDY, request_id, namespace=namespace)]


async def test_metrics_count_each_path_after_known_traffic(handler, namespace) -> None:
    engine = handler.engine
    before = read_metrics()
    await run(engine, "Why is the sky blue at noon?", "m-1", namespace)  # engine
    await engine.drain_writes()  # in Redis before memory is emptied below
    await run(engine, "Why is the sky blue at noon?", "m-2", namespace)  # memory hit
    await engine.cache.level("memory").clear(namespace)
    await run(engine, "Why is the sky blue at noon?", "m-3", namespace)  # redis hit
    outputs = await run(engine, "Why is the sky blue at midday?", "m-4", namespace)
    await engine.drain_writes()  # answers reach Redis (and are counted) behind the request
    after = read_metrics()
    semantic = int(getattr(outputs[-1], "cache_info", None) is not None)

    assert delta(before, after, 'evllm_requests_total{path="engine"}') == 2 - semantic
    assert delta(before, after, 'evllm_requests_total{path="exact"}') == 2
    assert delta(before, after, 'evllm_exact_hits_total{level="memory"}') == 1
    assert delta(before, after, 'evllm_exact_hits_total{level="redis"}') == 1
    assert delta(before, after, 'evllm_requests_total{path="semantic"}') == semantic
    assert delta(before, after, "evllm_semantic_hit_score_count") == semantic
    assert delta(before, after, 'evllm_lookup_seconds_count{stage="exact"}') == 4
    # Memory is asked by all four; Redis by the three that memory missed.
    assert delta(before, after, 'evllm_lookup_seconds_count{stage="memory"}') == 4
    assert delta(before, after, 'evllm_lookup_seconds_count{stage="redis"}') == 3
    assert delta(before, after, 'evllm_lookup_seconds_count{stage="semantic_prepare"}') == 2
    assert delta(before, after, 'evllm_answers_total{outcome="stored"}') == 2 - semantic
    # The same families are in the text exposition a /metrics route serves.
    text = generate_latest().decode()
    assert "evllm_requests_total" in text and "evllm_redis_degraded_seconds_total" in text


async def test_a_semantic_hit_is_not_counted_as_an_exact_hit(handler, namespace) -> None:
    engine = handler.engine
    await run(engine, "What is the capital city of Kenya?", "k-1", namespace)  # engine
    before = read_metrics()
    outputs = await run(engine, "Tell me the capital of Kenya.", "k-2", namespace)
    after = read_metrics()
    assert outputs[-1].cache_info.level == "semantic"  # its answer is read from memory
    assert delta(before, after, 'evllm_requests_total{path="semantic"}') == 1
    assert delta(before, after, 'evllm_exact_hits_total{level="memory"}') == 0
    assert delta(before, after, 'evllm_requests_total{path="exact"}') == 0


async def test_detailed_logging_writes_one_debug_line_per_request_without_text(
    handler, namespace, caplog
) -> None:
    engine = handler.engine
    engine.detailed_logging = True
    try:
        with caplog.at_level(logging.DEBUG, logger="src.handler.enhanced_async_llm"):
            await run(engine, "a secret prompt about llamas", "d-1", namespace)
            await run(engine, "a secret prompt about llamas", "d-2", namespace)
    finally:
        engine.detailed_logging = False
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("request key=")]
    assert len(lines) == 2
    assert "path=engine" in lines[0] and "path=memory" in lines[1]
    assert all("llamas" not in line for line in lines)
