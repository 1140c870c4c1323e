"""One behavioural suite for every cache level: memory, Redis, and the manager over both.

A new backend joins by adding a fixture param. Expiry is judged by an injected
clock, so no test sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from src.cache import CachedCompletion, CacheEntry, MemoryBackend, MultiLevelCacheManager
from src.cache.base import OFF_LOOP_DECODE_BYTES, CacheBackend, LevelStats
from src.cache.entry import encode_entry
from src.cache.redis_backend import CommandSlots, RedisBackend
from src.cache.redis_server import RedisServer, free_port
from src.config import CacheConfig
from tests.support.clock import ManualClock

TTL = 60.0


def make_entry(
    clock: ManualClock, namespace: str = "ns", key: str | None = None, text: str = "an answer"
) -> CacheEntry:
    return CacheEntry(
        key=key or uuid.uuid4().hex,
        namespace=namespace,
        model="tiny",
        prompt="a question",
        prompt_token_ids=[1, 2, 3],
        completions=[CachedCompletion(index=0, text=text, token_ids=[4, 5], finish_reason="stop")],
        created_at=clock(),
        expires_at=clock() + TTL,
    )


def redis_level(url: str, clock: ManualClock, **kwargs: float | int) -> RedisBackend:
    options = {"timeout_s": 0.5, "retry_interval_s": 0.0, **kwargs}
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    return RedisBackend(url, key_prefix=prefix, clock=clock, **options)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "redis", "manager"])
async def cache(
    request: pytest.FixtureRequest, clock: ManualClock, redis_server: RedisServer
) -> AsyncIterator[CacheBackend | MultiLevelCacheManager]:
    memory = MemoryBackend(max_entries=100, max_bytes=1 << 20, clock=clock)
    built: CacheBackend | MultiLevelCacheManager
    if request.param == "memory":
        built = memory
    elif request.param == "redis":
        built = redis_level(redis_server.url, clock)
    else:
        built = MultiLevelCacheManager([memory, redis_level(redis_server.url, clock)])
    async with built:
        yield built


async def store_raw(cache: CacheBackend | MultiLevelCacheManager, ns: str, key: str, data: bytes):
    """Write bytes past validation, into every level, as a foreign writer would."""
    levels = cache.levels if isinstance(cache, MultiLevelCacheManager) else [cache]
    for level in levels:
        await level._set(ns, key, data, TTL)


def invalid_count(cache: CacheBackend | MultiLevelCacheManager) -> int:
    levels = cache.levels if isinstance(cache, MultiLevelCacheManager) else [cache]
    return sum(level.stats.invalid for level in levels)


# ---------------------------------------------------------------------- the contract


async def test_round_trip(cache, clock) -> None:
    entry = make_entry(clock)
    assert await cache.get("ns", entry.key) is None
    assert await cache.set(entry)
    assert await cache.get("ns", entry.key) == entry


async def test_namespaces_are_isolated(cache, clock) -> None:
    entry = make_entry(clock, namespace="tenant-a")
    await cache.set(entry)
    assert await cache.get("tenant-b", entry.key) is None
    assert await cache.get("tenant-a", entry.key) == entry


async def test_entry_expires_by_the_clock(cache, clock) -> None:
    entry = make_entry(clock)
    await cache.set(entry)
    clock.advance(TTL - 1)
    assert await cache.get("ns", entry.key) == entry
    clock.advance(2)
    assert await cache.get("ns", entry.key) is None


async def test_an_already_expired_entry_is_not_stored(cache, clock) -> None:
    entry = make_entry(clock)
    clock.advance(TTL + 1)
    assert not await cache.set(entry)


async def test_delete(cache, clock) -> None:
    entry = make_entry(clock)
    await cache.set(entry)
    assert await cache.delete("ns", entry.key)
    assert await cache.get("ns", entry.key) is None
    assert not await cache.delete("ns", entry.key)


async def test_clear_one_namespace_leaves_the_others(cache, clock) -> None:
    # "a" must not match "a.b" or "ab" even though the names share a prefix.
    kept = [make_entry(clock, namespace=ns) for ns in ("a.b", "ab", "b")]
    gone = [make_entry(clock, namespace="a") for _ in range(3)]
    for entry in kept + gone:
        await cache.set(entry)
    assert await cache.clear("a") == 3
    for entry in gone:
        assert await cache.get("a", entry.key) is None
    for entry in kept:
        assert await cache.get(entry.namespace, entry.key) == entry


async def test_clear_all(cache, clock) -> None:
    entries = [make_entry(clock, namespace=ns) for ns in ("x", "y")]
    for entry in entries:
        await cache.set(entry)
    assert await cache.clear() == 2
    for entry in entries:
        assert await cache.get(entry.namespace, entry.key) is None


@pytest.mark.faults
@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04not json at all",  # e.g. a pickle
        b'{"version": 1, "key": "k"}',  # fields missing
        b"[]",
    ],
)
async def test_corrupted_bytes_read_as_a_counted_miss(cache, clock, data) -> None:
    await store_raw(cache, "ns", "k", data)
    assert await cache.get("ns", "k") is None
    assert invalid_count(cache) >= 1


@pytest.mark.faults
async def test_an_entry_of_another_version_is_a_miss(cache, clock) -> None:
    entry = make_entry(clock)
    document = json.loads(encode_entry(entry))
    document["version"] = 2
    await store_raw(cache, "ns", entry.key, json.dumps(document).encode())
    assert await cache.get("ns", entry.key) is None
    assert invalid_count(cache) >= 1


@pytest.mark.faults
async def test_an_entry_copied_under_another_key_is_not_served(cache, clock) -> None:
    entry = make_entry(clock, namespace="tenant-a")
    # Someone copies tenant-a's answer to where tenant-b's request would look.
    await store_raw(cache, "tenant-b", entry.key, encode_entry(entry))
    assert await cache.get("tenant-b", entry.key) is None
    assert invalid_count(cache) >= 1


# ---------------------------------------------------------------------- memory level


async def test_memory_evicts_least_recently_used_by_count(clock) -> None:
    removed: list[tuple[str, str]] = []
    memory = MemoryBackend(max_entries=2, max_bytes=1 << 20, clock=clock)
    memory.add_removal_listener(lambda ns, key: removed.append((ns, key)))
    first, second, third = (make_entry(clock) for _ in range(3))
    await memory.set(first)
    await memory.set(second)
    await memory.get("ns", first.key)  # first is now the most recently used
    await memory.set(third)
    assert await memory.get("ns", second.key) is None
    assert await memory.get("ns", first.key) == first
    assert removed == [("ns", second.key)]
    assert memory.stats.evictions == 1 and len(memory) == 2


async def test_memory_evicts_by_bytes_and_never_keeps_an_oversized_entry(clock) -> None:
    one = len(encode_entry(make_entry(clock, text="x" * 400)))
    memory = MemoryBackend(max_entries=100, max_bytes=int(one * 2.5), clock=clock)
    entries = [make_entry(clock, text="x" * 400) for _ in range(3)]
    for entry in entries:
        await memory.set(entry)
    assert len(memory) == 2 and memory.size_bytes <= memory.max_bytes
    assert await memory.get("ns", entries[0].key) is None
    await memory.set(make_entry(clock, text="y" * one * 3))
    assert len(memory) == 2


async def test_memory_reports_expiry_to_listeners(clock) -> None:
    removed: list[str] = []
    memory = MemoryBackend(max_entries=10, max_bytes=1 << 20, clock=clock)
    memory.add_removal_listener(lambda ns, key: removed.append(key))
    entry = make_entry(clock)
    await memory.set(entry)
    clock.advance(TTL + 1)
    assert await memory.get("ns", entry.key) is None
    assert removed == [entry.key] and len(memory) == 0


async def test_memory_get_now_reads_a_live_entry_and_leaves_the_rest_to_get(clock) -> None:
    memory = MemoryBackend(max_entries=10, max_bytes=1 << 24, clock=clock)
    entry, large = make_entry(clock), make_entry(clock, text="x" * OFF_LOOP_DECODE_BYTES)
    assert memory.get_now("ns", entry.key) is None
    await memory.set(entry)
    await memory.set(large)
    assert memory.get_now("ns", entry.key) == entry
    assert memory.get_now("ns", large.key) is None  # too large to decode on the loop
    assert memory.stats == LevelStats(sets=2, hits=1)
    assert await memory.get("ns", large.key) == large
    clock.advance(TTL + 1)
    assert memory.get_now("ns", entry.key) is None
    assert (memory.stats.expired, memory.stats.misses) == (0, 0)  # get counts it, once
    assert await memory.get("ns", entry.key) is None
    assert (memory.stats.expired, memory.stats.misses) == (1, 1)


async def test_memory_get_now_serves_what_is_stored_now(clock) -> None:
    """Entries kept as objects for get_now follow every overwrite, removal and raw write."""
    memory = MemoryBackend(max_entries=10, max_bytes=1 << 20, clock=clock)
    old, new = make_entry(clock, key="k", text="old"), make_entry(clock, key="k", text="new")
    await memory.set(old)
    assert memory.get_now("ns", "k") == old
    await memory.set(new)
    assert memory.get_now("ns", "k") == new
    await memory._set("ns", "k", b"not an entry", TTL)
    assert memory.get_now("ns", "k") is None and memory.stats.invalid == 1
    await memory.set(old)
    await memory.delete("ns", "k")
    assert memory.get_now("ns", "k") is None


async def test_manager_lookup_now_answers_only_from_memory(redis_server, clock) -> None:
    shared = redis_level(redis_server.url, clock)
    memory = MemoryBackend(max_entries=10, max_bytes=1 << 20, clock=clock)
    async with shared:
        entry = make_entry(clock)
        assert await shared.set(entry)
        manager = MultiLevelCacheManager([memory, shared], owns_levels=False)
        assert manager.lookup_now("ns", entry.key) is None  # only Redis holds it
        redis_only = MultiLevelCacheManager([shared], owns_levels=False)
        assert redis_only.lookup_now("ns", entry.key) is None
        await manager.lookup("ns", entry.key)  # back-fills memory
        hit = manager.lookup_now("ns", entry.key)
        assert hit is not None and (hit.entry, hit.level) == (entry, "memory")


# ---------------------------------------------------------------------- redis level


@pytest.mark.faults
async def test_redis_down_at_start_is_a_degraded_miss_not_an_error(clock) -> None:
    level = redis_level(f"redis://127.0.0.1:{free_port()}/0", clock, timeout_s=0.2)
    async with level:
        entry = make_entry(clock)
        assert not await level.set(entry)
        assert await level.get("ns", entry.key) is None
        assert level.state == "degraded"
        assert level.stats.errors >= 1 and level.last_error


@pytest.mark.faults
async def test_redis_skips_while_down_then_recovers(tmp_path: Path, clock) -> None:
    server = RedisServer(tmp_path).start()
    level = redis_level(server.url, clock, retry_interval_s=3600.0)
    monotonic = ManualClock(0.0)
    level._monotonic = monotonic
    restarted = RedisServer(tmp_path, port=server.port)
    try:
        async with level:
            entry = make_entry(clock)
            assert await level.set(entry)
            server.kill()
            assert await level.get("ns", entry.key) is None  # fails once...
            errors = level.stats.errors
            assert await level.get("ns", entry.key) is None  # ...then skips without waiting
            assert level.stats.errors == errors and level.stats.skipped == 1
            restarted.start()
            monotonic.advance(3601)
            assert await level.set(entry)
            assert level.state == "ok"
            assert await level.get("ns", entry.key) == entry
    finally:
        server.kill()
        restarted.kill()


async def test_redis_keys_carry_prefix_namespace_and_ttl(redis_server, clock) -> None:
    level = redis_level(redis_server.url, clock)
    async with level:
        entry = make_entry(clock, namespace="tenant-a")
        await level.set(entry)
        raw = redis_server.client()
        key = f"{level.key_prefix}resp:{{tenant-a}}:{entry.key}"
        assert raw.exists(key)
        assert 0 < raw.pttl(key) <= TTL * 1000
        assert json.loads(raw.get(key))["version"] == 1
        raw.close()


async def test_redis_refuses_an_entry_over_the_size_bound_and_reads_a_large_one(
    redis_server, clock
) -> None:
    level = redis_level(redis_server.url, clock)
    async with level:
        large = make_entry(clock, text="word " * 40_000)  # about 200 kB: decoded off the loop
        assert await level.set(large)
        assert await level.get("ns", large.key) == large
        level.max_entry_bytes = 100_000
        invalid = level.stats.invalid
        assert await level.get("ns", large.key) is None
        assert level.stats.invalid == invalid + 1
        small = make_entry(clock)
        assert await level.set(small) and await level.get("ns", small.key) == small


def test_the_size_bound_reaches_the_redis_level() -> None:
    config = CacheConfig(redis_url="redis://127.0.0.1:1/0", max_entry_bytes=4096)
    redis = MultiLevelCacheManager.from_config(config).level("redis")
    assert redis is not None and redis.max_entry_bytes == 4096


# ---------------------------------------------------------------------- the manager


async def test_manager_redis_hit_backfills_memory(redis_server, clock) -> None:
    shared = redis_level(redis_server.url, clock)
    writer = MultiLevelCacheManager(
        [MemoryBackend(max_entries=10, max_bytes=1 << 20, clock=clock), shared], owns_levels=False
    )
    reader_memory = MemoryBackend(max_entries=10, max_bytes=1 << 20, clock=clock)
    reader = MultiLevelCacheManager([reader_memory, shared], owns_levels=False)
    async with shared:
        entry = make_entry(clock)
        assert await writer.set(entry)
        hit = await reader.lookup("ns", entry.key)
        assert hit is not None and hit.level == "redis" and hit.entry == entry
        hit = await reader.lookup("ns", entry.key)
        assert hit is not None and hit.level == "memory"
        assert reader_memory.stats.hits == 1 and reader_memory.stats.misses == 1


async def test_manager_keeps_serving_from_memory_when_redis_is_gone(clock) -> None:
    memory = MemoryBackend(max_entries=10, max_bytes=1 << 20, clock=clock)
    dead = redis_level(f"redis://127.0.0.1:{free_port()}/0", clock, timeout_s=0.2)
    async with MultiLevelCacheManager([memory, dead]) as manager:
        entry = make_entry(clock)
        assert await manager.set(entry)  # memory took it
        hit = await manager.lookup("ns", entry.key)
        assert hit is not None and hit.level == "memory"
        assert manager.state == "degraded"
        assert manager.describe()["levels"]["redis"]["state"] == "degraded"


@pytest.mark.faults
async def test_a_clear_during_a_redis_outage_says_so_and_clears_memory(clock, tmp_path) -> None:
    """A clear that cannot reach Redis raises, naming it, instead of reporting
    success while Redis keeps the answers to serve them again once it is back."""
    from src.errors import CacheClearError

    server = RedisServer(tmp_path).start()
    try:
        memory = MemoryBackend(max_entries=100, max_bytes=1 << 20, clock=clock)
        async with MultiLevelCacheManager([memory, redis_level(server.url, clock)]) as cache:
            entry = make_entry(clock, namespace="tenant")
            assert await cache.set(entry)
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGSTOP)  # frozen: it keeps its data
            try:
                with pytest.raises(CacheClearError, match="redis") as caught:
                    await cache.clear("tenant")
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            assert caught.value.failed == ["redis"] and caught.value.removed == 1
            assert await memory.get("tenant", entry.key) is None
            # Once Redis is back the answer is still there, and a retried clear removes it.
            assert await cache.get("tenant", entry.key) is not None
            assert await cache.clear("tenant") == 1
            assert await cache.get("tenant", entry.key) is None
    finally:
        server.kill()


async def test_a_burst_beyond_the_connection_pool_queues_instead_of_failing(
    redis_server, clock
) -> None:
    level = redis_level(redis_server.url, clock, timeout_s=5.0)
    async with level:
        entry = make_entry(clock)
        assert await level.set(entry)
        # 300 concurrent reads on the default pool (64 connections): each waits its turn.
        hits = await asyncio.gather(*(level.get(entry.namespace, entry.key) for _ in range(300)))
        assert all(hit is not None and hit.key == entry.key for hit in hits)
        assert level.state == "ok" and level.stats.errors == 0


async def test_command_slots_take_a_free_slot_at_once_and_queue_beyond_the_limit() -> None:
    slots = CommandSlots(1, timeout_s=0.05)

    async def answer(value: str) -> str:
        return value

    # A free slot costs no suspension: the whole run finishes on its first step.
    running = slots.run(answer("now"))
    with pytest.raises(StopIteration) as done:
        running.send(None)
    assert done.value.value == "now"

    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "held"

    holder = asyncio.create_task(slots.run(held()))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(slots.run(answer("queued")))
    await asyncio.sleep(0)
    assert not waiter.done()  # waits for the slot
    gate.set()
    assert (await holder, await waiter) == ("held", "queued")

    gate.clear()
    holder = asyncio.create_task(slots.run(held()))
    await asyncio.sleep(0)
    unrun = answer("never")
    with pytest.raises(RedisConnectionError, match="no Redis connection free"):
        await slots.run(unrun)
    assert unrun.cr_frame is None  # closed, not left unawaited
    gate.set()
    await holder
