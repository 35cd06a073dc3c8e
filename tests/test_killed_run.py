"""Nothing outlives a killed run: kill -9 of pytest mid-cell leaves no process and no cell
directory behind (the shell session's watchdog), and a run removes what a dead run left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import List

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the run's processes in /proc"
)


def marked(needle: bytes) -> List[str]:
    """Live processes (not zombies) with ``needle`` in their environment."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            with open(f"/proc/{name}/environ", "rb") as f:
                env = b"\0" + f.read() + b"\0"
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X") and needle in env:
            found.append(f"{name}: {cmd}")
    return found


def cell_dirs(pid: int) -> List[str]:
    roots = ["/dev/shm", tempfile.gettempdir()]
    return [
        os.path.join(r, n)
        for r in roots
        if os.path.isdir(r)
        for n in os.listdir(r)
        if n.startswith((f"runbook-cells-{pid}-", f"runbook-{pid}-"))
    ]


def _start_run(
    tmp_path: Path, doc: str, mark: str, needle: bytes, *args: str, own_session: bool = False
) -> subprocess.Popen[bytes]:
    """pytest on ``doc`` (whose last cell runs ``sleep 303``), its processes marked with
    ``mark``; returned once that cell runs."""
    (tmp_path / "doc.md").write_text(textwrap.dedent(doc).lstrip(), "utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "doc.md", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--runbook-env", f"KILLED_RUN={mark}", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=own_session,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any("sleep 303" in p for p in marked(needle)):
        ended, late = proc.poll() is not None, time.monotonic() > deadline
        if ended or late:
            _stop(proc, needle)
        assert not ended, "pytest ended before the long cell ran"
        assert not late, "the long cell never started"
        time.sleep(0.05)
    return proc


def _stop(proc: subprocess.Popen[bytes], needle: bytes) -> None:
    """Kill what is left of a run: pytest and every process marked with ``needle``."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for entry in marked(needle):  # never leak into other tests
        os.kill(int(entry.split(":", 1)[0]), signal.SIGKILL)


def test_kill_9_of_pytest_mid_cell_leaves_nothing_behind(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    needle = f"\0KILLED_RUN={mark}\0".encode()
    doc = """
        ```sh {name=service background=true}
        sleep 300
        ```

        ```sh {name=orphan}
        nohup sleep 301 >/dev/null 2>&1 &
        setsid sleep 302 >/dev/null 2>&1 < /dev/null &
        ```

        ```sh {name=long timeout=120}
        sleep 303
        ```
        """
    proc = _start_run(tmp_path, doc, mark, needle, "-p", "no:xdist")
    try:
        running = marked(needle)
        assert any("sleep 300" in p for p in running) and any("sleep 302" in p for p in running)
        assert cell_dirs(proc.pid), "the run's directories should exist while it runs"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = time.monotonic()
        while (marked(needle) or cell_dirs(proc.pid)) and time.monotonic() - killed_at < 2.0:
            time.sleep(0.05)
        assert marked(needle) == [], "processes of the killed run are left"
        assert cell_dirs(proc.pid) == [], "directories of the killed run are left"
    finally:
        _stop(proc, needle)


def test_kill_9_of_pytest_mid_python_cell_leaves_nothing_behind(tmp_path: Path) -> None:
    # A Python-only file: no shell session, so the Python session registers its own marker.
    mark = uuid.uuid4().hex
    needle = f"\0KILLED_RUN={mark}\0".encode()
    doc = """
        ```python {name=detached}
        import subprocess
        subprocess.Popen(["sleep", "302"], start_new_session=True)
        ```

        ```python {name=long timeout=120}
        import subprocess
        subprocess.run(["sleep", "303"])
        ```
        """
    proc = _start_run(tmp_path, doc, mark, needle, "-p", "no:xdist")
    try:
        assert any("sleep 302" in p for p in marked(needle)), marked(needle)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = time.monotonic()
        while marked(needle) and time.monotonic() - killed_at < 2.0:
            time.sleep(0.05)
        assert marked(needle) == [], "processes of the killed run are left"
    finally:
        _stop(proc, needle)


def test_a_run_removes_the_cell_directories_a_dead_run_left(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    stale = Path(tempfile.mkdtemp(prefix=f"runbook-cells-{dead.pid}-", dir=root))
    (stale / "cell.sh").write_text("echo left behind\n")
    (tmp_path / "doc.md").write_text("```sh\necho hi\n```\n", "utf-8")
    subprocess.run(
        [sys.executable, "-m", "pytest", "doc.md", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    assert not stale.exists()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def _start_xdist_run(tmp_path: Path, mark: str, needle: bytes) -> subprocess.Popen[bytes]:
    """``pytest -n 2`` on a runbook whose last cell sleeps, in its own session (no terminal:
    a signal reaches the controller alone), once that cell runs."""
    doc = """
        ```sh {name=service background=true}
        sleep 300
        ```

        ```sh {name=long timeout=120}
        sleep 303
        ```
        """
    proc = _start_run(tmp_path, doc, mark, needle, "-n", "2", own_session=True)
    assert any("sleep 300" in p for p in marked(needle)), "the service is not running"
    return proc


def _end_xdist_run(proc: subprocess.Popen[bytes], needle: bytes) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the workers too
        proc.wait()
    _stop(proc, needle)


def test_kill_9_of_an_xdist_worker_mid_cell_leaves_nothing_behind(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    mark = uuid.uuid4().hex
    needle = f"\0KILLED_RUN={mark}\0".encode()
    proc = _start_xdist_run(tmp_path, mark, needle)
    try:
        shells = [p for p in marked(needle) if " bash " in f" {p.split(':', 1)[1]} "]
        assert shells, marked(needle)
        worker = _ppid(int(shells[0].split(":", 1)[0]))
        assert worker != proc.pid and _ppid(worker) == proc.pid, "not an xdist worker"
        assert cell_dirs(worker), "the worker's directories should exist while it runs"
        os.kill(worker, signal.SIGKILL)
        killed_at = time.monotonic()
        while (marked(needle) or cell_dirs(worker)) and time.monotonic() - killed_at < 3.0:
            time.sleep(0.05)
        assert marked(needle) == [], "processes of the killed worker's session are left"
        assert cell_dirs(worker) == [], "directories of the killed worker are left"
    finally:
        _end_xdist_run(proc, needle)


def test_sigint_to_an_xdist_controller_ends_the_sessions_at_once(tmp_path: Path) -> None:
    """execnet gives a worker's running test 5 s before it interrupts it itself; the plugin
    passes the controller's SIGINT on to the workers, so the cells stop at once, as in a
    serial run. Measured on a loaded 2-core machine: sessions gone 0.7-1.9 s after the
    signal, the controller out after 2.3-2.6 s (serial: 1.2-1.3 s; before: 8-10 s)."""
    pytest.importorskip("xdist")
    mark = uuid.uuid4().hex
    needle = f"\0KILLED_RUN={mark}\0".encode()
    proc = _start_xdist_run(tmp_path, mark, needle)
    try:
        os.kill(proc.pid, signal.SIGINT)
        sent_at = time.monotonic()
        while marked(needle) and time.monotonic() - sent_at < 4.0:
            time.sleep(0.05)
        took = time.monotonic() - sent_at
        assert marked(needle) == [], f"session processes still run {took:.1f} s after SIGINT"
        proc.wait(60)
        assert proc.returncode == 2  # pytest's "interrupted"
        exited_at = time.monotonic()
        while time.monotonic() - exited_at < 2.0:
            assert marked(needle) == [], "a process of the run outlived its controller"
            time.sleep(0.1)
    finally:
        _end_xdist_run(proc, needle)
