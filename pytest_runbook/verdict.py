"""Did a cell do what its document says? A pure judgement: outcomes in, a verdict out.

``judge`` looks at what a cell's run gave (one outcome per console command, one for any other
cell) and returns ``Passed``, ``Rewrite`` (update mode: the edits to queue) or ``Failure``,
a frozen description that ``report`` renders for a person. Nothing here runs, raises to
report, or imports pytest: control flow never depends on the wording of a message.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

from . import report
from .languages import UnknownLanguage, language_of
from .matching import Mismatch, check
from .model import Block, Cell, Command, ExitSpec, Result


@dataclass(frozen=True)
class Outcome:
    """What one piece of a cell gave: the console command it was (None: the whole cell)."""

    command: Optional[Command]
    result: Result


@dataclass(frozen=True)
class Passed:
    """The cell did what the document says."""


@dataclass(frozen=True)
class Edit:
    """One update-mode change: replace lines [start, end) with ``lines``, or insert after
    the cell's fence block (``insert``); for a notebook cell, its fresh ``outputs`` instead."""

    lines: Tuple[str, ...]
    block: Block
    start: int = 0
    end: int = 0
    insert: bool = False
    outputs: Optional[Tuple[Mapping[str, Any], ...]] = None  # nbformat output dicts


@dataclass(frozen=True)
class Rewrite:
    """Update mode: the cell passes once these edits are written into the Markdown."""

    edits: Tuple[Edit, ...]


@dataclass(frozen=True)
class Failure:
    """Why a cell failed, as data; ``report.render`` turns it into text."""

    kind: str  # "status", "output", "background", "setup" (a prerequisite), "teardown"
    path: str  # the document as a person reads it
    line: int  # 0-based line the report points at
    headline: str
    cell: Cell  # what to show: the cell, or a stand-in holding one console command
    result: Optional[Result]
    expected_exit: str = "0"
    diff: Optional[str] = None
    show_output: bool = False
    highlight: Optional[int] = None  # 0-based line marked with ">" in the source
    notes: Tuple[str, ...] = ()


Verdict = Union[Passed, Rewrite, Failure]

UNWRITABLE_NOTE = (
    " (update mode left it alone: no expected output written into the Markdown would match "
    "this output again)"
)
_PIPE = re.compile(r"(?<![|>])\|(?![|&])")  # a pipe, not `||`, `|&` or `>|`
_PIPEFAIL_NOTE = (
    "Shell cells run with `set -o pipefail`, as in Runme: a pipeline fails when any of its "
    "commands fails, not only the last one (`cmd | head` fails with 141 when `cmd` is cut off)."
)
_SPACE = re.compile(r"\s+")


def judge(
    cell: Cell,
    outcomes: Sequence[Outcome],
    *,
    path: str,
    update: Optional[str],
    substitutions: Mapping[str, str],
    background_log: str = "",
    doctest_flags: int = 0,
) -> Verdict:
    """The verdict on ``cell`` given what its run gave.

    ``update`` is the run's update mode (None, "changed", "new"); xfail cells are never
    rewritten (that would turn them into XPASS). ``substitutions`` are the placeholders
    ([CWD], [TMP], ...) expected output may use; ``background_log`` is the tail of what the
    file's background cells printed, a note for any failure.
    """
    judging = _Judging(cell, path, update if cell.options.xfail is None else None, substitutions)
    judging.background_log = background_log
    judging.doctest_flags = doctest_flags
    if not outcomes:
        return Passed()
    if outcomes[0].command is not None:  # a console block, judged command by command
        return judging.console(outcomes)
    return judging.whole(outcomes[0].result)


def judge_setup(cell: Cell, outcomes: Sequence[Outcome], *, path: str, role: str) -> Verdict:
    """A cell run for another's sake: as setup (``role`` "setup for 'x'") or at teardown.

    Only the status counts; its output is not compared (it is shown when it failed).
    """
    last = outcomes[-1] if outcomes else None
    if last is None or cell.options.xfail is not None:
        return Passed()
    exit_spec = last.command.exit if last.command else cell.options.exit
    if finished_ok(last.result, exit_spec):
        return Passed()
    why = explain(last.result, exit_spec, cell.options.timeout)
    if role == "teardown":
        kind, headline = "teardown", f"teardown cell {cell.name!r}, run at the end of the file"
    else:
        kind, headline = "setup", f"earlier cell {cell.name!r}, run as {role}"
    return Failure(
        kind=kind,
        path=path,
        line=cell.line,
        headline=f"{headline}, failed: {why}",
        cell=cell,
        result=last.result,
        expected_exit=str(exit_spec),
        show_output=True,
        notes=(last.result.note,),
    )


