"""Settings of the request handler in front of the engine."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from src.config._base import Settings, settings_config

__all__ = ["FeatureFlags", "HandlerConfig"]


class FeatureFlags(BaseModel):
    """Switches for the optional stages of the generate path."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    enable_detailed_logging: bool = Field(
        default=False,
        description=(
            "Log each request's lifecycle (ids, timings, outcome) at INFO, not DEBUG, and "
            "one DEBUG line per request from the engine's cache path (key prefix, path, "
            "similarity score, time to decide). Prompt text is never logged."
        ),
    )
    enable_cache: bool = Field(default=True, description="Serve repeated requests from cache.")
    enable_nlp: bool = Field(
        default=True,
        description="Preprocess prompts with spaCy; semantic lookup is off without it.",
    )
    enable_similarity: bool = Field(
        default=True, description="Answer paraphrases through the semantic index."
    )


class HandlerConfig(Settings):
    """How the handler admits, streams, keeps and shuts down requests.

    Environment variables ``EVLLM_HANDLER__<FIELD>`` override fields, and
    ``EVLLM_HANDLER__FEATURES__<FLAG>`` the feature flags.
    """

    model_config = settings_config("handler")

    features: FeatureFlags = Field(
        default_factory=FeatureFlags, description="Optional stages, on or off."
    )
    default_max_tokens: int = Field(
        default=256, gt=0, description="max_tokens of requests that pass no sampling parameters."
    )
    result_ttl_s: float = Field(
        default=300.0,
        gt=0,
        description="How long the legacy get_result() keeps a finished result, in seconds.",
    )
    engine_stall_timeout_s: float = Field(
        default=120.0,
        ge=0,
        description=(
            "With requests in flight and no output from any of them for this many "
            "seconds, the engine is taken as stalled: in-flight requests end with a "
            "fatal error, new ones are refused and health_check() reports unhealthy "
            "until the handler is restarted. 0 turns the check off."
        ),
    )
    shutdown_timeout_s: float = Field(
        default=10.0,
        ge=0,
        description="How long stop() lets in-flight requests finish before aborting them.",
    )
