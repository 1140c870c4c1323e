"""``SimilaritySearchHelper``: paraphrase lookup with the full acceptance decision.

A stored prompt answers a new one only when both hold:

1. the cosine similarity of their embeddings is at least ``threshold``, and
2. their preprocessed content agrees: language, named entities, numbers and
   dates, negation and the order of named things where order matters (each
   guard can be switched off in ``SimilarityConfig``).

Candidates come from FAISS, restricted to the same namespace and sampling
fingerprint; they are tried best score first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from src.cache.manager import MultiLevelCacheManager
from src.cache.memory import MemoryBackend
from src.config import SimilarityConfig
from src.nlp.features import GuardSettings, PromptFeatures, disagreement
from src.nlp.preprocessor import PromptPreprocessor, detect_language
from src.similarity.embedder import Embedder
from src.similarity.index import VectorIndex, VectorRecord
from src.similarity.redis_store import RedisVectorStore

logger = logging.getLogger(__name__)

__all__ = ["PreparedPrompt", "SimilarityMatch", "SimilaritySearchHelper"]

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class SimilarityMatch:
    """A stored prompt accepted as asking the same thing.

    Attributes:
        entry_id: Id of the stored prompt's cache entry.
        score: Cosine similarity of the two prompts' embeddings.
        text: The stored prompt (normalised).
    """

    entry_id: str
    score: float
    text: str


@dataclass(frozen=True, slots=True)
class PreparedPrompt:
    """A prompt's embedding, and its features on the way, for search and then add.

    The spaCy features are computed in the background: a search needs them only
    when a candidate passes the threshold, and indexing only once the answer is
    complete, so a miss does not wait for them.
    """

    namespace: str
    fingerprint: str
    language: str
    vector: np.ndarray | None
    pending_features: asyncio.Task[list[PromptFeatures]] | None

    async def features(self) -> PromptFeatures:
        """The prompt's features (waits for the background computation)."""
        assert self.pending_features is not None
        return (await self.pending_features)[0]

    def discard(self) -> None:
        """Stop the background work of a prompt that is no longer needed."""
        task = self.pending_features
        if task is None:
            return
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()  # retrieved: a failure here was already a miss


