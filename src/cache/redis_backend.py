"""The shared level: entries in Redis (``redis.asyncio``), with TTL and a key prefix.

Redis is optional and never an outage. Every command has a bounded timeout and
no client-side retries; a failure turns into a miss, marks the level degraded
and, for ``retry_interval_s``, makes further operations skip Redis instead of
waiting on it again. The next operation after that interval tries again, so the
level recovers by itself when Redis returns.

Keys carry their namespace as a Redis Cluster hash tag (``{namespace}``), so all
of a namespace's keys live in one slot; with ``CacheConfig.redis_cluster`` the
same keys work on a cluster, where clearing a namespace scans every primary.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from src.cache.base import CacheBackend, LevelUnavailable
from src.config.cache_config import redact_url
from src.errors import HandlerStateError

logger = logging.getLogger(__name__)

__all__ = [
    "CommandSlots",
    "RedisBackend",
    "RedisClient",
    "escape_glob",
    "namespace_pattern",
    "namespace_tag",
    "redis_client",
    "unlink_matching",
]

#: A client of one server or of a cluster: the commands used here are the same.
RedisClient = Redis | RedisCluster

#: Connections per client: more concurrent commands wait for one (up to the timeout).
DEFAULT_MAX_CONNECTIONS = 64

_T = TypeVar("_T")


class CommandSlots:
    """At most ``limit`` Redis commands of one client in flight; the next waits
    up to ``timeout_s`` for a slot, then fails as Redis would when it has no
    connection to give.

    redis-py's cluster client raises at once when a node's connections are all
    in use; these slots make a burst queue on a cluster as the blocking pool
    makes it queue on one server.
    """

    def __init__(self, limit: int, timeout_s: float) -> None:
        self._free = asyncio.Semaphore(limit)
        self.timeout_s = timeout_s

    async def run(self, command: Awaitable[_T]) -> _T:
        """Await ``command`` in a slot (closing it unawaited if none frees in time)."""
        try:
            if self._free.locked():
                await asyncio.wait_for(self._free.acquire(), self.timeout_s)
            else:
                await self._free.acquire()  # a slot is free: taken without suspending
        except TimeoutError:
            close = getattr(command, "close", None)
            if close is not None:
                close()
            raise RedisConnectionError(
                f"no Redis connection free within {self.timeout_s} s"
            ) from None
        try:
            return await command
        finally:
            self._free.release()


def redis_client(
    url: str,
    *,
    timeout_s: float,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    bounded_commands: bool = True,
    cluster: bool = False,
) -> RedisClient:
    """A client that fails fast and never piles up connections.

    Connecting is bounded by ``timeout_s``, and so is each command unless
    ``bounded_commands`` is False (a blocking ``XREAD``). At most
    ``max_connections`` are open (per node of a cluster). On one server a
    command beyond them waits up to ``timeout_s`` for one to free instead of
    failing at once, so a burst queues rather than reading as an outage; redis-py's
    cluster client has no such wait (callers queue with :class:`CommandSlots`).
    No client-side retries: the callers treat a failure as a miss.

    Args:
        url: ``redis://`` URL of the server, or of any node of a cluster.
        cluster: The URL names a node of a Redis Cluster.
    """
    if cluster:
        return RedisCluster.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=timeout_s if bounded_commands else None,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s if bounded_commands else None,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )
    return Redis.from_pool(pool)


_GLOB = re.compile(r"([*?\[\]\\])")


class RedisBackend(CacheBackend):
    """Cache entries stored as ``<prefix>resp:{<namespace>}:<digest>`` strings with a TTL.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL of the server.
        key_prefix: Prefix of every key this backend writes or reads.
        timeout_s: Bound on connecting and on each command.
        retry_interval_s: How long to skip Redis after a failure.
        clock: Wall clock in seconds; expiry is judged by it.
        client: An existing client to use instead of one built from ``url``;
            it is not closed by :meth:`close`.
        max_entry_bytes: Largest stored entry read back; bigger ones are counted
            invalid and missed (None: no bound).
        max_connections: Connections open at most; further commands wait for one.
        cluster: ``url`` names a node of a Redis Cluster.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str,
        timeout_s: float,
        retry_interval_s: float,
        clock: Callable[[], float] = time.time,
        client: RedisClient | None = None,
        max_entry_bytes: int | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        cluster: bool = False,
    ) -> None:
        super().__init__(clock=clock)
        self.max_connections = max_connections
        self.cluster = cluster
        self._slots = CommandSlots(max_connections, timeout_s)
        self.max_entry_bytes = max_entry_bytes
        self.url = url
        self.shown_url = redact_url(url)
        self.key_prefix = key_prefix
        self.timeout_s = timeout_s
        self.retry_interval_s = retry_interval_s
        self._client = client
        self._owns_client = client is None
        self._down_until: float | None = None
        self._monotonic = time.monotonic
        # Seconds spent degraded in finished outages, and when the current one began.
        self._degraded_s = 0.0
        self._degraded_since: float | None = None

    @property
    def client(self) -> RedisClient:
        """The Redis client (after :meth:`start`)."""
        if self._client is None:
            raise HandlerStateError("RedisBackend is not started")
        return self._client

    @property
    def state(self) -> str:
        return "ok" if self._down_until is None else "degraded"

    def _key(self, namespace: str, digest: str) -> str:
        return f"{self.key_prefix}resp:{namespace_tag(namespace)}:{digest}"

    async def _start(self) -> None:
        if self._client is None:
            self._client = redis_client(
                self.url,
                timeout_s=self.timeout_s,
                max_connections=self.max_connections,
                cluster=self.cluster,
            )
            self._owns_client = True
        try:
            await self._guarded(self._client.ping())
        except Exception as exc:
            logger.warning(
                "Redis at %s is unreachable at start; serving without it: %s", self.shown_url, exc
            )
        else:
            logger.info("Redis cache level connected to %s", self.shown_url)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    async def _guarded(self, command: Any) -> Any:
        """Run one command, tracking whether Redis is up."""
        if self._down_until is not None and self._monotonic() < self._down_until:
            command.close()  # never awaited: skip without touching the network
            raise LevelUnavailable("redis is down")
        try:
            result = await self._slots.run(command)
        except Exception as exc:
            if self._down_until is None:
                logger.warning("Redis at %s failed, degrading to a miss: %s", self.shown_url, exc)
                self._degraded_since = self._monotonic()
            self._down_until = self._monotonic() + self.retry_interval_s
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        if self._down_until is not None:
            logger.info("Redis at %s is back", self.shown_url)
            self._down_until = None
            if self._degraded_since is not None:
                self._degraded_s += self._monotonic() - self._degraded_since
                self._degraded_since = None
        return result

    async def _get(self, namespace: str, digest: str) -> bytes | None:
        result: bytes | None = await self._guarded(self.client.get(self._key(namespace, digest)))
        return result

    async def _set(self, namespace: str, digest: str, data: bytes, ttl_s: float) -> None:
        ttl_ms = max(1, int(ttl_s * 1000))
        await self._guarded(self.client.set(self._key(namespace, digest), data, px=ttl_ms))

    async def _delete(self, namespace: str, digest: str) -> bool:
        removed: int = await self._guarded(self.client.unlink(self._key(namespace, digest)))
        return removed > 0

    async def _clear(self, namespace: str | None) -> int:
        pattern = f"{escape_glob(self.key_prefix)}resp:{namespace_pattern(namespace)}"
        removed: int = await self._guarded(unlink_matching(self.client, pattern))
        return removed

    def degraded_seconds(self) -> float:
        """Time spent degraded since start, the current outage included."""
        current = 0.0 if self._degraded_since is None else self._monotonic() - self._degraded_since
        return self._degraded_s + current

    def _figures(self) -> dict[str, Any]:
        return {
            "url": self.shown_url,
            "key_prefix": self.key_prefix,
            "degraded_seconds": round(self.degraded_seconds(), 3),
        }


def namespace_tag(namespace: str) -> str:
    """The namespace as it appears in keys: a hash tag, so one slot holds its keys.

    Namespaces never contain braces (``check_namespace``), so the tag is exact.
    """
    return "{" + namespace + "}"


def namespace_pattern(namespace: str | None) -> str:
    """The SCAN pattern, after a key's prefix, of one namespace's keys (None: all)."""
    return "*" if namespace is None else escape_glob(namespace_tag(namespace)) + ":*"


def escape_glob(text: str) -> str:
    """Text matched literally by a Redis SCAN pattern."""
    return _GLOB.sub(r"\\\1", text)


async def unlink_matching(client: RedisClient, pattern: str, *, batch_size: int = 500) -> int:
    """UNLINK every key matching a SCAN ``pattern``, in batches; the number removed."""
    removed = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=batch_size):
        batch.append(key)
        if len(batch) >= batch_size:
            removed += await client.unlink(*batch)
            batch.clear()
    if batch:
        removed += await client.unlink(*batch)
    return removed
