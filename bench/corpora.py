"""The benchmark corpora, generated in each tool's own syntax.

Every corpus is written under ``ROOT/<corpus>/<tool>/``; each directory gets an empty
``pytest.ini`` so pytest's rootdir is the corpus itself (no project config, no addopts).
``build(name, root, tool)`` returns what to run: paths relative to that directory, and how
many items (pytest) or cells the tool must report, so a run that silently did less fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import peers

TOOLS = ("runbook", "pytest", "codeblocks", "pytest-prysk", "prysk", "tesh", "bash")
# Python cells and notebooks (issues 16 and 17). A "flavour" is one tool's way of writing the
# corpus; runbook has several (named cells, `python-blocks: all`, a notebook as Markdown).
PY_FLAVOURS = (
    "runbook",
    "runbook-blocks",
    "runbook-md",
    "pytest",
    "sybil",
    "byexample",
    "doctest",
    "markdown-docs",
    "codeblocks",
    "nbval",
)

SEQ_N = 2_000_000  # `seq 1 2000000`: 14,888,896 bytes


@dataclass
class Job:
    cwd: Path
    paths: List[str]
    items: int  # items pytest must report (passed, or collected with --collect-only)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fresh(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _write(root / "pytest.ini", "[pytest]\n")
    return root


# -- one file per tool: cells are (command, expected output lines or None) ------------------


def _markdown_runbook(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = ["# Benchmark\n"]
    for command, expected in cells:
        out.append(f"```sh\n{command}\n```\n")
        if expected is not None:
            out.append("```output\n" + "".join(f"{line}\n" for line in expected) + "```\n")
    return "\n".join(out)


def _markdown_codeblocks(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = ["# Benchmark\n"]
    for command, expected in cells:
        out.append(f"```sh\n{command}\n```\n")
        if expected is not None and "..." not in expected:  # no `...`: left unchecked
            out.append(
                "<!--pytest-codeblocks:expected-output-->\n```\n"
                + "".join(f"{line}\n" for line in expected)
                + "```\n"
            )
    return "\n".join(out)


def _markdown_tesh(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = ["# Benchmark\n"]
    for command, expected in cells:
        lines = "".join(f"{line}\n" for line in expected or [])
        # tesh's 30 s default timeout is shorter than it takes to match 15 MB
        out.append(f'```console tesh-session="bench" tesh-timeout="900"\n$ {command}\n{lines}```\n')
    return "\n".join(out)


def _prysk(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = []
    for command, expected in cells:
        out.append(f"  $ {command}\n")
        out.extend(f"  {line}\n" for line in expected or [])
    return "".join(out)


def _python_tests(count: int, body: str = "pass", header: str = "") -> str:
    return header + "".join(f"def test_{i}():\n    {body}\n\n\n" for i in range(count))


def _bash(cells: List[Tuple[str, List[str] | None]]) -> str:
    return "".join(f"{command}\n" for command, _ in cells)


def _one_file(
    tool: str, root: Path, cells: List[Tuple[str, List[str] | None]], stem: str = "doc"
) -> Tuple[str, int]:
    """Write ``cells`` as one file of ``tool``; return its name and its item count."""
    if tool == "runbook":
        _write(root / f"{stem}.md", _markdown_runbook(cells))
        return f"{stem}.md", len(cells)
    if tool == "codeblocks":
        _write(root / f"{stem}.md", _markdown_codeblocks(cells))
        return f"{stem}.md", len(cells)
    if tool == "tesh":
        _write(root / f"{stem}.md", _markdown_tesh(cells))
        return f"{stem}.md", len(cells)
    if tool in ("prysk", "pytest-prysk"):
        _write(root / f"{stem}.t", _prysk(cells))
        return f"{stem}.t", 1  # pytest-prysk: the whole file is one item
    if tool == "pytest":
        _write(root / f"test_{stem}.py", _python_tests(len(cells)))
        return f"test_{stem}.py", len(cells)
    if tool == "bash":
        _write(root / f"{stem}.sh", _bash(cells))
        return f"{stem}.sh", len(cells)
    raise ValueError(tool)


def _single(cells: List[Tuple[str, List[str] | None]]) -> Callable[[str, Path], Job]:
    def build(tool: str, root: Path) -> Job:
        name, items = _one_file(tool, root, cells)
        return Job(root, [name], items)

    return build


def _many(files: int, cells: List[Tuple[str, List[str] | None]]) -> Callable[[str, Path], Job]:
    def build(tool: str, root: Path) -> Job:
        total = 0
        for number in range(files):
            _, items = _one_file(tool, root / "docs", cells, stem=f"doc{number:04d}")
            total += items
        return Job(root, ["docs"], total)

    return build


def _sleeping(files: int, cells: int, seconds: float) -> Callable[[str, Path], Job]:
    def build(tool: str, root: Path) -> Job:
        if tool == "pytest":
            for number in range(files):
                _write(
                    root / "docs" / f"test_doc{number:04d}.py",
                    _python_tests(cells, f"time.sleep({seconds})", "import time\n\n\n"),
                )
            return Job(root, ["docs"], files * cells)
        return _many(files, [(f"sleep {seconds}", None)] * cells)(tool, root)

    return build


def _realistic_doc(number: int) -> List[Tuple[str, List[str] | None]]:
    return [
        (f"export STEP={number}", None),
        ('echo "step $STEP"', [f"step {number}"]),
        ("ls /", ["..."]),
    ]


# -- Python cells: cell i binds x{i} from x{i-1} and shows it ----------------------------------


def _state_code(i: int) -> str:
    return f"x{i} = {'1' if i == 1 else f'x{i - 1} + 1'}"


def _py_state(tool: str, count: int) -> Tuple[str, int]:
    """``count`` stateful cells, each checked to show ``i``, as one Markdown file of ``tool``.

    Returns the file's text and the items (pytest) or examples (byexample) it must report.
    """
    cells = range(1, count + 1)
    if tool in ("runbook", "runbook-blocks"):
        # A named cell joins the file's Python session; `python-blocks: all` makes every
        # ```python block one, as in a library's README. The bare last line echoes its value.
        head = "---\npython-blocks: all\n---\n\n" if tool == "runbook-blocks" else ""
        info = "python" if tool == "runbook-blocks" else "python {name=c%d}"
        body = "\n".join(
            f"```{info.replace('%d', str(i))}\n{_state_code(i)}\nx{i}\n```\n\n```output\n{i}\n```\n"
            for i in cells
        )
        return f"{head}# Benchmark\n\n{body}", count
    if tool in ("sybil", "byexample", "doctest"):
        # A doctest transcript per cell: two examples, the binding and the echo. Plain
        # doctest reads a fence's closing line as expected output, so it gets a blank line.
        end = "\n```\n" if tool == "doctest" else "```\n"
        body = "\n".join(f"```python\n>>> {_state_code(i)}\n>>> x{i}\n{i}\n{end}" for i in cells)
        return f"# Benchmark\n\n{body}", 1 if tool == "doctest" else 2 * count
    if tool == "markdown-docs":
        # No output check: an assert instead; `continuation` re-runs every earlier block.
        body = "\n".join(
            f"```python{'' if i == 1 else ' continuation'}\n{_state_code(i)}\n"
            f"assert x{i} == {i}\n```\n"
            for i in cells
        )
        return f"# Benchmark\n\n{body}", count
    if tool == "codeblocks":
        # `cont` appends a block to the previous one: one item, output checked once at the end.
        body = "<!--pytest-codeblocks:cont-->\n".join(
            f"```python\n{_state_code(i)}\nprint(x{i})\n```\n\n" for i in cells
        )
        expected = "".join(f"{i}\n" for i in cells)
        return (
            f"# Benchmark\n\n{body}<!--pytest-codeblocks:expected-output-->\n```\n{expected}```\n",
            1,
        )
    raise ValueError(tool)


def _py_examples(tool: str, count: int) -> Tuple[str, int]:
    """``count`` independent ``>>>`` examples, one ```python block each, as in a README."""
    end = "\n```\n" if tool == "doctest" else "```\n"
    body = "\n".join(
        f"```python\n>>> sum(range({i}))\n{sum(range(i))}\n{end}" for i in range(count)
    )
    return f"# Benchmark\n\n{body}", 1 if tool == "doctest" else count


