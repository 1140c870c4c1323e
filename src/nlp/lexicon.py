"""Word lists the preprocessor uses: number words, dates, negators, direction markers.

Kept apart from the logic so a language can be added by adding its lists.
"""

from __future__ import annotations

import re

__all__ = [
    "ASPECTS",
    "ENTITY_LABELS",
    "EN_AGENT_SUFFIXES",
    "EN_DAYTIME_BEFORE",
    "EN_EVERY",
    "EN_INFLECTIONS",
    "EN_NUMBER_WORDS",
    "EN_OCCASION_WORDS",
    "EN_ORDINAL_SUFFIX",
    "EN_ORDINAL_WORDS",
    "EN_SILENT_E_SUFFIXES",
    "EN_TARGET_MARKERS",
    "EN_TEMPORAL",
    "EN_TIMES",
    "EN_TIME_PREPOSITIONS",
    "EVERY_TAG",
    "FIRST_OCCASION_TAG",
    "FRAME_NOUNS",
    "IMPLIED_COUNTS",
    "NEGATING_WORDS",
    "NUMBER_LABELS",
    "OCCASION_TAG",
    "OPPOSITES",
    "PERSON_WORDS",
    "QUANTITY_LABELS",
    "STEP_ORDER_TAG",
    "SYMMETRIC_CONNECTORS",
    "VAGUE_TIME_TAGS",
    "ZH_AGENT_SUFFIXES",
    "ZH_ALIKE",
    "ZH_DATE_UNITS",
    "ZH_DIRECTION_IN_WORDS",
    "ZH_ENTITY_FLAGS",
    "ZH_FIRST_MEASURES",
    "ZH_FIRST_OCCASIONS",
    "ZH_FLOW_SKIP",
    "ZH_GENERIC_PLACES",
    "ZH_LOCATIVES",
    "ZH_MODALS",
    "ZH_NEGATING_PREFIXES",
    "ZH_NEGATORS",
    "ZH_NONE_AFTER_ZERO",
    "ZH_NOT_TARGET_MARKERS",
    "ZH_NUMERAL",
    "ZH_OPEN_CLASS_FLAGS",
    "ZH_RARE_NAME_COUNT",
    "ZH_TARGET_MARKERS",
    "ZH_TEMPORAL",
    "canonical_number",
    "parse_zh_numeral",
]

# spaCy OntoNotes labels naming things (compared as entities) and amounts (as quantities).
ENTITY_LABELS = frozenset(
    {"PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
     "LANGUAGE"}
)  # fmt: skip
QUANTITY_LABELS = frozenset({"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})
# Entity labels whose words are read as numbers.
NUMBER_LABELS = frozenset({"CARDINAL", "ORDINAL", "MONEY", "PERCENT"})
# Words saying how many times, which the tagger does not read as numbers ("once" is
# left out: it is as often "as soon as").
EN_TIMES = frozenset({"twice", "thrice"})

# Counts a prompt may say where another says none and asks the same: "a" thing is
# one, "both" or "together" two.
IMPLIED_COUNTS = frozenset({"1", "2"})

# Suffixes before which a word drops its final e (skate -> skating, bake -> baker).
EN_SILENT_E_SUFFIXES = frozenset(
    {"ing", "ings", "ed", "er", "ers", "able", "ation", "ations", "y", "ist", "ists"}
)

# Prepositions that place an action in time ("after cooking", "before diving").
EN_TIME_PREPOSITIONS = frozenset({"after", "before", "while", "during", "since", "until", "when"})

# An ordinal written in digits (1st, 22nd), its number in group 1.
EN_ORDINAL_SUFFIX = re.compile(r"^(\d+)(?:st|nd|rd|th)$")

# Ordinals written out, first to tenth, in order.
EN_ORDINAL_WORDS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh",
                    "eighth", "ninth", "tenth")  # fmt: skip

EN_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000,
    **{word: n for n, word in enumerate(EN_ORDINAL_WORDS, start=1)},
    "half": 0.5, "twice": 2, "thrice": 3, "double": 2, "triple": 3, "dozen": 12,
}  # fmt: skip

