"""Notebooks: pytest-runbook against nbval on 10 copies of a 9-cell notebook (SPEC section 10).

    python bench/notebooks.py                 # nbval-lax, nbval and runbook, 3 runs each
    python bench/notebooks.py --only nbval-lax --runs 1

Every figure is a whole ``python -m pytest`` process run in a fresh directory holding only the
notebooks and an empty pytest.ini; the tools alternate within each repetition and the table
shows the median wall time. A run must exit 0 and report 90 passed items, else the benchmark
stops: a tool that did less work must not look fast. The stored outputs are what a kernel
prints, so ``--nbval`` (every output checked, as pytest-runbook does) passes too.
nbval needs ``pip install nbval``; the runbook rows need the jupyter extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

FILES = 10
# (source, stored outputs): what ipykernel prints for each cell, so every tool can check it.
CELLS: Tuple[Tuple[str, List[Tuple[str, str]]], ...] = (
    ("import math\nimport json", []),
    ("values = [math.sqrt(n) for n in range(10)]\nlen(values)", [("result", "10")]),
    ("print('total', round(sum(values), 3))", [("stdout", "total 19.306\n")]),
    ("def square(n):\n    return n * n\n\nsquare(12)", [("result", "144")]),
    ("for n in range(3):\n    print(n, square(n))", [("stdout", "0 0\n1 1\n2 4\n")]),
    ("data = {'b': 2, 'a': [1, 2]}\ndata", [("result", "{'b': 2, 'a': [1, 2]}")]),
    ("print(json.dumps(data, sort_keys=True))", [("stdout", '{"a": [1, 2], "b": 2}\n')]),
    ("import sys\nprint('warning', file=sys.stderr)", [("stderr", "warning\n")]),
    ("text = 'notebook'\ntext.upper()", [("result", "'NOTEBOOK'")]),
)
TOOLS = ("nbval-lax", "nbval", "runbook")


def _outputs(nbformat: Any, specs: Sequence[Tuple[str, str]], count: int) -> List[Any]:
    outputs = []
    for kind, text in specs:
        if kind == "result":
            outputs.append(
                nbformat.v4.new_output(
                    "execute_result", data={"text/plain": text}, execution_count=count
                )
            )
        else:
            outputs.append(nbformat.v4.new_output("stream", name=kind, text=text))
    return outputs


def write_corpus(directory: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    for count, (source, specs) in enumerate(CELLS, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = _outputs(nbformat, specs, count)
        notebook.cells.append(cell)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for number in range(FILES):
        nbformat.write(notebook, str(directory / f"notebook_{number:02d}.ipynb"))


def command(tool: str) -> List[str]:
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if tool == "nbval-lax":
        return [*base, "-p", "no:runbook", "--nbval-lax", "."]
    if tool == "nbval":
        return [*base, "-p", "no:runbook", "--nbval", "."]
    # Once notebooks are integrated: collected by pattern like Markdown runbooks.
    return [*base, "-p", "no:nbval", "--runbook", "-o", "runbook_patterns=*.ipynb", "."]


def available(tool: str) -> bool:
    if tool.startswith("nbval"):
        return importlib.util.find_spec("nbval") is not None
    return importlib.util.find_spec("jupyter_client") is not None


def run_once(tool: str, directory: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command(tool), cwd=directory, capture_output=True, text=True, timeout=900, check=False
    )
    elapsed = time.perf_counter() - started
    expected = FILES * len(CELLS)
    passed = re.search(r"(\d+) passed", done.stdout)
    if done.returncode != 0 or passed is None or int(passed.group(1)) != expected:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        sys.exit(f"{tool}: expected {expected} passed, exit 0; got exit {done.returncode}:\n{tail}")
    return elapsed


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only", default=",".join(TOOLS), help="comma-separated: " + ", ".join(TOOLS)
    )
    args = parser.parse_args(list(argv) or None)
    tools = [t for t in args.only.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    missing = [t for t in tools if not available(t)]
    for tool in missing:
        print(f"skipping {tool}: not installed")
    tools = [t for t in tools if t not in missing]
    times: Dict[str, List[float]] = {tool: [] for tool in tools}
    with tempfile.TemporaryDirectory(prefix="runbook-notebooks-") as tmp:
        directory = Path(tmp)
        write_corpus(directory)
        env_note = os.environ.get("PYTEST_ADDOPTS")
        if env_note:
            print(f"note: PYTEST_ADDOPTS={env_note!r} applies to every run")
        for _ in range(args.runs):
            for tool in tools:
                times[tool].append(run_once(tool, directory))
    cells = FILES * len(CELLS)
    print(f"{FILES} notebooks x {len(CELLS)} cells, median of {args.runs} run(s):")
    for tool in tools:
        median = statistics.median(times[tool])
        print(f"  {tool:<10} {median:7.2f} s   {1000 * median / cells:6.1f} ms/cell")


if __name__ == "__main__":
    main(sys.argv[1:])
