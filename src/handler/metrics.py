"""Prometheus metrics of the cache, beside vLLM's own.

Everything is registered in ``prometheus_client``'s default registry, the one
vLLM's OpenAI-compatible server exposes on ``/metrics``, so the cache's figures
appear there with no extra wiring. Without a server, :func:`read_metrics` returns
the current values as a dict, and ``prometheus_client.generate_latest()`` the
text exposition.

Two kinds of metric:

- histograms observed on the request path (look-up latency per stage, the
  similarity score of semantic hits);
- counters read, when scraped, from the counters every live
  :class:`~src.handler.enhanced_async_llm.EnhancedAsyncLLM` already keeps (requests
  by path, race outcomes, level evictions and errors, Redis degraded time, the
  semantic stage's decisions), summed over the engines of the process.

All names start with ``evllm_``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from src.handler.enhanced_async_llm import EnhancedAsyncLLM

__all__ = ["LOOKUP_SECONDS", "SEMANTIC_SCORE", "observe_lookup", "read_metrics", "track"]

#: Time to decide a look-up, hit or miss, by stage: ``exact`` (all levels),
#: ``memory`` and ``redis`` (one level's get), ``semantic_prepare`` (the
#: embedding) and ``semantic_match`` (search, candidates' features, guards and judge).
LOOKUP_SECONDS = Histogram(
    "evllm_lookup_seconds",
    "Time to decide a cache look-up, by stage.",
    ["stage"],
    buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
)

# Stage -> its child of LOOKUP_SECONDS, found once (``labels()`` costs more than observing).
_STAGES: dict[str, Any] = {}


def observe_lookup(stage: str, seconds: float) -> None:
    """Observe one look-up of ``stage`` in :data:`LOOKUP_SECONDS`."""
    child = _STAGES.get(stage)
    if child is None:
        child = _STAGES[stage] = LOOKUP_SECONDS.labels(stage)
    child.observe(seconds)


#: Cosine similarity of the stored prompt that answered a semantic hit.
SEMANTIC_SCORE = Histogram(
    "evllm_semantic_hit_score",
    "Cosine similarity of semantic hits.",
    buckets=(0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99, 1.0),
)

#: ``EngineCacheStats`` field -> the request path it counts.
_PATHS = {
    "exact_hits": "exact",
    "in_flight_joins": "in_flight",
    "semantic_hits": "semantic",
    "engine_requests": "engine",
    "bypassed": "bypass",
}
_RACE = {
    "lookups_won": "hit_first",
    "lookups_lost": "engine_first",
    "lookups_timed_out": "hold_timed_out",
    "lookups_shed": "shed",
}
_LEVEL_COUNTERS = ("hits", "misses", "sets", "evictions", "expired", "invalid", "errors")


class _EngineCollector(Collector):
    """Reads the counters of the live engines when scraped."""

    def __init__(self) -> None:
        self._engines: weakref.WeakSet[EnhancedAsyncLLM] = weakref.WeakSet()

    def add(self, engine: EnhancedAsyncLLM) -> None:
        self._engines.add(engine)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "evllm_requests", "Requests by the path that answered them.", labels=["path"]
        )
        exact_levels = CounterMetricFamily(
            "evllm_exact_hits", "Exact hits by the cache level that held them.", labels=["level"]
        )
        race = CounterMetricFamily(
            "evllm_semantic_race",
            "How misses met the semantic look-up: hit_first (engine request aborted), "
            "engine_first, hold_timed_out, shed (skipped under load).",
            labels=["outcome"],
        )
        wasted = CounterMetricFamily(
            "evllm_wasted_prefill_tokens",
            "Prompt tokens of engine requests aborted for a semantic hit (an upper bound "
            "of the prefill spent on them).",
        )
        stored = CounterMetricFamily(
            "evllm_answers", "Engine answers stored or refused for caching.", labels=["outcome"]
        )
        level = CounterMetricFamily(
            "evllm_level_events", "Cache level operations by outcome.", labels=["level", "event"]
        )
        entries = GaugeMetricFamily("evllm_level_entries", "Entries held in memory.")
        degraded = CounterMetricFamily(
            "evllm_redis_degraded_seconds", "Time the Redis level has spent degraded."
        )
        semantic = CounterMetricFamily(
            "evllm_semantic_decisions",
            "The semantic stage's events: searches, judged candidates, hits and "
            "rejections by reason.",
            labels=["event"],
        )
        totals: dict[tuple[str, ...], float] = {}

        def add(*key: str, value: float) -> None:
            totals[key] = totals.get(key, 0.0) + value

        for engine in list(self._engines):
            stats = engine.cache_stats
            for field, path in _PATHS.items():
                add("path", path, value=getattr(stats, field))
            for field, outcome in _RACE.items():
                add("race", outcome, value=getattr(stats, field))
            add("wasted", value=stats.wasted_prefill_tokens)
            add("stored", "stored", value=stats.stored)
            add("stored", "not_stored", value=stats.not_stored)
            for name, figures in _levels(engine).items():
                add("exact_level", name, value=stats.exact_hits_by_level.get(name, 0))
                for event in _LEVEL_COUNTERS:
                    add("level", name, event, value=figures.get(event, 0))
                if "entries" in figures:
                    add("entries", value=figures["entries"])
                if "degraded_seconds" in figures:
                    add("degraded", value=figures["degraded_seconds"])
            if engine.similarity is not None:
                for event, count in engine.similarity.counts.items():
                    add("semantic", event, value=count)
        families: dict[str, Any] = {
            "path": requests,
            "exact_level": exact_levels,
            "race": race,
            "wasted": wasted,
            "stored": stored,
            "level": level,
            "entries": entries,
            "degraded": degraded,
            "semantic": semantic,
        }
        for (kind, *labels), value in sorted(totals.items()):
            families[kind].add_metric(labels, value)
        yield from families.values()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected lazily; nothing to check at registration


def _levels(engine: EnhancedAsyncLLM) -> dict[str, dict[str, Any]]:
    if engine.cache is None:
        return {}
    levels: dict[str, dict[str, Any]] = engine.cache.describe()["levels"]
    return levels


_COLLECTOR = _EngineCollector()
REGISTRY.register(_COLLECTOR)


def track(engine: EnhancedAsyncLLM) -> None:
    """Report ``engine``'s counters in the metrics while it lives."""
    _COLLECTOR.add(engine)


def read_metrics(registry: CollectorRegistry = REGISTRY) -> dict[str, float]:
    """The current ``evllm_*`` samples as ``{'name{label="v",...}': value}``."""
    values: dict[str, float] = {}
    for metric in registry.collect():
        if not metric.name.startswith("evllm_"):
            continue
        for sample in metric.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values
