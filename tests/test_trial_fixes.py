"""Regressions a trial user met on realistic documents, end to end through pytester."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest


def test_myst_ipython3_code_cells_run_in_the_kernel(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    pytest.importorskip("jupyter_client", reason="the jupyter extra is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel (the Python kernel) is not installed")
    runbook(
        """
        ---
        jupytext:
          text_representation:
            format_name: myst
        kernelspec:
          display_name: Python 3 (ipykernel)
          language: ipython3
          name: python3
        ---

        ```{code-cell} ipython3
        import math
        print(math.sqrt(16))
        ```

        ```{code-cell} ipython
        :tags: [hide-input]

        %time x = sum(range(10))
        assert x == 46
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["doc.md::import-math PASSED*", "*AssertionError*"])


def test_ipython3_fences_are_python_cells(pytester: pytest.Pytester, runbook: Any) -> None:
    runbook(
        """
        ```ipython3 {name=first}
        print(6 * 7)
        ```

        ```output
        41
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*+42*"])


def test_a_code_cell_in_a_language_nothing_runs_is_a_warning(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```{code-cell} python
        print(1)
        ```

        ```{code-cell} r
        x <- 1
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*doc.md:5: RunbookWarning: {code-cell} r does not run: no session here runs r cells*"]
    )


def test_python_environ_changes_survive_shell_cells_unless_the_shell_changes_them(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```sh {name=shell-first}
        export SHARED=from-shell GONE=soon
        ```

        ```python {name=setup}
        import os
        os.environ["APP_MODE"] = "test"
        os.environ["SHARED"] = "from-python"
        os.environ["MINE"] = "python-only"
        ```

        ```sh {name=unrelated-shell-step}
        echo "$APP_MODE-$SHARED"
        unset GONE
        ```

        ```output
        -from-shell
        ```

        ```python {name=use}
        print(os.environ.get("APP_MODE"), os.environ.get("SHARED"), os.environ.get("GONE"))
        ```

        ```output
        test from-python None
        ```

        ```sh {name=shell-sets-shared}
        export SHARED=shell-again MINE=shell-too
        ```

        ```python {name=shell-wins-on-its-own-keys}
        print(os.environ["APP_MODE"], os.environ["SHARED"], os.environ["MINE"])
        ```

        ```output
        test shell-again shell-too
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=6)


