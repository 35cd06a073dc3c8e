"""FileRun without pytest: cells in order on real sessions, replay, prefetch, HOME, the table."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from pytest_runbook import languages
from pytest_runbook.document import parse
from pytest_runbook.languages import LANGUAGES, Language, UnknownLanguage, language_of
from pytest_runbook.runner import FileRun, RunError, RunSettings
from pytest_runbook.verdict import Failure, Passed

DOC = """
    ```sh {name=FIRST}
    echo one
    export KEEP=kept
    ```

    ```sh {name=second}
    echo "$__ $FIRST $KEEP"
    ```

    ```sh {name=reads stdin="typed\\n"}
    read line && echo "got $line"
    ```

    ```console
    $ echo a
    a
    $ false
    $ echo never
    never
    ```
"""


def make_run(tmp_path: Path, text: str = DOC, **settings: object) -> Iterator[FileRun]:
    document = parse(textwrap.dedent(text).lstrip("\n"), "doc.md")
    run = FileRun(
        document,
        "doc.md",
        str(tmp_path),
        RunSettings(env={}, columns=80, update=None, root=str(tmp_path), **settings),  # type: ignore[arg-type]
    )
    try:
        yield run
    finally:
        run.close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[FileRun]:
    yield from make_run(tmp_path)


def cells(run: FileRun, *names: str) -> list:  # type: ignore[type-arg]
    by_name = {c.name: c for c in run.document.cells}
    return [by_name[n] for n in names]


def test_cells_share_one_shell_and_runme_exports(run: FileRun) -> None:
    first, second = cells(run, "FIRST", "second")
    assert run.run(first)[0].result.status == 0
    (outcome,) = run.run(second)
    assert outcome.result.output == "one one kept\n"
    assert run.judge(second, [outcome]) == Passed()


def test_console_blocks_stop_at_the_first_failing_command(run: FileRun) -> None:
    console = run.document.cells[3]
    outcomes = run.run(console)
    assert [o.command.source for o in outcomes if o.command] == ["echo a", "false"]
    failure = run.judge(console, outcomes)
    assert isinstance(failure, Failure)
    assert failure.headline == "command 'false' failed: exit status 1"


def test_prerequisites_skip_what_ran_and_what_the_selection_excluded(run: FileRun) -> None:
    first, second, reads, console = run.document.cells
    run.excluded = {second.index: None, reads.index: "cannot tell (test)"}
    assert run.prerequisites(console) == [first]
    assert run.undecided_before(console) == [(reads, "cannot tell (test)")]
    assert run.run_prerequisite(first, "console") is None
    assert run.prerequisites(console) == []


def test_a_failing_prerequisite_is_a_setup_failure_and_on_failure_stop_stops(
    tmp_path: Path,
) -> None:
    text = "---\non-failure: stop\n---\n\n```sh {name=broken}\nexit 4\n```\n\n```sh\necho\n```\n"
    for run in make_run(tmp_path, text):
        failure = run.run_prerequisite(run.document.cells[0], "later")
        assert isinstance(failure, Failure) and failure.kind == "setup"
        assert run.stopped_by == "broken"


def test_plain_consecutive_cells_are_prefetched_and_run_once(run: FileRun) -> None:
    first, second, reads, console = run.document.cells
    assert not run.prefetchable(first)  # no session yet: nothing to overlap with
    run.run(first)
    assert run.prefetchable(second)
    run.prefetch(second)
    assert not run.prefetchable(second)  # one at a time
    assert run.run(second)[0].result.output == "one one kept\n"
    assert not run.prefetchable(reads)  # input to feed: runs when its item runs
    assert not run.prefetchable(console)  # `reads` comes first
    run.excluded = {reads.index: None}
    assert not run.prefetchable(reads)
    assert run.prefetchable(console)


@pytest.mark.parametrize(
    "block",
    [
        "```console\n$ touch first\n$ false\n$ touch never\n```\n",
        "```pycon\n>>> open('first', 'w').close()\n>>> assert False\n"
        ">>> open('never', 'w').close()\n```\n",
    ],
    ids=["console", "pycon"],
)
def test_a_transcript_starts_only_its_first_command_early(tmp_path: Path, block: str) -> None:
    # Whether its later commands run depends on the earlier ones' results.
    text = "```sh\ntrue\n```\n\n```python {name=py}\npass\n```\n\n" + block
    for run in make_run(tmp_path, text):
        shell_cell, python_cell, transcript = run.document.cells
        run.run(shell_cell)
        run.run(python_cell)
        assert run.prefetchable(transcript)
        run.prefetch(transcript)
        for _ in range(100):  # it runs while the caller does something else
            if (tmp_path / "first").exists():
                break
            time.sleep(0.02)
        assert (tmp_path / "first").exists() and not (tmp_path / "never").exists()
        outcomes = run.run(transcript)
        assert [o.command.line for o in outcomes if o.command] == [
            c.line for c in transcript.commands[:2]
        ]
        assert not (tmp_path / "never").exists()
        assert outcomes[0].result.status in (0, None) and len(outcomes) == 2


def test_a_prefetched_cell_whose_item_never_ran_is_not_run_again(run: FileRun) -> None:
    first, second, _, console = run.document.cells
    run.run(first)
    run.prefetch(second)
    run.run(console)  # something else ran first: `second` already ran, never again
    assert second not in run.prerequisites(console)


def test_home_tmp_gives_a_fresh_home_removed_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = '```sh\necho "$HOME"; ls -A "$HOME"; echo "${XDG_CONFIG_HOME:-unset}"\n```\n'
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    for run in make_run(tmp_path, text, home="tmp"):
        home, xdg = run.run(run.document.cells[0])[0].result.output.split("\n")[:2]
        assert home != os.environ["HOME"] and os.path.isdir(home)
        assert xdg == "unset"  # nothing points tools back at the user's own files
    assert not os.path.exists(home)


def test_early_start_is_adopted_by_the_first_cell(run: FileRun) -> None:
    run.start_early()
    started = run.session_for(run.document.cells[0])
    run.run(run.document.cells[0])
    assert run.session_for(run.document.cells[1]) is started


def test_a_bad_cwd_and_a_missing_interpreter_are_reported_not_run(tmp_path: Path) -> None:
    text = "```sh {cwd=nowhere}\ntrue\n```\n\n```sh {interpreter=no-such-interp-xyz}\ntrue\n```\n"
    for run in make_run(tmp_path, text):
        with pytest.raises(RunError, match=r"^doc.md:1: cell .* cwd 'nowhere' is not a dir"):
            run.run(run.document.cells[0])
        with pytest.raises(RunError, match="needs 'no-such-interp-xyz', which is not installed"):
            run.run(run.document.cells[1])


def test_the_table_decides_which_session_runs_a_cell(run: FileRun) -> None:
    first, _, _, console = run.document.cells
    assert language_of(first).session_key(first) == "shell"
    assert language_of(console).piecewise
    with pytest.raises(UnknownLanguage):
        language_of(dataclasses.replace(first, kind="cobol"))


def test_a_new_kind_of_session_is_one_row(run: FileRun, monkeypatch: pytest.MonkeyPatch) -> None:
    # A family served per name (as Jupyter kernels will be): each "demo:NAME" its own
    # session. Here the factory is the shell's, so each name gets its own bash.
    monkeypatch.setitem(
        LANGUAGES, "demo", Language(kind="demo", session=None, factory=languages._shell)
    )
    first = run.document.cells[0]
    other = dataclasses.replace(first, kind="demo:b", source="echo ${KEEP:-none}", name="b")
    run.run(first)
    assert run.run(other)[0].result.output == "none\n"  # a separate session
    assert run.session_for(other) is not run.session_for(first)


def test_runner_verdict_options_and_languages_import_nothing_from_pytest() -> None:
    code = (
        "import sys\n"
        "import pytest_runbook.runner, pytest_runbook.verdict\n"
        "import pytest_runbook.options, pytest_runbook.languages\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
