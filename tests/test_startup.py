"""What the plugin costs a run (issue 15): which files it reads, what it imports, what it compiles.

The times themselves are measured by bench/startup.py, not here; these tests pin the causes:
a file nobody asked for is not read, a run without Markdown imports five small modules, and
no module of the package goes through pytest's assertion rewriter.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

import pytest_runbook

PACKAGE = Path(pytest_runbook.__file__).resolve().parent

# Reports, at the end of a run, which of the package's modules were imported and how.
REPORT_CONFTEST = """
import sys

HEAVY = (
    "markdown_it", "yaml", "tomllib", "tomli", "doctest", "pexpect", "ptyprocess", "nbformat",
    "jupyter_client",
)

def pytest_sessionfinish(session):
    ours = sorted(name for name in sys.modules if name.startswith("pytest_runbook"))
    heavy = sorted(name for name in HEAVY if name in sys.modules)
    loaders = sorted({type(sys.modules[name].__loader__).__name__ for name in ours[1:]})
    print(f"\\nIMPORTED {' '.join(ours)}\\nHEAVY {' '.join(heavy)}\\nLOADERS {' '.join(loaders)}")
"""

# A cell that leaves a trace: if it ran, the file exists.
TOUCHING_CELL = "```sh\ntouch {marker}\n```\n"


def report_line(result: pytest.RunResult, key: str) -> list[str]:
    for line in result.outlines:
        if line.startswith(f"{key} ") or line == key:
            return line.split()[1:]
    raise AssertionError(f"no {key} line in:\n{result.stdout.str()}")


def test_markdown_beside_a_named_test_file_is_neither_read_nor_run(
    pytester: pytest.Pytester, runbook
) -> None:
    # pytest offers the plugin every file of tests/ (and of the rootdir) when one is named.
    pytester.makeconftest(REPORT_CONFTEST)
    pytester.makepyfile(**{"tests/test_x": "def test_x():\n    pass\n"})
    runbook(TOUCHING_CELL.format(marker="ran-beside"), name="tests/README.md")
    runbook(TOUCHING_CELL.format(marker="ran-above"), name="README.md")
    (pytester.path / "tests" / "binary.md").write_bytes(b"\x00\x01\xff" * 100)
    for opt_in in ([], ["--runbook"]):
        result = pytester.runpytest_subprocess("tests/test_x.py", "-s", *opt_in)
        result.assert_outcomes(passed=1)
        assert report_line(result, "IMPORTED") == [
            "pytest_runbook",
            "pytest_runbook.defaults",
            "pytest_runbook.errors",
            "pytest_runbook.options",
            "pytest_runbook.plugin",
            "pytest_runbook.settings",
        ]
    assert not (pytester.path / "ran-beside").exists()
    assert not (pytester.path / "ran-above").exists()
    # Asked for, they are runbooks (the binary one a collection error that names it).
    result = pytester.runpytest("tests/test_x.py", "tests/README.md", "README.md")
    result.assert_outcomes(passed=3)
    result = pytester.runpytest("tests", "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*tests/binary.md*"])


def test_a_run_without_markdown_imports_no_parser_and_no_session(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(REPORT_CONFTEST)
    for n in range(3):
        pytester.makepyfile(**{f"test_{n}": "def test_ok():\n    pass\n"})
    result = pytester.runpytest_subprocess("test_0.py", "test_1.py", "test_2.py", "-s")
    result.assert_outcomes(passed=3)
    assert report_line(result, "IMPORTED") == [
        "pytest_runbook",
        "pytest_runbook.defaults",
        "pytest_runbook.errors",
        "pytest_runbook.options",
        "pytest_runbook.plugin",
        "pytest_runbook.settings",
    ]
    assert report_line(result, "HEAVY") == []


def test_a_shell_runbook_imports_only_what_it_uses(pytester: pytest.Pytester, runbook) -> None:
    # YAML, TOML, doctest, the rewriter, text notebooks, transcripts, pexpect (Linux spawns
    # bash itself), notebooks and kernels: each is imported by the first file that uses it.
    pytester.makeconftest(REPORT_CONFTEST)
    runbook("# One cell\n\n```sh\ntrue\n```\n\n```python\nprint(1)\n```\n")
    result = pytester.runpytest_subprocess("doc.md", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    expected_heavy = ["markdown_it"] if sys.platform.startswith("linux") else None
    heavy = report_line(result, "HEAVY")
    if expected_heavy is not None:
        assert heavy == expected_heavy
    else:  # pexpect spawns the shell elsewhere
        assert [name for name in heavy if name not in ("pexpect", "ptyprocess")] == ["markdown_it"]
    imported = set(report_line(result, "IMPORTED"))
    for unused in ("doctests", "rewrite", "textnotebooks", "transcript", "notebook"):
        assert f"pytest_runbook.{unused}" not in imported
    assert not [name for name in imported if name.startswith("pytest_runbook.sessions.python")]
    assert "pytest_runbook.sessions.kernel" not in imported
    assert "pytest_runbook.document.yamlload" not in imported
    # The same file with YAML frontmatter and a pycon transcript: now they are needed.
    runbook("---\ntimeout: 30\n---\n\n```sh\ntrue\n```\n")
    result = pytester.runpytest_subprocess("doc.md", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "yaml" in report_line(result, "HEAVY")
    runbook("+++\ntimeout = 30\n+++\n\n```pycon\n>>> 1 + 1\n2\n```\n")
    result = pytester.runpytest_subprocess("doc.md", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    heavy = report_line(result, "HEAVY")
    assert "doctest" in heavy and ("tomllib" in heavy or "tomli" in heavy)
    assert "yaml" not in heavy


def test_every_module_opts_out_of_assertion_rewriting() -> None:
    """The rule for new modules: the docstring says PYTEST_DONT_REWRITE, near the top."""
    unmarked = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_bytes()
        docstring = ast.get_docstring(ast.parse(source), clean=False) or ""
        # The finder in __init__.py reads the first 8 KiB only.
        if "PYTEST_DONT_REWRITE" not in docstring or b"PYTEST_DONT_REWRITE" not in source[:8192]:
            unmarked.append(str(path.relative_to(PACKAGE)))
    assert unmarked == []


def test_no_module_goes_through_the_assertion_rewriter(
    pytester: pytest.Pytester, runbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest marks a plugin's package for rewriting only when it finds it on sys.path, as it
    # does after a wheel install; an editable install hides it, so put it there.
    monkeypatch.setenv("PYTHONPATH", str(PACKAGE.parent))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    pytester.makeconftest(REPORT_CONFTEST)
    runbook("```sh\necho hi\n```\n\n```output\nhi\n```\n")
    result = pytester.runpytest_subprocess("doc.md", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "pytest_runbook.items" in report_line(result, "IMPORTED")
    assert report_line(result, "LOADERS") == ["SourceFileLoader"]


def test_transcripts_inside_the_tested_tree_are_not_collected(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook("```sh {name=hello}\necho hello\n```\n", name="docs/a.md")
    result = pytester.runpytest("docs", "--runbook-transcript=docs/transcripts")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "docs" / "transcripts" / "docs" / "a.md").is_file()
    for args in (["--runbook-transcript=docs/transcripts", "docs"], ["docs"], ["--runbook"]):
        result = pytester.runpytest(*args, "--collect-only", "-q")
        result.stdout.fnmatch_lines(["docs/a.md::hello", "", "1 test collected*"])
    # Named, a transcript is a runbook like any other file.
    result = pytester.runpytest("docs/transcripts/docs/a.md", "-q")
    result.assert_outcomes(passed=1, warnings=1)  # its output block follows a comment


def test_named_markdown_is_collected_whatever_the_patterns(
    pytester: pytest.Pytester, runbook
) -> None:
    pytester.makeini("[pytest]\nrunbook_patterns = *.runbook\n")
    runbook(TOUCHING_CELL.format(marker="ran-md"), name="docs/guide.md")
    runbook(TOUCHING_CELL.format(marker="ran-runbook"), name="docs/deploy.runbook")
    runbook(TOUCHING_CELL.format(marker="ran-txt"), name="docs/notes.txt")
    result = pytester.runpytest("docs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["docs/deploy.runbook::*", "1 test collected*"])
    result = pytester.runpytest("docs/guide.md", "docs/notes.txt", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["docs/guide.md::*", "1 test collected*"])


def test_markdown_reached_through_a_symlinked_directory(pytester: pytest.Pytester, runbook) -> None:
    # Paths are compared as pytest offers them (absolute, links kept), never resolved.
    runbook("```sh\necho real\n```\n", name="real/a.md")
    os.symlink(pytester.path / "real", pytester.path / "link")
    result = pytester.runpytest("link", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["link/a.md::echo-real", "1 test collected*"])
    result = pytester.runpytest("link/a.md", "-q")
    result.assert_outcomes(passed=1)


def test_files_named_one_by_one_run_once_each(pytester: pytest.Pytester, runbook) -> None:
    # pytest offers every file of docs/ again for each one named; each must still run once.
    for n in range(3):
        runbook(f'```sh {{name=c}}\necho "{n}" >> ../ran\n```\n', name=f"docs/d{n}.md")
    names = [f"docs/d{n}.md" for n in range(3)]
    pytester.runpytest(*names).assert_outcomes(passed=3)
    assert (pytester.path / "ran").read_text().split() == ["0", "1", "2"]
    pytester.runpytest("--keep-duplicates", names[0], names[0]).assert_outcomes(passed=2)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="inspects /proc")
def test_the_first_files_shell_starts_when_collection_ends(
    pytester: pytest.Pytester, runbook
) -> None:
    # Its start-up then overlaps pytest's own work before the first item runs.
    pytester.makeconftest(
        "from test_pytest_native import _live_shells\n\n"
        "def pytest_runtest_setup(item):\n"
        "    with open('shells-before-setup', 'a') as f:\n"
        "        f.write(' '.join(_live_shells()) + '\\n')\n"
    )
    pytester.syspathinsert(os.path.dirname(__file__))
    runbook("```sh {name=first}\necho $$ > pid\n```\n\n```sh {name=second}\ntrue\n```\n")
    pytester.runpytest("doc.md", "-p", "no:randomly").assert_outcomes(passed=2)
    before_first = (pytester.path / "shells-before-setup").read_text().splitlines()[0].split()
    assert before_first == [(pytester.path / "pid").read_text().strip()]
    # Not for --collect-only, which runs nothing.
    (pytester.path / "shells-before-setup").unlink()
    pytester.makeconftest(
        "from test_pytest_native import _live_shells\n\n"
        "def pytest_unconfigure(config):\n"
        "    with open('shells-at-end', 'w') as f:\n"
        "        f.write(' '.join(_live_shells()))\n"
    )
    result = pytester.runpytest("doc.md", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["doc.md::first", "doc.md::second"])
    assert (pytester.path / "shells-at-end").read_text() == ""


def test_the_run_ends_once_every_closed_shell_is_reaped_and_its_directories_removed(
    pytester: pytest.Pytester, runbook
) -> None:
    # A file's teardown leaves the reaping and the removal to a helper thread; the run's end
    # (here, pytester's in-process run returning) waits for it, even when the thread is slow.
    pytester.makeconftest(
        "import time\n"
        "from pytest_runbook.sessions.shell import reaper\n\n"
        "def pytest_runtest_teardown(item):\n"
        "    reaper.defer(lambda: time.sleep(0.5))\n"
    )
    for n in range(5):
        runbook('```sh\necho "$RUNBOOK_TMPDIR" >> ../dirs; echo $$ >> ../pids\n```\n', f"d/{n}.md")
    pytester.runpytest("d").assert_outcomes(passed=5)
    dirs = (pytester.path / "dirs").read_text().split()
    assert len(dirs) == 5 and not [d for d in dirs if os.path.exists(d)]
    for pid in (pytester.path / "pids").read_text().split():
        with pytest.raises(ChildProcessError):  # reaped: no zombie left
            os.waitpid(int(pid), os.WNOHANG)


def test_reaper_wait_returns_once_the_deferred_jobs_ran() -> None:
    import threading
    import time

    from pytest_runbook.sessions.shell import reaper

    release, done = threading.Event(), []
    reaper.defer(release.wait, lambda: done.append("first"))
    reaper.defer(lambda: done.append("second"))
    waited = threading.Thread(target=reaper.wait)
    waited.start()
    time.sleep(0.2)
    assert waited.is_alive() and done == []
    release.set()
    waited.join(5)
    assert not waited.is_alive() and done == ["first", "second"]


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads /proc")
def test_a_file_whose_early_start_was_dropped_runs_afresh_and_closes(
    pytester: pytest.Pytester, runbook
) -> None:
    """c.md is started early out of turn, then dropped when b.md starts early (only the next
    file keeps its head start); when c.md's turn comes it must run on a fresh run of its own
    and close it at its end, not on the dropped one (whose sessions nobody would close)."""
    runbook("```sh {name=a1}\ntrue\n```\n\n```sh {name=a2}\ntrue\n```\n", "a.md")
    runbook("```sh {name=b1}\ntrue\n```\n", "b.md")
    runbook("```sh {name=c1}\necho $$ > c.pid\n```\n", "c.md")
    pytester.makeconftest(
        """
        import pytest

        def pytest_runtest_setup(item):
            if item.name == "a1":
                files = {i.parent.path.name: i.parent for i in item.session.items}
                files["c.md"].start_early(files["a.md"])
        """
    )
    result = pytester.runpytest("a.md", "b.md", "c.md", "-p", "no:xdist", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    pid = int((pytester.path / "c.pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), f"c.md's shell {pid} lives"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
