"""Transcripts: parsing into placed examples, and judging exactly as the stdlib doctest does."""

from __future__ import annotations

import doctest
import os
import textwrap
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from pytest_runbook.doctests import (
    NUMBER,
    Example,
    TranscriptError,
    check,
    is_transcript,
    optionflags_from_ini,
    parse_examples,
    want_lines,
)
from pytest_runbook.model import Result
from pytest_runbook.sessions.base import Request
from pytest_runbook.sessions.python.session import PythonSession


def result(output: str = "", exception: str = "", traceback: str = "") -> Result:
    return Result(
        output=output,
        status=1 if exception else 0,
        duration=0.0,
        exception=exception,
        traceback=traceback,
    )


# -- parsing -------------------------------------------------------------------------------


def test_examples_are_placed_in_the_markdown() -> None:
    block = textwrap.dedent(
        """\
        >>> x = 1
        >>> for i in range(2):
        ...     print(i)
        0
        1

        Text between examples.
        >>> print('a')  # doctest: +ELLIPSIS, -NORMALIZE_WHITESPACE
        a...
        """
    )
    examples = parse_examples(block, first_line=10)
    assert examples == [
        Example("x = 1\n", "", 10, 11, 11, 0, {}),
        Example("for i in range(2):\n    print(i)\n", "0\n1\n", 11, 13, 15, 0, {}),
        Example(
            "print('a')  # doctest: +ELLIPSIS, -NORMALIZE_WHITESPACE\n",
            "a...\n",
            17,
            18,
            19,
            0,
            {doctest.ELLIPSIS: True, doctest.NORMALIZE_WHITESPACE: False},
        ),
    ]
    flags = examples[2].flags(doctest.NORMALIZE_WHITESPACE)
    assert flags == doctest.ELLIPSIS
    assert not examples[2].skipped(flags)


def test_skip_and_indented_transcripts() -> None:
    block = "  >>> 1  # doctest: +SKIP\n  2\n"
    (example,) = parse_examples(block, first_line=0)
    assert (example.indent, example.want, example.skipped(0)) == (2, "2\n", True)


def test_is_transcript() -> None:
    assert is_transcript("\n>>> 1\n1\n")
    assert is_transcript("  >>> import os\n")
    assert not is_transcript("x = 1\n>>> 1\n")
    assert not is_transcript(">>>x\n")
    assert not is_transcript("")


def test_unparsable_example_names_its_markdown_line() -> None:
    with pytest.raises(TranscriptError) as info:
        parse_examples(">>> x = 1\n>>>print(x)\n", first_line=4)
    assert info.value.line == 5
    assert (
        info.value.message
        == "doctest cannot parse this example: lacks blank after >>>: '>>>print(x)'"
    )


