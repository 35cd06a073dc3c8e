"""Background cells: started from the session shell, output to a log, ``ready=`` awaited.

A background cell runs in a subshell of the session (so it sees the session's variables and
directory) with its output appended to a log file of its own, never to the terminal, and is
disowned, so ``%1``, ``jobs`` and a bare ``wait`` of later cells see only the user's jobs.
``ready`` is a regular expression searched in that log only (never another job's output).
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import codecs
import os
import re
import signal
import time
from typing import List, Optional, Sequence, Set, Tuple

from ...model import Result
from .processes import stop_group
from .protocol import Channel, cell_bytes, interpreter_ext, q, write_file

_BG_WINDOW = 65536  # characters of background log kept for the ready search
# How long a background cell without ``ready=`` is watched for dying at once (a config
# error, a typo'd command): long enough for a failing start, short enough to pay always.
START_GRACE = 0.1


def launcher(
    body: str,
    rc_file: str,
    pid_file: str,
    log: str,
    cwd: Optional[str],
    interpreter: Optional[Sequence[str]],
) -> bytes:
    """The script the session sources to start ``body`` in the background."""
    # The log is a file, not a terminal: Python would hold a server's "Listening on ..."
    # in its buffer and ``ready`` would never see it. Sourced, so parsed after the cells'
    # aliases: every command word of ours is backslash-quoted.
    steps = ["\\builtin export PYTHONUNBUFFERED=1"]
    if cwd is not None:
        steps.append(f"\\builtin cd -P -- {q(cwd)} || \\builtin exit")
    if interpreter is not None:
        words = [q(a) for a in interpreter]
        first = words[0] if words[0].startswith("'") else "\\" + words[0]
        steps.append(" ".join([first, *words[1:], q(body)]))
    else:
        steps.append("\\builtin set -e -o pipefail")  # a subshell: errexit is safe here
        steps.append(f"\\builtin source {q(body)}")
    text = (
        f"{{ ( {'; '.join(steps)} ); \\builtin printf '%s\\n' \"$?\" >|{q(rc_file)}; }}"
        f" >>{q(log)} 2>&1 </dev/null &\n"
        f"\\builtin printf '%s' \"$!\" >|{q(pid_file)}\n"
        # Not one of the user's jobs: `%1`, `jobs` and a bare `wait` see only their own.
        '\\builtin disown "$!" 2>/dev/null\n'
    )
    return text.encode("utf-8", "surrogateescape")


def read_pid(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return int(f.read() or b"0")
    except (OSError, ValueError):
        return 0


def read_rc(path: str) -> Optional[int]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data.endswith(b"\n"):
        return None
    try:
        return int(data)
    except ValueError:
        return None


def _join(notes: List[str]) -> str:
    return " ".join(n for n in notes if n)


def await_ready(
    channel: Optional[Channel],
    pattern: re.Pattern[str],
    pid: int,
    rc_file: str,
    log: str,
    t0: float,
    timeout: float,
    notes: List[str],
) -> Result:
    """Wait until the log matches ``pattern``, the job ends, or the timeout stops it."""
    ready = pattern.pattern
    deadline = t0 + timeout
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    text: List[str] = []
    window = ""
    pos = 0
    while True:
        try:
            with open(log, "rb") as f:
                f.seek(pos)
                data = f.read()
        except OSError:
            data = b""
        pos += len(data)
        if data:
            piece = decoder.decode(data)
            text.append(piece)
            window = (window + piece)[-_BG_WINDOW:]
            if pattern.search(window):
                return Result(
                    output="".join(text),
                    status=0,
                    duration=time.monotonic() - t0,
                    note=_join(notes),
                )
        status = read_rc(rc_file)
        if status is not None and not data:
            notes.append(
                f"The background cell exited with status {status} before its output "
                f"matched ready={ready!r}."
            )
            return Result(
                output="".join(text),
                status=status if status != 0 else 1,
                duration=time.monotonic() - t0,
                note=_join(notes),
            )
        if time.monotonic() >= deadline:
            if pid > 0:
                stop_group(pid)
            notes.append(
                f"Timed out after {timeout:g} s: the background cell's output never matched "
                f"ready={ready!r}; it was stopped."
            )
            return Result(
                output="".join(text),
                status=None,
                duration=time.monotonic() - t0,
                timed_out=True,
                note=_join(notes),
            )
        # Drain the terminal too: nothing may block on a full PTY while we poll the log.
        chunk = channel.read(0.02) if channel is not None else None
        if chunk:
            assert channel is not None
            channel.keep_stray(chunk)
        elif chunk is None:
            time.sleep(0.02)


def read_log(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return ""


def died_at_once(rc_file: str, log: str, grace: float = START_GRACE) -> Optional[Result]:
    """A failure when the job exits non-zero within ``grace`` seconds of its start, else
    None (it runs on, or it already finished well): a service that cannot start must not
    pass as a started one."""
    t0 = time.monotonic()
    status = read_rc(rc_file)
    while status is None and time.monotonic() - t0 < grace:
        time.sleep(0.01)
        status = read_rc(rc_file)
    if not status:
        return None
    return Result(
        output=read_log(log),
        status=status,
        duration=time.monotonic() - t0,
        note=f"The background cell exited with status {status} as soon as it started.",
    )


# Exits by the signals that stop a service on purpose (a later `kill $pid`, a teardown
# cell): not worth a word. A crash (SIGSEGV, SIGABRT) or an exit status is.
_STOPPED = frozenset(
    128 + s for s in (signal.SIGHUP, signal.SIGINT, signal.SIGKILL, signal.SIGTERM)
)


class Exits:
    """The file's background jobs' status files; each non-zero exit is told once."""

    def __init__(self) -> None:
        self.rc_files: List[str] = []
        self.told: Set[int] = set()

    def add(self, rc_file: str) -> int:
        self.rc_files.append(rc_file)
        return len(self.rc_files) - 1

    def failed_since(self) -> List[Tuple[int, int]]:
        """(job number in start order, exit status) of jobs that exited non-zero since the
        last call, unless a stop signal ended them."""
        found = []
        for number, rc_file in enumerate(self.rc_files):
            if number in self.told:
                continue
            status = read_rc(rc_file)
            if status is not None:
                self.told.add(number)  # ended: a later look finds nothing new
                if status != 0 and status not in _STOPPED:
                    found.append((number, status))
        return found


def write_job(
    cell_dir: str, seq: int, source: str, cwd: Optional[str], interpreter: Optional[Sequence[str]]
) -> Tuple[str, str, str, str]:
    """Write a background cell's files: (launcher, exit status, pid, log) paths."""
    ext = interpreter_ext(interpreter)
    body = os.path.join(cell_dir, f"b{seq}{ext}")
    launch, rc_file, pid_file, log = (
        os.path.join(cell_dir, f"b{seq}.{kind}") for kind in ("launch", "rc", "pid", "log")
    )
    write_file(body, cell_bytes(source))
    for empty in (rc_file, pid_file, log):  # created here so they are 0600, not umask's
        write_file(empty, b"")
    write_file(launch, launcher(body, rc_file, pid_file, log, cwd, interpreter))
    return launch, rc_file, pid_file, log


def read_each(logs: Sequence[str]) -> List[str]:
    """What each background cell printed so far: one text per log, in order."""
    texts = []
    for path in logs:
        try:
            with open(path, "rb") as f:
                texts.append(f.read().decode("utf-8", "surrogateescape"))
        except OSError:
            texts.append("")
    return texts
