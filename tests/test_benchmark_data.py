"""The labelled pair sets the semantic-quality benchmark reports on."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.semantic_quality import (
    DEFAULT_FILES,
    full_decision_sweep,
    load,
    rephrased_negatives,
)

KINDS = {
    "paraphrase", "subject", "entity", "number", "date", "negation", "direction", "task",
    "language", "unrelated",
}  # fmt: skip
# Sets before this one reused some earlier prompts in new pairs; from it on, none may.
FIRST_WITHOUT_REPEATS = "semantic_pairs_holdout6"


@pytest.mark.parametrize("path", DEFAULT_FILES, ids=lambda p: Path(p).stem)
def test_rows_are_well_formed(path) -> None:
    rows = load(Path(path))
    assert rows
    for row in rows:
        assert row["kind"] in KINDS, row
        assert row["lang"] in ("en", "zh"), row
        assert row["a"].strip() and row["b"].strip() and row["a"] != row["b"], row
    assert any(r["kind"] == "paraphrase" for r in rows)
    assert any(r["kind"] != "paraphrase" for r in rows)


def test_no_newer_set_repeats_an_earlier_prompt() -> None:
    names = [Path(p).stem for p in DEFAULT_FILES]
    assert FIRST_WITHOUT_REPEATS in names
    seen: dict[str, str] = {}
    for name, path in zip(names, DEFAULT_FILES, strict=True):
        prompts = {row[k] for row in load(Path(path)) for k in "ab"}
        if names.index(name) >= names.index(FIRST_WITHOUT_REPEATS):
            repeated = {p: seen[p] for p in prompts if p in seen}
            assert not repeated, f"{name} repeats prompts of earlier sets: {repeated}"
        for prompt in prompts:
            seen.setdefault(prompt, name)


def test_rephrased_negatives_pair_each_negative_with_the_paraphrases_of_its_prompts() -> None:
    rows = [
        {"lang": "en", "kind": "paraphrase", "a": "cats live", "b": "cat lifespan"},
        {"lang": "en", "kind": "paraphrase", "a": "dogs live", "b": "dog lifespan"},
        {"lang": "en", "kind": "subject", "a": "cats live", "b": "dogs live"},
        {"lang": "en", "kind": "number", "a": "2 eggs", "b": "3 eggs"},
    ]
    pairs = {(r["kind"], r["a"], r["b"]) for r in rephrased_negatives(rows)}
    assert pairs == {
        ("rephrased subject", "cat lifespan", "dogs live"),
        ("rephrased subject", "cats live", "dog lifespan"),
    }


def test_full_decision_sweep_counts_hits_per_family_at_each_threshold() -> None:
    results = [
        {"kind": "paraphrase", "score": 0.97, "hit": True},
        {"kind": "paraphrase", "score": 0.92, "hit": True},
        {"kind": "paraphrase", "score": 0.99, "hit": False},  # rejected by a guard
        {"kind": "subject", "score": 0.95, "hit": True},
        {"kind": "rephrased subject", "score": 0.91, "hit": True},
        {"kind": "cross", "score": 0.94, "hit": False},
    ]
    (t1, low), (t2, high) = full_decision_sweep(results, [0.90, 0.93])
    assert (t1, t2) == (0.90, 0.93)
    assert low == {"paraphrase": (2, 3), "labelled": (1, 1), "rephrased": (1, 1), "cross": (0, 1)}
    assert high == {"paraphrase": (1, 3), "labelled": (1, 1), "rephrased": (0, 1), "cross": (0, 1)}
