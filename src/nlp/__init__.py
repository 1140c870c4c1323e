"""Prompt preprocessing with spaCy: language, names, numbers, negation, key terms."""

from src.nlp.features import GuardSettings, PromptFeatures, disagreement
from src.nlp.preprocessor import PromptPreprocessor, detect_language

__all__ = [
    "GuardSettings",
    "PromptFeatures",
    "PromptPreprocessor",
    "detect_language",
    "disagreement",
]
