"""Build complete systems and keep track of the ones still alive.

``create_enhanced_system()`` is the entry point the migration guide uses: it
wires an :class:`EnhancedVLLMHandler` from the four configurations and
registers it with the process-wide factory, which reports on and cleans up
every instance it made.
"""

from __future__ import annotations

import asyncio
import logging

from src.config import CacheConfig, HandlerConfig, SimilarityConfig, VLLMConfig
from src.errors import ConfigurationError
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler

logger = logging.getLogger(__name__)

__all__ = ["EnhancedLLMFactory", "create_enhanced_system", "get_global_factory"]


class EnhancedLLMFactory:
    """Creates handlers and tracks them until they stop."""

    def __init__(self) -> None:
        self._instances: dict[str, EnhancedVLLMHandler] = {}

    async def create_system(
        self,
        vllm_config: VLLMConfig,
        cache_config: CacheConfig,
        similarity_config: SimilarityConfig,
        handler_config: HandlerConfig | None = None,
    ) -> EnhancedVLLMHandler:
        """Wire a handler from its configurations; ``await handler.start()`` starts it.

        Raises:
            ConfigurationError: A configuration is missing or of the wrong type.
        """
        for name, value, kind in (
            ("vllm_config", vllm_config, VLLMConfig),
            ("cache_config", cache_config, CacheConfig),
            ("similarity_config", similarity_config, SimilarityConfig),
        ):
            if not isinstance(value, kind):
                raise ConfigurationError(
                    f"{name} must be a {kind.__name__}, not {type(value).__name__}"
                )
        if handler_config is not None and not isinstance(handler_config, HandlerConfig):
            raise ConfigurationError(
                f"handler_config must be a HandlerConfig, not {type(handler_config).__name__}"
            )
        # Fail here, not at start(), when engine_args names something vLLM lacks.
        vllm_config.to_engine_args()
        handler = EnhancedVLLMHandler(vllm_config, cache_config, similarity_config, handler_config)
        self._instances[handler.instance_id] = handler
        handler.add_stop_callback(lambda h: self._instances.pop(h.instance_id, None))
        logger.info("Created instance %s for model %s", handler.instance_id, vllm_config.model)
        return handler

    def get_instance_stats(self) -> dict[str, dict[str, object]]:
        """Statistics of every instance not yet stopped, keyed by instance id."""
        return {iid: handler.stats() for iid, handler in self._instances.items()}

    async def cleanup_all(self) -> None:
        """Stop every instance this factory made and has not seen stop."""
        handlers = list(self._instances.values())
        results = await asyncio.gather(*(h.stop() for h in handlers), return_exceptions=True)
        for handler, result in zip(handlers, results, strict=True):
            self._instances.pop(handler.instance_id, None)
            if isinstance(result, BaseException):
                logger.error("Stopping instance %s failed: %s", handler.instance_id, result)


_global_factory: EnhancedLLMFactory | None = None


def get_global_factory() -> EnhancedLLMFactory:
    """The process-wide factory that ``create_enhanced_system`` uses."""
    global _global_factory
    if _global_factory is None:
        _global_factory = EnhancedLLMFactory()
    return _global_factory


async def create_enhanced_system(
    vllm_config: VLLMConfig,
    cache_config: CacheConfig,
    similarity_config: SimilarityConfig,
    handler_config: HandlerConfig | None = None,
) -> EnhancedVLLMHandler:
    """Create a handler with the global factory; ``await handler.start()`` next.

    Args:
        vllm_config: Model and engine settings.
        cache_config: Response-cache settings.
        similarity_config: Semantic-lookup settings.
        handler_config: Request-handling settings; defaults when None.
    """
    return await get_global_factory().create_system(
        vllm_config, cache_config, similarity_config, handler_config
    )