class _Judging:
    def __init__(
        self, cell: Cell, path: str, update: Optional[str], substitutions: Mapping[str, str]
    ) -> None:
        self.cell = cell
        self.path = path
        self.update = update
        self.substitutions = substitutions
        self.background_log = ""
        self.doctest_flags = 0

    # -- a whole cell -----------------------------------------------------------------------

    def whole(self, result: Result) -> Verdict:
        cell = self.cell
        options = cell.options
        if options.background:
            # A quick exit with a status the cell declares (exit=3) is what the page said
            # would happen, as the failure report's own hint promises; a running job is 0.
            quick_exit = result.status != 0 and not options.exit.accepts(result.status or 0)
            if result.status is None or result.timed_out or quick_exit:
                why = explain(result, options.exit, options.timeout)
                if options.ready and result.timed_out:
                    why = (
                        f"printed nothing matching ready={options.ready!r} "
                        f"within {options.timeout:g} s"
                    )
                headline = f"background cell did not come up: {why}"
                return self.failure("background", headline, result, show_output=True)
            return Passed()
        expected = cell.expected
        mismatch = None
        if expected is not None:
            mismatch = output_mismatch(cell, expected.lines, result, self.substitutions)
        if not finished_ok(result, options.exit):
            return self.failure(
                "status",
                explain(result, options.exit, options.timeout),
                result,
                diff=mismatch.diff() if mismatch else None,
                show_output=mismatch is None,
            )
        if expected is not None and mismatch is not None:
            block = expected.block
            if self.update and cell.notebook_index is not None:
                return Rewrite((Edit((), block, outputs=tuple(result.kernel_outputs)),))
            if self.update:
                from .rewrite import expected_for  # only when update mode writes

                new_lines = expected_for(
                    result.output,
                    self.substitutions,
                    mode=expected.match,
                    ansi_keep=expected.ansi_keep,
                    previous=expected.lines,
                )
                if new_lines is not None:
                    edit = Edit(tuple(new_lines), block, block.content_start, block.content_end)
                    return Rewrite((edit,))
            expected_at = f"the output block at {self.path}:{block.fence_line + 1}"
            if cell.notebook_index is not None:
                expected_at = f"the outputs stored in {self.path} (cells[{cell.notebook_index}])"
            return self.failure(
                "output",
                f"output differs from {expected_at}: {mismatch.reason}"
                + (UNWRITABLE_NOTE if self.update else ""),
                result,
                diff=mismatch.diff(),
            )
        if expected is None and self.update == "new" and cell.block is not None:
            if cell.notebook_index is not None:  # a notebook cell saved without outputs
                outputs = tuple(result.kernel_outputs)
                return Rewrite((Edit((), cell.block, outputs=outputs),)) if outputs else Passed()
            ansi_keep = str(cell.attributes.get("ansi", "")).lower() == "keep"
            from .rewrite import expected_for  # only when update mode writes

            new_lines = expected_for(result.output, self.substitutions, ansi_keep=ansi_keep)
            if new_lines:
                return Rewrite((Edit(tuple(new_lines), cell.block, insert=True),))
        return Passed()

    # -- a console block, command by command ------------------------------------------------

    def console(self, outcomes: Sequence[Outcome]) -> Verdict:
        """Update mode rewrites a console block only when every command in it passed."""
        edits = []
        for outcome in outcomes:
            assert outcome.command is not None
            verdict = self.command(outcome.command, outcome.result)
            if isinstance(verdict, Failure):
                return verdict
            if isinstance(verdict, Edit):
                edits.append(verdict)
        return Rewrite(tuple(edits)) if edits and self.cell.block is not None else Passed()

    def command(self, command: Command, result: Result) -> Optional[Union[Edit, Failure]]:
        cell = self.cell
        if _checker(cell) == "doctest":
            return self.example(command, result)
        mismatch = output_mismatch(cell, command.expected, result, self.substitutions)
        # Update mode records a changed status as cram -i does: `[N]` under the output.
        new_status = status_recordable(self.update, cell, command, result)
        if not new_status and not finished_ok(result, command.exit):
            return self.failure(
                "status",
                f"command {_first_line(command.source)!r} failed: "
                f"{explain(result, command.exit, cell.options.timeout)}",
                result,
                diff=mismatch.diff() if mismatch else None,
                show_output=mismatch is None,
                command=command,
            )
        if mismatch is None and not new_status:
            return None
        new_lines = None
        if mismatch is None:  # only the status changed: keep the output as written
            new_lines = list(command.expected)
        elif self.update and cell.block is not None:
            from .rewrite import expected_for  # only when update mode writes

            new_lines = expected_for(
                result.output, self.substitutions, console=True, previous=command.expected
            )
        if new_lines is not None:
            assert cell.block is not None
            end = command.expected_end
            if new_status:
                end = end if command.status_line is None else command.status_line + 1
                if result.status:
                    new_lines.append(f"[{result.status}]")
            return Edit(tuple(new_lines), cell.block, command.expected_start, end)
        assert mismatch is not None
        return self.failure(
            "output",
            f"command {_first_line(command.source)!r}: output differs: {mismatch.reason}"
            + (UNWRITABLE_NOTE if self.update else ""),
            result,
            diff=mismatch.diff(),
            command=command,
        )

    def example(self, command: Command, result: Result) -> Optional[Union[Edit, Failure]]:
        """A ``>>>`` example, by doctest's rules: an exception is output like any other (its
        traceback header and last line are compared), so only a run that did not finish
        fails on its status."""
        cell = self.cell
        if result.status is None or result.timed_out:
            return self.failure(
                "status",
                f"example {_first_line(command.source)!r} failed: "
                f"{explain(result, command.exit, cell.options.timeout)}",
                result,
                show_output=True,
                command=command,
            )
        flags = example_flags(command, self.doctest_flags)
        from . import doctests  # doctest only for ```pycon transcripts

        difference = doctests.check(_want(command), result, flags)
        if difference is None:
            return None
        if self.update and cell.block is not None:
            lines = doctests.want_lines(result, command.indent, command.expected)
            return Edit(tuple(lines), cell.block, command.expected_start, command.expected_end)
        return self.failure(
            "output",
            f"example {_first_line(command.source)!r}: output differs (doctest rules)",
            result,
            diff=difference,
            command=command,
        )

    # -- the failure, with what helps a reader ----------------------------------------------

    def failure(
        self,
        kind: str,
        headline: str,
        result: Result,
        *,
        diff: Optional[str] = None,
        show_output: bool = False,
        command: Optional[Command] = None,
    ) -> Failure:
        cell = self.cell
        exit_spec = command.exit if command else cell.options.exit
        notes = [result.note, report.answers_note(cell.options.answers), self.background_log]
        if result.waiting_for_input:
            notes.append(_literal_prompt_note(cell, result.output))
        if result.stderr.strip():
            notes.append(
                "stderr (not compared: doctest compares what an example prints to stdout):\n"
                + report.tail(result.stderr)
            )
        source = command.source if command is not None else cell.source
        failed_status = bool(result.status) and not exit_spec.accepts(result.status or 0)
        if failed_status and _under_pipefail(cell) and pipefail_was_why(result, source):
            notes.append(_pipefail_note(result.pipe_status))
        if command is not None and failed_status and _checker(cell) != "doctest":
            # A transcript declares a status under the command, not with exit= on the block.
            notes.append(
                f"If exit status {result.status} is what this command should give, write "
                f"[{result.status}] as the last line of its expected output "
                "(--runbook-update writes it)."
            )
        highlight = command.line if command is not None else None
        stopped = result.failed_command.strip()
        if command is None and stopped and failed_status:
            first = stopped.split("\n", 1)[0]
            source_lines = cell.source.split("\n")
            spans = [(i, written_span(line, first)) for i, line in enumerate(source_lines)]
            hits = [(i, span) for i, span in spans if span is not None]
            where = ""
            if len(hits) == 1:
                number, (start, end) = hits[0]
                highlight = cell.source_line + number
                where = f" ({self.path}:{highlight + 1})"
                text = source_lines[number]
                # bash shows a command re-spaced (`echo "a   b"  >x` as `echo "a   b" > x`):
                # quote it as the document has it.
                stopped = text[start:end]
                if _PIPE.search(text[:start]):
                    # bash names the last command of a pipeline; any of them may have failed.
                    stopped = text.strip()
            notes.insert(
                0,
                f"The cell stopped at `{_clip(stopped)}`{where}: errexit ends a cell "
                "at its first failing command.",
            )
        if command is None and failed_status and _session_kind(cell) == "shell":
            if exit_spec.value == "0":
                notes.append(
                    f"If exit status {result.status} is what this cell should give, add "
                    f"exit={result.status} to its attributes ({{exit={result.status}}} after the "
                    "language; exit=any accepts every status)."
                )
            else:  # "add" would leave the reader with two exit= attributes
                notes.append(
                    f"If exit status {result.status} is what this cell should give, change its "
                    f"exit={exit_spec} to exit={result.status} (exit=any accepts every status)."
                )
        shown, line = cell, cell.line
        if command is not None:
            shown, line = command_cell(cell, command), command.line
        else:
            headline = f"cell {cell.name!r} {headline}"
            if result.raised_at is not None and failed_status:  # the statement that raised
                line = highlight = result.raised_at
        return Failure(
            kind=kind,
            path=self.path,
            line=line,
            headline=headline,
            cell=shown,
            result=result,
            expected_exit=str(exit_spec),
            diff=diff,
            show_output=show_output,
            highlight=highlight,
            notes=tuple(notes),
        )


