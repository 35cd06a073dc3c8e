"""Clean-up: every process a shell session started, found and killed; the shell reaped.

A cell can leave processes behind that its shell no longer knows about: ``nohup``, ``setsid``,
``disown``, double forks, background cells. Each session's processes carry an environment
marker (``RUNBOOK_SESSION=<random>``) and, unless they called ``setsid``, the shell's session
id; ``close`` kills both kinds. Processes that both clear their environment and call
``setsid`` escape: only a cgroup would catch them.

The shell itself is not reaped until the scan is over: its pid (and so its session id) cannot
be reused by a stranger meanwhile.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").strip().decode("utf-8", "replace")
    except OSError:
        cmd = ""
    return f"pid {pid} ({cmd[:80]})" if cmd else f"pid {pid}"


def proc_stat(pid: int) -> Optional[Tuple[str, int, int]]:
    """(state, pgrp, session) from /proc/PID/stat, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[3])


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _ticks_now() -> int:
    """Now on the clock of /proc/PID/stat start times (ticks since boot), a little early:
    CLOCK_MONOTONIC never runs ahead of the boot-time clock that field may use."""
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * _CLOCK_TICKS)


def _proc_start(pid: int) -> int:
    """Start time of ``pid`` in ticks since boot; a large number when unknown (scan it)."""
    try:  # os.open/os.read: half the cost of open() over the ~100 processes of a scan
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        return int(data[data.rfind(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 1 << 62


def proc_pids() -> List[int]:
    try:
        return [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []


def _read_proc(path: str, size: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, size)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _pid_counters() -> Optional[Tuple[int, int]]:
    """(last pid handed out, processes created since boot), or None where /proc lacks them."""
    last = _read_proc("/proc/sys/kernel/ns_last_pid", 64).strip()
    stat = _read_proc("/proc/stat", 1 << 20)
    i = stat.find(b"\nprocesses ")
    if not last.isdigit() or i < 0:
        return None
    return int(last), int(stat[i + 11 : stat.index(b"\n", i + 1)])


_PID_MAX = int(_read_proc("/proc/sys/kernel/pid_max", 64).strip() or 0)


class Since:
    """The moment a session began: which processes could be its own, cheaply.

    Linux hands out pids in increasing order and wraps at pid_max, so a process created later
    has a pid after the last one handed out then, unless the counter went all the way round
    (checked through the count of processes created).  That narrows the cleanup scan from
    every process on the machine to the few started since; the start time check remains.
    """

    def __init__(self) -> None:
        self.ticks = _ticks_now() - _CLOCK_TICKS
        self.counters = _pid_counters() if _PID_MAX else None

    def candidates(self) -> List[int]:
        pids = proc_pids()
        now = _pid_counters() if self.counters is not None else None
        if self.counters is None or now is None:
            return pids
        (first, forks), (last, forks_now) = self.counters, now
        # pids in use are skipped, so a lap of the counter can take fewer forks than
        # pid_max: past half of it, the window may no longer hold all of ours.
        if forks_now - forks >= _PID_MAX // 2:
            return pids
        if last >= first:
            return [p for p in pids if first < p <= last]
        return [p for p in pids if p > first or p <= last]


def find_session_processes(
    marker: bytes, sid: Optional[int], since: Optional[Since] = None
) -> Dict[int, str]:
    """Live processes that carry the environment marker or belong to session ``sid``.

    ``since``: when the session began; processes started before it are passed over without
    reading their environment (most of a scan's cost).
    """
    me = os.getpid()
    found: Dict[int, str] = {}
    if os.path.isdir("/proc/self"):
        needle = b"\0" + marker + b"\0"
        for pid in proc_pids() if since is None else since.candidates():
            if pid == me:
                continue
            if since is not None and _proc_start(pid) < since.ticks:
                continue
            st = proc_stat(pid)
            if st is None or st[0] in ("Z", "X"):
                continue
            hit = sid is not None and st[2] == sid
            if not hit:
                try:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        hit = needle in b"\0" + f.read() + b"\0"
                except OSError:
                    continue
            if hit:
                found[pid] = describe(pid)
        return found
    # macOS / BSD: `ps -E` appends the environment of our own processes to the command.
    try:
        out = subprocess.run(
            ["ps", "-A", "-E", "-ww", "-o", "pid=,sess=,stat=,command="],
            capture_output=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return found
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid == me or parts[2].startswith(b"Z"):
            continue
        if marker in parts[3] or (sid is not None and parts[1] == str(sid).encode()):
            found[pid] = f"pid {pid} ({parts[3][:80].decode('utf-8', 'replace')})"
    return found


def _gone(pid: int) -> bool:
    if os.path.isdir("/proc/self"):
        st = proc_stat(pid)
        return st is None or st[0] in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def kill_all(marker: bytes, sid: Optional[int], since: Optional[Since] = None) -> List[str]:
    """SIGTERM everything of the session, SIGKILL what is left 0.5 s later; describe them."""
    killed: List[str] = []
    for _ in range(3):  # a dying parent may still fork; look again
        procs = find_session_processes(marker, sid, since)
        if not procs:
            break
        for pid in procs:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and not all(_gone(p) for p in procs):
            time.sleep(0.01)
        for pid, desc in procs.items():
            if _gone(pid):
                killed.append(desc)
                continue
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            killed.append(desc + " (SIGKILL)")
    return killed


def peek_exit(proc: Any) -> Optional[int]:
    """The shell's exit status (128+N for signal N) without reaping it, or None while it runs.

    Not reaping keeps its pid (and so its session id) from being reused before cleanup.
    """
    pid = int(proc.pid)
    waitid = getattr(os, "waitid", None)
    if waitid is not None and not proc.terminated:
        try:
            res = waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            res = None
            if not proc.isalive():
                return _status_of(proc)
            return None
        if res is None:
            return None
        if res.si_code == os.CLD_EXITED:
            return int(res.si_status)
        return 128 + int(res.si_status)
    if proc.isalive():
        return None
    return _status_of(proc)


def _status_of(proc: Any) -> int:
    if proc.exitstatus is not None:
        return int(proc.exitstatus)
    if proc.signalstatus is not None:
        return 128 + int(proc.signalstatus)
    return 0


def wait_exit(proc: Any, seconds: float) -> Optional[int]:
    """The shell's exit status once it ends within ``seconds``, else None; never reaps."""
    status = peek_exit(proc)
    if status is not None:
        return status
    pidfd = _open_pidfd(int(proc.pid))
    if pidfd is not None:
        # Readable when the process ends: no polling interval between its exit and ours.
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.poll(seconds * 1000.0)
        finally:
            os.close(pidfd)
        return peek_exit(proc)
    deadline = time.monotonic() + seconds
    while True:
        status = peek_exit(proc)
        if status is not None or time.monotonic() >= deadline:
            return status
        time.sleep(0.001)


def _open_pidfd(pid: int) -> Optional[int]:
    opener = getattr(os, "pidfd_open", None)  # Linux 5.3+, Python 3.9+
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:  # an older kernel, or the process is already reaped
        return None


def dispose(proc: Any) -> None:
    """Kill (if needed), reap and close one spawned shell; never raises."""
    try:
        if peek_exit(proc) is None:
            for sig in (signal.SIGHUP, signal.SIGKILL):
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, sig)
                if wait_exit(proc, 0.2) is not None:
                    break
        if proc.isalive():  # reaps
            proc.wait()
        proc.close(force=True)
    except Exception:
        pass


class Resources:
    """Everything close() needs, kept apart from ShellSession so a finalizer can own it."""

    def __init__(self, marker: bytes, dirs: List[str], logs: List[str]) -> None:
        self.marker = marker
        self.dirs = dirs
        self.logs = logs
        self.since = Since()  # every shell of the session starts after this
        self.proc: Any = None
        self.closed = False
        self.final_log: Optional[bytes] = None

    def close(self, defer: Optional[Callable[[Callable[[], None]], None]] = None) -> List[str]:
        """Kill the shell and every process of the session; describe those that had to be.

        ``defer`` is given what nobody waits for, to run later (reaping the dead shell and
        removing the directories); without it, that is done before returning.
        """
        if self.closed:
            return []
        self.closed = True
        killed: List[str] = []
        proc, self.proc = self.proc, None
        try:
            sid: Optional[int] = None
            if proc is not None:
                sid = int(proc.pid)
                if peek_exit(proc) is None:
                    with contextlib.suppress(OSError):
                        os.write(proc.child_fd, b"\x15\x04")  # kill line, EOF: bash exits
                    if wait_exit(proc, 0.3) is None:
                        with contextlib.suppress(OSError):
                            os.kill(proc.pid, signal.SIGKILL)
                        wait_exit(proc, 1.0)
            # The shell is a zombie now, not reaped: its pid cannot be reused, so matching on
            # its session id cannot hit a stranger.
            killed = kill_all(self.marker, sid, self.since)
        finally:
            self.final_log = read_logs(self.logs)
            release = functools.partial(_release, proc, list(self.dirs))
            if defer is None:
                release()
            else:
                defer(release)
        return killed


def _release(proc: Any, dirs: Sequence[str]) -> None:
    if proc is not None:
        dispose(proc)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def read_logs(paths: Sequence[str]) -> bytes:
    """Background logs, one per background cell (so ``ready`` never sees another job's
    output), joined in the order the cells started."""
    parts = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                parts.append(f.read())
        except OSError:
            pass
    return b"".join(parts)


def stop_group(pid: int) -> None:
    """A background job is its own process group (job control): end all of it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if not group_alive(pid):
                return
            time.sleep(0.01)


def group_alive(pgid: int) -> bool:
    # Zombies count as gone: the shell reaps them only when it next looks.
    if os.path.isdir("/proc/self"):
        for pid in proc_pids():
            st = proc_stat(pid)
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    return True
