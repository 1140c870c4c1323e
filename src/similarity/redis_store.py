"""The semantic index kept in Redis, shared by every instance on that Redis.

Each indexed prompt is a hash ``<prefix>vec:<space>:{<namespace>}:<entry_id>`` holding its
float32 vector and JSON metadata, expiring with its answer. Every add or removal
is also announced on the stream ``<prefix>vec-events``; instances follow the
stream (``XREAD BLOCK``) and apply what others announce, so a new entry is
visible everywhere without a restart. A starting instance rebuilds its FAISS
index by scanning the hashes. Nothing is pickled: vectors are raw float32 bytes
and metadata is JSON, both validated on the way in.

``<space>`` names the embedding model: vectors of one model mean nothing to
another of the same size, so instances with different models sharing a Redis
(or a restart after a model change) never see each other's vectors.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from src.cache.redis_backend import (
    RedisClient,
    escape_glob,
    namespace_pattern,
    namespace_tag,
    unlink_matching,
)
from src.similarity.index import VectorRecord, saved_text

logger = logging.getLogger(__name__)

__all__ = ["RedisVectorStore"]

#: Version 2 keeps the prompt's text; version 1 (still read) kept its spaCy features,
#: the text among them.
_META_VERSION = 2
_READABLE_VERSIONS = (1, 2)
#: Invalid records logged as warnings; later ones are logged at DEBUG (and counted).
_LOUD_INVALID = 10


class RedisVectorStore:
    """Reads and writes indexed prompts in Redis and follows other instances' changes.

    Args:
        client: A ``redis.asyncio`` client for every command (not closed here).
        follow_client: A client without a socket timeout for the blocking reads of
            :meth:`follow`; None uses ``client``.
        key_prefix: Prefix of every key.
        space: Short id of the embedding model that made the vectors.
        dimension: Vector size; stored vectors of another size are skipped.
        origin: This instance's id, so it ignores its own announcements.
        stream_maxlen: Approximate length the event stream is trimmed to.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        follow_client: RedisClient | None = None,
        key_prefix: str,
        space: str,
        dimension: int,
        origin: str,
        stream_maxlen: int = 10_000,
    ) -> None:
        self.client = client
        self.follow_client = follow_client or client
        self.key_prefix = key_prefix
        self.vec_prefix = f"{key_prefix}vec:{space}:"
        self.dimension = dimension
        self.origin = origin
        self.stream = f"{key_prefix}vec-events"
        self.stream_maxlen = stream_maxlen
        self.invalid = 0

    def key(self, namespace: str, entry_id: str) -> str:
        return f"{self.vec_prefix}{namespace_tag(namespace)}:{entry_id}"

    async def put(self, record: VectorRecord, ttl_s: float) -> None:
        """Store a record for ``ttl_s`` seconds and announce it."""
        meta = {
            "v": _META_VERSION,
            "entry_id": record.entry_id,
            "namespace": record.namespace,
            "fingerprint": record.fingerprint,
            "expires_at": record.expires_at,
            "text": record.text,
        }
        key = self.key(record.namespace, record.entry_id)
        vector = np.ascontiguousarray(record.vector, dtype=np.float32).tobytes()
        # The record first, then its announcement: on a cluster the two keys live
        # in different slots, and a follower must find the record it is told of.
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"vector": vector, "meta": json.dumps(meta)})
            pipe.pexpire(key, max(1, int(ttl_s * 1000)))
            await pipe.execute()
        await self._announce("add", key)

    async def delete(self, namespace: str, entry_id: str) -> None:
        """Remove a record and announce the removal."""
        key = self.key(namespace, entry_id)
        await self.client.unlink(key)
        await self._announce("del", key)

    async def _announce(self, op: str, key: str) -> None:
        await self.client.xadd(
            self.stream,
            {"op": op, "key": key, "origin": self.origin},
            maxlen=self.stream_maxlen,
            approximate=True,
        )

    async def delete_namespace(self, namespace: str | None) -> int:
        """Remove every record of a namespace (or all) without announcing each."""
        pattern = f"{escape_glob(self.vec_prefix)}{namespace_pattern(namespace)}"
        return await unlink_matching(self.client, pattern)

    async def last_event_id(self) -> str:
        """Id of the newest event, or ``"0-0"``: follow from here after a rebuild."""
        newest: Any = await self.client.xrevrange(self.stream, count=1)
        return str(newest[0][0].decode()) if newest else "0-0"

    async def load_all(self, now: float) -> list[VectorRecord]:
        """Every valid, unexpired record under the prefix."""
        records: list[VectorRecord] = []
        batch: list[bytes] = []
        pattern = f"{escape_glob(self.vec_prefix)}*"
        async for key in self.client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 200:
                records.extend(await self._read(batch, now))
                batch = []
        if batch:
            records.extend(await self._read(batch, now))
        return records

    async def read(self, key: str, now: float) -> VectorRecord | None:
        """One record by its full key, or None."""
        found = await self._read([key.encode()], now)
        return found[0] if found else None

    async def _read(self, keys: list[bytes], now: float) -> list[VectorRecord]:
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            # A stray key of another type answers WRONGTYPE: that row alone is skipped.
            rows = await pipe.execute(raise_on_error=False)
        records = []
        for key, row in zip(keys, rows, strict=True):
            record = self._decode(key, row, now)
            if record is not None:
                records.append(record)
        return records

    def _decode(self, key: bytes, row: object, now: float) -> VectorRecord | None:
        """A record from a hash's fields; None (counted, logged) for anything else."""
        if isinstance(row, dict) and not row:
            return None
        try:
            if isinstance(row, Exception):
                raise ValueError(f"unreadable: {row}")
            if not isinstance(row, dict):
                raise ValueError(f"not a hash but {type(row).__name__}")
            meta = json.loads(row[b"meta"])
            if not isinstance(meta, dict):
                raise ValueError(f"metadata is a JSON {type(meta).__name__}, not an object")
            if meta.get("v") not in _READABLE_VERSIONS:
                raise ValueError(f"unknown version {meta.get('v')!r}")
            vector = np.frombuffer(row[b"vector"], dtype=np.float32)
            if vector.shape != (self.dimension,) or not np.isfinite(vector).all():
                raise ValueError("vector of the wrong size")
            record = VectorRecord(
                entry_id=str(meta["entry_id"]),
                namespace=str(meta["namespace"]),
                fingerprint=str(meta["fingerprint"]),
                text=saved_text(meta),
                expires_at=float(meta["expires_at"]),
                vector=vector.copy(),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.invalid += 1
            log = logger.warning if self.invalid <= _LOUD_INVALID else logger.debug
            log("Skipping invalid vector record %r in Redis: %s", key, exc)
            return None
        return record if record.expires_at > now else None

    async def follow(
        self,
        since: str,
        on_add: Callable[[VectorRecord], None],
        on_remove: Callable[[str, str], object],
        now: Callable[[], float],
        *,
        block_ms: int = 1000,
        retry_s: float = 1.0,
    ) -> None:
        """Apply other instances' announcements until cancelled; survives Redis outages."""
        last = since
        prefix = self.vec_prefix
        while True:
            try:
                replies: Any = await self.follow_client.xread(
                    {self.stream: last}, block=block_ms, count=100
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.debug("Following %s failed, retrying: %s", self.stream, exc)
                await asyncio.sleep(retry_s)
                continue
            for _stream, events in replies or ():
                for event_id, fields in events:
                    last = event_id.decode()
                    if fields.get(b"origin", b"").decode() == self.origin:
                        continue
                    key = fields.get(b"key", b"").decode()
                    if not key.startswith(prefix):
                        continue
                    if fields.get(b"op") == b"add":
                        try:
                            record = await self.read(key, now())
                        except Exception as exc:
                            logger.debug("Reading %s failed: %s", key, exc)
                            continue
                        if record is not None:
                            on_add(record)
                    elif fields.get(b"op") == b"del":
                        tag, _, entry_id = key[len(prefix) :].rpartition(":")
                        on_remove(tag.removeprefix("{").removesuffix("}"), entry_id)
