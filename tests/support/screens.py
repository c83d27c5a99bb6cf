"""Where the browser tests put their screenshots.

Under tests/artifacts (ignored by git) as a test run's evidence; into docs/, the
screenshots the documentation shows, only when asked: ``make screenshots`` sets
``RELAYDESK_DOCS_SCREENSHOTS=1``. A test run never rewrites a tracked file.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.service import ROOT

__all__ = ["screenshot"]

ARTIFACTS = ROOT / "tests" / "artifacts"


def screenshot(name: str) -> Path:
    """The file for screenshot ``name`` (e.g. ``reports-phone.png``)."""
    folder = ROOT / "docs" if os.environ.get("RELAYDESK_DOCS_SCREENSHOTS") else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
