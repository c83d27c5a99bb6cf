"""Teams, and the routing rules that send a handoff to one.

A rule has conditions (channel, language and script, the bot's reason, the entry
the bot came closest to or its tags, keywords, contact attributes, business hours)
and actions (team, priority, tags, SLA policy). At each handoff the rules are read
in order and the first that matches routes the conversation; none matching leaves it
in everyone's queue with the SLA policy its own conditions choose. The match is kept
on the handoff ("routed to Repairs by rule 3"), so an agent can see why a
conversation is where it is.

The section comes from config.yaml's ``routing`` or what an admin saved
(``router.settings.editable``), like the SLA section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from knowledge import chinese_script
from knowledge.normalise import Normaliser
from router.config import RoutingConfig, RoutingRuleConfig
from router.conversations import Priority
from router.desk.sla import SlaPolicies

__all__ = ["HandoffFacts", "Routed", "Routing", "Team"]


@dataclass(frozen=True, slots=True)
class Team:
    key: str
    name: str
    # Agents by sign-in name.
    members: frozenset[str]
    # Open conversations a member may be given by auto-assignment; None: the inbox's.
    capacity: int | None = None


@dataclass(frozen=True, slots=True)
class HandoffFacts:
    """What a rule may look at, as it was when the conversation was handed off."""

    channel: str
    language: str | None
    reason: str
    text: str = ""
    entry: str | None = None
    entry_tags: tuple[str, ...] = ()
    contact: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Routed:
    """The rule that matched (numbered from 1, as the admin page shows them) and what
    it does."""

    rule: int
    name: str
    team: str | None
    priority: Priority | None
    tags: tuple[str, ...]
    sla_policy: str | None

    def as_context(self, teams: Mapping[str, Team]) -> dict[str, Any]:
        team = teams.get(self.team) if self.team else None
        return {
            "rule": self.rule,
            "name": self.name,
            "team": self.team,
            "team_name": team.name if team else self.team,
            "priority": self.priority.label if self.priority is not None else None,
            "tags": list(self.tags),
            "sla_policy": self.sla_policy,
        }


# Keywords and the customer's words are compared with width, case and script folded.
_folded = Normaliser().fold


@dataclass(frozen=True, slots=True)
class _Rule:
    number: int
    spec: RoutingRuleConfig
    keywords: tuple[str, ...]

    def matches(self, facts: HandoffFacts, folded: str, script: str | None, open_: bool) -> bool:
        when = self.spec.when
        if when.channels and facts.channel not in when.channels:
            return False
        if when.languages and (facts.language or "") not in when.languages:
            return False
        if when.scripts and not any(
            script is not None and (script == s or script.startswith(s + "-")) for s in when.scripts
        ):
            return False
        if when.reasons and facts.reason not in when.reasons:
            return False
        if when.entries and facts.entry not in when.entries:
            return False
        if when.entry_tags and not set(when.entry_tags) & set(facts.entry_tags):
            return False
        if self.keywords and not any(k in folded for k in self.keywords):
            return False
        for key, wanted in when.contact.items():
            if not _same(facts.contact.get(key), wanted):
                return False
        return when.business_hours is None or when.business_hours == open_


def _same(have: Any, wanted: str | bool | int) -> bool:
    """An attribute equals a condition; the shop may send "true" / "1" for a flag."""
    if have is None:
        return False
    if isinstance(wanted, bool):
        if isinstance(have, bool):
            return have is wanted
        return str(have).strip().casefold() in (
            ("true", "1", "yes", "y") if wanted else ("false", "0", "no", "n")
        )
    return str(have).strip().casefold() == str(wanted).strip().casefold()


class Routing:
    """The teams and rules in force."""

    def __init__(self, section: RoutingConfig | None = None) -> None:
        section = section or RoutingConfig()
        self.section = section
        self.teams: dict[str, Team] = {
            key: Team(
                key=key,
                name=spec.name or key,
                members=frozenset(spec.members),
                capacity=spec.capacity,
            )
            for key, spec in section.teams.items()
        }
        self._rules = tuple(
            _Rule(number, spec, tuple(_folded(k) for k in spec.when.keywords))
            for number, spec in enumerate(section.rules, 1)
        )

    def __len__(self) -> int:
        return len(self._rules)

    def route(self, facts: HandoffFacts, policies: SlaPolicies, now: datetime) -> Routed | None:
        """The first rule that matches ``facts`` at ``now``, or None."""
        if not self._rules:
            return None
        folded = _folded(facts.text)
        script = chinese_script(facts.text) if facts.text else None
        for rule in self._rules:
            when = rule.spec.when
            open_ = (
                True
                if when.business_hours is None
                else policies.calendar(when.calendar).is_open(now)
            )
            if rule.matches(facts, folded, script, open_):
                then = rule.spec.then
                return Routed(
                    rule=rule.number,
                    name=rule.spec.name,
                    team=then.team,
                    priority=Priority.parse(then.priority) if then.priority else None,
                    tags=tuple(dict.fromkeys(then.tags)),
                    sla_policy=then.sla_policy,
                )
        return None

    def team_name(self, key: str | None) -> str | None:
        if key is None:
            return None
        team = self.teams.get(key)
        return team.name if team else key

    def teams_of(self, agent_name: str) -> list[str]:
        """The keys of the teams ``agent_name`` is a member of."""
        return [key for key, team in self.teams.items() if agent_name in team.members]

    def members(self, key: str | None) -> frozenset[str] | None:
        """Who may be given ``key``'s conversations; None: anyone (no team, or a team
        that is no longer configured)."""
        team = self.teams.get(key) if key else None
        return None if team is None else team.members

    def capacity(self, key: str | None, default: int) -> int:
        team = self.teams.get(key) if key else None
        return team.capacity if team is not None and team.capacity else default

    def listing(self) -> Sequence[dict[str, Any]]:
        """The teams for pages and the API."""
        return [
            {
                "key": t.key,
                "name": t.name,
                "members": sorted(t.members),
                "capacity": t.capacity,
            }
            for t in self.teams.values()
        ]

    def rules(self) -> Iterable[tuple[int, RoutingRuleConfig]]:
        return ((r.number, r.spec) for r in self._rules)
