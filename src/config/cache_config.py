"""Response-cache settings."""

from __future__ import annotations

import re

from pydantic import Field, Secret, field_validator

from src.config._base import Settings, settings_config

__all__ = ["CacheConfig", "RedisURL", "redact_url"]


def redact_url(url: str) -> str:
    """The URL with its password (and a lone token user) replaced by ``***``."""
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", re.sub(r"://[^:@/]+@", "://***@", url))


class RedisURL(Secret[str]):
    """A Redis URL that shows itself without its password.

    ``repr``, ``str``, logging and ``model_dump_json`` see the redacted URL;
    ``get_secret_value()`` gives the whole one to the client that connects.
    """

    def _display(self) -> str:
        return redact_url(self.get_secret_value())


class CacheConfig(Settings):
    """Where cached answers live, for how long, and which requests may use them.

    Environment variables ``EVLLM_CACHE__<FIELD>`` override fields, e.g.
    ``EVLLM_CACHE__REDIS_URL=redis://127.0.0.1:6379/0``.
    """

    model_config = settings_config("cache")

    redis_url: RedisURL | None = Field(
        default=None,
        description=(
            "Redis server for the shared cache level (redis://, rediss:// or unix://); None "
            "keeps the cache in memory only. A password in it is never shown: read the "
            "whole URL with redis_url.get_secret_value()."
        ),
    )
    key_prefix: str = Field(
        default="evllm:",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key written or read; isolates deployments on one Redis.",
    )
    default_namespace: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_.@/-]{1,128}$",
        description="Namespace of requests submitted without one. Answers never cross namespaces.",
    )
    ttl_s: float = Field(
        default=3600.0, gt=0, description="Seconds a stored answer stays servable, in every level."
    )
    memory_max_entries: int = Field(
        default=10_000, ge=1, description="Most answers kept in process memory (LRU)."
    )
    memory_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="Most bytes of serialised answers kept in process memory (LRU).",
    )
    max_entry_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest stored answer read back from Redis, in bytes; a bigger one is "
            "counted invalid and missed, so a forged or runaway entry cannot stall the "
            "process. Entries over 64 KiB are decoded in a worker thread."
        ),
    )
    redis_timeout_s: float = Field(
        default=0.25,
        gt=0,
        le=30,
        description="Bound on connecting to Redis and on each command; past it the level misses.",
    )
    redis_retry_interval_s: float = Field(
        default=1.0,
        ge=0,
        description="After a Redis failure, skip Redis for this long before trying again.",
    )
    redis_max_connections: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description=(
            "Connections each Redis client opens at most (per node of a cluster), and commands "
            "in flight at once; a command beyond them waits for one (up to redis_timeout_s) "
            "instead of failing, so a burst is not an outage."
        ),
    )
    redis_cluster: bool = Field(
        default=False,
        description=(
            "redis_url names a node of a Redis Cluster: answers and the semantic index are "
            "spread over its primaries, each namespace's keys in one slot."
        ),
    )
    cache_sampled_outputs: bool = Field(
        default=False,
        description=(
            "Also cache requests that sample without a seed. Off by default: such a request "
            "asks for a fresh random answer, and a cached one would repeat it."
        ),
    )
    deduplicate_in_flight: bool = Field(
        default=True,
        description="Compute identical concurrent requests once; followers wait for the first.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: RedisURL | None) -> RedisURL | None:
        if url is not None and not re.match(r"(redis|rediss|unix)://", url.get_secret_value()):
            raise ValueError(f"redis_url must start with redis://, rediss:// or unix://: {url}")
        return url

    def redis_url_value(self) -> str | None:
        """The whole Redis URL, password included, for the client that connects."""
        return None if self.redis_url is None else self.redis_url.get_secret_value()
