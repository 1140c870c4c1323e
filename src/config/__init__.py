"""Typed settings for every part of the system."""

from src.config.cache_config import CacheConfig
from src.config.handler_config import FeatureFlags, HandlerConfig
from src.config.similarity_config import SimilarityConfig
from src.config.vllm_config import VLLMConfig

__all__ = ["CacheConfig", "FeatureFlags", "HandlerConfig", "SimilarityConfig", "VLLMConfig"]
