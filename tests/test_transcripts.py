"""README-style shell blocks and root-prompt console blocks (SPEC 2) end to end, and the
small shell reader that tells a command from its output."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_runbook.document.console import completeness, readme_transcript

README = """
# jq

```sh
$ echo jq-1.6
{version}
$ printf 'a\\nb\\n'
a
b
```
"""


def test_a_readme_shell_block_with_output_lines_is_checked_as_a_transcript(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(README.format(version="jq-1.6"))
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)
    assert "command not found" not in result.stdout.str()


def test_a_wrong_output_line_in_a_readme_block_fails_at_its_command(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(README.format(version="jq-1.5"))
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:4: command 'echo jq-1.6': output differs: "
            "expected line 1 'jq-1.5' does not match output line 1 'jq-1.6'",
            "",
            ">4 | $ echo jq-1.6",
            "",
            "--- expected",
            "+++ actual",
            "@@ -1 +1 @@",
            "-jq-1.5",
            "+jq-1.6",
        ]
    )


def test_heredoc_bodies_and_open_quotes_belong_to_their_command(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```bash
        $ cat <<EOF > greeting.txt
        hello
        EOF
        $ echo "two
        lines"
        two
        lines
        $ cat greeting.txt
        hello
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)


def test_a_block_of_prompts_only_keeps_runmes_behaviour(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```sh
        $ export WHO=ada
        $ echo "hi $WHO" > out.txt
        ```

        ```sh
        cat out.txt
        ```

        ```output
        hi ada
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*doc.md::export-who PASSED*"])


def test_update_mode_rewrites_a_readme_block_in_place(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    path = runbook(README.format(version="jq-1.5"))
    result = pytester.runpytest("doc.md", "--runbook-update")
    result.assert_outcomes(passed=1)
    assert path.read_text() == README.format(version="jq-1.6").lstrip("\n")
    pytester.runpytest("doc.md").assert_outcomes(passed=1)


def test_root_prompts_in_a_console_block_are_commands(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ```console
        # echo as root
        as root
        # echo wrong
        right
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:4: command 'echo wrong': output differs: *",
            "",
            ">4 | $ echo wrong",  # shown as the command it runs
        ]
    )


# -- the shell reader --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("echo hi", "complete"),
        ("jq --version", "complete"),
        ('echo "a', "incomplete"),
        ('echo "a\nb"', "complete"),
        ("echo it's", "incomplete"),
        ("echo a # it's", "complete"),
        ("echo `date", "incomplete"),
        ("cat <<EOF", "incomplete"),
        ("cat <<EOF\nx\nEOF", "complete"),
        ("cat <<-'END' > f\n\tx\n\tEND", "complete"),
        ('x=$(cat <<"EOF"\nhi\nEOF\n)', "complete"),
        ('cat <<<"x"', "complete"),
        ("echo a \\", "incomplete"),
        ("echo a \\\\", "complete"),
        ("curl -s \\\n  http://x", "complete"),
        ("for i in 1 2; do", "incomplete"),
        ("for i in 1 2; do\necho $i\ndone", "complete"),
        ("if true; then echo; fi", "complete"),
        ("while read l; do echo $l; done < f", "complete"),
        ("(cd x", "incomplete"),
        ("echo $(date", "incomplete"),
        ("echo $((1+2))", "complete"),
        ("{ echo a", "incomplete"),
        ("f() {", "incomplete"),
        ("f() { echo; }", "complete"),
        ("echo done {a,b} }", "complete"),
        ('echo ${x:-"}"}', "complete"),
        ("echo $'it\\'s'", "complete"),
        ("echo a 2>&1 | grep -q a && echo ok", "complete"),
        ("case x in a) echo;; esac", "unsure"),
        ("function f {", "unsure"),
        ("done", "unsure"),
        ("echo a)", "unsure"),
    ],
)
def test_completeness(text: str, state: str) -> None:
    assert completeness(text) == state


@pytest.mark.parametrize(
    ("lines", "transcript"),
    [
        (["$ echo jq-1.6", "jq-1.6"], True),
        (["", "$ false", "[1]"], True),
        (["$ cat <<EOF", "x", "EOF"], False),  # a heredoc body, no output
        (["$ ls", "$ pwd"], False),  # prompts only: Runme's behaviour
        (["echo a", "$ echo b", "b"], False),  # it does not start with a prompt
        (["$ export A=1", "$A/bin/tool"], False),  # "$A/bin/tool" is code
        (["$ make", "  $ make install", "done"], False),
        (["$ npm ci", "# then", "$ npm test"], False),  # a comment, not output
        (["$ case $x in", "a) echo a;;", "esac", "a"], False),  # not followed: unsure
        (['$ echo "open', "never closed"], False),  # incomplete at the end
    ],
)
def test_readme_transcript_decision(lines: Any, transcript: bool) -> None:
    assert (readme_transcript(lines, 1) is not None) == transcript
