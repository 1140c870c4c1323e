"""Quality of the semantic stage on labelled pairs: would a stored ``a`` answer ``b``?

Any JSON-lines file with ``a``, ``b``, ``same`` (bool) and ``lang`` fields works
(the format of ``shared/datasets``). Each file is one set. For each set the
benchmark prints recall (same-meaning pairs served) and false hits
(different-meaning pairs served), per language and together, for:

- **full**: the decision the cache makes at the given settings (cosine floor,
  guards, judge);
- **cosine**: the embedding's cosine alone at ``SimilarityConfig.threshold``,
  the same embedder in the same run;
- **judge**: the judge alone above the floor (no guards);
- **ranking**: on the pairs at or above the floor, the ROC AUC of the cosine and
  of the judge's probability (how well each orders same before different pairs,
  whatever the threshold);
- with ``--sweep``, the full decision at several false-hit targets;
- with ``--ablation``, the judge with each guard added alone as a veto;
- with ``--crowded``, the set as one cache: every ``a`` and the ``b`` of each
  different pair are stored in one namespace, then the ``b`` of each same pair
  is looked up through the cache's own search, with every candidate the index
  returns, as in service. It prints how often the lookup served the pair's own
  ``a``, another stored prompt (unlabelled: a wrong answer or another
  paraphrase of the question) or nothing, and how many pairs the judge read
  per lookup.

Run from the repository root::

    .venv/bin/python -m benchmarks.semantic_quality [FILE ...] [--limit N] [--no-judge]
        [--judge-model NAME] [--target RATE] [--sweep] [--ablation] [--crowded] [--json FILE]

With no file: the public sets in ``../shared/datasets`` and the project's own
test pairs. ``--limit N`` takes, per set, up to N same and N different pairs,
chosen by a stable hash of the pair (default 300; 0 takes all). Of the files the
judge trained on (PAWS-X), only the held-out lines are read; they are the judge's
calibration data, so their figures are tuned-on, not held-out. With
a judge trained with ``--research`` (``--judge-model research``, or a folder
whose ``adapter.json`` says so) the research-only files that judge learned from
(LCQMC dev, MRPC train) are read only in their held-out fifth; BQ dev it never saw.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import asyncio
import bisect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from src.config import SimilarityConfig
from src.nlp.preprocessor import detect_language
from src.similarity.helper import GUARDS, PairVerdict, SimilaritySearchHelper
from src.similarity.judge import judge_folder
from src.similarity.judge_data import Pair, read_pairs, split_of
from src.similarity.judge_training import (
    PERMISSIVE,
    RESEARCH_REPORTED,
    held_out_rows,
    research_role,
    settings_of,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
OWN_TEST = ROOT / "benchmarks" / "data" / "own_pairs_test.jsonl"
PUBLIC = ("pawsx_en_dev", "pawsx_zh_dev", "lcqmc_dev", "bq_dev", "mrpc_train")
DEFAULT_FILES = [*(SHARED / f"{name}.jsonl" for name in PUBLIC), OWN_TEST]
TARGETS = (0.005, 0.01, 0.02, 0.05, 0.1)


def public_pairs(limit: int) -> list[Pair]:
    """The first ``limit`` pairs of each public set, in file order."""
    return [p for name in PUBLIC for p in read_pairs(SHARED / f"{name}.jsonl")[:limit]]


def sample(pairs: list[Pair], limit: int) -> list[Pair]:
    """Up to ``limit`` same and ``limit`` different pairs, by a stable hash order."""
    if not limit:
        return pairs
    ranked = sorted(pairs, key=lambda p: split_of(p, 1 << 30))
    same = [p for p in ranked if p.same][:limit]
    different = [p for p in ranked if not p.same][:limit]
    return same + different


@dataclass
class Scored:
    pair: Pair
    verdict: PairVerdict


def rates(rows: list[Scored], decide) -> tuple[float, float, int, int]:  # type: ignore[no-untyped-def]
    """Recall and false-hit rate of a decision over rows, and the two counts."""
    same = [r for r in rows if r.pair.same]
    different = [r for r in rows if not r.pair.same]
    recall = sum(map(decide, same)) / len(same) if same else float("nan")
    false_hits = sum(map(decide, different)) / len(different) if different else float("nan")
    return recall, false_hits, len(same), len(different)


def shown_to_judge(row: Scored, floor: float) -> bool:
    """Whether the judge scored the pair: its cosine is at or above the floor."""
    return (
        row.verdict.cosine is not None
        and row.verdict.cosine >= floor
        and row.verdict.probability is not None
    )


def decisions(config: SimilarityConfig, judge_threshold) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The decisions reported; ``judge_threshold(row)`` is the judge's threshold
    for the row's language (None without the judge)."""

    def judged(r: Scored) -> bool:
        return (
            shown_to_judge(r, config.judge_floor)
            and judge_threshold is not None
            and r.verdict.probability >= judge_threshold(r)  # type: ignore[operator]
        )

    return {
        "full": lambda r: r.verdict.hit,
        "cosine": lambda r: r.verdict.cosine is not None and r.verdict.cosine >= config.threshold,
        "judge": judged,
    }


