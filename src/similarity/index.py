"""A FAISS vector index partitioned by namespace and sampling fingerprint.

Each ``(namespace, fingerprint)`` pair has its own FAISS index, so a search can
only ever return prompts of the same tenant asked with the same sampling
parameters. Vectors are unit length and compared by inner product (cosine).
Every method takes one lock: add, search and removal are safe from any thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["VectorIndex", "VectorRecord", "saved_text"]

_Partition = tuple[str, str]


@dataclass(frozen=True, slots=True)
class VectorRecord:
    """One indexed prompt: its vector and what a match needs to know about it.

    ``text`` is the prompt, normalised; its features for the guards are computed
    when a lookup first finds it near enough to compare.
    """

    entry_id: str
    namespace: str
    fingerprint: str
    text: str
    expires_at: float
    vector: np.ndarray


def saved_text(meta: dict[str, Any]) -> str:
    """The prompt of a saved record: ``text``, or, in records written before the
    features were computed on demand, the text inside ``features``."""
    text = meta["text"] if "text" in meta else meta["features"]["text"]
    if not isinstance(text, str):
        raise TypeError(f"prompt text is a {type(text).__name__}, not a string")
    return text


class _FaissPartition:
    def __init__(self, dimension: int, kind: Literal["flat", "hnsw"], hnsw_m: int) -> None:
        self.index: Any
        if kind == "flat":
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        else:
            self.index = faiss.IndexIDMap(
                faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            )
        self.removable = kind == "flat"
        self.live: set[int] = set()
        self.dead = 0  # HNSW cannot delete: removed ids stay until a rebuild


class VectorIndex:
    """Bounded, partitioned FAISS index over :class:`VectorRecord` objects.

    Args:
        dimension: Vector size.
        kind: ``"flat"`` (exact) or ``"hnsw"`` (approximate graph).
        hnsw_m: Neighbours per HNSW node.
        max_entries: Most records held; adding beyond it drops the oldest.
    """

    def __init__(
        self,
        dimension: int,
        *,
        kind: Literal["flat", "hnsw"] = "flat",
        hnsw_m: int = 32,
        max_entries: int = 100_000,
    ) -> None:
        self.dimension = dimension
        self.kind = kind
        self.hnsw_m = hnsw_m
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._partitions: dict[_Partition, _FaissPartition] = {}
        self._records: OrderedDict[int, VectorRecord] = OrderedDict()  # oldest first
        self._ids: dict[tuple[str, str], int] = {}
        self._next_id = 1
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: VectorRecord) -> None:
        """Index a record, replacing one with the same namespace and entry id."""
        vector = np.ascontiguousarray(record.vector, dtype=np.float32).reshape(1, -1)
        if vector.shape[1] != self.dimension:
            raise ValueError(f"vector has {vector.shape[1]} dimensions, index has {self.dimension}")
        with self._lock:
            self._remove_locked(record.namespace, record.entry_id)
            key = (record.namespace, record.fingerprint)
            partition = self._partitions.get(key)
            if partition is None:
                partition = self._partitions[key] = _FaissPartition(
                    self.dimension, self.kind, self.hnsw_m
                )
            vid = self._next_id
            self._next_id += 1
            partition.index.add_with_ids(vector, np.array([vid], dtype=np.int64))
            partition.live.add(vid)
            self._records[vid] = record
            self._ids[(record.namespace, record.entry_id)] = vid
            while len(self._records) > self.max_entries:
                oldest = next(iter(self._records.values()))
                self._remove_locked(oldest.namespace, oldest.entry_id)
                self.evictions += 1

    def remove(self, namespace: str, entry_id: str) -> bool:
        """Drop a record; True when it was indexed."""
        with self._lock:
            return self._remove_locked(namespace, entry_id)

    def remove_namespace(self, namespace: str | None) -> int:
        """Drop every record of a namespace (or all); the number dropped."""
        with self._lock:
            doomed = [k for k in self._ids if namespace is None or k[0] == namespace]
            for ns, entry_id in doomed:
                self._remove_locked(ns, entry_id)
            return len(doomed)

    def search(
        self, vector: np.ndarray, namespace: str, fingerprint: str, k: int, now: float
    ) -> list[tuple[VectorRecord, float]]:
        """Up to ``k`` live records of one partition, best score first."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:
            partition = self._partitions.get((namespace, fingerprint))
            if partition is None or not partition.live:
                return []
            want = min(k + partition.dead, partition.index.ntotal)
            scores, ids = partition.index.search(query, want)
            found = []
            for score, vid in zip(scores[0], ids[0], strict=True):
                record = self._records.get(int(vid)) if vid >= 0 else None
                if record is None or int(vid) not in partition.live:
                    continue
                if record.expires_at <= now:
                    self._remove_locked(record.namespace, record.entry_id)
                    continue
                found.append((record, float(score)))
                if len(found) == k:
                    break
            return found

    def records(self) -> list[VectorRecord]:
        """A snapshot of every record, oldest first."""
        with self._lock:
            return list(self._records.values())

    def partitions(self) -> int:
        """How many (namespace, fingerprint) partitions hold records."""
        with self._lock:
            return sum(1 for p in self._partitions.values() if p.live)

    def _remove_locked(self, namespace: str, entry_id: str) -> bool:
        vid = self._ids.pop((namespace, entry_id), None)
        if vid is None:
            return False
        record = self._records.pop(vid)
        key = (record.namespace, record.fingerprint)
        partition = self._partitions[key]
        partition.live.discard(vid)
        if partition.removable:
            partition.index.remove_ids(np.array([vid], dtype=np.int64))
        else:
            partition.dead += 1
            if partition.dead > max(64, len(partition.live)):
                self._rebuild_locked(key, partition)
        if not partition.live:
            del self._partitions[key]
        return True

    def _rebuild_locked(self, key: _Partition, old: _FaissPartition) -> None:
        fresh = _FaissPartition(self.dimension, self.kind, self.hnsw_m)
        ids = sorted(old.live)
        if ids:
            vectors = np.stack([self._records[i].vector for i in ids]).astype(np.float32)
            fresh.index.add_with_ids(vectors, np.array(ids, dtype=np.int64))
        fresh.live = set(ids)
        self._partitions[key] = fresh

    # ------------------------------------------------------------------ files

    def save(self, path: Path, space: str) -> None:
        """Write every record to ``path`` (a ``.npz`` of vectors plus JSON metadata),
        labelled with the embedding ``space`` (model id) that made the vectors."""
        records = self.records()
        meta = [
            {
                "entry_id": r.entry_id,
                "namespace": r.namespace,
                "fingerprint": r.fingerprint,
                "expires_at": r.expires_at,
                "text": r.text,
            }
            for r in records
        ]
        vectors = (
            np.stack([r.vector for r in records]).astype(np.float32)
            if records
            else np.zeros((0, self.dimension), dtype=np.float32)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, vectors=vectors, meta=np.array(json.dumps(meta)), space=np.array(space))
        tmp.replace(path)

    def load(self, path: Path, now: float, space: str) -> int:
        """Add the unexpired records saved at ``path``; the number added.

        A file written for another embedding ``space`` adds nothing: its vectors
        are not comparable with this model's.
        """
        with np.load(path, allow_pickle=False) as data:
            saved_space = str(data["space"]) if "space" in data.files else None
            if saved_space != space:
                logger.warning(
                    "Index file %s holds vectors of another embedding model (%s, not %s); "
                    "starting empty",
                    path,
                    saved_space,
                    space,
                )
                return 0
            vectors = data["vectors"]
            meta = json.loads(str(data["meta"]))
        added = 0
        for item, vector in zip(meta, vectors, strict=True):
            if item["expires_at"] <= now:
                continue
            self.add(
                VectorRecord(
                    entry_id=item["entry_id"],
                    namespace=item["namespace"],
                    fingerprint=item["fingerprint"],
                    text=saved_text(item),
                    expires_at=float(item["expires_at"]),
                    vector=vector,
                )
            )
            added += 1
        return added