def _literal_prompt_note(cell: Cell, output: str) -> str:
    """An ``expect`` whose text the output shows but whose regex does not match it: the
    prompt's ``?``, ``(`` or ``[`` was read as regex syntax ("Are you sure? ")."""
    for answer in cell.options.answers:
        try:
            matched = re.search(answer.expect, output) is not None
        except re.error:
            continue
        if not matched and answer.expect in output:
            # re.escape would escape every space too; only regex syntax needs it here.
            escaped = re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", answer.expect)
            escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')  # YAML "..."
            return (
                f"The prompt {answer.expect!r} is in the output as written, but expect is a "
                "regular expression, and as one it does not match that text: escape it, "
                f'expect: "{escaped}" in the directive.'
            )
    return ""


# -- the rules, shared with the runner (which stops a console block where a verdict would) ----


def finished_ok(result: Result, exit_spec: ExitSpec) -> bool:
    return (
        result.status is not None
        and not result.timed_out
        and not result.waiting_for_input
        and not result.incomplete
        # `exit N` ends the shell, and N is the cell's status, as in Runme's script; the
        # next cell gets a fresh shell (with a note).
        and not result.replaced
        and exit_spec.accepts(result.status)
    )


def status_recordable(update: Optional[str], cell: Cell, command: Command, result: Result) -> bool:
    """Update mode may write this console command's new status as ``[N]`` (and then go on
    with the block): never for xfail cells, a cell's own ``exit=``, or a block it cannot
    rewrite. Anything else that did not finish as declared stops the block."""
    return (
        update is not None
        and cell.options.xfail is None
        and cell.block is not None
        and (command.status_line is not None or cell.options.exit == ExitSpec())
        and _finished_but_for_status(result, command.exit)
    )


