"""The guards: content checks that can veto a semantic match.

Each guard compares the :class:`~src.nlp.features.PromptFeatures` of two
prompts and names one way in which they can ask different things; the pair judge
decides the rest. :func:`disagreement` runs those ``GuardSettings`` switches on.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from src.nlp import lexicon
from src.nlp.features import FUNCTION_WORD, PromptFeatures

__all__ = ["CHECKS", "GuardSettings", "Relations", "SameMeaning", "disagreement"]


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Which content checks a semantic match must pass (from ``SimilarityConfig``)."""

    language: bool = True
    entities: bool = True
    quantities: bool = True
    direction: bool = True
    subject: bool = True
    substitution: bool = True
    min_term_overlap: float = 0.0
    min_term_overlap_zh: float = 0.0


SameMeaning = Callable[[str, str], bool]
"""Whether two words name the same thing (``Thesaurus.same``)."""


def disagreement(
    a: PromptFeatures,
    b: PromptFeatures,
    guards: GuardSettings,
    same: SameMeaning | None = None,
    opposite: SameMeaning | None = None,
) -> str | None:
    """The name of the first enabled guard that finds the prompts ask different
    things, or None when every enabled guard agrees.

    ``same`` (``Thesaurus.same``) lets a guard accept a synonym in place of a word;
    without it only the words themselves count. ``opposite``
    (``Thesaurus.opposite``) lets the direction guard see antonyms.
    """
    if a.language == "other" or b.language == "other":
        return "language without a pipeline"
    relations = Relations(same, opposite)
    for name, differs in CHECKS:
        if getattr(guards, name) and differs(a, b, relations):
            return name
    floor = guards.min_term_overlap_zh if a.language in ("zh", "mixed") else guards.min_term_overlap
    if floor > 0 and too_few_shared_terms(a, b, floor):
        return "terms"
    return None


@dataclass(frozen=True, slots=True)
class Relations:
    """What the thesaurus says of two words, where one is loaded."""

    same: SameMeaning | None = None
    opposite: SameMeaning | None = None


def languages_differ(a: PromptFeatures, b: PromptFeatures, _: Relations) -> bool:
    """An answer is written in its prompt's language: a prompt in another language
    wants another answer, whatever it means."""
    return a.language != b.language


def names_differ(a: PromptFeatures, b: PromptFeatures, r: Relations) -> bool:
    """A question about one named thing is not a question about another. A name the
    other prompt spells out, abbreviates or names by a synonym is the same name."""
    return bool(_unmatched(a, b, r.same) or _unmatched(b, a, r.same))


def quantities_differ(a: PromptFeatures, b: PromptFeatures, _: Relations) -> bool:
    """Another number, date or time asks for another answer; one said by one prompt
    only as a setting (a part of the day, a season) does not."""
    return _quantities_differ(a.quantities, b.quantities, implied=not (_ordinal(a) or _ordinal(b)))


def subjects_differ(a: PromptFeatures, b: PromptFeatures, r: Relations) -> bool:
    """Two prompts that each name a thing the other does not mention ask about two
    things."""
    return bool(_uncovered_nouns(a, b, r.same) and _uncovered_nouns(b, a, r.same))


def word_substituted(a: PromptFeatures, b: PromptFeatures, r: Relations) -> bool:
    """Two prompts that differ in one content word ask the same thing only if the
    two words do: the same stem, synonyms, one aspect, or a name and its short form."""
    swaps = _swaps(a, b)
    return bool(swaps) and not any(
        _same_stem(x, y)
        or (r.same is not None and r.same(x, y))
        or _same_aspect(x, y)
        or _abbreviated(x, a, b)
        or _contracted(x, y)
        for x, y in swaps
    )


def direction_reversed(a: PromptFeatures, b: PromptFeatures, r: Relations) -> bool:
    """Where order matters, the reverse asks something else: two named things trading
    places around the same words, a move or change with source and target
    swapped, opposite words beside the same word, or antonyms each prompt says
    alone."""
    return (
        _transposed(a.words, b.words)
        or _reversed_flow(a.flow, b.flow)
        or _opposed(a.words, b.words)
        or (r.opposite is not None and _antonymous(a, b, r.opposite))
    )


def too_few_shared_terms(a: PromptFeatures, b: PromptFeatures, floor: float) -> bool:
    """Prompts that share too small a part of their content words (Jaccard overlap
    below ``floor``) are about different things."""
    union = a.terms | b.terms
    return not union or len(a.terms & b.terms) / len(union) < floor


