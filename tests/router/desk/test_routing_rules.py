"""Routing rules, one condition at a time: which handoff each rule takes, in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from router.config import Config, RoutingConfig, SlaConfig
from router.conversations import Priority
from router.desk.routing import HandoffFacts, Routing
from router.desk.sla import policies_from

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Tuesday 1 December 2026: 10:00 is inside the desk's hours, 23:00 outside.
OPEN = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
CLOSED = datetime(2026, 12, 1, 23, 0, tzinfo=SHANGHAI)
SLA = SlaConfig.model_validate(
    {
        "timezone": "Asia/Shanghai",
        "calendars": {"default": {"hours": {"mon-fri": "09:00-18:00"}}},
        "policies": [{"name": "vip", "first_response": 10}],
    }
)
POLICIES = policies_from(SLA)
TEAMS = {
    "repairs": {"name": "Repairs", "members": ["ana"]},
    "billing": {"name": "Billing", "members": ["bo"], "capacity": 2},
    "night": {"members": ["cy"]},
}


def routing(*rules: dict[str, Any]) -> Routing:
    return Routing(RoutingConfig.model_validate({"teams": TEAMS, "rules": list(rules)}))


def facts(**given: Any) -> HandoffFacts:
    return HandoffFacts(
        **{"channel": "webchat", "language": "zh", "reason": "low_confidence", **given}
    )


def team_for(r: Routing, f: HandoffFacts, now: datetime = OPEN) -> str | None:
    routed = r.route(f, POLICIES, now)
    return None if routed is None else routed.team


@pytest.mark.parametrize(
    ("when", "matching", "other"),
    [
        ({"channels": ["email"]}, {"channel": "email"}, {"channel": "telegram"}),
        ({"languages": ["en"]}, {"language": "en"}, {"language": "zh"}),
        # A traditional-script customer (Taiwan or Hong Kong usage), not a simplified one.
        ({"scripts": ["hant"]}, {"text": "我的發票開錯了"}, {"text": "我的发票开错了"}),
        ({"scripts": ["hant-hk"]}, {"text": "部洗衣機壞咗"}, {"text": "洗衣機壞了"}),
        ({"reasons": ["asked_for_human"]}, {"reason": "asked_for_human"}, {}),
        ({"entries": ["invoice"]}, {"entry": "invoice"}, {"entry": "coupon"}),
        (
            {"entry_tags": ["billing"]},
            {"entry": "coupon", "entry_tags": ("billing",)},
            {"entry": "return-how", "entry_tags": ("returns",)},
        ),
        # Keywords match whatever the case, the width or the script the customer wrote in.
        ({"keywords": ["发票", "invoice"]}, {"text": "我的發票呢"}, {"text": "我的快递呢"}),
        ({"keywords": ["invoice"]}, {"text": "Where is my INVOICE?"}, {"text": "Where is it?"}),
        ({"keywords": ["vip"]}, {"text": "ＶＩＰ member here"}, {"text": "member here"}),
        # The shop may send a flag as true or as "true" / "1".
        ({"contact": {"vip": True}}, {"contact": {"vip": True}}, {"contact": {"vip": False}}),
        ({"contact": {"vip": True}}, {"contact": {"vip": "1"}}, {}),
        ({"contact": {"tier": "Gold"}}, {"contact": {"tier": "gold"}}, {"contact": {"tier": 3}}),
    ],
)
def test_each_condition_takes_its_handoffs_and_leaves_the_others(
    when: dict[str, Any], matching: dict[str, Any], other: dict[str, Any]
) -> None:
    r = routing({"name": "the rule", "when": when, "then": {"team": "billing"}})
    assert team_for(r, facts(**matching)) == "billing"
    assert team_for(r, facts(**other)) is None


def test_business_hours_use_the_named_calendar() -> None:
    r = routing(
        {"when": {"business_hours": False}, "then": {"team": "night"}},
        {"when": {"business_hours": True}, "then": {"team": "repairs"}},
    )
    assert team_for(r, facts(), OPEN) == "repairs"
    assert team_for(r, facts(), CLOSED) == "night"


def test_every_condition_of_a_rule_must_hold_and_the_first_matching_rule_wins() -> None:
    r = routing(
        {
            "name": "VIP repairs",
            "when": {"keywords": ["修"], "contact": {"vip": True}},
            "then": {"team": "repairs", "priority": "urgent", "tags": ["vip"]},
        },
        {"when": {"keywords": ["修"]}, "then": {"team": "repairs"}},
        {"then": {"team": "billing", "sla_policy": "vip"}},
    )
    vip = r.route(facts(text="洗衣机要修", contact={"vip": True}), POLICIES, OPEN)
    assert vip is not None
    assert (vip.rule, vip.name, vip.team, vip.priority, vip.tags) == (
        1,
        "VIP repairs",
        "repairs",
        Priority.URGENT,
        ("vip",),
    )
    plain = r.route(facts(text="洗衣机要修"), POLICIES, OPEN)
    assert plain is not None and (plain.rule, plain.priority) == (2, None)
    rest = r.route(facts(text="发票"), POLICIES, OPEN)
    assert rest is not None and (rest.rule, rest.team, rest.sla_policy) == (3, "billing", "vip")
    assert rest.as_context(r.teams)["team_name"] == "Billing"


def test_no_rules_route_nothing() -> None:
    assert Routing().route(facts(text="anything"), POLICIES, OPEN) is None


def test_teams_know_their_members_and_capacity() -> None:
    r = routing()
    assert r.teams_of("ana") == ["repairs"] and r.teams_of("nobody") == []
    assert r.members("billing") == frozenset({"bo"})
    # No team, or a team no longer configured: anyone may take it.
    assert r.members(None) is None and r.members("gone") is None
    assert r.capacity("billing", 5) == 2 and r.capacity("repairs", 5) == 5
    assert r.team_name("night") == "night" and r.team_name("repairs") == "Repairs"


@pytest.mark.parametrize(
    ("section", "complaint"),
    [
        ({"rules": [{"then": {"team": "nobody"}}]}, "team 'nobody' is not in routing.teams"),
        ({"rules": [{"when": {"channels": ["email"]}, "then": {}}]}, "give at least one of"),
        ({"rules": [{"when": {"keywords": [" "]}, "then": {"tags": ["x"]}}]}, "empty keyword"),
        ({"teams": {"bad key!": {}}}, "a team key is"),
        ({"rules": [{"when": {"scripts": ["latin"]}, "then": {"tags": ["x"]}}]}, "scripts"),
        ({"rules": [{"when": {"colour": "red"}, "then": {"tags": ["x"]}}]}, "colour"),
    ],
)
def test_a_wrong_section_is_refused_with_the_reason(
    section: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        RoutingConfig.model_validate(section)


def test_a_rule_naming_an_unknown_sla_policy_or_calendar_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"'gold' is not a policy in sla\.policies"):
        Config.model_validate({"routing": {"rules": [{"then": {"sla_policy": "gold"}}]}})
    with pytest.raises(ValidationError, match=r"'night' is not in sla\.calendars"):
        Config.model_validate(
            {"routing": {"rules": [{"when": {"calendar": "night"}, "then": {"tags": ["n"]}}]}}
        )
    config = Config.model_validate(
        {"sla": SLA.model_dump(), "routing": {"rules": [{"then": {"sla_policy": "vip"}}]}}
    )
    assert config.routing.rules[0].then.sla_policy == "vip"
