"""The semantic stage's worker threads: priority and restart."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from src.workers import StageWorkers, off_loop


def _own_priority() -> tuple[int, str]:
    tid = threading.get_native_id()
    return os.getpriority(os.PRIO_PROCESS, tid), threading.current_thread().name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
async def test_worker_threads_run_at_the_lowered_priority() -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    workers = StageWorkers(threads=2, nice=5)
    try:
        priority, name = await workers.run(_own_priority)
        assert name.startswith("semantic-stage")
        assert priority == min(base + 5, 19)
        # The loop's own thread keeps its priority.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
    finally:
        workers.shutdown()


async def test_nice_zero_leaves_the_priority_and_shutdown_can_be_followed_by_more_work() -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    workers = StageWorkers(threads=1, nice=0)
    assert (await workers.run(_own_priority))[0] == base
    workers.shutdown()
    workers.shutdown()
    assert (await workers.run(sum, [1, 2, 3])) == 6
    workers.shutdown()


async def test_off_loop_without_workers_uses_asyncio_threads() -> None:
    _, name = await off_loop(None, _own_priority)
    assert not name.startswith("semantic-stage")


def test_nice_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="nice"):
        StageWorkers(nice=20)
