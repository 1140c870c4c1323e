"""What one HTTP request may do with the cache, read from its headers and body.

Nothing here looks at prompt text to decide a namespace: the namespace comes
from the configured header or from the body's ``cache`` object, else the
server's default.

The body's ``cache`` object (``extra_body={"cache": {...}}`` with the OpenAI
client) takes ``namespace`` (str), ``read``, ``write`` and ``semantic`` (bools).
``Cache-Control: no-cache`` skips reading (the fresh answer is stored);
``no-store`` neither reads nor writes.
"""

from __future__ import annotations

import dataclasses
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from src.cache.key import json_digest
from src.errors import InvalidRequestError
from src.handler.enhanced_async_llm import CacheControl
from src.handler.requests import check_namespace

__all__ = [
    "BODY_FIELD",
    "BYPASS",
    "CACHED_ROUTES",
    "CURRENT_REQUEST",
    "HttpRequestCache",
    "RequestCachePolicy",
    "read_policy",
]

#: Name of the request body's field that carries per-request cache settings.
BODY_FIELD = "cache"

#: The routes whose requests the cache serves; every other route bypasses it.
CACHED_ROUTES = {"/v1/completions": "completions", "/v1/chat/completions": "chat"}

#: Body fields that change how an answer is delivered or logged, not what it is.
_DELIVERY_FIELDS = frozenset({"stream", "stream_options", "user", "request_id", "priority"})

_CONTROL_KEYS = {"namespace": str, "read": bool, "write": bool, "semantic": bool}


@dataclass(slots=True)
class RequestCachePolicy:
    """One HTTP request's cache settings, and what the cache did with it.

    Attributes:
        namespace: The tenant namespace; None is the server's default.
        control: What the request's engine calls may read and write (its
            ``on_decision`` is set by the engine, to :meth:`record`).
        decisions: One ``(path, score)`` per engine call of the request, in
            the order they were decided (a completion of several prompts has
            several).
    """

    namespace: str | None
    control: CacheControl
    decisions: list[tuple[str, float | None]] = field(default_factory=list)

    def record(self, path: str, score: float | None) -> None:
        self.decisions.append(("miss" if path == "engine" else path, score))

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-Cache`` (and ``X-Cache-Similarity`` for paraphrase hits), once decided."""
        if not self.decisions:
            return []
        out = [(b"x-cache", ", ".join(path for path, _ in self.decisions).encode())]
        scores = [f"{score:.4f}" for path, score in self.decisions if score is not None]
        if scores:
            out.append((b"x-cache-similarity", ", ".join(scores).encode()))
        return out


#: Neither read nor write: the request goes to the engine as if there were no cache.
BYPASS = CacheControl(read=False, write=False, semantic=False)


class HttpRequestCache:
    """The cache's view of the HTTP request being served.

    The middleware records the headers and keeps a copy of the body as the
    route reads it; the policy is worked out on first use, by the engine's
    ``generate``, so a request that never reaches the engine (rejected by
    ``--api-key``, say) is never parsed here.
    """

    def __init__(self, route: str, headers: dict[str, str], namespace_header: str) -> None:
        self.route = route
        self.headers = headers
        self.namespace_header = namespace_header
        self.body = bytearray()
        self._policy: RequestCachePolicy | None = None

    def policy(self) -> RequestCachePolicy:
        """The request's policy.

        Raises:
            InvalidRequestError: The namespace or the ``cache`` object is malformed.
        """
        if self._policy is None:
            try:
                parsed = json.loads(self.body) if self.body else None
            except ValueError:
                parsed = None  # vLLM has answered a malformed body before any engine call
            self._policy = read_policy(
                self.route, self.headers, parsed, namespace_header=self.namespace_header
            )
        return self._policy

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [] if self._policy is None else self._policy.headers()


#: The request being served on a cached route (set by the middleware, read by
#: the engine's ``generate``); None elsewhere.
CURRENT_REQUEST: ContextVar[HttpRequestCache | None] = ContextVar(
    "evllm_http_request_cache", default=None
)


def read_policy(
    route: str,
    headers: dict[str, str],
    body: Any,
    *,
    namespace_header: str,
) -> RequestCachePolicy:
    """The cache policy of a request to one of :data:`CACHED_ROUTES`.

    Args:
        route: ``"completions"`` or ``"chat"``.
        headers: Request headers, names in lower case.
        body: The parsed JSON body (anything: vLLM reports a malformed one).
        namespace_header: Name of the header holding the namespace.

    Raises:
        InvalidRequestError: The namespace or the ``cache`` object is malformed.
    """
    settings = _body_settings(body)
    namespace = headers.get(namespace_header.lower())
    if namespace is None:
        namespace = settings.get("namespace")
    namespace = check_namespace(namespace)
    read = settings.get("read", True)
    write = settings.get("write", True)
    directives = {d.strip().lower() for d in headers.get("cache-control", "").split(",")}
    if "no-store" in directives:
        read = write = False
    if "no-cache" in directives:
        read = False
    semantic = settings.get("semantic", True)
    control = CacheControl(read=read, write=write, semantic=semantic)
    if not isinstance(body, dict) or not (read or write):
        control = BYPASS
    elif route == "chat":
        control = _chat_control(body, control)
    return RequestCachePolicy(namespace, control)


def _body_settings(body: Any) -> dict[str, Any]:
    settings = body.get(BODY_FIELD) if isinstance(body, dict) else None
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise InvalidRequestError(
            f"'{BODY_FIELD}' must be an object of {sorted(_CONTROL_KEYS)}, "
            f"got {type(settings).__name__}"
        )
    unknown = sorted(set(settings) - set(_CONTROL_KEYS))
    if unknown:
        raise InvalidRequestError(
            f"'{BODY_FIELD}' has unknown fields {unknown}; it takes {sorted(_CONTROL_KEYS)}"
        )
    for name, kind in _CONTROL_KEYS.items():
        if name in settings and not isinstance(settings[name], kind):
            raise InvalidRequestError(
                f"'{BODY_FIELD}.{name}' must be a {kind.__name__}, "
                f"got {type(settings[name]).__name__}"
            )
    return settings


def _chat_control(body: dict[str, Any], control: CacheControl) -> CacheControl:
    """A chat request: exact key on the rendered prompt; paraphrases of the last
    user message only, within everything else of the request."""
    if body.get("tools") or body.get("tool_choice") not in (None, "none"):
        return BYPASS  # tool calls are not proven safe to replay
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return BYPASS
    texts = [_message_text(m) for m in messages]
    if any(text is None for text in texts):
        return BYPASS  # images, audio, files, or a shape vLLM will reject
    last = messages[-1]
    if last.get("role") != "user":
        # Continuing an assistant turn, or answering a tool: exact hits only.
        return dataclasses.replace(control, semantic=False)
    rest = {k: v for k, v in body.items() if k not in _DELIVERY_FIELDS and k != BODY_FIELD}
    rest["messages"] = [*messages[:-1], {**last, "content": None}]
    return dataclasses.replace(control, semantic_text=texts[-1], partition=json_digest(rest))


def _message_text(message: Any) -> str | None:
    """A message's text when it holds only text (a string or text parts), else None."""
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        return None
    parts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            return None
        text = part.get("text")
        if not isinstance(text, str):
            return None
        parts.append(text)
    return "\n".join(parts)
