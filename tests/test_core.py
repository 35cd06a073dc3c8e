"""End to end through pytester: real bash, real PTYs, the plugin loaded from its entry point."""

from __future__ import annotations

import pytest


def test_state_carries_from_cell_to_cell(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        # Setup

        ```sh {name=setup}
        export GREETING=hello
        plain=kept
        greet() { echo "$GREETING from a function"; }
        alias shout='echo LOUD'
        mkdir -p sub && cd sub
        ```

        ```sh {name=use}
        echo "$GREETING $plain"
        greet
        shout
        basename "$PWD"
        ```

        ```output
        hello kept
        hello from a function
        LOUD
        sub
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["doc.md::setup PASSED*", "doc.md::use PASSED*"])


def test_mismatch_shows_diff_and_markdown_line(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        Intro line.

        ```bash {name=greet}
        echo "hello world"
        echo second
        ```

        ```output
        hello there
        second
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:3: cell 'greet' output differs from the output block at doc.md:8: *",
            ' 4 | echo "hello world"',
            " 5 | echo second",
            "--- expected",
            "+++ actual",
            "*-hello there",
            "*+hello world",
            "exit status: 0 · duration: *",
        ]
    )


def test_nonzero_status_fails_with_output(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=broken}
        echo about to fail
        ls /definitely/not/here
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:1: cell 'broken' exit status 2",
            "output:",
            "about to fail",
            "ls: cannot access '/definitely/not/here': No such file or directory",
            "exit status: 2 · duration: *",
        ]
    )


def test_errexit_stops_a_cell_at_its_first_failing_command(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=stops}
        echo before
        false
        echo after
        ```

        ```sh {name=pipefail exit=1}
        false | true
        echo not-reached
        ```

        ```sh {name=session-lives}
        echo still here
        ```

        ```output
        still here
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["doc.md:1: cell 'stops' exit status 1", "output:", "before"])
    result.stdout.no_fnmatch_line("after")
    result.stdout.no_fnmatch_line("not-reached")


def test_declared_exit_status(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=two exit=2}
        exit_with() { return "$1"; }
        exit_with 2
        ```

        ```sh {name=any exit=any}
        false
        ```

        ```sh {name=wrong exit=3}
        exit_with 4
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["doc.md:10: cell 'wrong' exit status 4, expected 3"])


def test_timeout_interrupts_and_session_recovers(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=setvar}
        export KEEP=yes
        ```

        ```sh {name=slow timeout=1}
        echo started
        sleep 30
        ```

        ```sh {name=after}
        echo "KEEP=$KEEP"
        ```

        ```output
        KEEP=yes
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["doc.md:5: cell 'slow' timed out after 1 s (interrupted; the session carries on)"]
    )
    assert result.duration < 15


def test_exit_in_a_cell_fails_and_next_cell_gets_fresh_shell(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=leave}
        export LOST=1
        exit 3
        ```

        ```sh {name=fresh}
        echo "LOST=${LOST:-unset}"
        ```

        ```output
        LOST=unset
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["doc.md:1: cell 'leave' the shell exited with status 3*"])


