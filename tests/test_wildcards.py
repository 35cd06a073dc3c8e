"""Wildcards end to end: ``...`` is a line of its own, ``[..]`` is text within a line."""

from __future__ import annotations

import pytest


def test_dots_within_an_output_line_are_literal_and_the_report_says_use_glob(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=dots}
        echo "Downloading pkg-1.2.3.tar.gz (42 kB)"
        ```

        ```output
        Downloading ... (42 kB)
        ```

        ```sh {name=glob}
        echo "Downloading pkg-1.2.3.tar.gz (42 kB)"
        ```

        ```output
        Downloading [..] (42 kB)
        ```

        ```console
        $ printf 'a\\nb\\nc\\n'
        a
        ...
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md::dots FAILED*",
            "doc.md::glob PASSED*",
            "doc.md::printf-anbncn PASSED*",
            "doc.md:1: cell 'dots' output differs from the output block at doc.md:5: "
            "expected line 1 'Downloading ... (42 kB)' does not match output line 1 "
            "'Downloading pkg-1.2.3.tar.gz (42 kB)'; '...' within a line is literal text: "
            "'[..]' matches any text there",
        ]
    )
