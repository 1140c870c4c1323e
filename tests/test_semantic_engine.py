"""Paraphrases answered from cache inside EnhancedAsyncLLM.generate, on a real engine."""

from __future__ import annotations

import pytest
from vllm import SamplingParams

from src.handler.enhanced_async_llm import CacheControl, CachedRequestOutput
from tests.conftest import final_output

pytestmark = pytest.mark.engine

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)


async def ask(handler, prompt, namespace, params=GREEDY):
    return await final_output(await handler.add_request_v2(prompt, params, namespace=namespace))


async def test_paraphrase_is_served_from_cache(handler, namespace) -> None:
    first = await ask(handler, "What is the capital city of Kenya?", namespace)
    engine_requests = handler.engine.cache_stats.engine_requests
    again = await ask(handler, "Tell me the capital of Kenya.", namespace)
    meta = again.metadata
    assert meta["cache_hit"] is True and meta["cache_level"] == "semantic"
    assert meta["similarity"] >= handler.similarity_config.threshold
    assert meta["matched_entry_id"]
    assert again.text == first.text and again.token_ids == first.token_ids
    assert handler.engine.cache_stats.engine_requests == engine_requests


@pytest.mark.parametrize(
    "asked",
    [
        "What is the capital city of Uganda?",  # another entity
        "What was the capital city of Kenya in 1950?",  # a date
        "What is not the capital city of Kenya?",  # negation
        "Write a poem about the capital city of Kenya.",  # another task
        "What is the national animal of Kenya?",  # another subject
        "肯尼亚的首都是哪里？",  # another language
    ],
)
async def test_hard_negatives_go_to_the_engine(handler, namespace, asked) -> None:
    await ask(handler, "What is the capital city of Kenya?", namespace)
    out = await ask(handler, asked, namespace)
    assert out.metadata["cache_hit"] is False and out.error is None


async def test_paraphrase_never_crosses_namespaces_or_params(handler, namespace) -> None:
    await ask(handler, "What is the capital city of Kenya?", namespace)
    asked = "Tell me the capital of Kenya."
    other_tenant = await ask(handler, asked, namespace + "-b")
    other_params = await ask(handler, asked, namespace, SamplingParams(max_tokens=7))
    assert other_tenant.metadata["cache_hit"] is False
    assert other_params.metadata["cache_hit"] is False
    # Control: the same paraphrase, in the same namespace with the same parameters, hits.
    same = await ask(handler, asked, namespace)
    assert same.metadata["cache_level"] == "semantic"


async def test_cleared_answer_is_not_served_semantically(handler, namespace) -> None:
    await ask(handler, "What is the capital city of Kenya?", namespace)
    await handler.clear_cache(namespace)
    out = await ask(handler, "Tell me the capital of Kenya.", namespace)
    assert out.metadata["cache_hit"] is False
    # Control: stored again, the same paraphrase hits.
    await ask(handler, "What is the capital city of Kenya?", namespace + "-again")
    again = await ask(handler, "Tell me the capital of Kenya.", namespace + "-again")
    assert again.metadata["cache_level"] == "semantic"


async def test_health_reports_the_semantic_stage(handler) -> None:
    similarity = (await handler.health_check())["components"]["similarity"]
    assert similarity["state"] == "ok"
    assert similarity["startup_s"] > 0 and similarity["nlp_startup_s"] > 0
    assert similarity["shared_through_redis"] is True
    assert similarity["vectors"] >= 1


async def test_semantic_hit_through_generate_carries_its_own_prompt(handler, namespace) -> None:
    from vllm.v1.engine.async_llm import AsyncLLM

    engine = handler.engine
    stored, asked = "How do bats find food in the dark?", "How can bats find food in the dark?"
    async for _ in engine.generate(stored, GREEDY, f"s-{namespace}", namespace=namespace):
        pass
    (hit,) = [
        o async for o in engine.generate(asked, GREEDY, f"a-{namespace}", namespace=namespace)
    ]
    assert hit.cache_info.level == "semantic" and hit.finished
    assert hit.prompt == asked
    plain = [o async for o in AsyncLLM.generate(engine, asked, GREEDY, f"p-{namespace}")]
    assert hit.prompt_token_ids == plain[-1].prompt_token_ids


async def test_a_callers_text_is_compared_within_the_callers_partition(handler, namespace) -> None:
    engine = handler.engine

    async def run(prompt: str, text: str, partition: str) -> list:
        control = CacheControl(semantic_text=text, partition=partition)
        stream = engine.generate(
            prompt, GREEDY, f"{partition}-{text}-{namespace}",
            namespace=namespace, cache_control=control,
        )  # fmt: skip
        return [o async for o in stream]

    stored = "What is the capital city of Kenya?"
    asked = "Tell me the capital of Kenya."
    await run(f"[brief] {stored}", stored, "brief")
    other = await run(f"[verbose] {asked}", asked, "verbose")
    same = await run(f"[brief] {asked}", asked, "brief")
    assert not any(isinstance(o, CachedRequestOutput) for o in other)
    assert isinstance(same[-1], CachedRequestOutput)
    assert same[-1].cache_info.level == "semantic"
