"""The spaCy preprocessor and the content guards, on real pipelines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from src.nlp import (
    GuardSettings,
    PromptPreprocessor,
    detect_language,
    disagreement,
)
from src.nlp.lexicon import parse_zh_numeral


@pytest.fixture(scope="module")
async def nlp() -> AsyncIterator[PromptPreprocessor]:
    preprocessor = PromptPreprocessor()
    await preprocessor.start()
    yield preprocessor


async def features(nlp: PromptPreprocessor, text: str):
    (result,) = await nlp.process([text])
    return result


async def verdict(nlp: PromptPreprocessor, a: str, b: str) -> str | None:
    """The guards' verdict on two prompts, every guard on, with the thesaurus."""
    fa, fb = await nlp.process([a, b])
    return disagreement(fa, fb, GuardSettings(), nlp.thesaurus.same, nlp.thesaurus.opposite)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How do rainbows form?", "en"),
        ("彩虹是怎么形成的？", "zh"),
        ("如何学习Python编程？", "zh"),
        ("How do I say 谢谢 politely?", "en"),
        ("Docker 和 Kubernetes 有什么区别", "mixed"),
        ("Как дела?", "other"),
        ("12345", "other"),
    ],
)
def test_language_by_script(text, language) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("三", 3), ("十二", 12), ("二十", 20), ("三百零五", 305), ("两千", 2000), ("一万五千", 15000)],
)
def test_chinese_numerals(numeral, value) -> None:
    assert parse_zh_numeral(numeral) == value


def test_not_a_numeral() -> None:
    assert parse_zh_numeral("天气") is None


async def test_english_features(nlp) -> None:
    f = await features(nlp, "Can you not book two flights from Madrid to Lisbon on Friday?")
    assert f.language == "en"
    assert {"madrid", "lisbon"} <= f.entities
    assert {"2", "weekday:4"} <= f.quantities
    assert f.flow == ("madrid", "lisbon")
    assert f.anchors.index("madrid") < f.anchors.index("lisbon")


async def test_chinese_features(nlp) -> None:
    f = await features(nlp, "下周三从成都到重庆不要买三张票")
    assert f.language == "zh"
    assert {"成都", "重庆"} <= f.entities
    assert "3" in f.quantities
    assert f.flow == ("成都", "重庆")


async def test_number_words_and_digits_agree(nlp) -> None:
    a = await features(nlp, "Name seven wonders of the ancient world.")
    b = await features(nlp, "Name 7 wonders of the ancient world.")
    assert a.quantities == b.quantities == frozenset({"7"})


GUARDED = [
    ("entities", "What is the national dish of Peru?", "What is the national dish of Chile?"),
    ("quantities", "Plan a workout of 20 minutes.", "Plan a workout of 45 minutes."),
    ("quantities", "明天杭州会下雨吗？", "后天杭州会下雨吗？"),
    ("direction", "Is a cheetah faster than a lion?", "Is a lion faster than a cheetah?"),
    ("direction", "从南京到苏州坐高铁要多久？", "从苏州到南京坐高铁要多久？"),
    ("subject", "How often should I water a cactus?", "How often should I water an orchid?"),
    ("subject", "橄榄油的保质期是多久？", "酱油的保质期是多久？"),
    ("substitution", "How do I learn to swim?", "How do I learn to skate?"),
    ("substitution", "怎么学游泳？", "怎么学滑冰？"),
    ("language", "What is the capital of Peru?", "秘鲁的首都是哪里？"),
    ("language without a pipeline", "Какая столица Перу?", "Какая столица Перу?"),
]  # fmt: skip


@pytest.mark.parametrize(("guard", "a", "b"), GUARDED)
async def test_each_guard_rejects_its_kind(nlp, guard, a, b) -> None:
    fa, fb = await nlp.process([a, b])
    assert disagreement(fa, fb, GuardSettings()) == guard


@pytest.mark.parametrize(("guard", "a", "b"), GUARDED[:-1])
async def test_a_disabled_guard_lets_its_kind_through(nlp, guard, a, b) -> None:
    fa, fb = await nlp.process([a, b])
    settings = GuardSettings(**{guard: False})
    assert disagreement(fa, fb, settings) != guard


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What's a good name for a beagle puppy?", "Suggest a name for my beagle puppy."),
        ("How do I boil an egg?", "What is the way to boil an egg?"),
        ("北京有哪些博物馆值得去？", "北京有什么值得去的博物馆？"),
        # One prompt adding a word is a rephrasing, not a swapped subject.
        ("How long do parrots live?", "What is the typical lifespan of a parrot?"),
        ("What does 'ubiquitous' mean?", "What is the meaning of 'ubiquitous'?"),
        ("声速是多少？", "声音的速度是多少？"),
    ],
)  # fmt: skip
async def test_paraphrases_pass_every_guard(nlp, a, b) -> None:
    fa, fb = await nlp.process([a, b])
    assert disagreement(fa, fb, GuardSettings()) is None