def test_exit_with_the_declared_status_passes_and_the_next_cell_starts_afresh(
    pytester: pytest.Pytester, runbook
) -> None:
    # As in Runme's script: `exit N` is the cell's status. Ending the shell still costs the
    # file its state, which the warning says.
    runbook(
        """
        ```sh {name=early-out}
        export KEPT=1
        if true; then echo "nothing to do"; exit 0; fi
        echo never
        ```

        ```sh {name=declared exit=1}
        exit 1
        ```

        ```console
        $ echo "KEPT=${KEPT:-unset}"
        KEPT=unset
        $ exit 3
        [3]
        $ echo "fresh again"
        fresh again
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly", "-W", "default")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*doc.md:1: RunbookWarning: cell 'early-out': The shell exited with status 0 (`exit`*",
        ]
    )


def test_fifteen_megabytes_against_ellipsis(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=big}
        seq 1 2000000
        ```

        ```output
        1
        2
        ...
        2000000
        ```

        ```sh {name=after-big}
        test "${#__}" -le 100000 && /bin/echo "commands still run"
        ```

        ```output
        commands still run
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2)


def test_invalid_utf8_and_sentinel_lookalikes(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=bytes}
        printf 'ok\\xff\\xfe|\\n'
        printf '\\036E12345:0:hB:x\\037\\n'
        echo '$ '
        echo done
        ```

        ```output
        ok[..]|
        ...
        $
        done
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)


def test_bare_pytest_never_runs_markdown_without_opt_in(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh
        touch ran-without-opt-in
        ```
        """,
        name="CHANGELOG.md",
    )
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "ran-without-opt-in").exists()

    result = pytester.runpytest("--runbook")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "ran-without-opt-in").exists()


def test_directory_argument_collects_markdown(pytester: pytest.Pytester, runbook) -> None:
    runbook("```sh\necho one\n```\n", name="docs/a.md")
    runbook("```sh\necho two\n```\n", name="docs/b.markdown")
    runbook("```sh\necho three\n```\n", name="docs/notes.txt")
    result = pytester.runpytest("docs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest("docs", "-p", "no:runbook")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_generated_names_match_runme(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh
        echo "Hello, runme!"
        ```

        ```json
        {"not": "a cell"}
        ```

        ```sh
        $ echo "Hello, runme!"
        ```

        ```sh
        temp_dir=$(mktemp -d)
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["doc.md::echo-hello", "doc.md::echo-hello-2", "doc.md::tempdir"])


def test_frontmatter_false_and_no_cells(pytester: pytest.Pytester, runbook) -> None:
    runbook("---\nrunbook: false\n---\n```sh\nfalse\n```\n", name="off.md")
    runbook("# Only prose\n\n```python\nprint('doc')\n```\n", name="prose.md")
    result = pytester.runpytest("off.md", "prose.md")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_reportinfo_points_at_fence_line_in_junit(pytester: pytest.Pytester, runbook) -> None:
    runbook("# T\n\n\n```sh {name=fails}\nfalse\n```\n")
    result = pytester.runpytest("doc.md", "--junitxml=out.xml", "-o", "junit_family=xunit1")
    result.assert_outcomes(failed=1)
    xml = (pytester.path / "out.xml").read_text()
    assert 'file="doc.md" line="3"' in xml  # 0-based fence line, as pytest writes every item's
    assert "doc.md:4: cell 'fails' exit status 1" in xml


def test_bad_attribute_is_a_clean_collection_error(pytester: pytest.Pytester, runbook) -> None:
    runbook("text\n\n```sh {name=x timeout=soon}\necho hi\n```\n")
    result = pytester.runpytest("doc.md")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*doc.md:3: *timeout*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*pytest_runbook*")


def test_error_messages_point_at_markdown_lines(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        # Errors

        ```sh {name=syntax}
        echo ok
        if then fi (
        ```

        ```python {name=py}
        import os
        raise SystemExit(os.nosuch)
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "bash: doc.md:5: syntax error near unexpected token `then'",
            '  File "doc.md", line 10, in <module>',
        ]
    )
    result.stdout.no_fnmatch_line("*runbook-cells-*")


