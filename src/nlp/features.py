"""What a prompt asks, reduced to comparable parts, and when two prompts agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GuardSettings", "PromptFeatures", "disagreement"]


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """The preprocessed content of one prompt.

    Attributes:
        text: The prompt after exact-key normalisation (see ``src.cache.key``).
        language: ``"en"``, ``"zh"``, ``"mixed"`` (both scripts in weight) or
            ``"other"`` (no pipeline: such prompts are never matched semantically).
        entities: Lower-cased names: people, places, organisations, products...
        quantities: Canonical numbers, dates and times (``"3"``, ``"month:3"``, ``"day:+1"``).
        negated: Whether the prompt contains a negation.
        anchors: Entities and quantities in order of appearance.
        directional: Whether a word makes the order of the anchors matter
            ("from A to B", "A than B", 从A到B).
        terms: Content words (lemmas), for overlap checks.
    """

    text: str
    language: str
    entities: frozenset[str]
    quantities: frozenset[str]
    negated: bool
    anchors: tuple[str, ...]
    directional: bool
    terms: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (sets as sorted lists)."""
        return {
            "text": self.text,
            "language": self.language,
            "entities": sorted(self.entities),
            "quantities": sorted(self.quantities),
            "negated": self.negated,
            "anchors": list(self.anchors),
            "directional": self.directional,
            "terms": sorted(self.terms),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptFeatures:
        """The inverse of :meth:`to_dict`."""
        return cls(
            text=str(data["text"]),
            language=str(data["language"]),
            entities=frozenset(data["entities"]),
            quantities=frozenset(data["quantities"]),
            negated=bool(data["negated"]),
            anchors=tuple(data["anchors"]),
            directional=bool(data["directional"]),
            terms=frozenset(data["terms"]),
        )


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Which content checks a semantic match must pass (from ``SimilarityConfig``)."""

    language: bool = True
    entities: bool = True
    quantities: bool = True
    negation: bool = True
    direction: bool = True
    min_term_overlap: float = 0.0


def disagreement(a: PromptFeatures, b: PromptFeatures, guards: GuardSettings) -> str | None:
    """Why two prompts ask different things, or None when every enabled guard agrees."""
    if a.language == "other" or b.language == "other":
        return "language without a pipeline"
    if guards.language and a.language != b.language:
        return "language"
    if guards.entities and a.entities != b.entities:
        return "entities"
    if guards.quantities and a.quantities != b.quantities:
        return "quantities"
    if guards.negation and a.negated != b.negated:
        return "negation"
    if (
        guards.direction
        and (a.directional or b.directional)
        and len(a.anchors) >= 2
        and _order(a.anchors) != _order(b.anchors)
    ):
        return "direction"
    if guards.min_term_overlap > 0 and a.terms and b.terms:
        overlap = len(a.terms & b.terms) / len(a.terms | b.terms)
        if overlap < guards.min_term_overlap:
            return "terms"
    return None


def _order(anchors: tuple[str, ...]) -> tuple[str, ...]:
    """Anchors in order of first appearance, each once."""
    return tuple(dict.fromkeys(anchors))
