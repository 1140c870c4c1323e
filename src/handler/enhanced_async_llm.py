"""``EnhancedAsyncLLM``: vLLM's ``AsyncLLM`` with a cache in its generate path.

The class is a true subclass: ``from_engine_args`` and ``from_vllm_config``
return it, its constructor takes everything ``AsyncLLM``'s does (its own
collaborators are keyword-only), and ``generate`` keeps vLLM's semantics —
streaming per ``RequestOutputKind``, abort when the caller stops iterating or
is cancelled, ``EngineDeadError`` raised as is. A request answered from cache
streams ``CachedRequestOutput`` objects, which are ``RequestOutput`` objects
that also say where the answer came from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM

from src.cache.entry import STORABLE_FINISH_REASONS, CachedCompletion, CacheEntry
from src.cache.key import (
    RequestKey,
    UncacheableRequest,
    make_request_key,
    normalize_prompt,
    partition_fingerprint,
)
from src.cache.manager import CacheHit, MultiLevelCacheManager
from src.config import CacheConfig
from src.handler.metrics import SEMANTIC_SCORE, observe_lookup, track
from src.handler.outputs import StreamAccumulator
from src.handler.requests import check_wire_types
from src.similarity.helper import PreparedPrompt, SimilaritySearchHelper

logger = logging.getLogger(__name__)

#: Background writes (Redis, vector index) running at once before writes go inline.
MAX_PENDING_WRITES = 1024

__all__ = [
    "CacheControl",
    "CacheInfo",
    "CachedRequestOutput",
    "EngineCacheStats",
    "EnhancedAsyncLLM",
]


@dataclass(frozen=True, slots=True)
class CacheControl:
    """What one request may do with the cache (``generate(..., cache_control=)``).

    Attributes:
        read: Serve a stored answer (exact or paraphrase) when there is one.
        write: Store the engine's answer (and index its prompt for paraphrases).
        semantic: Take part in the paraphrase stage at all; False is exact only.
        semantic_text: The text the paraphrase stage compares, when it is not
            the prompt itself (a chat request's last user message, say).
        partition: Everything else that must be equal for a paraphrase to answer
            (for a chat, the system prompt, earlier turns and options). Two
            requests of different partitions are never each other's paraphrase.
        on_decision: Called once, when the request's path is known, with that
            path (``"memory"``, ``"redis"``, ``"in_flight"``, ``"semantic"``,
            ``"engine"`` or ``"bypass"``) and a semantic hit's score.
    """

    read: bool = True
    write: bool = True
    semantic: bool = True
    semantic_text: str | None = None
    partition: str | None = None
    on_decision: Callable[[str, float | None], None] | None = None


_DEFAULT_CONTROL = CacheControl()


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """Where a cached answer came from.

    Attributes:
        level: ``"memory"``, ``"redis"``, ``"in_flight"`` (an identical request
            running at the same time) or ``"semantic"``.
        key: Digest of the entry that answered.
        score: Similarity score of a semantic hit, else None.
        entry_id: Id of the matched entry of a semantic hit, else None.
    """

    level: str
    key: str
    score: float | None = None
    entry_id: str | None = None


class CachedRequestOutput(RequestOutput):
    """A ``RequestOutput`` served from cache; ``cache_info`` says from where."""

    def __init__(self, *args: Any, cache_info: CacheInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_info = cache_info


@dataclass(slots=True)
class EngineCacheStats:
    """What the generate path did with the requests it saw."""

    requests: int = 0
    engine_requests: int = 0
    bypassed: int = 0
    exact_hits: int = 0
    in_flight_joins: int = 0
    semantic_hits: int = 0
    semantic_stale: int = 0
    semantic_errors: int = 0
    stored: int = 0
    not_stored: int = 0
    #: Semantic hits decided before the engine's first output; its request was aborted.
    lookups_won: int = 0
    #: Lookups abandoned because the engine's first output came first (race policy).
    lookups_lost: int = 0
    #: Lookups given up after the hold policy's wait.
    lookups_timed_out: int = 0
    #: Lookups skipped because too many were pending (the stage sheds load).
    lookups_shed: int = 0
    #: Prompt tokens of engine requests aborted for a semantic hit (prefill possibly spent).
    wasted_prefill_tokens: int = 0
    #: Exact hits by the level that served them (a level's own hit count also
    #: counts the reads of semantic hits' answers).
    exact_hits_by_level: dict[str, int] = field(default_factory=dict)


class EnhancedAsyncLLM(AsyncLLM):
    """An ``AsyncLLM`` that answers repeated requests from a response cache.

    Args:
        *args: Positional arguments of ``AsyncLLM``.
        cache: The response cache; None serves every request from the engine.
        cache_config: Caching policy (TTL, default namespace, sampled outputs).
        similarity: Paraphrase lookup over the cache's answers; None for exact hits only.
        clock: Wall clock used for entry timestamps; tests inject their own.
        **kwargs: Keyword arguments of ``AsyncLLM``.
    """

    def __init__(
        self,
        *args: Any,
        cache: MultiLevelCacheManager | None = None,
        cache_config: CacheConfig | None = None,
        similarity: SimilaritySearchHelper | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.attach(cache=cache, cache_config=cache_config, similarity=similarity, clock=clock)

    @classmethod
    def from_vllm_config(  # type: ignore[override]
        cls,
        *args: Any,
        cache: MultiLevelCacheManager | None = None,
        cache_config: CacheConfig | None = None,
        similarity: SimilaritySearchHelper | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> EnhancedAsyncLLM:
        """``AsyncLLM.from_vllm_config`` plus this class's collaborators."""
        engine = super().from_vllm_config(*args, **kwargs)
        assert isinstance(engine, EnhancedAsyncLLM)
        engine.attach(cache=cache, cache_config=cache_config, similarity=similarity, clock=clock)
        return engine

    @classmethod
    def from_engine_args(  # type: ignore[override]
        cls,
        *args: Any,
        cache: MultiLevelCacheManager | None = None,
        cache_config: CacheConfig | None = None,
        similarity: SimilaritySearchHelper | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> EnhancedAsyncLLM:
        """``AsyncLLM.from_engine_args`` plus this class's collaborators."""
        engine = super().from_engine_args(*args, **kwargs)
        assert isinstance(engine, EnhancedAsyncLLM)
        engine.attach(cache=cache, cache_config=cache_config, similarity=similarity, clock=clock)
        return engine

    def attach(
        self,
        *,
        cache: MultiLevelCacheManager | None,
        cache_config: CacheConfig | None = None,
        similarity: SimilaritySearchHelper | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wire the collaborators (no I/O; whoever built them starts and closes them)."""
        # Response cache: request key -> stored answer, memory first, then Redis.
        self.cache = cache
        if cache is not None:
            cache.on_level_get = observe_lookup
        self.cache_config = cache_config or CacheConfig()
        # Paraphrase lookup: prompt -> embedding -> FAISS -> guards (spaCy) -> judge.
        self.similarity = similarity if cache is not None else None
        self.cache_stats = EngineCacheStats()
        self._clock = clock
        # Digest -> the answer of the identical request now running (None if it failed).
        self._in_flight_answers: dict[str, asyncio.Future[CacheEntry | None]] = {}
        # Semantic lookups (embedding and search) started and not yet finished.
        self._pending_lookups = 0
        # (namespace, digest) -> the task writing that answer to Redis and the index.
        self._pending_writes: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Prompt preparations handed to a write (it indexes the vector, then discards).
        self._writes_own: set[asyncio.Task[PreparedPrompt | None]] = set()
        # One DEBUG line per request (HandlerConfig.features.enable_detailed_logging).
        self.detailed_logging = False
        track(self)

    async def generate(  # type: ignore[override]
        self,
        prompt: Any,
        sampling_params: SamplingParams,
        request_id: str,
        *,
        namespace: str | None = None,
        cache_control: CacheControl | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[RequestOutput, None]:
        """Generate outputs for one request, from cache when an answer is stored.

        Args:
            prompt: Anything ``AsyncLLM.generate`` accepts.
            sampling_params: vLLM sampling parameters.
            request_id: Unique id of the request.
            namespace: Scope of cached answers; defaults to
                ``cache_config.default_namespace``. Answers never cross namespaces.
            cache_control: What this request may read from and write to the
                cache; everything by default.
            **kwargs: Passed through to ``AsyncLLM.generate`` (``lora_request``,
                ``priority``, ...).

        Yields:
            vLLM ``RequestOutput`` objects as the engine streams them, or one
            finished ``CachedRequestOutput`` for an answer from cache.
        """
        # 0. Refuse parameters the engine process cannot decode (it would stop on them).
        check_wire_types(sampling_params)
        self.cache_stats.requests += 1
        started = time.perf_counter()
        control = cache_control or _DEFAULT_CONTROL
        # 1. Key the request; an uncacheable one goes straight to the engine.
        key = self._request_key(prompt, sampling_params, namespace, control, kwargs)
        if key is None or self.cache is None:
            self.cache_stats.engine_requests += 1
            self._decided(control, None, "bypass", started)
            async for output in super().generate(prompt, sampling_params, request_id, **kwargs):
                yield output
            return

        # 2. Exact lookup: memory, then Redis. The memory level holds a new answer at
        #    once; only when it does not (evicted, cleared) is this key's pending
        #    write to Redis waited for, and the lookup made again.
        if control.read:
            hit = await self.cache.lookup(key.namespace, key.digest)
            writing = self._pending_writes.get((key.namespace, key.digest))
            if hit is None and writing is not None:
                await asyncio.wait({writing})  # its outcome is not ours: never raises
                hit = await self.cache.lookup(key.namespace, key.digest)
            if hit is not None:
                yield self._exact_hit(hit, key, control, prompt, request_id, started)
                return
            observe_lookup("exact", time.perf_counter() - started)

            # 3. Join an identical request already running; run our own if it fails.
            running = self._in_flight_answers.get(key.digest)
            if running is not None:
                entry = await asyncio.shield(running)
                if entry is not None:
                    self.cache_stats.in_flight_joins += 1
                    self._decided(control, key, "in_flight", started)
                    yield _replay(entry, prompt, request_id, CacheInfo("in_flight", key.digest))
                    return

        # From here on this request leads: identical ones arriving now wait for it.
        answer = self._lead(key) if control.write else None
        preparing = self._start_preparing(key) if control.semantic else None
        engine: AsyncGenerator[RequestOutput, None] | None = None
        first: asyncio.Future[RequestOutput] | None = None
        try:
            # 4. Engine request submitted at once; the semantic lookup runs beside it
            #    and answers only if it finds a paraphrase before the engine's first
            #    output is released (SimilarityConfig.lookup_policy).
            engine = self._generate_and_store(
                key, preparing if control.write else None, answer, prompt, sampling_params,
                request_id, store=control.write, **kwargs,
            )  # fmt: skip
            first = asyncio.ensure_future(anext(engine))
            found = await self._race_lookup(preparing if control.read else None, first)
            if found is not None:
                # 5a. A paraphrase's answer: abort the engine request, serve the hit.
                await _settle(first)
                await engine.aclose()
                entry, info = found
                if answer is not None and not answer.done():  # done: the engine finished too
                    answer.set_result(entry)
                # The answer is the matched prompt's; the prompt fields are this one's.
                tokens = self._prompt_token_ids(prompt)
                self.cache_stats.semantic_hits += 1
                self.cache_stats.wasted_prefill_tokens += len(tokens or ())
                if info.score is not None:
                    SEMANTIC_SCORE.observe(info.score)
                self._decided(control, key, "semantic", started, info.score)
                yield _replay(entry, prompt, request_id, info, prompt_token_ids=tokens)
                return

            # 5b. The engine's stream, storing the answer (and its vector) once complete.
            self.cache_stats.engine_requests += 1
            self._decided(control, key, "engine", started)
            try:
                output = await first
            except StopAsyncIteration:
                return
            yield output
            async for output in engine:
                yield output
        finally:
            # Followers are released first: nothing below may leave them waiting.
            if answer is not None:
                if not answer.done():
                    answer.set_result(None)  # failed or cancelled: followers run their own
                if self._in_flight_answers.get(key.digest) is answer:
                    del self._in_flight_answers[key.digest]
            if preparing is not None and preparing not in self._writes_own:
                _discard(preparing)
            try:
                if first is not None:
                    await _settle(first)  # the engine stream cannot close while it runs
            finally:
                if engine is not None:
                    await engine.aclose()

    def answer_now(
        self,
        prompt: Any,
        sampling_params: SamplingParams,
        request_id: str,
        *,
        namespace: str | None = None,
    ) -> RequestOutput | None:
        """The request's answer if the in-process cache level holds it, without awaiting.

        A hit here is counted and reported exactly as ``generate`` would report
        it. None means nothing is decided or counted: call ``generate``, which
        looks in every level. The parameters must have passed ``check_wire_types``.
        """
        if self.cache is None:
            return None
        started = time.perf_counter()
        key = self._request_key(prompt, sampling_params, namespace, _DEFAULT_CONTROL, {},
                                count=False)  # fmt: skip
        if key is None:
            return None
        hit = self.cache.lookup_now(key.namespace, key.digest)
        if hit is None:
            return None
        self.cache_stats.requests += 1
        return self._exact_hit(hit, key, _DEFAULT_CONTROL, prompt, request_id, started)

    def _exact_hit(
        self,
        hit: CacheHit,
        key: RequestKey,
        control: CacheControl,
        prompt: Any,
        request_id: str,
        started: float,
    ) -> RequestOutput:
        """Count an exact hit and turn it into the request's output."""
        observe_lookup("exact", time.perf_counter() - started)
        self.cache_stats.exact_hits += 1
        by_level = self.cache_stats.exact_hits_by_level
        by_level[hit.level] = by_level.get(hit.level, 0) + 1
        self._decided(control, key, hit.level, started)
        return _replay(hit.entry, prompt, request_id, CacheInfo(hit.level, key.digest))

    def _decided(
        self,
        control: CacheControl,
        key: RequestKey | None,
        path: str,
        started: float,
        score: float | None = None,
    ) -> None:
        """Tell the request's caller its path, and log it in detail when asked.

        The log line never holds the prompt, only its key's prefix.
        """
        if control.on_decision is not None:
            control.on_decision(path, score)
        if self.detailed_logging and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "request key=%s ns=%s path=%s score=%s decided_in=%.3fms",
                key.digest[:12] if key is not None else "-",
                key.namespace if key is not None else "-",
                path,
                "-" if score is None else f"{score:.4f}",
                (time.perf_counter() - started) * 1e3,
            )

    def _prompt_token_ids(self, prompt: Any) -> list[int] | None:
        """The token ids of a prompt: its own when it has them, else its text's."""
        if isinstance(prompt, dict) and prompt.get("prompt_token_ids"):
            return list(prompt["prompt_token_ids"])
        text = _prompt_text(prompt)
        tokenizer = self.tokenizer
        if tokenizer is None or text is None:
            return None
        return list(tokenizer.encode(normalize_prompt(text)))

    def _lead(self, key: RequestKey) -> asyncio.Future[CacheEntry | None] | None:
        """Register this request as the one computing ``key``'s answer, if none is."""
        if not self.cache_config.deduplicate_in_flight or key.digest in self._in_flight_answers:
            return None
        answer: asyncio.Future[CacheEntry | None] = asyncio.get_running_loop().create_future()
        self._in_flight_answers[key.digest] = answer
        return answer

    def _request_key(
        self,
        prompt: Any,
        params: SamplingParams,
        namespace: str | None,
        control: CacheControl,
        kwargs: dict[str, Any],
        *,
        count: bool = True,
    ) -> RequestKey | None:
        """The request's key, or None when it bypasses the cache (counted if ``count``)."""
        if self.cache is None:
            return None
        if not control.read and not control.write:
            if count:
                self.cache_stats.bypassed += 1
            return None
        try:
            key = make_request_key(
                prompt,
                params,
                model=self.model_config.model,
                namespace=namespace or self.cache_config.default_namespace,
                lora=kwargs.get("lora_request"),
                cache_sampled=self.cache_config.cache_sampled_outputs,
                tokenization=kwargs.get("tokenization_kwargs"),
            )
        except UncacheableRequest as why:
            if count:
                self.cache_stats.bypassed += 1
                logger.debug("Request bypasses the cache: %s", why)
            return None
        if control.semantic_text is None and control.partition is None:
            return key
        # The paraphrase stage compares the caller's text, within the caller's partition.
        return dataclasses.replace(
            key,
            fingerprint=partition_fingerprint(key.fingerprint, control.partition),
            prompt_text=(
                normalize_prompt(control.semantic_text)
                if control.semantic_text is not None
                else key.prompt_text
            ),
        )

    def _start_preparing(self, key: RequestKey) -> asyncio.Task[PreparedPrompt | None] | None:
        """Embed and preprocess the prompt in the background, unless the stage is off
        or saturated (then the request is a plain miss: load is shed, not queued)."""
        if self.similarity is None or key.prompt_text is None:
            return None
        limit = self.similarity.config.max_pending_lookups
        if self._pending_lookups >= limit:
            self.cache_stats.lookups_shed += 1
            return None
        self._pending_lookups += 1
        task = asyncio.create_task(self._prepare(key))
        task.add_done_callback(self._lookup_done)
        return task

    def _lookup_done(self, _task: asyncio.Task[Any]) -> None:
        self._pending_lookups -= 1

    async def _race_lookup(
        self,
        preparing: asyncio.Task[PreparedPrompt | None] | None,
        first: asyncio.Future[RequestOutput],
    ) -> tuple[CacheEntry, CacheInfo] | None:
        """The semantic hit, if decided before the engine's first output may go out.

        ``race``: the lookup has until the engine's first output. ``hold``: the
        engine's first output waits up to ``hold_ms`` for the lookup.
        """
        if preparing is None or self.similarity is None:
            return None
        lookup = asyncio.create_task(self._lookup(preparing))
        config = self.similarity.config
        if config.lookup_policy == "race":
            racers: set[asyncio.Future[Any]] = {lookup, first}
            await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.wait({lookup}, timeout=config.hold_ms / 1000.0)
        if not lookup.done():
            lookup.cancel()
            if config.lookup_policy == "race":
                self.cache_stats.lookups_lost += 1
            else:
                self.cache_stats.lookups_timed_out += 1
            return None
        found = lookup.result()
        if found is not None and _whole_answer(first):
            # The engine finished meanwhile (FINAL_ONLY, or a short answer under
            # hold): its own answer wins over a paraphrase's, or over itself.
            self.cache_stats.lookups_lost += 1
            return None
        if found is not None:
            self.cache_stats.lookups_won += 1
        return found

    async def _lookup(
        self, preparing: asyncio.Task[PreparedPrompt | None]
    ) -> tuple[CacheEntry, CacheInfo] | None:
        # Shielded: abandoning the lookup must not stop the embedding, which the
        # answer's indexing still needs.
        prepared = await asyncio.shield(preparing)
        return None if prepared is None else await self._semantic_hit(prepared)

    async def _prepare(self, key: RequestKey) -> PreparedPrompt | None:
        """The embedding of a text prompt, or None when there is no semantic stage."""
        if self.similarity is None or key.prompt_text is None:
            return None
        began = time.perf_counter()
        try:
            return await self.similarity.prepare(
                key.prompt_text, namespace=key.namespace, fingerprint=key.fingerprint
            )
        except Exception as exc:  # a failing semantic stage is a miss, not an outage
            self.cache_stats.semantic_errors += 1
            logger.warning("Semantic preprocessing failed, treated as a miss: %s", exc)
            return None
        finally:
            observe_lookup("semantic_prepare", time.perf_counter() - began)

    async def _semantic_hit(self, prepared: PreparedPrompt) -> tuple[CacheEntry, CacheInfo] | None:
        assert self.similarity is not None and self.cache is not None
        began = time.perf_counter()
        # Answers handed over before this lookup are visible to it.
        await self.drain_writes(prepared.namespace)
        try:
            match = await self.similarity.match(prepared)
        except Exception as exc:
            self.cache_stats.semantic_errors += 1
            logger.warning("Semantic lookup failed, treated as a miss: %s", exc)
            return None
        finally:
            observe_lookup("semantic_match", time.perf_counter() - began)
        if match is None:
            return None
        entry = await self.cache.get(prepared.namespace, match.entry_id)
        if entry is None:
            # The answer expired or was evicted everywhere: its vector is stale.
            self.cache_stats.semantic_stale += 1
            self.similarity.forget_local(prepared.namespace, match.entry_id)
            return None
        info = CacheInfo("semantic", match.entry_id, score=match.score, entry_id=match.entry_id)
        return entry, info

    async def _generate_and_store(
        self,
        key: RequestKey,
        preparing: asyncio.Task[PreparedPrompt | None] | None,
        answer: asyncio.Future[CacheEntry | None] | None,
        prompt: Any,
        params: SamplingParams,
        request_id: str,
        *,
        store: bool = True,
        **kwargs: Any,
    ) -> AsyncGenerator[RequestOutput, None]:
        assert self.cache is not None
        acc = StreamAccumulator(params.output_kind)
        stream = super().generate(prompt, params, request_id, **kwargs)
        try:
            async for output in stream:
                acc.update(output)
                if output.finished and store:
                    # Stored before the last output is handed over (a caller that
                    # stops iterating on `finished` closes this generator): the
                    # memory level now, Redis and the vector index in the background.
                    entry = self._complete_entry(key, prompt, params, acc)
                    if entry is None:
                        self.cache_stats.not_stored += 1
                    else:
                        await self._store(entry, preparing)
                    if answer is not None and not answer.done():
                        answer.set_result(entry)
                yield output
        finally:
            # Closing the stream aborts the engine request if it is still running.
            await stream.aclose()

    async def _store(
        self, entry: CacheEntry, preparing: asyncio.Task[PreparedPrompt | None] | None
    ) -> None:
        """Write an answer to the memory level now and the rest behind the request.

        The deeper levels and the vector index are written by a task, so a miss
        never waits on Redis or on its own embedding. At most
        ``MAX_PENDING_WRITES`` such tasks run; past that the write is done inline
        (back-pressure, never a lost answer).
        """
        assert self.cache is not None
        if preparing is not None:
            self._writes_own.add(preparing)
        first, *deeper = self.cache.levels
        fast = await first.set(entry)
        if fast:
            self.cache_stats.stored += 1  # counted now; else once a deeper level takes it
        write = self._write_behind(entry, preparing, fast, deeper)
        if len(self._pending_writes) >= MAX_PENDING_WRITES:
            await write
            return
        task = asyncio.create_task(write)
        where = (entry.namespace, entry.key)
        self._pending_writes[where] = task
        task.add_done_callback(lambda _t: self._write_done(where, task))

    def _write_done(self, where: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._pending_writes.get(where) is task:
            del self._pending_writes[where]

    async def _write_behind(
        self,
        entry: CacheEntry,
        preparing: asyncio.Task[PreparedPrompt | None] | None,
        fast: bool,
        deeper: list[Any],
    ) -> None:
        try:
            results = await asyncio.gather(*(level.set(entry) for level in deeper))
            stored = fast or any(results)
            if not fast:  # a memory write was counted when it was made
                if stored:
                    self.cache_stats.stored += 1
                else:
                    self.cache_stats.not_stored += 1
            if stored:
                await self._index(preparing, entry)
        finally:
            if preparing is not None:
                self._writes_own.discard(preparing)
                _discard(preparing)

    async def drain_writes(self, namespace: str | None = None) -> None:
        """Wait for the background writes now pending (of one namespace, or all)."""
        pending = [task for (ns, _), task in list(self._pending_writes.items())
                   if namespace is None or ns == namespace]  # fmt: skip
        if pending:
            await asyncio.wait(pending)

    async def _index(
        self, preparing: asyncio.Task[PreparedPrompt | None] | None, entry: CacheEntry
    ) -> None:
        if preparing is None or self.similarity is None:
            return
        try:
            prepared = await asyncio.shield(preparing)
            if prepared is None:
                return
            await self.similarity.index_prompt(prepared, entry.key, entry.expires_at)
        except Exception as exc:
            self.cache_stats.semantic_errors += 1
            logger.warning("Indexing a prompt for semantic lookup failed: %s", exc)

    def _complete_entry(
        self, key: RequestKey, prompt: Any, params: SamplingParams, acc: StreamAccumulator
    ) -> CacheEntry | None:
        """The entry for a finished stream, or None when it is not a complete answer."""
        indices = sorted(acc.texts)
        if len(indices) != params.n:
            return None
        completions = []
        for i in indices:
            reason = acc.finish_reasons.get(i)
            if reason not in STORABLE_FINISH_REASONS:
                return None
            completions.append(
                CachedCompletion(
                    index=i,
                    text=acc.texts[i],
                    token_ids=acc.tokens.get(i, []),
                    cumulative_logprob=acc.cumulative_logprobs.get(i),
                    finish_reason=reason,  # type: ignore[arg-type]
                    stop_reason=acc.stop_reasons.get(i),
                )
            )
        now = self._clock()
        return CacheEntry(
            key=key.digest,
            namespace=key.namespace,
            model=self.model_config.model,
            prompt=_prompt_text(prompt),
            prompt_token_ids=acc.prompt_token_ids,
            completions=completions,
            created_at=now,
            expires_at=now + self.cache_config.ttl_s,
        )

    def describe_similarity(self) -> dict[str, Any]:
        """The semantic stage's state and figures."""
        if self.similarity is None:
            return {"state": "disabled"}
        return self.similarity.describe()

    def describe_cache(self) -> dict[str, Any]:
        """The generate path's counters and the cache's state, for health and stats."""
        if self.cache is None:
            return {"state": "disabled", **asdict(self.cache_stats)}
        return {
            **self.cache.describe(),
            **asdict(self.cache_stats),
            "in_flight_keys": len(self._in_flight_answers),
        }


async def _settle(first: asyncio.Future[RequestOutput]) -> None:
    """Cancel the engine's first output if pending, and wait until it has ended.

    The engine's stream can be closed (its request aborted) only once nothing
    runs inside it. A cancellation of the caller meanwhile is held, not lost:
    it is raised once the first output has ended.
    """
    if not first.done():
        first.cancel()
    interrupted = False
    while not first.done():
        try:
            await asyncio.wait({first})
        except asyncio.CancelledError:
            interrupted = True
    if not first.cancelled():
        first.exception()  # retrieved: an engine error after a hit is not this answer's
    if interrupted:
        raise asyncio.CancelledError


def _whole_answer(first: asyncio.Future[RequestOutput]) -> bool:
    """Whether the engine's first output is already here and is its last."""
    if not first.done() or first.cancelled() or first.exception() is not None:
        return False
    return bool(first.result().finished)


def _discard(preparing: asyncio.Task[PreparedPrompt | None]) -> None:
    """Stop the embedding of a prompt no longer needed."""
    if not preparing.done():
        preparing.cancel()
    elif not preparing.cancelled():
        preparing.exception()  # retrieved: a failure here was already a miss


def _prompt_text(prompt: Any) -> str | None:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):
        text = prompt.get("prompt")
        return text if isinstance(text, str) else None
    return None


def _replay(
    entry: CacheEntry,
    prompt: Any,
    request_id: str,
    info: CacheInfo,
    *,
    prompt_token_ids: list[int] | None = None,
) -> RequestOutput:
    """A stored answer as the single, finished output of a new request.

    One finished output is what vLLM itself yields for every output kind when
    the whole answer is ready at once: the full text is both the cumulative text
    and the delta.
    """
    completions = [
        CompletionOutput(
            index=c.index,
            text=c.text,
            token_ids=list(c.token_ids),
            cumulative_logprob=c.cumulative_logprob,
            logprobs=None,
            finish_reason=c.finish_reason,
            stop_reason=c.stop_reason,
        )
        for c in entry.completions
    ]
    return CachedRequestOutput(
        request_id=request_id,
        prompt=_prompt_text(prompt),
        prompt_token_ids=(
            prompt_token_ids
            if prompt_token_ids is not None
            else list(entry.prompt_token_ids)
            if entry.prompt_token_ids
            else None
        ),
        prompt_logprobs=None,
        outputs=completions,
        finished=True,
        cache_info=info,
    )
