"""Latency of cache hits and overhead of the miss path, on a real engine.

Run from the repository root (after ``scripts/setup.sh``)::

    .venv/bin/python -m benchmarks.cache_latency [--model DIR] [--redis-url URL] [--rounds N]

With no model it uses the tiny model the demo builds; with no Redis URL it
starts its own ``redis-server`` on a free loopback port. It prints:

* first-output latency of a memory hit and of a Redis hit (memory emptied first),
  through ``EnhancedAsyncLLM.generate`` and through the handler's ``add_request_v2``;
* a miss through ``EnhancedAsyncLLM.generate`` with the cache on but empty, against
  plain ``AsyncLLM.generate`` on the same engine (first output and full request),
  the two interleaved so drift hits both alike, each on prompts never seen before —
  once with the exact cache alone, once with the semantic stage too;
* first-output latency of a semantic hit (a paraphrase of a stored prompt, from
  the English paraphrases of ``benchmarks/data/semantic_pairs_dev.jsonl``).
"""

from __future__ import annotations

import os

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from vllm import SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM

from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
from src.handler.enhanced_llm_factory import EnhancedLLMFactory
from src.tiny_model import build_tiny_model, default_tiny_model_dir, is_tiny_model_dir
from tests.support.redis_server import RedisServer

PAIRS = Path(__file__).parent / "data" / "semantic_pairs_dev.jsonl"

WORDS = [
    "river",
    "stone",
    "light",
    "field",
    "cloud",
    "horse",
    "garden",
    "winter",
    "market",
    "bridge",
]


def prompt(i: int, tag: str) -> str:
    """A distinct prompt of a fixed length, so no two measurements share a prefix."""
    picks = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(6)]
    return f"{tag} {i} " + " ".join(picks)


async def first_and_total(stream: AsyncIterator[object]) -> tuple[float, float]:
    """Seconds to the first output and to the end of a stream."""
    start = time.perf_counter()
    first = None
    async for _ in stream:
        if first is None:
            first = time.perf_counter() - start
    return first or 0.0, time.perf_counter() - start


def summary(name: str, seconds: list[float], unit: str = "ms") -> str:
    scale = 1e3 if unit == "ms" else 1e6
    values = sorted(s * scale for s in seconds)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return (
        f"{name:<52} median {statistics.median(values):9.3f} {unit}   "
        f"p95 {p95:9.3f} {unit}   n={len(values)}"
    )


async def timed(n: int, run: Callable[[int], Awaitable[float]]) -> list[float]:
    return [await run(i) for i in range(n)]


