"""Nothing outlives a killed run: a watchdog per owning process, and stale leftovers removed.

``close()`` and the finalizer end a session's processes when Python lives to run them; after
``kill -9`` of pytest (or of an xdist worker) nothing of ours runs. So the first shell session
of a process starts one small watchdog process (this file, run by path: no package import).
It reads a pipe whose only writer is the owner: ``+ MARKER DIR...`` when a session begins,
``- MARKER`` when it closed cleanly (NUL-separated fields, a line each). End of file with
sessions still registered means the owner died: the watchdog kills every process carrying
those ``RUNBOOK_SESSION`` markers (``/proc/*/environ``; ``ps -E`` on macOS) and removes their
directories, within a second.

The watchdog itself can die with its owner (a kill of the whole process group): directories
are named ``runbook-cells-<owner pid>-...``, and ``remove_stale`` (once per process) removes
those whose owner is gone.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

# Ours, with the owner's pid: cell and session directories, and the runner's cwd: tmp /
# home: tmp directories (runbook-cwd-<pid>-..., runbook-home-<pid>-...).
_STALE_RE = re.compile(r"runbook-(?:cells-|cwd-|home-)?(\d+)-")
_lock = threading.Lock()
_writer: Optional[int] = None  # our end of the watchdog's pipe
_owner = -1  # the pid that started it (a forked child must start its own)
_process: Optional[subprocess.Popen[bytes]] = None  # reaped at exit, never left a zombie
_stale_checked = False


def dir_prefix(kind: str) -> str:
    """``runbook-cells-<pid>-`` / ``runbook-<pid>-``: the owner is in the name."""
    return f"runbook-{kind}{os.getpid()}-"


def register(marker: bytes, dirs: List[str]) -> None:
    """Tell the watchdog about a session (starting it if needed); never raises."""
    _send(b"\0".join([b"+", marker, *(d.encode("utf-8", "surrogateescape") for d in dirs)]))


def unregister(marker: bytes) -> None:
    _send(b"-\0" + marker)


def _send(line: bytes) -> None:
    global _writer, _owner
    if b"\n" in line:
        return  # a directory name with a newline: the finalizer still covers a clean exit
    with _lock:
        try:
            if _writer is None or _owner != os.getpid():
                _writer, _owner = _start(), os.getpid()
            if _writer is not None:
                os.write(_writer, line + b"\n")
        except OSError:
            _writer = None


def _start() -> Optional[int]:
    global _process
    read_end, write_end = os.pipe()  # neither end is inherited by the shells we spawn
    try:
        _process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid())],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # a ^C to pytest's process group leaves it to clean up
        )
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    atexit.register(_stop, os.getpid())
    return write_end


def _stop(owner: int) -> None:
    """At a clean exit: end of file tells the watchdog to finish (it cleans up whatever
    is still registered) and it is waited for, briefly, so it is reaped, not dropped."""
    global _writer, _process
    if owner != os.getpid() or _owner != owner:
        return  # a forked child: the watchdog is its parent's
    with _lock:
        writer, _writer = _writer, None
        process, _process = _process, None
    if writer is not None:
        with contextlib.suppress(OSError):
            os.close(writer)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2)


def remove_stale(roots: List[str]) -> None:
    """Remove ``runbook-[cells-|cwd-|home-]<pid>-*`` directories of ours whose owner is gone
    (once)."""
    global _stale_checked
    if _stale_checked:
        return
    _stale_checked = True
    uid = os.getuid()
    for root in roots:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            m = _STALE_RE.match(name)
            if m is None:
                continue
            path = os.path.join(root, name)
            try:
                if os.lstat(path).st_uid != uid or _alive(int(m.group(1))):
                    continue
            except OSError:
                continue
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# -- the watchdog process -------------------------------------------------------------------


def _scan(markers: List[bytes]) -> List[int]:
    me = os.getpid()
    found = []
    if os.path.isdir("/proc/self"):
        needles = [b"\0" + m + b"\0" for m in markers]
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    env = b"\0" + f.read() + b"\0"
            except OSError:
                continue
            if any(n in env for n in needles):
                found.append(int(name))
        return found
    try:
        out = subprocess.run(
            ["ps", "-A", "-E", "-ww", "-o", "pid=,command="], capture_output=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return found
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit() and any(m in parts[1] for m in markers):
            found.append(int(parts[0]))
    return [p for p in found if p != me]


def _clean(sessions: Dict[bytes, List[str]]) -> None:
    markers = list(sessions)
    for _ in range(5):  # a dying parent may still fork: look again
        pids = _scan(markers)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    for dirs in sessions.values():
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _main() -> None:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    sessions: Dict[bytes, List[str]] = {}
    buf = b""
    while True:
        try:
            chunk = os.read(0, 65536)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            words = line.split(b"\0")
            if len(words) >= 2 and words[0] == b"+":
                sessions[words[1]] = [w.decode("utf-8", "surrogateescape") for w in words[2:]]
            elif len(words) == 2 and words[0] == b"-":
                sessions.pop(words[1], None)
    if sessions:
        _clean(sessions)


if __name__ == "__main__":
    _main()
