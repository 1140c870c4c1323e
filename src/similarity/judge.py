"""The pair judge: a cross-encoder that reads two prompts together and says how
likely they ask the same thing.

The judge is multilingual-e5-small's encoder with a low-rank adapter (LoRA) on
its attention and feed-forward weights and a one-logit head, trained by
:mod:`src.similarity.judge_training`. The repository ships only what training
changed (``judge_model/adapter.safetensors``, under 10 MB) and the calibration
curve measured on held-apart data (``judge_model/calibration.json``).
:func:`build_judge` merges the adapter into the base weights once, into an
ordinary Hugging Face folder in the model cache; :class:`PairJudge` loads that
folder with sentence-transformers' ``CrossEncoder``. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from src.errors import EnhancedVLLMError
from src.similarity.models import MULTILINGUAL_E5, ModelFileError, resolve_model
from src.workers import StageWorkers, off_loop

logger = logging.getLogger(__name__)

__all__ = [
    "ADAPTER_FILE",
    "CALIBRATION_FILE",
    "JUDGES",
    "MIN_FALSE_HITS",
    "RESEARCH_JUDGE",
    "SHIPPED_JUDGE",
    "Calibration",
    "JudgeError",
    "PairJudge",
    "Scoring",
    "build_judge",
    "judge_folder",
    "lora_targets",
]

#: The folder that holds the shipped adapter and its calibration.
SHIPPED_JUDGE = Path(__file__).with_name("judge_model")
#: The opt-in judge that also learned from research-only data (docs/judge.md).
RESEARCH_JUDGE = Path(__file__).with_name("judge_model_research")
#: Judges by the name ``SimilarityConfig.judge_model`` gives them.
JUDGES = {"default": SHIPPED_JUDGE, "research": RESEARCH_JUDGE}
ADAPTER_FILE = "adapter.safetensors"
CALIBRATION_FILE = "calibration.json"
#: How a pair is read. ``"canonical"``: once, its two sides in a fixed order (the
#: one that sorts first leads), so the score does not depend on which prompt was
#: stored first. ``"both"``: in both orders, the two probabilities averaged (twice
#: the cost; calibrations written before the scoring was recorded were measured so).
#: A calibration curve holds only for the scoring it was measured with, so the
#: judge reads pairs the way its calibration says.
Scoring = Literal["canonical", "both"]
#: Bumped whenever the folder :func:`build_judge` writes changes.
_BUILD_VERSION = 1
#: Linear layers of a BERT layer that carry an adapter.
_LORA_MODULES = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def keep_layers(model: Any, layers: int) -> Any:
    """``model`` (a BERT model) with only its first ``layers`` encoder layers."""
    encoder = model.bert.encoder
    if not 1 <= layers <= len(encoder.layer):
        raise JudgeError(f"layers must be in 1..{len(encoder.layer)}, not {layers}")
    encoder.layer = encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    return model


class JudgeError(EnhancedVLLMError, RuntimeError):
    """The pair judge's files are missing or inconsistent, or it was used unstarted."""


def lora_targets(num_layers: int, first_layer: int) -> list[str]:
    """Names (under ``bert.encoder.layer``) of the linear layers that carry an adapter."""
    return [
        f"bert.encoder.layer.{layer}.{module}"
        for layer in range(first_layer, num_layers)
        for module in _LORA_MODULES
    ]


#: A curve answers a false-hit target only when the data it was measured on held
#: at least this many different-meaning pairs per target share (different pairs x
#: target >= 10): below that, the rate at the threshold rests on a handful of pairs.
#: A language's own curve that falls short gives way to the curve of all languages.
MIN_FALSE_HITS = 10