# Time words that change what is asked: each maps to a canonical tag.
EN_TEMPORAL = {
    **{m: f"month:{i}" for i, m in enumerate(
        ["january", "february", "march", "april", "may", "june", "july", "august",
         "september", "october", "november", "december"], start=1)},
    **{m: f"month:{i}" for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
        start=1) if m},
    **{d: f"weekday:{i}" for i, d in enumerate(
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])},
    "today": "day:0", "tonight": "day:0", "tomorrow": "day:+1", "yesterday": "day:-1",
    "morning": "part:morning", "afternoon": "part:afternoon", "evening": "part:evening",
    "night": "part:night", "noon": "part:noon", "midnight": "part:night",
    "daytime": "part:day", "overnight": "part:night",
    "week": "span:week", "month": "span:month", "year": "span:year", "weekend": "span:weekend",
    "day": "span:day", "hour": "span:hour", "minute": "span:minute",
    "spring": "season:spring", "summer": "season:summer", "autumn": "season:autumn",
    "fall": "season:autumn", "winter": "season:winter",
    "last": "rel:-1", "next": "rel:+1", "previous": "rel:-1", "past": "rel:-1",
}  # fmt: skip
# "during the day", "in the day": the part of the day, not a span of one.
EN_DAYTIME_BEFORE = (("during", "the"), ("in", "the"), ("through", "the"))

# An ordinal used as an adverb ("what should I do first") orders steps.
STEP_ORDER_TAG = "step:"

# Tags of times and orders that name no particular moment or thing (a part of the
# day, a season, "how many days", "first"): a question that adds one usually asks
# the same thing in a setting.
# "Each day", "every week": a frequency, tagged apart from a span asked for ("how
# many days"). Said on one side only it sets the scene ("how long should I <do X>
# each day" / "how many minutes should I <do X>"); two that differ still count.
EN_EVERY = frozenset({"each", "every", "per"})
EVERY_TAG = "every:"
# "The first time", "first use", 第一次, 初次: doing a thing new, which another prompt
# may say by "new" or say nothing of; a second time is a number.
OCCASION_TAG = "occasion:"
FIRST_OCCASION_TAG = f"{OCCASION_TAG}1"
EN_OCCASION_WORDS = frozenset({"time", "use"})
ZH_FIRST_OCCASIONS = frozenset(
    {"第一次", "第一回", "首次", "首回", "初次", "头一次", "头一回", "头回"}
)
VAGUE_TIME_TAGS = ("part:", "span:", "season:", EVERY_TAG, STEP_ORDER_TAG, OCCASION_TAG)

# Words for people that stop-word lists hold; in a phrase that trades places with
# another they still name someone ("can a parrot give a cold to people").
PERSON_WORDS = frozenset(
    {"人", "别人", "他人", "我", "你", "他", "她", "我们", "你们", "他们",
     "people", "person", "someone", "i", "me", "you", "he", "she", "we", "they", "us", "them"}
)  # fmt: skip

# Below this count in jieba's dictionary a word tagged as a name is seldom one
# (飞多高: 3, 天一亮: 10, 黄牙: 26; 王菲: 44, 巴厘岛: 48, 三亚: 179).
ZH_RARE_NAME_COUNT = 30

# jieba part-of-speech flags of names: people, places, organisations, other proper
# nouns, and Latin-script words (product and technology names in Chinese text).
ZH_ENTITY_FLAGS = frozenset({"nr", "nrt", "nrfg", "ns", "nt", "nz", "eng"})

# jieba flags of open word classes (verbs, adjectives, adverbs, morphemes, idioms, time
# words...) a noun can be mis-tagged as (月季, a rose, tagged as a time for its 季);
# pronouns, numerals, particles are never taken for nouns.
ZH_OPEN_CLASS_FLAGS = ("v", "a", "b", "d", "g", "i", "j", "l", "t", "z")

# Nouns that frame a question rather than name its subject ("the best *way* to",
# "the *difference* between", 什么*原因*): the subject guard ignores them.
FRAME_NOUNS = frozenset(
    {"way", "thing", "kind", "type", "sort", "lot", "difference", "meaning", "definition",
     "reason", "example", "method", "step", "tip", "idea", "advice", "question", "answer",
     "fact", "information", "detail", "process", "option", "suggestion", "recommendation",
     "people", "person", "someone", "something", "anything", "time", "amount", "number",
     "part", "name", "term", "word", "explanation", "guide", "help", "list", "overview",
     "方法", "办法", "方式", "原因", "情况", "问题", "意思", "东西", "时候", "区别", "步骤",
     "技巧", "建议", "过程", "原理", "定义", "例子", "含义", "解释", "人", "人们", "时间",
     "数量", "名字", "名称", "介绍", "信息", "答案", "做法", "时", "多长时间", "多少时间",
     "habit", "习惯", "毛病",
     # The knack of doing it: "what's the trick to", "the secret of", 有什么诀窍.
     "trick", "secret", "technique", "knack", "诀窍", "窍门", "要领",
     # What a thing is for or what governs it: "the role of an X" asks what an X does.
     "role", "function", "purpose", "rule", "作用", "用途", "功能", "职责", "规则", "内容"}
)  # fmt: skip

