"""A fitted matcher kept on disk, so a restart (or ``relaydesk kb ask``) does not fit
again what nothing changed.

Fitting a knowledge base's entry models and calibration curves takes seconds to
minutes; reading them back takes milliseconds. The file is named by a digest of
everything the fit depends on: the entries (questions and answers), the synonyms,
which encoders read meaning, and this package's own source, so an edited entry or
an upgraded matcher simply misses the cache. The file is a pickle under the
service's data directory, which holds the database and the secret key as well;
one that cannot be read is fitted again, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from knowledge.entries import FaqEntry
from knowledge.matcher import Matcher
from knowledge.meaning import TextEncoder
from knowledge.semantic import Encoder

__all__ = ["cached_matcher"]

logger = logging.getLogger(__name__)

# Matchers kept side by side (the current one and the few before it).
_KEEP = 3


@lru_cache(maxsize=1)
def _code_digest() -> str:
    digest = hashlib.blake2b(digest_size=16)
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    digest.update(np.__version__.encode())
    return digest.hexdigest()


def _key(
    entries: Sequence[FaqEntry],
    synonyms: Mapping[str, str],
    readers: tuple[str | None, str | None],
) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(_code_digest().encode())
    digest.update(repr(readers).encode())
    digest.update(repr(sorted(synonyms.items())).encode("utf-8", "surrogatepass"))
    for entry in entries:
        digest.update(repr(entry).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def cached_matcher(
    entries: Sequence[FaqEntry],
    synonyms: Mapping[str, str],
    *,
    folder: Path | None,
    build: Callable[[], Matcher],
    encoder: Encoder | None,
    chinese_encoder: TextEncoder | None,
) -> Matcher:
    """The matcher ``build()`` would make, read from ``folder`` when it was made before."""
    if folder is None:
        return build()
    readers = (
        "minilm" if encoder is not None else None,
        chinese_encoder.name if chinese_encoder is not None else None,
    )
    path = folder / f"matcher-{_key(entries, synonyms, readers)}.pickle"
    try:
        with path.open("rb") as handle:
            matcher = pickle.load(handle)
        if not isinstance(matcher, Matcher):
            raise TypeError(f"holds a {type(matcher).__name__}")
    except FileNotFoundError:
        pass
    except Exception as exc:  # a file cut short or from elsewhere: fit again
        logger.warning("fitted knowledge base %s unreadable (%s): fitted again", path.name, exc)
    else:
        os.utime(path)  # the most recently used are the ones kept
        matcher.attach(encoder=encoder, chinese_encoder=chinese_encoder)
        return matcher
    matcher = build()
    _keep(matcher, path)
    return matcher


def _keep(matcher: Matcher, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as handle:
            pickle.dump(matcher, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temporary.replace(path)
        others = sorted(
            path.parent.glob("matcher-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for old in others[_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # a read-only data directory: the bot still answers
        logger.warning("fitted knowledge base not kept in %s: %s", path.parent, exc)
