"""``python -m src serve``: the real server on a free port, a real redis-server, and
the official ``openai`` client, as a user of ``vllm serve`` would drive it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from src.cache.redis_server import RedisServer, free_port

pytestmark = pytest.mark.engine

API_KEY = "test-key"
MODEL = "tiny"
# The tiny model's tokenizer has no chat template; a real model brings its own.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
START_TIMEOUT_S = 300


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path, redis: RedisServer):
        self.url = url
        self.process = process
        self.log = log
        self.redis = redis

    def client(self, namespace: str | None = None, **headers: str) -> AsyncOpenAI:
        if namespace is not None:
            headers["X-Cache-Namespace"] = namespace
        return AsyncOpenAI(
            base_url=f"{self.url}/v1", api_key=API_KEY, default_headers=headers, max_retries=0
        )

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return sample.value
        raise AssertionError(f"{name}{labels} not in /metrics")


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module, with its own redis-server (the last test stops it)."""
    workdir = tmp_path_factory.mktemp("server")
    redis = RedisServer(workdir).start()
    template = workdir / "chat.jinja"
    template.write_text(CHAT_TEMPLATE)
    port = free_port()
    log = workdir / "server.log"
    command = [
        sys.executable, "-m", "src", "serve", str(tiny_model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY,
        "--served-model-name", MODEL,
        "--max-model-len", "256", "--max-num-seqs", "16", "--enforce-eager", "--dtype", "float32",
        "--chat-template", str(template),
        "--redis-url", redis.url,
        "--cache-config", json.dumps({"key_prefix": f"evllm-srv-{uuid.uuid4().hex[:6]}:"}),
        # The tiny model's first token comes before a lookup finishes: hold it.
        "--similarity-config", json.dumps({"lookup_policy": "hold", "hold_ms": 5000}),
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "INFO"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield Server(url, process, log, redis)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        redis.kill()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"server not ready in {START_TIMEOUT_S} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture
async def client(server: Server, namespace: str) -> AsyncIterator[AsyncOpenAI]:
    """A client whose requests name the test's own namespace."""
    async with server.client(namespace) as client:
        yield client


async def complete(client: AsyncOpenAI, prompt: str, **kw):
    raw = await client.completions.with_raw_response.create(
        model=MODEL, prompt=prompt, **{"max_tokens": 8, "temperature": 0, **kw}
    )
    return raw.headers.get("x-cache"), raw.parse()


async def chat(client: AsyncOpenAI, messages: list[dict[str, str]], **kw):
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, max_tokens=8, temperature=0, **kw
    )
    return raw.headers, raw.parse()


async def chat_streamed(client: AsyncOpenAI, messages: list[dict[str, str]], **kw):
    """Stream a chat; its headers, text, and the usage of the final chunk."""
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, max_tokens=8, temperature=0, stream=True,
        stream_options={"include_usage": True}, **kw,
    )  # fmt: skip
    text, usage = [], None
    async for chunk in raw.parse():
        text += [c.delta.content or "" for c in chunk.choices]
        usage = chunk.usage or usage
    return raw.headers, "".join(text), usage


def user(text: str, system: str = "You answer briefly.") -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


# ----------------------------------------------------------------------------- tests


def test_help_lists_vllms_own_flags_and_the_caches() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "src", "serve", "--help=all"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    for flag in ("--max-model-len", "--api-key", "--chat-template", "--middleware"):
        assert flag in out, flag
    for flag in ("--redis-url", "--cache-namespace-header", "--no-semantic-cache"):
        assert flag in out, flag


async def test_a_repeated_completion_is_served_from_memory(client) -> None:
    first_from, first = await complete(client, "the river runs through the old city")
    again_from, again = await complete(client, "the river runs through the old city")
    assert (first_from, again_from) == ("miss", "memory")
    assert again.choices[0].text == first.choices[0].text
    assert again.choices[0].finish_reason == first.choices[0].finish_reason
    assert again.usage == first.usage


async def test_a_repeated_chat_is_served_from_memory_and_streams_from_cache(client) -> None:
    messages = user("tell me a story about a king and his horse")
    first_headers, first = await chat(client, messages)
    again_headers, again = await chat(client, messages)
    streamed_headers, text, usage = await chat_streamed(client, messages)
    assert first_headers["x-cache"] == "miss" and again_headers["x-cache"] == "memory"
    assert again.choices[0].message.content == first.choices[0].message.content
    assert streamed_headers["x-cache"] == "memory"
    assert text == first.choices[0].message.content
    assert usage is not None and usage.completion_tokens == first.usage.completion_tokens
    assert usage.prompt_tokens == first.usage.prompt_tokens


