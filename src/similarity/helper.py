"""``SimilaritySearchHelper``: paraphrase lookup with the full acceptance decision.

A stored prompt answers a new one only when all hold:

1. the cosine similarity of their embeddings is at least ``judge_floor`` (with
   the judge) or ``threshold`` (without);
2. no guard that is switched on in ``SimilarityConfig`` vetoes the pair
   (language, named entities, numbers and dates, ...);
3. with the judge on, the pair judge, reading both prompts together, gives a
   probability of at least the threshold its calibration curve sets for
   ``max_false_hit_rate``.

Candidates come from FAISS, restricted to the same namespace and sampling
fingerprint. The judge reads the surviving candidates in a worker thread,
the closest (by cosine) alone first: when it clears the threshold it is the
answer, and only otherwise are the others read, in one batch, the most probable
one above the threshold winning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.cache.key import normalize_prompt
from src.cache.manager import MultiLevelCacheManager
from src.cache.memory import MemoryBackend
from src.cache.redis_backend import (
    DEFAULT_MAX_CONNECTIONS,
    CommandSlots,
    RedisClient,
    redis_client,
)
from src.config import CacheConfig, SimilarityConfig
from src.errors import CacheClearError, HandlerStateError
from src.nlp.features import PromptFeatures
from src.nlp.guards import CHECKS, GuardSettings, disagreement
from src.nlp.preprocessor import PromptPreprocessor, detect_language
from src.similarity.embedder import Embedder
from src.similarity.index import VectorIndex, VectorRecord
from src.similarity.judge import PairJudge, judge_folder
from src.similarity.redis_store import RedisVectorStore
from src.workers import StageWorkers

logger = logging.getLogger(__name__)

__all__ = ["PairVerdict", "PreparedPrompt", "SimilarityMatch", "SimilaritySearchHelper"]

#: The guards, by their ``GuardSettings`` field, each judged alone in :class:`PairVerdict`.
GUARDS = tuple(name for name, _ in CHECKS)

DEFAULT_NAMESPACE = "default"
#: Prompts whose spaCy features are kept for the next lookup that needs them.
FEATURES_KEPT = 4096


@dataclass(frozen=True, slots=True)
class SimilarityMatch:
    """A stored prompt accepted as asking the same thing.

    Attributes:
        entry_id: Id of the stored prompt's cache entry.
        score: Cosine similarity of the two prompts' embeddings.
        text: The stored prompt (normalised).
        probability: The pair judge's probability that both ask the same thing
            (None when the judge is off).
    """

    entry_id: str
    score: float
    text: str
    probability: float | None = None


@dataclass(frozen=True, slots=True)
class PreparedPrompt:
    """A prompt's embedding, for search and then add.

    Its spaCy features are not computed here: the guards need them only for a
    candidate above the floor (:meth:`SimilaritySearchHelper.match` computes
    them then, for both sides), so a miss with no near neighbour never pays
    for preprocessing, nor does indexing its answer.
    """

    namespace: str
    fingerprint: str
    language: str
    text: str
    vector: np.ndarray | None


@dataclass(frozen=True, slots=True)
class PairVerdict:
    """How the semantic stage sees one pair (stored ``a``, looked-up ``b``), part by part.

    Attributes:
        cosine: Cosine similarity of the embeddings (None: a side cannot be embedded).
        vetoes: Each guard's verdict alone: True where that guard rejects the pair.
        probability: The judge's probability (None below ``judge_floor`` or without judge).
        hit: The decision with the configured guards, floor and threshold.
    """

    cosine: float | None
    vetoes: dict[str, bool]
    probability: float | None
    hit: bool


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
        redis_max_connections: Connections the command client opens at most.
        redis_cluster: ``redis_url`` names a node of a Redis Cluster.
        retry_interval_s: After a Redis failure, writes skip Redis for this long
            (kept locally) instead of each waiting for the timeout.
        clock: Wall clock in seconds; expiry is judged by it.
    """

    @classmethod
    def for_cache(
        cls, config: SimilarityConfig, cache_config: CacheConfig
    ) -> SimilaritySearchHelper:
        """A helper whose index lives beside the answers of ``cache_config``
        (the same Redis, prefix and outage handling)."""
        return cls(
            config,
            redis_url=cache_config.redis_url_value(),
            key_prefix=cache_config.key_prefix,
            redis_timeout_s=cache_config.redis_timeout_s,
            retry_interval_s=cache_config.redis_retry_interval_s,
            redis_max_connections=cache_config.redis_max_connections,
            redis_cluster=cache_config.redis_cluster,
        )

    def __init__(
        self,
        config: SimilarityConfig | None = None,
        *,
        redis_url: str | None = None,
        key_prefix: str = "evllm:",
        redis_timeout_s: float = 0.25,
        retry_interval_s: float = 1.0,
        redis_max_connections: int = DEFAULT_MAX_CONNECTIONS,
        redis_cluster: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or SimilarityConfig()
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.redis_timeout_s = redis_timeout_s
        self.retry_interval_s = retry_interval_s
        self.redis_max_connections = redis_max_connections
        self.redis_cluster = redis_cluster
        # Writes of the index queue for the client's connections, as answers' do.
        self._slots = CommandSlots(redis_max_connections, redis_timeout_s)
        self.clock = clock
        self.instance_id = uuid.uuid4().hex[:12]
        self.guards = GuardSettings(
            language=self.config.check_language,
            entities=self.config.check_entities,
            quantities=self.config.check_quantities,
            direction=self.config.check_direction,
            subject=self.config.check_subject,
            substitution=self.config.check_substitution,
            min_term_overlap=self.config.min_term_overlap,
            min_term_overlap_zh=self.config.min_term_overlap_zh,
        )
        #: Threads for the stage's blocking work: models, FAISS searches and writes.
        self.workers = StageWorkers(nice=self.config.worker_nice)
        self.preprocessor = PromptPreprocessor(
            self.config.english_pipeline,
            use_thesaurus=self.config.use_thesaurus,
            workers=self.workers,
        )
        self.embedder = Embedder(
            self.config.embedding_model,
            device=self.config.device,
            batch_size=self.config.batch_size,
            batch_wait_ms=self.config.batch_wait_ms,
            cache_dir=self.config.model_cache_dir,
            workers=self.workers,
        )
        self.judge = (
            PairJudge(
                judge_folder(self.config.judge_model),
                cache_dir=self.config.model_cache_dir,
                device=self.config.device,
                workers=self.workers,
            )
            if self.config.judge
            else None
        )
        #: The judge's threshold for languages without a calibration curve of their own.
        self.judge_threshold: float | None = None
        #: ... and for each language with one.
        self.judge_thresholds: dict[str, float] = {}
        self.index: VectorIndex | None = None
        self._redis: RedisClient | None = None
        self._redis_follow: RedisClient | None = None
        self._store: RedisVectorStore | None = None
        self._follower: asyncio.Task[None] | None = None
        self.startup_s: float | None = None
        self.last_error: str | None = None
        self.counts: Counter[str] = Counter()
        #: Features of recently compared prompts, by normalised text (the event loop's).
        self._features: OrderedDict[str, PromptFeatures] = OrderedDict()
        self._redis_failing = False
        self._skip_redis_until = 0.0  # time.monotonic() before which writes skip Redis

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self.index is not None

    async def start(self) -> None:
        """Load the models, then rebuild the index from Redis or the index file. Idempotent."""
        if self.started:
            return
        began = time.perf_counter()
        parts = [self.preprocessor.start(), self.embedder.start()]
        if self.judge is not None:
            parts.append(self.judge.start())
        await asyncio.gather(*parts)
        if self.judge is not None:
            self._set_judge_thresholds(self.judge)
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
        self._redis = redis_client(
            self.redis_url,
            timeout_s=self.redis_timeout_s,
            max_connections=self.redis_max_connections,
            cluster=self.redis_cluster,
        )
        self._redis_follow = redis_client(
            self.redis_url, timeout_s=self.redis_timeout_s, max_connections=1,
            bounded_commands=False, cluster=self.redis_cluster,
        )  # fmt: skip
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
        if self.judge is not None:
            await self.judge.stop()
        self.workers.shutdown()
        clients, self._redis, self._redis_follow = (self._redis, self._redis_follow), None, None
        for client in clients:
            if client is not None:
                await client.aclose()
        self.index = None
        self._features.clear()

    async def __aenter__(self) -> SimilaritySearchHelper:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ the two-step API

    async def prepare(
        self, text: str, *, namespace: str | None = None, fingerprint: str = ""
    ) -> PreparedPrompt:
        """Embed a prompt (in a worker thread).

        A prompt in a script without a pipeline, or longer than the embedding model
        reads (its ending would not be in the vector), is not embedded: it can
        never be matched, only hit exactly.
        """
        self._ensure_started()
        namespace = namespace or DEFAULT_NAMESPACE
        text = normalize_prompt(text)
        language = detect_language(text)
        vector = None if language == "other" else await self.embedder.embed(text)
        return PreparedPrompt(namespace, fingerprint, language, text, vector)

    async def features_of(self, texts: Sequence[str]) -> list[PromptFeatures]:
        """The spaCy features of normalised ``texts``: those of prompts compared
        lately are kept (:data:`FEATURES_KEPT`), the rest computed in one call."""
        found = {text: self._features[text] for text in texts if text in self._features}
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            computed = await self.preprocessor.process(missing)
            self.counts["preprocessed"] += len(missing)
            found.update(zip(missing, computed, strict=True))
        for text, features in found.items():
            self._features[text] = features
            self._features.move_to_end(text)
        while len(self._features) > FEATURES_KEPT:
            self._features.popitem(last=False)
        return [found[text] for text in texts]

    async def match(self, prompt: PreparedPrompt) -> SimilarityMatch | None:
        """The best stored prompt that passes the threshold and every guard, or None."""
        index = self._ensure_started()
        self.counts["searches"] += 1
        if prompt.vector is None:
            why = "language without a pipeline" if prompt.language == "other" else "too long"
            self.counts[f"rejected:{why}"] += 1
            return None
        candidates = await self.workers.run(
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
        floor = self.config.threshold if self.judge is None else self.config.judge_floor
        above = [(record, score) for record, score in candidates if score >= floor]
        if len(above) < len(candidates):
            self.counts["below_threshold"] += 1
        if not above:
            return None
        mine, *theirs = await self.features_of([prompt.text, *(r.text for r, _ in above)])
        passed: list[tuple[VectorRecord, float]] = []
        for (record, score), features in zip(above, theirs, strict=True):
            reason = disagreement(mine, features, self.guards, same, opposite)
            if reason is not None:
                self.counts[f"rejected:{reason}"] += 1
                continue
            if self.judge is None:
                self.counts["hits"] += 1
                return SimilarityMatch(record.entry_id, score, record.text)
            passed.append((record, score))
        if not passed:
            return None
        return await self._judge(prompt, passed)

    def _set_judge_thresholds(self, judge: PairJudge) -> None:
        """One threshold per calibrated language, from the false-hit target (or the
        configured threshold, which holds for every language)."""
        fixed = self.config.judge_threshold
        target = self.config.max_false_hit_rate

        def threshold(language: str | None = None) -> float:
            return fixed if fixed is not None else judge.threshold_for(target, language)

        assert judge.calibration is not None
        self.judge_threshold = threshold()
        self.judge_thresholds = {code: threshold(code) for code in judge.calibration.languages}

    def threshold_of(self, language: str) -> float:
        """The judge's probability threshold for prompts in ``language``."""
        if self.judge_threshold is None:
            raise HandlerStateError("the pair judge is off or not started")
        return self.judge_thresholds.get(language, self.judge_threshold)

    async def _judge(
        self, prompt: PreparedPrompt, passed: list[tuple[VectorRecord, float]]
    ) -> SimilarityMatch | None:
        """The closest candidate if the judge finds it likely enough to ask the same,
        else the most likely of the others if likely enough.

        A paraphrase is usually the closest candidate, so reading it alone
        first makes most hits cost one pair's forward pass instead of one per
        candidate. Either way the answer clears the calibrated threshold.
        """
        assert self.judge is not None
        threshold = self.threshold_of(prompt.language)
        ordered = sorted(passed, key=lambda candidate: -candidate[1])
        for group in (ordered[:1], ordered[1:]):
            if not group:
                continue
            probabilities = await self.judge.score([(prompt.text, r.text) for r, _ in group])
            self.counts["judged"] += len(group)
            best = int(np.argmax(probabilities))
            if probabilities[best] >= threshold:
                record, score = group[best]
                self.counts["hits"] += 1
                return SimilarityMatch(record.entry_id, score, record.text,
                                       float(probabilities[best]))  # fmt: skip
        self.counts["rejected:judge"] += 1
        return None

    async def decide_pairs(self, pairs: list[tuple[str, str]]) -> list[PairVerdict]:
        """Decide each pair as :meth:`match` would with ``a`` as the only stored prompt.

        For evaluation: every guard is also judged alone, and the judge scores
        every pair above the floor whatever the guards say, so one run can report
        cosine alone, the judge alone and any set of guards.
        """
        self._ensure_started()
        texts = sorted({text for pair in pairs for text in pair})
        vectors = dict(
            zip(texts, await self.workers.run(self.embedder.embed_fitting, texts), strict=True)
        )
        features = dict(zip(texts, await self.preprocessor.process(texts), strict=True))
        thesaurus = self.preprocessor.thesaurus
        same = thesaurus.same if thesaurus is not None else None
        opposite = thesaurus.opposite if thesaurus is not None else None
        floor = self.config.threshold if self.judge is None else self.config.judge_floor
        cosines: list[float | None] = []
        vetoes: list[dict[str, bool]] = []
        for a, b in pairs:
            va, vb = vectors[a], vectors[b]
            cosines.append(None if va is None or vb is None else float(va @ vb))
            alone = {}
            for guard in GUARDS:
                only = GuardSettings(**{g: g == guard for g in GUARDS})
                alone[guard] = (
                    disagreement(features[b], features[a], only, same, opposite) is not None
                )
            vetoes.append(alone)
        judged = [i for i, c in enumerate(cosines) if c is not None and c >= floor]
        probabilities: list[float | None] = [None] * len(pairs)
        if self.judge is not None and judged:
            scored = await self.judge.score(
                [(features[pairs[i][1]].text, features[pairs[i][0]].text) for i in judged]
            )
            for i, probability in zip(judged, scored, strict=True):
                probabilities[i] = float(probability)
        verdicts = []
        for (a, b), cosine, alone, probability in zip(
            pairs, cosines, vetoes, probabilities, strict=True
        ):
            vetoed = disagreement(features[b], features[a], self.guards, same, opposite)
            hit = cosine is not None and cosine >= floor and vetoed is None
            if self.judge is not None:
                threshold = self.threshold_of(detect_language(b))
                hit = hit and probability is not None and probability >= threshold
            verdicts.append(PairVerdict(cosine, alone, probability, hit))
        return verdicts

    async def index_prompt(self, prompt: PreparedPrompt, entry_id: str, expires_at: float) -> None:
        """Index a prepared prompt under its cache entry id (and share it through Redis)."""
        index = self._ensure_started()
        if prompt.vector is None:
            return  # never matchable: nothing to index
        record = VectorRecord(
            entry_id=entry_id,
            namespace=prompt.namespace,
            fingerprint=prompt.fingerprint,
            text=prompt.text,
            expires_at=expires_at,
            vector=prompt.vector,
        )
        await asyncio.to_thread(index.add, record)
        self.counts["added"] += 1
        if self._store is not None and self._redis_usable():
            try:
                await asyncio.wait_for(
                    self._slots.run(self._store.put(record, expires_at - self.clock())),
                    self.redis_timeout_s * 2,
                )
            except Exception as exc:
                self._failed("put", exc)
            else:
                self._redis_ok()

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
        if self._store is not None and self._redis_usable():
            try:
                await asyncio.wait_for(
                    self._slots.run(self._store.delete(namespace, entry_id)),
                    self.redis_timeout_s * 2,
                )
            except Exception as exc:
                self._failed("delete", exc)
            else:
                self._redis_ok()
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

        Raises:
            CacheClearError: Redis could not be reached; this process's index is cleared.
        """
        index = self._ensure_started()
        dropped = await asyncio.to_thread(index.remove_namespace, namespace)
        # Kept features hold prompt texts; not keyed by namespace, they all go.
        self._features.clear()
        if self._store is not None:
            try:
                await asyncio.wait_for(
                    self._slots.run(self._store.delete_namespace(namespace)),
                    self.redis_timeout_s * 8,
                )
            except Exception as exc:
                self._failed("clear", exc)
                raise CacheClearError(["semantic-index-redis"], dropped) from exc
        return dropped

    # ------------------------------------------------------------------ reporting

    @property
    def state(self) -> str:
        """``not_started``, ``degraded`` (its Redis failing) or ``ok``; cheap to read."""
        if self.index is None:
            return "not_started"
        return "degraded" if self._redis_failing else "ok"

    def describe(self) -> dict[str, Any]:
        """State and figures for health checks."""
        if self.index is None:
            return {"state": self.state}
        return {
            "state": self.state,
            "startup_s": self.startup_s,
            "nlp_startup_s": self.preprocessor.startup_s,
            "embedder_startup_s": self.embedder.startup_s,
            "vectors": len(self.index),
            "partitions": self.index.partitions(),
            "evictions": self.index.evictions,
            "embedding_batches": self.embedder.batches,
            "embedded": self.embedder.embedded,
            "threshold": self.config.threshold if self.judge is None else None,
            "judge_floor": self.config.judge_floor if self.judge is not None else None,
            "judge_threshold": self.judge_threshold,
            "judge_thresholds": dict(self.judge_thresholds),
            "judge_startup_s": self.judge.startup_s if self.judge is not None else None,
            "shared_through_redis": self._store is not None,
            "last_error": self.last_error,
            **dict(self.counts),
        }

    def _redis_usable(self) -> bool:
        """False within the skip window after a failure (the write stays local)."""
        if time.monotonic() < self._skip_redis_until:
            self.counts["redis_skipped"] += 1
            return False
        return True

    def _redis_ok(self) -> None:
        if self._redis_failing:
            logger.info("Semantic index: Redis is back")
        self._redis_failing = False

    def _failed(self, operation: str, exc: Exception) -> None:
        self.counts["redis_errors"] += 1
        self.last_error = f"{operation}: {type(exc).__name__}: {exc}"
        self._skip_redis_until = time.monotonic() + self.retry_interval_s
        # One warning when Redis starts failing; the rest of an outage at DEBUG.
        log = logger.debug if self._redis_failing else logger.warning
        self._redis_failing = True
        log("Semantic index %s failed in Redis, kept local: %s", operation, exc)

    def _ensure_started(self) -> VectorIndex:
        if self.index is None:
            raise HandlerStateError("SimilaritySearchHelper is not started: await start() first")
        return self.index