def test_a_kernel_keeps_its_environ_changes_across_shell_cells(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    pytest.importorskip("jupyter_client", reason="the jupyter extra is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel (the Python kernel) is not installed")
    runbook(
        """
        ---
        kernel: python3
        ---

        ```sh {name=shell-first}
        export GONE=soon SHARED=from-shell
        ```

        ```python {name=setup}
        import os
        os.environ["APP_MODE"] = "test"
        ```

        ```sh {name=shell-step}
        unset GONE
        export SHARED=changed
        ```

        ```python {name=use}
        print(os.environ.get("APP_MODE"), os.environ.get("GONE"), os.environ["SHARED"])
        ```

        ```output
        test None changed
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=4)


DOCTESTS = """
    # lib

    Indented example:

        >>> 2 + 2
        5

    Fenced with a comment first:

    ```python
    # quick start
    >>> 3 + 3
    7

    ```

    A list item's example:

    - like this:

          >>> print("a")
          b
    """


def test_doctest_examples_after_a_comment_or_indented_are_checked(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(DOCTESTS)
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "doc.md:5: example '2 + 2': output differs (doctest rules)",
            "doc.md:12: example '3 + 3': output differs (doctest rules)",
            "doc.md:21: example 'print(\"a\")': output differs (doctest rules)",
        ],
        consecutive=False,
    )
    # an indented transcript is named as a fenced one is, never by Runme's "2-"
    result.stdout.fnmatch_lines(["FAILED doc.md::pycon - *"])
    result.stdout.no_fnmatch_line("*doc.md::2-*")


def test_update_mode_rewrites_an_indented_transcript_in_place(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    path = runbook(DOCTESTS)
    pytester.runpytest("doc.md", "--runbook-update").assert_outcomes(passed=3)
    text = path.read_text(encoding="utf-8")
    assert "    >>> 2 + 2\n    4\n" in text
    assert '      >>> print("a")\n      a\n' in text
    assert ">>> 3 + 3\n6\n" in text
    pytester.runpytest("doc.md").assert_outcomes(passed=3)


def test_a_typo_in_the_language_of_a_cell_with_attributes_is_a_warning(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```bahs {name=deploy}
        echo deploying
        ```

        ```yaml {"id":"01HF7BT3HD84GWTQB8ZY0GBA06"}
        key: value
        ```

        ```yaml {name=config}
        key: value
        ```

        ```toml {timeout=5}
        key = 1
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes()
    result.stdout.fnmatch_lines(
        [
            "*doc.md:1: RunbookWarning: fence language 'bahs' carries cell attributes but nothing "
            "runs it, so the block is documentation; did you mean bash? *",
            "*doc.md:13: RunbookWarning: fence language 'toml' carries cell attributes but "
            "nothing runs it, so the block is documentation; write a language that runs *",
        ]
    )
    assert "doc.md:5:" not in result.stdout.str() and "doc.md:9:" not in result.stdout.str()


def test_a_timeout_that_kills_the_python_session_says_so_in_its_headline(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```python {name=setup}
        state = 42
        ```

        ```python {name=stubborn timeout=1}
        import time
        while True:
            try:
                time.sleep(10)
            except BaseException:
                pass
        ```

        ```python {name=polite timeout=1}
        import time
        time.sleep(10)
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "doc.md:5: cell 'stubborn' timed out after 1 s "
            "(stopping it ended the session; state is lost)",
            "*the Python session was killed*",
            "doc.md:14: cell 'polite' timed out after 1 s (interrupted; the session carries on)",
        ]
    )
    assert "'stubborn' timed out after 1 s (interrupted; the session carries on)" not in (
        result.stdout.str()
    )


def test_a_background_cell_that_dies_at_once_fails_with_its_log(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```sh {name=svc background=true}
        echo "config error" >&2; exit 3
        ```

        ```sh {name=fine background=true}
        sleep 30
        ```

        ```sh {name=use}
        echo using svc
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md::svc FAILED*",
            "doc.md::fine PASSED*",
            "doc.md::use PASSED*",
            "doc.md:1: cell 'svc' background cell did not come up: exit status 3",
            "*The background cell exited with status 3 as soon as it started.",
            "background log of cell 'svc':",
            "config error",
        ]
    )


def test_a_background_process_that_dies_later_is_told_at_the_next_cell(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```sh {name=svc background=true}
        sleep 0.3; echo "lost the database" >&2; exit 4
        ```

        ```sh {name=meanwhile}
        sleep 1.5
        ```

        ```sh {name=stopped background=true}
        echo $BASHPID >stopped.pid; exec sleep 30
        ```

        ```sh {name=check}
        sleep 0.2; kill "$(cat stopped.pid)"; sleep 0.2
        false
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md::meanwhile",
            "  doc.md:5: RunbookWarning: cell 'meanwhile': background cell 'svc' (doc.md:1) "
            "exited with status 4 after it started; see its log.",
        ]
    )
    # told once, not again in the next cell's report; a job stopped with kill is not told
    assert result.stdout.str().count("exited with status 4") == 1
    assert "background cell 'stopped'" not in result.stdout.str()


def test_a_background_process_that_died_by_the_files_end_is_told(tmp_path: Path) -> None:
    from pytest_runbook.document import parse
    from pytest_runbook.runner import FileRun, RunSettings

    text = "```sh {name=svc background=true}\nsleep 0.2; exit 5\n```\n"
    run = FileRun(
        parse(text, "doc.md"),
        "doc.md",
        str(tmp_path),
        RunSettings(env={}, columns=80, update=None, root=str(tmp_path)),
    )
    try:
        [outcome] = run.run(run.document.cells[0])
        assert outcome.result.status == 0
        time.sleep(0.6)
    finally:
        run.close()
    assert run.closing_notes == [
        (0, "background cell 'svc' (doc.md:1) exited with status 5 after it started; see its log.")
    ]


def test_timeout_zero_says_it_must_be_greater_than_zero(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```sh {name=a timeout=0}
        make build
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "doc.md:1: timeout must be greater than 0 seconds, not '0' (a cell with no time "
            "cannot run)",
            "  fix: write timeout=30 (seconds), timeout=2m or timeout=1h",
        ]
    )


def test_no_subprocess_is_dropped_while_it_runs(pytester: pytest.Pytester, runbook: Any) -> None:
    # A fresh process: the shell session's watchdog starts with the first shell cell.
    runbook(
        """
        ```sh {name=a}
        echo hi
        ```

        ```python {name=b}
        print(1)
        ```
        """
    )
    result = pytester.runpytest_subprocess("doc.md", "-W", "default", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "ResourceWarning" not in result.stdout.str() + result.stderr.str()


def test_a_run_removes_the_cwd_and_home_directories_a_killed_run_left(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pytest_runbook.document import parse
    from pytest_runbook.runner import FileRun, RunSettings

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    temp = tmp_path / "tmp"
    temp.mkdir()
    stale = [temp / f"runbook-cwd-{dead.pid}-x1", temp / f"runbook-home-{dead.pid}-x2"]
    alive = temp / f"runbook-cwd-{os.getpid()}-x3"
    for path in [*stale, alive]:
        path.mkdir()
        (path / "left.txt").write_text("left behind\n")
    (tmp_path / "doc.md").write_text("```sh\necho hi\n```\n", "utf-8")
    subprocess.run(
        [sys.executable, "-m", "pytest", "doc.md", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert [p.name for p in stale if p.exists()] == []
    assert alive.exists()  # its owner (this process) still runs
    # This run's own directory carries its pid, so a later run can tell when it is stale.
    run = FileRun(
        parse("---\ncwd: tmp\n---\n\n```sh\npwd\n```\n", "doc.md"),
        "doc.md",
        str(tmp_path),
        RunSettings(env={}, columns=80, update=None, root=str(tmp_path)),
    )
    try:
        assert os.path.basename(run.workdir()).startswith(f"runbook-cwd-{os.getpid()}-")
    finally:
        run.close()


def test_notebook_cells_without_a_readable_generated_name_are_numbered(
    pytester: pytest.Pytester,
) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the jupyter extra is not installed")
    v4 = nbformat.v4
    nb = v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "P", "language": "python"}}
    )
    nb.cells = [
        v4.new_markdown_cell("# Sums"),
        v4.new_code_cell("total = 10"),
        v4.new_code_cell("10"),
        v4.new_code_cell("2 * 3"),
        v4.new_code_cell("42", metadata={"name": "7"}),
    ]
    (pytester.path / "nb.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")
    result = pytester.runpytest("nb.ipynb", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["nb.ipynb::total-", "nb.ipynb::cell-3", "nb.ipynb::cell-4", "nb.ipynb::7"]
    )
