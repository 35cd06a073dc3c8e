"""Expected vs actual output: normalisation, wildcards, regex lines, substitutions.

Imports nothing from pytest. INTERFACE CONTRACT (signatures fixed; implementation below them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Mismatch:
    """Why expected and actual output differ."""

    expected: Tuple[str, ...]  # expected lines as written
    actual: Tuple[str, ...]  # normalised actual lines
    reason: str  # one sentence: which expected line could not be matched, and why

    def diff(self, expected_label: str = "expected", actual_label: str = "actual") -> str:
        """A unified diff; lines matched by a wildcard are shown as context, as written."""
        raise NotImplementedError


def normalise(text: str, *, ansi_keep: bool = False) -> List[str]:
    """CRLF -> LF, ANSI escapes removed, trailing spaces and trailing blank lines dropped."""
    raise NotImplementedError


def check(
    expected: Sequence[str],
    actual: str,
    *,
    mode: str = "exact",
    substitutions: Optional[Mapping[str, str]] = None,
    ansi_keep: bool = False,
) -> Optional[Mismatch]:
    """None when ``actual`` satisfies ``expected``, else a Mismatch."""
    raise NotImplementedError
