"""The ``routing`` section: teams and the rules that put conversations in their queues."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from router.config.base import Section
from router.config.sla import KEY, SlaConfig

__all__ = ["RouteActions", "RouteConditions", "RoutingConfig", "RoutingRuleConfig", "TeamConfig"]

_PRIORITIES = Literal["low", "normal", "high", "urgent"]


class TeamConfig(Section):
    # Shown in the inbox (the key names the team in rules and the API); empty: the key.
    name: str = Field(default="", max_length=100)
    # Agents by their sign-in name.
    members: list[str] = Field(default_factory=list)
    # Auto-assignment gives each member at most this many of the team's open
    # conversations; null: inbox.capacity.
    capacity: int | None = Field(default=None, ge=1)


class RouteConditions(Section):
    """Every condition given must hold (empty: any conversation)."""

    channels: list[str] = Field(default_factory=list)
    # zh / en, and the script of a Chinese message: hans, hant-tw, hant-hk (or hant).
    languages: list[str] = Field(default_factory=list)
    scripts: list[Literal["hans", "hant", "hant-tw", "hant-hk"]] = Field(default_factory=list)
    # Why the bot handed off (low_confidence, asked_for_human, several_questions, ...).
    reasons: list[str] = Field(default_factory=list)
    # The knowledge-base entry the bot came closest to, or any of its tags.
    entries: list[str] = Field(default_factory=list)
    entry_tags: list[str] = Field(default_factory=list)
    # Any of these words in the customer's message (case and script do not matter).
    keywords: list[str] = Field(default_factory=list)
    # Contact attributes the shop passed (e.g. vip: true): each must be equal.
    contact: dict[str, str | bool | int] = Field(default_factory=dict)
    # true: only while the calendar is open; false: only while it is closed.
    business_hours: bool | None = None
    calendar: str = "default"


class RouteActions(Section):
    team: str | None = Field(default=None, pattern=KEY)
    priority: _PRIORITIES | None = None
    tags: list[str] = Field(default_factory=list)
    # The SLA policy by name, instead of the one its conditions would choose.
    sla_policy: str | None = None


class RoutingRuleConfig(Section):
    name: str = Field(default="", max_length=100)
    when: RouteConditions = RouteConditions()
    then: RouteActions

    @model_validator(mode="after")
    def _acts(self) -> RoutingRuleConfig:
        t = self.then
        if t.team is None and t.priority is None and not t.tags and t.sla_policy is None:
            raise ValueError("then: give at least one of team, priority, tags, sla_policy")
        if any(not k.strip() for k in self.when.keywords):
            raise ValueError("when.keywords: an empty keyword matches everything")
        return self


class RoutingConfig(Section):
    """Teams, and the rules that route a handoff: in order, the first that matches."""

    teams: dict[str, TeamConfig] = Field(default_factory=dict)
    rules: list[RoutingRuleConfig] = Field(default_factory=list)

    @field_validator("teams")
    @classmethod
    def _team_keys(cls, value: dict[str, TeamConfig]) -> dict[str, TeamConfig]:
        for key in value:
            if not re.fullmatch(KEY, key):
                raise ValueError(f"{key!r}: a team key is letters, digits, _ . - (1-60)")
        return value

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        for number, rule in enumerate(self.rules, 1):
            team = rule.then.team
            if team is not None and team not in self.teams:
                raise ValueError(f"rules[{number}]: team {team!r} is not in routing.teams")
        return self

    def check_against(self, sla: SlaConfig) -> list[str]:
        """What this routing names that the SLA section lacks (policies, calendars)."""
        policies = {p.name for p in sla.policies} | {"default"}
        calendars = set(sla.calendars) | {"default"}
        problems = []
        for number, rule in enumerate(self.rules, 1):
            if rule.then.sla_policy is not None and rule.then.sla_policy not in policies:
                problems.append(
                    f"rules[{number}].then.sla_policy: {rule.then.sla_policy!r} is not a "
                    "policy in sla.policies"
                )
            if rule.when.calendar not in calendars:
                problems.append(
                    f"rules[{number}].when.calendar: {rule.when.calendar!r} is not in sla.calendars"
                )
        return problems
