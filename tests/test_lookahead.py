"""Kernel look-ahead end to end: the next files' kernels start early, none is left behind.

Each run is a pytest subprocess (the spy below patches the kernel session's class, which must
not leak into this process), with a conftest that logs every kernel start and close; the
kernels' process ids from that log must all be gone when pytest has exited.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import List, Tuple

import pytest

pytest.importorskip("jupyter_client", reason="the jupyter extra (jupyter_client) is not installed")
pytest.importorskip("ipykernel", reason="ipykernel (the Python kernel) is not installed")

from pytest_runbook.lookahead import LOOK_AHEAD

SPY = """
import os
import pytest_runbook.sessions.kernel as kernel

LOG = os.path.join(os.path.dirname(__file__), "kernels.log")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_start, _close = kernel.KernelSession.start, kernel.KernelSession.close


def start(self):
    fresh = self._manager is None
    _start(self)
    if fresh:
        with open(LOG, "a") as log:
            log.write(f"start {os.path.basename(self.cwd)} {self.kernel_pid} {WORKER}\\n")


def close(self):
    if self._manager is not None:
        with open(LOG, "a") as log:
            log.write(f"close {os.path.basename(self.cwd)} {self.kernel_pid} {WORKER}\\n")
    return _close(self)


kernel.KernelSession.start, kernel.KernelSession.close = start, close
"""


RUN = ("--runbook", "-p", "no:randomly", "-p", "no:cacheprovider")


def write_files(pytester: pytest.Pytester, count: int, failing: int = -1) -> None:
    """``count`` Markdown files with a kernel, each in its own directory (the kernel's cwd)."""
    pytester.makeconftest(SPY)
    for number in range(count):
        value = "'oops'" if number == failing else str(number)
        directory = pytester.path / f"f{number}"
        directory.mkdir()
        (directory / f"doc{number}.md").write_text(
            textwrap.dedent(
                f"""\
                ---
                kernel: python3
                ---
                ```python
                x = {value}
                ```

                ```python
                x + 1
                ```

                ```output
                {number + 1}
                ```
                """
            ),
            encoding="utf-8",
        )


def events(pytester: pytest.Pytester, worker: str = "") -> List[Tuple[str, str, int]]:
    """(start or close, the file's directory, the kernel's pid), in order; of one worker."""
    log = pytester.path / "kernels.log"
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [(row[0], row[1], int(row[2])) for row in rows if worker in ("", row[3])]


def assert_no_kernel_left(found: List[Tuple[str, str, int]]) -> None:
    for _, _, pid in found:
        state = Path(f"/proc/{pid}/stat")
        alive = state.exists() and state.read_text().split(") ")[-1][:1] not in ("Z", "X")
        assert not alive, f"kernel {pid} outlived the run"
        with pytest.raises(ProcessLookupError):  # not even a zombie: it was reaped
            os.kill(pid, 0)


def max_alive(found: List[Tuple[str, str, int]]) -> int:
    alive, most = set(), 0
    for what, _, pid in found:
        (alive.add if what == "start" else alive.discard)(pid)
        most = max(most, len(alive))
    return most


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_kernels_start_files_ahead_once_each_and_all_are_closed(pytester: pytest.Pytester) -> None:
    write_files(pytester, 5)
    result = pytester.runpytest_subprocess(*RUN)
    result.assert_outcomes(passed=10)
    found = events(pytester)
    started = [name for what, name, _ in found if what == "start"]
    closed = [name for what, name, _ in found if what == "close"]
    assert sorted(started) == [f"f{n}" for n in range(5)]  # one kernel per file, no restarts
    assert sorted(closed) == sorted(started)
    # The second and third files' kernels started before the first file's closed...
    assert [what for what, _, _ in found[: 1 + LOOK_AHEAD]] == ["start"] * (1 + LOOK_AHEAD)
    # ...and never more than the running file's and LOOK_AHEAD more at once.
    assert max_alive(found) == 1 + LOOK_AHEAD
    assert_no_kernel_left(found)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_kernels_started_ahead_are_closed_when_x_stops_the_run(pytester: pytest.Pytester) -> None:
    write_files(pytester, 5, failing=1)
    result = pytester.runpytest_subprocess(*RUN, "-x")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED f1/doc1.md::*"])
    found = events(pytester)
    started = [name for what, name, _ in found if what == "start"]
    # f1's first cell started f2 and f3 ahead; -x stopped the run before either ran.
    assert started == ["f0", "f1", "f2", "f3"][: 2 + LOOK_AHEAD]
    assert sorted(name for what, name, _ in found if what == "close") == sorted(started)
    assert_no_kernel_left(found)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_deselected_files_get_no_kernel(pytester: pytest.Pytester) -> None:
    write_files(pytester, 4)
    result = pytester.runpytest_subprocess(*RUN, "-k", "doc0 or doc3")
    result.assert_outcomes(passed=4)
    found = events(pytester)
    assert sorted(name for what, name, _ in found if what == "start") == ["f0", "f3"]
    assert_no_kernel_left(found)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_under_xdist_each_worker_looks_ahead_in_its_own_queue(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write_files(pytester, 6)
    result = pytester.runpytest_subprocess(*RUN, "-n", "2")
    result.assert_outcomes(passed=12)
    found = events(pytester)
    started = [name for what, name, _ in found if what == "start"]
    # Every file's kernel started once, by the worker that ran it: none for another's files.
    assert sorted(started) == [f"f{n}" for n in range(6)]
    assert sorted(name for what, name, _ in found if what == "close") == sorted(started)
    # Each worker started a next file's kernel before it closed the one it ran.
    assert min(max_alive(events(pytester, worker)) for worker in ("gw0", "gw1")) >= 2
    assert_no_kernel_left(found)
