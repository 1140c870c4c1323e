"""Two processes on one Redis share answers and the semantic index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from vllm import SamplingParams

from tests.conftest import final_output, wait_until

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]
GREEDY = SamplingParams(max_tokens=12, temperature=0.0)

# Runs in a process of its own: a whole system on the same Redis and key prefix,
# answering two prompts, then printing what it answered.
OTHER_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys

    from src.config import CacheConfig, SimilarityConfig, VLLMConfig
    from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler


    async def main(model: str, redis_url: str, namespace: str, prompts: list[str]) -> None:
        handler = EnhancedVLLMHandler(
            VLLMConfig(model=model, max_model_len=256, enforce_eager=True, dtype="float32"),
            CacheConfig(redis_url=redis_url, key_prefix="evllm-test:"),
            SimilarityConfig(),
        )
        async with handler:
            texts = []
            for prompt in prompts:
                collector = await handler.add_request_v2(
                    prompt, {"max_tokens": 12, "temperature": 0.0}, namespace=namespace
                )
                async for output in collector.get_outputs():
                    if output.finished:
                        assert output.error is None, output.error
                        texts.append(output.text)
        print(json.dumps(texts))


    if __name__ == "__main__":
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
    """
)


async def test_answers_and_vectors_written_by_another_process_are_served(
    handler, vllm_config, redis_server, namespace, tmp_path
) -> None:
    repeated, stored = "a lantern above the harbour", "What is the capital city of Kenya?"
    script = tmp_path / "other_process.py"
    script.write_text(OTHER_PROCESS)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    vectors_before = len(handler.engine.similarity.index)
    done = subprocess.run(
        [sys.executable, str(script), vllm_config.model, redis_server.url, namespace,
         json.dumps([repeated, stored])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    texts = json.loads(done.stdout.strip().splitlines()[-1])

    # The answer: read from Redis, exactly as the other process produced it.
    out = await final_output(await handler.add_request_v2(repeated, GREEDY, namespace=namespace))
    assert out.metadata["cache_level"] == "redis" and out.text == texts[0]
    # The vector: announced on the Redis stream and indexed here while running.
    assert await wait_until(lambda: len(handler.engine.similarity.index) >= vectors_before + 2)
    asked = "Tell me the capital of Kenya."
    out = await final_output(await handler.add_request_v2(asked, GREEDY, namespace=namespace))
    assert out.metadata["cache_level"] == "semantic" and out.text == texts[1]