@dataclass(frozen=True)
class Calibration:
    """What a probability threshold costs, measured on data the judge never trained on.

    The judge's scores are not equally spread in every language (a judge that
    learned mostly from Chinese pairs is surer of them), so a target false-hit
    rate can map to a different threshold per language: ``languages`` holds a
    curve for each language of the held-apart pairs, used for a target where it
    has data enough (:data:`MIN_FALSE_HITS`); the top-level curve (all languages
    together) serves the others.

    Attributes:
        thresholds: Increasing probability thresholds.
        false_hit_rates: Share of different-meaning pairs scoring at or above each.
        recalls: Share of same-meaning pairs scoring at or above each.
        data: What the curve was measured on.
        negatives: How many different-meaning pairs it was measured on (0: not recorded).
        languages: Curves measured on one language's pairs only, by language code.
        scoring: How the pairs were read (:data:`Scoring`).
    """

    thresholds: tuple[float, ...]
    false_hit_rates: tuple[float, ...]
    recalls: tuple[float, ...]
    data: str = ""
    negatives: int = 0
    languages: Mapping[str, Calibration] = field(default_factory=dict)
    scoring: Scoring = "canonical"

    @classmethod
    def measure(
        cls,
        probabilities: np.ndarray,
        same: np.ndarray,
        data: str = "",
        steps: int = 200,
        scoring: Scoring = "canonical",
    ) -> Calibration:
        """The curve of ``probabilities`` against their labels, on a fixed grid.

        The false-hit rate is made non-increasing along the grid (a running
        maximum from the top), so a stricter target never gets a lower threshold.
        """
        probabilities = np.asarray(probabilities, dtype=np.float64)
        same = np.asarray(same, dtype=bool)
        if same.all() or not same.any():
            raise ValueError("calibration needs pairs of both labels")
        grid = np.linspace(0.0, 1.0, steps + 1)
        negatives, positives = np.sort(probabilities[~same]), np.sort(probabilities[same])
        false_hits = 1.0 - np.searchsorted(negatives, grid, side="left") / len(negatives)
        recalls = 1.0 - np.searchsorted(positives, grid, side="left") / len(positives)
        false_hits = np.maximum.accumulate(false_hits[::-1])[::-1]
        return cls(
            tuple(round(float(t), 6) for t in grid),
            tuple(round(float(f), 6) for f in false_hits),
            tuple(round(float(r), 6) for r in recalls),
            data,
            negatives=len(negatives),
            scoring=scoring,
        )

    @classmethod
    def measure_by_language(
        cls,
        probabilities: np.ndarray,
        same: np.ndarray,
        languages: Sequence[str],
        data: str = "",
        scoring: Scoring = "canonical",
    ) -> Calibration:
        """The curve of all pairs, with a curve for each language that has pairs of
        both labels."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        same = np.asarray(same, dtype=bool)
        codes = np.asarray(languages)
        if len(codes) != len(same):
            raise ValueError("one language per pair is needed")
        overall = cls.measure(probabilities, same, data, scoring=scoring)
        curves = {}
        for code in sorted(set(codes.tolist())):
            mine = codes == code
            negatives, positives = int((mine & ~same).sum()), int((mine & same).sum())
            if negatives and positives:
                curves[code] = cls.measure(
                    probabilities[mine],
                    same[mine],
                    f"{negatives} different and {positives} same pairs in {code}",
                    scoring=scoring,
                )
        return replace(overall, languages=curves)

    def answers(self, max_false_hit_rate: float) -> bool:
        """Whether this curve rests on data enough for the target (:data:`MIN_FALSE_HITS`)."""
        return self.negatives * max_false_hit_rate >= MIN_FALSE_HITS

    def threshold_for(self, max_false_hit_rate: float, language: str | None = None) -> float:
        """The lowest threshold whose false-hit rate is at most the target, on the
        curve of ``language`` where there is one with data enough for the target,
        else on the curve of all languages."""
        if not 0.0 <= max_false_hit_rate <= 1.0:
            raise ValueError(f"max_false_hit_rate must be in [0, 1], not {max_false_hit_rate}")
        curve = self.languages.get(language or "", self)
        if not curve.answers(max_false_hit_rate):
            curve = self
        for threshold, rate in zip(curve.thresholds, curve.false_hit_rates, strict=True):
            if rate <= max_false_hit_rate:
                return threshold
        return 1.0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "data": self.data,
            "thresholds": list(self.thresholds),
            "false_hit_rates": list(self.false_hit_rates),
            "recalls": list(self.recalls),
            "negatives": self.negatives,
            "scoring": self.scoring,
        }
        if self.languages:
            data["languages"] = {code: c.to_json() for code, c in self.languages.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        """Read a curve; files without ``languages`` (written before it existed)
        hold one curve for all languages, and files without ``scoring`` were
        measured reading each pair in both orders."""
        scoring = data.get("scoring", "both")
        if scoring not in get_args(Scoring):
            raise JudgeError(f"calibration scoring {scoring!r} is not one of {get_args(Scoring)}")
        try:
            languages = {
                str(code): cls.from_json(curve)
                for code, curve in dict(data.get("languages") or {}).items()
            }
            curve = cls(
                tuple(data["thresholds"]),
                tuple(data["false_hit_rates"]),
                tuple(data["recalls"]),
                str(data.get("data", "")),
                int(data.get("negatives", 0)),
                languages,
                scoring,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JudgeError(f"calibration is missing a field: {exc}") from exc
        if not len(curve.thresholds) == len(curve.false_hit_rates) == len(curve.recalls):
            raise JudgeError("calibration arrays differ in length")
        return curve


def judge_folder(name: str) -> Path:
    """The folder of the judge ``name``: ``"default"``, ``"research"`` or a path.

    Raises:
        JudgeError: ``name`` is neither a known judge nor a folder with an adapter.
    """
    folder = JUDGES.get(name) or Path(name).expanduser()
    if not (folder / ADAPTER_FILE).is_file():
        known = ", ".join(repr(k) for k in JUDGES)
        raise JudgeError(
            f"judge_model {name!r}: no {ADAPTER_FILE} in {folder} "
            f"(give {known} or a folder written by 'python -m src train-judge')"
        )
    return folder


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def build_judge(cache_dir: Path | None = None, judge_dir: Path = SHIPPED_JUDGE) -> Path:
    """Build (once) and return the Hugging Face folder of the judge.

    The base is multilingual-e5-small as built by :mod:`src.similarity.models`;
    the adapter in ``judge_dir`` is merged into it (``W + scale * B @ A``), so
    the judge runs at the base model's speed. Written under a temporary name and
    renamed into place, as the embedding model is.
    """
    adapter = judge_dir / ADAPTER_FILE
    if not adapter.is_file():
        raise JudgeError(f"judge adapter {adapter} not found")
    base = Path(resolve_model(MULTILINGUAL_E5, cache_dir)) / "0_Transformer"
    target = base.parent.parent / f"pair-judge-v{_BUILD_VERSION}-{_file_digest(adapter)}"
    if (target / "config.json").is_file():
        return target
    work = Path(tempfile.mkdtemp(prefix=".pair-judge-", dir=target.parent))
    try:
        logger.info("Building the pair judge from %s into %s", adapter, target)
        model = load_judge_model(base, adapter)
        model.save_pretrained(work, safe_serialization=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (base / name).is_file():
                shutil.copy(base / name, work / name)
        try:
            work.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(work)
    return target


def load_judge_model(base: Path, adapter: Path | None) -> Any:
    """A ``BertForSequenceClassification`` on the base weights, adapter merged if given."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(base, num_labels=1)
    if adapter is None:
        return model
    tensors = load_file(str(adapter))
    meta = json.loads((adapter.parent / "adapter.json").read_text(encoding="utf-8"))
    layers = meta.get("settings", {}).get("layers")
    if layers is not None:  # adapters written before the setting keep all layers
        keep_layers(model, int(layers))
    scale = float(meta["alpha"]) / float(meta["rank"])
    state = model.state_dict()
    with torch.no_grad():
        for name, value in tensors.items():
            if name.endswith(".lora_a"):
                stem = name.removesuffix(".lora_a")
                delta = tensors[f"{stem}.lora_b"].float() @ value.float()
                state[f"{stem}.weight"] += scale * delta
            elif not name.endswith(".lora_b"):
                if name not in state or state[name].shape != value.shape:
                    raise ModelFileError(f"adapter tensor {name} does not fit the base model")
                state[name].copy_(value.float())
    model.load_state_dict(state)
    model.eval()
    return model


