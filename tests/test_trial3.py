"""What a third trial user met on realistic documents, end to end through pytester."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, List

import pytest

LINUX = sys.platform.startswith("linux")
needs_proc = pytest.mark.skipif(not LINUX, reason="inspects /proc")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _still_alive(pids: List[int], seconds: float = 2.0) -> List[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
    return [p for p in pids if _alive(p)]


@needs_proc
def test_processes_a_python_cell_detached_with_setsid_end_with_the_file(
    pytester: pytest.Pytester, runbook: Any, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    runbook(
        f"""
        ```python {{name=start}}
        import os, subprocess
        daemon = subprocess.Popen(["sleep", "301"], start_new_session=True)
        shell = subprocess.run("setsid sleep 302 >/dev/null 2>&1 & echo $!", shell=True,
                               capture_output=True, text=True).stdout.strip()
        with open({str(pids)!r}, "w") as f:
            f.write(f"{{daemon.pid}} {{shell}}")
        ```

        ```python {{name=crash timeout=1}}
        import time
        while True:
            try:
                time.sleep(5)
            except KeyboardInterrupt:
                pass
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=1)
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2
    # The interpreter that started them was killed (it ignored the timeout's ^C) and no
    # Python cell came after it;
    # the file's end still finds them by the session's marker.
    assert _still_alive(started) == []


def test_a_frontmatter_cwd_that_does_not_exist_names_its_line(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ---
        title: Deploy
        cwd: build/output
        ---

        ```sh
        echo hi
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:3: frontmatter cwd 'build/output' is not a directory (*build/output); "
            "fix: point cwd at an existing directory, or use cwd: tmp"
        ]
    )


def test_a_name_taken_by_an_output_block_says_which_block_has_it(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```sh
        printf '[server]\\nport = 8080\\n'
        ```

        ```output
        [server]
        port = 8080
        ```

        ```sh {name=server background=true}
        sleep 5
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "doc.md::printf-servernport",
            "doc.md::server-2",
            "  doc.md:10: RunbookWarning: name 'server' is used as 'server-2' (the output block "
            "on line 5 has it: Runme names every code block from its first line, and test ids "
            "keep Runme's names); select the cell as ::server-2 or give it a name of its own",
        ]
    )


def test_a_failing_console_command_says_how_to_declare_its_status(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```console
        $ echo checking
        checking
        $ grep -q needle /dev/null
        ```

        ```console
        $ sh -c 'exit 3'
        [2]
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "doc.md:4: command 'grep -q needle /dev/null' failed: exit status 1",
            "",
            ">4 | $ grep -q needle /dev/null",
            "",
            "If exit status 1 is what this command should give, write [1] as the last line of "
            "its expected output (--runbook-update writes it).",
            "*",
            """doc.md:8: command "sh -c 'exit 3'" failed: exit status 3, expected 2""",
            "",
            ">8 | $ sh -c 'exit 3'",
            "",
            "If exit status 3 is what this command should give, write [3] as the last line of "
            "its expected output (--runbook-update writes it).",
        ]
    )


def test_a_python_interpreter_that_is_not_there_says_where_to_fix_it(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ---
        python: .venv/bin/python
        ---

        ```python {name=load}
        print("loaded")
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            # The path as resolved from the file's directory: where it was looked for.
            f"Could not start the Python session ({pytester.path}/.venv/bin/python): No such "
            f"file or directory: {pytester.path}/.venv/bin/python. Fix: name an installed "
            "interpreter in the frontmatter's python: "
            "(or ini runbook_python), or remove it to use pytest's own Python."
        ]
    )


def test_one_line_compound_statements_in_doctest_examples_run(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```pycon
        >>> class Point: pass
        >>> Point.__name__
        'Point'
        >>> for i in range(2): print(i)
        0
        1
        >>> try: 1 / 0
        ... except ZeroDivisionError: print("caught")
        caught
        >>> with open("doc.md") as f: pass
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--runbook-update")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*runbook: *updated*")  # nothing was wrong to rewrite
    result.stdout.no_fnmatch_line("*SyntaxError*")


@needs_proc
def test_processes_a_kernel_cell_detached_with_setsid_end_with_the_file(
    pytester: pytest.Pytester, runbook: Any, tmp_path: Path
) -> None:
    pytest.importorskip("jupyter_client", reason="the jupyter extra is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel (the Python kernel) is not installed")
    pids = tmp_path / "pids"
    runbook(
        f"""
        ---
        kernel: python3
        ---

        ```python {{name=start}}
        import subprocess
        daemon = subprocess.Popen(["sleep", "303"], start_new_session=True)
        child = subprocess.Popen(["sleep", "304"])
        with open({str(pids)!r}, "w") as f:
            f.write(f"{{daemon.pid}} {{child.pid}}")
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2
    assert _still_alive(started) == []


def test_a_notebook_that_is_not_json_names_the_line(pytester: pytest.Pytester) -> None:
    pytest.importorskip("nbformat", reason="the jupyter extra is not installed")
    (pytester.path / "merge.ipynb").write_text(
        '{\n "cells": [],\n<<<<<<< HEAD\n "metadata": {},\n=======\n', encoding="utf-8"
    )
    result = pytester.runpytest("merge.ipynb")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "merge.ipynb:3: not a readable Jupyter notebook: not valid JSON: Expecting property "
            "name enclosed in double quotes (column 1)",
            "  fix: open and save it in Jupyter, or leave it out of the collected paths",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_update_mode_keeps_a_tracebacks_frames_as_written(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    path = runbook(
        """
        ```pycon
        >>> {}["k"]
        Traceback (most recent call last):
          File "<stdin>", line 1, in <module>
        KeyError: 'other'
        >>> 1 / 0
        Traceback (most recent call last):
        ZeroDivisionError: old message
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--runbook-update")
    result.assert_outcomes(passed=1)
    # Only the exception lines change; doctest ignores the frames, so they stay as written.
    assert path.read_text(encoding="utf-8") == (
        "```pycon\n"
        '>>> {}["k"]\n'
        "Traceback (most recent call last):\n"
        '  File "<stdin>", line 1, in <module>\n'
        "KeyError: 'k'\n"
        ">>> 1 / 0\n"
        "Traceback (most recent call last):\n"
        "ZeroDivisionError: division by zero\n"
        "```\n"
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=1)


def test_a_frontmatter_env_value_that_references_a_variable_is_a_warning(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ---
        env:
          PATH: $HOME/bin:$PATH
          PASSWORD: "pa$$w0rd"
        ---

        ```sh
        echo "$PASSWORD"
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:7: cell 'echo-password' could not run: cannot start the shell ['bash']: "
            "'bash' was not found on PATH ($HOME/bin:$PATH)",
            "  doc.md:3: RunbookWarning: env PATH: '$HOME/bin:$PATH' is set as written: "
            "frontmatter values are not expanded, so $HOME stays literal text; to build on "
            '$HOME, export it in a first cell instead: export PATH="$HOME/bin:$PATH"',
        ]
    )
    result.stdout.no_fnmatch_line("*env PASSWORD*")  # a $ that names no variable is fine
