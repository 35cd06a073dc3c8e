"""The Runme project's own runbooks, run unchanged through the plugin (issue 5).

The corpus (``shared/compat/runme``: real files from runmedev/runme and stateful/vscode-runme,
with ``expectations.json`` saying what Runme does with each block) is copied verbatim, with
its sibling files, three directories deep into a temporary directory, so that
``RELATIVE.md``'s ``cwd: ../../../`` resolves as it does upstream. It is run by pytest in a
subprocess, exactly as a user would, and never edited: cells that need tools, the network or a
terminal user are left out with ``--deselect`` built from ``expectations.json``.

Checked: collected names equal Runme's (``--collect-only -q``); pass and tty cells pass, fail
cells fail, excluded cells are skipped in a full run and pass when selected by id; expected
outputs (``{DIR}`` substituted) match with the plugin's own matcher. The few places where one
persistent shell must differ from Runme are listed in ``DIVERGENCES`` with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Tuple

import pytest

from pytest_runbook.matching import check

# shared/ sits beside the project root (as CI lays it out); the variable points elsewhere.
CORPUS = Path(
    os.environ.get(
        "RUNBOOK_RUNME_CORPUS",
        Path(__file__).resolve().parents[2] / "shared" / "compat" / "runme",
    )
)
EXPECTATIONS = CORPUS / "expectations.json"

pytestmark = pytest.mark.skipif(
    not EXPECTATIONS.exists(), reason=f"Runme corpus not present at {CORPUS}"
)

# (file, cell) -> what we do instead of Runme, and why. Everything else behaves as in Runme.
DIVERGENCES: Dict[Tuple[str, str], str] = {
    # Runme runs each cell as a fresh script: bash warns about the heredoc that never ends
    # and exits 0. Typed into one live shell it would wait forever; the session detects the
    # unfinished input, fails the cell with a message that says so, and recovers (SPEC 4).
    ("testdata__flags__fmt__LCID-all.md", "rm-f"): "left waiting for more input",
}

# Not a divergence in outcome, only in where output goes: Runme's CLI ignores background:true
# without a remote server and runs the cell in the foreground. Here background=true (SPEC 4)
# starts the cell and it passes once started; what it prints goes to its own log, not to the
# cell's output, so the output of a background cell is not compared (CATEGORIES.md::echo-).


def _load() -> Dict[str, Any]:
    if not EXPECTATIONS.exists():
        return {"files": []}
    data: Dict[str, Any] = json.loads(EXPECTATIONS.read_text(encoding="utf-8"))
    return data


DATA = _load()
FILES: List[Dict[str, Any]] = DATA["files"]


def _cells(status: str) -> List[Tuple[str, str]]:
    return [(f["file"], c["name"]) for f in FILES for c in f["cells"] if c["status"] == status]


_SHELLS = {"sh", "bash", "shell", "zsh", "shellscript", "console", "shell-session"}
_INTERPRETED = {"python", "py", "js", "javascript", "ruby", "rb", "perl", "php", "lua", "ts"}


def _is_cell(cell: Dict[str, Any], bare_fences: str = "skip") -> bool:
    """SPEC 2 on the corpus. Documentation blocks (ini, md, and go without an interpreter)
    are not cells; a bare fence with no language and no attributes is a cell only with
    ``bare-fences: shell`` (Runme runs it as shell)."""
    language, attributes = cell["language"] or "", cell["attributes"]
    if cell["status"] == "not-a-cell":
        return False
    if language in _SHELLS or "interpreter" in attributes:
        return True
    if language == "":
        return bool(attributes) or bare_fences == "shell"
    return language in _INTERPRETED and bool(attributes)


def _id(file: str, name: str) -> str:
    return f"{file}::{name}"


def _entry(file: str, name: str) -> Dict[str, Any]:
    for entry in FILES:
        if entry["file"] == file:
            for cell in entry["cells"]:
                if cell["name"] == name:
                    found: Dict[str, Any] = cell
                    return found
    raise KeyError(_id(file, name))


def _params(cases: List[Tuple[str, str]]) -> List[Any]:
    return [pytest.param(file, name, id=_id(file, name)) for file, name in cases]


# -- running pytest on the copy ---------------------------------------------------------

_REPORTER = """
import json, os

