"""The engine subclass, the request handler and the factory that wires them."""

from src.handler.enhanced_async_llm import EnhancedAsyncLLM
from src.handler.enhanced_llm_factory import (
    EnhancedLLMFactory,
    create_enhanced_system,
    get_global_factory,
)
from src.handler.enhanced_vllm_handler import EnhancedVLLMHandler, HandlerState
from src.handler.outputs import GenerationOutput, RequestCollector

__all__ = [
    "EnhancedAsyncLLM",
    "EnhancedLLMFactory",
    "EnhancedVLLMHandler",
    "GenerationOutput",
    "HandlerState",
    "RequestCollector",
    "create_enhanced_system",
    "get_global_factory",
]
