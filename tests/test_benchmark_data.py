"""The project's own labelled pairs, and the benchmark's sampling of pair files."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.semantic_quality import OWN_TEST, sample
from src.similarity.judge_data import Pair, read_pairs
from src.similarity.judge_training import OWN_DEV

KINDS = {
    "paraphrase", "subject", "entity", "number", "date", "negation", "direction", "task",
    "language", "unrelated", "topic",
}  # fmt: skip


@pytest.mark.parametrize("path", [OWN_DEV, OWN_TEST], ids=["dev", "test"])
def test_own_pairs_are_well_formed(path) -> None:
    rows = read_pairs(path)
    assert len(rows) > 1000
    for row in rows:
        assert row.lang in ("en", "zh"), row
        assert row.a.strip() and row.b.strip() and row.a != row.b, row
        assert row.origin.startswith(("dev", "test", "holdout")), row
    assert {r.same for r in rows} == {True, False}
    kinds = {json.loads(line)["kind"] for line in path.read_text(encoding="utf-8").splitlines()}
    assert kinds <= KINDS, kinds - KINDS


def test_own_dev_and_test_share_no_prompt() -> None:
    dev = {t for r in read_pairs(OWN_DEV) for t in (r.a, r.b)}
    test = {t for r in read_pairs(OWN_TEST) for t in (r.a, r.b)}
    assert not dev & test, sorted(dev & test)[:5]


def test_read_pairs_names_the_bad_line(tmp_path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"a": "x", "b": "y", "same": true, "lang": "en"}\n{"a": "x"}\n')
    with pytest.raises(ValueError, match=r"pairs.jsonl:2"):
        read_pairs(path)


def test_sample_takes_up_to_n_of_each_label_stably() -> None:
    pairs = [Pair(f"a{i}", f"b{i}", i % 3 == 0, "en", "t") for i in range(30)]
    taken = sample(pairs, 4)
    assert sum(p.same for p in taken) == 4 and sum(not p.same for p in taken) == 4
    assert sample(list(reversed(pairs)), 4) == taken
    assert sample(pairs, 0) == pairs


def test_only_a_judge_trained_on_research_files_has_their_rows_held_back() -> None:
    from benchmarks.semantic_quality import learned_from_research
    from src.config import SimilarityConfig

    assert learned_from_research(SimilarityConfig(judge_model="research"))
    assert not learned_from_research(SimilarityConfig())
    assert not learned_from_research(SimilarityConfig(judge=False))


def test_auc_is_the_share_of_same_pairs_ranked_above_different_ones() -> None:
    from benchmarks.semantic_quality import auc

    assert auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    # One same pair ties a different one (half a win) and beats the other.
    assert auc([0.5, 0.5, 0.3], [True, False, False]) == 0.75
    assert math.isnan(auc([0.5, 0.6], [True, True]))


def test_ranking_reads_only_pairs_the_judge_was_shown() -> None:
    from benchmarks.semantic_quality import Scored, ranking
    from src.similarity.helper import PairVerdict

    def row(same: bool, cosine: float, probability: float | None) -> Scored:
        return Scored(Pair("a", "b", same, "en", "t"), PairVerdict(cosine, {}, probability, False))

    rows = [
        row(True, 0.90, 0.2), row(False, 0.95, 0.9),  # the judge orders these wrongly
        row(True, 0.99, 0.8), row(False, 0.86, 0.1),
        row(True, 0.50, None), row(False, 0.10, None),  # below the floor: not shown
    ]  # fmt: skip
    order = ranking(rows, floor=0.85)
    assert order["pairs"] == 4
    assert order["cosine_auc"] == 0.75 and order["judge_auc"] == 0.5
    rows[0] = row(True, 0.90, 0.95)
    assert ranking(rows, floor=0.85)["judge_auc"] == 0.75


def test_a_crowded_cache_stores_every_a_and_different_b_and_asks_each_same_b() -> None:
    from benchmarks.semantic_quality import crowd

    pairs = [
        Pair("cats purr?", "why do cats purr?", True, "en", "t"),
        Pair("cats purr?", "do dogs purr?", False, "en", "t"),
        Pair("cats purr?", "why do cats purr?", True, "en", "t"),  # the same lookup twice
        Pair("moon far?", "do dogs purr?", True, "en", "t"),  # its b is stored: not asked
        Pair("sun hot?", "is the sun hot?", True, "en", "t"),
    ]
    stored, asked = crowd(pairs)
    assert stored == ["cats purr?", "moon far?", "sun hot?", "do dogs purr?"]
    assert asked == [("why do cats purr?", "cats purr?"), ("is the sun hot?", "sun hot?")]
