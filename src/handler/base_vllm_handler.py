"""Deprecated import path of the old ``BaseVLLMHandler``.

Importing the name warns; use ``create_enhanced_system()`` from
``src.handler.enhanced_llm_factory`` instead.
"""

from __future__ import annotations

from src.config import HandlerConfig, VLLMConfig
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler
from src.handler.legacy import warn_deprecated

__all__ = ["BaseVLLMHandler"]  # noqa: F822 - served by __getattr__


class _BaseVLLMHandler(EnhancedVLLMHandler):
    """The old plain handler's constructor over the new handler."""

    def __init__(self, vllm_config: VLLMConfig, handler_config: HandlerConfig | None = None):
        super().__init__(vllm_config, handler_config=handler_config)


def __getattr__(name: str) -> type:
    if name == "BaseVLLMHandler":
        warn_deprecated(
            f"{__name__}.BaseVLLMHandler",
            "src.handler.enhanced_llm_factory.create_enhanced_system()",
        )
        return _BaseVLLMHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