#: The guards in the order they are asked, by their ``GuardSettings`` switch.
CHECKS: tuple[tuple[str, Callable[[PromptFeatures, PromptFeatures, Relations], bool]], ...] = (
    ("language", languages_differ),
    ("entities", names_differ),
    ("quantities", quantities_differ),
    ("subject", subjects_differ),
    ("substitution", word_substituted),
    ("direction", direction_reversed),
)


def _same_aspect(x: str, y: str) -> bool:
    """Whether two words ask for the same aspect of a topic (区别 / 不一样)."""
    aspect = lexicon.ASPECTS.get(x)
    return aspect is not None and aspect == lexicon.ASPECTS.get(y)


def _unmatched(a: PromptFeatures, b: PromptFeatures, same: SameMeaning | None) -> set[str]:
    """``a``'s entities that ``b`` neither recognised, contains as text, names by a
    synonym (Earth / world), nor writes as initials or in full (JS / JavaScript).

    Taggers disagree about what is a name; a name the other prompt still spells
    out is the same name.
    """
    text = b.text.lower()
    words = _words(b)
    return {
        e
        for e in a.entities
        if e not in b.entities
        and not _spells(text, e)
        and not _synonym_in(e, words, same)
        and not _abbreviated(e, a, b)
        and not any(_contracted(e, w) for w in words)
    }


def _contracted(x: str, y: str) -> bool:
    """Whether either of two Chinese names is a contraction of the other."""
    return _shortens(x, y) or _shortens(y, x)


def _activity_of_agent(word: str) -> str | None:
    """What a word for someone who does a thing says is done: "surf" of surfer,
    "swim" of swimmer, 养蜂 of 养蜂人; None for other words.

    A prompt that names the activity's gear or place names the person who does it
    as well.
    """
    if word.isascii():
        for suffix in lexicon.EN_AGENT_SUFFIXES:
            stem = word.removesuffix(suffix)
            if stem != word and len(stem) >= 3:
                # A doubled final consonant: swimmer, runner.
                return stem[:-1] if len(stem) >= 4 and stem[-1] == stem[-2] else stem
        return None
    if len(word) >= 3 and word[-1] in lexicon.ZH_AGENT_SUFFIXES:
        return word[:-1]
    return None


def _names_activity(word: str, doing: str) -> bool:
    """Whether an English word is ``doing`` inflected (surf, surfs, surfing) or a
    compound it starts (surfboard); not merely a word it starts (let / lettuce)."""
    rest = word.removeprefix(doing)
    if rest == word:
        return False
    return rest in lexicon.EN_INFLECTIONS or (len(doing) >= 4 and len(rest) >= 5)


def _shortens(short: str, full: str) -> bool:
    """Whether a Chinese name is a contraction of another: some of its characters,
    in order, the first kept (ABD for ABCD, as a university's short name keeps
    its city's first character and its own).

    A part of the name as it stands (AB in ABCD) names something else."""
    if short.isascii() or full.isascii() or len(full) < len(short) + 2 or short in full:
        return False
    rest = iter(full[1:])
    return short[0] == full[0] and all(ch in rest for ch in short[1:])


# Capitalised words, with "of", "and", "for" or "the" between two of them (United
# States of America); those small words give no initial.
_NAME_RUN = re.compile(r"\b[A-Z][A-Za-z]*(?:[ -](?:(?:of|and|for|the) )?[A-Z][A-Za-z]*)*\b")
_NAME_PART = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z][a-z]*")


@functools.lru_cache(maxsize=4096)
def _name_runs(text: str) -> tuple[tuple[frozenset[str], str, bool], ...]:
    """The runs of capitalised words in a prompt as written: each run's words
    (lower-cased), its initials, and whether it is written in initials already.

    A capitalised word gives its initial, and a word in capitals all its letters:
    "Visual Studio Code" and "VS Code" both give "vsc", "JavaScript" and "JS" "js".
    Cached by text: the guards ask for one prompt's runs once per word they check.
    """
    runs = []
    for match in _NAME_RUN.finditer(text):
        run = match.group()
        parts = _NAME_PART.findall(run)
        initials = "".join(p if p.isupper() and len(p) > 1 else p[0] for p in parts).lower()
        if len(initials) >= 2:
            short = any(p.isupper() and len(p) > 1 for p in parts)
            runs.append((frozenset(re.split(r"[ -]", run.lower())), initials, short))
    return tuple(runs)


