"""What a fourth trial user met checking the documentation's claims, end to end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest


def test_an_unknown_doctest_optionflag_is_a_clean_collection_error(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    pytester.makeini("[pytest]\ndoctest_optionflags = ELIPSIS\n")
    runbook(
        """
        ```pycon
        >>> print("a long line")
        a ...
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "ini doctest_optionflags: unknown flag 'ELIPSIS'; known flags: ALLOW_BYTES, *",
            "  fix: correct the name in the ini file's doctest_optionflags",
        ]
    )
    result.stdout.no_fnmatch_line("*items.py*")
    result.stdout.no_fnmatch_line("*UsageError*")


def test_a_background_cell_that_exits_at_once_with_its_declared_status_passes(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    # The failure report of such a cell says "add exit=3"; doing so must make it pass.
    runbook(
        """
        ```sh {name=declared background=true exit=3}
        sh -c 'echo boom; exit 3'
        ```

        ```sh {name=undeclared background=true}
        sh -c 'exit 4'
        ```

        ```sh {name=running background=true exit=nonzero}
        sleep 5
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:5: cell 'undeclared' background cell did not come up: exit status 4",
            "*If exit status 4 is what this cell should give, add exit=4 to its attributes*",
        ]
    )


def test_a_cell_with_another_exit_is_told_to_change_it_not_to_add_one(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```sh {name=wrong-status exit=2}
        (exit 3)
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:1: cell 'wrong-status' exit status 3, expected 2",
            "If exit status 3 is what this cell should give, change its exit=2 to exit=3 "
            "(exit=any accepts every status).",
        ]
    )
    result.stdout.no_fnmatch_line("*add exit=3*")


def test_runbook_update_before_the_path_updates_that_path(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    # The guide and reference promise this spelling works; it once failed ("invalid choice").
    path = runbook(
        """
        ```sh {name=greet}
        echo new
        ```

        ```output
        old
        ```
        """,
        name="docs/doc.md",
    )
    result = pytester.runpytest("--runbook-update", "docs")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["runbook: 1 output updated in 1 file"])
    assert "```output\nnew\n```" in path.read_text()


def _venv_python(root: Path) -> None:
    """A project's ``.venv/bin/python`` at ``root``: a link to the Python running the tests."""
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").symlink_to(sys.executable)


def test_ini_runbook_python_is_a_path_from_the_ini_file_for_files_in_subdirectories(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    # The reference's own example: runbook_python = .venv/bin/python, docs in docs/.
    _venv_python(pytester.path)
    pytester.makeini("[pytest]\nrunbook_python = .venv/bin/python\n")
    runbook(
        """
        ```python {name=which}
        import sys
        print(sys.executable)
        ```

        ```output
        [ROOT]/.venv/bin/python
        ```
        """,
        name="docs/guide.md",
    )
    result = pytester.runpytest("docs/guide.md")
    result.assert_outcomes(passed=1)


def test_frontmatter_python_is_a_path_from_the_file_whatever_its_cwd(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    _venv_python(pytester.path)
    runbook(
        """
        ---
        python: ../.venv/bin/python
        cwd: tmp
        ---

        ```python {name=which}
        import sys
        print(sys.executable)
        ```

        ```output
        [ROOT]/.venv/bin/python
        ```
        """,
        name="docs/guide.md",
    )
    result = pytester.runpytest("docs/guide.md")
    result.assert_outcomes(passed=1)


def test_a_bad_flag_value_is_told_the_flag_spelling_of_the_fix(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook("```sh\ntrue\n```\n")
    result = pytester.runpytest("doc.md", "--runbook-update=all")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --runbook-update: --runbook-update must be one of changed, new, not 'all'",
            "  fix: write --runbook-update=changed",
        ]
    )
    pytester.makeini("[pytest]\nrunbook_on_failure = halt\n")
    result = pytester.runpytest("doc.md")
    result.stderr.fnmatch_lines(["  fix: write runbook_on_failure = continue"])


def test_an_unknown_frontmatter_fixture_names_its_line(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ---
        timeout: 5
        fixtures: [tmp_path, no_such_fixture]
        ---

        ```sh {name=hello}
        echo hi
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:3: frontmatter fixtures: fixture 'no_such_fixture' not found",
            "fix: define it in a conftest.py or plugin ('pytest --fixtures' lists them)",
        ]
    )


def test_a_readme_transcript_is_a_transcript_under_another_file_shell_too(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    # The guide: a sh block of "$ " commands and output lines is checked like a console
    # block. With shell: sh it ran as an sh script instead, its output lines as commands.
    runbook(
        """
        ---
        shell: sh
        ---

        ```sh
        $ printf 'a\\nb\\n' | wc -l
        2
        $ echo done
        finished
        ```

        ```sh {name=script}
        echo "[${BASH_VERSION:+bash}]"
        ```

        ```output
        []
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:8: command 'echo done': output differs: "
            "expected line 1 'finished' does not match output line 1 'done'",
        ]
    )
    result.stdout.no_fnmatch_line("*not found*")


def test_an_unescaped_prompt_in_answers_is_told_how_to_escape_it(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    # The recipe says to escape ?, ( and [; a reader who did not gets the exact fix.
    runbook(
        """
        <!-- runbook:
          name: confirm
          answers:
            - {expect: "Environment [dev]: ", send: "prod"}
        -->
        ```sh
        read -r -p "Environment [dev]: " target
        ```

        <!-- runbook:
          name: fixed
          answers:
            - {expect: "Environment \\\\[dev\\\\]: ", send: "prod"}
        -->
        ```sh
        read -r -p "Environment [dev]: " target
        echo "target=$target"
        ```

        ```output
        Environment [dev]: target=prod
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    expected = (
        "The prompt 'Environment [dev]: ' is in the output as written, but expect is a "
        "regular expression, and as one it does not match that text: escape it, "
        r'expect: "Environment \\[dev\\]: " in the directive.'
    )
    assert expected in result.stdout.lines


def test_ready_without_background_and_background_where_it_cannot_run_are_warned_about(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    # All were silently run in the foreground: a page that meant a service waited on it.
    runbook(
        """
        ```sh {name=server ready="listening"}
        echo listening
        ```

        ```console {background=true}
        $ echo hi
        hi
        ```

        ```python {name=py background=true}
        print("hi")
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*doc.md:1: RunbookWarning: ready= has no effect without background=true: the cell "
            "runs in the foreground until it ends; add background=true, or remove ready=",
            "*doc.md:5: RunbookWarning: background=true has no effect on a console transcript: "
            "it runs in the foreground; start a service from a ```sh cell",
            "*doc.md:10: RunbookWarning: background=true has no effect on a Python or kernel "
            "cell: it runs in the foreground; start a service from a ```sh cell",
        ]
    )
