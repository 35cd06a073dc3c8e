"""``>>>`` examples end to end beside ``pytest --doctest-glob``: what doctest compares."""

from __future__ import annotations

import pytest

# Each example prints to stdout and also writes to stderr: doctest compares stdout only. The
# blank line before the closing fence ends the last example's expected output for doctest,
# which would otherwise read the fence as output (a ```pycon block is for this plugin first).
STDERR_TOO = """
```pycon
>>> import logging, os, sys, warnings
>>> print("to stdout"); print("to stderr", file=sys.stderr)
to stdout
>>> warnings.warn("careful")
>>> logging.getLogger("app").warning("logged")
>>> status = os.system("echo from-a-child >&2"); print(status)
0
>>> sys.stderr.write("partial"); print("done")
7
done

```
"""


def test_stderr_of_an_example_is_not_compared_as_under_doctest(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(STDERR_TOO)
    result = pytester.runpytest("doc.md", "--doctest-glob=doc.md", "-v")
    result.stdout.fnmatch_lines(["doc.md::import-logging PASSED*", "doc.md::doc.md PASSED*"])
    result.assert_outcomes(passed=2)


def test_a_failing_example_still_shows_its_stderr(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```pycon
        >>> import sys
        >>> print("out"); print("why it went wrong", file=sys.stderr)
        something else
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:3: example *: output differs (doctest rules)",
            "stderr (not compared: doctest compares what an example prints to stdout):",
            "why it went wrong",
            "Expected:",
            "    something else",
            "Got:",
            "    out",
        ]
    )


def test_a_python_cell_keeps_stdout_and_stderr_merged(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python {name=merged}
        import sys
        print("out"); print("err", file=sys.stderr)
        ```

        ```output
        out
        err
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=1)


def test_the_transcript_shows_an_examples_stderr(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```pycon
        >>> import sys; print("out"); print("err", file=sys.stderr)
        out
        ```
        """
    )
    pytester.runpytest("doc.md", "--runbook-transcript=out").assert_outcomes(passed=1)
    text = (pytester.path / "out" / "doc.md").read_text()
    assert "```output\nout\nerr\n```" in text


def test_update_mode_writes_only_stdout(pytester: pytest.Pytester, runbook) -> None:
    path = runbook(
        """
        ```pycon
        >>> import sys; print("new"); print("noise", file=sys.stderr)
        old
        ```
        """
    )
    pytester.runpytest("doc.md", "--runbook-update").assert_outcomes(passed=1)
    assert path.read_text() == (
        '```pycon\n>>> import sys; print("new"); print("noise", file=sys.stderr)\nnew\n```\n'
    )


def test_python_cells_have_readable_ids(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ---
        python-blocks: all
        ---

        ```pycon
        >>> 1 + 1
        2
        ```

        ```python
        counts = {"a": 1}
        ```

        ```pycon
        >>> sorted(counts)
        ['a']
        ```

        ```pycon
        >>> 2 + 2
        4
        ```

        ```sh
        echo 1 + 1
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "doc.md::pycon PASSED*",
            "doc.md::counts PASSED*",
            "doc.md::sorted-counts PASSED*",
            "doc.md::pycon-2 PASSED*",
            "doc.md::echo-1 PASSED*",
        ]
    )
    pytester.runpytest("doc.md::sorted-counts").assert_outcomes(passed=1)


def test_pycon_fences_pass_here_but_not_under_doctest_glob(
    pytester: pytest.Pytester, runbook
) -> None:
    # doctest knows no fences: the closing ``` after an example's output is more expected
    # output to it. Compatibility is one-way; a blank line before the fence serves both.
    runbook(
        """
        ```pycon
        >>> 1 + 1
        2
        ```

        ```pycon
        >>> 2 + 2
        4

        ```
        """
    )
    result = pytester.runpytest("doc.md", "--doctest-glob=doc.md", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md::pycon PASSED*",
            "doc.md::pycon-2 PASSED*",
            "doc.md::doc.md FAILED*",
            "Expected:",
            "    2",
            "    ```",
            "Got:",
            "    2",
        ]
    )
