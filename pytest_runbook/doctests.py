"""Python transcripts (```pycon, ```python starting with ``>>> ``) under doctest's own rules.

Parsing and judging only: the examples run in the file's Python session (``mode="example"``),
and this module compares what came back with ``doctest.OutputChecker``, so that a README
passes here exactly when it passes under ``pytest --doctest-glob``: ``<BLANKLINE>``, the
option flags (ini ``doctest_optionflags`` and inline ``# doctest: +FLAG``), tracebacks
matched by their header and exception line. pytest's own flags (``NUMBER``,
``ALLOW_UNICODE``, ``ALLOW_BYTES``) behave as in pytest. Imports nothing from pytest.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from .model import Result

# Registered under the names pytest uses, so that the same ini and inline directives parse.
ALLOW_UNICODE = doctest.register_optionflag("ALLOW_UNICODE")
ALLOW_BYTES = doctest.register_optionflag("ALLOW_BYTES")
NUMBER = doctest.register_optionflag("NUMBER")

_PARSER = doctest.DocTestParser()
# doctest's own helpers for exceptions, private and missing from typeshed (hence getattr).
_EXCEPTION_RE: re.Pattern[str] = getattr(doctest.DocTestParser, "_EXCEPTION_RE")  # noqa: B009
_strip_exception_details: Callable[[str], str] = getattr(doctest, "_strip_exception_details")  # noqa: B009
_DOCTEST_LINE = re.compile(r"^line (\d+) of the docstring for \S+ (.*)$", re.DOTALL)


class TranscriptError(ValueError):
    """A ``>>> `` block doctest cannot parse; ``line`` is the 0-based Markdown line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Example:
    """One ``>>> `` example of a transcript, placed in the Markdown file."""

    source: str  # what runs, without prompts, ending with "\n" (doctest's Example.source)
    want: str  # the expected output as written, "" when none ("<BLANKLINE>" kept)
    line: int  # 0-based Markdown line of its ``>>> `` (the Request's ``line``)
    want_start: int  # first expected-output line (update mode rewrites [start, end))
    want_end: int  # exclusive; == want_start when nothing is expected
    indent: int  # columns before ``>>> `` inside the block
    options: Mapping[int, bool] = field(default_factory=dict)  # inline ``# doctest:`` flags

    def flags(self, optionflags: int) -> int:
        """The ini flags with this example's inline directives applied, as doctest does."""
        for flag, on in self.options.items():
            optionflags = optionflags | flag if on else optionflags & ~flag
        return optionflags

    def skipped(self, optionflags: int) -> bool:
        """``+SKIP``: doctest does not run it (and does not check it)."""
        return bool(self.flags(optionflags) & doctest.SKIP)


def is_transcript(source: str) -> bool:
    """A ```python block that is a doctest transcript: its first line that is neither blank
    nor a ``#`` comment is ``>>> `` (a heading comment does not make examples code)."""
    for line in source.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            return line.lstrip().startswith(">>> ") or text == ">>>"
    return False


def parse_examples(source: str, first_line: int) -> List[Example]:
    """The examples of a block's content whose first line is Markdown line ``first_line``."""
    try:
        parts = _PARSER.parse(source, "<transcript>")
    except ValueError as exc:
        found = _DOCTEST_LINE.match(str(exc))
        if found is None:
            raise TranscriptError(first_line, str(exc)) from None
        line = first_line + int(found.group(1)) - 1
        raise TranscriptError(
            line, f"doctest cannot parse this example: {found.group(2)}"
        ) from None
    examples = []
    for part in parts:
        if not isinstance(part, doctest.Example):
            continue
        line = first_line + part.lineno
        want_start = line + part.source.count("\n")
        examples.append(
            Example(
                source=part.source,
                want=part.want,
                line=line,
                want_start=want_start,
                want_end=want_start + part.want.count("\n"),
                indent=part.indent,
                options=dict(part.options),
            )
        )
    return examples


def optionflags_from_ini(names: Sequence[str]) -> int:
    """ini ``doctest_optionflags`` (names, as pytest reads them) -> doctest's bit flags."""
    known: Dict[str, int] = dict(doctest.OPTIONFLAGS_BY_NAME)
    known["COMPARISON_FLAGS"] = doctest.COMPARISON_FLAGS
    flags = 0
    for name in names:
        if name not in known:
            raise ValueError(
                f"doctest_optionflags: unknown flag {name!r}; known flags: "
                + ", ".join(sorted(known))
            )
        flags |= known[name]
    return flags