async def test_a_stream_from_cache_is_valid_sse_ending_with_usage_and_done(
    server, namespace
) -> None:
    body = {
        "model": MODEL, "prompt": "a quiet hill under the moon", "max_tokens": 8,
        "temperature": 0, "stream": True, "stream_options": {"include_usage": True},
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Cache-Namespace": namespace}

    def events() -> tuple[str | None, list[str]]:
        with httpx.stream(
            "POST", f"{server.url}/v1/completions", json=body, headers=headers, timeout=60
        ) as response:
            lines = [line for line in response.iter_lines() if line]
            return response.headers.get("x-cache"), lines

    miss_from, miss = events()
    hit_from, hit = events()
    assert (miss_from, hit_from) == ("miss", "memory")
    assert all(line.startswith("data: ") for line in hit) and hit[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in hit[:-1]]
    assert chunks[-1]["usage"]["completion_tokens"] > 0 and chunks[-1]["choices"] == []

    def text(lines: list[str]) -> str:
        parsed = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
        return "".join(c["text"] for chunk in parsed for c in chunk["choices"])

    assert text(hit) == text(miss)


async def test_a_paraphrased_last_message_is_served_semantically_in_its_conversation_only(
    client,
) -> None:
    await chat_streamed(client, user("how do I learn to play the violin?"))
    asked = "how can I learn to play the violin?"
    other_system = await chat_streamed(client, user(asked, system="You answer at length."))
    earlier_turn = [
        *user("hello"),
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": asked},
    ]
    other_turns = await chat_streamed(client, earlier_turn)
    same = await chat_streamed(client, user(asked))
    assert other_system[0]["x-cache"] == "miss"
    assert other_turns[0]["x-cache"] == "miss"
    # Control: the same paraphrase in the same conversation is answered from cache.
    assert same[0]["x-cache"] == "semantic"
    assert 0 < float(same[0]["x-cache-similarity"]) <= 1


async def test_namespaces_from_the_header_or_the_body_never_share_answers(
    server, namespace
) -> None:
    prompt = "the king rode his horse to the sea"
    async with server.client(namespace) as tenant_a, server.client(namespace + "-b") as tenant_b:
        assert (await complete(tenant_a, prompt))[0] == "miss"
        assert (await complete(tenant_b, prompt))[0] == "miss"
        assert (await complete(tenant_a, prompt))[0] == "memory"
    async with server.client() as no_header:
        body_a = {"cache": {"namespace": namespace}}
        body_c = {"cache": {"namespace": namespace + "-c"}}
        assert (await complete(no_header, prompt, extra_body=body_a))[0] == "memory"
        assert (await complete(no_header, prompt, extra_body=body_c))[0] == "miss"


async def test_no_cache_no_store_and_exact_only(server, client, namespace) -> None:
    prompt = "the old city sleeps at night"
    assert (await complete(client, prompt))[0] == "miss"
    async with server.client(namespace, **{"Cache-Control": "no-cache"}) as no_cache:
        assert (await complete(no_cache, prompt))[0] == "miss"  # stored, not read
    assert (await complete(client, prompt))[0] == "memory"
    new = "a new song about the old city"
    async with server.client(namespace, **{"Cache-Control": "no-store"}) as no_store:
        assert (await complete(no_store, new))[0] == "bypass"
    off = {"cache": {"read": False, "write": False}}
    assert (await complete(client, new, extra_body=off))[0] == "bypass"
    assert (await complete(client, new))[0] == "miss"  # neither stored it
    # Exact only: a paraphrase that would be served is not.
    await chat_streamed(client, user("how do I learn to play the violin?"))
    exact = {"cache": {"semantic": False}}
    asked = user("how can I learn to play the violin?")
    assert (await chat_streamed(client, asked, extra_body=exact))[0]["x-cache"] == "miss"


async def test_what_the_cache_cannot_key_bypasses_it(client) -> None:
    messages = user("what colour is the sea?")
    headers, _ = await chat(client, messages, logprobs=True, top_logprobs=2)
    assert headers["x-cache"] == "bypass"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    headers, _ = await chat(client, messages, tools=tools, tool_choice="none")
    assert headers["x-cache"] == "bypass"
    # Sampling without a seed: each answer is new, so none is stored or served.
    raw = await client.completions.with_raw_response.create(
        model=MODEL, prompt="a cold wind", max_tokens=8, temperature=0.9
    )
    assert raw.headers["x-cache"] == "bypass"


async def test_bad_requests_get_an_openai_error_body_and_cache_nothing(server, client) -> None:
    async with server.client("not a namespace!") as bad:
        with pytest.raises(openai.BadRequestError) as caught:
            await complete(bad, "hello there")
    assert caught.value.status_code == 400
    assert "namespace" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError, match=r"cache\.read"):
        await complete(client, "hello there", extra_body={"cache": {"read": "no"}})
    # vLLM's own validation still answers as vLLM does.
    with pytest.raises(openai.BadRequestError) as too_long:
        await complete(client, "hello there", max_tokens=100_000)
    assert too_long.value.status_code == 400 and too_long.value.body["message"]
    assert (await complete(client, "hello there"))[0] == "miss"  # nothing was stored


