"""Configuration: the shipped file loads, substitution works, mistakes name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import ConfigError, load_config
from tests.support.service import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_loads_with_the_embedded_default() -> None:
    config = load_config(ROOT / "config.yaml", env={})
    assert config.storage.url == f"sqlite+aiosqlite:///{ROOT / 'relaydesk.db'}"
    assert config.knowledge.path == ROOT / "knowledge" / "demo"
    assert config.server.port == 8080 and config.channels.webchat.enabled


def test_environment_variables_are_substituted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "server:\n  port: ${PORT:-9000}\n  secret_key: ${SECRET}\n"
        "storage:\n  url: ${DB:-sqlite+aiosqlite:///x.db}\n",
    )
    config = load_config(path, env={"SECRET": "s3cret-value"})
    assert config.server.port == 9000 and config.server.secret_key == "s3cret-value"
    assert config.storage.url == f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert load_config(path, env={"SECRET": "x", "PORT": "81"}).server.port == 81


def test_a_missing_required_variable_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  secret_key: ${RELAYDESK_SECRET}\n")
    with pytest.raises(ConfigError, match=r"server\.secret_key: .*RELAYDESK_SECRET is not set"):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "channels:\n  webchat:\n    max_text_chars: lots\n",
            r"channels\.webchat\.max_text_chars: must be an integer",
        ),
        ("server:\n  port: eighty\n", r"server\.port: must be an integer"),
        ("bot:\n  answer_treshold: 80\n", r"bot\.answer_treshold: is not a known option"),
        (
            "bot:\n  answer_threshold: 50\n  clarify_threshold: 70\n",
            r"bot: clarify_threshold must not be above answer_threshold",
        ),
        ("sla:\n  timezone: Mars/Olympus\n", r"sla\.timezone: unknown time zone"),
        ("storage:\n  url: sqlite:///x.db\n", r"storage\.url: must start with"),
        ("- just\n- a list\n", r"top level must be a mapping"),
        ("server: [unclosed\n", r"not valid YAML"),
    ],
)
def test_an_invalid_config_is_refused_with_the_key_and_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})
