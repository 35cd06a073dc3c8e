"""Processes that cells left running, found by their session's environment marker.

The Python session's interpreter and a Jupyter kernel each run in a process group of their
own, which one kill ends; a process their cells detached from it (``setsid``, a daemon)
survives that. Such a session gives its processes a ``RUNBOOK_SESSION`` marker, as the shell
session does, and ``left_running`` finds them again. Linux only (``/proc``); elsewhere it
finds nothing and the group kill is all there is.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import List, Sequence, Tuple

__all__ = ["kill", "left_running", "new_marker", "start_ticks", "watchdog_marker"]

MARKER_NAME = "RUNBOOK_SESSION"


def new_marker() -> str:
    return os.urandom(12).hex()


def watchdog_marker(marker: str) -> bytes:
    """The environment entry the watchdog looks for (``watchdog.register``)."""
    return f"{MARKER_NAME}={marker}".encode()


def start_ticks(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (0 when unknown: then all are checked)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def left_running(
    marker: str, since: int, session_id: int = -1, exclude: int = -1
) -> List[Tuple[int, str]]:
    """(pid, "command line (pid N)") of the live processes of session ``session_id`` and of
    those started ``since`` (ticks) that carry ``marker``; ``exclude`` is the session's own
    process. Sorted by command line."""
    found: List[Tuple[int, str]] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    needle = f"\0{MARKER_NAME}={marker}\0".encode()
    for name in names:
        if not name.isdigit() or int(name) == exclude:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if fields[0] in (b"Z", b"X"):
                continue
            ours = int(fields[3]) == session_id
            if not ours and int(fields[19]) >= since:  # older ones cannot be the cells'
                with open(f"/proc/{name}/environ", "rb") as f:
                    ours = needle in b"\0" + f.read() + b"\0"
            if not ours:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, IndexError, ValueError):
            continue
        found.append((int(name), f"{cmdline or '?'} (pid {name})"))
    return sorted(found, key=lambda item: item[1])


def kill(processes: Sequence[Tuple[int, str]]) -> None:
    for pid, _ in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
