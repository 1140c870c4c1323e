"""Prompt preprocessing: language, names, numbers, word order and key terms
(``preprocessor``, with one reader per language in ``english`` and ``chinese``),
and the guards that compare two prompts' features (``guards``)."""

from src.nlp.features import PromptFeatures
from src.nlp.guards import GuardSettings, disagreement
from src.nlp.preprocessor import PromptPreprocessor, detect_language

__all__ = [
    "GuardSettings",
    "PromptFeatures",
    "PromptPreprocessor",
    "detect_language",
    "disagreement",
]