def _finished_but_for_status(result: Result, exit_spec: ExitSpec) -> bool:
    """The command ran to its end in the same shell, with a status the document does not
    expect: update mode can record that status."""
    return (
        result.status is not None
        and not exit_spec.accepts(result.status)
        and not result.timed_out
        and not result.waiting_for_input
        and not result.incomplete
        and not result.replaced  # `exit N` counts: N is the command's status
    )


def output_mismatch(
    cell: Cell, expected: Tuple[str, ...], result: Result, substitutions: Mapping[str, str]
) -> Optional[Mismatch]:
    match, ansi_keep = ("exact", False)
    if cell.expected is not None:
        match, ansi_keep = cell.expected.match, cell.expected.ansi_keep
    return check(
        expected, result.output, mode=match, substitutions=substitutions, ansi_keep=ansi_keep
    )


def console_goes_on(
    update: Optional[str],
    cell: Cell,
    command: Command,
    result: Result,
    substitutions: Mapping[str, str],
    doctest_flags: int = 0,
) -> bool:
    """Whether a console block runs its next command: not after one that failed (unless
    update mode records its status) nor, outside update mode, after one whose output
    differs (the verdict fails there; what follows would run on a broken premise). A
    doctest transcript stops at its first failing example, as pytest's doctest does."""
    if _checker(cell) == "doctest":
        if result.status is None or result.timed_out:
            return False
        flags = example_flags(command, doctest_flags)
        from . import doctests

        return bool(update) or doctests.check(_want(command), result, flags) is None
    if not finished_ok(result, command.exit) and not status_recordable(
        update, cell, command, result
    ):
        return False
    return bool(update) or output_mismatch(cell, command.expected, result, substitutions) is None


