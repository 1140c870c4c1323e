"""``EnhancedVLLMHandler``: a thin request front over ``EnhancedAsyncLLM``.

The handler owns the engine's lifecycle, validates what callers submit, runs
each request in its own task and streams its outputs through a
:class:`~src.handler.outputs.RequestCollector`. Caching, NLP and similarity
live in the engine's generate path, not here.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vllm.outputs import RequestOutput
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

from src.cache.manager import MultiLevelCacheManager
from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
from src.errors import CacheClearError, EngineStartError, HandlerStateError, InvalidRequestError
from src.handler.enhanced_async_llm import CacheInfo, EnhancedAsyncLLM
from src.handler.legacy import LegacyPollingAPI
from src.handler.outputs import ErrorKind, GenerationOutput, RequestCollector, StreamAccumulator
from src.handler.requests import (
    check_namespace,
    check_prompt,
    check_request_id,
    copy_sampling_params,
    to_sampling_params,
)
from src.similarity.helper import SimilaritySearchHelper

logger = logging.getLogger(__name__)

__all__ = ["EnhancedVLLMHandler", "HandlerState", "HandlerStats"]


class HandlerState(enum.StrEnum):
    """Where a handler is in its lifecycle."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(slots=True)
class HandlerStats:
    """Request counters of one handler since it started."""

    submitted: int = 0
    served: int = 0
    failed: int = 0
    aborted: int = 0