# Words joining the items of a list, whose order does not matter ("cats and dogs", 猫和狗).
SYMMETRIC_CONNECTORS = frozenset(
    {"and", "or", "versus", "vs", "vs.", "nor", "和", "与", "或", "或者", "还是", "跟", "同", "及",
     "以及", "、"}
)  # fmt: skip

# Words of order in time, amount, state, side or place, with the pole each names: two
# prompts that say opposite ones in the same place ask opposite things ("eat before
# / after surgery", "sleep more / less", "the fan on / off", 运动前 / 运动后, 睡得多 /
# 睡得少). Most are stop words, which the substitution guard does not compare.
_POLES: dict[str, dict[str, tuple[str, ...]]] = {
    "time": {"before": ("before", "prior", "前", "之前", "以前"),
             "after": ("after", "后", "之后", "以后"),
             "during": ("during", "时", "时候", "期间")},
    "amount": {"more": ("more", "most", "many", "多", "更多", "最多"),
               "less": ("less", "least", "fewer", "few", "少", "更少", "最少")},
    "state": {"on": ("on",), "off": ("off",), "empty": ("empty",), "full": ("full",),
              "together": ("together",), "alone": ("alone",)},
    "side": {"front": ("front",), "back": ("back",), "top": ("top",), "bottom": ("bottom",)},
    "place": {"above": ("above", "over"), "below": ("below", "under", "beneath"),
              "up": ("up",), "down": ("down",), "inside": ("inside",), "outside": ("outside",)},
    "hour": {"early": ("early", "earlier", "早", "提前"), "late": ("late", "later", "晚", "推迟")},
}  # fmt: skip
OPPOSITES = {
    word: (kind, pole)
    for kind, poles in _POLES.items()
    for pole, words in poles.items()
    for word in words
}

# Nouns naming the aspect of a topic a question asks about, grouped by what they ask:
# "the *symptoms* of X" and "the *signs* of X" ask the same. A word covers any
# word of its group; two groups still differ (symptoms / causes).
ASPECTS = {
    word: aspect
    for aspect, words in {
        "symptom": ("symptom", "sign", "indication", "indicator", "warning sign",
                    "症状", "表现", "征兆", "迹象", "征象"),
        "benefit": ("benefit", "advantage", "pro", "upside", "好处", "益处", "优点", "优势"),
        "harm": ("harm", "risk", "danger", "downside", "disadvantage", "drawback", "con",
                 "side effect", "危害", "坏处", "害处", "弊端", "缺点", "风险", "副作用"),
        "effect": ("effect", "impact", "influence", "影响"),
        "cause": ("cause", "reason", "起因", "诱因", "成因", "原因"),
        "treatment": ("treatment", "remedy", "cure", "治疗", "疗法"),
        "cost": ("cost", "price", "价格", "价钱", "费用"),
        "difference": ("difference", "distinction", "区别", "差别", "差异", "不同", "不一样",
                       "不相同"),
        # Who asks, when it is someone new to the thing ("what <gear> should a beginner
        # buy" / "... someone new to <sport>"): WordNet and Cilin file these apart.
        "novice": ("beginner", "novice", "newbie", "newcomer", "新手", "初学者", "菜鸟", "生手",
                   "新人"),
    }.items()
    for word in words
}  # fmt: skip

# Endings of words for someone who does a thing (surfer, sailor, cyclist; 养蜂人,
# 初学者, 驾驶员, 吉他手, 收藏家, 摄影师).
EN_AGENT_SUFFIXES = ("er", "or", "ist")
# Endings that inflect an English verb or noun.
EN_INFLECTIONS = frozenset({"", "s", "es", "ed", "d", "ing"})
ZH_AGENT_SUFFIXES = frozenset("人者员手家师")

# Common nouns jieba tags as place names (ns); they name no particular place.
ZH_GENERIC_PLACES = frozenset(
    {"城市", "地区", "地方", "国内", "国外", "全国", "全球", "海外", "大海", "市区", "郊区",
     "农村", "城里", "乡下", "当地", "本地", "外地", "各地", "山区", "沿海"}
)  # fmt: skip

# Modal verbs jieba glues to the noun before them (猫能, 时会).
ZH_MODALS = frozenset("会能要该可想")

# Locative endings jieba keeps on a place word (手上, 锅里, 心中).
ZH_LOCATIVES = frozenset("上里中下内外边")

# Measure words after which 首 means "first" (首次 = 第一次, 首行 = 第一行); 首页
# (home page), 首都 and 首先 do not count.
ZH_FIRST_MEASURES = frozenset("次个位批届轮行列日天场期款部集季站")

# Units that make a number a date or time part.
ZH_DATE_UNITS = ("年", "月", "日", "号", "点", "时", "分", "岁")

