"""SimilaritySearchHelper on real embeddings, real FAISS and a real Redis."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from src.cache import CachedCompletion, CacheEntry, MemoryBackend, MultiLevelCacheManager
from src.config import SimilarityConfig
from src.similarity import Embedder, SimilaritySearchHelper, VectorIndex, VectorRecord
from src.similarity.models import MINILM
from tests.conftest import wait_until
from tests.support.clock import ManualClock


def prefix() -> str:
    return f"sim-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
async def helper() -> AsyncIterator[SimilaritySearchHelper]:
    """One memory-only helper (models load once); tests use their own namespaces."""
    async with SimilaritySearchHelper(SimilarityConfig()) as started:
        yield started


async def test_paraphrase_is_found_with_its_score(helper, namespace) -> None:
    await helper.add("Why do cats purr?", "purr", namespace=namespace)
    match = await helper.search("What makes cats purr?", namespace=namespace)
    assert match is not None and match.entry_id == "purr"
    assert helper.config.judge_floor <= match.score <= 1.0001
    assert helper.judge_threshold is not None and match.probability is not None
    assert helper.judge_threshold <= match.probability <= 1.0


async def test_prompts_are_preprocessed_only_when_a_stored_one_is_near(namespace) -> None:
    """spaCy runs for a lookup with a candidate above the floor (both sides, kept for
    the next lookup), never for a miss without one nor for indexing an answer."""
    async with SimilaritySearchHelper(SimilarityConfig()) as helper:
        await helper.add("Why do cats purr?", "purr", namespace=namespace)
        assert await helper.search("How far is the Moon from Earth?", namespace=namespace) is None
        assert helper.counts["preprocessed"] == 0
        # Positive control: a paraphrase is near, so both prompts are read.
        match = await helper.search("What makes cats purr?", namespace=namespace)
        assert match is not None and match.entry_id == "purr"
        assert helper.counts["preprocessed"] == 2
        # The stored prompt's features are kept: only the new prompt is read.
        assert await helper.search("What causes cats to purr?", namespace=namespace) is not None
        assert helper.counts["preprocessed"] == 3
        # Clearing forgets the kept features (they hold prompt texts) with the prompts.
        await helper.clear(namespace)
        assert not helper._features


async def test_the_same_text_in_other_case_and_spacing_is_found_without_the_judge(
    helper, namespace
) -> None:
    await helper.add("What is the population of Norway?", "norway", namespace=namespace)
    judged = helper.counts["judged"]
    match = await helper.search("what is  the population of norway", namespace=namespace)
    assert match is not None and match.entry_id == "norway" and match.probability == 1.0
    assert helper.counts["judged"] == judged + 1  # counted as judged, scored as the same


async def test_a_synonym_swap_is_found_through_the_thesaurus(namespace) -> None:
    """Without the judge, the guards read synonyms through the thesaurus."""
    async with SimilaritySearchHelper(SimilarityConfig(judge=False)) as helper:
        await _synonym_swaps(helper, namespace)


async def _synonym_swaps(helper: SimilaritySearchHelper, namespace: str) -> None:
    assert helper.preprocessor.thesaurus is not None
    await helper.add("Where can I buy a cheap sofa?", "sofa", namespace=namespace)
    await helper.add("番茄炒蛋怎么做？", "dish", namespace=namespace)
    match = await helper.search("Where can I buy a cheap couch?", namespace=namespace)
    assert match is not None and match.entry_id == "sofa"
    match = await helper.search("西红柿炒蛋怎么做？", namespace=namespace)
    assert match is not None and match.entry_id == "dish"
    # The guards still tell sister terms apart.
    assert await helper.search("Where can I buy a cheap armchair?", namespace=namespace) is None


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("What is the population of Norway?", "What is the population of Sweden?"),
        ("Give me 4 ideas for a birthday party.", "Give me 9 ideas for a birthday party."),
        ("Is Rome sunny on Monday?", "Is Rome sunny on Friday?"),
        ("Is it safe to swim after eating?", "Is it not safe to swim after eating?"),
        ("Is a dolphin smarter than a dog?", "Is a dog smarter than a dolphin?"),
        ("Write a poem about winter mornings.", "Write an essay about winter mornings."),
        ("How do I learn to play the guitar?", "吉他怎么学？"),
        ("挪威的人口有多少？", "瑞典的人口有多少？"),
        ("周一罗马天气怎么样？", "周五罗马天气怎么样？"),
        ("游泳前可以吃东西吗？", "游泳前不可以吃东西吗？"),
        ("如何学习Rust编程？", "Rust里怎么给数组排序？"),
        ("How do I learn to play the guitar?", "How do I repair a bicycle tyre?"),
    ],
)  # fmt: skip
async def test_hard_negatives_are_rejected(helper, namespace, stored, asked) -> None:
    await helper.add(stored, "stored", namespace=namespace)
    assert await helper.search(stored, namespace=namespace) is not None  # it is indexed
    assert await helper.search(asked, namespace=namespace) is None


async def test_namespaces_and_fingerprints_are_isolated(helper, namespace) -> None:
    await helper.add("Who discovered penicillin?", "e", namespace=namespace, fingerprint="greedy")
    assert await helper.search("Who discovered penicillin?", namespace=namespace + "x",
                               fingerprint="greedy") is None  # fmt: skip
    assert await helper.search("Who discovered penicillin?", namespace=namespace,
                               fingerprint="sampled") is None  # fmt: skip
    assert await helper.search("Who discovered penicillin?", namespace=namespace,
                               fingerprint="greedy") is not None  # fmt: skip


async def test_remove_and_clear(helper, namespace) -> None:
    await helper.add("What is a prime number?", "p", namespace=namespace)
    assert await helper.remove("p", namespace=namespace)
    assert await helper.search("What is a prime number?", namespace=namespace) is None
    await helper.add("What is a prime number?", "p", namespace=namespace)
    assert await helper.clear(namespace) == 1
    assert await helper.search("What is a prime number?", namespace=namespace) is None


async def test_expired_vectors_are_not_matched(namespace) -> None:
    clock = ManualClock()
    async with SimilaritySearchHelper(SimilarityConfig(), clock=clock) as helper:
        await helper.add("How tall is Mount Fuji?", "f", namespace=namespace, ttl_s=10)
        assert await helper.search("How tall is Mount Fuji?", namespace=namespace)
        clock.advance(11)
        assert await helper.search("How tall is Mount Fuji?", namespace=namespace) is None
        assert len(helper.index) == 0


async def test_concurrent_prompts_share_embedding_batches(helper, namespace) -> None:
    batches = helper.embedder.batches
    texts = [f"Question {i}: how do tides work near island {i}?" for i in range(24)]
    await asyncio.gather(*(helper.search(t, namespace=namespace) for t in texts))
    assert helper.embedder.batches - batches < len(texts)


async def test_evicted_answer_takes_its_vector_along(helper, namespace) -> None:
    clock = ManualClock()
    memory = MemoryBackend(max_entries=1, max_bytes=1 << 20, clock=clock)
    cache = MultiLevelCacheManager([memory])
    helper.follow_evictions(cache)
    for digest, prompt in (("old", "How do volcanoes erupt?"), ("new", "Why do leaves fall?")):
        await helper.add(prompt, digest, namespace=namespace)
        await cache.set(
            CacheEntry(
                key=digest, namespace=namespace, model="m", prompt=prompt, prompt_token_ids=None,
                completions=[CachedCompletion(index=0, text="x", token_ids=[1],
                                              finish_reason="stop")],
                created_at=clock(), expires_at=clock() + 60,
            )
        )  # fmt: skip
    assert memory.stats.evictions == 1
    assert await helper.search("How do volcanoes erupt?", namespace=namespace) is None
    assert await helper.search("Why do leaves fall?", namespace=namespace) is not None


# ---------------------------------------------------------------------- the FAISS index


def record(i: int, namespace: str = "ns", dim: int = 8) -> VectorRecord:
    rng = np.random.default_rng(i)
    vector = rng.standard_normal(dim).astype(np.float32)
    vector /= np.linalg.norm(vector)
    return VectorRecord(f"e{i}", namespace, "fp", f"t{i}", 1e12, vector)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_index_add_search_remove_and_bound(kind) -> None:
    index = VectorIndex(8, kind=kind, max_entries=50)
    for i in range(80):
        index.add(record(i))
    assert len(index) == 50 and index.evictions == 30
    hits = index.search(record(70).vector, "ns", "fp", 3, now=0)
    assert hits[0][0].entry_id == "e70" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert index.search(record(5).vector, "ns", "fp", 1, now=0)[0][0].entry_id != "e5"  # evicted
    for i in range(30, 75):
        assert index.remove("ns", f"e{i}")
    hits = index.search(record(70).vector, "ns", "fp", 3, now=0)
    assert all(r.entry_id != "e70" for r, _ in hits)
    assert index.search(record(70).vector, "other", "fp", 3, now=0) == []


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_index_is_safe_under_concurrent_add_search_remove(kind) -> None:
    index = VectorIndex(8, kind=kind, max_entries=400)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(offset, offset + 300):
                index.add(record(i, namespace=f"ns{i % 3}"))
                index.search(record(i).vector, f"ns{i % 3}", "fp", 5, now=0)
                if i % 4 == 0:
                    index.remove(f"ns{i % 3}", f"e{i - 2}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert 0 < len(index) <= 400
    for r in index.records():  # every record left is findable
        assert index.search(r.vector, r.namespace, "fp", 1, now=0)[0][0].entry_id == r.entry_id


async def test_prompts_longer_than_the_embedding_window_are_never_matched(helper, namespace):
    """The model reads 512 tokens: two long prompts differing only past that point
    would embed alike, so neither is indexed nor looked up (exact hits only)."""
    document = " ".join(f"Paragraph {i} of the report says sales rose." for i in range(120))
    assert not helper.embedder.fits(document)
    before = len(helper.index)
    await helper.add(f"{document}\nQuestion: what was the trend?", "long", namespace=namespace)
    assert len(helper.index) == before
    asked = f"{document}\nQuestion: what was the cause?"
    rejected = helper.counts["rejected:too long"]
    assert await helper.search(asked, namespace=namespace) is None
    assert helper.counts["rejected:too long"] == rejected + 1
    assert helper.embedder.fits("Question: what was the trend?")


async def test_index_file_survives_a_restart(tmp_path, namespace) -> None:
    # Paraphrases the judge turns away (a rainbow forms / is formed): this test is
    # about the index file, so the cosine and guards decide.
    config = SimilarityConfig(index_path=tmp_path / "index.npz", judge=False)
    async with SimilaritySearchHelper(config) as first:
        await first.add("How does a rainbow form?", "r", namespace=namespace)
    async with SimilaritySearchHelper(config) as second:
        match = await second.search("How is a rainbow formed?", namespace=namespace)
        assert match is not None and match.entry_id == "r"


# ---------------------------------------------------------------------- shared through Redis


async def test_restart_rebuilds_the_index_from_redis(redis_server, namespace) -> None:
    shared = {"redis_url": redis_server.url, "key_prefix": prefix()}
    async with SimilaritySearchHelper(SimilarityConfig(), **shared) as first:
        await first.add("What do pandas eat?", "panda", namespace=namespace)
    async with SimilaritySearchHelper(SimilarityConfig(), **shared) as restarted:
        assert len(restarted.index) == 1
        match = await restarted.search("What is the diet of a panda?", namespace=namespace)
        assert match is not None and match.entry_id == "panda"


async def test_two_instances_see_each_others_entries(redis_server, namespace) -> None:
    shared = {"redis_url": redis_server.url, "key_prefix": prefix()}
    rules = SimilarityConfig(judge=False)  # sharing is under test, not the judge
    async with (
        SimilaritySearchHelper(rules, **shared) as a,
        SimilaritySearchHelper(rules, **shared) as b,
    ):
        await a.add("How do bees make honey?", "honey", namespace=namespace)
        assert await wait_until(lambda: len(b.index) == 1)
        match = await b.search("How is honey made by bees?", namespace=namespace)
        assert match is not None and match.entry_id == "honey"
        await b.remove("honey", namespace=namespace)
        assert await wait_until(lambda: len(a.index) == 0)


async def test_bad_records_in_redis_are_skipped(redis_server, namespace) -> None:
    shared = {"redis_url": redis_server.url, "key_prefix": prefix()}
    vec_prefix = f"{shared['key_prefix']}vec:{Embedder().space}:{{{namespace}}}"
    raw = redis_server.client()
    raw.hset(f"{vec_prefix}:bad", mapping={"vector": b"xx", "meta": b"{"})
    pickled = {"vector": b"\x80\x04", "meta": b"\x80\x04."}
    raw.hset(f"{vec_prefix}:pickle", mapping=pickled)
    raw.close()
    async with SimilaritySearchHelper(SimilarityConfig(), **shared) as helper:
        assert len(helper.index) == 0 and helper._store.invalid == 2
        await helper.add("Why is the ocean salty?", "salt", namespace=namespace)
        assert await helper.search("What makes the ocean salty?", namespace=namespace)


async def test_records_written_before_the_text_field_are_still_read(
    redis_server, namespace
) -> None:
    """Version-1 records kept the prompt inside its features; they rebuild and match."""
    shared = {"redis_url": redis_server.url, "key_prefix": prefix()}
    async with SimilaritySearchHelper(SimilarityConfig(), **shared) as writer:
        await writer.add("Why is the ocean salty?", "salt", namespace=namespace)
    raw = redis_server.client()
    (key,) = raw.keys(f"{shared['key_prefix']}vec:*")
    meta = json.loads(raw.hget(key, "meta"))
    assert meta["v"] == 2
    text = meta.pop("text")
    meta |= {"v": 1, "features": {"text": text, "language": "en", "entities": []}}
    raw.hset(key, "meta", json.dumps(meta))
    raw.close()
    async with SimilaritySearchHelper(SimilarityConfig(), **shared) as helper:
        assert helper._store.invalid == 0
        match = await helper.search("What makes the ocean salty?", namespace=namespace)
        assert match is not None and match.entry_id == "salt" and match.text == text


@pytest.mark.faults
async def test_stray_keys_under_the_vector_prefix_do_not_empty_the_rebuild(
    redis_server, namespace
) -> None:
    """A string key (WRONGTYPE for HGETALL) and a hash whose metadata is a JSON list
    are each skipped and counted; the valid record beside them is rebuilt."""
    shared = {"redis_url": redis_server.url, "key_prefix": prefix()}
    async with SimilaritySearchHelper(SimilarityConfig(), **shared) as writer:
        await writer.add("Why is the ocean salty?", "salt", namespace=namespace)
    vec_prefix = f"{shared['key_prefix']}vec:{Embedder().space}:{{{namespace}}}"
    raw = redis_server.client()
    raw.set(f"{vec_prefix}:a-string", b"not a hash")
    raw.hset(f"{vec_prefix}:a-list", mapping={"vector": b"\0" * 16, "meta": b"[1, 2]"})
    raw.close()
    async with SimilaritySearchHelper(SimilarityConfig(), **shared) as helper:
        assert helper._store.invalid == 2
        assert [r.entry_id for r in helper.index.records()] == ["salt"]


async def test_vectors_of_another_embedding_model_are_never_compared(
    redis_server, namespace, tmp_path
) -> None:
    """A model change, or two models on one Redis, must not mix vector spaces:
    the vectors have the same size but mean different things."""
    shared = {"redis_url": redis_server.url, "key_prefix": prefix()}
    english = SimilarityConfig(embedding_model=MINILM)
    async with (
        SimilaritySearchHelper(SimilarityConfig(), **shared) as e5,
        SimilaritySearchHelper(SimilarityConfig(), **shared) as e5_peer,
    ):
        await e5.add("What do koalas eat?", "koala", namespace=namespace)
        async with SimilaritySearchHelper(english, **shared) as minilm:
            assert len(minilm.index) == 0
            await minilm.add("What do wombats eat?", "wombat", namespace=namespace)
            assert await minilm.search("What do koalas eat?", namespace=namespace) is None
        # Announced after minilm's entry: once e5 has it, it has read past the wombat.
        await e5_peer.add("What do pandas eat?", "panda", namespace=namespace)
        assert await wait_until(lambda: len(e5.index) == 2)
        assert {r.entry_id for r in e5.index.records()} == {"koala", "panda"}

    path = tmp_path / "index.npz"
    async with SimilaritySearchHelper(SimilarityConfig(index_path=path)) as e5:
        await e5.add("What do koalas eat?", "koala", namespace=namespace)
    async with SimilaritySearchHelper(
        SimilarityConfig(index_path=path, embedding_model=MINILM)
    ) as minilm:
        assert len(minilm.index) == 0


def _fake_reply(words: list[str]) -> bytes:
    """What a Redis 7 server answers to the commands a client sends before the rebuild."""
    command = words[0].upper()
    if command == "HELLO":  # the handshake: the server's details, in the protocol asked for
        fields = {"server": "redis", "version": "7.2.0", "proto": None, "mode": "standalone"}
        protocol = int(words[1]) if len(words) > 1 else 2
        body = b""
        for key, value in fields.items():
            body += b"$%d\r\n%s\r\n" % (len(key), key.encode())
            body += (
                b":%d\r\n" % protocol
                if value is None
                else b"$%d\r\n%s\r\n" % (len(value), value.encode())
            )
        head = b"%%%d\r\n" % len(fields) if protocol == 3 else b"*%d\r\n" % (2 * len(fields))
        return head + body
    if command in ("XREVRANGE", "XREAD"):
        return b"*0\r\n"
    return b"+OK\r\n"


@pytest.mark.faults
async def test_a_redis_stalling_mid_rebuild_does_not_stall_start(namespace) -> None:
    """A Redis that answers the first commands, then nothing (a wedged server)
    costs start a timeout, not forever; the index then works locally."""
    seen: list[str] = []
    held: list[asyncio.StreamWriter] = []

    async def wedged(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while header := await reader.readline():  # one RESP array per command
            words = []
            for _ in range(int(header[1:])):
                size = int((await reader.readline())[1:])
                words.append((await reader.readexactly(size + 2))[:-2].decode())
            seen.append(words[0].upper())
            if seen[-1] == "SCAN":
                continue  # the rebuild's first read: never answered
            writer.write(_fake_reply(words))
            await writer.drain()

    server = await asyncio.start_server(wedged, "127.0.0.1", 0)
    url = f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    helper = SimilaritySearchHelper(
        SimilarityConfig(), redis_url=url, key_prefix=prefix(), redis_timeout_s=0.2
    )
    try:
        await asyncio.wait_for(helper.start(), 30)
        async with helper:
            assert "SCAN" in seen
            assert helper.describe()["state"] == "degraded"
            await helper.add("Why do cats purr?", "purr", namespace=namespace)
            assert await helper.search("What makes cats purr?", namespace=namespace)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.faults
async def test_after_a_redis_failure_writes_skip_redis_and_warn_once(namespace, caplog) -> None:
    """During an outage a miss must not wait for the Redis timeout on every vector
    write, and the log gets one warning, not one per request."""
    import logging

    from src.cache.redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    helper = SimilaritySearchHelper(
        SimilarityConfig(), redis_url=url, key_prefix=prefix(), retry_interval_s=600
    )
    async with helper:
        errors = helper.describe()["redis_errors"]  # the rebuild at start failed
        assert errors >= 1
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="src.similarity.helper"):
            for i in range(5):
                await helper.add(f"How do tides work, part {i}?", f"t{i}", namespace=namespace)
        described = helper.describe()
        assert described["redis_errors"] == errors and described["redis_skipped"] == 5
        assert described["state"] == "degraded" and len(helper.index) == 5
        assert not [r for r in caplog.records if r.name == "src.similarity.helper"]


@pytest.mark.faults
async def test_redis_down_keeps_the_index_local(namespace) -> None:
    from src.cache.redis_server import free_port

    config = SimilarityConfig(judge=False)  # the local index is under test, not the judge
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with SimilaritySearchHelper(config, redis_url=url, key_prefix=prefix()) as helper:
        await helper.add("How do magnets work?", "m", namespace=namespace)
        assert await helper.search("How does a magnet work?", namespace=namespace)
        assert helper.describe()["state"] == "degraded"


async def test_concurrent_add_search_remove_through_the_helper(helper, namespace) -> None:
    topics = ["rivers", "volcanoes", "glaciers", "deserts", "forests", "oceans", "caves", "reefs"]

    async def churn(i: int) -> None:
        topic = topics[i % len(topics)]
        await helper.add(f"How are {topic} formed, part {i}?", f"c{i}", namespace=namespace)
        await helper.search(f"How do {topic} form, part {i}?", namespace=namespace)
        if i % 3 == 0:
            await helper.remove(f"c{i}", namespace=namespace)

    await asyncio.gather(*(churn(i) for i in range(48)))
    kept = {r.entry_id for r in helper.index.records() if r.namespace == namespace}
    assert kept == {f"c{i}" for i in range(48) if i % 3}
