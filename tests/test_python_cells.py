"""Python cells end to end (SPEC 9): one interpreter per file, doctest transcripts, failures."""

from __future__ import annotations

import pytest


def test_objects_persist_and_follow_the_shells_directory_and_exports(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh
        mkdir -p data && cd data && export REGION=eu-west-1
        ```

        ```python {name=load}
        import os
        rows = [3, 1, 2]
        print(os.path.basename(os.getcwd()), os.environ["REGION"], __name__)
        ```

        ```output
        data eu-west-1 __main__
        ```

        ```python {name=use}
        sorted(rows)
        ```

        ```output
        [1, 2, 3]
        ```

        ```python {name=hidden}
        rows.append(4);
        ```

        ```python {name=underscore}
        len(rows)
        ```

        ```python {name=last}
        print(_ + 1)
        ```

        ```output
        5
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=6)


def test_fd_level_output_is_merged_in_order(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python {name=mixed}
        import os, subprocess, sys
        print("one", flush=True)
        os.system("echo two")
        subprocess.run(["sh", "-c", "echo three >&2"])
        print("four", file=sys.stderr)
        ```

        ```output
        one
        two
        three
        four
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=1)


def test_selecting_one_cell_replays_the_cells_before_it(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python {name=define}
        def double(n):
            return 2 * n
        ```

        ```python {name=other}
        print("unrelated")
        ```

        ```python {name=call}
        double(21)
        ```

        ```output
        42
        ```
        """
    )
    result = pytester.runpytest("doc.md::call", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["doc.md::call PASSED*"])


def test_a_traceback_points_at_the_markdown_lines(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        # Title

        ```python {name=helper}
        def check(value):
            raise ValueError(f"bad value {value}")
        ```

        ```python {name=boom}
        x = 1
        check(x)
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:8: cell 'boom' raised ValueError: bad value 1, exit status 1",
            "Traceback (most recent call last):",
            '  File "doc.md", line 10, in <module>',
            '  File "doc.md", line 5, in check',
            "ValueError: bad value 1",
        ]
    )
    assert "worker" not in result.stdout.str()


def test_system_exit_is_the_cells_status(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python {name=three exit=3}
        raise SystemExit(3)
        ```

        ```python {name=after}
        print("still here")
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_a_timeout_interrupts_and_the_session_keeps_its_state(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```python {name=setup}
        kept = "yes"
        ```

        ```python {name=spin timeout=1}
        while True:
            pass
        ```

        ```python {name=later}
        print(kept)
        ```

        ```output
        yes
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*cell 'spin' timed out after 1 s*"])


def test_a_killed_interpreter_is_replaced_with_a_note(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python {name=setup}
        kept = "yes"
        ```

        ```python {name=crash}
        import os
        os._exit(3)
        ```

        ```python {name=later}
        print("kept" in globals())
        ```

        ```output
        False
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-W", "always")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:5: cell 'crash' did not finish: its session ended during it (see below)",
            "The Python session exited with status 3 during this cell*",
            "*cell 'later': The Python session was started afresh*earlier Python cells are gone.",
        ]
    )


def test_input_sees_end_of_input_or_the_stdin_text(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python {name=nothing}
        try:
            input("name? ")
        except EOFError:
            print("end of input")
        ```

        ```output
        name? end of input
        ```

        ```python {name=given stdin="ada\\n"}
        print("hello", input())
        ```

        ```output
        hello ada
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_transcripts_follow_doctest_rules_and_ini_flags(pytester: pytest.Pytester, runbook) -> None:
    pytester.makeini("[pytest]\ndoctest_optionflags = NORMALIZE_WHITESPACE\n")
    runbook(
        """
        ```pycon
        >>> items = list(range(30))
        >>> items  # doctest: +ELLIPSIS
        [0, 1, ..., 29]
        >>> print("a\\n\\nb")
        a
        <BLANKLINE>
        b
        >>> print("x   y")
        x y
        >>> int("nope")
        Traceback (most recent call last):
          ...
        ValueError: invalid literal for int() with base 10: 'nope'
        ```

        ```python {name=shared}
        print(len(items))
        ```

        ```output
        30
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_a_failing_example_shows_doctests_difference(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python
        >>> 1 + 1
        3
        >>> print("never runs")
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:2: example '1 + 1': output differs (doctest rules)",
            ">2 | >>> 1 + 1",
            "Expected:",
            "    3",
            "Got:",
            "    2",
        ]
    )


def test_update_mode_rewrites_examples_and_output_blocks(
    pytester: pytest.Pytester, runbook
) -> None:
    path = runbook(
        """
        ```pycon
        >>> sum([1, 2])
        4
        >>> "kept"
        'kept'
        ```

        ```python {name=show}
        print("new")
        ```

        ```output
        old
        ```
        """
    )
    pytester.runpytest("doc.md", "--runbook-update").assert_outcomes(passed=2)
    assert path.read_text() == (
        "```pycon\n>>> sum([1, 2])\n3\n>>> \"kept\"\n'kept'\n```\n\n"
        '```python {name=show}\nprint("new")\n```\n\n```output\nnew\n```\n'
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_python_script_frontmatter_runs_each_cell_as_a_fresh_script(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ---
        python: script
        ---

        ```python {name=first}
        x = 1
        ```

        ```python {name=second}
        print("x" in globals())
        ```

        ```output
        False
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_a_missing_interpreter_is_reported_at_the_cell(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ---
        python: /no/such/python3
        ---

        ```python {name=first}
        print(1)
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*/no/such/python3*"])


def test_answers_read_alike_in_shell_and_python_cells(pytester: pytest.Pytester, runbook) -> None:
    """What is sent is not echoed in either session, so one expected output fits both."""
    runbook(
        """
        <!-- runbook:
          name: sh-ans
          answers:
            - {expect: "Name: ", send: ada}
        -->
        ```sh
        read -r -p "Name: " n
        echo "hi $n"
        ```

        ```output
        Name: hi ada
        ```

        <!-- runbook:
          name: py-ans
          answers:
            - {expect: "Name: ", send: ada}
        -->
        ```python
        n = input("Name: ")
        print("hi", n)
        ```

        ```output
        Name: hi ada
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.stdout.fnmatch_lines(["*::sh-ans PASSED*", "*::py-ans PASSED*"])
    result.assert_outcomes(passed=2)


def test_the_transcript_shows_a_cells_traceback_after_its_output(
    pytester: pytest.Pytester, runbook
) -> None:
    """The session keeps a traceback apart from the output (for the report and for doctest);
    the transcript shows both, as the terminal would have."""
    runbook(
        """
        ```python {name=boom}
        print("before")
        1/0
        ```
        """
    )
    pytester.runpytest("doc.md", "--runbook-transcript", "out").assert_outcomes(failed=1)
    text = (pytester.path / "out" / "doc.md").read_text()
    assert "```output\nbefore\nTraceback (most recent call last):\n" in text
    assert '  File "doc.md", line 3, in <module>\n' in text
    assert text.rstrip().endswith("ZeroDivisionError: division by zero\n```")