_outcomes = {}


def pytest_runtest_logreport(report):
    entry = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "text": ""})
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
    if report.longreprtext:
        entry["text"] += report.longreprtext + "\\n"


def pytest_sessionfinish(session):
    with open(os.environ["CORPUS_REPORT"], "w") as handle:
        json.dump(_outcomes, handle)
"""


class Run(NamedTuple):
    outcomes: Dict[str, Dict[str, str]]
    outputs: Dict[str, str]  # nodeid -> what the cell printed (from --runbook-transcript)
    stdout: str


class Corpus:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "a" / "b" / "c"  # three deep: RELATIVE.md's cwd is ../../../
        self.dir.mkdir(parents=True)
        for source in sorted(CORPUS.iterdir()):
            if source.is_file():
                shutil.copyfile(source, self.dir / source.name)  # verbatim, but writable
        (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (root / "corpus_reporter.py").write_text(_REPORTER, encoding="utf-8")
        self.runs = 0

    def pytest(self, *args: str, timeout: float = 600) -> Run:
        self.runs += 1
        report = self.root / f"report-{self.runs}.json"
        transcripts = self.root / f"transcripts-{self.runs}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), env.get("PYTHONPATH", "")])
        env["CORPUS_REPORT"] = str(report)
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTEST_XDIST_WORKER", None)
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(self.root / "pytest.ini"),
            "--rootdir",
            str(self.dir),
            "-p",
            "no:cacheprovider",
            "-p",
            "corpus_reporter",
            "--runbook-transcript",
            str(transcripts),
            "-o",
            "runbook_timeout=20",
            *args,
        ]
        done = subprocess.run(
            command,
            cwd=self.dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        outcomes: Dict[str, Dict[str, str]] = {}
        if report.exists():
            outcomes = json.loads(report.read_text(encoding="utf-8"))
        return Run(outcomes, _transcript_outputs(transcripts), done.stdout)

    def substitute(self, expected: List[str]) -> List[str]:
        """``{DIR}`` (and ``{DIR}/..``...) -> the copy's directory, normalised."""

        def path(match: re.Match[str]) -> str:
            return os.path.normpath(str(self.dir) + (match.group(1) or ""))

        return [re.sub(r"\{DIR\}((?:/\.\.)+)?", path, line) for line in expected]


_TRANSCRIPT = re.compile(r"<!-- runbook transcript: (.+?): .* -->")


def _transcript_outputs(directory: Path) -> Dict[str, str]:
    """Each cell's output from the ``--runbook-transcript`` files (an output block after a
    ``<!-- runbook transcript: NAME: ... -->`` line)."""
    outputs: Dict[str, str] = {}
    if not directory.is_dir():
        return outputs
    for path in directory.rglob("*.md"):
        file = str(path.relative_to(directory))
        lines = path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines):
            found = _TRANSCRIPT.fullmatch(line.strip())
            if not found:
                continue
            fence = lines[number + 1].strip()[: -len("output")]
            body: List[str] = []
            for text in lines[number + 2 :]:
                if text.strip() == fence:
                    break
                body.append(text)
            outputs[_id(file, found.group(1))] = "\n".join(body) + ("\n" if body else "")
    return outputs


def _deselect() -> List[str]:
    args: List[str] = []
    for file, name in _cells("skip"):
        args += ["--deselect", _id(file, name)]
    return args


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("runme-corpus"))


@pytest.fixture(scope="module")
def full_run(corpus: Corpus) -> Run:
    """Every runbook, as ``pytest docs/`` would run it, minus the cells that cannot run here."""
    files = [f["file"] for f in FILES]
    return corpus.pytest(*files, *_deselect())


