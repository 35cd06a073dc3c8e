"""The expected-output language end to end (SPEC 3): console transcripts, wildcards, regex
lines, substitutions, exit statuses, match=contains and ansi=keep, through real bash."""

from __future__ import annotations

import tempfile

import pytest


def test_console_block_checks_each_command_and_names_the_failing_line(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        # Transcript

        ```console
        $ export GREETING=hi
        $ echo "$GREETING there"
        hi there
        $ printf '%s\\n' one \\
        >   two
        one
        two
        $ echo wrong
        right
        $ echo never-run > never.txt
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:11: command 'echo wrong': output differs: "
            "expected line 1 'right' does not match output line 1 'wrong'",
            "",
            ">11 | $ echo wrong",
            "",
            "--- expected",
            "+++ actual",
            "@@ -1 +1 @@",
            "-right",
            "+wrong",
        ]
    )
    assert not (pytester.path / "never.txt").exists()  # a console block stops at its failure


def test_shell_session_language_and_cram_exit_lines(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```shell-session
        $ test -d /no/such/dir
        [1]
        $ sh -c 'echo out; exit 3'
        out
        [3]
        $ true
        ```

        ```console
        $ false
        [2]
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["doc.md:11: command 'false' failed: exit status 1, expected 2"])


def test_exit_attribute_any_and_nonzero(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=nonzero exit=nonzero}
        grep -q needle /dev/null
        ```

        ```sh {name=any exit=any}
        true
        ```

        ```sh {name=nonzero-but-zero exit=nonzero}
        true
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["doc.md:9: cell 'nonzero-but-zero' exit status 0, expected nonzero"]
    )


def test_wildcards_and_regex_lines(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=wild}
        echo "build 4711 finished in 3.2s"
        seq 1 5
        echo "id=abc-123"
        echo "literal .* (not a regex)"
        ```

        ```output
        build [..] finished in [..]s
        1
        ...
        5
        id=[a-z]+-\\d+ (re)
        literal .* (not a regex)
        ```

        ```sh {name=ellipsis-zero-lines}
        echo only
        ```

        ```output
        ...
        only
        ...
        ```

        ```sh {name=regex-is-full-match}
        echo "prefix id=abc-123"
        ```

        ```output
        id=[a-z]+-\\d+ (re)
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:27: cell 'regex-is-full-match' output differs from the output block at "
            "doc.md:31: expected line 1 'id=*' does not match output line 1 "
            "'prefix id=abc-123'"
        ]
    )


def test_a_literal_line_with_regex_characters_never_matches_by_accident(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=literal}
        echo "axb"
        ```

        ```output
        a.b
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)


def test_substitutions_cwd_tmp_root_and_frontmatter(pytester: pytest.Pytester, runbook) -> None:
    (pytester.path / "sub").mkdir()
    runbook(
        """
        ---
        substitutions:
          "[HOST]": build-box-7
        env:
          HOSTNAME_FOR_DOC: build-box-7
        ---

        ```sh {name=paths}
        pwd
        echo "$RUNBOOK_TMPDIR/file"
        echo "host $HOSTNAME_FOR_DOC"
        ```

        ```output
        [CWD]
        [TMP]/file
        host [HOST]
        ```

        ```sh {name=cell-cwd cwd=sub}
        pwd
        ```

        ```output
        [CWD]
        ```

        ```sh {name=root}
        echo "$PWD"
        ```

        ```output
        [ROOT]/docs
        ```
        """,
        name="docs/guide.md",
    )
    (pytester.path / "docs" / "sub").mkdir()
    pytester.makeini("[pytest]\n")  # the rootdir is the pytester directory
    result = pytester.runpytest("docs/guide.md", "-v")
    result.assert_outcomes(passed=3)


def test_match_contains_checks_lines_in_order(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=log}
        printf 'starting\\nnoise 1\\nready on port 8080\\nnoise 2\\ndone\\n'
        ```

        ```output {match=contains}
        ready on port [..]
        done
        ```

        ```sh {name=log-out-of-order}
        printf 'done\\nready on port 8080\\n'
        ```

        ```output {match=contains}
        ready on port [..]
        done
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["doc.md:10: cell 'log-out-of-order' output differs*"])


def test_ansi_escapes_stripped_unless_kept(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=colour}
        printf '\\033[32mgreen\\033[0m\\n'
        ```

        ```output
        green
        ```

        ```sh {name=colour-kept ansi=keep}
        printf '\\033[32mgreen\\033[0m\\n'
        ```

        ```output
        green
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["doc.md:9: cell 'colour-kept' output differs*"])


def test_normalisation_trailing_spaces_blank_lines_and_crlf(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=messy}
        printf 'a   \\r\\nb\\r\\n\\n\\n'
        ```

        ```output
        a
        b
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)


def test_cwd_placeholder_matches_through_symlinks(
    pytester: pytest.Pytester, runbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # macOS's $TMPDIR lives under /var, a symlink to /private/var; docs dirs can be symlinks.
    real = pytester.path / "real"
    (real / "tmp").mkdir(parents=True)
    (pytester.path / "link").symlink_to(real)
    monkeypatch.setattr(tempfile, "tempdir", str(pytester.path / "link" / "tmp"))
    runbook(
        """
        ```sh {name=here}
        pwd; python3 -c "import os; print(os.getcwd())"
        ```

        ```output
        [CWD]
        [CWD]
        ```

        ```sh {name=sub cwd=sub}
        pwd
        ```

        ```output
        [CWD]
        ```
        """,
        "real/docs/here.md",
    )
    (real / "docs" / "sub").mkdir()
    runbook(
        """
        ---
        cwd: tmp
        ---

        ```sh {name=in-tmp}
        pwd
        ```

        ```output
        [CWD]
        ```
        """,
        "real/docs/tmp.md",
    )
    result = pytester.runpytest("link/docs/here.md", "link/docs/tmp.md", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
