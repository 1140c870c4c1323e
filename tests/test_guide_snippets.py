"""Every code snippet of the migration guide, run against a real engine.

The snippets keep the guide's calls exactly; only the config values differ
(the tiny local model instead of a hub model).
"""

from __future__ import annotations

import asyncio
import logging
import warnings

import pytest
from vllm import SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM

from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
from src.handler.enhanced_llm_factory import create_enhanced_system, get_global_factory
from tests.conftest import final_output

pytestmark = pytest.mark.engine

GREEDY = SamplingParams(max_tokens=16, temperature=0.0)


def test_configs_construct_unchanged() -> None:
    vllm_config = VLLMConfig()
    cache_config = CacheConfig()
    similarity_config = SimilarityConfig()
    handler_config = HandlerConfig()
    assert vllm_config.model and cache_config.redis_url is None
    assert similarity_config.enabled is True
    assert handler_config.features.enable_detailed_logging is False


async def test_new_style_request(handler) -> None:
    prompt, sampling_params = "the river runs through the old city", GREEDY
    collector = await handler.add_request_v2(prompt=prompt, sampling_params=sampling_params)
    result = None
    async for output in collector.get_outputs():
        if output.finished:
            result = output
            break
    assert result is not None and result.error is None
    # Greedy decoding: the handler returns exactly what the bare engine generates.
    direct = None
    async for out in AsyncLLM.generate(handler.engine, prompt, GREEDY, "direct-new-style"):
        direct = out
    assert result.text == direct.outputs[0].text
    assert result.text.strip()
    assert result.metadata["num_tokens"] == len(direct.outputs[0].token_ids)


async def test_old_style_polling(handler) -> None:
    prompt, sampling_params = "tell me a story about a king", GREEDY
    with pytest.warns(DeprecationWarning, match="add_request_v2"):
        request_id = await handler.add_request(prompt=prompt, sampling_params=sampling_params)
    while True:
        result = await handler.get_result(request_id)
        if result and result["status"] == "COMPLETED":
            break
        assert result is not None and result["status"] in ("PENDING", "RUNNING")
        await asyncio.sleep(0.1)
    v2 = await final_output(await handler.add_request_v2(prompt, sampling_params))
    assert result["text"] == v2.text
    assert result["error"] is None


async def test_old_style_error_handling(handler, caplog) -> None:
    """The old pattern, as written, logs a refused request; a good one gives a result."""
    logger = logging.getLogger("guide")
    outcomes = []
    bad = {"max_tokens": 8, "temperature": 0.0, "seed": "abc"}  # a seed must be an int
    for prompt, sampling_params in (("an ordinary question", GREEDY), ("a refused one", bad)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                request_id = await handler.add_request(prompt, sampling_params)
                result = await handler.get_result(request_id)
                outcomes.append(result["status"] if result else None)
            except Exception as e:
                logger.error(f"request failed: {e}")
                outcomes.append("error")
    assert outcomes[0] in ("PENDING", "RUNNING", "COMPLETED")
    assert outcomes[1] == "error"
    assert any("request failed" in r.getMessage() and "seed" in r.getMessage()
               for r in caplog.records)  # fmt: skip


async def test_new_style_error_handling(handler, caplog) -> None:
    logger = logging.getLogger("guide")
    too_long = "word " * 400
    outcomes = []
    for prompt in ("a question with an answer", too_long):
        try:
            collector = await handler.add_request_v2(prompt, GREEDY)
            async for output in collector.get_outputs():
                if output.error:
                    logger.error(f"request failed: {output.error}")
                    outcomes.append(("error", output.error))
                    break
                if output.finished:
                    logger.info(f"request succeeded: {output.text}")
                    outcomes.append(("ok", output.text))
                    break
        except Exception as e:
            logger.error(f"system error: {e}")
            outcomes.append(("exception", str(e)))
    assert outcomes[0][0] == "ok"
    assert outcomes[1][0] == "error" and "maximum context length" in outcomes[1][1]


async def test_health_check_and_factory_stats(handler, factory) -> None:
    health = await handler.health_check()
    assert health["healthy"] is True
    assert set(health["components"]) == {"engine", "cache", "similarity"}
    assert health["components"]["engine"]["state"] == "running"

    stats = factory.get_instance_stats()
    entry = stats[handler.instance_id]
    assert entry["model"] == handler.vllm_config.model
    assert entry["in_flight"] == 0 and entry["requests_served"] >= 1
    assert entry["uptime_s"] > 0


async def test_detailed_logging_switch(handler, caplog) -> None:
    handler_config = handler.handler_config
    caplog.set_level(logging.INFO, logger="src.handler")
    handler_config.features.enable_detailed_logging = True
    try:
        await final_output(await handler.add_request_v2("a logged request", GREEDY))
    finally:
        handler_config.features.enable_detailed_logging = False
    quiet_from = len(caplog.records)
    await final_output(await handler.add_request_v2("an unlogged request", GREEDY))
    lifecycle = [r for r in caplog.records[:quiet_from] if "finished in" in r.getMessage()]
    assert lifecycle and lifecycle[0].levelno == logging.INFO
    assert not [r for r in caplog.records[quiet_from:] if "finished in" in r.getMessage()]
    # The prompt text never appears in the log.
    assert not any("a logged request" in r.getMessage() for r in caplog.records)


async def test_batch_with_gather(handler) -> None:
    prompts = [
        f"question number {w} about the sea" for w in ("one", "two", "three", "four", "five")
    ]
    sampling_params = GREEDY
    collectors = []
    for prompt in prompts:
        collector = await handler.add_request_v2(prompt, sampling_params)
        collectors.append(collector)

    async def process_collector(collector):
        async for output in collector.get_outputs():
            if output.finished:
                return output

    tasks = [process_collector(c) for c in collectors]
    results = await asyncio.gather(*tasks)
    assert all(r is not None and r.error is None for r in results)
    # Each batched answer equals the answer to the same prompt on its own.
    alone = await final_output(await handler.add_request_v2(prompts[2], sampling_params))
    assert results[2].text == alone.text
    assert [r.request_id for r in results] == [c.request_id for c in collectors]


async def test_resource_management_snippet(vllm_config) -> None:
    """The guide's try/finally: start, use, stop, then clean the factory up."""
    handler = None
    try:
        handler = await create_enhanced_system(
            vllm_config=vllm_config,
            cache_config=CacheConfig(),
            similarity_config=SimilarityConfig(),
            handler_config=HandlerConfig(),
        )
        await handler.start()
        out = await final_output(await handler.add_request_v2("hello there", GREEDY))
        assert out.error is None
        stats = get_global_factory().get_instance_stats()
        assert stats[handler.instance_id]["requests_served"] == 1
    finally:
        assert handler is not None
        await handler.stop()
        factory = get_global_factory()
        await factory.cleanup_all()
    assert handler.instance_id not in factory.get_instance_stats()
    health = await handler.health_check()
    assert health["healthy"] is False and health["state"] == "stopped"
