"""Is the cell waiting for input? A cell that reads a terminal with nothing to read must fail
fast ("waiting for input"), not hang until its timeout.

Linux: the terminal's foreground process group (``tcgetpgrp``), then each member's
``/proc/PID/syscall``: asleep in a read of the terminal, or polling a set of descriptors that
holds the terminal and no socket or pipe. setuid programs (sudo's password prompt) hide their
syscalls; their ``wchan`` still shows a terminal read. macOS: ``ps`` wchan ``ttyin``, best
effort. A command that only waits (``tail -f``, a sleep, select/poll with a timeout on other
descriptors) is not reading the terminal and is left to run.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Dict, FrozenSet, Tuple

from .processes import proc_pids, proc_stat

# Syscalls that mean "blocked reading a file descriptor" (read family) or "waiting on a set of
# descriptors" (poll family), per architecture.  Unknown architectures fall back to wchan.
_SYSCALLS: Dict[str, Tuple[FrozenSet[int], FrozenSet[int]]] = {
    "x86_64": (frozenset({0, 17, 19, 295}), frozenset({7, 23, 232, 270, 271, 281})),
    "aarch64": (frozenset({63, 65, 67, 69}), frozenset({22, 72, 73})),
}
_SYSCALLS["amd64"] = _SYSCALLS["x86_64"]
_SYSCALLS["arm64"] = _SYSCALLS["aarch64"]


def blocked_on_terminal(fd: int, slave: str) -> bool:
    """True when the foreground job of the terminal on master ``fd`` sleeps reading it (and
    nothing else in that job runs). ``slave``: the terminal's device name, "" if unknown."""
    try:
        fg = os.tcgetpgrp(fd)
    except OSError:
        return False
    if not os.path.isdir("/proc/self"):
        return _blocked_on_terminal_ps(fg)
    members = []
    for pid in proc_pids():
        st = proc_stat(pid)
        if st is not None and st[1] == fg:
            if st[0] not in ("S",):
                return False  # running, in disk I/O, stopped: not simply waiting for us
            members.append(pid)
    names = (slave, "/dev/tty") if slave else ("/dev/tty",)
    return any(_reads_terminal(pid, names) for pid in members)


def _reads_terminal(pid: int, names: Tuple[str, ...]) -> bool:
    reads, polls = _SYSCALLS.get(platform.machine(), (frozenset(), frozenset()))
    try:
        with open(f"/proc/{pid}/syscall") as f:
            parts = f.read().split()
    except PermissionError:
        parts = []
    except OSError:
        return False
    if not parts or parts[0] == "running" or not (reads or polls):
        # setuid programs (sudo's password prompt) hide their syscalls; wchan still shows.
        try:
            with open(f"/proc/{pid}/wchan") as f:
                wchan = f.read().strip()
        except OSError:
            return False
        return wchan in ("n_tty_read", "wait_woken") and _fd0_is_tty(pid, names)
    try:
        nr = int(parts[0])
        arg0 = int(parts[1], 16)
    except (ValueError, IndexError):
        return False
    if nr in reads:
        try:
            return os.readlink(f"/proc/{pid}/fd/{arg0}") in names
        except OSError:
            return False
    if nr in polls:
        # We cannot see which descriptors it polls; only count it when the terminal is
        # all it could be waiting for (no sockets or pipes: ssh, servers are not waiting).
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            return False
        if not any(link in names for link in links):
            return False
        return not any(link.startswith(("socket:", "pipe:")) for link in links)
    return False


def _fd0_is_tty(pid: int, names: Tuple[str, ...]) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/0") in names
    except OSError:
        return True  # unreadable (setuid): trust wchan


def _blocked_on_terminal_ps(fg: int) -> bool:
    """macOS: `ps` shows wchan ``ttyin`` for a process sleeping in a terminal read."""
    try:
        out = subprocess.run(
            ["ps", "-A", "-o", "pgid=,stat=,wchan="],
            capture_output=True,
            timeout=2,
            check=False,
        ).stdout.decode("ascii", "replace")
    except (OSError, subprocess.SubprocessError):
        return False
    seen = False
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] != str(fg):
            continue
        if not parts[1].startswith("S"):
            return False
        if len(parts) > 2 and parts[2] == "ttyin":
            seen = True
    return seen
