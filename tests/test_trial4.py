"""What a fourth trial user met checking the documentation's claims, end to end."""

from __future__ import annotations

from typing import Any

import pytest


def test_an_unknown_doctest_optionflag_is_a_clean_collection_error(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    pytester.makeini("[pytest]\ndoctest_optionflags = ELIPSIS\n")
    runbook(
        """
        ```pycon
        >>> print("a long line")
        a ...
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "ini doctest_optionflags: unknown flag 'ELIPSIS'; known flags: ALLOW_BYTES, *",
            "  fix: correct the name in the ini file's doctest_optionflags",
        ]
    )
    result.stdout.no_fnmatch_line("*items.py*")
    result.stdout.no_fnmatch_line("*UsageError*")