async def test_term_overlap_guard_is_optional(nlp) -> None:
    fa, fb = await nlp.process(["How do I boil an egg?", "Recommend a jazz album."])
    others_off = GuardSettings(subject=False)  # the subject guard also tells these apart
    assert disagreement(fa, fb, others_off) is None
    assert disagreement(fa, fb, GuardSettings(subject=False, min_term_overlap=0.2)) == "terms"


async def test_process_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="start"):
        await PromptPreprocessor().process(["hello"])


async def test_a_name_spelled_inside_another_word_does_not_count(nlp) -> None:
    fa, fb = await nlp.process(["What is the GDP of the US?", "What is the GDP we must report?"])
    assert "us" in fa.entities
    assert disagreement(fa, fb, GuardSettings()) == "entities"


async def test_chinese_prompts_sharing_only_a_latin_word_are_kept_apart(nlp) -> None:
    fa, fb = await nlp.process(["如何学习Rust编程？", "Rust里怎么给数组排序？"])
    others_off = GuardSettings(subject=False)  # the subject guard also tells these apart
    assert disagreement(fa, fb, others_off) is None
    overlap = GuardSettings(subject=False, min_term_overlap_zh=0.25)
    assert disagreement(fa, fb, overlap) == "terms"
    fc, fd = await nlp.process(["光速是多少？", "光的速度是多少？"])  # segmented apart, same chars
    assert disagreement(fc, fd, overlap) is None


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # A part of the day one prompt adds sets the scene of the same question.
        ("How much water should a runner drink?",
         "How much water should a runner drink in the morning?", None),
        ("喝绿茶能减肥吗？", "晚上喝绿茶能减肥吗？", None),
        # Two different parts of the day, or a day, still count.
        ("Is it safe to jog in the morning?", "Is it safe to jog in the evening?", "quantities"),
        ("How much water should a runner drink?",
         "How much water should a runner drink tomorrow?", "quantities"),
        # "First" as an adverb orders steps; as an adjective it picks a thing.
        ("What should I do if my car breaks down?",
         "My car broke down, what should I do first?", None),
        ("Who was the first king of Sweden?", "Who was the second king of Sweden?",
         "quantities"),
        # A season, or "how many days" for "how long", on one side only.
        ("How do I keep my dog cool?", "How do I keep my dog cool in summer?", None),
        ("How long does a sprained wrist take to heal?",
         "How many days does a sprained wrist take to heal?", None),
        ("What vegetables grow well in spring?", "What vegetables grow well in autumn?",
         "quantities"),
        ("冬天怎么给狗狗保暖？", "夏天怎么给狗狗保暖？", "quantities"),
        # "During the day" is the daytime, against the night; "a day" is a span.
        ("How do I get my toddler to sleep through the night?",
         "How do I get my toddler to nap during the day?", "quantities"),
        ("小狗晚上叫个不停怎么办？", "小狗白天叫个不停怎么办？", "quantities"),
        ("How much water should I drink during the day?",
         "How much water should I drink a day?", None),
        # "Each day" says how often, not how long: it sets the scene of "how many minutes".
        ("How long should I practise the piano each day?",
         "How many minutes a day should I practise the piano?", None),
        ("How many hours should I study each day?", "How many hours should I study each week?",
         "quantities"),
    ],
)  # fmt: skip
async def test_a_vague_time_on_one_side_only(nlp, a, b, guard) -> None:
    fa, fb = await nlp.process([a, b])
    assert disagreement(fa, fb, GuardSettings(subject=False)) == guard


