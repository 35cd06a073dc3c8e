"""Update mode (SPEC 6): ``--runbook-update`` writes actual outputs back into the Markdown.

Every test asserts the exact bytes of the file afterwards, and that a second run right after
passes and leaves the file alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_runbook import rewrite
from pytest_runbook.document import Document, parse, split_lines
from pytest_runbook.matching import check


def write(pytester: pytest.Pytester, data: bytes, name: str = "doc.md") -> Path:
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def md(text: str) -> bytes:
    """Test documents are written with ``|`` margins so leading spaces stay visible."""
    return "".join(line.split("|", 1)[1] + "\n" for line in text.strip().split("\n")).encode()


def assert_second_run_clean(pytester: pytest.Pytester, path: Path, passed: int) -> None:
    """Right after an update, a plain run passes and an update run changes nothing."""
    before = path.read_bytes()
    result = pytester.runpytest(path.name, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=passed)
    result = pytester.runpytest(path.name, "-p", "no:cacheprovider", "--runbook-update")
    result.assert_outcomes(passed=passed)
    result.stdout.fnmatch_lines(["runbook: no outputs needed updating"])
    assert path.read_bytes() == before
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".runbook-tmp")]


# -- what is rewritten, what stays --------------------------------------------------------------


def test_rewrites_only_the_output_blocks_that_did_not_match(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |# Demo
            |
            |```sh {name=exact}
            |printf 'same\\n'
            |```
            |
            |```output
            |same
            |```
            |
            |```sh {name=wild}
            |printf 'id 1234\\nmore\\nlines\\n'
            |```
            |```output
            |id [..]
            |...
            |```
            |
            |```bash {name=stale}
            |printf 'new one\\nnew two\\n'
            |```
            |
            |
            |```output
            |old
            |```
            |Trailing text.
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["runbook: 1 output updated in 1 file", "  doc.md"])
    assert path.read_bytes() == md(
        """
        |# Demo
        |
        |```sh {name=exact}
        |printf 'same\\n'
        |```
        |
        |```output
        |same
        |```
        |
        |```sh {name=wild}
        |printf 'id 1234\\nmore\\nlines\\n'
        |```
        |```output
        |id [..]
        |...
        |```
        |
        |```bash {name=stale}
        |printf 'new one\\nnew two\\n'
        |```
        |
        |
        |```output
        |new one
        |new two
        |```
        |Trailing text.
        """
    )
    assert_second_run_clean(pytester, path, passed=3)


def test_console_commands_are_rewritten_one_by_one(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |```console
            |$ echo kept
            |kept
            |$ printf 'a\\nb\\n'
            |stale
            |
            |$ echo added
            |$ printf 'x\\n'; sh -c 'exit 3'
            |wrong
            |[3]
            |$ true
            |gone
            |```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["runbook: 4 outputs updated in 1 file"])
    assert path.read_bytes() == md(
        """
        |```console
        |$ echo kept
        |kept
        |$ printf 'a\\nb\\n'
        |a
        |b
        |
        |$ echo added
        |added
        |$ printf 'x\\n'; sh -c 'exit 3'
        |x
        |[3]
        |$ true
        |```
        """
    )
    assert_second_run_clean(pytester, path, passed=1)


def test_console_exit_statuses_are_recorded_as_cram_does(pytester: pytest.Pytester) -> None:
    # A status that changed is written as `[N]` under the output (and `[N]` goes when the
    # command now succeeds); the commands after it still run and are updated too. A cell's
    # own exit= (not a `[N]` line) is the author's claim and is never rewritten.
    path = write(
        pytester,
        md(
            """
            |```console
            |$ echo one
            |uno
            |$ ls /nonexistent-dir-for-update
            |$ echo two; sh -c 'exit 3'
            |t[..]
            |
            |[4]
            |$ true
            |[1]
            |$ echo end
            |$ exit 3
            |[4]
            |```
            |
            |```console {exit=1}
            |$ true
            |```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["runbook: 6 outputs updated in 1 file"])
    assert path.read_bytes() == md(
        """
        |```console
        |$ echo one
        |one
        |$ ls /nonexistent-dir-for-update
        |ls: cannot access '/nonexistent-dir-for-update': No such file or directory
        |[2]
        |$ echo two; sh -c 'exit 3'
        |t[..]
        |[3]
        |$ true
        |$ echo end
        |end
        |$ exit 3
        |[3]
        |```
        |
        |```console {exit=1}
        |$ true
        |```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_lines_that_still_match_are_kept_as_written(pytester: pytest.Pytester) -> None:
    # As cram -i does: wildcards, regexes and `...` that still hold survive an update; only
    # the stale lines are replaced, so the next run passes although the pid changes.
    path = write(
        pytester,
        md(
            """
            |```sh {name=ver}
            |echo "pid $$"; echo "version 2"; seq 1 3; echo tail
            |```
            |
            |```output
            |pid \\d+ (re)
            |version 1
            |...
            |tail
            |```
            |
            |```console
            |$ echo "pid $$"; echo added; echo "build 3"
            |pid [..]
            |build 2
            |```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert path.read_bytes() == md(
        r"""
        |```sh {name=ver}
        |echo "pid $$"; echo "version 2"; seq 1 3; echo tail
        |```
        |
        |```output
        |pid \d+ (re)
        |version 2
        |...
        |tail
        |```
        |
        |```console
        |$ echo "pid $$"; echo added; echo "build 3"
        |pid [..]
        |added
        |build 3
        |```
        """
    )
    assert_second_run_clean(pytester, path, passed=2)


def test_update_stops_a_block_it_may_not_record(pytester: pytest.Pytester) -> None:
    # An xfail cell or a cell's own exit= is never rewritten, so the block stops at the
    # failing command as in a normal run: later commands (maybe destructive) never run.
    path = write(
        pytester,
        md(
            """
            |```console {xfail=true}
            |$ false
            |$ touch ran-after-xfail
            |```
            |
            |```console {exit=1}
            |$ true
            |$ touch ran-after-exit
            |```
            """
        ),
    )
    before = path.read_bytes()
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1, failed=1)
    assert not (pytester.path / "ran-after-xfail").exists()
    assert not (pytester.path / "ran-after-exit").exists()
    assert path.read_bytes() == before