@pytest.fixture(scope="module")
def explicit_run(corpus: Corpus) -> Run:
    """The excluded cells selected by id (with the cells that read their exports), and the
    ``.env`` value Runme loads for ``echo-env`` given with ``--runbook-env``."""
    wanted: List[str] = []
    for file in FILES:
        excluded = {c["name"] for c in file["cells"] if c["status"] == "excluded"}
        for cell in file["cells"]:
            if cell["name"] in excluded or excluded & set(cell["depends_on"]):
                wanted.append(_id(file["file"], cell["name"]))
    wanted.append(_id("testdata__beta__base__README.md", "echo-env"))
    dotenv = (corpus.dir / "testdata__beta__base__.env").read_text(encoding="utf-8")
    env_args: List[str] = []
    for line in dotenv.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env_args += ["--runbook-env", f"{name.strip()}={value.strip().strip(chr(34))}"]
    return corpus.pytest(*wanted, *env_args, *_deselect())


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("bare_fences", ["skip", "shell"])
def test_collected_names_equal_runme_names(corpus: Corpus, bare_fences: str) -> None:
    files = [f["file"] for f in FILES]
    run = corpus.pytest("--collect-only", "-q", "-o", f"runbook_bare_fences={bare_fences}", *files)
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    expected = [
        _id(f["file"], c["name"]) for f in FILES for c in f["cells"] if _is_cell(c, bare_fences)
    ]
    assert collected == expected, run.stdout
    # The names of non-cells still count for de-duplication, so every name is Runme's own.
    assert "echo-hello-3" in run.stdout and "grpcurl--5" in run.stdout


# -- outcomes ---------------------------------------------------------------------------


def _outcome(run: Run, file: str, name: str) -> Dict[str, str]:
    nodeid = _id(file, name)
    assert nodeid in run.outcomes, f"{nodeid} did not run:\n{run.stdout[-3000:]}"
    return run.outcomes[nodeid]


@pytest.mark.parametrize(
    ("file", "name"), _params([c for c in _cells("pass") + _cells("tty") if _is_cell(_entry(*c))])
)
def test_pass_cells_pass(full_run: Run, file: str, name: str) -> None:
    outcome = _outcome(full_run, file, name)
    divergence = DIVERGENCES.get((file, name))
    if divergence is not None:
        assert outcome["outcome"] == "failed"
        assert divergence in outcome["text"], outcome["text"]
        return
    assert outcome["outcome"] == "passed", outcome["text"]


@pytest.mark.parametrize(("file", "name"), _params(_cells("fail")))
def test_fail_cells_fail(full_run: Run, file: str, name: str) -> None:
    outcome = _outcome(full_run, file, name)
    assert outcome["outcome"] == "failed", outcome["text"]


@pytest.mark.parametrize(("file", "name"), _params(_cells("excluded")))
def test_excluded_cells_skip_unless_selected(
    full_run: Run, explicit_run: Run, file: str, name: str
) -> None:
    skipped = _outcome(full_run, file, name)
    assert skipped["outcome"] == "skipped"
    assert "excludeFromRunAll" in skipped["text"]
    selected = _outcome(explicit_run, file, name)
    assert selected["outcome"] == "passed", selected["text"]


def test_skip_cells_are_left_out_and_nothing_else(full_run: Run) -> None:
    ran = set(full_run.outcomes)
    for file, name in _cells("skip"):
        assert _id(file, name) not in ran
    runnable = {_id(f, n) for s in ("pass", "tty", "fail", "excluded") for f, n in _cells(s)}
    assert ran == runnable - {_id("testdata__script__basic__README.md", "echo-hello-2")}


def test_summary(full_run: Run) -> None:
    counts: Dict[str, int] = {}
    for outcome in full_run.outcomes.values():
        counts[outcome["outcome"]] = counts.get(outcome["outcome"], 0) + 1
    # 75 pass/tty - 1 bare fence (not a cell by default) = 74: 73 pass + rm-f (divergence);
    # 3 fail cells + rm-f fail; 3 excluded skip.
    assert counts == {"passed": 73, "failed": 4, "skipped": 3}, full_run.stdout[-3000:]