def test_optionflags_from_ini() -> None:
    assert optionflags_from_ini(["ELLIPSIS", "NORMALIZE_WHITESPACE"]) == (
        doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert optionflags_from_ini(["NUMBER"]) == NUMBER
    assert optionflags_from_ini([]) == 0
    with pytest.raises(ValueError, match="unknown flag 'ELIPSIS'; known flags: ALLOW_BYTES, "):
        optionflags_from_ini(["ELIPSIS"])


# -- checking ------------------------------------------------------------------------------


def test_plain_match_and_difference() -> None:
    assert check("1\n", result("1\n"), 0) is None
    assert check("", result(""), 0) is None
    assert check("a\n", result("a"), 0) is None  # doctest adds the missing final newline
    assert check("1\n", result("2\n"), 0) == "Expected:\n    1\nGot:\n    2\n"
    assert check("", result("2\n"), 0) == "Expected nothing\nGot:\n    2\n"


def test_blankline() -> None:
    assert check("a\n<BLANKLINE>\nb\n", result("a\n\nb\n"), 0) is None
    assert check("a\n<BLANKLINE>\n", result("a\n\n"), doctest.DONT_ACCEPT_BLANKLINE) is not None


def test_ellipsis_inline_and_from_flags() -> None:
    (example,) = parse_examples(
        ">>> print(list(range(20)))  # doctest: +ELLIPSIS\n[0, 1, ..., 19]\n", 0
    )
    got = result(str(list(range(20))) + "\n")
    assert check(example.want, got, example.flags(0)) is None
    assert check(example.want, got, 0) is not None  # without the flag, "..." is literal


def test_normalize_whitespace_from_flags() -> None:
    got = result("[1,\n 2,   3]\n")
    assert check("[1, 2, 3]\n", got, doctest.NORMALIZE_WHITESPACE) is None
    assert check("[1, 2, 3]\n", got, 0) == (
        "Expected:\n    [1, 2, 3]\nGot:\n    [1,\n     2,   3]\n"
    )


def test_number() -> None:
    assert check("3.14\n", result("3.141592653589793\n"), NUMBER) is None
    assert check("3.12\n", result("3.141592653589793\n"), NUMBER) is not None


def test_exceptions_match_by_header_and_last_line() -> None:
    want = "Traceback (most recent call last):\n  ...\nValueError: bad\n"
    raised = result(
        "ignored\n",
        "ValueError: bad\n",
        "Traceback (most recent call last):\n"
        '  File "doc.md", line 3, in <module>\nValueError: bad\n',
    )
    assert check(want, raised, 0) is None
    other = result(
        "", "ValueError: worse\n", "Traceback (most recent call last):\nValueError: worse\n"
    )
    assert check(want, other, 0) == (
        "Expected:\n    Traceback (most recent call last):\n      ...\n    ValueError: bad\n"
        "Got:\n    Traceback (most recent call last):\n    ValueError: worse\n"
    )
    assert check(want, other, doctest.IGNORE_EXCEPTION_DETAIL) is None
    assert check("1\n", other, 0) == (
        "Exception raised:\n    Traceback (most recent call last):\n    ValueError: worse\n"
    )
    assert check(want, result("no error\n"), 0) is not None  # expected to raise, did not


def test_want_lines_for_update_mode() -> None:
    assert want_lines(result("a\n\n  b\n"), indent=2) == ["  a", "  <BLANKLINE>", "    b"]
    assert want_lines(result("")) == []
    raised = result("printed\n", "KeyError: 'k'\n", "Traceback (most recent call last):\n...")
    lines = want_lines(raised)
    assert lines == ["Traceback (most recent call last):", "    ...", "KeyError: 'k'"]
    # and what it writes passes
    assert check("\n".join(lines) + "\n", raised, 0) is None
    got = result("a\n\n  b\n")
    assert check("\n".join(want_lines(got)) + "\n", got, 0) is None


# -- against the standard library: same transcript, same verdicts ---------------------------

TRANSCRIPT = """\
>>> import warnings
>>> x = [1, 2, 3]
>>> x
[1, 2, 3]
>>> print("a\\n\\nb")
a
<BLANKLINE>
b
>>> x  # doctest: +ELLIPSIS
[1, ..., 3]
>>> x
[1, 2, 4]
>>> int("z")
Traceback (most recent call last):
    ...
ValueError: invalid literal for int() with base 10: 'z'
>>> int("y")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ValueError: something else
>>> 1 / 0
2
>>> for i in range(2):
...     i
0
1
>>> print("  spaced   out ")
spaced out
>>> raise SystemExit(3)
Traceback (most recent call last):
SystemExit: 3
>>> print("no newline", end="")
no newline
>>> import sys; print("stdout"); print("stderr is not compared", file=sys.stderr)
stdout
"""


@pytest.fixture
def session(tmp_path: Path) -> Iterator[PythonSession]:
    s = PythonSession(cwd=str(tmp_path), env=dict(os.environ))
    yield s
    s.close()


@pytest.mark.parametrize("flags", [0, doctest.NORMALIZE_WHITESPACE])
def test_same_verdicts_as_doctest(session: PythonSession, flags: int) -> None:
    ours: List[Optional[str]] = []
    for example in parse_examples(TRANSCRIPT, first_line=0):
        got = session.run(
            Request(
                source=example.source, path="doc.md", line=example.line, timeout=10, mode="example"
            )
        )
        ours.append(check(example.want, got, example.flags(flags)))

    theirs: List[Optional[str]] = []

    class Recorder(doctest.DocTestRunner):
        def report_success(self, out, test, example, got):  # type: ignore[no-untyped-def]
            theirs.append(None)

        def report_failure(self, out, test, example, got):  # type: ignore[no-untyped-def]
            theirs.append(self._checker.output_difference(example, got, self.optionflags))

        def report_unexpected_exception(self, out, test, example, exc_info):  # type: ignore[no-untyped-def]
            theirs.append("Exception raised")

    test = doctest.DocTestParser().get_doctest(TRANSCRIPT, {"__name__": "__main__"}, "t", "t", 0)
    Recorder(optionflags=flags).run(test, out=lambda s: None, clear_globs=False)

    # successes land where doctest's do; failures read as doctest's (tracebacks aside)
    assert [o is None for o in ours] == [t is None for t in theirs]
    assert sum(o is not None for o in ours) == (2 if flags else 3)
    for o, t in zip(ours, theirs):
        if t is not None and t != "Exception raised" and "Traceback" not in t:
            assert o == t
        if t == "Exception raised":
            assert o is not None and o.startswith("Exception raised:\n    Traceback")
            assert "ZeroDivisionError: division by zero" in o


def test_an_examples_stderr_comes_back_apart_from_its_output(session: PythonSession) -> None:
    source = "import os, sys; print('out'); print('e', file=sys.stderr); os.system('echo c >&2')\n"
    got = session.run(Request(source=source, path="doc.md", line=0, timeout=10, mode="example"))
    assert (got.output, got.stderr) == ("out\n0\n", "e\nc\n")
    cell = session.run(Request(source=source, path="doc.md", line=0, timeout=10))
    assert (cell.output, cell.stderr) == ("out\ne\nc\n0\n", "")
