"""Validation of what callers submit: prompts, sampling parameters, ids, namespaces."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vllm.exceptions import VLLMValidationError
from vllm.sampling_params import SamplingParams

from src.errors import InvalidRequestError

__all__ = ["check_namespace", "check_prompt", "check_request_id", "to_sampling_params"]

_NAME = re.compile(r"^[A-Za-z0-9_.:@/-]{1,128}$")
# No ':' in namespaces: it separates the namespace from the digest in Redis keys.
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.@/-]{1,128}$")


def check_prompt(prompt: object) -> str | dict[str, Any]:
    """Return the prompt if the engine can take it, else raise a clear error.

    A prompt is a non-blank string, or a vLLM prompt dict with either a
    non-blank ``"prompt"`` string or a non-empty ``"prompt_token_ids"`` list.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequestError("prompt is empty")
        return prompt
    if isinstance(prompt, Mapping):
        text = prompt.get("prompt")
        ids = prompt.get("prompt_token_ids")
        if text is not None and ids is not None:
            raise InvalidRequestError("prompt dict has both 'prompt' and 'prompt_token_ids'")
        if isinstance(text, str) and text.strip():
            return dict(prompt)
        if (
            isinstance(ids, list)
            and ids
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)
        ):
            return dict(prompt)
        raise InvalidRequestError(
            "prompt dict needs a non-empty 'prompt' string or a non-empty "
            "'prompt_token_ids' list of non-negative ints"
        )
    raise InvalidRequestError(
        f"prompt must be a string or a vLLM prompt dict, not {type(prompt).__name__}"
    )


def to_sampling_params(params: object, default_max_tokens: int) -> SamplingParams:
    """Turn what the caller passed into ``SamplingParams`` without touching theirs.

    Args:
        params: ``SamplingParams``, a dict of its fields, or None for defaults.
        default_max_tokens: ``max_tokens`` used when ``params`` is None.
    """
    if params is None:
        return SamplingParams(max_tokens=default_max_tokens)
    if isinstance(params, SamplingParams):
        return params.clone()
    if isinstance(params, Mapping):
        try:
            return SamplingParams(**params)
        except (TypeError, ValueError, VLLMValidationError) as exc:
            raise InvalidRequestError(f"invalid sampling parameters: {exc}") from exc
    raise InvalidRequestError(
        f"sampling_params must be SamplingParams, a dict or None, not {type(params).__name__}"
    )


def check_request_id(request_id: object) -> str:
    """A request id is a short printable name (letters, digits, ``_.:@/-``)."""
    if not isinstance(request_id, str) or not _NAME.match(request_id):
        raise InvalidRequestError(
            f"request_id must be 1-128 characters of letters, digits or _.:@/-, got {request_id!r}"
        )
    return request_id


def check_namespace(namespace: object) -> str | None:
    """A namespace is None or 1-128 characters of letters, digits or ``_.@/-``."""
    if namespace is None:
        return None
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise InvalidRequestError(
            f"namespace must be 1-128 characters of letters, digits or _.@/-, got {namespace!r}"
        )
    return namespace