# -- outputs ----------------------------------------------------------------------------


def _output_cases() -> List[Tuple[str, str]]:
    excluded = set(_cells("excluded"))
    cases = []
    for file in FILES:
        for cell in file["cells"]:
            if cell["status"] not in ("pass", "tty", "fail") or cell["expected"] is None:
                continue
            if not _is_cell(cell) or (file["file"], cell["name"]) in DIVERGENCES:
                continue
            if cell["attributes"].get("background") == "true":
                continue  # its output goes to the background log (see DIVERGENCES)
            if any((file["file"], d) in excluded for d in cell["depends_on"]):
                continue  # checked in the explicit run, where the excluded cell runs
            cases.append((file["file"], cell["name"]))
    return cases


def _expected(file: str, name: str) -> List[str]:
    lines: List[str] = _entry(file, name)["expected"]
    return lines


def _check_output(corpus: Corpus, run: Run, file: str, name: str, expected: List[str]) -> None:
    nodeid = _id(file, name)
    assert nodeid in run.outputs, f"no transcript output for {nodeid}"
    mismatch = check(corpus.substitute(expected), run.outputs[nodeid])
    assert mismatch is None, f"{nodeid}: {mismatch.reason}\n{mismatch.diff()}"


@pytest.mark.parametrize(("file", "name"), _params(_output_cases()))
def test_outputs_match_runme(corpus: Corpus, full_run: Run, file: str, name: str) -> None:
    _check_output(corpus, full_run, file, name, _expected(file, name))


def test_outputs_of_excluded_cells_and_their_readers(corpus: Corpus, explicit_run: Run) -> None:
    checked = 0
    for file in FILES:
        excluded = {c["name"] for c in file["cells"] if c["status"] == "excluded"}
        for cell in file["cells"]:
            if cell["name"] in excluded or excluded & set(cell["depends_on"]):
                _check_output(corpus, explicit_run, file["file"], cell["name"], cell["expected"])
                checked += 1
    assert checked == 4
    # Runme loads the project's .env; here the harness gives it with --runbook-env.
    base = "testdata__beta__base__README.md"
    _check_output(corpus, explicit_run, base, "echo-env", ["ENV_IN_ENV=env_in_env"])


# -- Runme's "Decide" case: a bare fence ---------------------------------------------------


def test_bare_fence_runs_as_shell_when_asked(corpus: Corpus) -> None:
    file = "testdata__script__basic__README.md"
    run = corpus.pytest(file, "-o", "runbook_bare_fences=shell", *_deselect())
    assert _outcome(run, file, "echo-hello-2")["outcome"] == "passed"
    _check_output(corpus, run, file, "echo-hello-2", _expected(file, "echo-hello-2"))
    assert all(o["outcome"] != "failed" for o in run.outcomes.values()), run.stdout


# -- divergences from Runme's fresh process per cell --------------------------------------


def test_exit_in_a_cell_gives_the_next_cell_a_fresh_session(full_run: Run) -> None:
    failed = _outcome(full_run, "examples__README.md", "echo-ok")
    assert "the shell exited with status 1" in failed["text"]
    after = _outcome(full_run, "examples__README.md", "hello-js")
    assert after["outcome"] == "passed"


def test_stty_opost_does_not_leak_into_later_cells(corpus: Corpus, full_run: Run) -> None:
    # print-foo and print-bar run `stty -opost` in the shared terminal; the next cells'
    # output still arrives with plain line ends and matches.
    file = "testdata__runall__basic__README.md"
    assert _outcome(full_run, file, "print-bar")["outcome"] == "passed"
    tags = "testdata__tags__tags__install-manual-solution-2.md"
    _check_output(corpus, full_run, tags, "echo-delete", ["Delete solution"])
