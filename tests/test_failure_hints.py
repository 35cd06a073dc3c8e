"""The hints of a failure report, judged from what the ERR trap recorded (pure functions)."""

from __future__ import annotations

from typing import Optional, Tuple

import pytest

from pytest_runbook.model import Result
from pytest_runbook.verdict import pipefail_was_why, written_span


def failed(command: str = "", pipe_status: Tuple[int, ...] = ()) -> Result:
    return Result(
        output="", status=1, duration=0.1, failed_command=command, pipe_status=pipe_status
    )


@pytest.mark.parametrize(
    ("result", "source", "why"),
    [
        (failed("true", (1, 0)), "false | true", True),  # pipefail made it fail
        (failed("head -1", (141, 0)), "yes | head -1", True),
        (failed("false", (0, 1)), "true | false", False),  # the last command failed
        (failed("false", (1, 1)), "false | false", False),  # it fails without pipefail too
        (failed("false", (1,)), "echo a | cat\nfalse", False),  # not a pipeline
        (failed("x=$(false | true)", (1,)), "x=$(false | true)", True),  # one inside
        (failed(), "a | b", True),  # nothing recorded: any pipe may be why
        (failed(), "a || b", False),
    ],
)
def test_pipefail_is_why_only_when_an_earlier_command_failed(
    result: Result, source: str, why: bool
) -> None:
    assert pipefail_was_why(result, source) is why


@pytest.mark.parametrize(
    ("line", "command", "quoted"),
    [
        ('  test   "a   b"  =   c  # why', 'test "a   b" = c', 'test   "a   b"  =   c'),
        ("out=$(  false  ) ; echo", "out=$(false)", "out=$(  false  )"),
        ("echo a  >x", "echo a > x", "echo a  >x"),
        ("true", "false", None),
        ("false", "ls", None),  # not inside another word
        ("tools -l; ls -l", "ls -l", "ls -l"),  # the second match, a word of its own
        ("x=1 ls", "ls", "ls"),
        ("x", "", None),
    ],
)
def test_written_span_finds_bashs_command_as_the_page_has_it(
    line: str, command: str, quoted: Optional[str]
) -> None:
    span = written_span(line, command)
    assert (line[span[0] : span[1]] if span else None) == quoted
