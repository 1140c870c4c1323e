"""The embedder at full precision against an int8 copy: speed, size and agreement.

    .venv/bin/python -m benchmarks.embedder_runtime [--limit 300] [--rounds 30] [--threads N]

Loads the default embedder (multilingual-e5-small, as the cache serves it) and
a copy whose linear layers are quantised to int8 by PyTorch's dynamic
quantisation (weights int8, activations quantised per batch; no calibration
data). Both run the same texts, interleaved so that both see the same load:

- **speed**: median milliseconds per call for one text (a lone miss) and for a
  batch of 16 (the batcher under load);
- **size**: bytes of the weights;
- **agreement**: the cosine between the two vectors of each text, and, on
  labelled pairs, how many pairs change side of the cosine threshold (0.93)
  and of the judge's floor (0.85), with each model's recall and false hits at
  0.93.

The pairs are the first ``--limit`` rows of each public set in
``../shared/datasets`` (only cosine is read; nothing is trained or tuned).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import asyncio
import copy
import io
import statistics
import time
import warnings

import numpy as np

from benchmarks.semantic_quality import public_pairs
from src.config import SimilarityConfig
from src.similarity.embedder import Embedder


def int8_copy(served: Embedder) -> Embedder:
    """``served`` with its linear layers dynamically quantised to int8.

    The copy encodes through the same :meth:`Embedder.embed_sync` (prompt,
    normalisation, batch size) as the served model; only its weights differ.
    """
    import torch
    from torch.ao.quantization import quantize_dynamic

    quantised = copy.copy(served)
    with warnings.catch_warnings():
        # PyTorch marks eager-mode quantisation for removal in favour of torchao,
        # which is not installed here; the kernels it uses are the same.
        warnings.simplefilter("ignore")
        quantised._model = quantize_dynamic(
            copy.deepcopy(served._model), {torch.nn.Linear}, dtype=torch.qint8
        )
    return quantised


def weight_bytes(embedder: Embedder) -> int:
    import torch

    buffer = io.BytesIO()
    torch.save(embedder._model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def time_calls(
    models: dict[str, Embedder], texts: list[str], size: int, rounds: int
) -> dict[str, float]:
    """Median ms per call of ``size`` texts, the models taking turns each round."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for r in range(rounds):
        batch = [texts[(r * size + i) % len(texts)] for i in range(size)]
        for name, model in models.items():
            began = time.perf_counter()
            model.embed_sync(batch)
            times[name].append((time.perf_counter() - began) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def rates(scores: np.ndarray, same: np.ndarray, threshold: float) -> tuple[float, float]:
    served = scores >= threshold
    return float(served[same].mean()), float(served[~same].mean())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=300, help="pairs read per set")
    parser.add_argument("--rounds", type=int, default=30, help="timed calls per size")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = SimilarityConfig()
    pairs = public_pairs(args.limit)
    full = Embedder(settings.embedding_model, batch_size=16)
    await full.start()
    try:
        models = {"fp32": full, "int8": int8_copy(full)}
        texts = [t for p in pairs for t in (p.a, p.b)]
        for model in models.values():
            model.embed_sync(texts[:16])  # warm-up
        one = time_calls(models, texts, 1, args.rounds)
        sixteen = time_calls(models, texts, 16, args.rounds)
        vectors = {name: model.embed_sync(texts) for name, model in models.items()}
        sizes = {name: weight_bytes(model) for name, model in models.items()}
    finally:
        await full.stop()
    agreement = np.sum(vectors["fp32"] * vectors["int8"], axis=1)
    same = np.array([p.same for p in pairs])
    scores = {name: np.sum(v[0::2] * v[1::2], axis=1) for name, v in vectors.items()}
    print(f"{len(pairs)} pairs, {len(texts)} texts, torch threads {torch.get_num_threads()}")
    print(f"{'':8}{'1 text ms':>11}{'16 texts ms':>13}{'weights MB':>12}"
          f"{'recall@0.93':>13}{'false@0.93':>12}")  # fmt: skip
    for name in models:
        recall, false = rates(scores[name], same, settings.threshold)
        print(f"{name:8}{one[name]:>11.1f}{sixteen[name]:>13.1f}"
              f"{sizes[name] / 1e6:>12.1f}{recall:>13.3f}{false:>12.3f}")  # fmt: skip
    print(f"cosine(fp32, int8) per text: mean {agreement.mean():.4f}, "
          f"min {agreement.min():.4f}")  # fmt: skip
    for threshold in (settings.threshold, settings.judge_floor):
        sides = (scores["fp32"] >= threshold) != (scores["int8"] >= threshold)
        print(f"pairs on another side of {threshold}: {int(sides.sum())} of {len(pairs)}")


if __name__ == "__main__":
    asyncio.run(main())
