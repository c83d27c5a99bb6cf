"""Configuration: ``config.yaml`` plus environment, validated into typed models.

``load_config`` is the only code that reads the YAML file or the environment.
Values may use ``${VAR}`` (required) and ``${VAR:-default}`` substitution; an
invalid file raises ``ConfigError`` naming the key path and the reason, e.g.
``channels.webchat.max_text_chars: must be an integer``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator

from router.config.base import Section
from router.config.routing import RoutingConfig, RoutingRuleConfig, TeamConfig
from router.config.sections import (
    BotConfig,
    ChannelsConfig,
    InboxConfig,
    KnowledgeConfig,
    OutboxConfig,
    ServerConfig,
    StorageConfig,
)
from router.config.sla import CalendarConfig, SlaConfig, SlaPolicyConfig, parse_minutes

__all__ = [
    "BotConfig",
    "CalendarConfig",
    "ChannelsConfig",
    "Config",
    "ConfigError",
    "InboxConfig",
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
    "parse_minutes",
]


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class Config(Section):
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
