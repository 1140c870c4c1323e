"""``ServerAsyncLLM``: the engine client of ``python -m src serve``.

An :class:`EnhancedAsyncLLM` whose ``generate`` takes each request's namespace
and cache policy from the HTTP request being served (see
:mod:`src.server.middleware`). vLLM's routes call ``generate`` as they would
on any ``AsyncLLM``; a call made outside a cached route bypasses the cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

from vllm.outputs import RequestOutput
from vllm.sampling_params import SamplingParams

from src.handler.enhanced_async_llm import EnhancedAsyncLLM
from src.server.request_policy import BYPASS, CURRENT_REQUEST

__all__ = ["ServerAsyncLLM"]


class ServerAsyncLLM(EnhancedAsyncLLM):
    """An ``EnhancedAsyncLLM`` driven by HTTP requests.

    Attributes:
        namespace_header: Name of the request header that holds the namespace.
    """

    namespace_header: str = "X-Cache-Namespace"

    async def generate(  # type: ignore[override]
        self,
        prompt: Any,
        sampling_params: SamplingParams,
        request_id: str,
        **kwargs: Any,
    ) -> AsyncGenerator[RequestOutput, None]:
        request = CURRENT_REQUEST.get()
        if request is None:
            namespace, control = None, BYPASS
        else:
            # Raises InvalidRequestError (a ValueError: vLLM answers 400) on bad settings.
            policy = request.policy()
            namespace = policy.namespace
            control = dataclasses.replace(policy.control, on_decision=policy.record)
        stream = super().generate(
            prompt,
            sampling_params,
            request_id,
            namespace=namespace,
            cache_control=control,
            **kwargs,
        )
        try:
            async for output in stream:
                yield output
        finally:
            await stream.aclose()

    def cache_state(self) -> str:
        """``ok``, ``degraded`` (Redis or the semantic stage failing) or ``disabled``."""
        if self.cache is None:
            return "disabled"
        states = [self.cache.state]
        if self.similarity is not None:
            states.append(self.similarity.state)
        return "degraded" if "degraded" in states else "ok"
