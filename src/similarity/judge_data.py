"""Pairs the pair judge learns from and is calibrated on.

Three sources, kept apart as ``docs/judge.md`` writes down:

- public pair files in the format of ``shared/datasets`` (``a``, ``b``, ``same``,
  ``lang``, ``source``); only PAWS-X, whose licence allows any use, trains the
  shipped judge;
- the project's own hand-written pairs (``benchmarks/data/own_pairs_*.jsonl``);
- pairs generated from the texts of both, whose label follows from how they
  were made (:func:`generate_pairs`).

Every split is decided by a stable hash of the pair's text, so it is the same
on every machine and does not move when rows are added elsewhere.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Pair",
    "Synonyms",
    "Token",
    "ask_otherwise",
    "generate_pairs",
    "match_translations",
    "read_pairs",
    "reorder_noun_phrases",
    "split_of",
    "substitute_synonym",
    "tag_english",
    "tag_texts",
]


@dataclass(frozen=True, slots=True)
class Pair:
    """Two texts and whether they mean the same thing.

    Attributes:
        a: First text.
        b: Second text.
        same: True when both ask or say the same thing.
        lang: ``"en"`` or ``"zh"``.
        origin: Where the pair came from (a file, or a generator's name).
    """

    a: str
    b: str
    same: bool
    lang: str
    origin: str


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of a JSONL file with ``a``, ``b``, ``same`` and ``lang`` fields.

    Raises:
        ValueError: A row lacks a field or has one of the wrong type; the line is named.
    """
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                a, b, same, lang = row["a"], row["b"], row["same"], row["lang"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a pair row ({exc})") from exc
            if not (isinstance(a, str) and isinstance(b, str) and isinstance(same, bool)):
                raise ValueError(f"{path}:{number}: a and b must be strings, same a boolean")
            origin = str(row.get("source") or row.get("provenance") or path.name)
            pairs.append(Pair(a, b, same, str(lang), origin))
    return pairs


def split_of(pair: Pair, parts: int = 5) -> int:
    """A stable bucket in ``range(parts)`` from the pair's texts (order-free)."""
    first, second = sorted((pair.a, pair.b))
    digest = hashlib.sha256(f"{first}\x00{second}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % parts


# ---------------------------------------------------------------------- generated pairs


@dataclass(frozen=True, slots=True)
class Token:
    """A word of a tagged text: its surface, the space after it and a coarse class.

    ``kind`` is one of ``noun``, ``name``, ``verb``, ``adj``, ``num`` or ``""``
    (anything else).
    """

    text: str
    space: str
    kind: str


#: Lead-ins that ask for nothing of their own: adding one keeps a question's meaning.
_LEAD_INS = {
    "en": ("Question: ", "Quick question: ", "Please answer: ", "I'd like to know: "),
    "zh": ("请问", "问一下，", "我想知道：", "请告诉我："),
}
_END_MARKS = {"en": ("?", ".", "!"), "zh": ("？", "。", "！", "?")}
_EN_AUX = {"is", "are", "was", "were", "can", "could", "will", "would", "should", "does", "do",
           "did", "has", "have", "must", "may", "might"}  # fmt: skip
_ZH_NEGATORS = ("不", "没", "别", "无", "非", "未")


def tag_texts(texts: Sequence[str], lang: str, english: Any | None = None) -> list[list[Token]]:
    """Tokens with coarse word classes: spaCy's tagger for English (``english`` is
    a loaded pipeline), jieba's part-of-speech segmenter for Chinese."""
    if lang == "en":
        if english is None:
            raise ValueError("tagging English needs a spaCy pipeline")
        return tag_english(english.pipe(texts, batch_size=256))
    import jieba.posseg

    def zh_kind(flag: str) -> str:
        if flag in ("nr", "ns", "nt", "nz"):
            return "name"
        for prefix, kind in (("n", "noun"), ("v", "verb"), ("a", "adj"), ("m", "num")):
            if flag.startswith(prefix):
                return kind
        return ""

    return [[Token(w.word, "", zh_kind(w.flag)) for w in jieba.posseg.cut(t)] for t in texts]


def tag_english(docs: Iterable[Any]) -> list[list[Token]]:
    """Tokens with coarse word classes of English texts parsed by spaCy."""
    kinds = {"NOUN": "noun", "PROPN": "name", "VERB": "verb", "ADJ": "adj", "NUM": "num"}
    return [[Token(t.text, t.whitespace_, kinds.get(t.pos_, "")) for t in doc] for doc in docs]


def _join(tokens: Iterable[Token]) -> str:
    return "".join(t.text + t.space for t in tokens).strip()


def _content(tokens: Sequence[Token]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.kind and any(c.isalnum() for c in t.text)]


#: Words that join two equal parts: swapping the parts around one keeps the meaning.
_CONJUNCTIONS = {"and", "or", "&", "和", "与", "及", "或", "跟", "、", "或者", "以及"}


def swap_two(tokens: Sequence[Token], rng: random.Random) -> tuple[str, bool] | None:
    """Two different words of one class trade places.

    Returns the new text and whether it means the same: two words joined by a
    conjunction keep their roles (cats and dogs / dogs and cats), any other swap
    changes them (X more than Y / Y more than X). None when no two words qualify.
    """
    by_kind: dict[str, list[int]] = {}
    for i in _content(tokens):
        by_kind.setdefault(tokens[i].kind, []).append(i)
    choices = [
        (i, j)
        for kind in ("noun", "name", "num", "adj")
        for n, i in enumerate(by_kind.get(kind, []))
        for j in by_kind[kind][n + 1 :]
        if tokens[i].text.lower() != tokens[j].text.lower()
    ]
    if not choices:
        return None
    i, j = rng.choice(choices)
    swapped = list(tokens)
    swapped[i] = replace(tokens[i], text=tokens[j].text)
    swapped[j] = replace(tokens[j], text=tokens[i].text)
    coordinated = j == i + 2 and tokens[i + 1].text.lower() in _CONJUNCTIONS
    return _join(swapped), coordinated


def substitute_one(
    tokens: Sequence[Token], vocabulary: dict[str, list[str]], rng: random.Random
) -> str | None:
    """One content word replaced by another word of its class drawn from the corpus
    (wash / eat, cats / dogs, 3 / 7): another question."""
    candidates = [i for i in _content(tokens) if len(vocabulary.get(tokens[i].kind, ())) > 1]
    if not candidates:
        return None
    i = rng.choice(candidates)
    old = tokens[i].text
    for _ in range(8):
        new = rng.choice(vocabulary[tokens[i].kind])
        if new.lower() != old.lower() and new.lower() not in old.lower():
            changed = list(tokens)
            changed[i] = replace(tokens[i], text=new)
            return _join(changed)
    return None


#: ``(word, kind, lang) -> synonyms``: words that mean what ``word`` means as a
#: word of class ``kind`` (see :class:`Token`) in language ``lang``.
Synonyms = Callable[[str, str, str], Sequence[str]]


def substitute_synonym(
    tokens: Sequence[Token], lang: str, synonyms: Synonyms, rng: random.Random
) -> str | None:
    """One content word replaced by a synonym (sofa / couch): the
    same question in other words. None when no word of the text has one."""
    options = [
        (i, found)
        for i in _content(tokens)
        if (found := [w for w in synonyms(tokens[i].text, tokens[i].kind, lang) if w])
    ]
    if not options:
        return None
    i, found = rng.choice(options)
    new = rng.choice(sorted(found))
    old = tokens[i].text
    if old[:1].isupper() and old[1:2].islower():
        new = new[:1].upper() + new[1:]
    changed = list(tokens)
    changed[i] = replace(tokens[i], text=new)
    return _join(changed)


#: Longest text (in tokens) whose parse a reordering trusts: the small English
#: pipeline attaches phrases wrongly more often in long sentences.
_PARSED_WELL = 20


def reorder_noun_phrases(doc: Any, rng: random.Random) -> str | None:
    """Two noun phrases joined by "and" or "or" trade places (tea or coffee /
    coffee or tea): each keeps its role, so the text means the same. ``doc`` is
    a parsed spaCy ``Doc``; the second phrase must be the first's conjunct. None
    when the text has no such pair, or is too long to trust its parse."""
    if len(doc) > _PARSED_WELL:
        return None
    chunks = list(doc.noun_chunks)
    options = [
        (first, second)
        for first, second in itertools.pairwise(chunks)
        if second.start == first.end + 1
        and doc[first.end].lower_ in ("and", "or")
        and second.root.dep_ == "conj"
        and second.root.head.i == first.root.i
        and first.text.lower() != second.text.lower()
        and _whole_phrase(first)
        and _whole_phrase(second)
    ]
    if not options:
        return None
    first, second = rng.choice(options)
    joint = doc[first.end]
    return (
        doc[: first.start].text_with_ws
        + second.text
        + first[-1].whitespace_
        + joint.text_with_ws
        + first.text
        + second[-1].whitespace_
        + doc[second.end :].text_with_ws
    ).strip()


def _whole_phrase(chunk: Any) -> bool:
    """Whether every word that depends on the phrase's head, conjuncts aside, lies
    inside the phrase (the University of X: not a whole phrase without "of X")."""
    for child in chunk.root.children:
        if child.dep_ in ("cc", "conj", "punct"):
            continue
        if child.left_edge.i < chunk.start or child.right_edge.i >= chunk.end:
            return False
    return True


#: Question words by what they ask for. Words of one group ask the same thing;
#: words of two groups ask for different things. Words that ask for more than
#: one thing (English "how", "what"; Chinese 怎么, "how" or "why") are left out.
_QUESTION_WORDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (("why",), ("where",), ("when",), ("who",)),
    "zh": (("为什么", "为何"), ("怎样", "如何"), ("哪里", "哪儿"), ("什么时候", "何时"), ("谁",)),
}


def ask_otherwise(text: str, lang: str, rng: random.Random, same: bool) -> str | None:
    """The question with its question word replaced: by one asking for something
    else (``same`` False: why / where, 为什么 / 哪里), or by another word asking for
    the same thing (``same`` True: 为什么 / 为何; English has no such pairs here).
    None when the text holds no question word, or more than one."""
    if lang == "en" and not text.rstrip().endswith("?"):
        return None  # elsewhere "where", "when" and "who" mostly relate clauses
    groups = _QUESTION_WORDS[lang]
    words = [w for group in groups for w in group]
    if lang == "en":
        found = [m for w in words for m in re.finditer(rf"\b{w}\b", text, re.IGNORECASE)]
    else:
        found = [m for w in words for m in re.finditer(re.escape(w), text)]
    spans = {m.span() for m in found}
    if len(spans) != 1:
        return None
    match = found[0]
    old = match.group(0)
    group = next(g for g in groups if old.lower() in g)
    if same:
        choices = [w for w in group if w != old.lower()]
    else:
        choices = [w for g in groups if g is not group for w in g]
    if not choices:
        return None
    new = rng.choice(choices)
    if old[:1].isupper():
        new = new[:1].upper() + new[1:]
    return text[: match.start()] + new + text[match.end() :]


def negate(tokens: Sequence[Token], lang: str) -> str | None:
    """The first auxiliary (English) or verb (Chinese) negated: the opposite question.
    None when the text has none, or is negated already."""
    if lang == "en":
        words = [t.text.lower() for t in tokens]
        if "not" in words or any(w.endswith("n't") for w in words):
            return None
        for i, token in enumerate(tokens):
            if token.text.lower() in _EN_AUX:
                changed = list(tokens)
                changed[i] = replace(token, text=f"{token.text} not", space=token.space or " ")
                return _join(changed)
        return None
    if any(n in t.text for t in tokens for n in _ZH_NEGATORS):
        return None
    for i, token in enumerate(tokens):
        if token.kind == "verb":
            changed = list(tokens)
            changed[i] = replace(token, text="不" + token.text)
            return _join(changed)
    return None


def restyle(text: str, lang: str, rng: random.Random) -> str:
    """The same question said another way on the surface: a lead-in that asks for
    nothing, another end mark, or (English) other capitals."""
    stripped = text.rstrip("".join(_END_MARKS[lang]) + " ")
    moves: list[Callable[[], str]] = [
        lambda: rng.choice(_LEAD_INS[lang]) + text,
        lambda: stripped + rng.choice(_END_MARKS[lang]),
        lambda: stripped,
    ]
    if lang == "en":
        moves.append(lambda: text.lower())
    changed = rng.choice(moves)()
    return changed if changed != text else rng.choice(_LEAD_INS[lang]) + text


def generate_pairs(
    pairs: Sequence[Pair],
    tagged: dict[str, list[Token]],
    rng: random.Random,
    synonyms: Synonyms | None = None,
    substitute_share: float = 1.0,
    grammar: dict[str, str | None] | None = None,
) -> list[Pair]:
    """Pairs whose label follows from how they were made, from the texts of ``pairs``.

    For each source pair (a, b): a restyled (same when a and b are), b with two
    words swapped (different, unless the two were coordinated and a and b were
    the same), b with one word substituted (different) and b negated
    (different). Substitutes come from the words of the same language and class
    across all the texts. Given ``synonyms``, also b with one word replaced by a
    synonym b': (a, b') keeps the pair's label and (b, b') is the same question;
    only synonyms that occur in the texts themselves are used, so a rare or
    dated entry of a thesaurus never stands in for a word in common use.
    ``substitute_share`` is the share of source pairs that give a substituted
    pair (drawn at random; all of them at 1). Given ``grammar`` (each text's
    reordering, :func:`reorder_noun_phrases`, or None), also pairs whose label
    follows from grammar: b with two coordinated phrases reordered (b and b' the
    same; a and b' as a and b), and b with its question word replaced by
    one asking for something else (different from a and b) or, in Chinese, for
    the same thing (as the coordination); and the same from a.
    """
    if not 0.0 <= substitute_share <= 1.0:
        raise ValueError(f"substitute_share must be within [0, 1], got {substitute_share}")
    vocabulary: dict[tuple[str, str], list[str]] = {}
    for pair in pairs:
        for text in (pair.a, pair.b):
            for token in tagged.get(text, ()):
                if token.kind and len(token.text) > 1 and any(c.isalnum() for c in token.text):
                    vocabulary.setdefault((pair.lang, token.kind), []).append(token.text)
    by_lang: dict[str, dict[str, list[str]]] = {}
    for (lang, kind), words in vocabulary.items():
        by_lang.setdefault(lang, {})[kind] = sorted(set(words))
    attested = {(lang, w.lower()) for (lang, _), words in vocabulary.items() for w in words}

    def in_use(word: str, kind: str, lang: str) -> list[str]:
        assert synonyms is not None
        return [w for w in synonyms(word, kind, lang) if (lang, w.lower()) in attested]

    made: list[Pair] = []
    for pair in pairs:
        tokens = tagged.get(pair.b)
        if not tokens:
            continue
        if synonyms is not None:
            reworded = substitute_synonym(tokens, pair.lang, in_use, rng)
            if reworded and _normal(reworded) != _normal(pair.b):
                made.append(Pair(pair.a, reworded, pair.same, pair.lang, "generated:synonym"))
                made.append(Pair(pair.b, reworded, True, pair.lang, "generated:synonym"))
        made.append(Pair(restyle(pair.a, pair.lang, rng), pair.b, pair.same, pair.lang,
                         "generated:restyled"))  # fmt: skip
        swap = swap_two(tokens, rng)
        substitute = substitute_share >= 1.0 or rng.random() < substitute_share
        derived = (
            ("swapped", swap[0] if swap else None, pair.same and swap is not None and swap[1]),
            (
                "substituted",
                substitute_one(tokens, by_lang.get(pair.lang, {}), rng) if substitute else None,
                False,
            ),
            ("negated", negate(tokens, pair.lang), False),
        )
        for name, changed, same in derived:
            if changed and _normal(changed) not in (_normal(pair.a), _normal(pair.b)):
                made.append(Pair(pair.a, changed, same, pair.lang, f"generated:{name}"))
        if grammar is not None:
            made.extend(_grammar_pairs(pair, grammar.get(pair.b), rng))
            mirrored = replace(pair, a=pair.b, b=pair.a)
            made.extend(_grammar_pairs(mirrored, grammar.get(pair.a), rng))
    return made


def _grammar_pairs(pair: Pair, reordered: str | None, rng: random.Random) -> list[Pair]:
    """The pairs :func:`generate_pairs` makes from grammar (see there)."""
    made = []
    keeping = (
        ("reordered", reordered),
        ("asked-alike", ask_otherwise(pair.b, pair.lang, rng, same=True)),
    )
    for name, changed in keeping:
        if changed and _normal(changed) != _normal(pair.b):
            made.append(Pair(pair.a, changed, pair.same, pair.lang, f"generated:{name}"))
            made.append(Pair(pair.b, changed, True, pair.lang, f"generated:{name}"))
    other = ask_otherwise(pair.b, pair.lang, rng, same=False)
    if other and _normal(other) not in (_normal(pair.a), _normal(pair.b)):
        made.append(Pair(pair.a, other, False, pair.lang, "generated:asked-otherwise"))
        made.append(Pair(pair.b, other, False, pair.lang, "generated:asked-otherwise"))
    return made


def _normal(text: str) -> str:
    return re.sub(r"\W+", "", text.lower())


def match_translations(
    english: Sequence[Pair],
    chinese: Sequence[Pair],
    embed: Callable[[list[str]], np.ndarray],
    floor: float = 0.75,
) -> list[int | None]:
    """For each pair of ``chinese``, the index of the pair of ``english`` it
    translates, or None when no pair is close enough.

    PAWS-X ships each language's pairs as a translation of the same English
    pairs, but the files here are not in the same order (and each lost other
    rows to filtering), so line numbers say nothing. A pair's match is the pair
    of the other language whose two sides are closest, side by side, in a
    multilingual embedding space (``embed``: unit vectors, cosine = dot
    product): the mean of the two sides' cosines, at least ``floor``.
    """
    if not english or not chinese:
        return [None] * len(chinese)
    en_a, en_b = embed([p.a for p in english]), embed([p.b for p in english])
    zh_a, zh_b = embed([p.a for p in chinese]), embed([p.b for p in chinese])
    scores = (zh_a @ en_a.T + zh_b @ en_b.T) / 2.0
    best = scores.argmax(axis=1)
    return [int(i) if scores[j, i] >= floor else None for j, i in enumerate(best)]
