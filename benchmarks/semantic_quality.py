"""Quality of the semantic cache on labelled prompt pairs.

For each pair ``(a, b)``: ``a`` is indexed in a namespace of its own, then ``b``
is looked up. A paraphrase should hit; every other kind (entity swap, changed
number or date, negation, reversed direction, another task or language,
unrelated) must not. Two decisions are scored: the embedding score alone
(``score >= threshold``) and the full decision ``SimilaritySearchHelper`` makes
(score AND the content guards). ``--cross`` adds many unrelated negatives built
from the paraphrases (each ``a`` against every other pair's ``b``); ``--rephrased``
adds each labelled negative reworded (its ``b`` against the paraphrases of its ``a``).

Run from the repository root::

    .venv/bin/python -m benchmarks.semantic_quality [--data FILE ...] [--threshold T] [--sweep]
        [--cross] [--rephrased]

The data files are JSON lines ``{"lang", "kind", "a", "b"}``. The defaults, each
reported apart and then together, are the thirty-eight ``semantic_pairs_*.jsonl`` sets
in ``benchmarks/data/``: ``dev`` (used while choosing the defaults), ``test`` and
``holdout`` to ``holdout36`` (each written before a change and measured after it;
docs/benchmarks.md says which change and how often each has been looked at).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from src.config import SimilarityConfig
from src.similarity import SimilaritySearchHelper

DATA = Path(__file__).parent / "data"
DEFAULT_FILES = [
    DATA / "semantic_pairs_dev.jsonl",
    DATA / "semantic_pairs_test.jsonl",
    DATA / "semantic_pairs_holdout.jsonl",
    DATA / "semantic_pairs_holdout2.jsonl",
    DATA / "semantic_pairs_holdout3.jsonl",
    DATA / "semantic_pairs_holdout4.jsonl",
    DATA / "semantic_pairs_holdout5.jsonl",
    DATA / "semantic_pairs_holdout6.jsonl",
    DATA / "semantic_pairs_holdout7.jsonl",
    DATA / "semantic_pairs_holdout8.jsonl",
    DATA / "semantic_pairs_holdout9.jsonl",
    DATA / "semantic_pairs_holdout10.jsonl",
    DATA / "semantic_pairs_holdout11.jsonl",
    DATA / "semantic_pairs_holdout12.jsonl",
    DATA / "semantic_pairs_holdout13.jsonl",
    DATA / "semantic_pairs_holdout14.jsonl",
    DATA / "semantic_pairs_holdout15.jsonl",
    DATA / "semantic_pairs_holdout16.jsonl",
    DATA / "semantic_pairs_holdout17.jsonl",
    DATA / "semantic_pairs_holdout18.jsonl",
    DATA / "semantic_pairs_holdout19.jsonl",
    DATA / "semantic_pairs_holdout20.jsonl",
    DATA / "semantic_pairs_holdout21.jsonl",
    DATA / "semantic_pairs_holdout22.jsonl",
    DATA / "semantic_pairs_holdout23.jsonl",
    DATA / "semantic_pairs_holdout24.jsonl",
    DATA / "semantic_pairs_holdout25.jsonl",
    DATA / "semantic_pairs_holdout26.jsonl",
    DATA / "semantic_pairs_holdout27.jsonl",
    DATA / "semantic_pairs_holdout28.jsonl",
    DATA / "semantic_pairs_holdout29.jsonl",
    DATA / "semantic_pairs_holdout30.jsonl",
    DATA / "semantic_pairs_holdout31.jsonl",
    DATA / "semantic_pairs_holdout32.jsonl",
    DATA / "semantic_pairs_holdout33.jsonl",
    DATA / "semantic_pairs_holdout34.jsonl",
    DATA / "semantic_pairs_holdout35.jsonl",
    DATA / "semantic_pairs_holdout36.jsonl",
]


#: The start of a rephrased negative's kind ("rephrased subject").
REPHRASED = "rephrased "


def cross_pairs(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Unrelated negatives made from the paraphrases: each ``a`` against every other
    paraphrase's ``b`` of the same language."""
    para = [r for r in rows if r["kind"] == "paraphrase"]
    return [
        {"lang": x["lang"], "kind": "cross", "a": x["a"], "b": y["b"]}
        for x in para
        for y in para
        if x is not y and x["lang"] == y["lang"] and x["a"] != y["a"]
    ]


