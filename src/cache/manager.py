"""``MultiLevelCacheManager``: memory first, then Redis, as one cache."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from src.cache.base import CacheBackend
from src.cache.entry import CacheEntry
from src.cache.memory import MemoryBackend
from src.cache.redis_backend import RedisBackend
from src.config import CacheConfig
from src.errors import CacheClearError

logger = logging.getLogger(__name__)

__all__ = ["CacheHit", "MultiLevelCacheManager"]


@dataclass(frozen=True, slots=True)
class CacheHit:
    """An entry and the level that held it."""

    entry: CacheEntry
    level: str


class MultiLevelCacheManager:
    """Looks in each level in order, back-fills the faster ones, writes through to all.

    It offers the same public coroutines as a single :class:`CacheBackend`
    (``start``, ``close``, ``get``, ``set``, ``delete``, ``clear``, ``describe``),
    plus :meth:`lookup`, which also says which level answered.

    Args:
        levels: Cache levels, fastest first.
        owns_levels: Whether :meth:`close` closes the levels.
    """

    def __init__(self, levels: Sequence[CacheBackend], *, owns_levels: bool = True) -> None:
        if not levels:
            raise ValueError("a cache manager needs at least one level")
        self.levels = list(levels)
        self._owns_levels = owns_levels
        #: Called with a level's name and the seconds each of its look-ups took.
        self.on_level_get: Callable[[str, float], None] | None = None

    @classmethod
    def from_config(
        cls, config: CacheConfig, *, clock: Callable[[], float] = time.time
    ) -> MultiLevelCacheManager:
        """A memory level, and a Redis level when ``config.redis_url`` is set."""
        levels: list[CacheBackend] = [
            MemoryBackend(
                max_entries=config.memory_max_entries,
                max_bytes=config.memory_max_bytes,
                clock=clock,
            )
        ]
        if config.redis_url is not None:
            levels.append(
                RedisBackend(
                    config.redis_url.get_secret_value(),
                    key_prefix=config.key_prefix,
                    timeout_s=config.redis_timeout_s,
                    retry_interval_s=config.redis_retry_interval_s,
                    clock=clock,
                    max_entry_bytes=config.max_entry_bytes,
                    max_connections=config.redis_max_connections,
                    cluster=config.redis_cluster,
                )
            )
        return cls(levels)

    def level(self, name: str) -> CacheBackend | None:
        """The level called ``name``, if there is one."""
        return next((lvl for lvl in self.levels if lvl.name == name), None)

    async def start(self) -> None:
        """Start every level (a Redis that is down only degrades its level)."""
        for level in self.levels:
            await level.start()

    async def close(self) -> None:
        """Close the levels this manager owns. Idempotent."""
        if self._owns_levels:
            for level in self.levels:
                await level.close()

    async def __aenter__(self) -> MultiLevelCacheManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def lookup(self, namespace: str, digest: str) -> CacheHit | None:
        """Find an entry, fastest level first; copy a deeper hit into the faster levels."""
        for i, level in enumerate(self.levels):
            began = time.perf_counter()
            entry = await level.get(namespace, digest)
            if self.on_level_get is not None:
                self.on_level_get(level.name, time.perf_counter() - began)
            if entry is not None:
                for faster in self.levels[:i]:
                    await faster.set(entry)
                return CacheHit(entry, level.name)
        return None

    def lookup_now(self, namespace: str, digest: str) -> CacheHit | None:
        """A hit of the in-process level, decided without awaiting; None when the
        first level holds no such entry or is not in-process (``lookup`` next)."""
        first = self.levels[0]
        if not isinstance(first, MemoryBackend):
            return None
        began = time.perf_counter()
        entry = first.get_now(namespace, digest)
        if entry is None:
            return None
        if self.on_level_get is not None:
            self.on_level_get(first.name, time.perf_counter() - began)
        return CacheHit(entry, first.name)

    async def get(self, namespace: str, digest: str) -> CacheEntry | None:
        """The entry stored under ``(namespace, digest)`` in any level, or None."""
        hit = await self.lookup(namespace, digest)
        return None if hit is None else hit.entry

    async def set(self, entry: CacheEntry) -> bool:
        """Write through to every level; True when at least one stored it."""
        stored = await asyncio.gather(*(level.set(entry) for level in self.levels))
        return any(stored)

    async def delete(self, namespace: str, digest: str) -> bool:
        """Remove an entry from every level; True when any level had it."""
        removed = await asyncio.gather(*(level.delete(namespace, digest) for level in self.levels))
        return any(removed)

    async def clear(self, namespace: str | None = None) -> int:
        """Remove a namespace's entries (or all) from every level.

        Returns:
            The most entries any single level removed (levels hold copies).

        Raises:
            CacheClearError: A level could not be reached; the others are cleared.
        """
        results = await asyncio.gather(
            *(level.clear(namespace) for level in self.levels), return_exceptions=True
        )
        counts = [r for r in results if isinstance(r, int)]
        failed = [level.name for level, r in zip(self.levels, results, strict=True)
                  if isinstance(r, BaseException)]  # fmt: skip
        if failed:
            raise CacheClearError(failed, max(counts, default=0))
        return max(counts)

    @property
    def state(self) -> str:
        """``"ok"``, or ``"degraded"`` while any level is failing."""
        return "ok" if all(level.state == "ok" for level in self.levels) else "degraded"

    def describe(self) -> dict[str, Any]:
        """State and per-level figures."""
        return {
            "state": self.state,
            "levels": {level.name: level.describe() for level in self.levels},
        }
