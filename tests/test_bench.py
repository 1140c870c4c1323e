"""``python -m src bench`` end to end, at a size CI can afford."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]


def test_bench_compares_plain_vllm_with_the_enhanced_system(tmp_path: Path) -> None:
    out, picture = tmp_path / "bench.json", tmp_path / "bench.png"
    command = [sys.executable, "-m", "src", "bench", "--requests", "10", "--concurrency", "1,4",
               "--hit-rounds", "3", "--max-tokens", "8", "--no-progress", "--poll-ms", "5",
               "--json", str(out), "--plot", str(picture)]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mixed speed-up" in done.stdout

    result = json.loads(out.read_text())
    assert result["schema"] == "evllm-bench/1"
    for name in ("miss_first_output_overhead_ratio", "miss_total_overhead_ratio",
                 "mixed_speedup", "miss_p50_ms", "peak_rss_mb"):  # fmt: skip
        assert math.isfinite(result[name]), name
    assert result["mixed_speedup"] > 0
    # Every timed hit was served from the level it was timed for.
    assert result["hit_counts"]["memory"] == 3 and result["hit_counts"]["redis"] == 3
    assert result["memory_hit_p50_ms"] > 0 and result["redis_hit_p50_ms"] > 0  # no timing race
    for level in result["per_concurrency"]:
        repeats = level["mixed_requests"].get("repeat", 0)
        assert repeats == 4  # 40 % of 10
        assert level["mixed_paths"].get("memory", 0) >= repeats
    runs = {(r["workload"], r["system"], r["concurrency"]): r for r in result["runs"]}
    for level in (1, 4):  # at 1 the systems take turns, at 4 they run one after the other
        assert runs[("miss", "plain", level)]["paths"] == {"plain": 10}
        assert runs[("miss", "enhanced", level)]["paths"] == {"engine": 10}  # all new: misses
    assert {"exact", "memory", "redis"} <= set(result["lookup_mean_ms"])
    # How misses met the semantic lookup, counted over the whole run.
    assert set(result["race"]) == {"won", "lost", "timed_out", "shed"}
    assert all(isinstance(n, int) and n >= 0 for n in result["race"].values())
    api = result["api"]
    assert api["v2_total_p50_ms"] > 0 and api["legacy_total_p50_ms"] > 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
