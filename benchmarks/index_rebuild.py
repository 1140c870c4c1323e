"""How the semantic index scales: Redis memory, rebuild time and search time at N entries.

    .venv/bin/python -m benchmarks.index_rebuild [--entries 100000] [--redis-url URL]

Writes ``--entries`` vector records (unit vectors of the default embedder's
384 dimensions, the text of a typical short English question) into Redis
through ``RedisVectorStore.put``, one namespace, then times what a restarting
instance does: ``load_all`` (SCAN and HGETALL in batches, decode) and adding
every record to a FAISS index of each kind. It also times one search in the
full partition. Without ``--redis-url`` it starts a private ``redis-server``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from src.cache.redis_server import RedisServer
from src.similarity.index import VectorIndex, VectorRecord
from src.similarity.redis_store import RedisVectorStore

DIMENSION = 384


def make_record(i: int, rng: np.random.Generator) -> VectorRecord:
    vector = rng.standard_normal(DIMENSION).astype(np.float32)
    vector /= np.linalg.norm(vector)
    text = f"What is the capital city of country number {i}?"
    return VectorRecord(f"entry-{i}", "bench", "fp", text, time.time() + 86_400, vector)


async def run(entries: int, redis_url: str) -> dict[str, float]:
    client = Redis.from_url(redis_url)
    store = RedisVectorStore(
        client, key_prefix=f"rebuild-{uuid.uuid4().hex[:8]}:", space="bench",
        dimension=DIMENSION, origin="bench", stream_maxlen=1000,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    memory_before = int((await client.info("memory"))["used_memory"])
    began = time.perf_counter()
    for start in range(0, entries, 50):  # 50 writes in flight: within the client's pool
        batch = [make_record(i, rng) for i in range(start, min(entries, start + 50))]
        await asyncio.gather(*(store.put(r, 86_400) for r in batch))
    write_s = time.perf_counter() - began
    memory_after = int((await client.info("memory"))["used_memory"])

    began = time.perf_counter()
    records = await store.load_all(time.time())
    load_s = time.perf_counter() - began
    figures = {
        "entries": float(len(records)),
        "write_s": write_s,
        "redis_bytes_per_entry": (memory_after - memory_before) / entries,
        "load_all_s": load_s,
    }
    queries = [make_record(entries + q, rng).vector for q in range(50)]
    for kind in ("flat", "hnsw"):
        index = VectorIndex(DIMENSION, kind=kind, max_entries=entries + 1)  # type: ignore[arg-type]
        began = time.perf_counter()
        for record in records:
            index.add(record)
        figures[f"{kind}_index_build_s"] = time.perf_counter() - began
        times = []
        for query in queries:
            t0 = time.perf_counter()
            index.search(query, "bench", "fp", 5, time.time())
            times.append(time.perf_counter() - t0)
        figures[f"{kind}_search_p50_ms"] = statistics.median(times) * 1e3
    await store.delete_namespace(None)
    await client.aclose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--redis-url", help="default: a private redis-server")
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if url is None:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="evllm-rebuild-"))).start()
        url = server.url
    try:
        figures = asyncio.run(run(args.entries, url))
    finally:
        if server is not None:
            server.kill()
    for name, value in figures.items():
        print(f"{name:<24} {value:,.3f}")


if __name__ == "__main__":
    main()
