"""The response cache: a backend contract, memory and Redis levels, and their manager."""

from src.cache.base import CacheBackend, LevelStats
from src.cache.entry import ENTRY_VERSION, CachedCompletion, CacheEntry
from src.cache.key import RequestKey, make_request_key, normalize_prompt
from src.cache.manager import CacheHit, MultiLevelCacheManager
from src.cache.memory import MemoryBackend
from src.cache.redis_backend import RedisBackend

__all__ = [
    "ENTRY_VERSION",
    "CacheBackend",
    "CacheEntry",
    "CacheHit",
    "CachedCompletion",
    "LevelStats",
    "MemoryBackend",
    "MultiLevelCacheManager",
    "RedisBackend",
    "RequestKey",
    "make_request_key",
    "normalize_prompt",
]
