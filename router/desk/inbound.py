"""What the router makes of a channel's message before storing it: text the database
takes, whatever the platform sent."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from channels.base import InboundMessage

__all__ = ["reuses_id", "storable", "under_its_own_id"]

logger = logging.getLogger(__name__)

# A code point in a str is never half of a pair: any surrogate here is unpaired.
_SURROGATE = re.compile("[\\ud800-\\udfff]")


def _clean(text: str) -> str:
    """Text the database takes: NUL dropped, unpaired surrogates replaced (a platform's
    JSON may carry both; storing them would fail the message forever)."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def storable(inbound: InboundMessage) -> InboundMessage:
    """``inbound`` with every text the channel passed made storable (see ``_clean``)."""
    texts = [inbound.text, inbound.html or "", inbound.sender.display_name or ""]
    texts += [*inbound.extras.keys(), *inbound.extras.values()]
    texts += [a.name for a in inbound.attachments]
    if all(_clean(t) == t for t in texts):
        return inbound
    sender = inbound.sender
    return replace(
        inbound,
        text=_clean(inbound.text),
        html=None if inbound.html is None else _clean(inbound.html),
        sender=replace(
            sender,
            display_name=None if sender.display_name is None else _clean(sender.display_name),
        ),
        extras={_clean(k): _clean(v) for k, v in inbound.extras.items()},
        attachments=tuple(replace(a, name=_clean(a.name)) for a in inbound.attachments),
    )


def reuses_id(inbound: InboundMessage, stored: str | None) -> bool:
    """Whether ``inbound`` is a different message under an id already stored (a
    stranger's mail that took a customer's Message-ID first), not a re-sent copy."""
    fingerprint = inbound.extras.get("fingerprint")
    return (
        fingerprint is not None
        and stored is not None
        and stored != fingerprint
        and not inbound.external_id.endswith("#" + fingerprint)
    )


def under_its_own_id(inbound: InboundMessage, first: int) -> InboundMessage:
    """``inbound`` keyed by its id and fingerprint, so its own re-sent copies are still
    duplicates; flagged for a person, since someone sent two mails under one id."""
    fingerprint = inbound.extras["fingerprint"]
    logger.warning(
        "%s message %s reuses the id of stored message %s with other content: stored too",
        inbound.channel,
        inbound.external_id,
        first,
    )
    flag = (
        f"another mail was stored first under this Message-ID (message {first}): "
        "check which of the two is genuine"
    )
    return replace(
        inbound,
        external_id=f"{inbound.external_id}#{fingerprint}",
        flag=f"{inbound.flag}; {flag}" if inbound.flag else flag,
    )