async def test_unauthenticated_requests_never_reach_the_cache(server, namespace) -> None:
    before = server.metric("evllm_requests_total", path="engine")
    response = httpx.post(
        f"{server.url}/v1/completions",
        json={"model": MODEL, "prompt": "open sesame", "max_tokens": 4, "temperature": 0},
        headers={"X-Cache-Namespace": namespace},
        timeout=30,
    )
    assert response.status_code == 401
    assert server.metric("evllm_requests_total", path="engine") == before


async def test_metrics_count_known_traffic_beside_vllms(server, client) -> None:
    engine = server.metric("evllm_requests_total", path="engine")
    exact = server.metric("evllm_exact_hits_total", level="memory")
    for _ in range(3):
        await complete(client, "count the stars over the hill")
    assert server.metric("evllm_requests_total", path="engine") == engine + 1
    assert server.metric("evllm_exact_hits_total", level="memory") == exact + 2
    assert server.metric("vllm:request_success_total", finished_reason="length") > 0


async def test_a_redis_outage_still_serves_and_health_says_degraded(server, client) -> None:
    """Last in the module: it stops the server's Redis."""
    assert httpx.get(f"{server.url}/health").headers["x-cache-state"] == "ok"
    server.redis.kill()
    first_from, first = await complete(client, "a storm over the grey sea")
    again_from, again = await complete(client, "a storm over the grey sea")
    assert (first_from, again_from) == ("miss", "memory")
    assert again.choices[0].text == first.choices[0].text
    health = httpx.get(f"{server.url}/health")
    assert health.status_code == 200 and health.headers["x-cache-state"] == "degraded"


def test_the_vllm_seams_the_server_relies_on() -> None:
    """Fails, naming the seam, when a vLLM upgrade moves one."""
    import inspect
    import typing

    from vllm.entrypoints.launchers.api_server.entry import build_and_serve
    from vllm.entrypoints.launchers.launcher import setup_server
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest
    from vllm.inputs.engine import TokensInput
    from vllm.v1.engine.async_llm import AsyncLLM

    from src.cache.key import _PROMPT_FIELDS
    from src.server.cli import make_parser
    from src.server.request_policy import BODY_FIELD

    # The launcher builds vLLM's app around any engine client.
    assert list(inspect.signature(build_and_serve).parameters)[:4] == [
        "engine_client", "listen_address", "sock", "args",
    ]  # fmt: skip
    assert "reuse_port" in inspect.signature(setup_server).parameters
    # The engine is made as vLLM's launcher makes it.
    accepted = inspect.signature(AsyncLLM.__init__).parameters
    for name in ("usage_context", "enable_log_requests", "aggregate_engine_logging"):
        assert name in accepted or name in inspect.signature(AsyncLLM.from_vllm_config).parameters
    # The middleware goes in through vLLM's own option.
    args = make_parser().parse_args(["m", "--middleware", "a.B"])
    assert args.middleware == ["a.B"]
    # The cache's body field is one vLLM ignores, not one of its own.
    for request in (CompletionRequest, ChatCompletionRequest):
        assert BODY_FIELD not in request.model_fields
    # Every key of the token input the routes hand the engine is understood by the key.
    keys = set(typing.get_type_hints(TokensInput))
    assert keys <= _PROMPT_FIELDS, keys - _PROMPT_FIELDS
