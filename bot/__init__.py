"""The bot front line: pure decisions over the knowledge base, no I/O."""

from bot.policy import Bot, BotContext, BotSettings, Decision, DecisionKind, ScoredCandidate
from bot.texts import BotTexts

__all__ = [
    "Bot",
    "BotContext",
    "BotSettings",
    "BotTexts",
    "Decision",
    "DecisionKind",
    "ScoredCandidate",
]