SYBIL_CONFTEST = """\\
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser

pytest_collect_file = Sybil(parsers=[PythonCodeBlockParser()], patterns=["*.md"]).pytest()
"""


def _python_corpus(
    make: Callable[[str, int], Tuple[str, int]], files: int, cells: int
) -> Callable[[str, Path], Job]:
    """One file (``files == 0``: ``doc.md`` at the top) or ``files`` files under ``docs/``."""

    def build(tool: str, root: Path) -> Job:
        if tool == "sybil":
            _write(root / "conftest.py", SYBIL_CONFTEST)
        total, path = 0, ""
        for number in range(max(files, 1)):
            folder, stem = ("docs/", f"doc{number:04d}") if files else ("", "doc")
            if tool == "pytest":  # the floor: as many empty test functions
                path = f"{folder}test_{stem}.py"
                text, items = _python_tests(cells), cells
            else:
                path = f"{folder}{stem}.md"
                text, items = make(tool, cells)
            _write(root / path, text)
            total += items
        return Job(root, ["docs"] if files else [path], total)

    return build


# -- notebooks: 9 simple cells with their stored outputs ---------------------------------------

# (source, stdout or None, text/plain result or None): what a Python 3 kernel really shows.
NOTEBOOK_CELLS: List[Tuple[str, Optional[str], Optional[str]]] = [
    ("import math\nimport statistics", None, None),
    ("values = [3, 1, 4, 1, 5, 9, 2, 6]", None, None),
    ("sum(values)", None, "31"),
    ('print("mean:", statistics.mean(values))', "mean: 3.875\n", None),
    ("math.sqrt(16) + 2 ** 10", None, "1028.0"),
    ("for i in range(3):\n    print(i, i * i)", "0 0\n1 1\n2 4\n", None),
    ("squares = {n: n * n for n in range(5)}\nsquares", None, "{0: 0, 1: 1, 2: 4, 3: 9, 4: 16}"),
    (
        'def greet(name):\n    return f"hello {name}"\n\n\ngreet("notebook")',
        None,
        "'hello notebook'",
    ),
    ("sorted(values)[-3:]", None, "[5, 6, 9]"),
]