def test_match_contains_keeps_its_selection_and_replaces_only_stale_lines(
    pytester: pytest.Pytester,
) -> None:
    source = md(
        """
        |```sh {name=server}
        |printf 'booting\\nServer v1.3 on port 8080\\nworkers: 4\\nready in 12ms\\nbye\\n'
        |```
        |
        |```output {match=contains}
        |Server v1.2 on port 8080
        |ready in [..]
        |removed line
        |```
        """
    )
    path = write(pytester, source)
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["runbook: 1 output updated in 1 file"])
    # Each stale line becomes the most similar output line in its place (between the lines
    # matched before and after it); the wildcard line that still matches stays as written, and
    # the output the block never selected is not added.
    assert path.read_bytes() == source.replace(
        b"Server v1.2 on port 8080\nready in [..]\nremoved line\n",
        b"Server v1.3 on port 8080\nready in [..]\nbye\n",
    )
    assert_second_run_clean(pytester, path, passed=1)


def test_merge_of_a_contains_block() -> None:
    def merged(expected: List[str], actual: str) -> Optional[List[str]]:
        return rewrite.expected_for(actual, {}, mode="contains", previous=expected)

    assert merged(["v1.2 ok", "[..]done"], "start\nv1.3 ok\nall done\n") == ["v1.3 ok", "[..]done"]
    assert merged(["a", "gone", "c"], "a\nc\n") == ["a", "c"]  # nothing between a and c
    assert merged(["a", "...", "zz"], "a\nb\nc\n") == ["a", "...", "b"]
    # output lines written as they are read back: escaped where they would be wildcards
    assert merged(["x"], "...\n") == ["\\.\\.\\. (re)"]


