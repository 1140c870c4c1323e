"""What the handler streams back: one output type and the per-request collector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from vllm.outputs import RequestOutput
from vllm.sampling_params import RequestOutputKind

from src.errors import HandlerStateError

__all__ = ["ErrorKind", "GenerationOutput", "RequestCollector", "StreamAccumulator"]

#: Whether a failed output's error is the engine's death, this request's own, or an abort.
ErrorKind = Literal["fatal", "request", "aborted"]


@dataclass(frozen=True, slots=True)
class GenerationOutput:
    """One streamed step of a request, as the handler reports it.

    Attributes:
        request_id: The request this output belongs to.
        text: Text generated so far (the first completion when ``n > 1``).
        delta_text: Text added since the previous output of this request.
        texts: Text generated so far for every completion, by index.
        finished: True on the last output of the request.
        finish_reason: vLLM's reason (``"stop"``, ``"length"``, ...) once finished.
        error: What went wrong, or None. An output with an error is also finished.
        error_kind: With an error: ``"fatal"`` when the engine is dead (every
            request fails until the handler is restarted), ``"request"`` when only
            this request failed (the engine refused or failed it), ``"aborted"``
            when it was cancelled or aborted. None without an error.
        token_ids: Token ids generated so far for the first completion.
        metadata: ``cache_hit``, ``cache_level`` (``"memory"``, ``"redis"``,
            ``"in_flight"``, ``"semantic"`` or None), ``similarity`` (the semantic
            score), ``matched_entry_id``, ``latency_ms``, ``num_tokens`` and
            ``namespace``.
    """

    request_id: str
    text: str
    delta_text: str = ""
    texts: tuple[str, ...] = ()
    finished: bool = False
    finish_reason: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    token_ids: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


_DONE = object()


class RequestCollector:
    """Streams the outputs of one submitted request.

    The request is already running when the collector is returned, or already
    finished when its answer was held in memory (:attr:`finished`).
    ``get_outputs()`` may be iterated once; leaving the loop early, or being
    cancelled while in it, aborts the engine request.
    """

    def __init__(self, request_id: str, abort: Callable[[], None]) -> None:
        self.request_id = request_id
        self._abort = abort
        self._queue: asyncio.Queue[GenerationOutput | object] = asyncio.Queue()
        self._iterated = False
        self._finished = False
        self.final_output: GenerationOutput | None = None

    @property
    def finished(self) -> bool:
        """Whether the request has produced its last output."""
        return self._finished

    def _put(self, output: GenerationOutput) -> None:
        if self._finished:
            return
        self._queue.put_nowait(output)
        if output.finished:
            self._finished = True
            self.final_output = output
            self._queue.put_nowait(_DONE)

    async def get_outputs(self) -> AsyncIterator[GenerationOutput]:
        """Yield the request's outputs until, and including, the finished one."""
        if self._iterated:
            raise HandlerStateError(
                f"outputs of request {self.request_id!r} are already being read"
            )
        self._iterated = True
        completed = False
        try:
            while True:
                item = await self._queue.get()
                if item is _DONE:
                    completed = True
                    return
                assert isinstance(item, GenerationOutput)
                yield item
        finally:
            if not completed and not self._finished:
                self._abort()

    def abort(self) -> None:
        """Stop the request; its stream ends with an output whose error says so."""
        if not self._finished:
            self._abort()


class StreamAccumulator:
    """Folds a stream of vLLM ``RequestOutput`` objects into its cumulative state.

    Works for every ``RequestOutputKind``: DELTA outputs are appended, CUMULATIVE
    and FINAL_ONLY outputs replace. Completions are tracked by their index.
    """

    def __init__(self, kind: RequestOutputKind) -> None:
        self.delta = kind == RequestOutputKind.DELTA
        self.texts: dict[int, str] = {}
        self.tokens: dict[int, list[int]] = {}
        self.finish_reasons: dict[int, str | None] = {}
        self.stop_reasons: dict[int, int | str | None] = {}
        self.cumulative_logprobs: dict[int, float | None] = {}
        self.prompt_token_ids: list[int] | None = None
        self.finished = False

    @property
    def num_tokens(self) -> int:
        """Tokens generated so far, over all completions."""
        return sum(len(t) for t in self.tokens.values())

    def update(self, output: RequestOutput) -> str:
        """Fold one output in; return the text it added to completion 0."""
        before = self.texts.get(0, "")
        if self.prompt_token_ids is None and output.prompt_token_ids is not None:
            self.prompt_token_ids = list(output.prompt_token_ids)  # the same in every output
        for completion in output.outputs:
            i = completion.index
            if self.delta:
                self.texts[i] = self.texts.get(i, "") + completion.text
                self.tokens.setdefault(i, []).extend(completion.token_ids)
            else:
                self.texts[i] = completion.text
                self.tokens[i] = list(completion.token_ids)
            self.finish_reasons[i] = completion.finish_reason
            self.stop_reasons[i] = completion.stop_reason
            self.cumulative_logprobs[i] = completion.cumulative_logprob
        self.finished = output.finished
        after = self.texts.get(0, "")
        return after[len(before) :] if after.startswith(before) else after
