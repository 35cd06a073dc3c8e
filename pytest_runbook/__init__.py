"""pytest-runbook: Markdown runbooks as pytest tests, run in one persistent shell per file."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
