"""Semantic lookup: sentence embeddings, a partitioned FAISS index shared through Redis,
and ``SimilaritySearchHelper``, which applies the whole acceptance decision."""

from src.similarity.embedder import Embedder
from src.similarity.helper import PreparedPrompt, SimilarityMatch, SimilaritySearchHelper
from src.similarity.index import VectorIndex, VectorRecord
from src.similarity.models import DEFAULT_EMBEDDING_MODEL, resolve_model
from src.similarity.redis_store import RedisVectorStore

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "Embedder",
    "PreparedPrompt",
    "RedisVectorStore",
    "SimilarityMatch",
    "SimilaritySearchHelper",
    "VectorIndex",
    "VectorRecord",
    "resolve_model",
]
