"""The stored form of one cached answer: versioned JSON, never pickle.

A shared Redis must never be able to run code in this process, so entries are
plain JSON validated by pydantic on the way in. An entry whose version is not
:data:`ENTRY_VERSION`, or that fails validation, reads as a miss.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from src.errors import EnhancedVLLMError

__all__ = [
    "ENTRY_VERSION",
    "CacheEntry",
    "CachedCompletion",
    "InvalidEntryError",
    "decode_entry",
    "encode_entry",
]

ENTRY_VERSION = 1

#: The finish reasons of a complete answer the engine would give again.
STORABLE_FINISH_REASONS = frozenset({"stop", "length"})


class InvalidEntryError(EnhancedVLLMError):
    """Stored bytes are not a valid entry of this version."""


class CachedCompletion(BaseModel):
    """One completion (``CompletionOutput``) of a cached answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    finish_reason: Literal["stop", "length"]
    stop_reason: int | str | None = None


class CacheEntry(BaseModel):
    """A complete, successful answer to one request, as stored in every level.

    Attributes:
        version: Format version; readers ignore entries of any other version.
        key: The cache key the entry is stored under.
        namespace: The namespace the answer belongs to.
        model: The model that produced it.
        prompt: The prompt text (or None for a token-id prompt).
        prompt_token_ids: The prompt's token ids as the engine saw them.
        completions: The answer's completions, ordered by index.
        created_at: Wall-clock time of storage, seconds since the epoch.
        expires_at: Wall-clock time after which the entry reads as a miss.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    key: str = Field(min_length=1)
    namespace: str
    model: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    completions: list[CachedCompletion] = Field(min_length=1)
    created_at: float
    expires_at: float


def encode_entry(entry: CacheEntry) -> bytes:
    """Serialise an entry to the bytes every level stores."""
    return entry.model_dump_json().encode()


def decode_entry(data: bytes | str) -> CacheEntry:
    """Parse and validate stored bytes.

    Raises:
        InvalidEntryError: The bytes are not JSON of a valid entry of this version.
    """
    try:
        return CacheEntry.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidEntryError(
            f"stored cache entry is invalid: {exc.error_count()} error(s)"
        ) from exc