class EnhancedVLLMHandler(LegacyPollingAPI):
    """Serve requests through an ``EnhancedAsyncLLM`` and stream their outputs.

    The constructor only wires settings; ``start()`` loads the model. Use it as
    ``async with handler:`` or pair ``start()`` with ``stop()``.

    Args:
        vllm_config: Model and engine settings.
        cache_config: Response-cache settings.
        similarity_config: Semantic-lookup settings.
        handler_config: Request-handling settings and feature flags.
        clock: Monotonic clock in seconds; tests inject their own.
        cache: A ready-made response cache to use instead of one built from
            ``cache_config``; the handler neither starts nor closes it.
        similarity: A ready-made, started ``SimilaritySearchHelper`` to use instead
            of one built from ``similarity_config``; likewise not closed here.
    """

    def __init__(
        self,
        vllm_config: VLLMConfig,
        cache_config: CacheConfig | None = None,
        similarity_config: SimilarityConfig | None = None,
        handler_config: HandlerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache: MultiLevelCacheManager | None = None,
        similarity: SimilaritySearchHelper | None = None,
    ) -> None:
        self.instance_id = uuid.uuid4().hex[:12]
        self.vllm_config = vllm_config
        self.cache_config = cache_config or CacheConfig()
        self.similarity_config = similarity_config or SimilarityConfig()
        self.handler_config = handler_config or HandlerConfig()
        self._clock = clock
        self._state = HandlerState.NEW
        self._engine: EnhancedAsyncLLM | None = None
        self._cache = cache
        self._owns_cache = cache is None
        self._similarity = similarity
        self._owns_similarity = similarity is None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        # Liveness: when a request last made progress, and why the engine is taken as stalled.
        self._last_progress = time.monotonic()
        self._stalled: str | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stats = HandlerStats()
        self._started_at: float | None = None
        self._startup_s: float | None = None
        self._lifecycle_lock = asyncio.Lock()
        self._stop_callbacks: list[Callable[[EnhancedVLLMHandler], object]] = []
        LegacyPollingAPI.__init__(self, clock, lambda: self.handler_config.result_ttl_s)

    # ------------------------------------------------------------------ lifecycle

    @property
    def state(self) -> HandlerState:
        """The handler's lifecycle state."""
        return self._state

    @property
    def engine(self) -> EnhancedAsyncLLM:
        """The running engine; raises if the handler is not running."""
        self._ensure_running()
        assert self._engine is not None
        return self._engine

    async def start(self) -> None:
        """Start the vLLM engine. A second call while running does nothing.

        Raises:
            HandlerStateError: The handler was already stopped.
            EngineStartError: vLLM failed to start; the handler stays unstarted.
        """
        async with self._lifecycle_lock:
            if self._state is HandlerState.RUNNING:
                return
            if self._state is not HandlerState.NEW:
                raise HandlerStateError(
                    f"handler {self.instance_id} is {self._state.value}; create a new one"
                )
            self._state = HandlerState.STARTING
            began = self._clock()
            try:
                engine_args = self.vllm_config.to_engine_args()
                await self._start_cache()
                self._make_similarity()
                # Engine start-up blocks for seconds (process spawn, model load) in a
                # thread; the embedding and NLP models load meanwhile.
                engine_start = asyncio.ensure_future(
                    asyncio.to_thread(
                        EnhancedAsyncLLM.from_engine_args,
                        engine_args,
                        cache=self._cache if self.handler_config.features.enable_cache else None,
                        cache_config=self.cache_config,
                        similarity=self._similarity if self._semantic_enabled() else None,
                    )
                )
                try:
                    await self._start_similarity()
                except BaseException:
                    # Let the engine finish starting, then shut it down: nothing leaks.
                    started = (await asyncio.gather(engine_start, return_exceptions=True))[0]
                    if isinstance(started, EnhancedAsyncLLM):
                        await asyncio.to_thread(started.shutdown)
                    raise
                self._engine = await engine_start
                self._engine.detailed_logging = self.handler_config.features.enable_detailed_logging
            except Exception as exc:
                self._state = HandlerState.NEW
                await self._close_similarity()
                await self._close_cache()
                raise EngineStartError(
                    f"could not start the system for model {self.vllm_config.model!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self._started_at = self._clock()
            self._startup_s = self._started_at - began
            self._state = HandlerState.RUNNING
            if self.handler_config.engine_stall_timeout_s > 0:
                self._watchdog = asyncio.create_task(self._watch_engine(), name="engine-watchdog")
            logger.info(
                "Handler %s started model %s in %.1f s",
                self.instance_id,
                self.vllm_config.model,
                self._startup_s,
            )

    async def stop(self) -> None:
        """Stop accepting requests, let in-flight ones finish, then shut the engine down.

        Requests still running after ``handler_config.shutdown_timeout_s`` are
        aborted; their streams end with an error output. Safe to call twice.
        """
        async with self._lifecycle_lock:
            if self._state is HandlerState.STOPPED:
                return
            was_running = self._state is HandlerState.RUNNING
            self._state = HandlerState.STOPPING
            if self._watchdog is not None:
                self._watchdog.cancel()
            pending = list(self._in_flight.values())
            if pending:
                _, late = await asyncio.wait(
                    pending, timeout=self.handler_config.shutdown_timeout_s
                )
                for task in late:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            await self._close_legacy()
            engine, self._engine = self._engine, None
            if engine is not None:
                await engine.drain_writes()
                await asyncio.to_thread(engine.shutdown)
            await self._close_similarity()
            await self._close_cache()
            self._state = HandlerState.STOPPED
            if was_running:
                logger.info("Handler %s stopped", self.instance_id)
        for callback in self._stop_callbacks:
            callback(self)

    async def _start_cache(self) -> None:
        if not self.handler_config.features.enable_cache:
            return
        if self._cache is None:
            self._cache = MultiLevelCacheManager.from_config(self.cache_config)
        if self._owns_cache:
            await self._cache.start()

    async def _close_cache(self) -> None:
        if self._owns_cache and self._cache is not None:
            cache, self._cache = self._cache, None
            await cache.close()

    def _semantic_enabled(self) -> bool:
        features = self.handler_config.features
        return (
            features.enable_cache
            and features.enable_similarity
            and features.enable_nlp  # the guards need the NLP stage
            and self.similarity_config.enabled
        )

    def _make_similarity(self) -> None:
        """Create the similarity helper (its models are loaded by _start_similarity)."""
        if self._semantic_enabled() and self._similarity is None:
            self._similarity = SimilaritySearchHelper.for_cache(
                self.similarity_config, self.cache_config
            )

    async def _start_similarity(self) -> None:
        if not self._semantic_enabled() or self._similarity is None:
            return
        if self._owns_similarity:
            await self._similarity.start()
        if self._cache is not None:
            self._similarity.follow_evictions(self._cache)

    async def _close_similarity(self) -> None:
        if self._owns_similarity and self._similarity is not None:
            similarity, self._similarity = self._similarity, None
            await similarity.stop()

    def add_stop_callback(self, callback: Callable[[EnhancedVLLMHandler], object]) -> None:
        """Call ``callback(handler)`` once the handler has stopped."""
        self._stop_callbacks.append(callback)

    async def __aenter__(self) -> EnhancedVLLMHandler:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _ensure_running(self) -> None:
        if self._stalled is not None and self._state is HandlerState.RUNNING:
            raise HandlerStateError(f"{self._stalled}; stop and restart the handler")
        if self._state is HandlerState.RUNNING:
            return
        if self._state in (HandlerState.NEW, HandlerState.STARTING):
            raise HandlerStateError("handler is not started: await handler.start() first")
        raise HandlerStateError(f"handler is {self._state.value}: it takes no more requests")

    # ------------------------------------------------------------------ requests

    async def add_request_v2(
        self,
        prompt: str | dict[str, Any],
        sampling_params: SamplingParams | dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        namespace: str | None = None,
    ) -> RequestCollector:
        """Submit one request; its outputs stream from ``collector.get_outputs()``.

        Args:
            prompt: A non-blank string or a vLLM prompt dict.
            sampling_params: ``SamplingParams``, a dict of its fields, or None for
                ``max_tokens=handler_config.default_max_tokens`` and vLLM defaults.
            request_id: Your id for the request; a fresh one when None.
            namespace: Tenant or scope of the request; cached answers never cross it.

        Returns:
            The collector of the running request.

        Raises:
            InvalidRequestError: The prompt, parameters, id or namespace are unusable.
            HandlerStateError: The handler is not running.
        """
        self._ensure_running()
        submitted = self._clock()
        checked_prompt = check_prompt(prompt)
        params = to_sampling_params(
            sampling_params, self.handler_config.default_max_tokens, copy=False
        )
        namespace = check_namespace(namespace)
        request_id = secrets.token_hex(16) if request_id is None else check_request_id(request_id)
        if request_id in self._in_flight:
            raise InvalidRequestError(f"request_id {request_id!r} is already in flight")
        self._stats.submitted += 1
        self._log_request("Request %s submitted (namespace %s)", request_id, namespace)

        # An answer held in memory is handed over now: no task, no wait for the loop.
        try:
            answer = self.engine.answer_now(checked_prompt, params, request_id, namespace=namespace)
        except Exception as exc:  # the request's own run meets it and reports it in its stream
            logger.debug("Request %s: no answer at once (%s)", request_id, _describe(exc))
            answer = None
        if answer is not None:
            collector = RequestCollector(request_id, lambda: None)
            delivery = self._delivery(collector, params, namespace, submitted)
            delivery.forward(answer)
            self._served(delivery)
            return collector

        if params is sampling_params:  # the request outlives this call: the caller's may change
            params = copy_sampling_params(params)
        if not self._in_flight:
            self._last_progress = time.monotonic()  # idle time is not a stall
        collector = RequestCollector(request_id, lambda: self._abort(request_id))
        task = asyncio.create_task(
            self._run(self.engine, collector, checked_prompt, params, namespace),
            name=f"request-{request_id}",
        )
        self._in_flight[request_id] = task
        task.add_done_callback(lambda _: self._request_done(collector, namespace))
        return collector

    async def add_requests_v2(
        self,
        prompts: Sequence[str | dict[str, Any]],
        sampling_params: SamplingParams | dict[str, Any] | None = None,
        *,
        namespace: str | None = None,
    ) -> list[RequestCollector]:
        """Submit a batch; every prompt is checked before any is submitted.

        Returns:
            One collector per prompt, in order.
        """
        self._ensure_running()
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise InvalidRequestError("prompts must be a list of prompts")
        for i, prompt in enumerate(prompts):
            try:
                check_prompt(prompt)
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"prompts[{i}]: {exc}") from exc
        return [await self.add_request_v2(p, sampling_params, namespace=namespace) for p in prompts]

    def _request_done(self, collector: RequestCollector, namespace: str | None) -> None:
        self._in_flight.pop(collector.request_id, None)
        if not collector.finished:
            # Cancelled before its task ever ran: the stream still needs its end.
            finish_reason, error, kind = self._cut_short()
            collector._put(
                GenerationOutput(
                    request_id=collector.request_id,
                    text="",
                    delta_text="",
                    texts=(),
                    finished=True,
                    finish_reason=finish_reason,
                    error=error,
                    error_kind=kind,
                    token_ids=(),
                    metadata=_metadata(None, 0.0, 0, namespace),
                )
            )

    def _cut_short(self) -> tuple[str | None, str, ErrorKind]:
        """Count a request cancelled before its end, and say how it ended: a fatal
        error when the watchdog cancelled it (stalled engine), else an abort."""
        if self._stalled is not None:
            self._stats.failed += 1
            return None, self._stalled, "fatal"
        self._stats.aborted += 1
        return "abort", "request was aborted", "aborted"

    async def _watch_engine(self) -> None:
        """Take the engine as stalled when requests are in flight and none progresses."""
        timeout = self.handler_config.engine_stall_timeout_s
        while self._stalled is None:
            await asyncio.sleep(min(1.0, timeout / 4))
            if self._in_flight and time.monotonic() - self._last_progress > timeout:
                self._stalled = (
                    f"EngineStalledError: no output from the engine for {timeout:g} s with "
                    f"{len(self._in_flight)} requests in flight"
                )
                logger.error("Handler %s: %s", self.instance_id, self._stalled)
                for task in list(self._in_flight.values()):
                    task.cancel()

    def _abort(self, request_id: str) -> None:
        task = self._in_flight.get(request_id)
        if task is not None and not task.done():
            task.cancel()

    async def _run(
        self,
        engine: EnhancedAsyncLLM,
        collector: RequestCollector,
        prompt: str | dict[str, Any],
        params: SamplingParams,
        namespace: str | None,
    ) -> None:
        request_id = collector.request_id
        delivery = self._delivery(collector, params, namespace, self._clock())
        try:
            async for output in engine.generate(prompt, params, request_id, namespace=namespace):
                delivery.forward(output)
            if not collector.finished:
                delivery.emit(True, None, "", None)
        except asyncio.CancelledError:
            finish_reason, error, kind = self._cut_short()
            delivery.emit(True, finish_reason, "", error, kind)
            if kind == "aborted":
                self._log_request("Request %s aborted", request_id)
            raise
        except Exception as exc:
            self._stats.failed += 1
            delivery.emit(True, None, "", _describe(exc),
                          "fatal" if isinstance(exc, EngineDeadError) else "request")  # fmt: skip
            self._log_request("Request %s failed: %s", request_id, _describe(exc))
            return
        self._served(delivery)

    def _delivery(
        self,
        collector: RequestCollector,
        params: SamplingParams,
        namespace: str | None,
        submitted: float,
    ) -> _Delivery:
        def progressed() -> None:
            self._last_progress = time.monotonic()

        return _Delivery(collector, params.output_kind, namespace, self._clock, submitted,
                         progressed)  # fmt: skip

    def _served(self, delivery: _Delivery) -> None:
        self._stats.served += 1
        self._log_request("Request %s finished in %.1f ms",
                          delivery.collector.request_id, delivery.elapsed_ms())  # fmt: skip

    # ------------------------------------------------------------------ cache management

    async def clear_cache(self, namespace: str | None = None) -> int:
        """Drop the cached answers of one namespace, or all of this deployment's.

        Args:
            namespace: The namespace to clear; None clears every namespace under
                ``cache_config.key_prefix``.

        Returns:
            How many answers were removed (from the level that held the most).

        Raises:
            CacheClearError: A level (Redis, or the semantic index in Redis) could not
                be reached. Everything reachable is cleared; the error names the rest,
                whose answers may be served again once it is back: retry the clear.
        """
        self._ensure_running()
        namespace = check_namespace(namespace)
        if self._cache is None:
            return 0
        if self._engine is not None:
            # A write still running would put an answer back after the clear.
            await self._engine.drain_writes(namespace)
        failed: list[str] = []
        try:
            removed = await self._cache.clear(namespace)
        except CacheClearError as exc:
            failed += exc.failed
            removed = exc.removed
        if self._similarity is not None:
            try:
                await self._similarity.clear(namespace)
            except CacheClearError as exc:
                failed += exc.failed
        if failed:
            logger.warning("Handler %s could not clear %s (namespace %s)", self.instance_id,
                           ", ".join(failed), namespace or "*")  # fmt: skip
            raise CacheClearError(failed, removed)
        logger.info(
            "Handler %s cleared %d cached answers (namespace %s)",
            self.instance_id,
            removed,
            namespace or "*",
        )
        return removed

    def cache_stats(self) -> dict[str, Any]:
        """State of the cache and per-level hits, misses, evictions, errors and sizes."""
        if self._engine is None:
            return {"state": "stopped" if self._state is HandlerState.STOPPED else "not_started"}
        return self._engine.describe_cache()

    def _log_request(self, msg: str, *args: object) -> None:
        detailed = self.handler_config.features.enable_detailed_logging
        logger.log(logging.INFO if detailed else logging.DEBUG, msg, *args)

    # ------------------------------------------------------------------ reporting

    def stats(self) -> dict[str, Any]:
        """Counters and identity of this handler, as the factory reports them."""
        uptime = 0.0 if self._started_at is None else self._clock() - self._started_at
        return {
            "instance_id": self.instance_id,
            "model": self.vllm_config.model,
            "state": self._state.value,
            "uptime_s": round(uptime, 3),
            "requests_submitted": self._stats.submitted,
            "requests_served": self._stats.served,
            "requests_failed": self._stats.failed,
            "requests_aborted": self._stats.aborted,
            "in_flight": len(self._in_flight),
            "cache": self.cache_stats(),
        }

    async def health_check(self) -> dict[str, Any]:
        """Report overall health and each component's state and figures.

        Returns:
            ``{"healthy": bool, "degraded": bool, "instance_id": ..., "state": ..., "components":
            {"engine": {...}, "cache": {...}, "similarity": {...}}}``.
        """
        engine_state = self._state.value
        engine_error = None
        if self._engine is not None and self._state is HandlerState.RUNNING:
            try:
                await self._engine.check_health()
            except Exception as exc:
                engine_state, engine_error = "dead", _describe(exc)
            if self._stalled is not None and engine_error is None:
                engine_state, engine_error = "stalled", self._stalled
        engine = {
            **{k: v for k, v in self.stats().items() if k != "cache"},
            "state": engine_state,
            "startup_s": self._startup_s,
            "engine_unfinished": (
                self._engine.get_num_unfinished_requests() if self._engine is not None else 0
            ),
            "error": engine_error,
        }
        components = {
            "engine": engine,
            "cache": self.cache_stats(),
            "similarity": (
                self._engine.describe_similarity()
                if self._engine is not None
                else {"state": "not_started"}
            ),
        }
        return {
            # Redis or similarity trouble degrades the service but does not stop it.
            "healthy": engine_state == HandlerState.RUNNING.value,
            "degraded": any(c.get("state") == "degraded" for c in components.values()),
            "instance_id": self.instance_id,
            "state": self._state.value,
            "components": components,
        }


