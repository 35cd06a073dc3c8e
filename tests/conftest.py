"""Shared helpers for end-to-end tests: write Markdown, run pytest on it, read outcomes."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

# Loaded here, once, before any in-process pytester run: pytester drops the modules a run
# imported when it ends, and a PyYAML package imported afresh next to its cached C
# extension fails ("could not determine a constructor for the tag None"; seen on 3.9).
import pytest_runbook.items  # noqa: F401


@pytest.fixture
def runbook(pytester: pytest.Pytester) -> Any:
    """Write ``name`` with dedented ``text`` into the pytester directory; return its path."""

    def write(text: str, name: str = "doc.md") -> Path:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