async def test_thesaurus_corrects_jieba_names_and_verb_object_words(nlp) -> None:
    f = await features(nlp, "老虎的寿命有多长？")  # jieba's dictionary tags 老虎 as a person
    assert "老虎" in f.anchors and not f.entities
    f = await features(nlp, "杭州的人口有多少？")  # a real place stays a name
    assert f.entities == {"杭州"}
    f = await features(nlp, "怎么挑到熟透的西瓜？")  # jieba tags 西瓜 as a place
    assert "西瓜" in f.anchors and not f.entities
    # So a kind of tea one prompt names is compared as a noun, not a name only it says.
    assert await verdict(nlp, "红茶泡几分钟比较好？", "泡茶要几分钟？") is None
    f = await features(nlp, "怎样学好弹钢琴？")  # 弹钢琴 is one dictionary word
    assert f.anchors == ("钢琴",)
    f = await features(nlp, "浴帘发霉了怎么办？")  # a two-character noun: a thing of its own
    assert f.anchors == ("浴帘", "帘")
    f = await features(nlp, "多喝水有什么好处？")  # 多喝水: one phrase in jieba's dictionary
    assert "水" in f.anchors
    f = await features(nlp, "孕妇可以喝酒吗？")  # 喝酒: a verb-object word tagged as a verb
    assert f.anchors == ("孕妇", "酒")
    f = await features(nlp, "兔子掉牙了怎么办？")  # jieba tags 掉 as a morpheme; Cilin: a verb
    assert "牙" in f.anchors
    f = await features(nlp, "烤鸭怎么做？")  # a dish in itself, not 鸭
    assert f.anchors == ("烤鸭",)
    f = await features(nlp, "久坐腰疼怎么办？")  # 腰疼: a body part and a state in one word
    assert f.anchors == ("腰",)
    f = await features(nlp, "头疼吃什么药？")  # Cilin lists 头疼 as a condition: kept whole
    assert "头" not in f.anchors
    f = await features(nlp, "打印机纸卡住了怎么办？")  # jieba: a name; Cilin: an action
    assert not f.entities and "卡住" not in f.anchors
    f = await features(nlp, "仙人掌怎样养才会开花？")  # 养才: a "name" jieba's HMM made up
    assert not f.entities
    f = await features(nlp, "新手机要不要先充满电？")  # jieba's dictionary: 新手机 is nz
    assert not f.entities and "新手机" in f.anchors
    fa, fb = await nlp.process(["淘宝怎么退货？", "京东怎么退货？"])  # nz too: a swap still counts
    assert "淘宝" in fa.anchors and disagreement(fa, fb, GuardSettings()) is not None
    f = await features(nlp, "杭州有什么好玩的？")  # a place in jieba's dictionary stays a name
    assert f.entities == {"杭州"}
    f = await features(nlp, "晚上睡觉小腿抽筋怎么办？")  # jieba: 小 + 腿抽筋, leg and cramp
    assert "腿" in f.anchors and "筋" not in f.anchors


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        ("久坐腰疼该怎么缓解？", "久坐肩膀疼该怎么缓解？", "subject"),
        ("电饭煲内胆涂层掉了还能用吗？", "电饭锅的内胆涂层掉了还能用吗？", None),
        ("日元兑港币汇率是多少？", "港币兑日元汇率是多少？", "direction"),
        # Months, however jieba tags them (七月份: nz, 一月份: mq).
        ("罗马七月份平均气温是多少？", "罗马一月份平均气温是多少？", "quantities"),
        ("罗马七月份平均气温是多少？", "罗马七月的平均气温是多少？", None),
        ("晚上睡觉小腿抽筋是什么原因？", "晚上睡觉手指抽筋是什么原因？", "subject"),
        ("晚上睡觉小腿抽筋是什么原因？", "为什么夜里睡觉时腿会抽筋？", None),  # 晚上 is night too
        ("浴帘发霉了怎么清洗？", "窗帘发霉了怎么清洗？", "subject"),  # a bath curtain, not any 帘
        ("月季上长了蚜虫怎么办？", "黄瓜上长了蚜虫怎么办？", "subject"),  # jieba: 月季 is a time
        ("感冒了还能跑步吗？", "发烧了还能跑步吗？", "subject"),  # illnesses jieba calls verbs
        ("怎样学好弹钢琴？", "学钢琴有什么技巧？", None),
    ],
)  # fmt: skip
async def test_chinese_word_parts_and_exchange_direction(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


async def test_vague_times_of_different_kinds_do_not_clash(nlp) -> None:
    fa, fb = await nlp.process(
        ["How many hours of sleep does an adult need?",
         "How much sleep should a grown-up get each night?"]
    )  # fmt: skip
    assert "span:hour" in fa.quantities and "part:night" in fb.quantities
    assert disagreement(fa, fb, GuardSettings(subject=False)) is None


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # A verb form is no subject noun, whatever WordNet lists ("cooking").
        ("How long should I let a steak rest after cooking?",
         "How many minutes should steak rest once it comes off the heat?", None),
        ("Is it safe to swim right after eating?", "Can you go swimming immediately after a meal?",
         None),
        # Words asking for the same aspect of a topic, and two aspects that differ.
        ("What are the symptoms of dehydration?", "What signs show that someone is dehydrated?",
         None),
        ("What are the benefits of fasting?", "What are the risks of fasting?", "subject"),
        ("长期熬夜有什么危害？", "经常熬夜对身体有哪些坏处？", None),
        ("长期熬夜有什么好处？", "长期熬夜有什么坏处？", "subject"),
        # "X-free" leaves X out, as "without X" does.
        ("How do I unclog a drain without chemicals?",
         "What's a chemical-free way to unclog a drain?", None),
        # jieba glues a modal verb to the noun before it (猫能, 时会).
        ("猫能活多少年？", "狗能活多少年？", "subject"),
        ("脱水有哪些症状？", "人脱水时会出现什么表现？", None),
        # A verb-object phrase jieba files as an idiom (剪头发).
        ("怎么给宝宝剪指甲？", "怎么给宝宝剪头发？", "subject"),
        # One word changed: a synonym asks the same, another word does not.
        ("Is it bad to sleep with wet hair?", "Is it bad to sleep with damp hair?", None),
        ("How do I fix a leaky faucet?", "How do I repair a leaky faucet?", None),
        ("How long does a sprained wrist take to heal?",
         "How long does a broken wrist take to heal?", "substitution"),
        ("Why do cats knead blankets?", "Why do cats chew blankets?", "substitution"),
        # A verb the small model takes for a name ("buff" as a person, "brew").
        ("How do I remove scratches from a car's paint?",
         "What's the best way to buff out scratches on car paint?", None),
        ("How long should I steep green tea?", "How many minutes should green tea brew?", None),
        # A verb's -ing form drops a silent e: "skate" and "skating" are one word.
        ("How tight should my skates be?", "How tight should laces be for skating?", None),
        # The head of a two-word noun stands for that noun only: a handbag is a bag,
        # not a sleeping bag.
        ("How do I clean a handbag?", "How do I clean a sleeping bag?", "subject"),
        # A place word of a thing and "on" (手上): the thing.
        ("手上扎了刺怎么弄出来？", "脚上扎了刺怎么弄出来？", "subject"),
    ],
)  # fmt: skip
async def test_word_forms_aspects_and_glued_words(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


async def test_a_noun_the_tagger_misreads_is_taken_as_written(nlp) -> None:
    # spaCy reads "sticker" as "more sticky" (lemma "stick"); WordNet knows it only as a noun.
    result = await features(nlp, "How do I get sticker residue off a glass jar?")
    assert "sticker" in result.anchors and "stick" not in result.anchors
    cat = await features(nlp, "猫能活多少年？")
    assert "猫" in cat.anchors and "猫能" not in cat.anchors
    # A preposition with its object is no noun, though WordNet knows "as" (arsenic).
    runner = await features(nlp, "How far should I run each week as a beginner?")
    assert "as" not in runner.anchors and "beginner" in runner.anchors


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # jieba's HMM glues text outside its dictionary across a negator (绿植对猫不, 取不).
        ("戒指卡在手指上摘不下来怎么办？", "手指肿了戒指取不下来怎么弄？", None),
        # One character changed, where jieba cut the words around it differently.
        ("Excel怎么冻结首行？", "Excel怎么冻结首列？", "substitution"),
        ("手脚冰凉怎么办？", "手脚冰冷怎么办？", None),
        # A set phrase naming a kind of thing is compared by the thing (电动牙刷: 牙刷).
        ("电动牙刷怎么充电？", "手机怎么充电？", "subject"),
        ("怎样才能背单词背得快？", "有什么快速记单词的方法？", None),
        # 挂画 is hanging a picture: 画 is mostly a picture in Cilin, though also "to draw".
        ("租房子怎么挂画不伤墙？", "租房子怎么装窗帘不伤墙？", "subject"),
        # A verb-object word Cilin gives a synonym sharing none of its characters names
        # no thing (出门 / 外出 / 去往): 门 is not what is asked about. Weather is.
        ("每次出门都很焦虑怎么办？", "外出时总感到焦虑该如何调节情绪？", None),
        ("打雷时狗狗很害怕怎么办？", "放鞭炮时狗狗很害怕怎么办？", "subject"),
        # 注意 is a stop word, not a verb with an object.
        ("台风天出门要注意什么？", "刮台风的时候外出要当心什么？", None),
    ],
)  # fmt: skip
async def test_chinese_words_jieba_glues_or_cuts_apart(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


async def test_a_word_glued_across_a_negator_is_cut_there(nlp) -> None:
    result = await features(nlp, "哪些绿植对猫不安全？")
    assert "·不" in result.words and "猫" in result.anchors


async def test_a_name_jieba_counts_as_rare_is_compared_as_a_noun(nlp) -> None:
    # jieba's dictionary lists 黄牙 (yellow teeth) as a place seen 26 times; 三亚 179.
    yellow = await features(nlp, "黄牙怎么才能变白？")
    assert yellow.entities == frozenset() and "黄牙" in yellow.anchors
    assert "三亚" in (await features(nlp, "去三亚玩几天合适？")).entities
    # A rare "name" glued to a target marker is cut there: 美元兑 is 美元 / 兑.
    assert (await features(nlp, "美元兑日元最近涨了吗？")).flow == ("美元", "日元")


async def test_a_condition_is_asked_about_whole(nlp) -> None:
    # 晕船 (seasick) is listed by Cilin as a bodily state: not a verb acting on a 船.
    result = await features(nlp, "坐轮船晕船怎么办？")
    assert "晕船" in result.anchors and "船" not in result.anchors


async def test_a_verb_object_word_is_about_the_longest_thing_it_ends_in(nlp) -> None:
    # 下围棋: 围棋 (go, a verb in jieba's dictionary, a game in Cilin), not any 棋.
    result = await features(nlp, "下围棋有哪些基本规则？")
    assert "围棋" in result.anchors and "棋" not in result.anchors


async def test_an_action_jieba_tags_as_a_noun_is_no_subject(nlp) -> None:
    # jieba tags 初学 ("begin to learn") a noun; Cilin files it only as an action.
    result = await features(nlp, "初学游泳的人怎么换气？")
    assert "初学" not in result.anchors and "初学" in result.words
    # An activity Cilin lists among others of its kind stays one: 编程 (programming).
    assert "编程" in (await features(nlp, "如何学习Go编程？")).anchors
    # A word Cilin files as a state too stays one: 头痛 (a headache; also "a worry").
    assert "头痛" in (await features(nlp, "为什么一睡醒就头痛？")).anchors


async def test_a_character_after_an_adverb_acts(nlp) -> None:
    # jieba's dictionary tags 学 a noun (learning); after 刚 ("just") it is "to learn".
    result = await features(nlp, "刚学游泳该买哪种泳镜？")
    assert "学" not in result.anchors and "泳镜" in result.anchors


async def test_a_thing_jieba_tags_as_a_place_is_a_noun(nlp) -> None:
    # 场地 (a ground) and 墙壁 (a wall) carry jieba's place tag; 手上 is "on the hand".
    assert "场地" in (await features(nlp, "打羽毛球需要多大的场地？")).anchors
    assert "墙壁" in (await features(nlp, "墙壁发霉了怎么处理？")).anchors
    assert "手" in (await features(nlp, "手上起皮怎么办？")).anchors


async def test_zero_before_a_background_is_no_number(nlp) -> None:
    # 零基础 ("from zero") is a beginner; 零 before a unit is still 0.
    assert (await features(nlp, "零基础学游泳要多久？")).quantities == frozenset()
    assert "0" in (await features(nlp, "零下五度要穿什么？")).quantities


async def test_a_word_glued_after_when_is_cut_there(nlp) -> None:
    # jieba's HMM makes 时侧 of 跳绳时 / 侧腰.
    result = await features(nlp, "跳绳时侧腰疼怎么办？")
    assert "时侧" not in result.words and "时侧" not in result.anchors


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # "The habit of X" asks about X; two frames of one question are one question.
        ("How do I break the habit of biting my nails?", "How do I stop biting my nails?", None),
        ("怎么改掉抖腿的习惯？", "怎么改掉抖腿的毛病？", None),
        ("What are good study habits?", "What are good sleep habits?", "subject"),
    ],
)  # fmt: skip
async def test_habit_words_frame_the_question(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # Two words trading places, the words between kept, trade their roles.
        ("Do Dutch speakers understand German?", "Do German speakers understand Dutch?",
         "direction"),
        ("会日语的人能看懂中文吗？", "会中文的人能看懂日语吗？", "direction"),
        ("Is a wolf bigger than a coyote?", "Is a coyote bigger than a wolf?", "direction"),
        # "to" before a verb marks no direction; as a preposition it does.
        ("How do I remove old photos from my phone storage?",
         "What's the quickest way to free up phone storage by deleting old photos?", None),
        ("What's the best way to get from Paris to London?",
         "What's the best way to get from London to Paris?", "direction"),
        ("苹果比香蕉热量高吗？", "香蕉比苹果热量高吗？", "direction"),
        # Phrases of several words trade places too.
        ("Does the price of gold follow the US dollar?",
         "Does the US dollar follow the price of gold?", "direction"),
        ("人民币汇率会跟着美元指数变化吗？", "美元指数会跟着人民币汇率变化吗？", "direction"),
        ("Can a golden retriever and a cat live together?",
         "Can a cat and a golden retriever live together?", None),
        # 为什么 ("why") holds 为 but marks no direction: its words may come in any order.
        ("为什么冰箱里的牛奶会结冰？", "牛奶为什么在冰箱里结冰？", None),
        ("猫为什么怕狗？", "狗为什么怕猫？", "direction"),
        # Neighbours, or the items of a list, only come in another order.
        ("北京一月天气怎么样？", "一月北京天气怎么样？", None),
        ("Is it cheaper to fly or drive?", "Is it cheaper to drive or fly?", None),
        ("猫和狗哪个更聪明？", "狗和猫哪个更聪明？", None),
    ],
)  # fmt: skip
async def test_two_words_trading_places(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # "back" is an adverb and a stop word to spaCy; after a determiner it is a noun.
        ("How do I relieve a sore back?", "How do I relieve a sore knee?", "subject"),
        ("Why does my back hurt?", "Why does my knee hurt?", "subject"),
        ("How do I get back to sleep?", "How can I fall asleep again?", None),
        # So is "tattoo", an adverb to the small model in "for a fresh tattoo".
        ("What is the healing time for a fresh tattoo?",
         "What is the healing time for a nose piercing?", "subject"),
        # "The role of X" asks what X does.
        ("What is the role of a midwife?", "What does a midwife do?", None),
        ("What is the role of a midwife?", "What is the role of a doula?", "subject"),
        ("What is the purpose of a will?", "What is the cost of a will?", "substitution"),
        # An -ing form as the object of a verb or preposition names an activity; after
        # a preposition of time it sets the scene.
        ("How long does it take to learn snorkeling?",
         "How long until I can teach myself juggling?", "subject"),
        ("How can I get better at juggling?", "What helps me improve my juggling?", None),
        ("How long should chicken rest after cooking?",
         "How many minutes should chicken rest once it comes off the heat?", None),
    ],
)  # fmt: skip
async def test_nouns_the_small_model_misses_and_frames_of_purpose(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


async def test_a_lower_case_common_noun_is_no_name(nlp) -> None:
    # The recogniser calls "magician" a nationality; written lower case and tagged
    # a common noun, it is a noun like the others, not a name only one prompt says.
    result = await features(nlp, "Which card trick should a beginner magician start with?")
    assert "magician" not in result.entities and "magician" in result.anchors
    assert (
        await verdict(
            nlp,
            "Which card trick should a beginner magician start with?",
            "What card trick should a beginner start with?",
        )
        is None
    )


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # A word both prompts say matches itself: it does not also cover a longer word
        # it starts (sting / stingray) as a stem would.
        ("How do you treat a jellyfish sting?", "What should I do if a stingray stings me?",
         "subject"),
        ("How do I tie my shoelaces?", "What is the best way to tie shoes?", None),
    ],
)  # fmt: skip
async def test_a_word_said_by_both_covers_only_itself(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # "The trick behind X", "the secret to X" ask how to do X; "behind" with
        # its object is a preposition, not a noun.
        ("How do magicians make a coin disappear?",
         "What's the trick behind making a coin vanish?", None),
        ("What's the secret to fluffy pancakes?", "How do I make pancakes fluffy?", None),
        # What the knack is for still counts, and a trick of a kind names its kind.
        ("What's the secret to fluffy pancakes?", "What's the secret to fluffy waffles?",
         "subject"),
        ("What is an easy card trick for kids?", "What is an easy coin trick for kids?",
         "subject"),
    ],
)  # fmt: skip
async def test_the_knack_of_doing_a_thing_frames_the_question(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # Someone who does a thing is named by the thing done, which the other
        # prompt may say instead (surfer / surfboard, 养蜂人 / 养蜂).
        ("What size surfboard should a beginner use?",
         "How big a board should a new surfer start on?", None),
        ("养蜂人怎么防止被蜜蜂蜇？", "养蜂的时候怎样避免被蜇伤？", None),
        # Not a word that merely starts with the rest (floor / flower), nor another
        # doer (climber / cyclist).
        ("How do I clean a dusty floor quickly?", "How do I clean dusty flowers quickly?",
         "subject"),
        ("What gloves should a beginner climber wear?",
         "What gloves should a beginner cyclist wear?", "subject"),
        # Words for someone new to a thing name the same asker.
        ("新手学吉他先练什么？", "初学者学吉他先练什么？", None),
    ],
)  # fmt: skip
async def test_who_asks_named_by_what_they_do(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


async def test_a_noun_the_lemmatiser_cuts_is_kept_as_written(nlp) -> None:
    # spaCy lemmatises "thermos" to "thermo"; WordNet knows the first, and files it
    # under vacuum flask.
    result = await features(nlp, "How long does a thermos keep coffee hot?")
    assert "thermos" in result.anchors
    assert (
        await verdict(
            nlp,
            "How long does a thermos keep coffee hot?",
            "For how many hours will coffee stay hot in a vacuum flask?",
        )
        is None
    )


async def test_out_of_is_a_preposition(nlp) -> None:
    result = await features(nlp, "How do I get the smell out of my thermos?")
    assert "out" not in result.anchors and "smell" in result.anchors


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # Midnight is a time of night, as 半夜 is.
        ("Is it safe to ride the subway late at night?",
         "How safe is taking the metro after midnight?", None),
        ("Is it safe to ride the subway at noon?", "Is it safe to ride the subway at midnight?",
         "quantities"),
    ],
)  # fmt: skip
async def test_midnight_is_night(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


async def test_a_word_carrying_a_do_auxiliary_is_a_verb(nlp) -> None:
    # The small model tags "work" as a noun here; only a verb takes "does".
    result = await features(nlp, "How does a heat pump work?")
    assert "work" not in result.anchors and "pump" in result.anchors


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # 第一 is a number as "first" is; 首次 says it too.
        ("月球上的第一个人是谁？", "月球上的最后一个人是谁？", "quantities"),
        ("第一次坐飞机要注意什么？", "第二次坐飞机要注意什么？", "quantities"),
        ("第一次坐飞机要注意什么？", "首次乘坐飞机需要注意哪些事项？", None),
        ("第一次去健身房该练什么？", "初次去健身房应该练些什么？", None),
        ("初次去健身房应该练些什么？", "第三次去健身房应该练些什么？", "quantities"),
        ("Who was the first man on the moon?", "Who was the last man on the moon?", "quantities"),
        # Doing a thing for the first time is doing it new: a prompt may say "new"
        # or nothing instead. A second time is still a number.
        ("新买的铁锅怎么开锅？", "刚买的铁锅第一次用之前要怎么处理？", None),
        ("How do I season a new carbon steel wok?",
         "What's the process for seasoning a carbon steel wok before first use?", None),
        ("新买的铁锅怎么开锅？", "铁锅第二次用之前要怎么处理？", "quantities"),
        ("What should I expect the first time I give blood?",
         "What should I expect the second time I give blood?", "quantities"),
    ],
)  # fmt: skip
async def test_first_is_a_number_in_both_languages(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


async def test_first_as_an_adverb_orders_steps_even_where_no_ordinal_is_recognised(nlp) -> None:
    # The recogniser tags "first" in one of these and not in the other.
    for text in ("What should I pack first when moving house?",
                 "Which things should go in boxes first when I move?"):  # fmt: skip
        assert (await features(nlp, text)).quantities == {"step:1"}


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # Opposite words of order, amount or state, beside the same word, are opposite
        # questions; most are stop words the substitution guard leaves alone.
        ("Can I eat eggs before surgery?", "Is it OK to have eggs after an operation?",
         "direction"),
        ("Why do I sleep more in winter?", "Why do I sleep less in winter?", "direction"),
        ("Is it safe to sleep with the fan on?", "Is it safe to sleep with the fan off?",
         "direction"),
        ("Is it OK to drink coffee on an empty stomach?",
         "Is it OK to drink coffee on a full stomach?", "direction"),
        ("Why does my front tire wear out faster?", "Why does my back tire wear out faster?",
         "direction"),
        # The same word elsewhere in the prompt ("on Android") does not hide the swap.
        ("How do I turn off dark mode on Android?", "How do I turn on dark mode on Android?",
         "direction"),
        # Opposite actions, each said by one prompt only, though other words change too.
        ("What's the quickest way to lose belly fat?", "How can I gain belly fat quickly?",
         "direction"),
        ("Is spring a good time to sell a car?", "Is spring a good time to buy my car?",
         "direction"),
        # Not where one prompt averts: "stop forgetting" asks what "remember" asks.
        ("How can I remember birthdays better?", "How do I stop forgetting birthdays?", None),
        # A content word in a stop word's place is a swap too (spaCy lists 喂 as one).
        ("狗狗一天要喂几次？", "狗狗一天要遛几次？", "substitution"),
        ("运动前要拉伸吗？", "运动后需要做拉伸吗？", "direction"),
        ("为什么冬天睡得多？", "冬天为什么会睡得少？", "direction"),
        # Not where each prompt says both, or where the words sit in other places.
        ("Should I stretch before or after running?",
         "Is it better to stretch before running or after?", None),
        ("How do I keep my cat off the kitchen counter?",
         "How do I stop my cat from jumping on the counters?", None),
    ],
)  # fmt: skip
async def test_opposite_words_of_order_amount_and_state(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # One word written as two ("eye glasses", "tie-break") is the same word.
        ("Where can I buy eye glasses online?", "Where can I order eyeglasses online?", None),
        ("What is a tie-break in tennis?", "How does a tiebreak work in tennis?", None),
        ("How do I clean a tooth brush?", "How do I clean a hair brush?", "subject"),
        # A two-word noun said in other words of the same meaning covers its words.
        ("How is atomic energy produced?", "How is nuclear power produced?", None),
        ("Is solar power expensive to install?", "Is wind power expensive to install?",
         "subject"),
        # A word both prompts say is not also a broader word for one of their nouns:
        # WordNet files a cello under "string" (a bowed instrument), "cello" read as a verb.
        ("When should I put new strings on my viola?",
         "How often should cello strings be replaced?", "subject"),
        ("How often should I replace my violin strings?",
         "When is it time to put new strings on a violin?", None),
    ],
)  # fmt: skip
async def test_a_word_written_closed_or_open(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # A name written in initials is the name written out.
        ("How do I sort an array in JavaScript?", "What's the quickest way to sort an array in JS?",
         None),
        ("Where is the UN headquarters?", "Where is the United Nations headquarters?", None),
        ("How big is the USA?", "How big is the United States of America?", None),
        ("How do I install VS Code on Linux?", "How do I install Visual Studio Code on Linux?",
         None),
        # A Chinese name contracted (珠峰 for 珠穆朗玛峰); a part of a name is another name.
        ("珠峰有多高？", "珠穆朗玛峰的高度是多少？", None),
        ("美国的国鸟是什么？", "美利坚合众国的国鸟是什么？", None),
        ("北京有什么好吃的？", "北京大学有什么好吃的？", "entities"),
        # Capitals spelled out in lower case: only initials of three letters or more.
        ("Is an SSD worth it for gaming?", "Is a solid-state drive worth it for gaming?", None),
        ("Is an HDD worth it for gaming?", "Is a solid-state drive worth it for gaming?",
         "subject"),
        # Initials of another name are another name.
        ("What does the NHS cover?", "What does the National Insurance Service cover?",
         "entities"),
        ("How do I learn JS quickly?", "How do I learn Java quickly?", "entities"),
    ],
)  # fmt: skip
async def test_a_name_shortened_and_written_out(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # "one" standing for a thing is no count; "twice" is one.
        ("Is a gas oven cheaper to run than an electric one?",
         "Which costs less to run, a gas oven or an electric oven?", None),
        ("Which one is healthier, green tea or black tea?",
         "Which is healthier, green tea or black tea?", None),
        ("Is one cup of coffee a day too much?", "Are two cups of coffee a day too much?",
         "quantities"),
        ("Should I water basil twice a week?", "Should I water basil two times a week?", None),
        ("Should I water basil twice a week?", "Should I water basil three times a week?",
         "quantities"),
        # One or two where the other prompt says no number: other words say as much.
        ("How do I splice two ropes together?", "What's the way to splice ropes together?", None),
        ("怎么把两块木板拼接起来？", "木板怎么拼接起来？", None),
        ("How do I splice ropes together?", "How do I splice five ropes together?",
         "quantities"),
        ("How do I splice two ropes together?", "How do I splice three ropes together?",
         "quantities"),
        # Not an ordinal: the first is one place in an order, the last another.
        ("Who won the first Tour de France?", "Who won the last Tour de France?", "quantities"),
        # A Roman numeral after a name is a number; initials that spell one are not.
        ("Which battles ended World War II?", "Which battles ended the Second World War?", None),
        ("How many wives did Henry VIII have?", "How many wives did Henry VII have?",
         "quantities"),
        ("Should I put my GPA on my CV?", "Should I put my GPA on my resume?", None),
        # A number jieba's HMM glued to the verb before it (练三 / 小时) is still a number.
        ("每天练一小时钢琴够吗？", "每天练三小时钢琴够吗？", "quantities"),
        # 不一样 says "different" as 不同 does; against 一样 it is still another question.
        ("电动车和燃油车有什么区别？", "电动车和燃油车有什么不一样？", None),
        ("为什么两只眼睛的度数不一样？", "为什么两只眼睛的度数一样？", "substitution"),
    ],
)  # fmt: skip
async def test_counts_that_are_and_are_not_numbers(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # A move or change reversed, though worded otherwise: source and target swap.
        ("Can I move money from Venmo to my bank account?",
         "How do I transfer money from my bank account into Venmo?", "direction"),
        ("How do I convert kilograms to pounds?",
         "What is the formula to turn pounds into kilograms?", "direction"),
        ("How long is the flight from Madrid to Lisbon?",
         "How many hours does it take to fly to Madrid from Lisbon?", "direction"),
        ("How do I convert yen to euros?", "What's the exchange rate from euros to yen?",
         "direction"),  # "euros" lemmatised two ways: compared by stem
        ("从杭州到苏州坐高铁要多久？", "苏州到杭州的高铁要坐多长时间？", "direction"),
        ("怎么把日元换成港币？", "港币兑换日元怎么操作？", "direction"),
        # The same move worded otherwise, or no move at all, whatever the nouns' order.
        ("What's the fastest way to get from the station to the old town?",
         "How do I get to the old town from the station quickly?", None),
        ("How do I SSH into a remote server?", "How can I connect to a remote server over SSH?",
         None),
        ("怎么从火车站去老城区？", "从火车站到老城区怎么走最快？", None),
        # Names with a digit trade places too; a word lemmatised two ways is one word.
        ("Can I transfer a saved game from PS4 to PS5?",
         "Can I transfer a saved game from PS5 to PS4?", "direction"),
        ("海里换算成节怎么算？", "节换算成海里怎么算？", "direction"),
        # A word for people trades places too, though stop-word lists hold it.
        ("猫会把跳蚤传染给人吗？", "人会把跳蚤传染给猫吗？", "direction"),
        # jieba keeps 中文翻译 whole: the source is still 中文.
        ("把这封信从中文翻译成日文", "把这封信从日文翻译成中文", "direction"),
        ("什么是区块链？", "区块链是什么？", None),
    ],
)  # fmt: skip
async def test_a_move_or_change_reversed(nlp, a, b, guard) -> None:
    assert await verdict(nlp, a, b) == guard


@pytest.mark.parametrize(
    ("text", "flow"),
    [
        ("怎么把摄氏度变成华氏度？", ("摄氏度", "华氏度")),
        # Without 把, the source comes before the verb: 英寸 / 换算 / 成 / 尺.
        ("英寸换算成尺怎么算？", ("英寸", "尺")),
        # jieba's HMM glues the marker to what follows (换算 / 成节): cut there.
        ("公里每小时换算成节怎么算？", ("小时", "节")),
        # With both, 从 marks the source and 把 only what is moved; 成德文 is a rare
        # "name" in jieba's dictionary, cut after the verb.
        ("把这段话从法文翻译成德文", ("法文", "德文")),
        # 因为 ("because") ends like 成为 but names no target.
        ("把钥匙忘在家里是因为太累吗？", ()),
    ],
)  # fmt: skip
async def test_what_marks_the_target_of_a_chinese_change(nlp, text, flow) -> None:
    assert (await features(nlp, text)).flow == flow