def auc(scores: list[float], same: list[bool]) -> float:
    """Area under the ROC curve: the chance that a same-meaning pair scores above a
    different one (ties count half). NaN when either label is missing."""
    positives = [s for s, y in zip(scores, same, strict=True) if y]
    negatives = sorted(s for s, y in zip(scores, same, strict=True) if not y)
    if not positives or not negatives:
        return float("nan")
    wins = 0.0
    for s in positives:
        below = bisect.bisect_left(negatives, s)
        wins += below + (bisect.bisect_right(negatives, s) - below) / 2
    return wins / (len(positives) * len(negatives))


def ranking(rows: list[Scored], floor: float) -> dict[str, float]:
    """How well the cosine and the judge order the pairs the judge is shown (those
    at or above the floor): ROC AUC of each, on the same pairs."""
    shown = [r for r in rows if shown_to_judge(r, floor)]
    same = [r.pair.same for r in shown]
    return {
        "pairs": len(shown),
        "cosine_auc": auc([r.verdict.cosine for r in shown], same),  # type: ignore[misc]
        "judge_auc": auc([r.verdict.probability for r in shown], same),  # type: ignore[misc]
    }


def line(name: str, rows: list[Scored], decide) -> str:  # type: ignore[no-untyped-def]
    recall, false_hits, n_same, n_diff = rates(rows, decide)
    return (
        f"  {name:<24} recall {recall:6.3f} ({n_same:4d})   "
        f"false hits {false_hits:6.3f} ({n_diff:4d})"
    )


def report(title: str, rows: list[Scored], config: SimilarityConfig,
           threshold: Callable[[Scored], float] | None,
           args: argparse.Namespace) -> dict:  # type: ignore[type-arg]  # fmt: skip
    print(f"\n{title}")
    figures: dict = {}  # type: ignore[type-arg]
    for name, decide in decisions(config, threshold).items():
        for lang in ("en", "zh", "all"):
            subset = [r for r in rows if lang == "all" or r.pair.lang == lang]
            if not subset or (lang != "all" and len(subset) == len(rows)):
                continue
            print(line(f"{name} {lang}", subset, decide))
            recall, false_hits, _, _ = rates(subset, decide)
            figures[f"{name}_{lang}"] = {"recall": recall, "false_hits": false_hits}
    if threshold is not None:
        order = ranking(rows, config.judge_floor)
        print(f"  ranking above the floor  cosine AUC {order['cosine_auc']:.3f}   "
              f"judge AUC {order['judge_auc']:.3f}   ({order['pairs']} pairs)")  # fmt: skip
        figures["ranking"] = order
    return figures


def learned_from_research(config: SimilarityConfig) -> bool:
    """Whether the configured judge was trained with ``--research`` (its adapter.json
    says so): then only the report rows of the research files it read are scored."""
    if not config.judge:
        return False
    meta = json.loads((judge_folder(config.judge_model) / "adapter.json").read_text("utf-8"))
    return bool(meta.get("settings", {}).get("research", False))


def language_of(row: Scored) -> str:
    """The language the cache sees the looked-up prompt in."""
    return detect_language(row.pair.b)


def sweep(rows: list[Scored], config: SimilarityConfig, curve) -> None:  # type: ignore[no-untyped-def]
    languages = sorted({language_of(r) for r in rows})
    for target in TARGETS:
        by_language = {code: curve.threshold_for(target, code) for code in languages}
        decide = decisions(config, lambda r, t=by_language: t[language_of(r)])["judge"]
        shown = ",".join(f"{by_language[c]:.3f}" for c in languages)
        print(line(f"target {target:.3f} (p≥{shown})", rows, decide))


def crowd(pairs: list[Pair]) -> tuple[list[str], list[tuple[str, str]]]:
    """The prompts a crowded cache stores (each ``a``, each different pair's ``b``)
    and the lookups it is asked: (``b``, its ``a``) of each same pair whose ``b``
    is not stored itself."""
    stored = list(dict.fromkeys([p.a for p in pairs] + [p.b for p in pairs if not p.same]))
    kept = set(stored)
    asked = list(dict.fromkeys((p.b, p.a) for p in pairs if p.same and p.b not in kept))
    return stored, asked


