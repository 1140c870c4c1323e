"""The old polling API, mapped onto the new one. Every entry point here warns.

Old code called ``request_id = await handler.add_request(...)`` and then polled
``await handler.get_result(request_id)`` until its ``status`` was
``"COMPLETED"``. The mixin below gives :class:`EnhancedVLLMHandler` those two
methods on top of ``add_request_v2``. The old handler classes live at their
old import paths and warn when imported.
"""

from __future__ import annotations

import asyncio
import enum
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from src.handler.outputs import RequestCollector

__all__ = ["LegacyPollingAPI", "LegacyStatus", "warn_deprecated"]


class LegacyStatus(enum.StrEnum):
    """The ``status`` values of the old ``get_result()``."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(slots=True)
class _LegacyRecord:
    status: LegacyStatus = LegacyStatus.PENDING
    text: str = ""
    error: str | None = None
    finish_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    finished_at: float | None = None


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Emit the ``DeprecationWarning`` that names ``old`` and its replacement ``new``."""
    warnings.warn(
        f"{old} is deprecated; use {new} instead", DeprecationWarning, stacklevel=stacklevel
    )


class LegacyPollingAPI:
    """``add_request`` / ``get_result`` for code written against the old handler."""

    def __init__(self, clock: Callable[[], float], result_ttl_s: Callable[[], float]) -> None:
        self._legacy_clock = clock
        self._legacy_ttl = result_ttl_s
        self._legacy_results: dict[str, _LegacyRecord] = {}
        self._legacy_tasks: set[asyncio.Task[None]] = set()

    async def add_request(
        self,
        prompt: str | dict[str, Any],
        sampling_params: Any = None,
        request_id: str | None = None,
    ) -> str:
        """Deprecated: submit a request and return its id for ``get_result()``.

        Use ``add_request_v2()`` and iterate ``collector.get_outputs()`` instead.
        """
        warn_deprecated(
            "handler.add_request()", "handler.add_request_v2() and collector.get_outputs()"
        )
        collector = await self.add_request_v2(  # type: ignore[attr-defined]
            prompt, sampling_params, request_id=request_id
        )
        record = _LegacyRecord()
        self._legacy_results[collector.request_id] = record
        task = asyncio.create_task(self._legacy_drain(collector, record))
        self._legacy_tasks.add(task)
        task.add_done_callback(self._legacy_tasks.discard)
        return collector.request_id

    async def get_result(self, request_id: str) -> dict[str, Any] | None:
        """Deprecated: the request's state, or None for an unknown or expired id.

        Returns:
            ``{"request_id", "status", "text", "error", "finish_reason",
            "metadata"}``; ``status`` is one of ``PENDING``, ``RUNNING``,
            ``COMPLETED``, ``FAILED``. A finished result is kept for
            ``handler_config.result_ttl_s`` seconds after it finished.
        """
        self._legacy_expire()
        record = self._legacy_results.get(request_id)
        if record is None:
            return None
        return {
            "request_id": request_id,
            "status": record.status.value,
            "text": record.text,
            "error": record.error,
            "finish_reason": record.finish_reason,
            "metadata": dict(record.metadata),
        }

    async def _legacy_drain(self, collector: RequestCollector, record: _LegacyRecord) -> None:
        async for output in collector.get_outputs():
            record.status = LegacyStatus.RUNNING
            record.text = output.text
            record.metadata = output.metadata
            if output.finished:
                record.error = output.error
                record.finish_reason = output.finish_reason
                record.status = LegacyStatus.FAILED if output.error else LegacyStatus.COMPLETED
                record.finished_at = self._legacy_clock()

    def _legacy_expire(self) -> None:
        deadline = self._legacy_clock() - self._legacy_ttl()
        expired = [
            rid
            for rid, rec in self._legacy_results.items()
            if rec.finished_at is not None and rec.finished_at <= deadline
        ]
        for rid in expired:
            del self._legacy_results[rid]

    async def _close_legacy(self) -> None:
        # Collectors end once their requests end, so the drains end too.
        await asyncio.gather(*self._legacy_tasks, return_exceptions=True)
