"""pytest-runbook side by side with its peers (SPEC section 8, issue 9). Prints numbers only.

    python bench/run.py                     # everything: several minutes (tesh alone ~5)
    python bench/run.py --quick             # fewer runs, no tesh: for iterating on a fix
    python bench/run.py --only trivial,big  # some benchmarks (names below)
    python bench/run.py --tools runbook,pytest

Benchmarks: roundtrip (Session alone, no pytest), trivial (1,000 `true` cells in one file),
echo (200 `echo` cells, output checked), files (100 files x 10 cells), big (one cell printing
15 MB, checked against `...`), collect (1,000 files, --collect-only), xdist (20 files of
sleeping cells, -n 0 vs -n 2).

Python cells and notebooks (SPEC sections 9 and 10, issues 16 and 17), against Sybil,
pytest-markdown-docs, pytest-codeblocks, byexample, `pytest --doctest-glob` and nbval:
pysession (the Python session alone, no pytest), pystate (1,000 stateful checked cells in one
file), pydoctest (1,000 `>>>` examples in one README), pyfiles (100 files x 10 stateful cells),
notebooks (10 copies of a 9-cell .ipynb, and as Markdown with `kernel: python3`).

    python bench/run.py --only pysession,pystate,pydoctest,pyfiles,notebooks
    python bench/run.py --only pystate,pydoctest,pyfiles,notebooks --reps 1   # a quick check

In these, a tool whose run fails (ours before the Python session exists, say) shows as
"failed: <reason>" in its row and the others still run.

Every figure is a whole process (start-up included) run from a fresh directory holding only
the corpus and an empty pytest.ini; the tools alternate within each repetition and the table
shows the median wall time and the largest peak RSS of any process in the run's tree
(getrusage via wait4). Each run must exit 0 and report the expected number of items, else the
benchmark stops: a tool that did less work must not look fast. Peers are installed from PyPI
into bench/.venvs/ (see bench/peers.py); corpora are generated in $TMPDIR/pytest-runbook-bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpora  # noqa: E402
import peers  # noqa: E402

# Not under a dot-directory: pytest-prysk skips files whose path has a hidden part.
CORPORA = Path(tempfile.gettempdir()) / "pytest-runbook-bench"
RESULTS = HERE / ".results"
BENCHES = (
    "roundtrip",
    "trivial",
    "echo",
    "files",
    "big",
    "collect",
    "xdist",
    "pysession",
    "pystate",
    "pydoctest",
    "pyfiles",
    "notebooks",
)
PER_ITEM = ("runbook", "pytest", "codeblocks", "pytest-prysk", "prysk", "tesh", "bash")
PY_TOOLS = ("sybil", "markdown-docs", "byexample", "doctest", "nbval")
ALL_TOOLS = PER_ITEM + PY_TOOLS
TOOLS: Dict[str, Tuple[str, ...]] = {
    "trivial": PER_ITEM,
    "echo": PER_ITEM,
    "files": PER_ITEM,
    "big": ("runbook", "codeblocks", "pytest-prysk", "prysk", "tesh", "bash"),
    "collect": ("runbook", "pytest", "codeblocks", "pytest-prysk"),
    "xdist": ("runbook", "pytest", "codeblocks", "pytest-prysk"),
}
# Python benches: (tool, variant, corpus flavour, extra arguments) per row.
PY_ROWS: Dict[str, List[Tuple[str, str, str, List[str]]]] = {
    "pystate": [
        ("runbook", "", "runbook", []),
        ("runbook", "(python-blocks: all)", "runbook-blocks", []),
        ("pytest", "", "pytest", []),
        ("sybil", "", "sybil", []),
        ("doctest", "", "doctest", []),
        ("byexample", "", "byexample", []),
        ("markdown-docs", "", "markdown-docs", []),
        ("codeblocks", "", "codeblocks", []),
    ],
    "pydoctest": [
        ("runbook", "", "runbook", []),
        ("pytest", "", "pytest", []),
        ("sybil", "", "sybil", []),
        ("doctest", "", "doctest", []),
        ("byexample", "", "byexample", []),
    ],
    "pyfiles": [
        ("runbook", "", "runbook", []),
        ("pytest", "", "pytest", []),
        ("sybil", "", "sybil", []),
        ("doctest", "", "doctest", []),
        ("byexample", "", "byexample", []),
        ("markdown-docs", "", "markdown-docs", []),
        ("codeblocks", "", "codeblocks", []),
    ],
    "notebooks": [
        ("runbook", "", "runbook", []),
        ("runbook", "(kernel: python3 .md)", "runbook-md", []),
        ("pytest", "", "pytest", []),
        ("nbval", "--nbval", "nbval", ["--nbval"]),
        ("nbval", "--nbval-lax", "nbval", ["--nbval-lax"]),
    ],
}
for _bench, _rows in PY_ROWS.items():
    TOOLS[_bench] = tuple(dict.fromkeys(tool for tool, *_ in _rows))
SLOW = {"tesh"}  # ~0.1 s per cell: one run, no warm-up
NOTE = {
    "codeblocks": "a process per block, no shared state",
    "pytest-prysk": "one item per file",
    "prysk": "one script per file, no pytest",
    "tesh": "one pexpect session, no pytest",
    "pytest": "empty test functions: pytest's per-item floor",
    "bash": "the commands alone, one bash per file",
    "sybil": "in-process, one namespace per document; 2 doctest examples per cell",
    "doctest": "`--doctest-glob='*.md'`: one item per file",
    "byexample": "one `python -i` per file on a PTY, no pytest; 2 examples per cell",
    "markdown-docs": "no output check (asserts); `continuation` re-runs every earlier block",
}
# Notes that hold for one benchmark only: (bench, label) -> note.
BENCH_NOTE = {
    ("pystate", "runbook"): "```python {name=..} cells + ```output blocks, one interpreter",
    ("pystate", "runbook (python-blocks: all)"): "unnamed ```python cells, frontmatter opt-in",
    ("pydoctest", "runbook"): "```python blocks starting with `>>> `, doctest's rules",
    ("pyfiles", "runbook"): "named cells + ```output blocks, one interpreter per file",
    ("notebooks", "runbook"): "`pytest nb/` on the .ipynb files, one kernel per file",
    ("notebooks", "runbook (kernel: python3 .md)"): "the same cells as Markdown runbooks",
    ("pystate", "codeblocks"): "`cont` merges all cells: 1 item, output checked once at the end",
    ("pyfiles", "codeblocks"): "`cont` merges a file's cells: 1 item per file",
    ("pydoctest", "sybil"): "in-process doctest, one item per example",
    ("pydoctest", "byexample"): "one `python -i` per file on a PTY, no pytest",
    ("notebooks", "nbval --nbval"): "every stored output checked",
    (
        "notebooks",
        "nbval --nbval-lax",
    ): "outputs NOT checked (only cells marked NBVAL_CHECK_OUTPUT)",
    ("notebooks", "pytest"): "90 empty tests in 10 files",
}
# The venv each tool runs from; its bin/ goes first on PATH, as when a user activated it (so
# byexample's `python -i` and a kernelspec's `python` are that venv's interpreter).
VENV_OF = {
    "runbook": "runbook",
    "pytest": "runbook",
    "doctest": "runbook",
    "codeblocks": "codeblocks",
    "pytest-prysk": "prysk",
    "prysk": "prysk",
    "tesh": "tesh",
    "sybil": "sybil",
    "markdown-docs": "mddocs",
    "byexample": "byexample",
    "nbval": "nbval",
}


@dataclass
class Run:
    wall: float
    rss_kb: int


@dataclass
class Row:
    bench: str
    tool: str
    variant: str = ""
    runs: List[Run] = field(default_factory=list)
    note: str = ""
    failed: str = ""

    @property
    def label(self) -> str:
        return f"{self.tool} {self.variant}".strip()

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def rss_mb(self) -> float:
        return max(r.rss_kb for r in self.runs) / 1024


# -- running one tool ------------------------------------------------------------------------


def _child_env(tool: str = "") -> Dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "VIRTUAL_ENV")) and k not in ("PYTHONPATH",)
    }
    # Byte-code caches as a user has them: this machine sets PYTHONDONTWRITEBYTECODE=1,
    # which would make pytest-runbook (editable, so never byte-compiled by pip) recompile
    # its modules on every run while pytest and the peers load theirs from .pyc.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if tool in VENV_OF:
        bin_dir = peers.bin_path(VENV_OF[tool], "python").parent
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def command(tool: str, job: corpora.Job, extra: Sequence[str] = ()) -> List[str]:
    q = ["-q", "-p", "no:cacheprovider", *extra]
    if tool == "runbook":
        return [str(peers.bin_path("runbook", "python")), "-m", "pytest", *q, *job.paths]
    if tool == "pytest":
        python = str(peers.bin_path("runbook", "python"))
        return [python, "-m", "pytest", "-p", "no:runbook", *q, *job.paths]
    if tool == "codeblocks":
        python = str(peers.bin_path("codeblocks", "python"))
        return [python, "-m", "pytest", *q, "--codeblocks", *job.paths]
    if tool == "pytest-prysk":
        python = str(peers.bin_path("prysk", "python"))
        return [python, "-m", "pytest", *q, "--prysk-shell=/bin/bash", *job.paths]
    if tool == "prysk":
        return [str(peers.bin_path("prysk", "prysk")), "--shell=/bin/bash", *job.paths]
    if tool == "tesh":
        return [str(peers.bin_path("tesh", "tesh")), *job.paths]
    if tool == "sybil":
        return [str(peers.bin_path("sybil", "python")), "-m", "pytest", *q, *job.paths]
    if tool == "doctest":
        python = str(peers.bin_path("runbook", "python"))
        return [python, "-m", "pytest", "-p", "no:runbook", *q, "--doctest-glob=*.md", *job.paths]
    if tool == "markdown-docs":
        python = str(peers.bin_path("mddocs", "python"))
        return [python, "-m", "pytest", *q, "--markdown-docs", *job.paths]
    if tool == "nbval":  # --nbval or --nbval-lax come as extra arguments
        return [str(peers.bin_path("nbval", "python")), "-m", "pytest", *q, *job.paths]
    if tool == "byexample":
        files = sorted(str(p.relative_to(job.cwd)) for p in _files(job, "*.md"))
        return [str(peers.bin_path("byexample", "byexample")), "-l", "python", *files]
    if tool == "bash":
        if job.paths == ["docs"]:
            return ["bash", "-c", 'for f in docs/*.sh; do bash "$f" || exit; done']
        return ["bash", *job.paths]
    raise ValueError(tool)


def _files(job: corpora.Job, pattern: str) -> List[Path]:
    found: List[Path] = []
    for name in job.paths:
        path = job.cwd / name
        found.extend(sorted(path.rglob(pattern)) if path.is_dir() else [path])
    return found


TIME = "/usr/bin/time"  # GNU time: a small launcher, so its fork does not inherit our RSS


def measure(
    argv: Sequence[str], cwd: Path, limit: float = 900, tool: str = ""
) -> Tuple[Run, int, str]:
    """Wall time and peak RSS (largest process of the tree, via wait4) of one run.

    The RSS comes from GNU time when it is installed: a fork of this (large) Python process
    would report our own RSS as the child's peak, since Linux counts the pages a child
    shares before exec.
    """
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        launcher = [TIME, "-q", "-f", "%M", "-o", rss.name] if os.path.exists(TIME) else []
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*launcher, *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(tool),
        )
        watchdog = threading.Timer(limit, proc.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        peak = usage.ru_maxrss
        if launcher:
            lines = rss.read().split()
            peak = int(lines[-1]) if lines and lines[-1].isdigit() else peak
    return Run(wall, peak), proc.returncode, text


_COUNT = re.compile(r"(\d+) (?:passed|tests? collected)")
_PRYSK = re.compile(r"# Ran (\d+) tests, 0 skipped, 0 failed")
_BYEXAMPLE = re.compile(r"\[(PASS|FAIL|ABORT)\] Pass: (\d+) Fail: (\d+) Skip: (\d+)")


def _summary(text: str) -> str:
    """The run's last words (pytest's summary line), to say why a run did not count."""
    lines = [line.strip("= ") for line in text.splitlines() if line.strip("= ")]
    return lines[-1][:100] if lines else "no output"


def verify(tool: str, job: corpora.Job, rc: int, text: str, collect_only: bool) -> Optional[str]:
    """Why this run does not count (failed, or did less than the corpus), or None."""
    if rc != 0:
        return f"exit status {rc} ({_summary(text)})"
    if tool in ("bash",):
        return None
    if tool == "byexample":  # one summary per file; every one must pass
        reports = _BYEXAMPLE.findall(text)
        passed = sum(int(p) for verdict, p, f, k in reports if verdict == "PASS" and f == k == "0")
        documents = len(_files(job, "*.md"))
        if len(reports) != documents or passed != job.items:
            return f"expected {job.items} examples passed in {documents} files, got {passed}"
        return None
    if tool == "tesh":
        return "tesh reported a failure" if "Failed" in text else None
    if tool == "prysk":
        files = 1 if job.paths != ["docs"] else len(list((job.cwd / "docs").glob("*.t")))
        found = _PRYSK.search(text)
        return None if found and int(found.group(1)) == files else "prysk did not run every file"
    counts = _COUNT.findall(text)
    if not counts or int(counts[-1]) != job.items:
        got = counts[-1] if counts else "no summary"
        return f"expected {job.items} items{' collected' if collect_only else ' passed'}, got {got}"
    return None


def _one(row: Row, job: corpora.Job, extra: List[str], record: bool) -> None:
    argv = command(row.tool, job, extra)
    run, rc, text = measure(argv, job.cwd, tool=row.tool)
    problem = verify(row.tool, job, rc, text, "--collect-only" in extra)
    if problem:  # shown in the table as failed; the other tools still run
        tail = "\n".join(line[:200] for line in text.splitlines()[-15:])
        print(
            f"[bench] {row.bench}/{row.label}: {problem}\n  cwd: {job.cwd}\n"
            f"  command: {' '.join(argv)}\n{tail}",
            file=sys.stderr,
        )
        row.failed = problem
        return
    if record:
        row.runs.append(run)
        print(
            f"[bench] {row.bench:<8} {row.label:<18} {run.wall:8.3f} s {run.rss_kb / 1024:7.1f} MB",
            file=sys.stderr,
            flush=True,
        )


# -- benchmarks ------------------------------------------------------------------------------


def bench_roundtrip(quick: bool) -> Dict[str, float]:
    """The session alone: ``true`` round trips and 15 MB through the PTY, checked with ``...``."""
    from pytest_runbook.matching import check
    from pytest_runbook.sessions.base import Request
    from pytest_runbook.sessions.shell import ShellSession as Session

    n = 300 if quick else 2000
    numbers: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cwd:
        session = Session(cwd=cwd)
        try:
            for _ in range(50):
                session.run(Request("true", "bench", 0, timeout=10))
            times = []
            for _ in range(n):
                start = time.perf_counter()
                session.run(Request("true", "bench", 0, timeout=10))
                times.append(time.perf_counter() - start)
            times.sort()
            numbers["true_median_ms"] = statistics.median(times) * 1e3
            numbers["true_p99_ms"] = times[int(len(times) * 0.99)] * 1e3
            numbers["cells"] = n
            big, bare = [], []
            for _ in range(2 if quick else 5):
                start = time.perf_counter()
                result = session.run(Request(f"seq 1 {corpora.SEQ_N}", "bench", 0, timeout=120))
                assert check(["..."], result.output) is None and result.status == 0
                big.append(time.perf_counter() - start)
                start = time.perf_counter()
                subprocess.run(
                    ["bash", "-c", f"seq 1 {corpora.SEQ_N}"], stdout=subprocess.PIPE, check=True
                )
                bare.append(time.perf_counter() - start)
            numbers["big_session_s"] = statistics.median(big)
            numbers["big_bash_s"] = statistics.median(bare)
            numbers["big_bytes"] = len(result.output)
        finally:
            session.close()
        numbers.update(_file_lifecycle(cwd, 30 if quick else 100))
    return numbers


def _file_lifecycle(cwd: str, n: int) -> Dict[str, float]:
    """What one file's shell costs us: starting it, its first cell, closing it (medians, ms).

    ``start`` is what our process spends (the spawn); ``first`` is the first cell including
    the wait for bash to start up, at once and after 5 ms of other work (as when a file's
    shell was started early while the previous file finished).
    """
    from pytest_runbook.sessions.base import Request
    from pytest_runbook.sessions.shell import ShellSession as Session

    phases: Dict[str, List[float]] = {"start": [], "first": [], "first_early": [], "close": []}
    for i in range(n):
        session = Session(cwd=cwd)
        start = time.perf_counter()
        session.start()
        phases["start"].append(time.perf_counter() - start)
        if i % 2:
            time.sleep(0.005)
        start = time.perf_counter()
        session.run(Request("true", "bench", 0, timeout=10))
        phases["first_early" if i % 2 else "first"].append(time.perf_counter() - start)
        start = time.perf_counter()
        session.close()
        phases["close"].append(time.perf_counter() - start)
    return {f"file_{k}_ms": statistics.median(v) * 1e3 for k, v in phases.items()}


def bench_files(name: str, tools: Sequence[str], reps: int, scale: int = 1) -> List[Row]:
    jobs = {tool: corpora.build(name, CORPORA, tool, scale) for tool in tools}
    rows = [Row(name, tool, note=NOTE.get(tool, "")) for tool in tools]
    _repeat_labels(rows, jobs, reps, {})
    return rows


def bench_big(tools: Sequence[str], reps: int) -> List[Row]:
    jobs = {tool: corpora.build("big", CORPORA, tool) for tool in tools}
    base = {tool: corpora.build("big-baseline", CORPORA, tool) for tool in tools}
    rows: List[Row] = []
    extra: Dict[str, List[str]] = {}
    for tool in tools:
        rows.append(Row("big", tool, note=NOTE.get(tool, "")))
        rows.append(Row("big", tool, "(1 true cell)"))
    both = {**{r.label: jobs[r.tool] for r in rows if not r.variant}}
    both.update({r.label: base[r.tool] for r in rows if r.variant})
    _repeat_labels(rows, both, reps, extra)
    if "codeblocks" in tools:
        rows[[r.tool for r in rows].index("codeblocks")].note = "output not checked (no `...`)"
    if "prysk" in tools:
        rows[[r.tool for r in rows].index("prysk")].note = "all 2,000,000 lines in the .t file"
    return rows


def bench_collect(tools: Sequence[str], reps: int) -> List[Row]:
    jobs = {f"{tool} --collect-only": corpora.build("collect", CORPORA, tool) for tool in tools}
    rows = [Row("collect", tool, "--collect-only") for tool in tools]
    extra = {row.label: ["--collect-only"] for row in rows}
    for row in rows:
        if row.tool == "pytest-prysk":
            row.note = "one item per file"
    _repeat_labels(rows, jobs, reps, extra)
    return rows


def bench_xdist(tools: Sequence[str], reps: int, quick: bool) -> List[Row]:
    scale = 0 if quick else 1
    jobs: Dict[str, corpora.Job] = {}
    rows: List[Row] = []
    extra: Dict[str, List[str]] = {}
    for tool in tools:
        job = corpora.build("sleep", CORPORA, tool, scale)
        for n in ("0", "2"):
            row = Row("xdist", tool, f"-n {n}")
            rows.append(row)
            jobs[row.label] = job
            extra[row.label] = ["-n", n]
    _repeat_labels(rows, jobs, reps, extra)
    return rows


def bench_python(name: str, tools: Sequence[str], reps: int) -> List[Row]:
    """One of the Python benches: a row per (tool, variant) of ``PY_ROWS[name]``."""
    jobs: Dict[str, corpora.Job] = {}
    extra: Dict[str, List[str]] = {}
    rows: List[Row] = []
    for tool, variant, flavour, args in PY_ROWS[name]:
        if tool not in tools:
            continue
        row = Row(name, tool, variant)
        row.note = BENCH_NOTE.get((name, row.label), NOTE.get(tool, ""))
        try:
            jobs[row.label] = corpora.build(name, CORPORA, flavour)
        except Exception as error:  # e.g. no nbformat anywhere: this row only
            row.failed = f"corpus not built: {error}"
        extra[row.label] = args
        rows.append(row)
    _repeat_labels(rows, jobs, reps, extra)
    return rows


def _python_session_class() -> type:
    """The Python session class (SPEC section 9)."""
    from pytest_runbook.sessions.python.session import PythonSession

    return PythonSession


def bench_pysession(quick: bool) -> Dict[str, float]:
    """The Python session alone (no pytest): interpreter start to a first ``pass`` cell, then
    ``pass`` cells and ``>>>`` examples round trips (medians, ms)."""
    import inspect

    from pytest_runbook.sessions.base import Request

    session_class = _python_session_class()
    n = 300 if quick else 2000
    numbers: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cwd:
        # What a file's run gives its session: where to run and the environment; the rest
        # (the interpreter: pytest's own Python) is left to the session's defaults.
        offered: Dict[str, Any] = {"cwd": cwd, "env": dict(os.environ)}
        kwargs: Dict[str, Any] = {}
        for name, parameter in inspect.signature(session_class).parameters.items():
            if name in offered:
                kwargs[name] = offered[name]
            elif parameter.default is inspect.Parameter.empty and parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                raise RuntimeError(f"{session_class.__name__}() wants {name!r}: teach run.py")

        def request(source: str, mode: str = "cell") -> Request:
            return Request(source=source, path="bench.md", line=0, timeout=10, mode=mode)

        def checked(session: Any, source: str, mode: str = "cell") -> float:
            start = time.perf_counter()
            result = session.run(request(source, mode))
            took = time.perf_counter() - start
            if result.status != 0:
                raise RuntimeError(f"{source!r} -> status {result.status}: {result.output!r}")
            return took

        starts, closes = [], []
        for _ in range(10 if quick else 30):
            session = session_class(**kwargs)
            begin = time.perf_counter()
            session.start()
            checked(session, "pass")
            starts.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            session.close()
            closes.append(time.perf_counter() - begin)
        numbers["start_ms"] = statistics.median(starts) * 1e3
        numbers["close_ms"] = statistics.median(closes) * 1e3
        session = session_class(**kwargs)
        session.start()
        try:
            for _ in range(50):
                checked(session, "pass")
            cells = sorted(checked(session, "pass") for _ in range(n))
            numbers["cell_median_ms"] = statistics.median(cells) * 1e3
            numbers["cell_p99_ms"] = cells[int(len(cells) * 0.99)] * 1e3
            checked(session, "x = 0")
            stateful = [checked(session, "x = x + 1\nx") for _ in range(n)]
            numbers["state_median_ms"] = statistics.median(stateful) * 1e3
            examples = [checked(session, "x + 1", "example") for _ in range(n)]
            numbers["example_median_ms"] = statistics.median(examples) * 1e3
            numbers["cells"] = n
        finally:
            session.close()
    return numbers


def _repeat_labels(
    rows: List[Row], jobs: Dict[str, corpora.Job], reps: int, extra: Dict[str, List[str]]
) -> None:
    """``repeat`` for rows keyed by label (several rows of one tool)."""
    for row in rows:
        if row.tool not in SLOW and not row.failed:
            _one(row, jobs[row.label], extra.get(row.label, []), record=False)
    for rep in range(reps):
        for row in rows:
            if row.failed or (row.tool in SLOW and rep > 0):
                continue
            _one(row, jobs[row.label], extra.get(row.label, []), record=True)


# -- report ----------------------------------------------------------------------------------

TITLES = {
    "trivial": "1,000 `true` cells in one file",
    "echo": "200 `echo` cells, each output checked",
    "files": "100 files x 10 `true` cells",
    "big": "one cell printing 15 MB (`seq 1 2000000`), checked against `...`",
    "collect": "1,000 Markdown files (3 cells each), `--collect-only`",
    "xdist": "20 files x 5 `sleep 0.1` cells, pytest-xdist",
    "pystate": "1,000 stateful Python cells in one file (`x{i} = x{i-1} + 1`, value checked)",
    "pydoctest": "1,000 `>>>` examples in one README (one ```python block each)",
    "pyfiles": "100 files x 10 stateful Python cells",
    "notebooks": "10 notebooks x 9 cells (.ipynb, stored outputs checked)",
}


def table(bench: str, rows: List[Row]) -> List[str]:
    by = {r.label: r for r in rows}
    ref = by.get("pytest") or by.get("pytest --collect-only")
    out = [f"### {TITLES[bench]}", ""]
    out.append("| tool | median s | runs | peak RSS MB | vs pytest | vs runbook | note |")
    out.append("|---|---:|---:|---:|---:|---:|---|")
    ours = next((r for r in rows if r.tool == "runbook" and r.variant == rows[0].variant), None)
    for row in rows:
        if not row.runs:
            if row.failed:
                out.append(f"| {row.label} | failed: {row.failed} | | | | | {row.note} |")
            continue
        vs_pytest = f"{row.median / ref.median:.2f}x" if ref and ref.runs else ""
        same = by.get(f"runbook {row.variant}".strip()) or ours
        vs_ours = f"{row.median / same.median:.2f}x" if same and same.runs else ""
        out.append(
            f"| {row.label} | {row.median:.3f} | {len(row.runs)} | {row.rss_mb:.1f} | "
            f"{vs_pytest} | {vs_ours} | {row.note} |"
        )
    return out


def targets(
    results: Dict[str, List[Row]],
    roundtrip: Dict[str, float],
    pysession: Optional[Dict[str, float]] = None,
    pysession_error: str = "",
) -> List[str]:
    def med(bench: str, label: str) -> Optional[float]:
        for row in results.get(bench, []):
            if row.label == label and row.runs:
                return row.median
        return None

    lines = ["### Targets (SPEC section 8)", "", "| target | measured | verdict |", "|---|---|---|"]

    def add(what: str, measured: Optional[float], fmt: str, ok: bool) -> None:
        if measured is None:
            return
        lines.append(f"| {what} | {fmt.format(measured)} | {'met' if ok else 'MISSED'} |")

    if roundtrip:
        rt = roundtrip["true_median_ms"]
        add("session round trip <= 0.25 ms per cell", rt, "{:.3f} ms (median)", rt <= 0.25)
        extra = roundtrip["big_session_s"] - roundtrip["big_bash_s"]
        add("session: 15 MB + `...` check, over bash", extra, "{:+.3f} s", extra < 0.5)
    for bench in ("trivial", "files"):
        ours, floor = med(bench, "runbook"), med(bench, "pytest")
        if ours and floor:
            ratio = ours / floor
            add(f"{TITLES[bench]}: runbook / pytest <= 1.3", ratio, "{:.2f}x", ratio <= 1.3)
    ours, peer = med("echo", "runbook"), med("echo", "codeblocks")
    if ours and peer:
        add(
            "200 checked echo cells: runbook faster than codeblocks",
            ours / peer,
            "{:.2f}x codeblocks' time",
            ours < peer,
        )
    labels = ("runbook", "runbook (1 true cell)", "bash", "bash (1 true cell)")
    parts = [med("big", x) for x in labels]
    if all(p is not None for p in parts):
        a, b, c, d = (p or 0.0 for p in parts)
        extra = (a - b) - (c - d)
        add("15 MB checked against `...`: cost over bash < 0.5 s", extra, "{:+.3f} s", extra < 0.5)
    collect = med("collect", "runbook --collect-only")
    add("collect 1,000 files < 2 s", collect, "{:.3f} s", (collect or 99) < 2)
    n0, n2 = med("xdist", "runbook -n 0"), med("xdist", "runbook -n 2")
    if n0 and n2:
        add("xdist: -n 2 >= 1.7x faster than -n 0", n0 / n2, "{:.2f}x", n0 / n2 >= 1.7)
    if len(lines) == 4:  # none of section 8's benchmarks ran: no empty table
        lines = []
    if pysession or pysession_error or any(bench in PY_ROWS for bench in results):
        lines += ([""] if lines else []) + python_targets(results, pysession or {}, pysession_error)
    return lines


def python_targets(
    results: Dict[str, List[Row]], pysession: Dict[str, float], pysession_error: str
) -> List[str]:
    """SPEC sections 9 and 10: the Python session and notebooks, as ratios in one run."""
    lines = ["### Targets (SPEC sections 9 and 10)", "", "| target | measured | verdict |"]
    lines.append("|---|---|---|")

    def med(bench: str, label: str) -> Optional[float]:
        for row in results.get(bench, []):
            if row.label == label and row.runs:
                return row.median
        return None

    def add(what: str, measured: Optional[float], fmt: str, ok: bool) -> None:
        if measured is not None:
            lines.append(f"| {what} | {fmt.format(measured)} | {'met' if ok else 'MISSED'} |")

    def unmeasured(what: str, bench: str, labels: Sequence[str]) -> None:
        """A target whose runs failed says so, rather than vanishing from the table."""
        rows = {r.label: r for r in results.get(bench, [])}
        why = [f"{x}: {rows[x].failed}" for x in labels if x in rows and rows[x].failed]
        if why:
            lines.append(f"| {what} | not measured ({'; '.join(why)}) | |")

    def ratio(what: str, bench: str, ours: str, other: str, limit: float, strict: bool) -> None:
        a, b = med(bench, ours), med(bench, other)
        if a is None or b is None:
            unmeasured(what, bench, (ours, other))
            return
        value = a / b
        add(what, value, "{:.2f}x", value < limit if strict else value <= limit)

    if pysession_error:
        lines.append(f"| Python session alone | not measured ({pysession_error}) | |")
    elif pysession:
        start, cell = pysession["start_ms"], pysession["cell_median_ms"]
        add("interpreter start (to a first `pass` cell) <= 30 ms", start, "{:.1f} ms", start <= 30)
        add("per cell above the code (`pass`) <= 0.3 ms", cell, "{:.3f} ms (median)", cell <= 0.3)
    for bench in ("pystate", "pydoctest"):
        title = TITLES[bench].split(" (")[0]
        ratio(f"{title}: runbook / sybil <= 1", bench, "runbook", "sybil", 1.0, False)
        ratio(f"{title}: runbook / pytest <= 1.3", bench, "runbook", "pytest", 1.3, False)
    for peer in ("markdown-docs", "codeblocks"):
        ratio(
            f"1,000 stateful cells: runbook faster than {peer}", "pystate", "runbook", peer, 1, True
        )
    ratio(
        f"{TITLES['pyfiles']}: runbook / pytest <= 1.3", "pyfiles", "runbook", "pytest", 1.3, False
    )
    ratio(
        "notebooks: runbook <= half of nbval (--nbval)",
        "notebooks",
        "runbook",
        "nbval --nbval",
        0.5,
        False,
    )
    ratio(
        "notebooks: Markdown `kernel: python3` no slower than the .ipynb",
        "notebooks",
        "runbook (kernel: python3 .md)",
        "runbook",
        1.0,
        False,
    )
    return lines


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, no tesh, short sleeps")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(BENCHES)}")
    parser.add_argument("--tools", default="", help=f"comma-separated: {', '.join(ALL_TOOLS)}")
    parser.add_argument("--reps", type=int, default=0, help="runs per tool (default 5, quick 3)")
    args = parser.parse_args(argv)
    only = [b for b in args.only.split(",") if b] or list(BENCHES)
    unknown = set(only) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    reps = args.reps or (3 if args.quick else 5)
    wanted = [t for t in args.tools.split(",") if t] or list(ALL_TOOLS)
    if args.quick:
        wanted = [t for t in wanted if t != "tesh"]
    needed = {t for bench in only for t in TOOLS.get(bench, ()) if t in wanted}
    unavailable = []
    for peer in peers.PEERS:
        tools = [tool for tool, venv in VENV_OF.items() if venv == peer]
        if any(t in needed for t in tools):
            problem = peers.ensure(peer)
            if problem:
                unavailable.append(problem)
                wanted = [t for t in wanted if t not in tools]

    started = time.time()
    results: Dict[str, List[Row]] = {}
    roundtrip: Dict[str, float] = {}
    pysession: Dict[str, float] = {}
    pysession_error = ""
    for bench in only:
        if bench == "roundtrip":
            roundtrip = bench_roundtrip(args.quick)
            continue
        if bench == "pysession":
            try:
                pysession = bench_pysession(args.quick)
            except Exception as error:  # not built yet, or it broke: say so, run the rest
                pysession_error = f"{type(error).__name__}: {error}"[:300]
                print(f"[bench] pysession: {pysession_error}", file=sys.stderr, flush=True)
            continue
        tools = [t for t in TOOLS[bench] if t in wanted]
        if bench == "big":
            results[bench] = bench_big(tools, reps)
        elif bench == "collect":
            results[bench] = bench_collect(tools, reps)
        elif bench == "xdist":
            results[bench] = bench_xdist(
                tools, max(1, reps - 2) if not args.quick else 1, args.quick
            )
        elif bench in PY_ROWS:
            results[bench] = bench_python(bench, tools, reps)
        else:
            results[bench] = bench_files(bench, tools, reps)
        print("\n".join(table(bench, results[bench])), file=sys.stderr, flush=True)

    out: List[str] = []
    load = os.getloadavg()
    out.append(
        f"pytest-runbook benchmarks: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load {load[0]:.2f} at the end, {time.time() - started:.0f} s, "
        f"`python bench/run.py {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip()
    )
    out.append("")
    if roundtrip:
        out.append("### Session alone (no pytest)")
        out.append("")
        out.append(
            f"- `true` round trip: median {roundtrip['true_median_ms']:.3f} ms, "
            f"p99 {roundtrip['true_p99_ms']:.3f} ms ({roundtrip['cells']:.0f} cells)"
        )
        out.append(
            f"- one file's shell: start {roundtrip['file_start_ms']:.2f} ms of our time, first "
            f"`true` cell {roundtrip['file_first_ms']:.2f} ms right after "
            f"({roundtrip['file_first_early_ms']:.2f} ms when started 5 ms earlier), close "
            f"{roundtrip['file_close_ms']:.2f} ms"
        )
        out.append(
            f"- `seq 1 2000000` ({roundtrip['big_bytes']:.0f} characters) through the session and "
            f"checked against `...`: {roundtrip['big_session_s']:.3f} s; bash alone into a pipe: "
            f"{roundtrip['big_bash_s']:.3f} s"
        )
        out.append("")
    if pysession:
        out.append("### Python session alone (no pytest)")
        out.append("")
        out.append(
            f"- interpreter start to a first `pass` cell: {pysession['start_ms']:.1f} ms "
            f"(median), close {pysession['close_ms']:.1f} ms"
        )
        out.append(
            f"- `pass` round trip: median {pysession['cell_median_ms']:.3f} ms, p99 "
            f"{pysession['cell_p99_ms']:.3f} ms; `x = x + 1` then `x` shown: "
            f"{pysession['state_median_ms']:.3f} ms; a `>>>` example: "
            f"{pysession['example_median_ms']:.3f} ms ({pysession['cells']:.0f} each)"
        )
        out.append("")
    for bench, rows in results.items():
        out += [*table(bench, rows), ""]
    out += targets(results, roundtrip, pysession, pysession_error)
    for problem in unavailable:
        out.append(f"\nnot run: {problem}")
    print("\n".join(out))
    RESULTS.mkdir(exist_ok=True)
    dump = {
        "roundtrip": roundtrip,
        "pysession": pysession,
        "rows": {
            b: [
                {"label": r.label, "runs": [vars(x) for x in r.runs], "failed": r.failed}
                for r in rows
            ]
            for b, rows in results.items()
        },
    }
    (RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()
