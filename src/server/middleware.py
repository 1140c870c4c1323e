"""The ASGI middleware that connects vLLM's HTTP routes to the cache.

``python -m src serve`` adds it with vLLM's own ``--middleware`` option. It
reads no prompt and decides nothing: for a request to a cached route it
records the headers, keeps a copy of the body as the route reads it, and
makes both available to the engine's ``generate`` through a context variable.
On the way out it adds ``X-Cache`` (where each answer came from) to the
response, and ``X-Cache-State`` to ``/health``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from src.server.engine import ServerAsyncLLM
from src.server.request_policy import CACHED_ROUTES, CURRENT_REQUEST, HttpRequestCache

__all__ = ["CacheMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class CacheMiddleware:
    """Pure ASGI middleware (streaming responses pass through unbuffered).

    It finds the engine as vLLM stores it, in ``app.state.engine_client``; with
    any other engine it passes every request through untouched.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = _cache_engine(scope) if scope["type"] == "http" else None
        if engine is None:
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path == "/health":
            state = [(b"x-cache-state", engine.cache_state().encode())]
            await self.app(scope, receive, _adding_headers(send, lambda: state))
            return
        route = CACHED_ROUTES.get(path)
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        request = HttpRequestCache(route, headers, engine.namespace_header)
        token = CURRENT_REQUEST.set(request)
        try:
            await self.app(
                scope,
                _copying_body(receive, request.body),
                _adding_headers(send, request.response_headers),
            )
        finally:
            CURRENT_REQUEST.reset(token)


def _cache_engine(scope: Scope) -> ServerAsyncLLM | None:
    app = scope.get("app")
    engine = getattr(getattr(app, "state", None), "engine_client", None)
    return engine if isinstance(engine, ServerAsyncLLM) else None


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path") or ""
    return path[len(root) :] if root and path.startswith(root) else path


def _copying_body(receive: Receive, body: bytearray) -> Receive:
    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            body.extend(message.get("body", b""))
        return message

    return wrapped


def _adding_headers(send: Send, extra: Callable[[], list[tuple[bytes, bytes]]]) -> Send:
    """Hold the response start until its first body part, then add ``extra()``.

    vLLM sends its first body part after the engine's first output, when the
    cache has decided; a streamed response thus carries the header too.
    """
    held: Message | None = None

    async def wrapped(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            held = message
            return
        if held is not None:
            start, held = held, None
            start = {**start, "headers": [*start.get("headers", []), *extra()]}
            await send(start)
        await send(message)

    return wrapped
