"""What an HTTP request may do with the cache, read from its headers and body
(no server: the logic alone; tests/test_server.py drives the real one)."""

from __future__ import annotations

import pytest

from src.errors import InvalidRequestError
from src.server.request_policy import BYPASS, HttpRequestCache, read_policy

HEADER = "X-Cache-Namespace"

CHAT = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "what is the capital of France?"},
    ],
    "temperature": 0,
}


def policy(body=None, route="chat", **headers):
    return read_policy(route, headers, CHAT if body is None else body, namespace_header=HEADER)


def with_messages(*messages):
    return {**CHAT, "messages": list(messages)}


def test_the_namespace_comes_from_the_configured_header_first_then_the_body() -> None:
    body = {**CHAT, "cache": {"namespace": "from-body"}}
    assert policy(body, **{"x-cache-namespace": "from-header"}).namespace == "from-header"
    assert policy(body).namespace == "from-body"
    assert policy().namespace is None  # the server's default
    # Another header of the same meaning is not read: only the configured one.
    assert policy(**{"x-tenant": "t1"}).namespace is None


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "ns\n"])
def test_a_malformed_namespace_is_an_error_naming_it(bad) -> None:
    with pytest.raises(InvalidRequestError, match="namespace"):
        policy(**{"x-cache-namespace": bad})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("off", "must be an object"),
        ({"reed": False}, r"unknown fields \['reed'\]"),
        ({"read": "no"}, "'cache.read' must be a bool"),
        ({"namespace": 5}, "'cache.namespace' must be a str"),
    ],
)
def test_a_malformed_cache_object_is_an_error_naming_the_field(settings, message) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        policy({**CHAT, "cache": settings})


@pytest.mark.parametrize(
    ("headers", "settings", "read", "write", "semantic"),
    [
        ({}, {}, True, True, True),
        ({"cache-control": "no-cache"}, {}, False, True, True),
        ({"cache-control": "max-age=0, No-Store"}, {}, False, False, False),
        ({}, {"read": False}, False, True, True),
        ({}, {"read": False, "write": False}, False, False, False),
        ({}, {"semantic": False}, True, True, False),
    ],
)
def test_cache_control_and_the_cache_object_say_what_is_read_and_written(
    headers, settings, read, write, semantic
) -> None:
    control = policy({**CHAT, "cache": settings}, "completions", **headers).control
    assert (control.read, control.write) == (read, write)
    if read or write:
        assert control.semantic is semantic
    else:
        assert control == BYPASS


def test_a_chat_is_compared_by_its_last_user_message_within_everything_else() -> None:
    control = policy().control
    assert control.semantic_text == "what is the capital of France?"
    paraphrase = with_messages(
        CHAT["messages"][0], {"role": "user", "content": "France's capital?"}
    )
    # A paraphrase of the last message, or the same request streamed, share the partition.
    assert policy(paraphrase).control.partition == control.partition
    streamed = {**CHAT, "stream": True, "stream_options": {"include_usage": True}, "user": "u"}
    assert policy(streamed).control.partition == control.partition


@pytest.mark.parametrize(
    "other",
    [
        with_messages({"role": "system", "content": "You answer at length."}, CHAT["messages"][1]),
        with_messages(CHAT["messages"][1]),  # no system prompt
        with_messages(
            CHAT["messages"][0],
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            CHAT["messages"][1],
        ),
        {**CHAT, "response_format": {"type": "json_object"}},
        {**CHAT, "model": "other"},
        {**CHAT, "max_tokens": 5},
        {**CHAT, "chat_template_kwargs": {"enable_thinking": False}},
    ],
)
def test_another_conversation_or_option_is_another_partition(other) -> None:
    assert policy(other).control.partition != policy().control.partition


def test_text_parts_read_as_text_and_anything_else_bypasses() -> None:
    parts = with_messages(
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    )
    assert policy(parts).control.semantic_text == "a\nb"
    image = with_messages(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    )
    assert policy(image).control == BYPASS


def test_tools_bypass_and_a_last_turn_not_from_the_user_is_exact_only() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert policy({**CHAT, "tools": tools}).control == BYPASS
    assert policy({**CHAT, "tool_choice": "auto"}).control == BYPASS
    prefill = with_messages(*CHAT["messages"], {"role": "assistant", "content": "Par"})
    control = policy(prefill).control
    assert (control.read, control.write, control.semantic) == (True, True, False)


def test_a_body_that_is_not_an_object_bypasses() -> None:
    assert policy(["not", "an", "object"], "completions").control == BYPASS


def test_the_request_is_parsed_once_on_first_use_and_reports_its_decisions() -> None:
    request = HttpRequestCache("completions", {}, HEADER)
    request.body.extend(b'{"model": "m", "prompt": "hi", "cache": {"namespace": "acme"}}')
    assert request.response_headers() == []  # nothing decided, nothing said
    first = request.policy()
    assert request.policy() is first and first.namespace == "acme"
    first.record("engine", None)
    first.record("semantic", 0.91234)
    assert dict(request.response_headers()) == {
        b"x-cache": b"miss, semantic",
        b"x-cache-similarity": b"0.9123",
    }
