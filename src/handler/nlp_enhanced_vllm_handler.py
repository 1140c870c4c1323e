"""Deprecated import path of the old ``NLPEnhancedVLLMHandler``.

Importing the name warns; use ``create_enhanced_system()`` from
``src.handler.enhanced_llm_factory`` instead.
"""

from __future__ import annotations

from src.config import HandlerConfig, VLLMConfig
from src.errors import ConfigurationError
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler
from src.handler.legacy import warn_deprecated

__all__ = ["NLPEnhancedVLLMHandler"]


class _NLPEnhancedVLLMHandler(EnhancedVLLMHandler):
    """The old handler's constructor over the new handler."""

    def __init__(
        self,
        vllm_config: VLLMConfig,
        cache_manager: object | None = None,
        similarity_search_helper: object | None = None,
        handler_config: HandlerConfig | None = None,
    ) -> None:
        if cache_manager is not None or similarity_search_helper is not None:
            raise ConfigurationError(
                "ready-made cache_manager / similarity_search_helper objects are not "
                "accepted; pass cache_config and similarity_config to "
                "create_enhanced_system() instead"
            )
        super().__init__(vllm_config, handler_config=handler_config)


def __getattr__(name: str) -> type:
    if name == "NLPEnhancedVLLMHandler":
        warn_deprecated(
            f"{__name__}.NLPEnhancedVLLMHandler",
            "src.handler.enhanced_llm_factory.create_enhanced_system()",
        )
        return _NLPEnhancedVLLMHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
