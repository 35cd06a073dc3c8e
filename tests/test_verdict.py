"""verdict.judge: outcomes in, Passed / Rewrite / Failure out; report.render prints a Failure."""

from __future__ import annotations

import textwrap

from pytest_runbook import report
from pytest_runbook.document import parse
from pytest_runbook.model import Cell, Result
from pytest_runbook.verdict import (
    Edit,
    Failure,
    Outcome,
    Passed,
    Rewrite,
    judge,
    judge_setup,
)

SUBS = {"[CWD]": "/work/here", "[TMP]": "/tmp/x", "[ROOT]": "/work"}


def cell_of(text: str, index: int = 0) -> Cell:
    return parse(textwrap.dedent(text).lstrip("\n"), "doc.md").cells[index]


def ran(output: str, status: int = 0, **kwargs: object) -> Result:
    return Result(output=output, status=status, duration=0.25, **kwargs)  # type: ignore[arg-type]


SHELL = """
    ```sh {name=greet}
    echo hello
    ```

    ```output
    hello
    ```
"""


def verdict(cell: Cell, *outcomes: Outcome, update: str | None = None) -> object:
    return judge(cell, outcomes, path="doc.md", update=update, substitutions=SUBS)


def test_matching_output_and_status_pass() -> None:
    cell = cell_of(SHELL)
    assert verdict(cell, Outcome(None, ran("hello\n"))) == Passed()


def test_a_different_output_is_a_failure_located_at_the_cell() -> None:
    cell = cell_of(SHELL)
    failure = verdict(cell, Outcome(None, ran("bye\n")))
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.line, failure.path) == ("output", 0, "doc.md")
    assert failure.headline.startswith(
        "cell 'greet' output differs from the output block at doc.md:5: "
    )
    text = report.render(failure)
    assert text.startswith("doc.md:1: cell 'greet' output differs from the output block at ")
    assert "\n 2 | echo hello\n" in text
    assert text.endswith("exit status: 0 · duration: 0.25 s")


def test_a_bad_status_fails_with_the_output_shown() -> None:
    cell = cell_of(SHELL)
    failure = verdict(cell, Outcome(None, ran("hello\n", status=3)))
    assert isinstance(failure, Failure)
    assert failure.kind == "status"
    assert failure.headline == "cell 'greet' exit status 3"
    assert failure.diff is None and failure.show_output


def test_update_mode_turns_a_mismatch_into_an_edit() -> None:
    cell = cell_of(SHELL)
    assert cell.expected is not None
    result = verdict(cell, Outcome(None, ran("bye\n")), update="changed")
    block = cell.expected.block
    assert result == Rewrite((Edit(("bye",), block, block.content_start, block.content_end),))


def test_update_new_adds_an_output_block_to_a_cell_without_one() -> None:
    cell = cell_of("```sh\necho new\n```\n")
    assert cell.block is not None
    result = verdict(cell, Outcome(None, ran("new\n")), update="new")
    assert result == Rewrite((Edit(("new",), cell.block, insert=True),))
    assert verdict(cell, Outcome(None, ran("new\n")), update="changed") == Passed()


def test_xfail_cells_are_never_rewritten() -> None:
    cell = cell_of(SHELL.replace("{name=greet}", "{name=greet xfail=flaky}"))
    assert isinstance(verdict(cell, Outcome(None, ran("bye\n")), update="changed"), Failure)


CONSOLE = """
    ```console
    $ echo one
    one
    $ echo two
    two
    ```
"""


def test_console_failures_point_at_the_command() -> None:
    cell = cell_of(CONSOLE)
    one, two = cell.commands
    failure = verdict(cell, Outcome(one, ran("one\n")), Outcome(two, ran("three\n")))
    assert isinstance(failure, Failure)
    assert failure.line == two.line == 3
    assert failure.headline.startswith("command 'echo two': output differs: ")
    assert report.render(failure).startswith("doc.md:4: command 'echo two': output differs")
    assert failure.cell.source == "$ echo two"


def test_console_update_rewrites_only_when_every_command_passed() -> None:
    cell = cell_of(CONSOLE)
    one, two = cell.commands
    changed = verdict(cell, Outcome(one, ran("1\n")), Outcome(two, ran("2\n")), update="changed")
    assert isinstance(changed, Rewrite)
    assert [e.lines for e in changed.edits] == [("1",), ("2",)]
    failed = verdict(
        cell, Outcome(one, ran("1\n")), Outcome(two, ran("", timed_out=True)), update="changed"
    )
    assert isinstance(failed, Failure) and failed.kind == "status"


def test_errexit_names_the_failing_line() -> None:
    cell = cell_of("```sh {name=steps}\ntrue\nfalse\necho after\n```\n")
    failure = verdict(cell, Outcome(None, ran("", status=1, failed_command="false")))
    assert isinstance(failure, Failure)
    assert failure.highlight == 2
    assert failure.notes[0] == (
        "The cell stopped at `false` (doc.md:3): errexit ends a cell at its first failing command."
    )
    assert ">3 | false" in report.render(failure)


def test_background_cells_only_have_to_come_up() -> None:
    cell = cell_of("```sh {name=server background=true ready=up}\nserve\n```\n")
    assert verdict(cell, Outcome(None, ran("anything"))) == Passed()
    failure = verdict(cell, Outcome(None, ran("", status=None, timed_out=True)))  # type: ignore[arg-type]
    assert isinstance(failure, Failure) and failure.kind == "background"
    assert failure.headline == (
        "cell 'server' background cell did not come up: printed nothing matching "
        "ready='up' within 60 s"
    )


def test_setup_and_teardown_verdicts_only_look_at_the_status() -> None:
    cell = cell_of(SHELL)
    assert judge_setup(cell, [Outcome(None, ran("bye\n"))], path="doc.md", role="x") == Passed()
    failure = judge_setup(
        cell, [Outcome(None, ran("", status=2))], path="doc.md", role="setup for 'later'"
    )
    assert isinstance(failure, Failure) and failure.kind == "setup"
    assert failure.headline == (
        "earlier cell 'greet', run as setup for 'later', failed: exit status 2"
    )
    teardown = judge_setup(cell, [Outcome(None, ran("", status=2))], path="doc.md", role="teardown")
    assert isinstance(teardown, Failure)
    assert teardown.headline == (
        "teardown cell 'greet', run at the end of the file, failed: exit status 2"
    )