def check(want: str, result: Result, optionflags: int) -> Optional[str]:
    """None when ``result`` matches ``want`` by doctest's rules, else doctest's report of it.

    ``optionflags`` are the example's effective flags (``Example.flags``). An exception is
    compared by its last line (``Result.exception``) against the expected one, as doctest does;
    the output printed before it does not count then.
    """
    checker = _Checker()
    example = doctest.Example("\n", want)
    got = result.output
    if got and not got.endswith("\n"):  # doctest cannot express a missing final newline
        got += "\n"
    expected_exception = _EXCEPTION_RE.match(want)
    if not result.exception:
        if checker.check_output(want, got, optionflags):
            return None
        return checker.output_difference(example, got, optionflags)
    if expected_exception is None:
        return "Exception raised:\n" + _indent(result.traceback or result.exception)
    exc_msg = expected_exception.group("msg")
    if checker.check_output(exc_msg, result.exception, optionflags):
        return None
    if optionflags & doctest.IGNORE_EXCEPTION_DETAIL and checker.check_output(
        _strip_exception_details(exc_msg),
        _strip_exception_details(result.exception),
        optionflags,
    ):
        return None
    return checker.output_difference(example, got + result.traceback, optionflags)


def want_lines(result: Result, indent: int = 0, previous: Sequence[str] = ()) -> List[str]:
    """What update mode writes as an example's expected lines so that doctest then passes.

    Blank lines become ``<BLANKLINE>``; an exception becomes doctest's short form (header,
    ``...``, the exception line), since the frames change with every edit of the document.
    When the ``previous`` expected lines showed a traceback too, its header and frames stay
    as written (doctest ignores them): only the exception lines change.
    """
    if result.exception:
        text = "Traceback (most recent call last):\n    ...\n" + result.exception
        written = "".join(line + "\n" for line in previous)
        shown = _EXCEPTION_RE.match(written)
        if shown is not None:
            text = written[: shown.start("msg")] + result.exception
    else:
        text = result.output
    lines = text.splitlines()
    pad = " " * indent
    return [pad + (line if line.strip() else "<BLANKLINE>") for line in lines]


def _indent(text: str) -> str:
    return re.sub("(?m)^(?!$)", "    ", text)


class _Checker(doctest.OutputChecker):
    """doctest's checker plus pytest's ``NUMBER``, ``ALLOW_UNICODE`` and ``ALLOW_BYTES``."""

    _unicode_literal = re.compile(r"(\W|^)[uU]([rR]?[\'\"])")
    _bytes_literal = re.compile(r"(\W|^)[bB]([rR]?[\'\"])")
    _number = re.compile(
        r"""
        (?P<number>
          (?P<mantissa>
            (?P<integer1> [+-]?\d*)\.(?P<fraction>\d+)
            |
            (?P<integer2> [+-]?\d+)\.
          )
          (?:[Ee](?P<exponent1> [+-]?\d+))?
          |
          (?P<integer3> [+-]?\d+)
          (?:[Ee](?P<exponent2> [+-]?\d+))
        )
        """,
        re.VERBOSE,
    )

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        if super().check_output(want, got, optionflags):
            return True
        if not optionflags & (ALLOW_UNICODE | ALLOW_BYTES | NUMBER):
            return False
        if optionflags & ALLOW_UNICODE:
            want = self._unicode_literal.sub(r"\1\2", want)
            got = self._unicode_literal.sub(r"\1\2", got)
        if optionflags & ALLOW_BYTES:
            want = self._bytes_literal.sub(r"\1\2", want)
            got = self._bytes_literal.sub(r"\1\2", got)
        if optionflags & NUMBER:
            got = self._without_unwanted_precision(want, got)
        return super().check_output(want, got, optionflags)

    def _without_unwanted_precision(self, want: str, got: str) -> str:
        wants = list(self._number.finditer(want))
        gots = list(self._number.finditer(got))
        if len(wants) != len(gots):
            return got
        offset = 0
        for w, g in zip(wants, gots):
            fraction = w.group("fraction")
            exponent = w.group("exponent1") or w.group("exponent2")
            precision = 0 if fraction is None else len(fraction)
            if exponent is not None:
                precision -= int(exponent)
            if abs(float(w.group()) - float(g.group())) <= 10**-precision:
                got = got[: g.start() + offset] + w.group() + got[g.end() + offset :]
                offset += w.end() - w.start() - (g.end() - g.start())
        return got