def _abbreviated(word: str, a: PromptFeatures, b: PromptFeatures) -> bool:
    """Whether ``word`` belongs to a name in ``a`` that ``b`` writes in initials where
    ``a`` spells it out, or the other way round (JS / JavaScript, UN / United Nations);
    or ``word`` is written in capitals in ``a`` and ``b`` spells it out in content
    words, capitalised or not (SSD / solid-state drive)."""
    theirs = _name_runs(b.text)
    if any(
        initials == other and (short or other_short) and words != other_words
        for words, initials, short in _name_runs(a.text)
        if word in words
        for other_words, other, other_short in theirs
    ):
        return True
    if not (3 <= len(word) <= 5 and re.search(rf"\b{re.escape(word.upper())}s?\b", a.text)):
        return False
    n = len(word)
    return any(
        "".join(w[0] for w in b.words[i : i + n]) == word
        and not any(w.startswith(FUNCTION_WORD) for w in b.words[i : i + n])
        for i in range(len(b.words) - n + 1)
    )


def _words(features: PromptFeatures) -> set[str]:
    return set(features.terms) | set(features.anchors) | set(features.entities)


def _synonym_in(word: str, words: Iterable[str], same: SameMeaning | None) -> bool:
    return same is not None and any(same(word, w) for w in words)


def _spells(text: str, name: str) -> bool:
    """Whether ``text`` contains ``name``: as whole words for Latin script, else anywhere."""
    if name.isascii():
        return re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", text) is not None
    return name in text


def _uncovered_nouns(a: PromptFeatures, b: PromptFeatures, same: SameMeaning | None) -> set[str]:
    """``a``'s subject nouns that ``b`` says nothing of.

    Two prompts that each name a thing the other lacks ask about different
    things (X / Y); one that only adds a word usually rephrases, so the guard
    fires on a swap, not on an addition.
    A noun is covered when ``b`` has it, a word of the same stem (meaning /
    mean, bacterium / bacteria), or, in Chinese, every one of its characters
    (XY / X的Y), or, given ``same``, a synonym of it (fridge / refrigerator).
    """
    subject = set(a.anchors) - a.entities - a.quantities - lexicon.FRAME_NOUNS
    # A word both prompts say stands for itself: it cannot also stand in for another
    # of ``a``'s nouns as a synonym, though WordNet may relate the two.
    # The head of a two-word noun stands for that noun only: N in "<X> <N>" does not
    # cover a kind of N, as a bare N would.
    heads = {w.rsplit(" ", 1)[1] for w in b.anchors if " " in w}
    # Likewise for stems: a word said by both cannot also cover a longer word it begins.
    covered = _coverage(b, same, taken={*a.anchors, *a.entities, *heads}, own=_words(a))
    # One word written as two or hyphenated ("<x>-<y>", "<x> <y>" / "<x><y>").
    said = _words(b)
    closed = {part for x, y, joined in _joined_pairs(a) if joined in said for part in (x, y)}
    # "<x> <y>" / "<x> <y'>", y' a synonym of y: a two-word noun the other prompt says
    # in two words of the same meaning covers its own words.
    phrases = {w for w in said if " " in w}
    closed |= {
        part
        for noun in subject
        if " " in noun and (noun in phrases or _synonym_in(noun, phrases, same))
        for part in noun.split()
    }
    return {noun for noun in subject if noun not in closed and not covered(noun)}


def _joined_pairs(f: PromptFeatures) -> list[tuple[str, str, str]]:
    """Each two neighbouring Latin-script content words and the one word they make
    written together."""
    content = [w for w in f.words if not w.startswith(FUNCTION_WORD)]
    return [
        (x, y, x + y)
        for x, y in itertools.pairwise(content)
        if x.isascii() and y.isascii() and x.isalpha() and y.isalpha()
    ]


