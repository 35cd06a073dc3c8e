"""The one error type users see for bad input: it always names the file, the line and the fix.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import Optional


class RunbookError(Exception):
    """Bad input in a runbook (or an option): reported as ``path:LINE: message`` plus a hint.

    ``line`` is 0-based, as everywhere inside the package; ``None`` when no line applies.
    """

    def __init__(self, path: str, line: Optional[int], message: str, hint: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message
        self.hint = hint

    def location(self) -> str:
        return f"{self.path}:{self.line + 1}" if self.line is not None else self.path

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text
