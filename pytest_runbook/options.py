"""One grammar per kind of option value, wherever it is written, and where a value came from.

A duration reads the same on the command line, in the ini file, in the frontmatter and in a
cell's attributes (``500ms``, ``30``, ``30s``, ``2m``, ``1m30s``, ``1h``), so a value that works
in one place works in all of them. A bad value raises ``OptionError`` naming its origin (the
ini key, the command-line option or ``file:line``); callers turn it into their own error type.
Imports nothing from pytest.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from typing import Any, Optional, Tuple

from .defaults import Defaults

DEFAULTS = Defaults()

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# One or more number+unit parts, largest unit first ("1h30m", "1m30s", "2m", "500ms"), or a
# bare number of seconds.
_PART = rf"({_NUMBER})\s*(ms|h|m|s)"
_DURATION = rf"{_NUMBER}|(?:{_NUMBER}\s*(?:ms|h|m|s)\s*)+"
_ORDER = ("h", "m", "s", "ms")


class OptionError(ValueError):
    """A bad option value: ``message`` names the value, ``hint`` the fix."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_duration(value: Any, key: str = "timeout") -> float:
    """Seconds from 30, 2.5, "30s", "500ms", "2m", "1m30s", "1h" (must be > 0 and finite)."""
    seconds: Optional[float] = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_text(value.strip().lower())
    if seconds is not None and seconds <= 0:
        raise OptionError(
            f"{key} must be greater than 0 seconds, not {value!r} (a cell with no time cannot run)",
            f"write {key}=30 (seconds), {key}=2m or {key}=1h",
        )
    if seconds is None or not seconds > 0 or seconds == float("inf"):
        raise OptionError(
            f"{key} must be a number of seconds such as 30 or 2m, not {value!r}",
            f"write {key}=30 (seconds), {key}=2m or {key}=1h",
        )
    return seconds


def _duration_text(text: str) -> Optional[float]:
    if text.isascii() and text.isdigit():
        return float(text)  # the usual "60": every pytest run reads the ini's timeout
    if not re.fullmatch(_DURATION, text):  # compiled only now (re caches it)
        return None
    parts = re.findall(_PART, text)
    if not parts:
        return float(text)
    units = [unit for _, unit in parts]
    # Each unit once, largest first: "30s2m" is more likely a typo than a duration.
    if len(set(units)) != len(units) or units != sorted(units, key=_ORDER.index):
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def parse_columns(value: Any, key: str = "columns") -> int:
    """A terminal width: a whole number of columns, 20 or more."""
    text = str(value).strip()
    if not text.isdigit() or not 20 <= int(text) <= 10_000:
        raise OptionError(
            f"{key} must be a whole number of terminal columns (20 to 10000), not {value!r}",
            f"write {key} = 200",
        )
    return int(text)


def parse_choice(value: Any, choices: Tuple[str, ...], key: str) -> str:
    """One of ``choices``, case-insensitive."""
    text = str(value).strip().lower()
    if text not in choices:
        raise OptionError(
            f"{key} must be one of {', '.join(choices)}, not {value!r}",
            # A flag takes its value after "=": "--runbook-update = changed" is three words.
            f"write {key}={choices[0]}" if key.startswith("--") else f"write {key} = {choices[0]}",
        )
    return text


HOME_CHOICES = ("tmp",)


def parse_home(value: Any, key: str = "home") -> Optional[str]:
    """``home: tmp`` gives each file a fresh, empty HOME; unset keeps the user's."""
    if value is None or str(value).strip() == "":
        return None
    return parse_choice(value, HOME_CHOICES, key)
