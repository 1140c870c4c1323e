"""The pair judge's time per candidate pair, reading each pair once or both ways.

    .venv/bin/python -m benchmarks.judge_latency [--judge-model NAME] [--limit 100]
        [--rounds 200] [--threads N]

Loads the judge as the cache serves it and scores pairs of the public sets in
``../shared/datasets`` (the first ``--limit`` of each) the way a lookup does:
one candidate per call (the common case: one stored prompt above the floor),
and five per call (``top_k`` candidates all above it). Each size is timed for
the two readings a calibration can ask for (see ``src.similarity.judge.Scoring``):

- **canonical**: each pair read once, its sides in a fixed order (the shipped
  judges' calibrations);
- **both**: each pair read in both orders and the probabilities averaged
  (calibrations written before the reading was recorded).

The two readings take turns call by call, on the same pairs, so both see the
same load. Figures are medians and 95th percentiles in milliseconds per call.
Nothing is trained or tuned.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import asyncio
import time
from dataclasses import replace

import numpy as np

from benchmarks.semantic_quality import public_pairs
from src.similarity.judge import PairJudge, Scoring, judge_folder

READINGS: tuple[Scoring, ...] = ("canonical", "both")


def time_calls(
    judge: PairJudge, pairs: list[tuple[str, str]], size: int, rounds: int
) -> dict[Scoring, list[float]]:
    """Milliseconds per call of ``size`` pairs, for each reading, taking turns."""
    assert judge.calibration is not None
    calibrations = {reading: replace(judge.calibration, scoring=reading) for reading in READINGS}
    times: dict[Scoring, list[float]] = {reading: [] for reading in READINGS}
    for r in range(rounds):
        batch = [pairs[(r * size + i) % len(pairs)] for i in range(size)]
        for reading in READINGS if r % 2 == 0 else READINGS[::-1]:
            judge.calibration = calibrations[reading]
            began = time.perf_counter()
            judge.score_sync(batch)
            times[reading].append((time.perf_counter() - began) * 1000)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--judge-model", default="default", help="'default', 'research' or an adapter folder"
    )
    parser.add_argument("--limit", type=int, default=100, help="pairs read per set")
    parser.add_argument("--rounds", type=int, default=200, help="timed calls per size and reading")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = [(p.a, p.b) for p in public_pairs(args.limit)]
    judge = PairJudge(judge_folder(args.judge_model))
    await judge.start()
    try:
        served = judge.scoring
        judge.score_sync(pairs[:8])  # warm-up
        figures = {size: time_calls(judge, pairs, size, args.rounds) for size in (1, 5)}
    finally:
        await judge.stop()
    print(f"judge {args.judge_model!r} (its calibration reads: {served}), {len(pairs)} pairs, "
          f"torch threads {torch.get_num_threads()}, {args.rounds} calls per cell")  # fmt: skip
    print(f"{'reading':<11}{'1 pair p50':>12}{'p95':>8}{'5 pairs p50':>13}{'p95':>8}")
    for reading in READINGS:
        cells = [np.percentile(figures[size][reading], q) for size in (1, 5) for q in (50, 95)]
        print(
            f"{reading:<11}"
            + "".join(f"{v:>{w}.1f}" for v, w in zip(cells, (12, 8, 13, 8), strict=True))
        )


if __name__ == "__main__":
    asyncio.run(main())
