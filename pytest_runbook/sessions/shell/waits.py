"""Is the cell waiting for input? A cell that reads a terminal with nothing to read must fail
fast ("waiting for input"), not hang until its timeout.

Linux: the terminal's foreground process group (``tcgetpgrp``), then each member's
``/proc/PID/syscall``. Only a provable read of the terminal (``read`` on it) is "read": the
caller stops the cell at once. Polling a set of descriptors that holds the terminal and no
socket or pipe is only "poll": a program that waits with a timeout (``select`` on stdin for
1.5 s, Perl's ``select(undef, undef, undef, t)``, ``tail -f`` watching its output) looks the
same, so the caller waits for a longer quiet spell first. setuid programs (sudo's password
prompt) hide their syscalls; their ``wchan`` still shows a terminal read. macOS: ``ps`` wchan
``ttyin``, best effort. ``describe_foreground`` says what the job is blocked in, for a
timeout's report.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Dict, FrozenSet, List, Optional, Pattern, Sequence, Tuple

from .processes import proc_pids, proc_stat

# Syscalls that mean "blocked reading a file descriptor" (read family) or "waiting on a set of
# descriptors" (poll family), per architecture.  Unknown architectures fall back to wchan.
_SYSCALLS: Dict[str, Tuple[FrozenSet[int], FrozenSet[int]]] = {
    "x86_64": (frozenset({0, 17, 19, 295}), frozenset({7, 23, 232, 270, 271, 281})),
    "aarch64": (frozenset({63, 65, 67, 69}), frozenset({22, 72, 73})),
}
_SYSCALLS["amd64"] = _SYSCALLS["x86_64"]
_SYSCALLS["arm64"] = _SYSCALLS["aarch64"]
# Where a poll-family call keeps its timeout: (argument index, True for a pointer that is NULL
# when it waits forever, False for an int that is negative then).
_TIMEOUT_ARG: Dict[int, Tuple[int, bool]] = {
    7: (2, False), 23: (4, True), 232: (3, False), 270: (4, True), 271: (2, True),
    281: (3, False),
}  # fmt: skip
_TIMEOUT_ARG_AARCH64: Dict[int, Tuple[int, bool]] = {22: (3, False), 72: (4, True), 73: (2, True)}


def blocked_on_terminal(fd: int, slave: str) -> Optional[str]:
    """ "read" when the foreground job of the terminal on master ``fd`` sleeps reading it (and
    nothing else in that job runs); "poll" when it may be waiting for it among other things
    or for nothing but time; None otherwise. ``slave``: the terminal's name, "" if unknown."""
    try:
        fg = os.tcgetpgrp(fd)
    except OSError:
        return None
    if not os.path.isdir("/proc/self"):
        return "read" if _blocked_on_terminal_ps(fg) else None
    members = []
    for pid in proc_pids():
        st = proc_stat(pid)
        if st is not None and st[1] == fg:
            if st[0] not in ("S",):
                return None  # running, in disk I/O, stopped: not simply waiting for us
            members.append(pid)
    names = (slave, "/dev/tty") if slave else ("/dev/tty",)
    kinds = [_reads_terminal(pid, names) for pid in members]
    if "read" in kinds:
        return "read"
    return "poll" if "poll" in kinds else None


def describe_foreground(fd: int) -> str:
    """What the terminal's foreground job is doing, e.g. "`tail` (pid 12) was blocked in
    poll()"; "" when unknown (not Linux, or the shell itself is in front)."""
    try:
        fg = os.tcgetpgrp(fd)
    except OSError:
        return ""
    if not os.path.isdir("/proc/self"):
        return ""
    parts: List[str] = []
    for pid in proc_pids():
        st = proc_stat(pid)
        if st is None or st[1] != fg:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if st[0] == "R":
            doing = "was running"
        elif st[0] == "D":
            doing = "was in uninterruptible I/O"
        else:
            doing = f"was blocked in {_syscall_name(pid)}"
        parts.append(f"`{name}` (pid {pid}) {doing}")
        if len(parts) == 3:
            break
    return ", ".join(parts)


_NAMES_X86_64 = {
    0: "read()", 7: "poll()", 17: "pread()", 19: "readv()", 23: "select()", 35: "nanosleep()",
    61: "wait4()", 202: "futex()", 230: "clock_nanosleep()", 232: "epoll_wait()",
    270: "pselect6()", 271: "ppoll()", 281: "epoll_pwait()",
}  # fmt: skip


def _syscall_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/syscall") as f:
            parts = f.read().split()
        nr = int(parts[0])
    except (OSError, ValueError, IndexError):
        return "a system call"
    if platform.machine() in ("x86_64", "amd64") and _NAMES_X86_64.get(nr):
        return _NAMES_X86_64[nr]
    return f"system call {nr}"


def _reads_terminal(pid: int, names: Tuple[str, ...]) -> Optional[str]:
    reads, polls = _SYSCALLS.get(platform.machine(), (frozenset(), frozenset()))
    try:
        with open(f"/proc/{pid}/syscall") as f:
            parts = f.read().split()
    except PermissionError:
        parts = []
    except OSError:
        return None
    if not parts or parts[0] == "running" or not (reads or polls):
        # setuid programs (sudo's password prompt) hide their syscalls; wchan still shows.
        try:
            with open(f"/proc/{pid}/wchan") as f:
                wchan = f.read().strip()
        except OSError:
            return None
        if wchan in ("n_tty_read", "wait_woken") and _fd0_is_tty(pid, names):
            return "read"
        return None
    try:
        nr = int(parts[0])
        arg0 = int(parts[1], 16)
    except (ValueError, IndexError):
        return None
    if nr in reads:
        try:
            return "read" if os.readlink(f"/proc/{pid}/fd/{arg0}") in names else None
        except OSError:
            return None
    if nr in polls:
        # We cannot see which descriptors it polls (or whether it only waits for time);
        # only count it when the terminal is all it could be waiting for (no sockets or
        # pipes: ssh, servers are not waiting).
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            return None
        if not any(link in names for link in links):
            return None
        if any(link.startswith(("socket:", "pipe:")) for link in links):
            return None
        # Waiting forever with nothing but the terminal to wake it (readline's pselect) is
        # as good as a read; with a timeout it may only be passing time.
        return "read" if _waits_forever(nr, parts) else "poll"
    return None


def _waits_forever(nr: int, parts: List[str]) -> bool:
    table = _TIMEOUT_ARG_AARCH64 if platform.machine() in ("aarch64", "arm64") else _TIMEOUT_ARG
    where = table.get(nr)
    if where is None:
        return False
    index, pointer = where
    try:
        value = int(parts[1 + index], 16)
    except (ValueError, IndexError):
        return False
    return value == 0 if pointer else bool(value & 0x80000000)


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


def waiting_note(
    pending_answers: Sequence[Tuple[Pattern[str], bytes]],
    stdin: Optional[str],
    answers: Sequence[Tuple[str, str]],
    how: str,
) -> str:
    """Why a cell that waits for terminal input got none, and what was done about it."""
    if pending_answers:
        what = f"no output matched the expected prompt {pending_answers[0][0].pattern!r}"
    elif answers or stdin:
        what = "it wanted more input than stdin/answers provided"
    else:
        what = "the cell has no stdin= or answers= for it"
    return f"Waiting for input: the cell read from the terminal, but {what}; {how}."