_NOTEBOOK_SCRIPT = """\\
import json, sys
import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

cells = []
for number, (source, stdout, result) in enumerate(json.loads(sys.argv[1]), 1):
    outputs = []
    if stdout is not None:
        outputs.append(new_output("stream", name="stdout", text=stdout))
    if result is not None:
        outputs.append(
            new_output("execute_result", data={"text/plain": result}, execution_count=number)
        )
    cell = new_code_cell(source, execution_count=number, outputs=outputs, id=f"cell{number}")
    cells.append(cell)
notebook = new_notebook(
    cells=cells,
    metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    },
)
nbformat.validate(notebook)
print(nbformat.writes(notebook))
"""


def _notebook_json() -> str:
    """The notebook, written by nbformat (from whichever venv has it) so it is what Jupyter
    itself would store."""
    pythons = [sys.executable] + [str(peers.bin_path(p, "python")) for p in ("runbook", "nbval")]
    problems = []
    for python in pythons:
        if not Path(python).exists():
            continue
        done = subprocess.run(
            [python, "-c", _NOTEBOOK_SCRIPT, json.dumps(NOTEBOOK_CELLS)],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            return done.stdout
        problems.append(f"{python}: {done.stderr.strip().splitlines()[-1:]}")
    raise RuntimeError(f"no Python with nbformat to write the notebook: {problems}")


def _notebook_markdown() -> str:
    """The same nine cells as a Markdown runbook run by the `python3` Jupyter kernel."""
    out = ["---\nkernel: python3\n---\n\n# Notebook as Markdown\n"]
    for number, (source, stdout, result) in enumerate(NOTEBOOK_CELLS, 1):
        out.append(f"```python {{name=cell{number}}}\n{source}\n```\n")
        shown = (stdout or "") + (f"{result}\n" if result is not None else "")
        if shown:
            out.append(f"```output\n{shown}```\n")
    return "\n".join(out)


def _notebooks(copies: int) -> Callable[[str, Path], Job]:
    def build(tool: str, root: Path) -> Job:
        cells = len(NOTEBOOK_CELLS)
        notebook = _notebook_json() if tool in ("runbook", "nbval") else ""
        for number in range(copies):
            if tool == "pytest":
                _write(root / "nb" / f"test_nb{number:02d}.py", _python_tests(cells))
            elif tool == "runbook-md":
                _write(root / "nb" / f"nb{number:02d}.md", _notebook_markdown())
            elif tool in ("runbook", "nbval"):
                _write(root / "nb" / f"nb{number:02d}.ipynb", notebook)
            else:
                raise ValueError(tool)
        return Job(root, ["nb"], copies * cells)

    return build


BUILDERS: Dict[str, Callable[[int], Callable[[str, Path], Job]]] = {
    # corpus name -> (scale -> builder); scale is 1 normally
    "trivial": lambda _: _single([("true", None)] * 1000),
    "echo": lambda _: _single([(f"echo hello {i}", [f"hello {i}"]) for i in range(200)]),
    "files": lambda _: _many(100, [("true", None)] * 10),
    "big": lambda _: _single([(f"seq 1 {SEQ_N}", ["..."])]),
    "big-baseline": lambda _: _single([("true", None)]),
    "collect": lambda _: lambda tool, root: _many(1000, _realistic_doc(0))(tool, root),
    "sleep": lambda scale: _sleeping(20, 5, 0.1 if scale else 0.02),
    "pystate": lambda _: _python_corpus(_py_state, 0, 1000),
    "pydoctest": lambda _: _python_corpus(_py_examples, 0, 1000),
    "pyfiles": lambda _: _python_corpus(_py_state, 100, 10),
    "notebooks": lambda _: _notebooks(10),
}


def build(corpus: str, root: Path, tool: str, scale: int = 1) -> Job:
    """Write ``corpus`` for ``tool`` in ``root/<corpus>/<tool>-<scale>`` (reused if present)."""
    target = root / corpus / f"{tool}-{scale}"
    marker = target / ".complete.json"
    if marker.exists():  # the builders are deterministic: regenerate only when absent
        saved = json.loads(marker.read_text())
        return Job(target, saved["paths"], saved["items"])
    if target.exists():
        shutil.rmtree(target)
    job = BUILDERS[corpus](scale)(tool, _fresh(target))
    if corpus == "big" and tool in ("prysk", "pytest-prysk"):
        # cram/prysk have no `...`: checking the output means writing every line of it.
        _write(
            target / job.paths[0],
            f"  $ seq 1 {SEQ_N}\n" + "".join(f"  {i}\n" for i in range(1, SEQ_N + 1)),
        )
    marker.write_text(json.dumps({"paths": job.paths, "items": job.items}))
    return job