# Words of likeness that 不 before them turns into "different" (不一样, 不相同).
ZH_ALIKE = frozenset({"一样", "相同"})
ZH_NEGATING_PREFIXES = ("不", "没", "未", "无", "非", "别", "勿", "莫")
# Chinese words that negate what follows them. A negated predicate in one word
# (不好, 无糖) starts with one of ZH_NEGATING_PREFIXES instead.
ZH_NEGATORS = frozenset(
    {"不", "没", "没有", "未", "别", "勿", "莫", "非", "无", "不是", "不要", "不会", "不能", "不想",
     "不用", "无法", "并非", "不可", "不可以", "不该", "不应该", "不必", "不需要", "没法",
     "从未", "从不", "绝不", "不再"}
)  # fmt: skip
# Words that negate, or ask for something not to happen: a prompt with one can say
# with an antonym what another says plainly, so the antonym check leaves it alone.
NEGATING_WORDS = ZH_NEGATORS | frozenset(
    {"not", "n't", "no", "never", "without", "cannot", "avoid", "prevent", "stop", "防止", "避免"}
)

# Direction markers that jieba keeps inside longer words (转换成, 翻译为...).
ZH_DIRECTION_IN_WORDS = ("成", "为", "到", "往", "至")
# Words before the target of a move ("to"): 从X到Y, 从X去Y.
ZH_TARGET_MARKERS = frozenset({"到", "去", "往", "至", "成", "兑换", "兑"})
# Words ending like a marker of a change's target (为, 到) that mark none: "because",
# "think", "as", "get", "feel", "meet", "come to think", "until".
ZH_NOT_TARGET_MARKERS = ("因为", "认为", "以为", "作为", "得到", "感到", "遇到", "想到", "直到")
# Words read past when looking for what a flow marker names (从我的手机: 手机).
ZH_FLOW_SKIP = frozenset({"我", "我的", "的", "你", "你的", "这个", "那个", "一个", "里", "上"})
# English prepositions before the target of a move or change.
EN_TARGET_MARKERS = frozenset({"to", "into", "onto", "toward", "towards"})

ZH_TEMPORAL = {
    "今天": "day:0", "今日": "day:0", "今晚": "day:0", "明天": "day:+1", "明日": "day:+1",
    "昨天": "day:-1", "昨日": "day:-1", "后天": "day:+2", "前天": "day:-2",
    "早上": "part:morning", "上午": "part:morning", "下午": "part:afternoon",
    "晚上": "part:night", "傍晚": "part:evening", "中午": "part:noon", "夜里": "part:night",
    "半夜": "part:night", "夜间": "part:night", "白天": "part:day", "白日": "part:day",
    "今年": "year:0", "明年": "year:+1", "去年": "year:-1", "本周": "week:0", "下周": "week:+1",
    "上周": "week:-1", "这周": "week:0", "本月": "month:0", "下个月": "month:+1",
    "上个月": "month:-1", "周末": "span:weekend",
    "春天": "season:spring", "春季": "season:spring", "夏天": "season:summer",
    "夏季": "season:summer", "秋天": "season:autumn", "秋季": "season:autumn",
    "冬天": "season:winter", "冬季": "season:winter",
    **{f"{p}{d}": f"weekday:{i}" for p in ("星期", "周", "礼拜")
       for i, d in enumerate("一二三四五六日")},
    **{f"{p}天": "weekday:6" for p in ("星期", "礼拜")},
}  # fmt: skip

_ZH_DIGITS = {"零": 0, "\u3007": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}  # fmt: skip
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
# Words after which 零 means "no" rather than 0: 零基础 (a beginner), 零经验.
ZH_NONE_AFTER_ZERO = frozenset({"基础", "经验", "门槛"})
ZH_NUMERAL = re.compile("[零\u3007一二两三四五六七八九十百千万亿]+")


def parse_zh_numeral(text: str) -> int | None:
    """The value of a Chinese numeral such as 三百二十五 or 十二, or None."""
    if not text or any(ch not in _ZH_DIGITS and ch not in _ZH_UNITS for ch in text):
        return None
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch]
            continue
        unit = _ZH_UNITS[ch]
        if unit >= 10_000:
            section = (section + (digit or 0)) * unit
            total += section
            section = 0
        else:
            section += (1 if digit is None else digit) * unit
        digit = None
    return total + section + (digit or 0)


def canonical_number(text: str) -> str | None:
    """A canonical string for a written number, or None."""
    text = text.lower().replace(",", "")
    ordinal = EN_ORDINAL_SUFFIX.match(text)
    if ordinal:
        text = ordinal.group(1)
    try:
        value = float(text)
    except ValueError:
        value = EN_NUMBER_WORDS.get(text)  # type: ignore[assignment]
        if value is None:
            return None
    return f"{value:g}"
