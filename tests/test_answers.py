"""Scripted answers (SPEC 4) end to end: each ``send`` is typed exactly as written, and a
failure says what was typed at which prompt."""

from __future__ import annotations

from typing import Any

import pytest


def test_send_is_typed_as_written_not_as_yaml_reads_it(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    # YAML 1.1 reads yes as true, no as false, 0123 as 83 (octal) and 1.10 as 1.1.
    runbook(
        """
        <!-- runbook:
        answers:
          - {expect: "Continue\\\\? ", send: yes}
          - {expect: "Really\\\\? ", send: no}
          - {expect: "Code: ", send: 0123}
          - {expect: "Version: ", send: 1.10}
        -->
        ```sh {name=typed}
        read -p "Continue? " a; read -p "Really? " b; read -p "Code: " c; read -p "Version: " d
        echo "[$a] [$b] [$c] [$d]"
        ```

        ```output
        Continue? Really? Code: Version: [yes] [no] [0123] [1.10]
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)


def test_a_failure_shows_what_the_answers_typed_at_which_prompt(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        <!-- runbook: {answers: [{expect: "Continue\\\\? ", send: yes}]} -->
        ```sh {name=asks}
        read -p "Continue? " a; echo "got $a"
        ```

        ```output
        Continue? got y
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:2: cell 'asks' output differs from the output block at doc.md:6*",
            "Answers (prompt regex -> text typed with Enter, in order): /Continue\\? / -> 'yes'",
            "*-Continue? got y",
            "*+Continue? got yes",
        ],
        consecutive=False,
    )
