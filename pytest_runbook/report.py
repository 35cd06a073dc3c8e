"""Failure text: where (path:LINE), what ran (numbered Markdown lines), diff, status, time.

``render`` turns a ``verdict.Failure`` (data) into what a person reads.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

from .model import Answer, Cell, Result

if TYPE_CHECKING:
    from .verdict import Failure

_MAX_OUTPUT_LINES = 60


def numbered_source(cell: Cell, highlight: Optional[int] = None) -> str:
    """The cell's source with the Markdown file's own 1-based line numbers."""
    lines = cell.source.split("\n")
    width = len(str(cell.source_line + len(lines)))
    out = []
    for offset, line in enumerate(lines):
        number = cell.source_line + offset
        marker = ">" if highlight is not None and number == highlight else " "
        out.append(f"{marker}{number + 1:>{width}} | {line}")
    return "\n".join(out)


def tail(output: str, limit: int = _MAX_OUTPUT_LINES) -> str:
    """The end of an output: the part a person reads first when a command fails."""
    lines = output.rstrip("\n").split("\n") if output.strip() else []
    if not lines:
        return "(no output)"
    if len(lines) > limit:
        skipped = len(lines) - limit
        lines = [f"... ({skipped} earlier lines not shown)", *lines[-limit:]]
    return "\n".join(lines)


def status_line(result: Result, expected_exit: str) -> str:
    status = "none (did not finish)" if result.status is None else str(result.status)
    text = f"exit status: {status}"
    if expected_exit != "0":
        text += f" (expected {expected_exit})"
    return f"{text} · duration: {result.duration:.2f} s"


def answers_note(answers: Sequence[Answer]) -> str:
    """What a cell's scripted answers type, so a failure shows what went in at which prompt."""
    if not answers:
        return ""
    # The regex as written (a repr would double its backslashes); the text as Python shows it,
    # so spaces and escapes are visible.
    pairs = ", ".join(f"/{a.expect}/ -> {a.send!r}" for a in answers)
    return f"Answers (prompt regex -> text typed with Enter, in order): {pairs}"


def _failure_text(
    *,
    location: str,
    headline: str,
    cell: Cell,
    result: Optional[Result],
    expected_exit: str = "0",
    diff: Optional[str] = None,
    show_output: bool = False,
    highlight: Optional[int] = None,
    notes: Sequence[str] = (),
) -> str:
    """The whole report for one failed item, plain text that ends up in terminals and XML."""
    parts: List[str] = [f"{location}: {headline}", numbered_source(cell, highlight)]
    parts.extend(note for note in notes if note)
    if diff:
        parts.append(diff.rstrip("\n"))
    if result is not None:
        if result.traceback.strip() and not (diff and result.traceback.strip() in diff):
            parts.append(result.traceback.rstrip("\n"))
        if show_output:
            parts.append("output:\n" + tail(result.output))
        parts.append(status_line(result, expected_exit))
    # Output is lossless (invalid UTF-8 arrives as lone surrogates): show such bytes as \xff
    # escapes, or terminals and XML writers would turn the whole report into a repr().
    return "\n\n".join(parts).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def render(failure: Failure) -> str:
    """The report of a failure judged by ``verdict``."""
    return _failure_text(
        location=f"{failure.path}:{failure.line + 1}",
        headline=failure.headline,
        cell=failure.cell,
        result=failure.result,
        expected_exit=failure.expected_exit,
        diff=failure.diff,
        show_output=failure.show_output,
        highlight=failure.highlight,
        notes=failure.notes,
    )
