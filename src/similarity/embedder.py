"""Sentence embeddings with micro-batching, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import HandlerStateError
from src.similarity.models import DEFAULT_EMBEDDING_MODEL, resolve_model
from src.workers import StageWorkers, off_loop

logger = logging.getLogger(__name__)

__all__ = ["Embedder"]


class Embedder:
    """Embeds texts into unit-length float32 vectors (cosine = inner product).

    Concurrent :meth:`embed` calls are gathered into one model call of up to
    ``batch_size`` texts; the first waits at most ``batch_wait_ms`` for company.

    Args:
        model: A name known to :mod:`src.similarity.models`, a sentence-transformers
            model name or a local path; None for the default (multilingual-e5-small).
        device: Torch device.
        cache_dir: Where models built from packaged weights are kept.
        batch_size: Most texts per model call.
        batch_wait_ms: Longest wait for a batch to fill.
        workers: Threads the model runs in (the stage's shared pool); None: asyncio's.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        batch_wait_ms: float = 2.0,
        cache_dir: Path | None = None,
        workers: StageWorkers | None = None,
    ) -> None:
        self.model_name = model
        self.workers = workers
        self.cache_dir = cache_dir
        self.device = device
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_ms / 1000.0
        self._model: Any = None
        self._prompt: str | None = None
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[np.ndarray | None]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.dimension: int | None = None
        self.startup_s: float | None = None
        self.batches = 0
        self.embedded = 0

    async def start(self) -> None:
        """Load the model in a worker thread and start the batcher. Idempotent."""
        if self._worker is not None:
            return
        began = time.perf_counter()
        self._model = await off_loop(self.workers, self._load)
        self.dimension = int(self._model.get_embedding_dimension())
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._batch(), name="embedding-batcher")
        self.startup_s = time.perf_counter() - began
        logger.info("Embedding model %s (dim %d) loaded in %.2f s", self.model_name or
                    DEFAULT_EMBEDDING_MODEL, self.dimension, self.startup_s)  # fmt: skip

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(resolve_model(self.model_name, self.cache_dir),
                                    device=self.device)  # fmt: skip
        # Models trained with instruction prefixes (E5 and its kin) name a "query" prompt.
        self._prompt = "query" if "query" in (model.prompts or {}) else None
        return model

    def fits(self, text: str) -> bool:
        """Whether the model reads all of ``text`` (it truncates past its window)."""
        limit = getattr(self._model, "max_seq_length", None)
        if not limit:
            return True
        prefix = (self._model.prompts or {}).get(self._prompt, "") if self._prompt else ""
        # Normalisation can make a text longer: count tokens, not characters.
        ids = self._model.tokenizer(prefix + text, add_special_tokens=True)["input_ids"]
        return len(ids) <= limit

    @property
    def space(self) -> str:
        """A short id of the model's vector space: vectors of different spaces never meet."""
        name = self.model_name or DEFAULT_EMBEDDING_MODEL
        return hashlib.sha256(name.encode()).hexdigest()[:12]

    async def stop(self) -> None:
        """Stop the batcher; waiting calls fail with CancelledError. Idempotent."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._queue is not None:
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                future.cancel()

    async def embed(self, text: str) -> np.ndarray | None:
        """The unit vector of one text, or None when the text is longer than the model
        reads (see :meth:`fits`): a vector of its beginning would stand for all of it."""
        if self._queue is None or self._worker is None:
            raise HandlerStateError("Embedder is not started: await start() first")
        future: asyncio.Future[np.ndarray | None] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, future))
        return await future

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        """Blocking batch embedding, for worker threads and offline tools."""
        vectors = self._model.encode(
            texts,
            prompt_name=self._prompt,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_fitting(self, texts: list[str]) -> list[np.ndarray | None]:
        """:meth:`embed_sync` for the texts that fit the model's window; None for the rest."""
        fitting = [i for i, text in enumerate(texts) if self.fits(text)]
        vectors: list[np.ndarray | None] = [None] * len(texts)
        if fitting:
            made = self.embed_sync([texts[i] for i in fitting])
            for i, vector in zip(fitting, made, strict=True):
                vectors[i] = vector
        return vectors

    async def _batch(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.batch_size:
                timeout = deadline - loop.time()
                if timeout <= 0 and self._queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), max(timeout, 0)))
                except TimeoutError:
                    break
            live = [(t, f) for t, f in batch if not f.done()]
            if not live:
                continue
            try:
                vectors = await off_loop(self.workers, self.embed_fitting, [t for t, _ in live])
            except Exception as exc:
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.embedded += len(live)
            for (_, future), vector in zip(live, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)