def _coverage(
    b: PromptFeatures,
    same: SameMeaning | None,
    taken: Iterable[str] = (),
    own: Iterable[str] = (),
) -> Callable[[str], bool]:
    """Whether prompt ``b`` says a word: the word itself, a word of the same stem,
    every one of its characters in Chinese, a word asking for the same aspect
    (symptom / sign, 好处 / 益处: ``lexicon.ASPECTS``) or, given ``same``, a synonym
    among its words not in ``taken``. A word of ``own`` (the asking prompt's own
    words) matches itself and is not read as another word's stem.

    ``b``'s words and text are gathered once for all the words asked about.
    """
    words = _words(b) | {joined for _, _, joined in _joined_pairs(b)}
    free = words - set(taken)
    stems = [w for w in words - set(own) if w.isascii()]
    text = b.text.lower()
    aspects = {lexicon.ASPECTS[w] for w in words if w in lexicon.ASPECTS}

    def covers(word: str) -> bool:
        if word in words or lexicon.ASPECTS.get(word) in aspects:
            return True
        if word.isascii():
            if _spells(text, word) or any(_same_stem(word, w) for w in stems):
                return True
            doing = _activity_of_agent(word)
            if doing is not None and any(_names_activity(w, doing) for w in stems):
                return True
        elif (
            all(ch in text for ch in word if not ch.isascii())
            or any(_shortens(w, word) for w in words)
            or ((doing := _activity_of_agent(word)) is not None and doing in text)
        ):
            return True
        return _synonym_in(word, free, same)

    return covers


def _substitution(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, str] | None:
    """The two words, where two prompts differ in exactly one word and that word
    is a content word in at least one of them ("how do I learn to swim / skate").

    Such a one-word change asks another question unless the words are synonyms:
    the embedding scores it high because everything else is the same, and no
    other guard sees a verb or an adjective swapped.
    """
    if len(a) != len(b) or not a:
        return None
    changed = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    if len(changed) != 1:
        return None
    ((x, y),) = changed
    if x.startswith(FUNCTION_WORD) and y.startswith(FUNCTION_WORD):
        return None
    # A content word in a stop word's place changes the question too (喂 / 遛: spaCy
    # lists 喂, "hey", as a stop word).
    x, y = x.lstrip(FUNCTION_WORD), y.lstrip(FUNCTION_WORD)
    if x in lexicon.FRAME_NOUNS and y in lexicon.FRAME_NOUNS:
        return None  # two frames of one question: 方法 / 办法, 习惯 / 毛病
    return x, y


def _swaps(a: PromptFeatures, b: PromptFeatures) -> list[tuple[str, str]]:
    """Where two prompts differ in one content word, that pair of words; where
    two Chinese prompts differ in one character, the pairs of words and of
    two-character spans that hold it. Empty otherwise. The prompts ask the same
    only if some pair names the same thing."""
    word = _substitution(a.words, b.words)
    if word is not None:
        return [word]
    if a.language == b.language == "zh":
        return _character_swap(a.words, b.words)
    return []


def _character_swap(a: tuple[str, ...], b: tuple[str, ...]) -> list[tuple[str, str]]:
    """The words, and the two-character spans, holding the one character two
    Chinese prompts differ in, where jieba cut the words around it differently
    (X / Y against XZ, ABCD against AB / CE).

    Content words between two function words are read as one run of characters;
    the prompts must have the same runs but one, and that one the same length
    with exactly one character changed. Single characters are not compared:
    Cilin relates them loosely (行 / 列).
    """
    runs_a, runs_b = _runs(a), _runs(b)
    if len(runs_a) != len(runs_b):
        return []
    changed = [(x, y) for x, y in zip(runs_a, runs_b, strict=True) if x != y]
    if len(changed) != 1:
        return []
    ((x, y),) = changed
    text_x, text_y = "".join(x), "".join(y)
    if x[0].startswith(FUNCTION_WORD) or y[0].startswith(FUNCTION_WORD):
        return []
    if len(text_x) != len(text_y):
        return []
    where = [i for i, (p, q) in enumerate(zip(text_x, text_y, strict=True)) if p != q]
    if len(where) != 1:
        return []
    i = where[0]
    spans = [(text_x[j : j + 2], text_y[j : j + 2]) for j in (i - 1, i) if 0 <= j < len(text_x) - 1]
    return [(_word_at(x, i), _word_at(y, i)), *spans]