def rephrased_negatives(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Hard negatives reworded: each labelled negative's ``b`` against every
    paraphrase of its ``a`` (and its ``a`` against every paraphrase of its ``b``).

    A labelled negative changes one thing in otherwise equal words; its rephrased
    form changes that thing and the wording too ("How long does a new piercing take
    to heal?" against "What is the healing time for a fresh tattoo?"), which guards
    that compare words alone find harder. Kind: ``rephrased <kind>``.
    """
    paraphrases: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "paraphrase":
            paraphrases[r["a"]].append(r["b"])
            paraphrases[r["b"]].append(r["a"])
    out = []
    for r in rows:
        if r["kind"] == "paraphrase":
            continue
        kind = f"{REPHRASED}{r['kind']}"
        out += [{"lang": r["lang"], "kind": kind, "a": p, "b": r["b"]} for p in paraphrases[r["a"]]]
        out += [{"lang": r["lang"], "kind": kind, "a": r["a"], "b": p} for p in paraphrases[r["b"]]]
    return out


def load(path: Path) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for i, row in enumerate(rows):
        missing = {"lang", "kind", "a", "b"} - set(row)
        if missing:
            raise ValueError(f"{path}:{i + 1}: missing {sorted(missing)}")
    return rows


async def evaluate(helper: SimilaritySearchHelper, rows: list[dict[str, str]]) -> list[dict]:
    """Score and full decision for every pair."""
    results = []
    for i, row in enumerate(rows):
        namespace = f"pair-{i}"
        stored = await helper.prepare(row["a"], namespace=namespace)
        await helper.index_prompt(stored, f"entry-{i}", helper.clock() + 3600)
        query = await helper.prepare(row["b"], namespace=namespace)
        score = float(np.dot(stored.vector, query.vector))
        before = dict(helper.counts)
        match = await helper.match(query)
        why = [k.removeprefix("rejected:") for k, v in helper.counts.items() if v != before.get(k)]
        why = [w for w in why if w not in ("searches", "hits")]
        results.append({**row, "score": score, "hit": match is not None, "why": ", ".join(why)})
        await helper.clear(namespace)
    return results


def report(results: list[dict], threshold: float, title: str, *, details: bool = True) -> None:
    print(f"\n== {title}: {len(results)} pairs, threshold {threshold}")
    print(f"{'lang':<5}{'kind':<12}{'n':>4}   {'score only':>12}   {'full decision':>14}")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["lang"], r["kind"])].append(r)
    for (lang, kind), rows in sorted(
        groups.items(), key=lambda g: (g[0][0], g[0][1] != "paraphrase", g[0][1])
    ):
        by_score = sum(r["score"] >= threshold for r in rows) / len(rows)
        full = sum(r["hit"] for r in rows) / len(rows)
        label = "recall" if kind == "paraphrase" else "false hits"
        print(f"{lang:<5}{kind:<12}{len(rows):>4}   {by_score:>12.2f}   {full:>14.2f}   ({label})")
    for lang in [*sorted({r["lang"] for r in results}), "all"]:
        mine = [r for r in results if lang == "all" or r["lang"] == lang]
        para = [r for r in mine if r["kind"] == "paraphrase"]
        neg = [r for r in mine if r["kind"] != "paraphrase"]
        if not para or not neg:
            continue
        print(
            f"{lang:<5}recall score-only {np.mean([r['score'] >= threshold for r in para]):.3f}"
            f"  full {np.mean([r['hit'] for r in para]):.3f}   |   false-hit rate"
            f" score-only {np.mean([r['score'] >= threshold for r in neg]):.3f}"
            f"  full {np.mean([r['hit'] for r in neg]):.3f}"
            f"   (paraphrases {len(para)}, negatives {len(neg)})"
        )
    if not details:
        return
    misses = [r for r in results if r["kind"] == "paraphrase" and not r["hit"]]
    wrong = [r for r in results if r["kind"] != "paraphrase" and r["hit"]]
    for r in misses:
        print(f"  missed paraphrase ({r['score']:.3f}, {r['why']}): {r['a']} | {r['b']}")
    for r in wrong:
        print(f"  FALSE HIT {r['kind']} ({r['score']:.3f}): {r['a']} | {r['b']}")


def family(kind: str) -> str:
    """The family a pair's kind is reported under in the sweep of full decisions."""
    if kind == "paraphrase" or kind == "cross":
        return kind
    return "rephrased" if kind.startswith(REPHRASED) else "labelled"


def full_decision_sweep(
    results: list[dict], thresholds: Iterable[float]
) -> list[tuple[float, dict[str, tuple[int, int]]]]:
    """For each threshold, (hits, pairs) of each family under the full decision.

    Each pair is looked up against its own stored prompt alone and the guards do
    not depend on the threshold, so at a threshold ``t`` at or above the run's a
    pair hits when it hit in the run and scores at least ``t``. (Below the run's
    threshold the guards' verdict on the pairs it cut off is unknown.)
    """
    by_family: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_family[family(r["kind"])].append(r)
    return [
        (
            t,
            {
                f: (sum(r["hit"] and r["score"] >= t for r in rows), len(rows))
                for f, rows in by_family.items()
            },
        )
        for t in thresholds
    ]


def sweep(results: list[dict], threshold: float) -> None:
    print("\nthreshold sweep (score only, all languages): threshold  recall  false-hit rate")
    para = np.array([r["score"] for r in results if r["kind"] == "paraphrase"])
    neg = np.array([r["score"] for r in results if r["kind"] != "paraphrase"])
    for t in np.arange(0.60, 0.985, 0.02):
        print(f"  {t:.2f}  {np.mean(para >= t):.3f}  {np.mean(neg >= t):.3f}")
    unrelated = [r["score"] for r in results if r["kind"] in ("cross", "unrelated")]
    print(
        f"lowest paraphrase score {para.min():.3f}"
        + (f"; highest unrelated score {max(unrelated):.3f}" if unrelated else "")
    )
    print("\nthreshold sweep (full decision, all languages): hits / pairs per family")
    steps = [float(t) for t in np.arange(threshold, 0.9601, 0.01)]
    for at, counts in full_decision_sweep(results, steps):
        print(f"  {at:.2f}  " + "  ".join(f"{f} {h}/{n}" for f, (h, n) in sorted(counts.items())))


async def main(args: argparse.Namespace) -> None:
    config = SimilarityConfig(**({"threshold": args.threshold} if args.threshold else {}))
    helper = SimilaritySearchHelper(config)
    await helper.start()
    paths = args.data or DEFAULT_FILES
    everything: list[dict] = []
    try:
        for path in paths:
            rows = load(Path(path))
            if args.rephrased:
                rows += rephrased_negatives(rows)
            if args.cross:
                rows += cross_pairs(rows)
            results = await evaluate(helper, rows)
            everything += results
            report(results, config.threshold, Path(path).name)
            if args.sweep:
                sweep(results, config.threshold)
        if len(paths) > 1:
            report(everything, config.threshold, f"all {len(paths)} sets", details=False)
            if args.sweep:
                sweep(everything, config.threshold)
    finally:
        await helper.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", help="JSON-lines files of labelled pairs")
    parser.add_argument("--threshold", type=float, help="override SimilarityConfig.threshold")
    parser.add_argument("--sweep", action="store_true", help="also print a threshold sweep")
    parser.add_argument(
        "--cross",
        action="store_true",
        help="add every paraphrase's a against every other paraphrase's b as unrelated negatives",
    )
    parser.add_argument(
        "--rephrased",
        action="store_true",
        help="add each labelled negative reworded: its b against every paraphrase of its a",
    )
    asyncio.run(main(parser.parse_args()))