def test_update_new_inserts_output_blocks_where_cells_printed(pytester: pytest.Pytester) -> None:
    source = md(
        """
        |```sh {name=prints}
        |echo hello
        |```
        |Text right after.
        |
        |```sh {name=quiet}
        |true
        |```
        |
        |~~~~sh {name=tilde}
        |printf '~~~~~\\n'
        |~~~~
        """
    )
    path = write(pytester, source)
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert path.read_bytes() == source  # plain update mode adds nothing
    result = pytester.runpytest("doc.md", "--runbook-update=new", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["runbook: 2 output blocks added in 1 file"])
    assert path.read_bytes() == md(
        """
        |```sh {name=prints}
        |echo hello
        |```
        |
        |```output
        |hello
        |```
        |Text right after.
        |
        |```sh {name=quiet}
        |true
        |```
        |
        |~~~~sh {name=tilde}
        |printf '~~~~~\\n'
        |~~~~
        |
        |~~~~~~output
        |~~~~~
        |~~~~~~
        """
    )
    assert_second_run_clean(pytester, path, passed=3)


def test_update_new_at_end_of_file_without_final_newline(pytester: pytest.Pytester) -> None:
    path = write(pytester, b"```sh\r\necho hi\r\n```")
    result = pytester.runpytest("doc.md", "--runbook-update=new", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert path.read_bytes() == b"```sh\r\necho hi\r\n```\r\n\r\n```output\r\nhi\r\n```"
    assert_second_run_clean(pytester, path, passed=1)


# -- every other byte stays ----------------------------------------------------------------


def test_crlf_bom_and_missing_final_newline_are_kept(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        b"\xef\xbb\xbf# CRLF\r\n\r\n```sh\r\nprintf 'a\\nb\\n'\r\n```\r\n\r\n"
        b"```output\r\nold\r\n```",
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert path.read_bytes() == (
        b"\xef\xbb\xbf# CRLF\r\n\r\n```sh\r\nprintf 'a\\nb\\n'\r\n```\r\n\r\n"
        b"```output\r\na\r\nb\r\n```"
    )
    assert_second_run_clean(pytester, path, passed=1)


def test_list_items_and_blockquotes_keep_their_prefixes(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |1. Step one:
            |
            |   ```sh
            |   printf 'one\\n\\n  indented\\n'
            |   ```
            |
            |   ```output
            |   old
            |   ```
            |
            |- ```sh
            |  echo in-list
            |  ```
            |
            |> Quoted:
            |>
            |> ```sh
            |> printf 'q1\\n\\n q2\\n'
            |> ```
            |>
            |> ```output
            |> old
            |> ```
            |
            |>```sh
            |>printf '  tight\\n'
            |>```
            |
            |> - ```console
            |>   $ echo nested
            |>   stale
            |>   ```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update=new", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["runbook: 3 outputs updated and 2 output blocks added in 1 file"])
    assert path.read_bytes() == md(
        """
        |1. Step one:
        |
        |   ```sh
        |   printf 'one\\n\\n  indented\\n'
        |   ```
        |
        |   ```output
        |   one
        |
        |     indented
        |   ```
        |
        |- ```sh
        |  echo in-list
        |  ```
        |
        |  ```output
        |  in-list
        |  ```
        |
        |> Quoted:
        |>
        |> ```sh
        |> printf 'q1\\n\\n q2\\n'
        |> ```
        |>
        |> ```output
        |> q1
        |>
        |>  q2
        |> ```
        |
        |>```sh
        |>printf '  tight\\n'
        |>```
        |>
        |>```output
        |>   tight
        |>```
        |
        |> - ```console
        |>   $ echo nested
        |>   nested
        |>   ```
        """
    )
    assert_second_run_clean(pytester, path, passed=5)


def test_fence_grows_only_when_the_output_holds_a_fence(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |```sh
            |printf 'plain\\n'
            |```
            |
            |```output
            |old
            |```
            |
            |```sh
            |printf '````\\ninside\\n```\\n'
            |```
            |
            |```output
            |old
            |```
            |
            |````console
            |$ printf 'a\\n```\\n'
            |old
            |$ printf '``````\\n'
            |old
            |`````
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert path.read_bytes() == md(
        """
        |```sh
        |printf 'plain\\n'
        |```
        |
        |```output
        |plain
        |```
        |
        |```sh
        |printf '````\\ninside\\n```\\n'
        |```
        |
        |`````output
        |````
        |inside
        |```
        |`````
        |
        |```````console
        |$ printf 'a\\n```\\n'
        |a
        |```
        |$ printf '``````\\n'
        |``````
        |```````
        """
    )
    assert_second_run_clean(pytester, path, passed=3)


def test_fence_after_a_list_marker_grows(pytester: pytest.Pytester) -> None:
    path = write(pytester, b"- ```console\n  $ printf '%s\\n' '```'\n  ```\n\nAfter.")
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert path.read_bytes() == b"- ````console\n  $ printf '%s\\n' '```'\n  ```\n  ````\n\nAfter."
    assert_second_run_clean(pytester, path, passed=1)


def test_output_the_matcher_would_misread_is_written_escaped(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |```sh
            |printf '...\\nx (re)\\nin [CWD] here\\na [..] b\\n'
            |```
            |
            |```output
            |old
            |```
            |
            |```console
            |$ printf '> not a continuation\\n$ not a command\\nok\\n[7]\\n'
            |old
            |```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert path.read_bytes() == md(
        r"""
        |```sh
        |printf '...\nx (re)\nin [CWD] here\na [..] b\n'
        |```
        |
        |```output
        |\.\.\. (re)
        |x \(re\) (re)
        |in \x5bCWD\] here (re)
        |a [..] b
        |```
        |
        |```console
        |$ printf '> not a continuation\n$ not a command\nok\n[7]\n'
        |\> not a continuation (re)
        |\$ not a command (re)
        |ok
        |\[7\] (re)
        |```
        """
    )
    assert_second_run_clean(pytester, path, passed=2)


def test_bytes_that_are_not_utf8_are_written_as_escapes(pytester: pytest.Pytester) -> None:
    # The Markdown file stays UTF-8: undecodable bytes become \udcXX escapes in a (re) line.
    path = write(
        pytester,
        md(
            """
            |```sh {name=bin}
            |printf 'head \\xff\\xfe tail\\n'; echo fine
            |```
            |
            |```output
            |nope
            |```
            """
        ),
    )
    path.with_name("other.md").write_bytes(md("|```sh\n|echo other\n|```\n|```output\n|x\n|```"))
    result = pytester.runpytest("doc.md", "other.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["runbook: 2 outputs updated in 2 files"])
    assert path.read_bytes() == md(
        r"""
        |```sh {name=bin}
        |printf 'head \xff\xfe tail\n'; echo fine
        |```
        |
        |```output
        |head \udcff\udcfe tail (re)
        |fine
        |```
        """
    )
    assert_second_run_clean(pytester, path, passed=1)


def test_session_paths_are_written_as_placeholders(pytester: pytest.Pytester) -> None:
    (pytester.path / "sub").mkdir()
    path = write(
        pytester,
        md(
            """
            |```sh
            |echo "tmp: $RUNBOOK_TMPDIR/x"; pwd
            |```
            |
            |```output
            |old
            |```
            |
            |```sh {cwd=sub}
            |pwd; echo "$PWD/.." | sed 's,/sub/..$,,'
            |```
            |
            |```output
            |old
            |```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert path.read_bytes() == md(
        """
        |```sh
        |echo "tmp: $RUNBOOK_TMPDIR/x"; pwd
        |```
        |
        |```output
        |tmp: [TMP]/x
        |[CWD]
        |```
        |
        |```sh {cwd=sub}
        |pwd; echo "$PWD/.." | sed 's,/sub/..$,,'
        |```
        |
        |```output
        |[CWD]
        |[ROOT]
        |```
        """
    )
    assert_second_run_clean(pytester, path, passed=2)


# -- what fails still fails ------------------------------------------------------------------


def test_failures_for_other_reasons_are_not_rewritten(pytester: pytest.Pytester) -> None:
    source = md(
        """
        |```sh {name=status}
        |echo printed; false
        |```
        |
        |```output
        |old
        |```
        |
        |```sh {name=slow timeout=0.5}
        |echo started; sleep 5
        |```
        |
        |```output
        |old
        |```
        |
        |```sh {name=declared exit=1}
        |echo declared; false
        |```
        |
        |```output
        |old
        |```
        """
    )
    path = write(pytester, source)
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*cell 'status' exit status 1*", "*timed out after 0.5 s*"])
    result.stdout.fnmatch_lines(["runbook: 1 output updated in 1 file"])
    head, _, tail = source.rpartition(b"old\n```\n")
    assert path.read_bytes() == head + b"declared\n```\n" + tail  # only the declared exit


# -- writing: once, at the end, atomically --------------------------------------------------


def test_the_file_is_written_once_at_session_end(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |```sh
            |echo first
            |```
            |
            |```output
            |wrong
            |```
            |
            |```sh {name=still-unchanged}
            |cp doc.md during.md && ls -a > listing.txt
            |```
            """
        ),
    )
    original = path.read_bytes()
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert b"first\n```" in path.read_bytes()
    assert (pytester.path / "during.md").read_bytes() == original
    assert "runbook-tmp" not in (pytester.path / "listing.txt").read_text()
    assert_second_run_clean(pytester, path, passed=2)


def test_a_file_changed_during_the_run_is_not_clobbered(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |```sh
            |echo first
            |```
            |
            |```output
            |wrong
            |```
            |
            |```sh
            |echo 'Edited meanwhile.' >> doc.md
            |```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 file(s) changed during the run and were not written*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # not green: a mismatch stays unwritten
    assert path.read_bytes().endswith(
        b"wrong\n```\n\n```sh\necho 'Edited meanwhile.' >> doc.md\n```\nEdited meanwhile.\n"
    )


def test_a_mismatch_after_the_file_changed_fails_its_cell(pytester: pytest.Pytester) -> None:
    path = write(
        pytester,
        md(
            """
            |```sh
            |echo 'Edited meanwhile.' >> doc.md
            |```
            |
            |```sh {name=second}
            |echo second
            |```
            |
            |```output
            |wrong
            |```
            """
        ),
    )
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*doc.md:5: cell 'second': its output no longer matches what the file says, and "
            "update mode cannot rewrite it: doc.md changed on disk during the run",
            "*fix: run with --runbook-update again once the file is saved",
        ]
    )
    assert b"wrong" in path.read_bytes()


def test_interrupted_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "doc.md"
    path.write_bytes(b"old contents\n")
    os.chmod(path, 0o640)

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rewrite.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rewrite.write_atomically(str(path), "new contents\n" * 1000)
    assert path.read_bytes() == b"old contents\n"
    assert os.listdir(tmp_path) == ["doc.md"]
    monkeypatch.undo()
    rewrite.write_atomically(str(path), "new\n")
    assert path.read_bytes() == b"new\n"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["doc.md"]


def test_xdist_workers_write_their_files_and_the_summary_adds_up(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    for number in range(3):
        write(
            pytester,
            md(
                f"""
                |```sh
                |echo file{number}
                |```
                |
                |```output
                |old
                |```
                |
                |```console
                |$ echo again{number}
                |{"again" + str(number) if number == 0 else "old"}
                |```
                """
            ),
            name=f"doc{number}.md",
        )
    result = pytester.runpytest_subprocess(
        "doc0.md", "doc1.md", "doc2.md", "-n", "2", "--runbook-update", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        ["runbook: 5 outputs updated in 3 files", "  doc0.md", "  doc1.md", "  doc2.md"]
    )
    for number in range(3):
        assert (pytester.path / f"doc{number}.md").read_bytes() == md(
            f"""
            |```sh
            |echo file{number}
            |```
            |
            |```output
            |file{number}
            |```
            |
            |```console
            |$ echo again{number}
            |again{number}
            |```
            """
        )


# -- property: only output contents change, and a second run is clean ---------------------

_WORDS = st.sampled_from(["alpha", "beta", "Gamma 2", "  lead", "x=1", "a  b", "-", "#"])
_SPECIAL = st.sampled_from(["```", "~~~~", "...", "v (re)", "[..]", "$ x", "> y", "[1]", ""])
_LINES = st.lists(st.one_of(_WORDS, _WORDS, _SPECIAL), max_size=4)


@st.composite
def _annotation(draw: st.DrawFn, printed: List[str], console: bool) -> Optional[List[str]]:
    """None (no output block), or expected lines: matching, wildcarded or stale."""
    kind = draw(st.sampled_from(["none", "same", "dots", "glob", "stale"]))
    if kind == "none":
        return None
    if kind == "same":
        lines = list(printed)
    elif kind == "dots":
        lines = [*printed[:1], "..."]
    elif kind == "glob" and printed and printed[0]:
        lines = [printed[0][:1] + "[..]", *printed[1:]]
    else:
        lines = draw(_LINES.filter(lambda lines: lines != printed))
    if console:  # written as they are, these would be commands or exit statuses, not output
        lines = ["stale" if _CONSOLE_SYNTAX.match(line) else line for line in lines]
    return lines


_CONSOLE_SYNTAX = re.compile(r"^(\$( |$)|>( |$)|\[[0-9]+\]$)")


def _fit(fence: str, lines: List[str]) -> str:
    """The fence made longer than any line among ``lines`` that would close it."""
    longest = len(fence) - 1
    for line in lines:
        stripped = line.lstrip(" ")
        run = len(stripped) - len(stripped.lstrip(fence[0]))
        if len(line) - len(stripped) <= 3 and run >= 3:
            longest = max(longest, run)
    return fence[0] * (longest + 1)


def _in(rest: str, line: str) -> str:
    if not line:
        return rest.rstrip()
    return rest + (" " if rest.endswith(">") and line.startswith(" ") else "") + line


def _printf(lines: List[str]) -> str:
    return "printf '%s\\n' " + " ".join(f"'{line}'" for line in lines) if lines else "true"


@st.composite
def _segment(draw: st.DrawFn) -> List[str]:
    """One cell (sh or console) with its annotation, inside a container or not."""
    fence = draw(st.sampled_from(["```", "~~~", "````"]))
    container = draw(st.sampled_from(["", "- ", "1. ", "> ", ">", "> - "]))
    rest = {"": "", "- ": "  ", "1. ": "   ", "> ": "> ", ">": ">", "> - ": ">   "}[container]
    lines: List[str] = []
    if draw(st.booleans()):
        commands = draw(st.lists(_LINES, min_size=1, max_size=3))
        for printed in commands:
            lines.append("$ " + _printf(printed))
            lines += draw(_annotation(printed, console=True)) or []
        fence = _fit(fence, lines)
        lines = [fence + "console", *lines, fence]
    else:
        printed = draw(_LINES)
        lines += [fence + "sh", _printf(printed), fence]
        expected = draw(_annotation(printed, console=False))
        if expected is not None:
            out = _fit(fence, expected)
            lines += [""] * draw(st.integers(0, 1)) + [out + "output", *expected, out]
    return [container + lines[0]] + [_in(rest, line) for line in lines[1:]]


@st.composite
def _document(draw: st.DrawFn) -> Tuple[bytes, str]:
    segments = draw(st.lists(_segment(), min_size=1, max_size=4))
    lines: List[str] = ["# Generated"]
    for number, segment in enumerate(segments):
        lines += ["", *segment, "", f"Paragraph {number}."]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.integers(0, 4)) == 0 else ""
    mode = draw(st.sampled_from(["--runbook-update", "--runbook-update=new"]))
    return (bom + text).encode(), mode


def _regions(doc: Document) -> Tuple[List[Tuple[int, int]], Dict[int, Tuple[int, int]]]:
    """Content ranges of expected output, and per cell its output block's whole span."""
    content: List[Tuple[int, int]] = []
    spans: Dict[int, Tuple[int, int]] = {}
    for cell in doc.cells:
        if cell.expected is not None:
            block = cell.expected.block
            content.append((block.content_start, block.content_end))
            assert cell.block is not None
            spans[cell.index] = (cell.block.content_end + 1, block.content_end + 1)
        content += [(c.expected_start, c.expected_end) for c in cell.commands]
    return sorted(content), spans


def _skeleton(doc: Document, drop: List[Tuple[int, int]]) -> List[str]:
    """The document's lines with each expected-output range folded into one marker line."""
    lines = split_lines(doc.text)
    content, _ = _regions(doc)
    starts = {start: end for start, end in content}
    out: List[str] = []
    number = 0
    while number <= len(lines):
        if any(a <= number < b for a, b in drop):
            number += 1
            continue
        if number in starts:
            out.append("<output>")
            if starts[number] > number:
                number = starts[number]
                continue
        if number < len(lines):
            out.append(lines[number])
        number += 1
    return out


_FENCE = re.compile(r"^([ >]*(?:(?:[-*+]|[0-9]+[.)]) +)?)(`{3,}|~{3,})")


def _same_but_fence(old: str, new: str) -> bool:
    if old == new:
        return True
    o, n = _FENCE.match(old), _FENCE.match(new)
    return bool(
        o
        and n
        and o.group(2)[0] == n.group(2)[0]
        and len(n.group(2)) > len(o.group(2))
        and old[o.end() :] == new[n.end() :]
    )


def _outputs(doc: Document) -> Dict[Tuple[int, int], Tuple[str, ...]]:
    """Expected lines per (cell, command) of the document."""
    found: Dict[Tuple[int, int], Tuple[str, ...]] = {}
    for cell in doc.cells:
        if cell.expected is not None:
            found[(cell.index, -1)] = cell.expected.lines
        for number, command in enumerate(cell.commands):
            found[(cell.index, number)] = command.expected
    return found


def _printed(doc: Document) -> Dict[Tuple[int, int], str]:
    """What each cell and console command prints: the generator's printf, run by Python."""
    result: Dict[Tuple[int, int], str] = {}

    def run(source: str) -> str:
        if source == "true":
            return ""
        return "".join(arg + "\n" for arg in re.findall(r"'([^']*)'", source)[1:])

    for cell in doc.cells:
        if cell.kind == "console":
            for number, command in enumerate(cell.commands):
                result[(cell.index, number)] = run(command.source)
        else:
            result[(cell.index, -1)] = run(cell.source)
    return result


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_document())
def test_property_only_output_contents_change(
    pytester: pytest.Pytester, case: Tuple[bytes, str]
) -> None:
    data, mode = case
    path = write(pytester, data)
    old = parse(data.decode("utf-8"))
    result = pytester.runpytest("doc.md", mode, "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=len(old.cells))
    new_data = path.read_bytes()
    new = parse(new_data.decode("utf-8"))

    # The BOM, line endings and the final newline (or its absence) stay as they were.
    assert new.bom == old.bom
    assert new_data.endswith(b"\n") == data.endswith(b"\n")
    assert (b"\r\n" in data) == (new_data.count(b"\n") == new_data.count(b"\r\n"))

    # Outside expected-output lines, every line is byte-identical (a fence may only grow);
    # with =new, the blocks added after cells that had none are the only other change.
    assert len(new.cells) == len(old.cells)
    _, new_spans = _regions(new)
    _, old_spans = _regions(old)
    added = [span for index, span in new_spans.items() if index not in old_spans]
    old_skeleton, new_skeleton = _skeleton(old, []), _skeleton(new, added)
    assert len(old_skeleton) == len(new_skeleton)
    for old_line, new_line in zip(old_skeleton, new_skeleton):
        assert _same_but_fence(old_line, new_line), (old_line, new_line)

    # Annotations that matched are untouched; all of them match now; =new adds only where
    # something was printed.
    printed = _printed(old)
    before, after = _outputs(old), _outputs(new)
    for key, actual in printed.items():
        if key in before and check(before[key], actual) is None:
            assert after[key] == before[key]
        if key in after:
            assert check(after[key], actual) is None, (after[key], actual)
        elif mode.endswith("new") and key[1] == -1:
            assert not actual.strip()
    if mode == "--runbook-update":
        assert not added

    # A second run passes and changes nothing.
    result = pytester.runpytest("doc.md", mode, "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=len(old.cells))
    result.stdout.fnmatch_lines(["runbook: no outputs needed updating"])
    assert path.read_bytes() == new_data


def test_xfail_cells_are_never_rewritten(pytester: pytest.Pytester, runbook) -> None:
    text = """
        ```sh {name=known-bug xfail="prints the wrong greeting (#12)"}
        echo "helo"
        ```

        ```output
        hello
        ```
        """
    path = runbook(text)
    before = path.read_bytes()
    result = pytester.runpytest("doc.md", "--runbook-update", "-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1)
    assert path.read_bytes() == before