def explain(result: Result, exit_spec: ExitSpec, timeout: float) -> str:
    """Why a result is not a finished run with an accepted status, in words."""
    if result.timed_out:
        if result.session_lost:
            return f"timed out after {timeout:g} s (stopping it ended the session; state is lost)"
        return f"timed out after {timeout:g} s (interrupted; the session carries on)"
    if result.waiting_for_input:
        return (
            "waiting for input that the document does not provide "
            '(give it with stdin="..." or an answers directive)'
        )
    if result.incomplete:
        return "the shell was left waiting for more input (unterminated quote, heredoc or brace)"
    if result.shell_exited is not None:
        return (
            f"the shell exited with status {result.shell_exited}; "
            "the next cell starts a fresh session without this file's earlier state"
        )
    if result.replaced:
        return (
            "replaced the shell (`exec`); "
            "the next cell starts a fresh session without this file's earlier state"
        )
    status = result.status
    if status is None:
        return "did not finish: its session ended during it (see below)"
    raised = f"raised {result.exception.strip()}, " if result.exception.strip() else ""
    if exit_spec.value == "0":
        return f"{raised}exit status {status}"
    return f"{raised}exit status {status}, expected {exit_spec}"


def command_cell(cell: Cell, command: Command) -> Cell:
    """A stand-in cell holding just one console command, so its lines number right."""
    lines = command.source.split("\n")
    first, more = (">>> ", "... ") if _checker(cell) == "doctest" else ("$ ", "> ")
    shown = "\n".join((first if i == 0 else more) + line for i, line in enumerate(lines))
    return replace(cell, source=shown, source_line=command.line)


def example_flags(command: Command, optionflags: int) -> int:
    """The run's doctest flags with an example's inline ``# doctest:`` directives applied."""
    for flag, on in command.doctest_options:
        optionflags = optionflags | flag if on else optionflags & ~flag
    return optionflags


def _want(command: Command) -> str:
    return "".join(line + "\n" for line in command.expected)


def _session_kind(cell: Cell) -> str:
    try:
        return language_of(cell).session or ""
    except UnknownLanguage:
        return ""


def _checker(cell: Cell) -> str:
    try:
        return language_of(cell).checker
    except UnknownLanguage:
        return "runbook"


def pipefail_was_why(result: Result, source: str) -> bool:
    """Whether ``set -o pipefail`` may be why the cell failed: a pipeline failed although its
    last command succeeded. Without the ERR trap's ``PIPESTATUS`` (a script cell), any pipe
    in the source may be."""
    statuses = result.pipe_status
    if len(statuses) > 1:
        return statuses[-1] == 0 and any(statuses)
    if statuses:  # one command failed; it holds a pipeline only inside, as in `x=$(a | b)`
        return _PIPE.search(result.failed_command) is not None
    return _PIPE.search(source) is not None


def _pipefail_note(statuses: Tuple[int, ...]) -> str:
    if len(statuses) < 2:
        return _PIPEFAIL_NOTE
    shown = " ".join(str(status) for status in statuses)
    return f"{_PIPEFAIL_NOTE[:-1]}; here its commands ended with {shown} (`PIPESTATUS`)."


def written_span(line: str, command: str) -> Optional[Tuple[int, int]]:
    """Where ``command`` (as bash shows it, spacing its own) is in ``line`` as written: the
    [start, end) of the first match that ignores whitespace and is not part of a longer
    word (``ls`` is not in ``false``), or None."""
    wanted = _SPACE.sub("", command)
    if not wanted:
        return None
    kept = [i for i, char in enumerate(line) if not char.isspace()]
    squeezed = "".join(line[i] for i in kept)
    found = squeezed.find(wanted)
    while found >= 0:
        start, end = kept[found], kept[found + len(wanted) - 1] + 1
        if not (_word_char(wanted[0]) and start > 0 and _word_char(line[start - 1])) and not (
            _word_char(wanted[-1]) and end < len(line) and _word_char(line[end])
        ):
            return start, end
        found = squeezed.find(wanted, found + 1)
    return None


def _word_char(char: str) -> bool:
    return char.isalnum() or char in "_-."


def _under_pipefail(cell: Cell) -> bool:
    try:
        return language_of(cell).pipefail
    except UnknownLanguage:
        return False


def _first_line(source: str) -> str:
    return source.split("\n", 1)[0]


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
