"""Deprecated import path of the old ``NLPEnhancedVLLMHandler``.

Importing the name warns; use ``create_enhanced_system()`` from
``src.handler.enhanced_llm_factory`` instead.
"""

from __future__ import annotations

from src.cache.manager import MultiLevelCacheManager
from src.config import HandlerConfig, VLLMConfig
from src.errors import ConfigurationError
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler
from src.handler.legacy import warn_deprecated
from src.similarity.helper import SimilaritySearchHelper

__all__ = ["NLPEnhancedVLLMHandler"]  # noqa: F822 - served by __getattr__


class _NLPEnhancedVLLMHandler(EnhancedVLLMHandler):
    """The old handler's constructor over the new handler."""

    def __init__(
        self,
        vllm_config: VLLMConfig,
        cache_manager: MultiLevelCacheManager | None = None,
        similarity_search_helper: SimilaritySearchHelper | None = None,
        handler_config: HandlerConfig | None = None,
    ) -> None:
        if cache_manager is not None and not isinstance(cache_manager, MultiLevelCacheManager):
            raise ConfigurationError(
                "cache_manager must be a MultiLevelCacheManager, "
                f"not {type(cache_manager).__name__}"
            )
        if similarity_search_helper is not None and not isinstance(
            similarity_search_helper, SimilaritySearchHelper
        ):
            raise ConfigurationError(
                "similarity_search_helper must be a SimilaritySearchHelper, "
                f"not {type(similarity_search_helper).__name__}"
            )
        super().__init__(
            vllm_config,
            handler_config=handler_config,
            cache=cache_manager,
            similarity=similarity_search_helper,
        )


def __getattr__(name: str) -> type:
    if name == "NLPEnhancedVLLMHandler":
        warn_deprecated(
            f"{__name__}.NLPEnhancedVLLMHandler",
            "src.handler.enhanced_llm_factory.create_enhanced_system()",
        )
        return _NLPEnhancedVLLMHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
