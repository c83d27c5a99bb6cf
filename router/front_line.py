"""The front line from the configuration: the knowledge base's matcher (read back from
its disk cache when nothing changed) and the bot.

Kept apart from ``router.builders`` (every channel, the calendars, the outbox) so that
``relaydesk kb ask`` starts without importing the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bot import Bot, BotSettings
from knowledge import Matcher, Normaliser, load_folder, load_synonyms
from knowledge.fitted import cached_matcher
from knowledge.meaning import load_e5
from knowledge.semantic import Encoder, ModelNotInstalled, load_encoder
from router.config import Config, KnowledgeConfig

__all__ = ["build_bot", "build_matcher", "cache_dir", "english_encoder"]

logger = logging.getLogger(__name__)


def build_matcher(
    knowledge: KnowledgeConfig,
    *,
    path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    cache: Path | None = None,
) -> Matcher:
    """The matcher over the knowledge base at ``path`` (default: the configured one);
    embeddings kept under ``cache`` (see :func:`cache_dir`)."""
    path = path or knowledge.path
    encoder, chinese = None, None
    if knowledge.semantic:
        if "en" in knowledge.semantic_languages:
            encoder = english_encoder(knowledge.semantic_model)
        if "zh" in knowledge.semantic_languages:
            chinese = load_e5(cache)
    entries, synonyms = load_folder(path), load_synonyms(path)
    return cached_matcher(
        entries,
        synonyms,
        folder=cache,
        build=lambda: Matcher(
            entries,
            normaliser=Normaliser(synonyms),
            progress=progress,
            encoder=encoder,
            chinese_encoder=chinese,
        ),
        encoder=encoder,
        chinese_encoder=chinese,
    )


def cache_dir(config: Config) -> Path:
    """Where embeddings are kept between starts."""
    return config.knowledge.cache_dir or config.server.data_dir / "cache"


def english_encoder(model: str) -> Encoder | None:
    """all-MiniLM-L6-v2 for English, or None (logged once) when it is not installed."""
    try:
        return load_encoder(model)
    except ModelNotInstalled as exc:
        if model not in _MISSING_MODELS:
            _MISSING_MODELS.add(model)
            logger.warning("English is read lexically only: %s", exc)
        return None


_MISSING_MODELS: set[str] = set()


def build_bot(config: Config, *, progress: Callable[[int, int], None] | None = None) -> Bot:
    """The knowledge base and the bot, from the config (also used by ``relaydesk kb``)."""
    b = config.bot
    return Bot(
        matcher=build_matcher(config.knowledge, progress=progress, cache=cache_dir(config)),
        settings=BotSettings(
            answer_threshold=b.answer_threshold,
            clarify_threshold=b.clarify_threshold,
            clarify_margin=b.clarify_margin,
            clarify_spread=b.clarify_spread,
            max_choices=b.max_choices,
            max_misses=b.max_misses,
        ),
    )
