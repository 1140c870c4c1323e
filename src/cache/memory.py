"""The in-process level: an LRU over serialised entries with entry and byte budgets."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from src.cache.base import OFF_LOOP_DECODE_BYTES, CacheBackend
from src.cache.entry import CacheEntry

__all__ = ["MemoryBackend"]

_Key = tuple[str, str]


class MemoryBackend(CacheBackend):
    """Least-recently-used cache in this process.

    Holds the same serialised bytes the Redis level stores, so its byte budget
    counts what is really kept. The least recently used entries go first when
    either budget is exceeded; expired entries go when met.

    Args:
        max_entries: Most entries kept.
        max_bytes: Most bytes of serialised entries kept.
        clock: Wall clock in seconds; expiry is judged by it.
    """

    name = "memory"

    def __init__(
        self, *, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock=clock)
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[_Key, tuple[bytes, float]] = OrderedDict()
        # The entries held, as objects: a hit from get_now needs no decode.
        self._decoded: dict[_Key, CacheEntry] = {}
        self._bytes = 0
        self._removal_listeners: list[Callable[[str, str], None]] = []

    def add_removal_listener(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(namespace, digest)`` whenever an entry is evicted or expires."""
        self._removal_listeners.append(listener)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size_bytes(self) -> int:
        """Bytes of serialised entries held."""
        return self._bytes

    def get_now(self, namespace: str, digest: str) -> CacheEntry | None:
        """``get`` without a suspension point, for callers that must answer at once.

        Only a live entry small enough to decode on the event loop is read and
        counted; for anything else (none, expired, large) it returns None and
        counts nothing, leaving the decision to ``get``.
        """
        key = (namespace, digest)
        item = self._data.get(key)
        if item is None or item[1] <= self.clock() or len(item[0]) > OFF_LOOP_DECODE_BYTES:
            return None
        self._data.move_to_end(key)
        entry = self._accept(namespace, digest, item[0], self._decoded.get(key))
        if entry is not None:
            self._decoded[key] = entry  # frozen: safe to hand out again
        return entry

    async def set(self, entry: CacheEntry) -> bool:
        """Store an entry, keeping the object too: it is what a hit would decode."""
        stored = await super().set(entry)
        key = (entry.namespace, entry.key)
        if stored and key in self._data:
            self._decoded[key] = entry
        return stored

    async def _get(self, namespace: str, digest: str) -> bytes | None:
        key = (namespace, digest)
        item = self._data.get(key)
        if item is None:
            return None
        data, expires_at = item
        if expires_at <= self.clock():
            self._pop(key)
            self.stats.expired += 1
            self._notify(key)
            return None
        self._data.move_to_end(key)
        return data

    async def _set(self, namespace: str, digest: str, data: bytes, ttl_s: float) -> None:
        key = (namespace, digest)
        if len(data) > self.max_bytes:
            return  # larger than the whole budget: never kept
        self._pop(key)
        self._data[key] = (data, self.clock() + ttl_s)
        self._bytes += len(data)
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._pop(oldest)
            self.stats.evictions += 1
            self._notify(oldest)

    async def _delete(self, namespace: str, digest: str) -> bool:
        return self._pop((namespace, digest))

    async def _clear(self, namespace: str | None) -> int:
        keys = [k for k in self._data if namespace is None or k[0] == namespace]
        for key in keys:
            self._pop(key)
        return len(keys)

    def _pop(self, key: _Key) -> bool:
        item = self._data.pop(key, None)
        self._decoded.pop(key, None)
        if item is None:
            return False
        self._bytes -= len(item[0])
        return True

    def _notify(self, key: _Key) -> None:
        for listener in self._removal_listeners:
            listener(*key)

    def _figures(self) -> dict[str, int]:
        return {
            "entries": len(self._data),
            "bytes": self._bytes,
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
        }
