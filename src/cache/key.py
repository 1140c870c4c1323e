"""Cache keys: which requests are cacheable, and what makes two requests the same.

A key is the SHA-256 of a canonical JSON document holding:

* the prompt text after :func:`normalize_prompt` and its token ids, whichever
  the request gives, with its prefix-cache salt and tokenisation options,
* the model name,
* every ``SamplingParams`` field that can change the output — all fields except
  those listed in :data:`PRESENTATION_FIELDS`, so a field added by a future vLLM
  is part of the key until someone decides otherwise,
* the LoRA adapter (name, id and path),
* the namespace (also kept in clear in the storage key, so a namespace can be
  cleared and never shares a key with another).

A request is *not cacheable* (it bypasses the cache both ways) when it asks for
log-probabilities (they are not stored), carries multimodal data or Python
callables, or — unless sampled outputs are allowed — samples without a seed.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

import msgspec
from vllm.sampling_params import SamplingParams

from src.errors import EnhancedVLLMError

__all__ = [
    "PRESENTATION_FIELDS",
    "RequestKey",
    "UncacheableRequest",
    "is_reproducible",
    "json_digest",
    "make_request_key",
    "normalize_prompt",
    "params_fingerprint",
    "partition_fingerprint",
]

#: SamplingParams fields that change how outputs are delivered, not what they
#: are, plus private fields vLLM derives from the public ones.
PRESENTATION_FIELDS = frozenset(
    {
        "output_kind",
        "stream_interval",
        "skip_clone",
        "output_text_buffer_length",
        "skip_reading_prefix_cache",
        "_eos_token_id",
        "_all_stop_token_ids",
        "_watermarking_skipped",
        "_bad_words_token_ids",
    }
)

#: Fields asking for data the cache does not keep; a request setting any is
#: served by the engine.
_UNSTORED_FIELDS = (
    "logprobs",
    "prompt_logprobs",
    "prompt_logprob_token_ids",
    "logprob_token_ids",
    "routed_experts_prompt_start",
    "trace_decode_token_ids",
)


#: Keys of a vLLM prompt dict the cache understands; ``prompt_token_offsets`` and
#: ``arrival_time`` follow from the others or do not change the answer.
_PROMPT_FIELDS = frozenset(
    {"type", "prompt", "prompt_token_ids", "cache_salt", "prompt_token_offsets", "arrival_time"}
)


#: Fingerprints of recently seen parameter sets, by their msgpack encoding.
_FINGERPRINTS: dict[tuple[Any, ...], str] = {}
_MAX_FINGERPRINTS = 4096


class UncacheableRequest(EnhancedVLLMError):
    """Raised internally when a request must bypass the cache; the message says why."""


@dataclass(frozen=True, slots=True)
class RequestKey:
    """The identity of a cacheable request.

    Attributes:
        digest: Hex SHA-256 of prompt, model, sampling fingerprint, LoRA and namespace.
        namespace: The request's namespace.
        fingerprint: Hex SHA-256 of the sampling parameters, model and LoRA alone;
            the semantic index only compares prompts that share it.
        prompt_text: The normalised prompt text, or None for a token-id prompt.
    """

    digest: str
    namespace: str
    fingerprint: str
    prompt_text: str | None


def normalize_prompt(text: str) -> str:
    """The text an exact key is computed from.

    Unicode NFC composition and ``\\r\\n``/``\\r`` line ends as ``\\n``. Nothing
    else: spaces, case and punctuation reach the tokenizer and can change the
    answer, so prompts that differ in them are different requests (the semantic
    cache is where near-duplicates meet).
    """
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))


def _canonical(value: Any) -> Any:
    """Turn a sampling-parameter value into plain JSON, or raise UncacheableRequest."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)  # exact, and no 0.1 vs 0.1000000001 collisions
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_canonical(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {type(value).__name__: _canonical(dataclasses.asdict(value))}
    raise UncacheableRequest(f"sampling parameter value of type {type(value).__name__}")


def params_fingerprint(params: SamplingParams, model: str, lora: Any = None) -> str:
    """Hex digest of every output-affecting sampling parameter, the model and the LoRA.

    Raises:
        UncacheableRequest: A parameter asks for unstored data or holds a value
            that cannot be compared by content.
    """
    for name in _UNSTORED_FIELDS:
        if getattr(params, name, None) not in (None, False):
            raise UncacheableRequest(f"{name} is set")
    lora_id = None
    if lora is not None:
        lora_id = (lora.lora_name, lora.lora_int_id, getattr(lora, "lora_path", None))
    # Requests mostly reuse a few parameter sets: equal encodings have equal
    # fingerprints, so each set is canonicalised once.
    try:
        memo_key: tuple[Any, ...] | None = (msgspec.msgpack.encode(params), model, lora_id)
    except TypeError:
        memo_key = None  # an unencodable value: canonicalised (and refused) below
    if memo_key is not None and (known := _FINGERPRINTS.get(memo_key)) is not None:
        return known
    fields = {
        name: _canonical(getattr(params, name))
        for name in params.__struct_fields__
        if name not in PRESENTATION_FIELDS
    }
    fingerprint = json_digest(
        {"model": model, "lora": None if lora_id is None else list(lora_id), "sampling": fields}
    )
    if memo_key is not None:
        if len(_FINGERPRINTS) >= _MAX_FINGERPRINTS:
            del _FINGERPRINTS[next(iter(_FINGERPRINTS))]  # the oldest
        _FINGERPRINTS[memo_key] = fingerprint
    return fingerprint


def partition_fingerprint(fingerprint: str, partition: str | None) -> str:
    """A sampling fingerprint narrowed to one partition (None leaves it as it is).

    The semantic index compares only prompts of equal fingerprints, so a
    partition (a chat's earlier turns, say) keeps paraphrases apart across it.
    """
    if partition is None:
        return fingerprint
    return json_digest({"fingerprint": fingerprint, "partition": partition})


def is_reproducible(params: SamplingParams) -> bool:
    """True when the engine returns the same answer again: greedy, or seeded sampling."""
    return params.temperature == 0.0 or params.top_k == 1 or params.seed is not None


def make_request_key(
    prompt: Any,
    params: SamplingParams,
    *,
    model: str,
    namespace: str,
    lora: Any = None,
    cache_sampled: bool = False,
    tokenization: dict[str, Any] | None = None,
) -> RequestKey:
    """Compute the key of a request.

    Args:
        prompt: A string, or a vLLM prompt dict with ``prompt`` and/or
            ``prompt_token_ids`` (the token input vLLM's server renders is one).
        params: The request's sampling parameters.
        model: The served model's name.
        namespace: The request's namespace.
        lora: The request's ``LoRARequest``, if any.
        cache_sampled: Whether sampled (unseeded) outputs may be cached.
        tokenization: ``tokenization_kwargs`` of the request, which change the
            token ids of a text prompt.

    Raises:
        UncacheableRequest: The request must bypass the cache; the message says why.
    """
    if not cache_sampled and not is_reproducible(params):
        raise UncacheableRequest("sampled output without a seed")
    text: str | None
    token_ids: list[int] | None = None
    salt: str | None = None
    if isinstance(prompt, str):
        text = normalize_prompt(prompt)
    elif isinstance(prompt, dict):
        kind = prompt.get("type", "token")
        if kind != "token":
            raise UncacheableRequest(f"prompt of type {kind!r}")
        extra = set(prompt) - _PROMPT_FIELDS
        if extra:
            raise UncacheableRequest(f"prompt carries {sorted(extra)}")
        text = normalize_prompt(prompt["prompt"]) if "prompt" in prompt else None
        # What the engine reads are the token ids when there are any (the text of a
        # rendered prompt need not say how it was tokenised).
        token_ids = [int(t) for t in prompt.get("prompt_token_ids") or ()] or None
        if text is None and token_ids is None:
            raise UncacheableRequest("prompt has neither text nor token ids")
        salt = prompt.get("cache_salt")
    else:
        raise UncacheableRequest(f"prompt of type {type(prompt).__name__}")
    fingerprint = params_fingerprint(params, model, lora)
    document = {
        "text": text,
        "token_ids": token_ids,
        "fingerprint": fingerprint,
        "namespace": namespace,
    }
    # Only present when set, so that keys of plain requests stay as they were.
    if salt is not None:
        document["cache_salt"] = salt
    if tokenization:
        document["tokenization"] = _canonical(tokenization)
    digest = json_digest(document)
    return RequestKey(digest=digest, namespace=namespace, fingerprint=fingerprint, prompt_text=text)


def json_digest(document: Any) -> str:
    """Hex SHA-256 of a JSON document in canonical form (sorted keys, no spaces)."""
    raw = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()
