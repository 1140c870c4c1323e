"""The semantic stage's worker threads: priority and restart."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from src.workers import StageWorkers, off_loop, off_loop_text


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
        # The loop's own thread keeps its priority, and so do the text threads,
        # which hold the GIL while they work.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
        priority, name = await workers.run_text(_own_priority)
        assert name.startswith("semantic-text") and priority == base
    finally:
        workers.shutdown()
    # Both pools start again after a shutdown.
    assert (await workers.run_text(sum, [1, 2]), await workers.run(sum, [3])) == (3, 3)
    workers.shutdown()


async def test_preprocessing_runs_in_the_text_threads() -> None:
    from src.nlp.preprocessor import PromptPreprocessor

    workers = StageWorkers(threads=1, nice=0)
    preprocessor = PromptPreprocessor(workers=workers)
    seen: list[str] = []
    preprocessor.process_sync = lambda texts: seen.append(threading.current_thread().name) or []
    preprocessor._en = object()  # started, as far as process() checks
    try:
        await preprocessor.process(["hello"])
    finally:
        workers.shutdown()
    assert seen and seen[0].startswith("semantic-text")


async def test_nice_zero_leaves_the_priority_and_shutdown_can_be_followed_by_more_work() -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    workers = StageWorkers(threads=1, nice=0)
    assert (await workers.run(_own_priority))[0] == base
    workers.shutdown()
    workers.shutdown()
    assert (await workers.run(sum, [1, 2, 3])) == 6
    workers.shutdown()


async def test_off_loop_without_workers_uses_asyncio_threads() -> None:
    for run in (off_loop, off_loop_text):
        _, name = await run(None, _own_priority)
        assert not name.startswith("semantic")


def test_nice_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="nice"):
        StageWorkers(nice=20)
