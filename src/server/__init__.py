"""``python -m src serve``: vLLM's OpenAI-compatible server with the response cache.

* :mod:`src.server.cli` — the command line (``vllm serve``'s plus the cache's) and start-up;
* :mod:`src.server.engine` — ``ServerAsyncLLM``, the engine client the routes call;
* :mod:`src.server.middleware` — the ASGI middleware that hands each HTTP
  request's headers and body to the engine and marks responses with ``X-Cache``;
* :mod:`src.server.request_policy` — what a request may do with the cache, and
  how a chat request is keyed.
"""

from __future__ import annotations

__all__: list[str] = []