class PairJudge:
    """Scores prompt pairs in a worker thread, batched per call.

    Args:
        judge_dir: Folder of the adapter and calibration (the shipped one by default).
        cache_dir: Model cache (see :func:`src.similarity.models.default_cache_dir`).
        device: Torch device.
        max_length: Most tokens of a pair read; longer pairs are cut.
        workers: Threads the model runs in (the stage's shared pool); None: asyncio's.
    """

    def __init__(
        self,
        judge_dir: Path | None = None,
        *,
        cache_dir: Path | None = None,
        device: str = "cpu",
        max_length: int = 256,
        workers: StageWorkers | None = None,
    ) -> None:
        self.workers = workers
        self.judge_dir = judge_dir or SHIPPED_JUDGE
        self.cache_dir = cache_dir
        self.device = device
        self.max_length = max_length
        self.calibration: Calibration | None = None
        self.startup_s: float | None = None
        self.scored = 0
        self._model: Any = None

    @property
    def started(self) -> bool:
        return self._model is not None

    async def start(self) -> None:
        """Build (first time) and load the judge in a worker thread. Idempotent."""
        if self._model is not None:
            return
        began = time.perf_counter()
        self.calibration = read_calibration(self.judge_dir)
        self._model = await off_loop(self.workers, self._load)
        self.startup_s = time.perf_counter() - began
        logger.info("Pair judge loaded in %.2f s", self.startup_s)

    def _load(self) -> Any:
        from sentence_transformers import CrossEncoder

        folder = build_judge(self.cache_dir, self.judge_dir)
        return CrossEncoder(str(folder), device=self.device, max_length=self.max_length)

    def load_uncalibrated(self) -> None:
        """Blocking: load the model without a calibration curve, for training to
        score the pairs that curve is measured on."""
        self._model = self._load()

    async def stop(self) -> None:
        """Release the model. Idempotent."""
        self._model = None

    def threshold_for(self, max_false_hit_rate: float, language: str | None = None) -> float:
        """The probability threshold that meets a false-hit target on calibration
        data (of ``language`` where the calibration has a curve for it)."""
        if self.calibration is None:
            raise JudgeError("PairJudge is not started: await start() first")
        return self.calibration.threshold_for(max_false_hit_rate, language)

    @property
    def scoring(self) -> Scoring:
        """How pairs are read: as the calibration was measured; a judge loaded
        without one (to be calibrated) reads each pair once."""
        return self.calibration.scoring if self.calibration is not None else "canonical"

    def score_sync(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        """Blocking: the probability that each pair asks the same thing.

        The score does not depend on which prompt was stored first: each pair is
        read in a fixed order of its two sides (or, for a calibration measured
        so, in both orders with the probabilities averaged; see :data:`Scoring`).
        A pair whose sides read the same once case, spacing and a closing end
        mark are set aside (:func:`surface_form`) scores 1 without a forward
        pass: the model, trained mostly on pairs that differ, does not reliably
        say so itself.
        """
        if self._model is None:
            raise JudgeError("PairJudge is not started: await start() first")
        result = np.ones(len(pairs), dtype=np.float32)
        differ = [i for i, (a, b) in enumerate(pairs) if surface_form(a) != surface_form(b)]
        if differ:
            result[differ] = self._predict([pairs[i] for i in differ], batch_size)
        self.scored += len(pairs)
        return result

    def _predict(self, pairs: list[tuple[str, str]], batch_size: int) -> np.ndarray:
        if self.scoring == "both":
            read = [*pairs, *((b, a) for a, b in pairs)]
        else:
            read = [(a, b) if a <= b else (b, a) for a, b in pairs]
        logits = np.asarray(
            self._model.predict(
                read,
                batch_size=batch_size,
                activation_fn=_identity(),
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float64,
        ).reshape(-1)
        probabilities = _sigmoid(logits)
        if self.scoring == "both":
            probabilities = (probabilities[: len(pairs)] + probabilities[len(pairs) :]) / 2.0
        return probabilities.astype(np.float32)

    async def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """:meth:`score_sync` in a worker thread."""
        return await off_loop(self.workers, self.score_sync, list(pairs))


def read_calibration(judge_dir: Path) -> Calibration:
    path = judge_dir / CALIBRATION_FILE
    try:
        return Calibration.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise JudgeError(f"judge calibration {path} not found") from exc
    except json.JSONDecodeError as exc:
        raise JudgeError(f"judge calibration {path} is not JSON: {exc}") from exc


def surface_form(text: str) -> str:
    """``text`` with case folded, runs of spaces made one and closing end marks and
    spaces dropped: two prompts with the same surface form ask the same thing."""
    return " ".join(text.casefold().split()).rstrip("?.!。？！ ")


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))


def _identity() -> Any:
    import torch

    return torch.nn.Identity()
