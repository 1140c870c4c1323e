"""Answers and the semantic index on a real three-node Redis Cluster (loopback)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from src.cache import CachedCompletion, CacheEntry, MultiLevelCacheManager
from src.config import CacheConfig, SimilarityConfig
from src.similarity import SimilaritySearchHelper
from tests.conftest import wait_until
from tests.support.redis_cluster import LocalRedisCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    started = LocalRedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield started
    started.kill()


def config(cluster: LocalRedisCluster) -> CacheConfig:
    return CacheConfig(
        redis_url=cluster.url, redis_cluster=True, key_prefix=f"cl-{uuid.uuid4().hex[:6]}:"
    )


def entry(namespace: str, key: str) -> CacheEntry:
    now = time.time()
    return CacheEntry(
        key=key,
        namespace=namespace,
        model="tiny",
        prompt="a question",
        prompt_token_ids=[1, 2],
        completions=[
            CachedCompletion(index=0, text=f"answer {key}", token_ids=[3], finish_reason="stop")
        ],
        created_at=now,
        expires_at=now + 600,
    )


async def test_answers_spread_over_the_nodes_and_a_namespace_clears_alone(cluster) -> None:
    settings = config(cluster)
    namespaces = [f"tenant-{i}" for i in range(12)]
    before = sum(cluster.keys_per_node())
    async with MultiLevelCacheManager.from_config(settings) as cache:
        redis = cache.level("redis")
        for ns in namespaces:
            for i in range(5):
                assert await redis.set(entry(ns, f"k{i}"))
        counts = cluster.keys_per_node()
        assert sum(counts) == before + 60
        assert sum(1 for c in counts if c > 0) >= 2  # more than one primary holds answers
        for ns in namespaces:
            assert (await redis.get(ns, "k3")).completions[0].text == "answer k3"
        # A namespace's keys share a slot: clearing it removes exactly its five.
        assert await redis.clear(namespaces[0]) == 5
        assert await redis.get(namespaces[0], "k1") is None
        assert await redis.get(namespaces[1], "k1") is not None
        assert await redis.delete(namespaces[1], "k1")
        assert await redis.clear(None) == 54
        assert redis.state == "ok" and redis.stats.errors == 0


async def test_the_semantic_index_is_shared_through_the_cluster(cluster) -> None:
    settings = config(cluster)
    rules = SimilarityConfig(judge=False)  # sharing is under test, not the judge
    async with (
        SimilaritySearchHelper.for_cache(rules, settings) as a,
        SimilaritySearchHelper.for_cache(rules, settings) as b,
    ):
        # Live: b follows a's announcements on the stream.
        await a.add("How do bees make honey?", "honey", namespace="bees")
        await a.add("Why is the ocean salty?", "salt", namespace="sea")
        assert await wait_until(lambda: len(b.index) == 2)
        match = await b.search("How is honey made by bees?", namespace="bees")
        assert match is not None and match.entry_id == "honey"
        await b.remove("honey", namespace="bees")
        assert await wait_until(lambda: len(a.index) == 1)
    # Rebuilt on start from every node.
    async with SimilaritySearchHelper.for_cache(rules, settings) as restarted:
        assert [r.entry_id for r in restarted.index.records()] == ["salt"]
        await restarted.clear("sea")
        assert len(restarted.index) == 0
    async with SimilaritySearchHelper.for_cache(rules, settings) as empty:
        assert len(empty.index) == 0


async def test_a_burst_beyond_a_nodes_connections_queues_instead_of_failing(cluster) -> None:
    """redis-py's cluster client fails a command at once when a node's connections
    are all in use; the level queues its commands for a free slot instead."""
    settings = config(cluster).model_copy(update={"redis_max_connections": 8})
    async with MultiLevelCacheManager.from_config(settings) as cache:
        redis = cache.level("redis")
        stored = entry("burst", "k")
        assert await redis.set(stored)
        hits = await asyncio.gather(*(redis.get("burst", "k") for _ in range(300)))
        assert all(hit is not None and hit.key == "k" for hit in hits)
        assert redis.state == "ok" and redis.stats.errors == 0
