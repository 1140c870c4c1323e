"""Semantic-similarity settings."""

from __future__ import annotations

from pydantic import Field

from src.config._base import Settings, settings_config

__all__ = ["SimilarityConfig"]


class SimilarityConfig(Settings):
    """Whether and how paraphrased prompts may be answered from cache.

    Environment variables ``EVLLM_SIMILARITY__<FIELD>`` override fields.
    """

    model_config = settings_config("similarity")

    enabled: bool = Field(
        default=True, description="Look up paraphrases of answered prompts after an exact miss."
    )
