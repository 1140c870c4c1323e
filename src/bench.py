"""``python -m src bench``: plain vLLM against the enhanced system, on one engine.

One process, one engine. Plain requests go through ``AsyncLLM.generate`` of
the very engine the enhanced requests use (``EnhancedAsyncLLM.generate``), so
both see the same model, scheduler and machine. Three parts:

1. **Misses**: all-new prompts at each concurrency level, plain then enhanced
   (order alternating between levels); at concurrency 1 the two take turns
   request by request. Gives the miss path's overhead.
2. **Mixed**: at each level, a fresh namespace is seeded with the stored half
   of the paraphrase pairs (untimed), then the same shuffled list of requests
   (by default 40 % exact repeats of a seeded prompt, 20 % paraphrases of one,
   40 % new) runs through both systems. Gives the speed-up a cache brings.
3. **Hits**: one at a time through the handler's ``add_request_v2``, time to
   the first output of a memory hit, a Redis hit (memory emptied first) and a
   semantic hit (with the lookup policy set to ``hold`` and 5 s for this
   part, so that every lookup finishes before the engine answers).
4. **APIs**: all-new prompts at the highest concurrency level through the
   handler's streaming ``add_request_v2`` and through the old polling
   ``add_request`` / ``get_result`` (polled every ``--poll-ms``, as old code
   did); both include the handler's own costs, which plain ``generate`` does not.

The JSON written by ``--json`` is documented in ``docs/benchmarks.md``
(``schema: "evllm-bench/1"``); its top-level figures are the worst case over
the concurrency levels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "evllm-bench/1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAIRS = ROOT / "benchmarks" / "data" / "own_pairs_dev.jsonl"
WORDS = ("river", "stone", "light", "field", "cloud", "horse", "garden", "winter", "market",
         "bridge", "lamp", "forest", "ocean", "letter", "window", "summer")  # fmt: skip


def new_prompt(i: int, tag: str) -> str:
    """A prompt no other request shares (a miss by construction)."""
    rng = random.Random(f"{tag}:{i}")
    return f"{tag} {i}: write about " + " ".join(rng.choice(WORDS) for _ in range(6))


def read_paraphrases(path: Path) -> list[tuple[str, str]]:
    """Same-meaning pairs ``(stored, asked)`` of a JSON-lines pair file."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row.get("same", True):
                pairs.append((str(row["a"]), str(row["b"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SystemExit(f"{path}:{number}: not a pair row with 'a' and 'b': {exc}") from exc
    if not pairs:
        raise SystemExit(f"{path}: no same-meaning pairs")
    return pairs


@dataclass
class Request:
    prompt: str
    kind: str  # "repeat", "paraphrase" or "new"


@dataclass
class Outcome:
    first_s: float
    total_s: float
    tokens: int
    path: str  # "plain", "engine", "memory", "redis", "in_flight" or "semantic"


@dataclass
class Run:
    workload: str
    system: str
    concurrency: int
    wall_s: float
    outcomes: list[Outcome] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        firsts = [o.first_s for o in self.outcomes]
        totals = [o.total_s for o in self.outcomes]
        tokens = sum(o.tokens for o in self.outcomes)
        return {
            "workload": self.workload,
            "system": self.system,
            "concurrency": self.concurrency,
            "requests": len(self.outcomes),
            "wall_s": round(self.wall_s, 4),
            "requests_per_s": len(self.outcomes) / self.wall_s,
            "output_tokens_per_s": tokens / self.wall_s,
            "first_output_p50_ms": percentile(firsts, 50) * 1e3,
            "first_output_p95_ms": percentile(firsts, 95) * 1e3,
            "total_p50_ms": percentile(totals, 50) * 1e3,
            "paths": dict(Counter(o.path for o in self.outcomes)),
        }


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


async def consume(stream: AsyncIterator[Any]) -> Outcome:
    """Read one request's stream; when its first output came, and where from."""
    start = time.perf_counter()
    first = None
    path = "engine"
    tokens = 0
    async for output in stream:
        if first is None:
            first = time.perf_counter() - start
            info = getattr(output, "cache_info", None)
            path = info.level if info is not None else "engine"
        if output.finished:
            tokens = len(output.outputs[0].token_ids)
    return Outcome(first or math.nan, time.perf_counter() - start, tokens, path)


class Bench:
    def __init__(self, args: argparse.Namespace, handler: Any, progress: Any) -> None:
        from vllm import SamplingParams

        self.args = args
        self.handler = handler
        self.engine = handler.engine
        self.params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0)
        self.progress = progress
        self.runs: list[Run] = []

    async def one(self, system: str, prompt: str, namespace: str) -> Outcome:
        """One request through ``system``: plain, enhanced, v2 or legacy."""
        if system == "v2":
            start = time.perf_counter()
            collector = await self.handler.add_request_v2(prompt, self.params, namespace=namespace)
            first, tokens, path = math.nan, 0, "engine"
            async for output in collector.get_outputs():
                if math.isnan(first):
                    first = time.perf_counter() - start
                    path = output.metadata.get("cache_level") or "engine"
                if output.finished:
                    tokens = int(output.metadata.get("num_tokens") or 0)
            return Outcome(first, time.perf_counter() - start, tokens, path)
        if system == "legacy":
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                request_id = await self.handler.add_request(prompt, self.params)
                while True:
                    result = await self.handler.get_result(request_id)
                    if result is not None and result["status"] in ("COMPLETED", "FAILED"):
                        break
                    await asyncio.sleep(self.args.poll_ms / 1e3)
            elapsed = time.perf_counter() - start
            tokens = int((result.get("metadata") or {}).get("num_tokens") or 0)
            return Outcome(elapsed, elapsed, tokens, "engine")
        outcome = await consume(self.stream(system, prompt, namespace))
        if system == "plain":
            outcome.path = "plain"
        return outcome

    def stream(self, system: str, prompt: str, namespace: str) -> AsyncIterator[Any]:
        from vllm.v1.engine.async_llm import AsyncLLM

        request_id = uuid.uuid4().hex
        if system == "plain":
            return AsyncLLM.generate(self.engine, prompt, self.params, request_id)
        return self.engine.generate(prompt, self.params, request_id, namespace=namespace)

    async def run(self, workload: str, system: str, prompts: list[str], concurrency: int,
                  namespace: str = "bench") -> Run:  # fmt: skip
        queue = iter(enumerate(prompts))
        outcomes: list[Outcome | None] = [None] * len(prompts)

        async def worker() -> None:
            for index, prompt in queue:
                outcomes[index] = await self.one(system, prompt, namespace)
                self.progress.update(1)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run = Run(workload, system, concurrency, time.perf_counter() - began)
        run.outcomes = [o for o in outcomes if o is not None]
        self.runs.append(run)
        return run

    async def paired(self, workload: str, prompts: list[str], namespace: str) -> None:
        """One request at a time, plain and enhanced taking turns (who goes first
        alternates): both see the machine in the same state, so a slow spell of a
        shared machine cannot fall on one system only. ``prompts[2i]`` goes to
        plain, ``prompts[2i + 1]`` to enhanced; each system's wall time is the sum
        of its own requests' times."""
        runs = {system: Run(workload, system, 1, 0.0) for system in ("plain", "enhanced")}
        for i in range(0, len(prompts) - 1, 2):
            turn = [("plain", prompts[i]), ("enhanced", prompts[i + 1])]
            for system, prompt in turn if i % 4 == 0 else turn[::-1]:
                outcome = await self.one(system, prompt, namespace)
                runs[system].outcomes.append(outcome)
                runs[system].wall_s += outcome.total_s
                self.progress.update(1)
        self.runs.extend(runs.values())

    def mixed_requests(self, pairs: list[tuple[str, str]], tag: str) -> list[Request]:
        n = self.args.requests
        repeats, paraphrases, _ = self.args.mix
        n_repeat = round(n * repeats)
        n_para = min(round(n * paraphrases), len(pairs))
        rng = random.Random(self.args.seed)
        chosen = rng.sample(pairs, k=max(n_para, min(len(pairs), n_repeat)))
        requests = [Request(chosen[i % len(chosen)][0], "repeat") for i in range(n_repeat)]
        requests += [Request(chosen[i][1], "paraphrase") for i in range(n_para)]
        requests += [Request(new_prompt(i, tag), "new") for i in range(n - len(requests))]
        rng.shuffle(requests)
        return requests

    async def seed(self, pairs: list[tuple[str, str]], namespace: str) -> None:
        """Store the answers the mixed workload's repeats and paraphrases refer to."""
        seen = set()
        for stored, _ in pairs:
            if stored not in seen:
                seen.add(stored)
                await consume(self.stream("enhanced", stored, namespace))
        # Redis and the vector index are written behind each answer: let them land.
        await self.engine.drain_writes(namespace)

    async def hits(self, pairs: list[tuple[str, str]]) -> dict[str, list[float]]:
        rounds = self.args.hit_rounds
        namespace = f"hits-{uuid.uuid4().hex[:6]}"
        prompts = [new_prompt(i, "hit") for i in range(rounds)]
        for prompt in prompts:
            await consume(self.stream("enhanced", prompt, namespace))
        # Let the answers' Redis writes and vectors land: a hit is timed, not a write.
        await self.engine.drain_writes(namespace)
        memory = self.engine.cache.level("memory")
        times: dict[str, list[float]] = {"memory": [], "redis": [], "semantic": []}

        def timed(outcome: Outcome, level: str) -> None:
            if outcome.path == level:
                times[level].append(outcome.first_s)
            self.progress.update(1)

        for prompt in prompts:
            timed(await self.one("v2", prompt, namespace), "memory")
        redis_level = self.engine.cache.levels[-1] if len(self.engine.cache.levels) > 1 else None
        if redis_level is not None and redis_level.name == "redis":
            for prompt in prompts:
                await memory.clear(namespace)
                timed(await self.one("v2", prompt, namespace), "redis")
        similarity = self.engine.similarity
        if similarity is not None:
            config = similarity.config
            # Hold long enough for every lookup to finish: this part times a hit,
            # not the race (part 2 shows what the race serves).
            policy, config.lookup_policy = config.lookup_policy, "hold"
            hold_ms, config.hold_ms = config.hold_ms, 5000.0
            try:
                for i, (stored, asked) in enumerate(pairs[:rounds]):
                    space = f"{namespace}-s{i}"
                    await consume(self.stream("enhanced", stored, space))
                    await self.engine.drain_writes(space)
                    timed(await self.one("v2", asked, space), "semantic")
            finally:
                config.lookup_policy, config.hold_ms = policy, hold_ms
        return times


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from src.cache.redis_server import RedisServer
    from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
    from src.handler.enhanced_llm_factory import EnhancedLLMFactory
    from src.tiny_model import ensure_default_tiny_model

    model, max_model_len = args.model, args.max_model_len
    if model is None:
        model, max_model_len = str(ensure_default_tiny_model()), max_model_len or 512
    pairs = read_paraphrases(args.prompts)
    server = None
    redis_url = args.redis_url
    if redis_url is None:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="evllm-bench-redis-"))).start()
        redis_url = server.url
    factory = EnhancedLLMFactory()
    # Without --worker-nice the config decides (its default, or EVLLM_SIMILARITY__WORKER_NICE).
    nice = {} if args.worker_nice is None else {"worker_nice": args.worker_nice}
    similarity = SimilarityConfig(
        enabled=not args.no_semantic, lookup_policy=args.lookup_policy, **nice
    )
    handler = await factory.create_system(
        vllm_config=VLLMConfig(model=model, max_model_len=max_model_len, enforce_eager=True),
        cache_config=CacheConfig(redis_url=redis_url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}:"),
        similarity_config=similarity,
        handler_config=HandlerConfig(),
    )
    levels = args.concurrency
    total = 2 * args.requests * (2 * len(levels) + 1) + args.hit_rounds * (
        3 if not args.no_semantic else 2
    )
    progress = tqdm(total=total, disable=args.no_progress, unit="req", file=sys.stderr)
    try:
        began = time.perf_counter()
        await handler.start()
        startup_s = time.perf_counter() - began
        runner = Bench(args, handler, progress)
        # Warm both paths, so neither pays the first request's costs.
        for i in range(4):
            await consume(runner.stream("plain", new_prompt(i, "warm-plain"), "warm"))
            await consume(runner.stream("enhanced", new_prompt(i, "warm"), "warm"))
        for position, concurrency in enumerate(levels):
            # Both systems' prompts come from one generator: same shape and length.
            prompts = [new_prompt(i, f"miss-{concurrency}") for i in range(2 * args.requests)]
            if concurrency == 1:
                await runner.paired("miss", prompts, "miss-1")
                continue
            order = ("plain", "enhanced") if position % 2 == 0 else ("enhanced", "plain")
            for system in order:
                share = prompts[0::2] if system == "plain" else prompts[1::2]
                await runner.run("miss", system, share, concurrency, f"miss-{concurrency}")
        mixes: dict[int, list[Request]] = {}
        for concurrency in levels:
            namespace = f"mixed-{concurrency}-{uuid.uuid4().hex[:6]}"
            requests = runner.mixed_requests(pairs, f"new-{concurrency}")
            mixes[concurrency] = requests
            needed = {r.prompt for r in requests if r.kind == "repeat"}
            seeds = [p for p in pairs if p[0] in needed or p[1] in
                     {r.prompt for r in requests if r.kind == "paraphrase"}]  # fmt: skip
            await runner.seed(seeds, namespace)
            prompts = [r.prompt for r in requests]
            for system in ("plain", "enhanced"):
                await runner.run("mixed", system, prompts, concurrency, namespace)
        hit_times = await runner.hits(pairs)
        top = max(levels)
        for system in ("v2", "legacy"):
            prompts = [new_prompt(i, f"api-{system}") for i in range(args.requests)]
            await runner.run("api", system, prompts, top, f"api-{system}")
        cache = handler.engine.describe_cache()
        lookups = lookup_means_ms()
    finally:
        progress.close()
        await factory.cleanup_all()
        if server is not None:
            server.kill()
    result = summarise(args, model, startup_s, runner.runs, mixes, hit_times, cache)
    result["lookup_mean_ms"] = lookups
    # How misses met the semantic lookup over the whole run (all parts, warm-up too).
    outcomes = ("won", "lost", "timed_out", "shed")
    result["race"] = {outcome: cache[f"lookups_{outcome}"] for outcome in outcomes}
    result["settings"]["worker_nice"] = similarity.worker_nice
    return result


