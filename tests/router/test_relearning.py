"""The bot relearns in the background after an agent teaches it: one refit at a time,
and asks that arrive during one are answered by one more, not one each."""

from __future__ import annotations

from pathlib import Path

from knowledge import learn
from router.core import Relearning
from router.delivery.events import EventBus, KnowledgeReloaded
from router.front_line import build_bot
from tests.support.service import make_config

KB = """\
- id: opening-hours
  questions: ["When are you open?", "What are your opening hours?"]
  answer: {en: "Every day from 9 to 21."}
- id: return-how
  questions: ["How do I return an item?", "I want to send it back"]
  answer: {en: "Start a return under My orders."}
"""


async def test_asks_before_a_relearn_starts_share_it_and_the_bot_knows_them(
    tmp_path: Path,
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "faq.yaml").write_text(KB, encoding="utf-8")
    config = make_config(
        tmp_path, {"knowledge": {"path": str(kb), "cache_dir": str(tmp_path / "cache")}}
    )
    bot = build_bot(config)
    events = EventBus()
    relearning = Relearning(config, bot, events)
    async with events.subscribe() as feed:
        # Two agents save an answer each, one clicking twice: nobody waits for the refit.
        learn(kb, question="Do you sell gift cards?", answer="Yes, at the till.")
        relearning.soon()
        learn(kb, question="Can I pay by bank transfer?", answer="Yes, to the account shown.")
        relearning.soon()
        relearning.soon()
        await relearning.settled()
        # One refit read both: the files as they were when it began.
        assert events.published == 1
        reloaded = await feed.get()
    assert isinstance(reloaded, KnowledgeReloaded) and reloaded.error is None
    assert reloaded.entries == 4
    for question in ("Do you sell gift cards?", "Can I pay by bank transfer?"):
        assert bot.decide(question).entry_id is not None, question