def _opposed(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two prompts say opposite words of order, amount, state or place
    (``lexicon.OPPOSITES``) in the same place: the nearest content word on one
    side is the same ("eat eggs before / after surgery", "sleep more / less",
    "the fan on / off", 运动前 / 运动后).

    Said in different places, such words often come with other words that turn
    them round ("spend less" / "save more"), so those are not compared.
    """
    poles_a = [lexicon.OPPOSITES.get(w.lstrip(FUNCTION_WORD)) for w in a]
    poles_b = [lexicon.OPPOSITES.get(w.lstrip(FUNCTION_WORD)) for w in b]
    for i, x in enumerate(poles_a):
        if x is None:
            continue
        beside_a = [_content_word_beside(a, i, step) for step in (-1, 1)]
        for j, y in enumerate(poles_b):
            # Not where each says both: "before or after" in each.
            if y is None or y[0] != x[0] or y == x or (x in poles_b and y in poles_a):
                continue
            beside_b = [_content_word_beside(b, j, step) for step in (-1, 1)]
            if any(p is not None and p == q for p, q in zip(beside_a, beside_b, strict=True)):
                return True
    return False


def _antonymous(a: PromptFeatures, b: PromptFeatures, opposite: SameMeaning) -> bool:
    """Whether each prompt says a content word the other does not, and the two are
    antonyms (lose / gain, buy / sell).

    Not where either prompt has a negating word: one antonym negated says what
    the other says.
    """
    if _negating(a) or _negating(b):
        return False
    only_a = _content_words(a) - _content_words(b)
    only_b = _content_words(b) - _content_words(a)
    return any(opposite(x, y) for x in only_a for y in only_b)


def _negating(features: PromptFeatures) -> bool:
    """Whether a prompt has a word that negates or averts (not, never, avoid, 不, 没)."""
    return any(
        w.lstrip(FUNCTION_WORD) in lexicon.NEGATING_WORDS
        or w.lstrip(FUNCTION_WORD).startswith(lexicon.ZH_NEGATING_PREFIXES)
        for w in features.words
    )


def _content_words(features: PromptFeatures) -> set[str]:
    return {w for w in features.words if not w.startswith(FUNCTION_WORD)}


def _content_word_beside(words: tuple[str, ...], i: int, step: int) -> str | None:
    """The nearest content word before (``step`` -1) or after (1) word ``i``."""
    i += step
    while 0 <= i < len(words):
        if not words[i].startswith(FUNCTION_WORD):
            return words[i]
        i += step
    return None


def _transposed(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two prompts say the same words but two phrases, apart from each
    other, trade places: "does X follow Y" / "does Y follow X", 从X到Y / 从Y到X.

    The words before, between and after the two phrases are the same in both, so
    each phrase now fills the other's role. Neighbours that trade places
    (一月北京 / 北京一月) only reorder a phrase, and two items of a list joined by
    "and", "or", 和 or 还是 name the same things in another order; neither is counted.
    """
    # Compared by stem: the tagger may lemmatise one word two ways ("shorter" /
    # "short") in two nearly equal sentences.
    a, b = tuple(map(_stem_key, a)), tuple(map(_stem_key, b))
    if len(a) != len(b) or a == b:
        return False
    start = 0
    while a[start] == b[start]:
        start += 1
    end = len(a)
    while a[end - 1] == b[end - 1]:
        end -= 1
    mid_a, mid_b = a[start:end], b[start:end]
    n = len(mid_a)
    for lx in range(1, n - 1):
        for ly in range(1, n - lx):
            x, between, y = mid_a[:lx], mid_a[lx : n - ly], mid_a[n - ly :]
            if x != y and mid_b == y + between + x and _names_something(x) and _names_something(y):
                return not _list_joint(between)
    return False


def _reversed_flow(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether one prompt's source is the other's target and the other way round,
    the words compared by stem (the tagger lemmatises "euros" two ways)."""
    return (
        len(a) == len(b) == 2
        and _same_word(a[0], b[1])
        and _same_word(a[1], b[0])
        and not _same_word(a[0], a[1])
    )


def _same_word(x: str, y: str) -> bool:
    """Whether two words of a flow name the same thing: by stem in English; in
    Chinese, where one starts the other (X / X<verb>, a phrase jieba keeps whole)."""
    if x == y:
        return True
    if x.isascii() and y.isascii():
        return _same_stem(x, y)
    shorter, longer = sorted((x, y), key=len)
    return len(shorter) > 1 and not shorter.isascii() and longer.startswith(shorter)


def _stem_key(word: str) -> str:
    """A content word cut to its first five letters (Latin script), else the word."""
    return word[:5] if word.isascii() and not word.startswith(FUNCTION_WORD) else word


def _names_something(phrase: tuple[str, ...]) -> bool:
    """Whether a phrase holds a content word, a name with a digit (PS4, B12), or a
    word for a person, which stop-word lists hold (人, 我: 鹦鹉传染给人 / 人传染给鹦鹉)."""
    return any(
        not w.startswith(FUNCTION_WORD)
        or (any(c.isdigit() for c in w) and any(c.isalpha() for c in w))
        or w.lstrip(FUNCTION_WORD) in lexicon.PERSON_WORDS
        for w in phrase
    )


def _list_joint(between: tuple[str, ...]) -> bool:
    """Whether the words between two phrases only join them as a list ("fly or
    drive", 猫和狗)."""
    return any(w.lstrip(FUNCTION_WORD) in lexicon.SYMMETRIC_CONNECTORS for w in between) and all(
        w.startswith(FUNCTION_WORD) or w in lexicon.SYMMETRIC_CONNECTORS for w in between
    )


def _runs(words: tuple[str, ...]) -> list[list[str]]:
    """Function words alone, content words between them together."""
    runs: list[list[str]] = []
    for word in words:
        if word.startswith(FUNCTION_WORD) or not runs or runs[-1][0].startswith(FUNCTION_WORD):
            runs.append([word])
        else:
            runs[-1].append(word)
    return runs


def _word_at(words: list[str], offset: int) -> str:
    """The word of ``words`` that holds character ``offset`` of their joined text."""
    for word in words:
        if offset < len(word):
            return word
        offset -= len(word)
    raise IndexError(offset)


def _ordinal(features: PromptFeatures) -> bool:
    """Whether a prompt says an ordinal (first, 2nd, 第一): its number is a place in an
    order, which another prompt may give by other words (the last, 最后)."""
    return any(
        w in lexicon.EN_ORDINAL_WORDS
        or lexicon.EN_ORDINAL_SUFFIX.match(w) is not None
        or w.startswith("第")
        for w in (w.lstrip(FUNCTION_WORD) for w in features.words)
    )


def _quantities_differ(a: frozenset[str], b: frozenset[str], *, implied: bool = True) -> bool:
    """Whether two prompts' numbers, dates and times disagree.

    A vague time (a part of the day, a season, "how many hours", "the first time")
    that only one prompt names usually sets the scene of the same question; any
    number, date or day, and two vague
    times of one kind that differ (morning / evening, summer / winter), still count.
    So, given ``implied``, does a one or two said where the other prompt says no
    number at all: other words say as much ("two X" / "X together", "a one-day X"
    / "a day X"). Not an ordinal: "the first X" / "the last X".
    """
    if a == b:
        return False
    a_exact = {q for q in a if not q.startswith(lexicon.VAGUE_TIME_TAGS)}
    b_exact = {q for q in b if not q.startswith(lexicon.VAGUE_TIME_TAGS)}
    one_sided = not a_exact or not b_exact
    if a_exact != b_exact and not (
        implied and one_sided and a_exact | b_exact <= lexicon.IMPLIED_COUNTS
    ):
        return True
    a_vague, b_vague = _by_kind(a - a_exact), _by_kind(b - b_exact)
    return any(a_vague[kind] != b_vague[kind] for kind in a_vague.keys() & b_vague.keys())


def _by_kind(tags: Iterable[str]) -> dict[str, set[str]]:
    """Tags grouped by kind: ``{"part:": {"part:night"}, "season:": {...}}``."""
    kinds: dict[str, set[str]] = {}
    for tag in tags:
        kinds.setdefault(tag[: tag.index(":") + 1], set()).add(tag)
    return kinds


def _same_stem(x: str, y: str) -> bool:
    """Whether two English words share a stem: a common prefix of five letters, or
    the shorter word (four letters or more) starting the longer, or starting it but
    for a silent e the suffix drops (skate / skating, bake / baker)."""
    shorter, longer = sorted((x, y), key=len)
    if len(shorter) >= 4 and longer.startswith(shorter):
        return True
    if (
        len(shorter) >= 4
        and shorter.endswith("e")
        and longer.startswith(shorter[:-1])
        and longer[len(shorter) - 1 :] in lexicon.EN_SILENT_E_SUFFIXES
    ):
        return True
    return len(shorter) >= 5 and x[:5] == y[:5]