async def crowded(helper: SimilaritySearchHelper, pairs: list[Pair], name: str) -> dict[str, float]:
    """Look up each asked prompt in one namespace holding all stored ones."""
    stored, asked = crowd(pairs)
    namespace = f"crowded-{name}"
    for text in stored:
        await helper.add(text, text, namespace=namespace)
    judged = helper.counts["judged"]
    own = other = 0
    for text, answer in asked:
        match = await helper.search(text, namespace=namespace)
        if match is None:
            continue
        if match.entry_id == answer:
            own += 1
        else:
            other += 1
    await helper.clear(namespace)
    n = max(len(asked), 1)
    figures = {"stored": len(stored), "asked": len(asked), "own": own / n, "other": other / n,
               "judged_per_lookup": (helper.counts["judged"] - judged) / n}  # fmt: skip
    print(f"  crowded: {len(stored)} stored, {len(asked)} asked: own pair {own} "
          f"({figures['own']:.3f}), another prompt {other} ({figures['other']:.3f}), "
          f"none {len(asked) - own - other}; judge read "
          f"{figures['judged_per_lookup']:.2f} pairs per lookup")  # fmt: skip
    return figures


def ablation(rows: list[Scored], config: SimilarityConfig, threshold) -> None:  # type: ignore[no-untyped-def]
    judge = decisions(config, threshold)["judge"]
    print(line("judge alone", rows, judge))
    for guard in GUARDS:
        print(line(f"judge + {guard}", rows,
                   lambda r, g=guard: judge(r) and not r.verdict.vetoes[g]))  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    overrides = {}
    if args.target is not None:
        overrides["max_false_hit_rate"] = args.target
    config = SimilarityConfig(judge=args.judge, judge_model=args.judge_model, **overrides)
    helper = SimilaritySearchHelper(config)
    await helper.start()
    everything: dict[str, dict] = {}  # type: ignore[type-arg]
    try:
        curve = helper.judge.calibration if helper.judge is not None else None
        threshold = (
            (lambda r: helper.threshold_of(language_of(r))) if helper.judge is not None else None
        )
        print(f"judge floor {config.judge_floor}, judge threshold {helper.judge_threshold} "
              f"(by language: {helper.judge_thresholds}), cosine threshold {config.threshold}, "
              f"limit {args.limit} per label")  # fmt: skip
        research_rows_held_back = learned_from_research(config)
        # The PAWS-X lines the judge (or, without one, the default judge) never saw.
        split = settings_of(judge_folder(config.judge_model if config.judge else "default")).split
        for path in args.files or DEFAULT_FILES:
            path = Path(path)
            if not path.is_file():
                print(f"\n{path.name}: not found, skipped")
                continue
            pairs = read_pairs(path)
            if path.name in PERMISSIVE:  # the judge trained on the other lines
                held = held_out_rows(path.name, split, path.parent)
                pairs = [p for p, h in zip(pairs, held, strict=True) if h]
            if research_rows_held_back and path.name in RESEARCH_REPORTED:
                pairs = [p for p in pairs if research_role(path.name, p) == "report"]
            pairs = sample(pairs, args.limit)
            began = time.perf_counter()
            verdicts = await helper.decide_pairs([(p.a, p.b) for p in pairs])
            rows = [Scored(p, v) for p, v in zip(pairs, verdicts, strict=True)]
            title = f"{path.stem}  ({len(rows)} pairs, {time.perf_counter() - began:.0f} s)"
            everything[path.stem] = report(title, rows, config, threshold, args)
            if args.sweep and curve is not None:
                sweep(rows, config, curve)
            if args.ablation and threshold is not None:
                ablation(rows, config, threshold)
            if args.crowded:
                everything[path.stem]["crowded"] = await crowded(helper, pairs, path.stem)
    finally:
        await helper.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="JSON-lines pair files (default: see above)")
    parser.add_argument("--limit", type=int, default=300, help="pairs per label per set")
    parser.add_argument(
        "--judge",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="decide with the pair judge (default) or cosine and guards only",
    )
    parser.add_argument(
        "--judge-model", default="default", help="'default', 'research' or an adapter folder"
    )
    parser.add_argument("--target", type=float, help="override max_false_hit_rate")
    parser.add_argument("--sweep", action="store_true", help="the judge at several targets")
    parser.add_argument("--ablation", action="store_true", help="each guard beside the judge")
    parser.add_argument("--crowded", action="store_true", help="each set stored as one cache")
    parser.add_argument("--json", help="write the figures to this file")
    asyncio.run(main(parser.parse_args()))