def lookup_means_ms() -> dict[str, float]:
    """Mean time per look-up stage over the whole run, from the process's metrics."""
    from src.handler.metrics import read_metrics

    metrics = read_metrics()
    means = {}
    for stage in ("exact", "memory", "redis", "semantic_prepare", "semantic_match"):
        count = metrics.get(f'evllm_lookup_seconds_count{{stage="{stage}"}}', 0.0)
        if count:
            total = metrics[f'evllm_lookup_seconds_sum{{stage="{stage}"}}']
            means[stage] = total / count * 1e3
    return means


def summarise(args: argparse.Namespace, model: str, startup_s: float, runs: list[Run],
              mixes: dict[int, list[Request]], hit_times: dict[str, list[float]],
              cache: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    def find(workload: str, system: str, concurrency: int) -> Run:
        return next(r for r in runs if (r.workload, r.system, r.concurrency) ==
                    (workload, system, concurrency))  # fmt: skip

    per_level = []
    for c in args.concurrency:
        plain, ours = find("miss", "plain", c), find("miss", "enhanced", c)
        mixed_plain, mixed_ours = find("mixed", "plain", c), find("mixed", "enhanced", c)
        p_first = percentile([o.first_s for o in plain.outcomes], 50)
        o_first = percentile([o.first_s for o in ours.outcomes], 50)
        p_total = percentile([o.total_s for o in plain.outcomes], 50)
        o_total = percentile([o.total_s for o in ours.outcomes], 50)
        kinds = Counter(r.kind for r in mixes[c])
        paths = Counter(o.path for o in mixed_ours.outcomes)
        per_level.append({
            "concurrency": c,
            "miss_first_output_overhead_ratio": o_first / p_first - 1,
            "miss_first_output_added_ms": (o_first - p_first) * 1e3,
            "miss_total_overhead_ratio": o_total / p_total - 1,
            "mixed_speedup": mixed_plain.wall_s / mixed_ours.wall_s,
            "mixed_requests": dict(kinds),
            "mixed_paths": dict(paths),
            "mixed_hit_rate": 1 - paths.get("engine", 0) / max(1, len(mixed_ours.outcomes)),
        })  # fmt: skip
    mixed_paths: Counter[str] = Counter()
    for level in per_level:
        mixed_paths.update(level["mixed_paths"])
    served = sum(mixed_paths.values())
    memory = cache.get("levels", {}).get("memory", {})
    c1 = min(args.concurrency)
    miss_runs = find("miss", "enhanced", c1).outcomes

    def p50_ms(values: list[float]) -> float | None:
        return statistics.median(values) * 1e3 if values else None

    top = max(args.concurrency)
    v2, legacy = find("api", "v2", top), find("api", "legacy", top)
    api = {
        "concurrency": top,
        "v2_total_p50_ms": p50_ms([o.total_s for o in v2.outcomes]),
        "legacy_total_p50_ms": p50_ms([o.total_s for o in legacy.outcomes]),
        "v2_requests_per_s": len(v2.outcomes) / v2.wall_s,
        "legacy_requests_per_s": len(legacy.outcomes) / legacy.wall_s,
        "poll_ms": args.poll_ms,
    }

    return {
        "schema": SCHEMA,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": _cpus(),
        },
        "model": model,
        "settings": {
            "requests": args.requests,
            "concurrency": list(args.concurrency),
            "mix": dict(zip(("repeat", "paraphrase", "new"), args.mix, strict=True)),
            "max_tokens": args.max_tokens,
            "hit_rounds": args.hit_rounds,
            "semantic": not args.no_semantic,
            "lookup_policy": args.lookup_policy,
            "prompts": str(args.prompts),
        },
        "miss_first_output_overhead_ratio": max(
            lv["miss_first_output_overhead_ratio"] for lv in per_level
        ),
        "miss_total_overhead_ratio": max(lv["miss_total_overhead_ratio"] for lv in per_level),
        "mixed_speedup": min(lv["mixed_speedup"] for lv in per_level),
        "memory_hit_p50_ms": p50_ms(hit_times["memory"]),
        "redis_hit_p50_ms": p50_ms(hit_times["redis"]),
        "semantic_hit_p50_ms": p50_ms(hit_times["semantic"]),
        "miss_p50_ms": p50_ms([o.first_s for o in miss_runs]),
        "hit_counts": {level: len(v) for level, v in hit_times.items()},
        "hit_rate": {path: count / served for path, count in sorted(mixed_paths.items())},
        "per_concurrency": per_level,
        "api": api,
        "runs": [r.figures() for r in runs],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "bytes_per_entry": memory["bytes"] / memory["entries"] if memory.get("entries") else None,
        "startup_s": {"system": startup_s},
        "latencies_ms": {
            **{f"{level}_hit": [t * 1e3 for t in v] for level, v in hit_times.items()},
            **{
                f"{r.workload}_{r.system}_c{r.concurrency}": [o.first_s * 1e3 for o in r.outcomes]
                for r in runs
            },
        },
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def table(result: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} ms"

    lines = [f"model {result['model']}  ({result['machine']['cpus']} CPUs)", ""]
    lines.append(f"{'workload':<8} {'system':<9} {'conc':>4} {'req/s':>9} {'tok/s':>9} "
                 f"{'first p50':>11} {'first p95':>11} {'total p50':>11}  paths")  # fmt: skip
    for run in result["runs"]:
        paths = ", ".join(f"{k} {v}" for k, v in sorted(run["paths"].items()))
        lines.append(
            f"{run['workload']:<8} {run['system']:<9} {run['concurrency']:>4} "
            f"{run['requests_per_s']:>9.1f} {run['output_tokens_per_s']:>9.1f} "
            f"{run['first_output_p50_ms']:>8.2f} ms {run['first_output_p95_ms']:>8.2f} ms "
            f"{run['total_p50_ms']:>8.2f} ms  {paths}"
        )
    lines.append("")
    for level in result["per_concurrency"]:
        lines.append(
            f"concurrency {level['concurrency']}: miss first output "
            f"{level['miss_first_output_overhead_ratio'] * 100:+.1f} % "
            f"({level['miss_first_output_added_ms']:+.2f} ms), miss whole request "
            f"{level['miss_total_overhead_ratio'] * 100:+.1f} %, mixed speed-up "
            f"{level['mixed_speedup']:.2f}x at hit rate {level['mixed_hit_rate']:.2f}"
        )
    lines.append(
        f"first output through add_request_v2: memory hit {ms(result['memory_hit_p50_ms'])}, "
        f"redis hit {ms(result['redis_hit_p50_ms'])}, semantic hit "
        f"{ms(result['semantic_hit_p50_ms'])} (p50; hits {result['hit_counts']}); "
        f"miss {ms(result['miss_p50_ms'])}"
    )
    means = ", ".join(f"{k} {v:.3f} ms" for k, v in result.get("lookup_mean_ms", {}).items())
    lines.append(f"mean look-up time by stage: {means}")
    api = result["api"]
    lines.append(
        f"APIs at concurrency {api['concurrency']}: add_request_v2 whole request p50 "
        f"{ms(api['v2_total_p50_ms'])}, {api['v2_requests_per_s']:.1f} req/s; add_request + "
        f"get_result (poll {api['poll_ms']} ms) {ms(api['legacy_total_p50_ms'])}, "
        f"{api['legacy_requests_per_s']:.1f} req/s"
    )
    lines.append(
        f"start-up {result['startup_s']['system']:.1f} s, peak RSS "
        f"{result['peak_rss_mb']:.0f} MB, bytes per memory entry {result['bytes_per_entry']}"
    )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = {k: v for k, v in result["latencies_ms"].items() if v}
    left.boxplot(list(series.values()), vert=False, showfliers=False)
    left.set_yticks(range(1, len(series) + 1), list(series))
    left.set_xscale("log")
    left.set_xlabel("time to first output (ms, log)")
    left.set_title("Latency per path")
    for workload in ("miss", "mixed"):
        for system in ("plain", "enhanced"):
            runs = [r for r in result["runs"]
                    if r["workload"] == workload and r["system"] == system]  # fmt: skip
            right.plot([r["concurrency"] for r in runs], [r["requests_per_s"] for r in runs],
                       marker="o", label=f"{workload}, {system}")  # fmt: skip
    right.set_xscale("log", base=2)
    right.set_xlabel("concurrency")
    right.set_ylabel("requests / s")
    right.set_title("Throughput")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m src bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", help="local Hugging Face model folder (default: tiny model)")
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--redis-url", help="Redis to use (default: start a private redis-server)")
    parser.add_argument("--requests", type=int, default=128, help="requests per run")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated levels")
    parser.add_argument("--mix", default="0.4,0.2,0.4",
                        help="shares of exact repeats, paraphrases and new prompts")  # fmt: skip
    parser.add_argument("--prompts", type=Path, default=DEFAULT_PAIRS,
                        help="JSON-lines pairs (a, b, same): paraphrases of the mix")  # fmt: skip
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--hit-rounds", type=int, default=40, help="hits timed per level")
    parser.add_argument("--lookup-policy", choices=("race", "hold"), default="race")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=None,
        help="SimilarityConfig.worker_nice (0-19; default: the config's)",
    )
    parser.add_argument("--no-semantic", action="store_true", help="exact cache only")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=100.0,
        help="get_result polling interval of the old API (default 100)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--plot", type=Path, help="write a PNG of latencies and throughput")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
        args.mix = tuple(float(x) for x in args.mix.split(","))
    except ValueError as exc:
        parser.error(f"--concurrency and --mix take comma-separated numbers: {exc}")
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs levels of at least 1")
    if len(args.mix) != 3 or min(args.mix) < 0 or abs(sum(args.mix) - 1) > 1e-6:
        parser.error("--mix takes three non-negative shares that sum to 1")
    if args.requests < 1 or args.hit_rounds < 1:
        parser.error("--requests and --hit-rounds must be at least 1")
    if not args.prompts.is_file():
        parser.error(f"--prompts: {args.prompts} is not a file")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(bench(args))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.plot:
        plot(result, args.plot)
    return 0
