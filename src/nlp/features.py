"""What a prompt asks, reduced to comparable parts (:class:`PromptFeatures`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FUNCTION_WORD", "FeatureDraft", "PromptFeatures"]

FUNCTION_WORD = "\u00b7"
"""Marks a function word in :attr:`PromptFeatures.words` ("·the", "·怎么")."""


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """The preprocessed content of one prompt.

    Attributes:
        text: The prompt after exact-key normalisation (see ``src.cache.key``).
        language: ``"en"``, ``"zh"``, ``"mixed"`` (both scripts in weight) or
            ``"other"`` (no pipeline: such prompts are never matched semantically).
        entities: Lower-cased names: people, places, organisations, products...
        quantities: Canonical numbers, dates and times (``"3"``, ``"month:3"``, ``"day:+1"``).
        anchors: Entities, quantities and nouns in order of appearance.
        terms: Content words (English lemmas; Chinese content characters), for
            overlap checks.
        words: The prompt's words in order, punctuation left out: content words as
            lemmas (Chinese: as segmented), function words marked with a leading
            ``FUNCTION_WORD`` ("·the"); for the substitution guard.
        flow: ``(source, target)`` where the prompt moves or turns one thing into
            another ("from X to Y", "convert X to Y", 从X到Y, 把X换成Y); empty
            when it names no such pair.
    """

    text: str
    language: str
    entities: frozenset[str]
    quantities: frozenset[str]
    anchors: tuple[str, ...]
    terms: frozenset[str]
    words: tuple[str, ...] = ()
    flow: tuple[str, ...] = ()


@dataclass
class FeatureDraft:
    """Features gathered word by word by a language reader; every entity and
    quantity is also an anchor. :meth:`build` freezes them."""

    entities: list[str] = field(default_factory=list)
    quantities: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    terms: set[str] = field(default_factory=set)
    words: list[str] = field(default_factory=list)
    flow: tuple[str, ...] = ()

    def entity(self, name: str) -> None:
        self.entities.append(name)
        self.anchors.append(name)

    def quantity(self, value: str) -> None:
        self.quantities.append(value)
        self.anchors.append(value)

    def attach_unit(self, unit: str) -> bool:
        """Append a unit to a quantity just read (3 + 月 -> "3月"); False if none was."""
        if not self.quantities or self.anchors[-1] != self.quantities[-1]:
            return False
        self.quantities[-1] = self.anchors[-1] = self.quantities[-1] + unit
        return True

    def build(self, text: str, language: str) -> PromptFeatures:
        return PromptFeatures(
            text=text,
            language=language,
            entities=frozenset(self.entities),
            quantities=frozenset(self.quantities),
            anchors=tuple(self.anchors),
            terms=frozenset(self.terms),
            words=tuple(self.words),
            flow=self.flow,
        )
