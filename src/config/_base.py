"""Shared settings behaviour for every configuration model."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "EVLLM_"


def settings_config(section: str) -> SettingsConfigDict:
    """Settings options for one section: ``EVLLM_<SECTION>__<FIELD>`` overrides a field."""
    return SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}{section.upper()}__",
        env_nested_delimiter="__",
        validate_assignment=True,
        extra="forbid",
    )


class Settings(BaseSettings):
    """Base of the four configuration models: typed, validated on assignment too."""

    model_config = settings_config("unused")
