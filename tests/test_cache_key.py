"""What makes two requests the same cache key, and which requests bypass the cache."""

from __future__ import annotations

import pytest
from vllm import SamplingParams
from vllm.lora.request import LoRARequest
from vllm.sampling_params import RequestOutputKind

from src.cache.key import (
    UncacheableRequest,
    make_request_key,
    normalize_prompt,
    params_fingerprint,
    partition_fingerprint,
)

BASE = {"max_tokens": 16, "temperature": 0.0}


def key(prompt="What is Redis?", model="m", namespace="ns", lora=None, cache_sampled=False, **kw):
    params = SamplingParams(**{**BASE, **kw})
    return make_request_key(
        prompt, params, model=model, namespace=namespace, lora=lora, cache_sampled=cache_sampled
    )


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7, "seed": 1},
        {"max_tokens": 17},
        {"seed": 3},
        {"stop": ["\n"]},
        {"stop_token_ids": [7]},
        {"repetition_penalty": 1.2},
        {"min_tokens": 2},
        {"ignore_eos": True},
        {"skip_special_tokens": False},
        {"include_stop_str_in_output": True},
        {"logit_bias": {5: 1.0}},
        {"namespace": "other"},
        {"model": "other-model"},
        {"prompt": "What is Redis ?"},
        {"prompt": "what is Redis?"},
        {"prompt": {"prompt_token_ids": [1, 2, 3]}},
        {"lora": LoRARequest("adapter", 1, "/tmp/adapter")},
    ],
)
def test_key_is_sensitive_to_what_changes_the_answer(change) -> None:
    assert key(**change).digest != key().digest


@pytest.mark.parametrize("change", [{"top_p": 0.5}, {"top_k": 5}, {"n": 2}, {"seed": 8}])
def test_seeded_sampling_key_is_sensitive_to_sampling_params(change) -> None:
    sampled = {"temperature": 0.7, "seed": 7}
    assert key(**{**sampled, **change}).digest != key(**sampled).digest


@pytest.mark.parametrize(
    "same",
    [
        {"output_kind": RequestOutputKind.DELTA},
        {"output_kind": RequestOutputKind.FINAL_ONLY},
        {"prompt": "What is Redis?"},
        {"prompt": {"prompt": "What is Redis?"}},
    ],
)
def test_key_ignores_how_the_answer_is_delivered(same) -> None:
    assert key(**same).digest == key().digest


def test_line_endings_and_unicode_composition_are_normalised() -> None:
    assert normalize_prompt("caf\u0065\u0301\r\nbar\rbaz") == "caf\u00e9\nbar\nbaz"
    assert key(prompt="a\r\nb").digest == key(prompt="a\nb").digest


def test_fingerprint_ignores_prompt_and_namespace_but_not_params() -> None:
    assert key(prompt="x", namespace="a").fingerprint == key(prompt="y", namespace="b").fingerprint
    assert key(max_tokens=3).fingerprint != key().fingerprint


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"temperature": 0.8}, "without a seed"),
        ({"logprobs": 2}, "logprobs"),
        ({"prompt_logprobs": 1}, "prompt_logprobs"),
        ({"prompt": {"prompt": "x", "multi_modal_data": {"image": None}}}, "multi_modal_data"),
        ({"prompt": 42}, "int"),
        ({"prompt": {"type": "multimodal", "prompt_token_ids": [1]}}, "'multimodal'"),
        ({"prompt": {"type": "embeds", "prompt": "x"}}, "'embeds'"),
    ],
)
def test_uncacheable_requests(change, why) -> None:
    with pytest.raises(UncacheableRequest, match=why):
        key(**change)


def test_sampled_requests_are_cacheable_when_allowed() -> None:
    assert key(temperature=0.8, cache_sampled=True).digest != key().digest


# vLLM's server hands the engine a token input: {"type": "token", "prompt_token_ids",
# and maybe "prompt" and "cache_salt"}.
SERVED = {"type": "token", "prompt_token_ids": [5, 6, 7], "prompt": "What is Redis?"}


def test_a_served_token_input_is_keyed_by_its_tokens_text_and_salt() -> None:
    served = key(prompt=SERVED)
    assert served.prompt_text == "What is Redis?"
    assert key(prompt=dict(SERVED)).digest == served.digest
    # The same text tokenised otherwise (special tokens, truncation) is another request.
    assert key(prompt={**SERVED, "prompt_token_ids": [5, 6]}).digest != served.digest
    assert key(prompt={**SERVED, "cache_salt": "tenant-a"}).digest != served.digest
    # What follows from the rest, or does not change the answer, does not count.
    same = {**SERVED, "arrival_time": 1.0, "prompt_token_offsets": [(0, 4)]}
    assert key(prompt=same).digest == served.digest


def test_tokenisation_options_are_part_of_the_key() -> None:
    params = SamplingParams(**BASE)

    def digest(tokenization):
        return make_request_key(
            "What is Redis?", params, model="m", namespace="ns", tokenization=tokenization
        ).digest

    assert digest(None) == digest({}) == key().digest
    assert digest({"truncation": True, "max_length": 2}) != digest(None)


def test_a_partition_narrows_the_fingerprint_and_none_leaves_it() -> None:
    fingerprint = key().fingerprint
    assert partition_fingerprint(fingerprint, None) == fingerprint
    assert partition_fingerprint(fingerprint, "a") != partition_fingerprint(fingerprint, "b")
    assert partition_fingerprint(fingerprint, "a") != fingerprint


def test_a_remembered_fingerprint_is_the_one_computed_afresh() -> None:
    from src.cache import key as key_module

    params = SamplingParams(max_tokens=16, temperature=0.0, stop=["\n"], logit_bias={5: 1.0})
    first = params_fingerprint(params, "m")
    remembered = params_fingerprint(
        SamplingParams(**{**BASE, "stop": ["\n"], "logit_bias": {5: 1.0}}), "m"
    )
    key_module._FINGERPRINTS.clear()
    assert params_fingerprint(params, "m") == first == remembered
    # A changed parameter set, even the same object changed, is never served a stale one.
    params.max_tokens = 17
    assert params_fingerprint(params, "m") != first
    assert params_fingerprint(params, "other-model") != params_fingerprint(params, "m")


def test_the_handlers_copy_of_params_is_its_own_and_bad_types_are_always_refused() -> None:
    from src.errors import InvalidRequestError
    from src.handler.requests import check_wire_types, to_sampling_params

    theirs = SamplingParams(max_tokens=8, temperature=0.0, stop=["a"], logit_bias={3: 0.5})
    ours = to_sampling_params(theirs, 16)
    theirs.stop.append("b")
    theirs.logit_bias[4] = 1.0
    theirs.max_tokens = 9
    assert (ours.stop, ours.logit_bias, ours.max_tokens) == (["a"], {3: 0.5}, 8)
    for _ in range(2):  # a refusal is never remembered as a pass
        with pytest.raises(InvalidRequestError, match="seed"):
            check_wire_types(SamplingParams(max_tokens=8, seed="abc"))  # type: ignore[arg-type]
    check_wire_types(ours)
