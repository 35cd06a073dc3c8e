"""Python session timings for the performance contract (SPEC section 9); prints, asserts nothing.

Run: ``python bench/python_session.py [python]``. Figures:

- interpreter start: ``start()`` until the first ``pass`` cell's Result is back (spawn, the
  interpreter's own start-up, the worker's set-up and one round trip), median of ``STARTS``;
  next to it a bare ``python -c pass`` for reference (what no worker can go below);
- per-cell overhead: the median time of one ``run()`` of a ``pass`` cell, over ``CELLS``
  cells in one session (the code's own time is nil, so all of it is overhead).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List

from pytest_runbook.sessions.base import Request
from pytest_runbook.sessions.python.session import PythonSession

STARTS = 21
CELLS = 2000


def pass_cell(line: int = 0) -> Request:
    return Request(source="pass", path="bench.md", line=line, timeout=10)


def main() -> None:
    python = sys.argv[1:] or [sys.executable]
    cwd = tempfile.mkdtemp()
    env = dict(os.environ)
    # The worker's bytecode comes from __pycache__ as in an installed package (pip compiles
    # it); a dev shell's PYTHONDONTWRITEBYTECODE would make every start compile it afresh.
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    bare: List[float] = []
    for _ in range(STARTS):
        start = time.perf_counter()
        subprocess.run([*python, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)

    starts: List[float] = []
    for _ in range(STARTS):
        session = PythonSession(python=python, cwd=cwd, env=env)
        start = time.perf_counter()
        session.start()
        session.run(pass_cell())
        starts.append(time.perf_counter() - start)
        session.close()

    session = PythonSession(python=python, cwd=cwd, env=env)
    session.run(pass_cell())
    cells: List[float] = []
    for i in range(CELLS):
        request = pass_cell(i)
        start = time.perf_counter()
        session.run(request)
        cells.append(time.perf_counter() - start)
    session.close()

    print(f"python: {' '.join(python)}")
    row("bare `python -c pass`", bare, 1, STARTS)
    row("interpreter start", starts, 1, STARTS)
    row("per-cell overhead (`pass`)", cells, 3, CELLS)


def row(label: str, seconds: List[float], digits: int, runs: int) -> None:
    print(f"  {label:<28} {statistics.median(seconds) * 1000:7.{digits}f} ms (median of {runs})")


if __name__ == "__main__":
    main()
