"""The `relaydesk` command as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.service import ROOT, make_config


def relaydesk(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_kb_ask_json_prints_the_decision_and_candidates() -> None:
    result = relaydesk(
        "--config", str(ROOT / "config.yaml"), "kb", "ask", "怎么申请退货？", "--json"
    )
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["decision"] == "answer" and decision["entry"] == "return-how"
    assert decision["candidates"][0] == {
        "id": "return-how",
        "score": decision["candidates"][0]["score"],
        "question": "怎么申请退货？",
    }
    assert set(decision) >= {"decision", "entry", "reason", "candidates"}


def test_kb_ask_explains_a_clarification() -> None:
    result = relaydesk("kb", "ask", "refund")
    assert result.returncode == 0, result.stderr
    assert "decision: clarify" in result.stdout and "How long a refund takes" in result.stdout


def test_agents_add_prints_a_token_that_opens_the_api(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config_path = tmp_path / "config.yaml"
    added = relaydesk("--config", str(config_path), "agents", "add", "Li Wei")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 32 and "Li Wei" in added.stderr
    again = relaydesk("--config", str(config_path), "agents", "add", "Li Wei")
    assert again.returncode == 2 and "already exists" in again.stderr
    listed = relaydesk("--config", str(config_path), "agents", "list")
    assert "Li Wei\tactive" in listed.stdout
    assert Path(config.storage.url.removeprefix("sqlite+aiosqlite:///")).exists()


def test_an_invalid_config_stops_the_command_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("channels:\n  webchat:\n    port: abc\n    max_text_chars: many\n")
    result = relaydesk("--config", str(bad), "serve")
    assert result.returncode == 2
    assert "channels.webchat.max_text_chars: must be an integer" in result.stderr
    assert "channels.webchat.port: is not a known option" in result.stderr
    assert "Traceback" not in result.stderr
