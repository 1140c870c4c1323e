"""Validation of what callers submit: prompts, sampling parameters, ids, namespaces."""

from __future__ import annotations

import copy
import enum
import functools
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from vllm.exceptions import VLLMValidationError
from vllm.sampling_params import SamplingParams
from vllm.v1.serial_utils import MsgpackDecoder, MsgpackEncoder

from src.errors import InvalidRequestError

__all__ = [
    "check_namespace",
    "check_prompt",
    "check_request_id",
    "check_wire_types",
    "copy_sampling_params",
    "to_sampling_params",
]

_NAME = re.compile(r"[A-Za-z0-9_.:@/-]{1,128}")
# No ':' in namespaces: it separates the namespace from the digest in Redis keys.
_NAMESPACE = re.compile(r"[A-Za-z0-9_.@/-]{1,128}")
# The engine client's own wire format: what these cannot carry, the engine rejects.
_WIRE_ENCODER = MsgpackEncoder()
_WIRE_DECODER = MsgpackDecoder(SamplingParams)
_IMMUTABLE = (type(None), bool, int, float, str, bytes, enum.Enum)


def check_prompt(prompt: object) -> str | dict[str, Any]:
    """Return the prompt if the engine can take it, else raise a clear error.

    A prompt is a non-blank string, or a vLLM prompt dict with either a
    non-blank ``"prompt"`` string or a non-empty ``"prompt_token_ids"`` list.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequestError("prompt is empty")
        _check_encodable(prompt, "prompt")
        return prompt
    if isinstance(prompt, Mapping):
        text = prompt.get("prompt")
        ids = prompt.get("prompt_token_ids")
        if text is not None and ids is not None:
            raise InvalidRequestError("prompt dict has both 'prompt' and 'prompt_token_ids'")
        if isinstance(text, str) and text.strip():
            _check_encodable(text, "prompt")
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


def to_sampling_params(
    params: object, default_max_tokens: int, *, copy: bool = True
) -> SamplingParams:
    """Turn what the caller passed into checked ``SamplingParams`` without touching theirs.

    Args:
        params: ``SamplingParams``, a dict of its fields, or None for defaults.
        default_max_tokens: ``max_tokens`` used when ``params`` is None.
        copy: False returns the caller's own ``SamplingParams`` object (checked),
            for a use that ends before the caller can change it; see
            :func:`copy_sampling_params`.
    """
    if params is None:
        return SamplingParams(max_tokens=default_max_tokens)
    if isinstance(params, SamplingParams):
        made = copy_sampling_params(params) if copy else params
    elif isinstance(params, Mapping):
        try:
            made = SamplingParams(**params)
        except (TypeError, ValueError, VLLMValidationError) as exc:
            raise InvalidRequestError(f"invalid sampling parameters: {exc}") from exc
    else:
        raise InvalidRequestError(
            f"sampling_params must be SamplingParams, a dict or None, not {type(params).__name__}"
        )
    check_wire_types(made)
    return made


def copy_sampling_params(params: SamplingParams) -> SamplingParams:
    """A copy the caller cannot change: ``params.clone()``'s deep copy, at a
    fraction of its cost, by copying only the fields that hold containers."""
    made = copy.copy(params)
    for name in params.__struct_fields__:
        value = getattr(params, name)
        if not isinstance(value, _IMMUTABLE):
            setattr(made, name, _own(value))
    return made


def _own(value: Any) -> Any:
    """A copy of a field's value: one level for flat containers, else deep."""
    if isinstance(value, list | set) and all(isinstance(v, _IMMUTABLE) for v in value):
        return type(value)(value)
    if isinstance(value, dict) and all(
        isinstance(k, _IMMUTABLE) and isinstance(v, _IMMUTABLE) for k, v in value.items()
    ):
        return dict(value)
    return copy.deepcopy(value)


def check_wire_types(params: SamplingParams) -> None:
    """Refuse parameters whose field types the engine process would reject.

    ``SamplingParams`` does not check types when built (``seed="abc"`` and
    ``max_tokens=8.5`` pass), but the engine-core process decodes every request
    against the struct's annotations and stops on a mismatch. The parameters go
    through the same encoder and decoder here, so the rule is vLLM's own.
    """
    try:
        buffers = _WIRE_ENCODER.encode(params)
        if len(buffers) == 1 and isinstance(buffers[0], bytes):
            _decodes(buffers[0])  # the same parameters are checked once
        else:
            _WIRE_DECODER.decode(buffers)
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError) as exc:
        raise InvalidRequestError(f"invalid sampling parameters: {exc}") from exc


@functools.lru_cache(maxsize=4096)
def _decodes(raw: bytes) -> bool:
    """Decode as the engine does (raising on a mismatch); remembers what passed."""
    _WIRE_DECODER.decode([raw])
    return True


def _check_encodable(text: str, what: str) -> None:
    """A lone surrogate cannot be encoded as UTF-8: refuse it here, naming it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"{what} is not valid Unicode: {exc.reason} at position {exc.start}"
        ) from exc


def check_request_id(request_id: object) -> str:
    """A request id is a short printable name (letters, digits, ``_.:@/-``)."""
    if not isinstance(request_id, str) or not _NAME.fullmatch(request_id):
        raise InvalidRequestError(
            f"request_id must be 1-128 characters of letters, digits or _.:@/-, got {request_id!r}"
        )
    return request_id


def check_namespace(namespace: object) -> str | None:
    """A namespace is None or 1-128 characters of letters, digits or ``_.@/-``."""
    if namespace is None:
        return None
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise InvalidRequestError(
            f"namespace must be 1-128 characters of letters, digits or _.@/-, got {namespace!r}"
        )
    return namespace