def test_background_ready_sees_python_print_without_flush(
    pytester: pytest.Pytester, runbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # as on most machines
    runbook(
        """
        ```sh {name=server background=true ready="Listening on \\d+" timeout=10}
        python3 -c 'import time; print("Listening on 8123"); time.sleep(60)'
        ```

        ```sh {name=after}
        echo next
        ```

        ```output
        next
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2)
    assert result.duration < 8


def test_next_cell_never_starts_early_when_pytest_may_skip_it(
    pytester: pytest.Pytester, runbook
) -> None:
    # A cell's round trip overlaps pytest's reporting of the previous cell, but only when
    # nothing can come between: a skip added by a conftest must still keep "second" unrun.
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "second":
                    item.add_marker(pytest.mark.skip(reason="conftest says no"))
        """
    )
    runbook(
        """
        ```sh {name=first}
        echo "$$" > shell.pid
        ```

        ```sh {name=second}
        touch second-ran
        ```

        ```sh {name=third}
        test "$$" = "$(cat shell.pid)" && echo "same shell, previous: $__"
        ```

        ```output
        same shell, previous:
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    assert not (pytester.path / "second-ran").exists()


def test_python_only_runs_never_load_the_parser_or_session(pytester: pytest.Pytester) -> None:
    # Installing the plugin must not slow down projects that collect no Markdown.
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_nothing_heavy_loaded():
            loaded = {"pytest_runbook.items", "pytest_runbook.session", "markdown_it", "pexpect"}
            assert not loaded & set(sys.modules)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_errors_that_end_a_script_fail_the_cell(pytester: pytest.Pytester, runbook) -> None:
    # Interactive bash only skips the command with `${VAR:?}`, `set -u` or a readonly
    # assignment and goes on; a script (Runme's cell) stops with status 1.
    runbook(
        """
        ```sh {name=guard}
        echo "deploying to ${TARGET_ENV:?TARGET_ENV is required}"
        echo deployed
        ```

        ```sh {name=nounset}
        set -u
        echo "$NOT_SET_ANYWHERE"
        set +u
        ```

        ```sh {name=handled}
        cd /nonexistent-dir || echo "fallback"
        nosuchcommand-xyz || true
        echo "bash: not: an error"
        bash -c 'echo $((1/0))' || echo handled
        ```

        ```output
        bash: cd: /nonexistent-dir: No such file or directory
        fallback
        bash: nosuchcommand-xyz: command not found
        bash: not: an error
        bash: line 1: 1/0: division by 0 (error token is "0")
        handled
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "doc.md:1: cell 'guard' exit status 1",
            "*bash reported `bash: TARGET_ENV: TARGET_ENV is required`: in a script (and in "
            "Runme) that error ends the cell with status 1*",
            "doc.md:6: cell 'nounset' exit status 1",
            "*bash reported `bash: NOT_SET_ANYWHERE: unbound variable`*",
        ]
    )


def test_a_shell_that_cannot_start_is_a_clean_failure(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ---
        shell: bash --norc -c exit
        ---

        ```sh {name=first}
        true
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:5: cell 'first' could not run: the shell * exited while starting*",
            "  fix: check that `bash --norc -c exit` starts on its own in a terminal*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*session.py*")


def test_a_failing_pipeline_says_pipefail(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=pipe}
        printf 'a\\nb\\n' > a; printf 'a\\nc\\n' > b
        diff -u a b | tail -n +3
        ```

        ```sh {name=no-pipe}
        false || false
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "doc.md:1: cell 'pipe' exit status 1",
            "Shell cells run with `set -o pipefail`, as in Runme: a pipeline fails when any*",
        ]
    )
    text = result.stdout.str()  # under CI=true the summary repeats whole reports: cut there
    no_pipe = text[text.index("[runbook] no-pipe") : text.index("short test summary info")]
    assert "pipefail" not in no_pipe


