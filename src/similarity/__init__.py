"""Semantic lookup: sentence embeddings, a partitioned FAISS index shared through Redis,
and ``SimilaritySearchHelper``, which applies the whole acceptance decision."""

from src.similarity.embedder import Embedder, default_model_path
from src.similarity.helper import PreparedPrompt, SimilarityMatch, SimilaritySearchHelper
from src.similarity.index import VectorIndex, VectorRecord
from src.similarity.redis_store import RedisVectorStore

__all__ = [
    "Embedder",
    "PreparedPrompt",
    "RedisVectorStore",
    "SimilarityMatch",
    "SimilaritySearchHelper",
    "VectorIndex",
    "VectorRecord",
    "default_model_path",
]