class _Delivery:
    """Hands one request's outputs to its collector: folded, timed and described.

    Args:
        collector: Where the caller reads the outputs.
        kind: The request's ``RequestOutputKind``.
        namespace: The request's namespace, for the metadata.
        clock: The handler's clock; latency counts from ``submitted`` on it.
        submitted: When the request was submitted.
        progressed: Called at every output (the handler's stall watchdog).
    """

    def __init__(
        self,
        collector: RequestCollector,
        kind: RequestOutputKind,
        namespace: str | None,
        clock: Callable[[], float],
        submitted: float,
        progressed: Callable[[], None],
    ) -> None:
        self.collector = collector
        self.progress = StreamAccumulator(kind)
        self.namespace = namespace
        self.cache_info: CacheInfo | None = None
        self._clock = clock
        self._submitted = submitted
        self._progressed = progressed

    def elapsed_ms(self) -> float:
        return (self._clock() - self._submitted) * 1000.0

    def forward(self, output: RequestOutput) -> None:
        """Fold one engine (or cached) output in and hand it over."""
        self.cache_info = getattr(output, "cache_info", None)
        delta = self.progress.update(output)
        reason = output.outputs[0].finish_reason if output.outputs else None
        self.emit(output.finished, reason, delta, None)

    def emit(
        self,
        finished: bool,
        finish_reason: str | None,
        delta: str,
        error: str | None,
        error_kind: ErrorKind | None = None,
    ) -> None:
        """Hand over the stream's state, with the text ``delta`` it just added."""
        self._progressed()
        progress, latency_ms = self.progress, self.elapsed_ms()
        metadata = _metadata(self.cache_info, latency_ms, progress.num_tokens, self.namespace)
        self.collector._put(
            GenerationOutput(
                request_id=self.collector.request_id,
                text=progress.texts.get(0, ""),
                delta_text=delta,
                texts=tuple(progress.texts[i] for i in sorted(progress.texts)),
                finished=finished,
                finish_reason=finish_reason,
                error=error,
                error_kind=error_kind,
                token_ids=tuple(progress.tokens.get(0, ())),
                metadata=metadata,
            )
        )


def _metadata(
    cache_info: CacheInfo | None, latency_ms: float, num_tokens: int, namespace: str | None
) -> dict[str, Any]:
    """The ``metadata`` dict of a handler output."""
    return {
        "cache_hit": cache_info is not None,
        "cache_level": cache_info.level if cache_info else None,
        "similarity": cache_info.score if cache_info else None,
        "matched_entry_id": cache_info.entry_id if cache_info else None,
        "latency_ms": latency_ms,
        "num_tokens": num_tokens,
        "namespace": namespace,
    }


def _describe(exc: BaseException) -> str:
    """A one-line message for an error, looking through vLLM's generic wrapper."""
    if isinstance(exc, EngineDeadError):
        return f"EngineDeadError: the vLLM engine died ({exc})"
    cause = exc.__cause__ if isinstance(exc, EngineGenerateError) and exc.__cause__ else exc
    text = str(cause) or "no message"
    return f"{type(cause).__name__}: {text}"