def test_pipefail_is_blamed_only_when_an_earlier_command_of_the_pipeline_failed(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=earlier-fails}
        false | true
        ```

        ```sh {name=last-fails}
        true | false
        ```

        ```sh {name=pipe-elsewhere}
        echo a | cat
        false
        ```

        ```sh {name=in-substitution}
        found=$(false | cat)
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(failed=4)
    text = result.stdout.str()
    text = text[: text.index("short test summary info")]  # CI=true repeats whole reports

    def report_of(name: str) -> str:
        start = text.index(f"[runbook] {name}")
        end = text.find("[runbook]", start + 1)
        return text[start : end if end >= 0 else len(text)]

    assert (
        "Shell cells run with `set -o pipefail`, as in Runme: a pipeline fails when any of its "
        "commands fails, not only the last one (`cmd | head` fails with 141 when `cmd` is cut "
        "off); here its commands ended with 1 0 (`PIPESTATUS`)."
    ) in report_of("earlier-fails")
    assert "The cell stopped at `false | true` (doc.md:2)" in report_of("earlier-fails")
    assert "pipefail" not in report_of("last-fails")
    assert "The cell stopped at `true | false` (doc.md:6)" in report_of("last-fails")
    assert "pipefail" not in report_of("pipe-elsewhere")
    assert "The cell stopped at `false` (doc.md:11)" in report_of("pipe-elsewhere")
    assert "set -o pipefail" in report_of("in-substitution")


def test_the_command_a_cell_stopped_at_is_quoted_as_written(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=spacing}
        echo start
        test   "a   b"  =   c    # bash shows it as `test "a   b" = c`
        ```

        ```sh {name=substitution}
        value=$(  exit 3  )
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            'The cell stopped at `test   "a   b"  =   c` (doc.md:3): errexit ends a cell at its '
            "first failing command.",
            "The cell stopped at `value=$(  exit 3  )` (doc.md:7)*",
        ]
    )


def test_a_failing_shell_cell_says_how_to_declare_its_status(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=grep-finds-nothing}
        grep -q nothing /dev/null
        ```

        ```python {name=raises}
        raise SystemExit(3)
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "If exit status 1 is what this cell should give, add exit=1 to its attributes "
            "({exit=1} after the language; exit=any accepts every status).",
        ]
    )
    assert "exit=3" not in result.stdout.str()  # not for the Python cell's SystemExit(3)


def test_a_failing_cell_names_the_command_it_stopped_at(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        # Migrations

        ```sh {name=step5}
        echo "running migrations"
        test -f NOPE
        echo "migrations done"
        ```

        ```sh {name=in-function}
        check() { test -d /nonexistent-dir; }
        check
        ```

        ```sh {name=in-pipeline}
        no-such-tool-xyz --json | cat
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "doc.md:3: cell 'step5' exit status 1",
            "",
            ' 4 | echo "running migrations"',
            ">5 | test -f NOPE",
            ' 6 | echo "migrations done"',
            "",
            "The cell stopped at `test -f NOPE` (doc.md:5): errexit ends a cell at its first "
            "failing command.",
            "*The cell stopped at `test -d /nonexistent-dir` (doc.md:10)*",
            "*The cell stopped at `no-such-tool-xyz --json | cat` (doc.md:15)*",
        ]
    )
    result.stdout.no_fnmatch_line("*migrations done*migrations done*")


def test_xtrace_lines_look_as_in_a_terminal(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=xtrace}
        set -x
        echo "$(echo inner)"
        set +x
        echo "++ output, not a trace"
        ```

        ```output
        ++ echo inner
        + echo inner
        inner
        + set +x
        ++ output, not a trace
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)


def test_a_cell_started_early_then_skipped_at_setup_never_runs_twice(
    pytester: pytest.Pytester, runbook
) -> None:
    # A conftest may skip an item at setup time, after the file started it early: it ran
    # once, and the next cell must not run it again as its setup.
    pytester.makeconftest(
        """
        import pytest

        def pytest_runtest_setup(item):
            if item.name == "second":
                pytest.skip("skipped at setup time")
        """
    )
    runbook(
        """
        ```sh {name=first}
        : > runs.log
        ```

        ```sh {name=second}
        echo second >> runs.log
        ```

        ```sh {name=third}
        echo third >> runs.log
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2, skipped=1)
    assert (pytester.path / "runs.log").read_text().count("second") <= 1
    assert (pytester.path / "runs.log").read_text().endswith("third\n")
