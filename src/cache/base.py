"""The contract every cache level satisfies.

:class:`CacheBackend` owns the public coroutines — ``get``, ``set``, ``delete``,
``clear`` — and everything they share: (de)serialisation and validation of
entries, TTL against an injectable clock, statistics, and turning a backend
failure into a counted miss. A backend implements only the small private hooks
over bytes (``_get``, ``_set``, ``_delete``, ``_clear``) and, if it holds
connections, ``_start`` / ``_close``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from src.cache.entry import CacheEntry, InvalidEntryError, decode_entry, encode_entry
from src.errors import CacheClearError, EnhancedVLLMError

#: Entries larger than this (bytes) are decoded in a worker thread.
OFF_LOOP_DECODE_BYTES = 64 * 1024

logger = logging.getLogger(__name__)

__all__ = ["CacheBackend", "LevelStats", "LevelUnavailable"]


class LevelUnavailable(EnhancedVLLMError):
    """A backend skips an operation because its service is known to be down."""


@dataclass(slots=True)
class LevelStats:
    """Counters of one cache level."""

    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    expired: int = 0
    evictions: int = 0
    invalid: int = 0
    errors: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


class CacheBackend(abc.ABC):
    """One level of the response cache, storing :class:`CacheEntry` objects.

    Entries are addressed by ``(namespace, digest)``; a backend maps that pair
    to its own storage key. Public methods never raise for a backend failure:
    ``get`` returns None, ``set``/``delete`` return False, and the failure is
    logged and counted. ``clear`` is the exception: a clear that did not happen
    must not look as if it did, so it raises :class:`CacheClearError`.

    Args:
        clock: Wall clock in seconds since the epoch; expiry is judged by it.
    """

    #: Short level name used in statistics and ``metadata["cache_level"]``.
    name: str = "base"

    #: Stored bytes past this size are refused on read (None: no bound).
    max_entry_bytes: int | None = None

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.stats = LevelStats()
        self.last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open connections. Idempotent."""
        await self._start()

    async def close(self) -> None:
        """Release connections. Idempotent."""
        await self._close()

    async def __aenter__(self) -> CacheBackend:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ public API

    async def get(self, namespace: str, digest: str) -> CacheEntry | None:
        """The live, valid entry stored under ``(namespace, digest)``, or None."""
        try:
            data = await self._get(namespace, digest)
        except Exception as exc:
            self._failed("get", exc)
            return None
        entry = None
        if data is not None and len(data) > OFF_LOOP_DECODE_BYTES and not self._too_large(data):
            # A large decode would stall the loop.
            try:
                entry = await asyncio.to_thread(decode_entry, data)
            except InvalidEntryError as exc:
                self._invalid(str(exc))
                return None
        return self._accept(namespace, digest, data, entry)

    def _accept(
        self, namespace: str, digest: str, data: bytes | None, entry: CacheEntry | None = None
    ) -> CacheEntry | None:
        """The entry ``data`` holds if it is valid, live and stored under this key
        (``entry``: ``data`` already decoded); counts the outcome either way."""
        if data is None:
            self.stats.misses += 1
            return None
        if self._too_large(data):
            size = f"an entry of {len(data)} bytes, over max_entry_bytes ({self.max_entry_bytes})"
            self._invalid(size)
            return None
        if entry is None:
            try:
                entry = decode_entry(data)
            except InvalidEntryError as exc:
                self._invalid(str(exc))
                return None
        if entry.key != digest or entry.namespace != namespace:
            # An entry copied under a foreign key must not answer this request.
            self._invalid("an entry stored under the wrong key")
            return None
        if entry.expires_at <= self.clock():
            self.stats.expired += 1
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        logger.debug("%s cache hit %s/%s", self.name, namespace, digest[:12])
        return entry

    def _too_large(self, data: bytes) -> bool:
        return self.max_entry_bytes is not None and len(data) > self.max_entry_bytes

    def _invalid(self, what: str) -> None:
        """Count and log an unusable stored entry, which reads as a miss."""
        self.stats.invalid += 1
        self.stats.misses += 1
        logger.warning("%s cache: ignoring %s", self.name, what)

    async def set(self, entry: CacheEntry) -> bool:
        """Store an entry until its ``expires_at``; True when stored."""
        ttl_s = entry.expires_at - self.clock()
        if ttl_s <= 0:
            return False
        try:
            await self._set(entry.namespace, entry.key, encode_entry(entry), ttl_s)
        except Exception as exc:
            self._failed("set", exc)
            return False
        self.stats.sets += 1
        return True

    async def delete(self, namespace: str, digest: str) -> bool:
        """Remove one entry; True when it existed."""
        try:
            removed = await self._delete(namespace, digest)
        except Exception as exc:
            self._failed("delete", exc)
            return False
        self.stats.deletes += int(removed)
        return removed

    async def clear(self, namespace: str | None = None) -> int:
        """Remove every entry of ``namespace``, or all entries; the number removed.

        Raises:
            CacheClearError: The level's service could not be reached.
        """
        try:
            return await self._clear(namespace)
        except Exception as exc:
            self._failed("clear", exc)
            raise CacheClearError([self.name]) from exc

    def describe(self) -> dict[str, Any]:
        """State and figures of this level, for health checks and statistics."""
        return {
            "state": self.state,
            "last_error": self.last_error,
            **self.stats.as_dict(),
            **self._figures(),
        }

    @property
    def state(self) -> str:
        """``"ok"``, or ``"degraded"`` while the level's service is failing."""
        return "ok"

    def _failed(self, operation: str, exc: Exception) -> None:
        if isinstance(exc, LevelUnavailable):
            self.stats.skipped += 1
            return
        self.stats.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        logger.warning("%s cache %s failed, treated as a miss: %s", self.name, operation, exc)

    # ------------------------------------------------------------------ backend hooks

    async def _start(self) -> None:  # noqa: B027 - optional hook
        """Open connections; a backend without any keeps the default."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; a backend without any keeps the default."""

    def _figures(self) -> dict[str, Any]:
        """Backend-specific figures (sizes, budgets)."""
        return {}

    @abc.abstractmethod
    async def _get(self, namespace: str, digest: str) -> bytes | None:
        """The stored bytes, or None."""

    @abc.abstractmethod
    async def _set(self, namespace: str, digest: str, data: bytes, ttl_s: float) -> None:
        """Store bytes for ``ttl_s`` seconds."""

    @abc.abstractmethod
    async def _delete(self, namespace: str, digest: str) -> bool:
        """Remove the bytes; True when they existed."""

    @abc.abstractmethod
    async def _clear(self, namespace: str | None) -> int:
        """Remove a namespace's entries (or all); the number removed."""