async def main(args: argparse.Namespace) -> None:
    model = args.model
    if model is None:
        path = default_tiny_model_dir()
        if not is_tiny_model_dir(path):
            build_tiny_model(path)
        model = str(path)
    server = None
    redis_url = args.redis_url
    if redis_url is None:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start()
        redis_url = server.url
    factory = EnhancedLLMFactory()
    handler = await factory.create_system(
        vllm_config=VLLMConfig(model=model, max_model_len=256, enforce_eager=True),
        cache_config=CacheConfig(redis_url=redis_url, key_prefix=f"bench-{uuid.uuid4().hex[:6]}:"),
        similarity_config=SimilarityConfig(),
        handler_config=HandlerConfig(),
    )
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0)
    ns = "bench"
    try:
        await handler.start()
        engine = handler.engine
        memory = handler._cache.level("memory")  # type: ignore[union-attr]
        # Warm up the engine and both paths.
        for i in range(5):
            warm = prompt(i, "warm")
            await first_and_total(engine.generate(warm, params, f"w{i}", namespace=ns))
            await first_and_total(AsyncLLM.generate(engine, warm + " plain", params, f"wp{i}"))

        async def misses(tag: str) -> tuple[list[float], ...]:
            """Ours (cache on, key never stored) against plain AsyncLLM, interleaved."""
            ours_first, ours_total, plain_first, plain_total = [], [], [], []
            for i in range(args.rounds):
                pair = [
                    ("ours", engine.generate(prompt(i, tag), params, f"{tag}{i}", namespace=ns)),
                    (
                        "plain",
                        AsyncLLM.generate(engine, prompt(i, "plain" + tag), params, f"p{tag}{i}"),
                    ),
                ]
                if i % 2:
                    pair.reverse()
                for name, stream in pair:
                    first, total = await first_and_total(stream)
                    (ours_first if name == "ours" else plain_first).append(first)
                    (ours_total if name == "ours" else plain_total).append(total)
            return ours_first, ours_total, plain_first, plain_total

        # The exact cache alone: the semantic stage is detached for this part.
        similarity, engine.similarity = engine.similarity, None
        ours_first, ours_total, plain_first, plain_total = await misses("miss")
        engine.similarity = similarity
        sem_first, sem_total, sem_plain_first, sem_plain_total = (
            await misses("semmiss") if similarity is not None else ([], [], [], [])
        )

        # Hits on the prompts the miss rounds stored.
        async def memory_hit(i: int) -> float:
            stream = engine.generate(prompt(i, "miss"), params, f"h{i}", namespace=ns)
            return (await first_and_total(stream))[0]

        async def redis_hit(i: int) -> float:
            await memory.clear(ns)
            stream = engine.generate(prompt(i, "miss"), params, f"r{i}", namespace=ns)
            return (await first_and_total(stream))[0]

        async def handler_hit(i: int) -> float:
            start = time.perf_counter()
            collector = await handler.add_request_v2(prompt(i, "miss"), params, namespace=ns)
            async for output in collector.get_outputs():
                assert output.metadata["cache_hit"], "expected a hit"
                break
            return time.perf_counter() - start

        levels_before = engine.cache_stats.exact_hits
        mem = await timed(args.rounds, memory_hit)
        red = await timed(args.rounds, redis_hit)
        await timed(args.rounds, memory_hit)  # refill memory
        via_handler = await timed(args.rounds, handler_hit)
        assert engine.cache_stats.exact_hits - levels_before == 4 * args.rounds

        semantic: list[float] = []
        if similarity is not None:
            pairs = [
                row
                for row in map(json.loads, PAIRS.read_text(encoding="utf-8").splitlines())
                if row["kind"] == "paraphrase" and row["lang"] == "en"
            ]
            hits_before = engine.cache_stats.semantic_hits
            for i in range(args.rounds):
                row = pairs[i % len(pairs)]
                space = f"sem-{i}"
                await first_and_total(engine.generate(row["a"], params, f"sa{i}", namespace=space))
                start = time.perf_counter()
                async for output in engine.generate(row["b"], params, f"sb{i}", namespace=space):
                    info = getattr(output, "cache_info", None)
                    if info is not None and info.level == "semantic":
                        semantic.append(time.perf_counter() - start)
                    break
            assert engine.cache_stats.semantic_hits - hits_before == len(semantic)

        print(f"\nmodel {model}, max_tokens={args.max_tokens}, redis {redis_url}\n")
        print(summary("memory hit, first output (generate)", mem, "us"))
        print(summary("redis hit, first output (generate)", red, "us"))
        print(summary("memory hit, first output (handler add_request_v2)", via_handler, "us"))
        print(summary("miss, first output (EnhancedAsyncLLM, cache empty)", ours_first))
        print(summary("plain AsyncLLM.generate, first output", plain_first))
        print(summary("miss, whole request (EnhancedAsyncLLM, cache empty)", ours_total))
        print(summary("plain AsyncLLM.generate, whole request", plain_total))
        for label, ours, plain in (
            ("exact cache, first output", ours_first, plain_first),
            ("exact cache, whole request", ours_total, plain_total),
            ("with semantic stage, first output", sem_first, sem_plain_first),
            ("with semantic stage, whole request", sem_total, sem_plain_total),
        ):
            if ours:
                overhead = statistics.median(ours) / statistics.median(plain) - 1
                added = (statistics.median(ours) - statistics.median(plain)) * 1e3
                print(
                    f"miss-path overhead vs plain AsyncLLM ({label}): "
                    f"{overhead * 100:+.2f} % ({added:+.2f} ms)"
                )
        if sem_first:
            print(summary("miss with semantic stage, first output", sem_first))
        if semantic:
            print(summary("semantic hit, first output (generate)", semantic, "us"))
            print(f"semantic hits: {len(semantic)} of {args.rounds} paraphrases")
        stats = engine.describe_cache()
        print(
            f"\ncache: {stats['exact_hits']} exact hits, {stats['stored']} stored, "
            f"memory entries {stats['levels']['memory']['entries']}, "
            f"redis errors {stats['levels']['redis']['errors']}"
        )
    finally:
        await factory.cleanup_all()
        if server is not None:
            server.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="local Hugging Face model folder (default: tiny model)")
    parser.add_argument("--redis-url", help="Redis to use (default: start a private one)")
    parser.add_argument("--rounds", type=int, default=60, help="measurements per figure")
    parser.add_argument("--max-tokens", type=int, default=24)
    asyncio.run(main(parser.parse_args()))