class SimilaritySearchHelper:
    """Embeds, preprocesses, indexes and matches prompts.

    The constructor only records settings; :meth:`start` loads the models,
    connects to Redis and rebuilds the index.

    Args:
        config: Similarity settings.
        redis_url: Redis holding the shared index; None keeps it in this process
            (saved to ``config.index_path`` at stop if set).
        key_prefix: Prefix of the Redis keys.
        redis_timeout_s: Bound on each Redis command.
        clock: Wall clock in seconds; expiry is judged by it.
    """

    def __init__(
        self,
        config: SimilarityConfig | None = None,
        *,
        redis_url: str | None = None,
        key_prefix: str = "evllm:",
        redis_timeout_s: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or SimilarityConfig()
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.redis_timeout_s = redis_timeout_s
        self.clock = clock
        self.instance_id = uuid.uuid4().hex[:12]
        self.guards = GuardSettings(
            language=self.config.check_language,
            entities=self.config.check_entities,
            quantities=self.config.check_quantities,
            negation=self.config.check_negation,
            direction=self.config.check_direction,
            task=self.config.check_task,
            subject=self.config.check_subject,
            substitution=self.config.check_substitution,
            min_term_overlap=self.config.min_term_overlap,
            min_term_overlap_zh=self.config.min_term_overlap_zh,
        )
        self.preprocessor = PromptPreprocessor(
            self.config.english_pipeline, use_thesaurus=self.config.use_thesaurus
        )
        self.embedder = Embedder(
            self.config.embedding_model,
            device=self.config.device,
            batch_size=self.config.batch_size,
            batch_wait_ms=self.config.batch_wait_ms,
            cache_dir=self.config.model_cache_dir,
        )
        self.index: VectorIndex | None = None
        self._redis: Redis | None = None
        self._redis_follow: Redis | None = None
        self._store: RedisVectorStore | None = None
        self._follower: asyncio.Task[None] | None = None
        self.startup_s: float | None = None
        self.last_error: str | None = None
        self.counts: Counter[str] = Counter()
        self._redis_failing = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self.index is not None

    async def start(self) -> None:
        """Load the models, then rebuild the index from Redis or the index file. Idempotent."""
        if self.started:
            return
        began = time.perf_counter()
        await asyncio.gather(self.preprocessor.start(), self.embedder.start())
        assert self.embedder.dimension is not None
        index = VectorIndex(
            self.embedder.dimension,
            kind=self.config.index_type,
            hnsw_m=self.config.hnsw_m,
            max_entries=self.config.max_entries,
        )
        if self.redis_url is not None:
            await self._start_redis(index)
        elif self.config.index_path is not None and self.config.index_path.exists():
            loaded = await asyncio.to_thread(
                index.load, self.config.index_path, self.clock(), self.embedder.space
            )
            logger.info("Loaded %d vectors from %s", loaded, self.config.index_path)
        self.index = index
        self.startup_s = time.perf_counter() - began

    async def _start_redis(self, index: VectorIndex) -> None:
        assert self.redis_url is not None and self.embedder.dimension is not None
        # Every command is bounded by the timeout, except the follower's blocking
        # XREAD, which gets a client of its own.
        self._redis, self._redis_follow = (
            Redis.from_url(
                self.redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=self.redis_timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            for timeout in (self.redis_timeout_s, None)
        )
        self._store = RedisVectorStore(
            self._redis,
            follow_client=self._redis_follow,
            key_prefix=self.key_prefix,
            space=self.embedder.space,
            dimension=self.embedder.dimension,
            origin=self.instance_id,
        )
        since = "0-0"
        try:
            since = await asyncio.wait_for(self._store.last_event_id(), self.redis_timeout_s * 4)
            records = await self._store.load_all(self.clock())
        except Exception as exc:
            self._failed("rebuild", exc)
            records = []
        for record in records:
            index.add(record)
        logger.info("Semantic index rebuilt from Redis: %d vectors", len(records))
        self._follower = asyncio.create_task(
            self._store.follow(since, index.add, index.remove, self.clock),
            name="similarity-follower",
        )

    async def stop(self) -> None:
        """Stop following Redis, save the index file if configured, release models."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        index = self.index
        if index is not None and self._redis is None and self.config.index_path is not None:
            await asyncio.to_thread(index.save, self.config.index_path, self.embedder.space)
        await self.embedder.stop()
        clients, self._redis, self._redis_follow = (self._redis, self._redis_follow), None, None
        for client in clients:
            if client is not None:
                await client.aclose()
        self.index = None

    async def __aenter__(self) -> SimilaritySearchHelper:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ the two-step API

    async def prepare(
        self, text: str, *, namespace: str | None = None, fingerprint: str = ""
    ) -> PreparedPrompt:
        """Embed a prompt, then start its preprocessing (both in worker threads).

        A prompt in a script without a pipeline, or longer than the embedding model
        reads (its ending would not be in the vector), is neither embedded nor
        preprocessed: it can never be matched, only hit exactly.
        """
        self._ensure_started()
        namespace = namespace or DEFAULT_NAMESPACE
        language = detect_language(text)
        vector = None if language == "other" else await self.embedder.embed(text)
        if vector is None:
            return PreparedPrompt(namespace, fingerprint, language, None, None)
        # Started after the embedding so the two do not compete for the CPU.
        pending = asyncio.create_task(self.preprocessor.process([text]))
        return PreparedPrompt(namespace, fingerprint, language, vector, pending)

    async def match(self, prompt: PreparedPrompt) -> SimilarityMatch | None:
        """The best stored prompt that passes the threshold and every guard, or None."""
        index = self._ensure_started()
        self.counts["searches"] += 1
        if prompt.vector is None:
            why = "language without a pipeline" if prompt.language == "other" else "too long"
            self.counts[f"rejected:{why}"] += 1
            return None
        candidates = await asyncio.to_thread(
            index.search,
            prompt.vector,
            prompt.namespace,
            prompt.fingerprint,
            self.config.top_k,
            self.clock(),
        )
        thesaurus = self.preprocessor.thesaurus
        same = thesaurus.same if thesaurus is not None else None
        opposite = thesaurus.opposite if thesaurus is not None else None
        for record, score in candidates:
            if score < self.config.threshold:
                self.counts["below_threshold"] += 1
                break  # best first: the rest score lower
            reason = disagreement(
                await prompt.features(), record.features, self.guards, same, opposite
            )
            if reason is None:
                self.counts["hits"] += 1
                return SimilarityMatch(record.entry_id, score, record.features.text)
            self.counts[f"rejected:{reason}"] += 1
        return None

    async def index_prompt(self, prompt: PreparedPrompt, entry_id: str, expires_at: float) -> None:
        """Index a prepared prompt under its cache entry id (and share it through Redis)."""
        index = self._ensure_started()
        if prompt.vector is None:
            return  # never matchable: nothing to index
        record = VectorRecord(
            entry_id=entry_id,
            namespace=prompt.namespace,
            fingerprint=prompt.fingerprint,
            features=await prompt.features(),
            expires_at=expires_at,
            vector=prompt.vector,
        )
        await asyncio.to_thread(index.add, record)
        self.counts["added"] += 1
        if self._store is not None:
            try:
                await asyncio.wait_for(
                    self._store.put(record, expires_at - self.clock()), self.redis_timeout_s
                )
            except Exception as exc:
                self._failed("put", exc)
            else:
                self._redis_failing = False

    # ------------------------------------------------------------------ the simple API

    async def add(
        self,
        text: str,
        entry_id: str,
        *,
        namespace: str | None = None,
        fingerprint: str = "",
        ttl_s: float = 3600.0,
    ) -> None:
        """Index ``text`` as the prompt of cache entry ``entry_id``."""
        prompt = await self.prepare(text, namespace=namespace, fingerprint=fingerprint)
        await self.index_prompt(prompt, entry_id, self.clock() + ttl_s)

    async def search(
        self, text: str, *, namespace: str | None = None, fingerprint: str = ""
    ) -> SimilarityMatch | None:
        """The stored prompt that asks the same as ``text``, or None."""
        return await self.match(
            await self.prepare(text, namespace=namespace, fingerprint=fingerprint)
        )

    async def remove(self, entry_id: str, *, namespace: str | None = None) -> bool:
        """Forget an entry's prompt here and in Redis; True when it was indexed here."""
        index = self._ensure_started()
        namespace = namespace or DEFAULT_NAMESPACE
        removed = await asyncio.to_thread(index.remove, namespace, entry_id)
        self.counts["removed"] += int(removed)
        if self._store is not None:
            try:
                await asyncio.wait_for(
                    self._store.delete(namespace, entry_id), self.redis_timeout_s
                )
            except Exception as exc:
                self._failed("delete", exc)
        return removed

    def forget_local(self, namespace: str, entry_id: str) -> None:
        """Drop an entry from this process's index only (its answer left this process)."""
        if self.index is not None and self.index.remove(namespace, entry_id):
            self.counts["removed"] += 1

    def follow_evictions(self, cache: MultiLevelCacheManager) -> None:
        """Drop a prompt's vector when its answer leaves ``cache`` for good.

        With only a memory level, an answer evicted or expired from memory is
        gone, so its vector goes too. With Redis the answer lives on there (and
        the vector's Redis copy expires with it); stale vectors met in a search
        are dropped by the caller when the answer is not found.
        """
        memory = cache.level("memory")
        if cache.level("redis") is None and isinstance(memory, MemoryBackend):
            memory.add_removal_listener(self.forget_local)

    async def clear(self, namespace: str | None = None) -> int:
        """Forget every prompt of a namespace (or all), here and in Redis.

        Returns:
            How many prompts this process's index dropped.
        """
        index = self._ensure_started()
        dropped = await asyncio.to_thread(index.remove_namespace, namespace)
        if self._store is not None:
            try:
                await self._store.delete_namespace(namespace)
            except Exception as exc:
                self._failed("clear", exc)
        return dropped

    # ------------------------------------------------------------------ reporting

    def describe(self) -> dict[str, Any]:
        """State and figures for health checks."""
        if self.index is None:
            return {"state": "not_started"}
        return {
            "state": "degraded" if self._redis_failing else "ok",
            "startup_s": self.startup_s,
            "nlp_startup_s": self.preprocessor.startup_s,
            "embedder_startup_s": self.embedder.startup_s,
            "vectors": len(self.index),
            "partitions": self.index.partitions(),
            "evictions": self.index.evictions,
            "embedding_batches": self.embedder.batches,
            "embedded": self.embedder.embedded,
            "threshold": self.config.threshold,
            "shared_through_redis": self._store is not None,
            "last_error": self.last_error,
            **dict(self.counts),
        }

    def _failed(self, operation: str, exc: Exception) -> None:
        self.counts["redis_errors"] += 1
        self.last_error = f"{operation}: {type(exc).__name__}: {exc}"
        self._redis_failing = True
        logger.warning("Semantic index %s failed in Redis, kept local: %s", operation, exc)

    def _ensure_started(self) -> VectorIndex:
        if self.index is None:
            raise RuntimeError("SimilaritySearchHelper is not started: await start() first")
        return self.index
