"""Chinese (and mixed Chinese/English) prompts read into :class:`PromptFeatures`.

Words and word classes come from jieba's part-of-speech segmenter (the segmenter
spaCy's ``zh`` language uses) and stop words from spaCy's Chinese defaults;
spaCy has no Chinese pipeline on PyPI. Names come from jieba's flags. Latin words
in mixed text stay whole and count as names. With a thesaurus, a word Cilin
files only under people, things or abstract things is a noun whatever jieba
tagged it, a common noun jieba tags as a name is compared as a noun, and the
object of a verb-object word jieba keeps whole is the noun compared.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from src.nlp import lexicon
from src.nlp.features import FUNCTION_WORD, FeatureDraft, PromptFeatures
from src.nlp.thesaurus import Thesaurus

__all__ = ["CJK", "ChineseReader"]

#: One Chinese character.
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _join_unlike(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """jieba's words with 不 joined to a word of likeness after it: 不一样 says
    "different", as 不同 does, and negates nothing."""
    joined: list[tuple[str, str]] = []
    for word, flag in pairs:
        if joined and joined[-1][0] == "不" and word in lexicon.ZH_ALIKE:
            joined[-1] = ("不" + word, "a")
        else:
            joined.append((word, flag))
    return joined


def _chinese_flow(words: list[str], is_verb: Callable[[str], bool]) -> tuple[str, ...]:
    """``(source, target)`` of a move or a change in segmented Chinese: the word after
    从 (or, without 从, after 把), or the word just before a lone 到 / 去 / 往 / 至 / 成
    (or before the verb there: X in "X <verb>成 Y"); and the word after that marker
    or after a word ending in one (换成, 传到)."""
    plain = [w.lstrip(FUNCTION_WORD) for w in words]

    def named_after(i: int) -> str | None:
        return next((w for w in plain[i + 1 :] if w not in lexicon.ZH_FLOW_SKIP), None)

    source = target = None
    # 把 marks what is moved, 从 where it comes from; with both, 从 names the source.
    start = "从" if "从" in plain else "把"
    for i, word in enumerate(plain):
        if word == start and source is None:
            source = named_after(i)
        elif target is None and (
            word in lexicon.ZH_TARGET_MARKERS
            # 换成, 传到; not a word ending in one that marks none (因为, 是因为, 认为).
            or (
                len(word) > 1
                and word.endswith(lexicon.ZH_DIRECTION_IN_WORDS)
                and not word.endswith(lexicon.ZH_NOT_TARGET_MARKERS)
            )
        ):
            target = named_after(i)
            if source is None and word in lexicon.ZH_TARGET_MARKERS and i > 0:
                j = i - 1 if i < 2 or not is_verb(words[i - 1]) else i - 2
                source = None if words[j].startswith(FUNCTION_WORD) else words[j]
    return (source, target) if source and target and source != target else ()


class ChineseReader:
    """Reads Chinese prompts with jieba.

    Args:
        zh: spaCy's blank ``zh`` language (for its stop words).
        posseg: ``jieba.posseg``, initialised.
        thesaurus: WordNet and Cilin, or None.
    """

    def __init__(self, zh: Any, posseg: Any, thesaurus: Thesaurus | None) -> None:
        self._zh = zh
        self._posseg = posseg
        self.thesaurus = thesaurus

    def read(self, text: str, language: str) -> PromptFeatures:
        """The features of ``text`` (``language`` is ``\"zh\"`` or ``\"mixed\"``)."""
        draft = FeatureDraft()
        stop_words = self._zh.Defaults.stop_words
        pairs = self._segments(text)
        for k, (raw, flag) in enumerate(pairs):
            word = raw.strip()
            if not word:
                continue
            if flag != "x":
                draft.words.append(FUNCTION_WORD + word if word in stop_words else word)
            if flag != "x" and word not in stop_words:
                # Content characters: Chinese words share characters where their
                # segmentation differs (光速 / 速度), so overlap is counted per character.
                if word.isascii():
                    draft.terms.add(word.lower())
                else:
                    draft.terms.update(ch for ch in word if CJK.match(ch))
            # A date part keeps its unit, so 3月4日 differs from 4月3日.
            if word in lexicon.ZH_DATE_UNITS and draft.attach_unit(word):
                continue
            tag = lexicon.ZH_TEMPORAL.get(word)
            if tag is not None:
                draft.quantity(tag)
                continue
            if (
                word == "零"
                and k + 1 < len(pairs)
                and pairs[k + 1][0].strip() in lexicon.ZH_NONE_AFTER_ZERO
            ):
                continue  # 零基础 is "a beginner", not the number 0
            found = self._zh_numbers(word, flag)
            if found:
                for value in found:
                    draft.quantity(value)
                continue
            if (split := self._modal_glued(word, flag)) is not None:
                # 猫能活多久 cut as 猫能 / 活: the noun is 猫 (时会 leaves 时, a frame noun).
                draft.anchors.append(split)
                continue
            if (
                flag == "s"
                and len(word) > 1
                and word[-1] in lexicon.ZH_LOCATIVES
                and self.thesaurus is not None
                and not self.thesaurus.is_chinese_place(word)  # 室内, 海外 name places
            ):
                # A place word made of a thing and "on / in" (手上, 锅里): the thing.
                place = word[:-1]
                if (self._dictionary_tag(place) or "").startswith("n"):
                    draft.anchors.append(place)
                    continue
            noun = None if word in stop_words else self._chinese_object(word, flag)
            if noun is not None:
                # A two-character word tagged as a noun is a compound naming a thing
                # of its own (a kind of X is not any X): keep it too. Longer ones are
                # phrases (a verb and its object), and verbs are verbs.
                whole = len(word) == 2 and not flag.startswith("v") and noun != word
                draft.anchors.extend((word, noun) if whole else (noun,))
                continue
            if (head := self._phrase_head(word, flag)) is not None:
                draft.anchors.append(head)  # a set phrase naming a kind of its head noun
                continue
            if (
                len(word) > 1
                and flag.startswith(("v", "a"))
                and self.thesaurus is not None
                and self.thesaurus.is_chinese_condition(word)
            ):
                draft.anchors.append(word)  # an illness or bodily state asked about: 感冒, 失眠
                continue
            if (
                flag in lexicon.ZH_ENTITY_FLAGS
                and self.thesaurus is not None
                and self.thesaurus.is_chinese_non_noun(word)
            ):
                continue  # jieba's name tag on an action or quality (卡住, 拖拉)
            is_name = (
                flag in lexicon.ZH_ENTITY_FLAGS
                and (len(word) > 1 or flag == "eng")
                and word not in lexicon.ZH_GENERIC_PLACES
                and not (self.thesaurus is not None and self.thesaurus.is_chinese_common_noun(word))
                and not self._uncertain_name(word, flag)
            )
            if is_name:
                draft.entity(word.lower())
            elif word not in stop_words and self._chinese_noun(
                word, flag, pairs[k - 1][1] if k > 0 else ""
            ):
                draft.anchors.append(word)
        draft.flow = _chinese_flow(
            draft.words, lambda w: (self._dictionary_tag(w) or "").startswith("v")
        )
        return draft.build(text, language)

    def _chinese_noun(self, word: str, flag: str, previous_flag: str) -> bool:
        """Whether a word that is no name, number, time or verb-object word names a
        thing to compare as a subject: by jieba's noun tag, unless it is a target
        marker (成), an action Cilin files so (初学, "begin to learn"), or a character
        acting after an adverb (刚学, "just began learning"); by jieba's place tag on a
        thing or a space of its own (场地, 墙壁; not a place made with "on / in",
        手上, 室内: handled before); or by Cilin where jieba's tag is an open class."""
        if word in lexicon.ZH_TARGET_MARKERS:
            return False
        thesaurus = self.thesaurus
        if flag.startswith("n"):
            if thesaurus is None:
                return True
            acting = thesaurus.is_chinese_action(word) or (
                len(word) == 1 and previous_flag == "d" and thesaurus.may_be_chinese_verb(word)
            )
            if not acting:
                return True
        if thesaurus is None:
            return False
        if flag == "s":
            return word[-1] not in lexicon.ZH_LOCATIVES and thesaurus.is_chinese_thing_name(word)
        return flag.startswith(lexicon.ZH_OPEN_CLASS_FLAGS) and thesaurus.is_chinese_noun(word)

    def _segments(self, text: str) -> list[tuple[str, str]]:
        """jieba's words and tags, with words its HMM glued across a function word,
        a numeral or a verb's target marker cut apart.

        Where text runs outside its dictionary, jieba's HMM makes up words, and
        these may swallow a negator, a preposition, a particle or a number with
        the characters beside it, hiding a negation, a noun or a number. Such a
        word is cut again without the HMM at those words, and the runs between
        them are cut as text of their own.
        """
        pairs: list[tuple[str, str]] = []
        for piece in self._posseg.cut(text):
            word, flag = piece.word, piece.flag
            if split := self._name_with_marker(word, flag, pairs[-1][1] if pairs else ""):
                # 美元兑 and 成德文, rare "names" in jieba's dictionary, are 美元 / 兑
                # ("to") and 成 ("into") / 德文 where a verb comes before.
                pairs.extend(split)
                continue
            if len(word) < 2 or self._dictionary_tag(word) is not None or not CJK.search(word):
                pairs.append((word, flag))
                continue
            if word[0] in lexicon.ZH_TARGET_MARKERS and pairs and pairs[-1][1].startswith("v"):
                # A verb's "into / to" glued to what follows it: <verb> / 成X is
                # <verb> / 成 / X.
                pairs.append((word[0], self._dictionary_tag(word[0]) or "v"))
                pairs.extend((p.word, p.flag) for p in self._posseg.cut(word[1:]))
                continue
            parts = [(p.word, p.flag) for p in self._posseg.cut(word, HMM=False)]
            if not any(self._splits_glued(w, f) for w, f in parts):
                pairs.append((word, flag))
                continue
            for splits, group in itertools.groupby(parts, lambda p: self._splits_glued(*p)):
                if splits:
                    pairs.extend(group)
                else:
                    run = "".join(w for w, _ in group)
                    pairs.extend((p.word, p.flag) for p in self._posseg.cut(run))
        return _join_unlike(pairs)

    def _name_with_marker(
        self, word: str, flag: str, previous_flag: str
    ) -> list[tuple[str, str]] | None:
        """A word and a target marker (兑, 到, 成) that jieba's dictionary lists glued
        together as a rare name: the marker last (美元兑), or first after a verb
        (翻译 / 成德文). None for any other word."""
        if (
            flag not in lexicon.ZH_ENTITY_FLAGS
            or len(word) < 3
            or self._dictionary_count(word) >= lexicon.ZH_RARE_NAME_COUNT
        ):
            return None
        if word[-1] in lexicon.ZH_TARGET_MARKERS and (tag := self._dictionary_tag(word[:-1])):
            return [(word[:-1], tag), (word[-1], "v")]
        if (
            word[0] in lexicon.ZH_TARGET_MARKERS
            and previous_flag.startswith("v")
            and (tag := self._dictionary_tag(word[1:]))
        ):
            return [(word[0], "v"), (word[1:], tag)]
        return None

    @classmethod
    def _splits_glued(cls, word: str, flag: str) -> bool:
        """Whether a word cuts apart a word the HMM made up: a function word, 时
        ("when": 跑步时 / 侧腹部, not 时侧) or a numeral (三, 两百; a lone 一 is as
        often "a" and "whole")."""
        numeral = flag == "m" and word != "一" and lexicon.ZH_NUMERAL.fullmatch(word) is not None
        return numeral or word == "时" or cls._function_word(word, flag)

    @staticmethod
    def _function_word(word: str, flag: str) -> bool:
        """A negator, modal verb, preposition, aspect particle, conjunction or
        one-character adverb (不, 能, 对, 了, 和, 才), by jieba's dictionary tag.
        地 and 得 are left out: as often as not they are the ground and "get"."""
        return (
            word in lexicon.ZH_NEGATORS
            or word in lexicon.ZH_MODALS
            or flag.startswith(("p", "c"))
            or (flag.startswith("u") and word not in ("地", "得"))
            or (flag == "d" and len(word) == 1)
        )

    def _modal_glued(self, word: str, flag: str) -> str | None:
        """The noun of a word jieba glued to a following modal verb (猫能 -> 猫,
        时会 -> 时), or None. Only words Cilin does not list: 机会 and 功能 are words."""
        if (
            self.thesaurus is None
            or len(word) < 2
            or not flag.startswith("n")
            or word[-1] not in lexicon.ZH_MODALS
            or self.thesaurus.lists_chinese_word(word)
        ):
            return None
        rest = word[:-1]
        return rest if (self._dictionary_tag(rest) or "").startswith("n") else None

    def _uncertain_name(self, word: str, flag: str) -> bool:
        """Whether jieba's name tag on ``word`` is too unsure to compare it as a name.

        jieba's "other proper noun" tag (``nz``) covers brands and common words alike
        in its dictionary (淘宝, 新手机, 卡纸), and a name its HMM makes up from
        characters outside the dictionary is often none (a verb glued to the
        particle after it).
        So is a name its dictionary counts as rare: it lists many words seen a few
        times in its corpus as names that are none (飞多高, 天一亮, 长牙, 双肩包,
        马克杯), while names in use are counted far more often (巴厘岛, 王菲, 三亚).
        Such a word is compared as a subject noun instead: a swap still counts, a
        prompt that leaves it out does not.
        """
        if flag == "eng":
            return False
        if flag == "nz" or self._dictionary_tag(word) is None:
            return True
        return self._dictionary_count(word) < lexicon.ZH_RARE_NAME_COUNT

    def _dictionary_count(self, word: str) -> int:
        """How often jieba's dictionary counts ``word`` in its corpus (0 if unlisted)."""
        count: int | None = self._posseg.dt.tokenizer.FREQ.get(word)
        return count or 0

    def _dictionary_tag(self, word: str) -> str | None:
        """jieba's dictionary tag for ``word`` on its own, or None where the
        dictionary lacks it."""
        tag: str | None = self._posseg.dt.word_tag_tab.get(word)
        return tag

    def _chinese_object(self, word: str, flag: str) -> str | None:
        """The thing a verb-object or subject-state word is about, or None: 喝酒 -> 酒,
        弹钢琴 -> 钢琴, 腰疼 -> 腰.

        jieba's dictionary keeps many such phrases as one word, tagged as verbs
        (喝酒), adjectives, nouns, idioms (剪头发) or even names (弹钢琴, 喝咖啡,
        多喝水). Where Cilin lists one part as a thing and the other as an action or
        state, the thing is compared as the subject and the rest, as in English, as
        a content word only.
        A word Cilin lists whole stays whole: a dish (烤鸭), a sport (滑冰), a
        condition (头疼); so does one whose parts no longer say what it means, where
        Cilin lists a synonym sharing none of its characters (出门 / 外出 / 去往,
        吃饭 / 用餐, 搬家 / 迁居; not 喝酒 / 饮酒 / 喝): it names no thing, except
        weather, which is the word itself (打雷 / 霹雳).
        """
        thesaurus = self.thesaurus
        if thesaurus is None or len(word) < 2:
            return None
        noun = self._object_part(word, flag)
        if noun is not None and thesaurus.is_chinese_idiom(word):
            # Weather is asked about as a thing, as in "<weather> when <event>".
            return word if thesaurus.is_chinese_natural_phenomenon(word) else None
        return noun

    def _object_part(self, word: str, flag: str) -> str | None:
        """The part of a word naming a thing, next to a part naming an action or state."""
        assert self.thesaurus is not None
        listed = self.thesaurus.lists_chinese_word(word)
        if listed and self.thesaurus.is_chinese_condition(word):
            return None  # a condition is asked about whole: 晕船 is not a 船
        if flag.startswith(("v", "a")) and not listed:
            for cut in (1, 2):
                noun, state = word[:cut], word[cut:]
                if self._chinese_thing(noun) and self._chinese_predicate(state):
                    return noun
        if (flag.startswith(("v", "n", "l", "i")) or flag in lexicon.ZH_ENTITY_FLAGS) and not (
            listed and not flag.startswith("v")
        ):
            for cut in (1, 2):
                before, noun = word[:cut], word[cut:]
                # The verb may end a longer start: 多喝水.
                if self._chinese_thing(noun) and (
                    self._chinese_predicate(before, verbs_only=True)
                    or self._chinese_predicate(before[-1], verbs_only=True)
                ):
                    # The longest thing it ends in: 下围棋 is about 围棋, not any 棋.
                    return word[1:] if cut == 2 and self._chinese_thing(word[1:]) else noun
        return None

    def _phrase_head(self, word: str, flag: str) -> str | None:
        """The noun a set phrase of three or more characters ends in, where jieba
        files the phrase as a whole (flag ``l`` or ``i``) and Cilin does not list it:
        "<modifier><noun>" -> "<noun>". As in English, the kind of thing is
        compared, its modifier only as a content word."""
        if self.thesaurus is None or len(word) < 3 or flag not in ("l", "i"):
            return None
        if self.thesaurus.lists_chinese_word(word):
            return None
        head, modifier = word[-2:], word[:-2]
        if modifier in self._zh.Defaults.stop_words:
            return None  # a question word before a noun-like ending asks, it names no kind
        # jieba's tags on such heads are loose (often vn); Cilin decides.
        return head if self.thesaurus.is_chinese_noun(head) else None

    def _chinese_thing(self, word: str) -> bool:
        """A noun by jieba's tag that Cilin files only among people and things, or a
        word of two characters or more Cilin files so whatever jieba's tag (围棋, the
        game, is a verb in jieba's dictionary)."""
        if not word or self.thesaurus is None:
            return False
        if len(word) > 1 and self.thesaurus.is_chinese_noun(word):
            return True
        return (self._dictionary_tag(word) or "").startswith("n") and (
            len(word) == 1 and self.thesaurus.is_chinese_mostly_noun(word)
        )

    def _chinese_predicate(self, word: str, *, verbs_only: bool = False) -> bool:
        """A verb (or, unless ``verbs_only``, an adjective) by jieba's tag or, where
        jieba tags it otherwise (掉, 干燥), by Cilin."""
        if not word:
            return False
        tag = self._dictionary_tag(word) or ""
        if tag.startswith("v") or (not verbs_only and tag.startswith("a")):
            return True
        if self.thesaurus is None:
            return False
        return self.thesaurus.is_chinese_verb(word) or (
            not verbs_only and self.thesaurus.is_chinese_quality(word)
        )

    @staticmethod
    def _zh_numbers(word: str, flag: str) -> list[str]:
        """Numbers in one segmented word: Arabic digits anywhere, Chinese numerals in
        numeral words (flag ``m``) and months, except a lone 一 which works as an
        article; 第一 (first) is the number 1, and 第一次, 首次 and 初次 (the first
        time) a first occasion (``lexicon.FIRST_OCCASION_TAG``)."""
        if word in lexicon.ZH_FIRST_OCCASIONS:
            return [lexicon.FIRST_OCCASION_TAG]
        found = [lexicon.canonical_number(m) for m in _NUMBER.findall(word)]
        base = word.removesuffix("份")  # 七月份 -> 七月
        if (
            flag.startswith("m")
            and base[:1] == "首"
            and set(base[1:2]) <= lexicon.ZH_FIRST_MEASURES
        ):
            return ["1"]  # 首次 is 第一次, 首行 第一行 (首 alone, too, where jieba cuts it off)
        # A month, whatever jieba tags it (七月份: nz); 一月 is January, not "a".
        month = base.endswith("月")
        if flag.startswith("m") or flag in ("t", "q") or month:
            for match in lexicon.ZH_NUMERAL.finditer(base):
                if match.group() == "一" and not month and not base[: match.start()].endswith("第"):
                    continue
                value = lexicon.parse_zh_numeral(match.group())
                if value is not None:
                    found.append(f"{value:g}")
        for unit in lexicon.ZH_DATE_UNITS:
            if base.endswith(unit) and found and found[-1] is not None:
                found[-1] = f"{found[-1]}{unit}"
                break
        return [f for f in found if f is not None]
