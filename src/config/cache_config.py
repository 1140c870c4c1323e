"""Response-cache settings."""

from __future__ import annotations

from pydantic import Field

from src.config._base import Settings, settings_config

__all__ = ["CacheConfig"]


class CacheConfig(Settings):
    """Where cached answers live.

    Environment variables ``EVLLM_CACHE__<FIELD>`` override fields, e.g.
    ``EVLLM_CACHE__REDIS_URL=redis://127.0.0.1:6379/0``.
    """

    model_config = settings_config("cache")

    redis_url: str | None = Field(
        default=None,
        pattern=r"^(redis|rediss|unix)://",
        description="Redis server for the shared cache level; None keeps the cache in memory only.",
    )
