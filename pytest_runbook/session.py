"""One persistent shell per Markdown file, on a PTY of its own.

Protocol (see ``research/pexpect-shell-protocol.md`` for the measurements behind it):

* The shell is started by ``terminal.spawn_shell`` (posix_spawn on Linux, pexpect elsewhere)
  with ``--noprofile --rcfile SETUP --noediting``, a hermetic environment and the signal
  dispositions a terminal gives it; lazily, or early through ``prestart()`` so that bash starts
  up while the caller works.  Output post-processing is off (``-opost``), so the terminal shows
  LF, never CRLF.
* Cells are never typed into the PTY (4095-byte line limit, TAB completion, history expansion,
  ``read`` eating the next line).  Each cell is written to a new 0600 file in a private 0700
  directory (on ``/dev/shm`` when possible) and one short line is sent: it prints a START
  sentinel to ``/dev/tty``, sources the file and prints an END sentinel with ``$?``, ``$-`` and
  a token held in a non-exported variable.  The sentinels carry a random nonce that never
  appears in the environment, so no output of a cell can fake them; writing them to
  ``/dev/tty`` keeps them working after ``exec >/dev/null``; ``builtin`` keeps them working when
  a cell defines ``printf``/``cd``/``trap``/``source`` functions.  A missing token means the
  shell was replaced (``exec bash``).
* Per-cell errexit (Runme's ``set -e -o pipefail``) is an ERR trap that ``return``s out of the
  sourced cell, plus ``errtrace`` and ``pipefail``; ``set -e`` itself would kill the session.
  ``errtrace``/``pipefail`` and the ERR trap are put back as they were after the cell, so an
  errexit cell that sets them itself does not keep them.  A cell that turns on ``set -e``
  (and survives) gets it switched off again, with a note: otherwise the next failing command
  anywhere would end the session.  ``set -e; false`` inside one cell ends the shell, exactly as
  in a terminal.
* Stdin is the terminal.  A cell that blocks reading it with nothing to read is detected
  (Linux: foreground process group from ``tcgetpgrp`` plus ``/proc/PID/syscall``; macOS: ``ps``
  wchan ``ttyin``, best effort) and interrupted after ~0.4 s instead of hanging until the
  timeout.  Unconsumed ``stdin=``/answer text is discarded after the cell (an ack line the
  shell reads up to), so it can never run as a command.
* Timeouts interrupt the foreground job (^C, ^C, SIGTERM, SIGKILL to its process group), then
  a resync line proves the shell is back at its prompt.  The shell is killed and replaced
  only when nothing else works.
* ``close()`` ends the shell and then kills every process that carries the session's
  ``RUNBOOK_SESSION`` environment marker or belongs to the shell's session (``nohup``,
  ``setsid``, ``disown`` and double forks included).  Processes that both clear their
  environment and call ``setsid`` escape: only a cgroup would catch them.

Shells: bash 4+ is fully supported.  ``sh``/``dash`` run in a POSIX mode good for simple
cells: no per-cell errexit (a cell's status is its last command's), no incomplete-input
detection beyond what the shell prints.  zsh and other shells raise ``ValueError``: zsh's
line editor and option model need their own protocol, which is not written (yet).

Known differences from typing into a terminal: ``$LINENO`` counts lines within the cell;
syntax errors name the cell file (``<private dir>/cell.sh: line N: ...``; the plugin maps
them back to the Markdown line); ``set -x`` lines would show one ``+`` too many (a sourced
file is one level deeper), which an invisible marker in PS4 lets us remove; job start
announcements (``[1] 123``) and notices (``[1]+  Done  cmd``) are not shown, as in a script
(so a ``jobs`` listing loses its finished jobs); bash may print ``Terminated`` when an
interrupt escalated to SIGTERM.  Under errexit a failing
``$(...)`` stops at its first failure too (like ``inherit_errexit``), and a user's own ERR trap
does not fire during errexit cells (it is put back afterwards).
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import platform
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .model import Result
from .terminal import spawn_shell

_LINUX = sys.platform.startswith("linux")
_ROWS = 50
_TICK = 0.1  # seconds of silence between liveness / waiting-for-input checks
_WAIT_AFTER = 0.3  # a cell may legitimately read the terminal this long before we look
_MAX_LINE = 900  # stay below macOS's 1024-byte canonical line (Linux: 4095)
_STRAY_CAP = 65536
_BG_WINDOW = 65536  # characters of background log kept for the ready search
_ANSWER_WINDOW = 8192  # characters of output kept for matching answer prompts
_SEP = b"\x1e"
_EOS = b"\x1f"

# Syscalls that mean "blocked reading a file descriptor" (read family) or "waiting on a set of
# descriptors" (poll family), per architecture.  Unknown architectures fall back to wchan.
_SYSCALLS: Dict[str, Tuple[frozenset[int], frozenset[int]]] = {
    "x86_64": (frozenset({0, 17, 19, 295}), frozenset({7, 23, 232, 270, 271, 281})),
    "aarch64": (frozenset({63, 65, 67, 69}), frozenset({22, 72, 73})),
}
_SYSCALLS["amd64"] = _SYSCALLS["x86_64"]
_SYSCALLS["arm64"] = _SYSCALLS["aarch64"]

_INTERPRETER_EXT = {
    "python": ".py",
    "python3": ".py",
    "pypy3": ".py",
    "node": ".js",
    "deno": ".ts",
    "bun": ".ts",
    "ts-node": ".ts",
    "tsx": ".ts",
    "ruby": ".rb",
    "perl": ".pl",
    "php": ".php",
    "lua": ".lua",
    "Rscript": ".R",
    "go": ".go",
    "bash": ".sh",
    "sh": ".sh",
    "zsh": ".sh",
    "dash": ".sh",
}

_INCOMPLETE = (
    b"unexpected EOF while looking for matching",
    b"syntax error: unexpected end of file",
    b"delimited by end-of-file",
    # dash
    b"Syntax error: Unterminated quoted string",
    b"Syntax error: end of file unexpected",
)

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# What interactive bash prints for errors that would end a script (see _fatal_expansion_error).
_SESSION_ERROR = re.compile(
    rb"^(?:[^\n:]*/)?(?P<shell>[^\n:/]+): (?P<what>[^\n:]+): (?P<message>[^\n]+)$", re.MULTILINE
)
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_LINE_PREFIX = re.compile(rb"line [0-9]+\Z")
_JOB_NOTICE = re.compile(
    rb"^\[[0-9]+\][+ -] +(?:Done|Exit [0-9]+|Terminated|Killed|Hangup|Interrupt|Quit|Aborted"
    rb"|Broken pipe|Alarm clock|Segmentation fault|User defined signal [12])"
    rb"(?: \(core dumped\))?(?: {2,}| *$)[^\n]*\n?",
    re.MULTILINE,
)
_EXPANSION_ERRORS = frozenset(
    {
        b"unbound variable",
        b"parameter null or not set",
        b"parameter not set",
        b"readonly variable",
        b"invalid indirect expansion",
        b"bad substitution",
        b"bad array subscript",
    }
)
_COMMAND_ERRORS = frozenset(
    {b"command not found", b"No such file or directory", b"Permission denied", b"Is a directory"}
)
# `bash: cd: /x: No such file or directory` is a builtin's error: its status says it failed.
_BASH_BUILTINS = frozenset(
    b"""alias bg bind break builtin caller cd command compgen complete compopt continue declare
    dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill
    let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt
    source suspend test times trap true type typeset ulimit umask unalias unset wait warning
    coproc select function time""".split()
)

# -- shell-side helpers, defined once per shell ------------------------------------------------
# __rb_a SEQ ERREXIT CWD SAVETRAP: print START, remember what the cell may change.
# __rb_z KIND SEQ [ACK]: undo our per-cell settings, print END (or Resync) with $?, $-, token;
# with ACK, discard terminal input up to the ack line Python sends, so unread stdin= text can
# never run as a command.
_BASH_INIT = r"""
builtin set +o history +H
builtin unset PROMPT_COMMAND
PS1= PS2= PS0=
PS4=$'+\016 '
__rb_n=@NONCE@ __rb_tok=@TOK@ __rb_d=@DIR@ __rb_e=0 __rb_c=0 __rb_r=0 __rb_on=
exec 243>/dev/tty
__rb_fmt='\036%s%s.%s:%s:%s:%s\037'
# Subshells (pipeline parts, $(...)) cannot `return`: they exit, as under `set -e`.
__rb_trap='__rb_s=$?
if [[ -n ${__rb_on-} ]]; then
  if [[ ${BASHPID:-$$} != "$$" ]]; then builtin exit "$__rb_s"
  elif [[ -n ${FUNCNAME-}${BASH_SOURCE-} ]]; then
    builtin printf "%s\n%s" "$__rb_q" "$BASH_COMMAND" >|"$__rb_d/failed" 2>/dev/null
    builtin return "$__rb_s"
  fi
fi'
__rb_a() {
  [[ -t 243 ]] || exec 243>/dev/tty
  builtin printf '\036S%s.%s\037' "$__rb_n" "$1" >&243 ||
    builtin printf '\036S%s.%s\037' "$__rb_n" "$1" >/dev/tty
  __rb_e=$2 __rb_c=$3 __rb_r=$4 __rb_q=$1
  if [[ $3 == 1 ]]; then __rb_pwd=$PWD __rb_opwd=${OLDPWD-}; fi
  if [[ $2 == 1 ]]; then
    __rb_m=$- __rb_p=:$SHELLOPTS:
    builtin trap -- "$__rb_trap" ERR
    builtin set -E -o pipefail
    __rb_on=1
  fi
}
__rb_z() {
  __rb_rc=$? __rb_f=$-
  builtin set +e
  if [[ $__rb_e == 1 ]]; then
    __rb_on= __rb_e=0
    builtin trap - ERR
    if [[ $__rb_r == 1 ]]; then builtin source "$__rb_d/trap"; fi
    [[ $__rb_m == *E* ]] || builtin set +E
    [[ $__rb_p == *:pipefail:* ]] || builtin set +o pipefail
  fi
  if [[ $__rb_c == 1 ]]; then
    __rb_c=0
    builtin cd -- "$__rb_pwd" && OLDPWD=$__rb_opwd
  fi
  [[ -t 243 ]] || exec 243>/dev/tty
  builtin printf "$__rb_fmt" "$1" "$__rb_n" "$2" "$__rb_rc" "$__rb_f" "${__rb_tok-}" >&243 ||
    builtin printf "$__rb_fmt" "$1" "$__rb_n" "$2" "$__rb_rc" "$__rb_f" "${__rb_tok-}" >/dev/tty
  if [[ ${3-} ]]; then
    until builtin read -r __rb_k </dev/tty; [[ $__rb_k == "$3" ]]; do :; done
  fi
}
"""

# The shell moves to its directory itself (posix_spawn cannot), leaving OLDPWD as it was.
_CD_FIRST = r"""
__rb_o=${OLDPWD-} __rb_os=${OLDPWD+x}
cd -P -- @CWD@ || exit 97
case $__rb_os in x) OLDPWD=$__rb_o ;; *) unset OLDPWD ;; esac
"""

_POSIX_INIT = r"""
PS1= PS2=
__rb_n=@NONCE@ __rb_tok=@TOK@ __rb_d=@DIR@ __rb_c=0
__rb_a() {
  command printf '\036S%s.%s\037' "$__rb_n" "$1" >/dev/tty
  __rb_c=$3
  case $3 in 1) __rb_pwd=$PWD; __rb_opwd=${OLDPWD-} ;; esac
}
__rb_z() {
  __rb_rc=$?; __rb_f=$-
  set +e
  case $__rb_c in 1) __rb_c=0; command cd -- "$__rb_pwd" && OLDPWD=$__rb_opwd ;; esac
  command printf '\036%s%s.%s:%s:%s:%s\037' "$1" "$__rb_n" "$2" "$__rb_rc" "$__rb_f" \
    "${__rb_tok-}" >/dev/tty
  case ${3-} in
    '') ;;
    *) while :; do command read -r __rb_k </dev/tty; case $__rb_k in "$3") break ;; esac; done ;;
  esac
}
"""


def _shell_kind(argv0: str) -> str:
    name = os.path.basename(argv0)
    if name == "bash" or re.fullmatch(r"bash[0-9.]*", name):
        return "bash"
    if name in ("sh", "dash"):
        return "posix"
    raise ValueError(
        f"unsupported shell {argv0!r}: pytest-runbook runs cells in bash (fully supported) or "
        "sh/dash (simple cells, no per-cell errexit); zsh and others are not supported"
    )


def _skips_rcfile(args: Sequence[str]) -> bool:
    """Flags under which bash does not read our ``--rcfile``: a login shell (``-l``,
    ``--login``, ``-il``), ``--norc``, ``--posix``, or an rc file of the user's own."""
    return any(
        a in ("--login", "--norc", "--posix", "--rcfile", "--init-file")
        or (a.startswith("-") and not a.startswith("--") and "l" in a)
        for a in args
    )


def _utf8_locale() -> str:
    return "en_US.UTF-8" if sys.platform == "darwin" else "C.UTF-8"


def _private_cell_root() -> Optional[str]:
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return None


def _write_file(path: str, data: bytes, *, reuse: bool = False) -> None:
    # Reusing a name (in our private 0700 directory) saves an unlink per cell; O_NOFOLLOW and
    # O_EXCL for fresh names keep us from writing through anything planted there anyway.
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_TRUNC if reuse else os.O_EXCL
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _q(text: str) -> str:
    return shlex.quote(text)


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").strip().decode("utf-8", "replace")
    except OSError:
        cmd = ""
    return f"pid {pid} ({cmd[:80]})" if cmd else f"pid {pid}"


def _proc_stat(pid: int) -> Optional[Tuple[str, int, int]]:
    """(state, pgrp, session) from /proc/PID/stat, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[3])


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


_TRACE = re.compile(rb"^\+(\+*)\x0e ", re.MULTILINE)


def _untrace(raw: bytes) -> bytes:
    """``set -x`` lines as a terminal prints them: ``+ cmd``, not ``++ cmd``.

    Cells are sourced, one level deeper than typed commands, so bash doubles PS4's ``+``.
    PS4 carries an invisible ``\x0e`` to tell its trace lines from output that merely
    starts with ``++``; one ``+`` and the marker are dropped.
    """
    if b"\x0e" not in raw:
        return raw
    return _TRACE.sub(rb"\1 ", raw)


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


def _proc_pids() -> List[int]:
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


class _Since:
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
        pids = _proc_pids()
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


def _find_session_processes(
    marker: bytes, sid: Optional[int], since: Optional[_Since] = None
) -> Dict[int, str]:
    """Live processes that carry the environment marker or belong to session ``sid``.

    ``since``: when the session began; processes started before it are passed over without
    reading their environment (most of a scan's cost).
    """
    me = os.getpid()
    found: Dict[int, str] = {}
    if os.path.isdir("/proc/self"):
        needle = b"\0" + marker + b"\0"
        for pid in _proc_pids() if since is None else since.candidates():
            if pid == me:
                continue
            if since is not None and _proc_start(pid) < since.ticks:
                continue
            st = _proc_stat(pid)
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
                found[pid] = _describe(pid)
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
        st = _proc_stat(pid)
        return st is None or st[0] in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _kill_all(marker: bytes, sid: Optional[int], since: Optional[_Since] = None) -> List[str]:
    """SIGTERM everything of the session, SIGKILL what is left 0.5 s later; describe them."""
    killed: List[str] = []
    for _ in range(3):  # a dying parent may still fork; look again
        procs = _find_session_processes(marker, sid, since)
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


def _peek_exit(proc: Any) -> Optional[int]:
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


def _wait_exit(proc: Any, seconds: float) -> Optional[int]:
    """The shell's exit status once it ends within ``seconds``, else None; never reaps."""
    status = _peek_exit(proc)
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
        return _peek_exit(proc)
    deadline = time.monotonic() + seconds
    while True:
        status = _peek_exit(proc)
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


def _dispose(proc: Any) -> None:
    """Kill (if needed), reap and close one spawned shell; never raises."""
    try:
        if _peek_exit(proc) is None:
            for sig in (signal.SIGHUP, signal.SIGKILL):
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, sig)
                if _wait_exit(proc, 0.2) is not None:
                    break
        if proc.isalive():  # reaps
            proc.wait()
        proc.close(force=True)
    except Exception:
        pass


class _Resources:
    """Everything close() needs, kept apart from Session so a finalizer can own it."""

    def __init__(self, marker: bytes, dirs: List[str], logs: List[str]) -> None:
        self.marker = marker
        self.dirs = dirs
        self.logs = logs
        self.since = _Since()  # every shell of the session starts after this
        self.proc: Any = None
        self.closed = False
        self.final_log: Optional[bytes] = None

    def close(self) -> List[str]:
        if self.closed:
            return []
        self.closed = True
        killed: List[str] = []
        try:
            proc, self.proc = self.proc, None
            sid: Optional[int] = None
            if proc is not None:
                sid = int(proc.pid)
                if _peek_exit(proc) is None:
                    with contextlib.suppress(OSError):
                        os.write(proc.child_fd, b"\x15\x04")  # kill line, EOF: bash exits
                    if _wait_exit(proc, 0.3) is None:
                        with contextlib.suppress(OSError):
                            os.kill(proc.pid, signal.SIGKILL)
                        _wait_exit(proc, 1.0)
            # The shell is a zombie now, not reaped: its pid cannot be reused, so matching on
            # its session id cannot hit a stranger.
            killed = _kill_all(self.marker, sid, self.since)
            if proc is not None:
                _dispose(proc)
        finally:
            self.final_log = _read_logs(self.logs)
            for d in self.dirs:
                shutil.rmtree(d, ignore_errors=True)
        return killed


class _Cell:
    """Reader state for one command line: START, output, END (or a resync sentinel)."""

    def __init__(
        self,
        nonce: bytes,
        seq: int,
        on_output: Optional[Callable[[str], None]],
        answers: Sequence[Tuple[str, str]],
    ) -> None:
        tag = nonce + b"." + str(seq).encode()
        self.start = _SEP + b"S" + tag + _EOS
        self.end = _SEP + b"E" + tag + b":"
        self.started = False
        self.fields: Optional[List[bytes]] = None
        self.chunks: List[bytes] = []
        self.seq = seq
        self.errexit = False  # run under our per-cell errexit (the ERR trap names what failed)
        self.sourced = False  # the cell ran in the session shell itself (not interpreter=)
        self.source = b""  # its text, when sourced
        self.on_output = on_output
        self.answers = [
            (re.compile(p), (t + "\n").encode("utf-8", "surrogateescape")) for p, t in answers
        ]
        self.window = ""
        self.decoder = (
            codecs.getincrementaldecoder("utf-8")("surrogateescape")
            if on_output is not None or answers
            else None
        )
        self.callback_error: Optional[BaseException] = None
        self.to_send: List[bytes] = []

    def emit(self, data: bytes) -> None:
        if not data:
            return
        self.chunks.append(data)
        if self.decoder is None:
            return
        text = self.decoder.decode(data)
        if self.on_output is not None and text and self.callback_error is None:
            try:
                self.on_output(text)
            except Exception as exc:  # a broken reporter must not wedge the shell
                self.callback_error = exc
        if self.answers:
            self.window = (self.window + text)[-_ANSWER_WINDOW:]
            while self.answers:
                m = self.answers[0][0].search(self.window)
                if m is None:
                    break
                self.to_send.append(self.answers.pop(0)[1])
                self.window = self.window[m.end() :]


@dataclass
class Submitted:
    """A cell whose command line was sent; ``Session.collect`` turns it into a Result."""

    cell: _Cell
    t0: float
    timeout: float
    path: str
    ack: str
    notes: List[str]
    stdin: Optional[str]
    answers: List[Tuple[str, str]]
    temp: List[str]


class Session:
    """A shell that lives for one Markdown file; cells run in it in order."""

    def __init__(
        self,
        *,
        cwd: str,
        shell: Sequence[str] = ("bash",),
        env: Optional[Mapping[str, str]] = None,
        columns: int = 200,
    ) -> None:
        if isinstance(shell, str) or not shell:
            raise ValueError("shell must be a non-empty argv sequence, e.g. ('bash',)")
        self._kind = _shell_kind(shell[0])
        self._argv = list(shell)
        self._cwd = os.path.abspath(cwd)
        self._columns = int(columns)
        self._nonce = secrets.token_hex(8).encode()
        self._tok = secrets.token_hex(6)
        env_nonce = secrets.token_hex(12)
        self._tmpdir = tempfile.mkdtemp(prefix="runbook-")
        try:
            self._celldir = tempfile.mkdtemp(prefix="runbook-cells-", dir=_private_cell_root())
        except OSError:
            self._celldir = tempfile.mkdtemp(prefix="runbook-cells-")
        self._celldir_bytes = self._celldir.encode("utf-8", "surrogateescape")
        self._bg_logs: List[str] = []
        self._outstanding: Optional[Submitted] = None  # sent, not yet collected
        marker = b"RUNBOOK_SESSION=" + env_nonce.encode()
        self._res = _Resources(marker, [self._celldir, self._tmpdir], self._bg_logs)
        # Closes the shell and kills its processes when the caller forgets (also at exit).
        self._finalizer = weakref.finalize(self, self._res.close)

        base = dict(os.environ if env is None else env)
        for name in ("PROMPT_COMMAND", "LANGUAGE", "FORCE_COLOR", "CLICOLOR_FORCE"):
            base.pop(name, None)
        if self._kind == "posix":
            base.pop("ENV", None)  # an interactive sh would source it
        loc = _utf8_locale()
        base.update(
            TERM="dumb",
            LANG=loc,
            LC_ALL=loc,
            NO_COLOR="1",
            PAGER="cat",
            GIT_PAGER="cat",
            MANPAGER="cat",
            SYSTEMD_PAGER="",
            HISTFILE="/dev/null",
            PS1="",
            PS2="",
            PS0="",
            COLUMNS=str(self._columns),
            LINES=str(_ROWS),
            RUNBOOK_SESSION=env_nonce,
            RUNBOOK_TMPDIR=self._tmpdir,
        )
        self._env = base
        self._proc: Any = None
        self._fd = -1
        self._slave = ""
        self._poller: Any = None
        self._tattr: Optional[List[Any]] = None
        self._buf = bytearray()
        self._stray = bytearray()
        self._seq = 0
        self._spawned = False
        self._starting: Optional[_Cell] = None  # the setup line sent, its END not yet seen
        self._init_path = ""
        self._restarted = False
        self._lost_note = ""
        self._err_trap_seen = False
        # Whether the shell is known to have xtrace off: our call to __rb_a then needs no
        # `2>/dev/null` around it (which costs bash an open and nine more system calls).
        self._quiet_calls = False
        self._exported: Dict[str, str] = {}  # values exported into the current shell

    # -- public API --------------------------------------------------------------------------

    @property
    def tmpdir(self) -> str:
        """The session's private temporary directory (also $RUNBOOK_TMPDIR)."""
        return self._tmpdir

    @property
    def cell_dir(self) -> str:
        """Where cells are written: error messages name files in it (reports map them back)."""
        return self._celldir

    @property
    def restarted(self) -> bool:
        """True once a dead shell has been replaced: state from earlier cells was lost."""
        return self._restarted

    def run(
        self,
        source: str,
        *,
        timeout: float,
        cwd: Optional[str] = None,
        interpreter: Optional[Sequence[str]] = None,
        errexit: bool = True,
        stdin: Optional[str] = None,
        answers: Sequence[Tuple[str, str]] = (),
        exports: Optional[Mapping[str, str]] = None,
        on_output: Optional[Callable[[str], None]] = None,
    ) -> Result:
        """Run one cell and wait for it."""
        ticket = self.submit(
            source,
            timeout=timeout,
            cwd=cwd,
            interpreter=interpreter,
            errexit=errexit,
            stdin=stdin,
            answers=answers,
            exports=exports,
            on_output=on_output,
        )
        return self.collect(ticket)

    def submit(
        self,
        source: str,
        *,
        timeout: float,
        cwd: Optional[str] = None,
        interpreter: Optional[Sequence[str]] = None,
        errexit: bool = True,
        stdin: Optional[str] = None,
        answers: Sequence[Tuple[str, str]] = (),
        exports: Optional[Mapping[str, str]] = None,
        on_output: Optional[Callable[[str], None]] = None,
    ) -> Submitted:
        """Start one cell and return at once; ``collect`` waits for it.

        Lets the caller overlap the shell's work with its own (pytest reporting the previous
        cell). One cell at a time: a second submit first collects the one outstanding.
        """
        if self._outstanding is not None:
            self.collect(self._outstanding)
        t0 = time.monotonic()
        ext = self._ext(interpreter)
        answer_list = list(answers)
        for pattern, _text in answer_list:
            re.compile(pattern)  # a bad pattern is the caller's error, before anything runs
        notes = self._ensure_shell()
        if exports:  # only values this shell does not hold yet (`$__` is often unchanged)
            exports = {k: v for k, v in exports.items() if self._exported.get(k) != v}
        seq = self._next_seq()
        temp: List[str] = []
        try:
            path = os.path.join(self._celldir, f"cell{ext}")
            data = self._cell_bytes(source)
            _write_file(path, data, reuse=True)
            use_errexit = errexit and interpreter is None and self._kind == "bash"
            # Saving the user's ERR trap costs a file write per cell: only once one exists.
            self._err_trap_seen = self._err_trap_seen or "ERR" in source
            save_trap = use_errexit and self._err_trap_seen
            ack = secrets.token_hex(6) if (stdin is not None or answer_list) else ""
            line = self._line(
                seq, path, cwd, interpreter, use_errexit, save_trap, exports, temp, ack
            )
            cell = _Cell(self._nonce, seq, on_output, answer_list)
            cell.sourced = interpreter is None and self._kind == "bash"
            cell.errexit = use_errexit
            if cell.sourced:
                cell.source = data
            if stdin is not None:  # "" too: no input, only its end
                data = stdin.encode("utf-8", "surrogateescape")
                if not answer_list:
                    # Then end of input, as from a pipe: `wc -l` and `cat` finish. (^D ends
                    # the input at a line start; after a partial line a first ^D sends it.)
                    data += b"\x04" if data.endswith(b"\n") else b"\x04\x04"
                cell.to_send.append(data)
            self._send(line)
            if exports:
                self._exported.update(exports)  # only once the line reached the shell
        except BaseException:
            for p in temp:
                with contextlib.suppress(OSError):
                    os.unlink(p)
            raise
        ticket = Submitted(cell, t0, timeout, path, ack, notes, stdin, answer_list, temp)
        self._outstanding = ticket
        return ticket

    def collect(self, ticket: Submitted) -> Result:
        """Wait for a submitted cell and return what it did."""
        if ticket is not self._outstanding:
            raise RuntimeError("that cell was already collected")
        self._outstanding = None
        cell = ticket.cell
        try:
            try:
                result = self._exchange(
                    cell,
                    b"",
                    ticket.t0,
                    ticket.timeout,
                    ticket.path,
                    ticket.ack,
                    ticket.notes,
                    ticket.stdin,
                    ticket.answers,
                )
            except BaseException:
                # Interrupted mid-cell (e.g. KeyboardInterrupt): the shell's state is unknown.
                self._drop_shell("the previous cell was interrupted")
                raise
        finally:
            for p in ticket.temp:
                with contextlib.suppress(OSError):
                    os.unlink(p)
        if cell.callback_error is not None:
            raise cell.callback_error
        return result

    def start_background(
        self,
        source: str,
        *,
        timeout: float,
        ready: Optional[str] = None,
        cwd: Optional[str] = None,
        interpreter: Optional[Sequence[str]] = None,
        exports: Optional[Mapping[str, str]] = None,
    ) -> Result:
        """Start a cell in the background; return once started (or once ``ready`` matched)."""
        if self._outstanding is not None:
            self.collect(self._outstanding)
        t0 = time.monotonic()
        pattern = re.compile(ready) if ready is not None else None
        notes = self._ensure_shell()
        seq = self._next_seq()
        ext = self._ext(interpreter)
        body = os.path.join(self._celldir, f"b{seq}{ext}")
        launcher = os.path.join(self._celldir, f"b{seq}.launch")
        rc_file = os.path.join(self._celldir, f"b{seq}.rc")
        pid_file = os.path.join(self._celldir, f"b{seq}.pid")
        log = os.path.join(self._celldir, f"b{seq}.log")
        _write_file(body, self._cell_bytes(source))
        for empty in (rc_file, pid_file, log):  # created here so they are 0600, not umask's
            _write_file(empty, b"")
        self._bg_logs.append(log)
        b = "builtin " if self._kind == "bash" else "command "
        # The log is a file, not a terminal: Python would hold a server's "Listening on ..."
        # in its buffer and ``ready`` would never see it.
        steps = ["export PYTHONUNBUFFERED=1"]
        if cwd is not None:
            steps.append(f"{b}cd -P -- {_q(self._resolve(cwd))} || exit")
        if interpreter is not None:
            steps.append(" ".join(_q(a) for a in interpreter) + " " + _q(body))
        else:
            if self._kind == "bash":
                steps.append("builtin set -e -o pipefail")  # a subshell: errexit is safe here
            steps.append(f". {_q(body)}")
        text = (
            f"{{ ( {'; '.join(steps)} ); {b}printf '%s\\n' \"$?\" >|{_q(rc_file)}; }}"
            f" >>{_q(log)} 2>&1 </dev/null &\n"
            f"{b}printf '%s' \"$!\" >|{_q(pid_file)}\n"
            # Not one of the user's jobs: `%1`, `jobs` and a bare `wait` see only their own.
            + ('builtin disown "$!" 2>/dev/null\n' if self._kind == "bash" else "")
        )
        _write_file(launcher, text.encode("utf-8", "surrogateescape"))
        temp: List[str] = []
        line = self._line(seq, launcher, None, None, False, False, exports, temp, "")
        cell = _Cell(self._nonce, seq, None, ())
        try:
            res = self._exchange(cell, line, t0, timeout, launcher, "", notes, None, ())
        except BaseException:
            self._drop_shell("the previous cell was interrupted")
            raise
        finally:
            for p in temp:
                with contextlib.suppress(OSError):
                    os.unlink(p)
        if res.status != 0:
            return res
        try:
            with open(pid_file, "rb") as f:
                pid = int(f.read() or b"0")
        except (OSError, ValueError):
            pid = 0
        started = f"started in the background (pid {pid}); its output goes to the background log"
        if pattern is None:
            return Result(
                output="",
                status=0,
                duration=time.monotonic() - t0,
                note=_join(notes, started + "."),
            )
        return self._await_ready(pattern, ready or "", pid, rc_file, log, t0, timeout, notes)

    def background_logs(self) -> List[str]:
        """What each background cell printed so far: one text per cell, in start order."""
        texts = []
        for path in self._bg_logs:
            try:
                with open(path, "rb") as f:
                    texts.append(f.read().decode("utf-8", "surrogateescape"))
            except OSError:
                texts.append("")
        return texts

    def background_log(self) -> str:
        """Everything background cells have printed so far."""
        data = self._res.final_log
        if data is None:
            data = _read_logs(self._bg_logs)
        return data.decode("utf-8", "surrogateescape")

    def close(self) -> List[str]:
        """End the shell and every process it started; describe any that had to be killed."""
        self._proc = None
        self._fd = -1
        self._outstanding = None  # a cell submitted but never collected dies with the shell
        return self._res.close()

    # -- shell lifecycle ---------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def prestart(self) -> None:
        """Start the shell now without waiting for it: it starts up while the caller works.

        The first cell then finds it ready.  Errors are left for that cell to report.
        """
        if self._proc is None and not self._spawned and not self._res.closed:
            with contextlib.suppress(OSError):
                self._spawn_start()

    def _ensure_shell(self) -> List[str]:
        if self._res.closed:
            raise RuntimeError("the runbook session is closed")
        notes: List[str] = []
        if self._proc is None:
            if self._spawned:
                self._restarted = True
                notes.append(
                    "A fresh shell was started because "
                    f"{self._lost_note or 'the previous one ended'}; state from earlier cells "
                    "(variables, functions, aliases, working directory) was lost."
                )
            self._spawn_start()
        if self._starting is not None:
            self._spawn_finish()
        return notes

    def _spawn_start(self) -> None:
        """Spawn the shell with its setup; ``_spawn_finish`` waits until it has run."""
        # posix_spawn starts the shell in our directory; pexpect's start is harmless to repeat.
        init = _CD_FIRST.replace("@CWD@", _q(self._cwd))
        init += _BASH_INIT if self._kind == "bash" else _POSIX_INIT
        init = (
            init.replace("@NONCE@", self._nonce.decode())
            .replace("@TOK@", self._tok)
            .replace("@DIR@", _q(self._celldir))
        )
        seq = self._next_seq()
        ready = f"{{ __rb_a {seq} 0 0 0; __rb_z E {seq}; }} 2>/dev/null\n"
        path = os.path.join(self._celldir, f"init{secrets.token_hex(4)}.sh")
        self._init_path = path
        typed = self._kind != "bash" or _skips_rcfile(self._argv[1:])
        if not typed:
            # bash reads its setup as its rc file: no line to send, no echo to wait for.
            _write_file(path, (init + ready).encode())
            args = ["--noprofile", "--rcfile", path, "--noediting", *self._argv[1:]]
        elif self._kind == "bash":  # this bash reads no rc file of ours: type the setup
            _write_file(path, init.encode())
            args = ["--noprofile", "--norc", "--noediting", *self._argv[1:]]
        else:
            _write_file(path, init.encode())
            args = [*self._argv[1:], "-i"]
        try:
            proc = spawn_shell([self._argv[0], *args], self._env, self._cwd, _ROWS, self._columns)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise OSError(f"cannot start the shell {self._argv!r}: {exc}") from exc
        self._proc = proc
        self._res.proc = proc
        self._spawned = True
        self._fd = int(proc.child_fd)
        os.set_blocking(self._fd, False)
        if _LINUX:
            self._poller = select.poll()
            self._poller.register(self._fd, select.POLLIN)
            self._slave = getattr(proc, "slave_name", "")
            if not self._slave:
                try:
                    self._slave = os.readlink(f"/proc/{proc.pid}/fd/0")
                except OSError:
                    self._slave = ""
        self._buf = bytearray()
        self._exported = {}
        self._starting = _Cell(self._nonce, seq, None, ())
        if typed:
            source = "builtin source" if self._kind == "bash" else "."
            try:
                self._send(f"{source} {_q(path)}; {ready}".encode("utf-8", "surrogateescape"))
            except BaseException:
                self._drop_shell("it failed to start")
                raise

    def _spawn_finish(self) -> None:
        cell, proc = self._starting, self._proc
        assert cell is not None
        try:
            deadline = time.monotonic() + 15.0
            while True:
                self._parse(cell, None)
                if cell.fields is not None:
                    break
                if time.monotonic() > deadline:
                    raise OSError(f"the shell {self._argv!r} did not start within 15 s")
                data = self._read(_TICK)
                if data is None or (data == b"" and _peek_exit(proc) is not None):
                    out = bytes(self._stray).decode("utf-8", "replace")
                    raise OSError(f"the shell {self._argv!r} exited while starting: {out[-500:]}")
                self._buf += data
        except BaseException:
            self._drop_shell("it failed to start")
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self._init_path)  # read by now, or never to be read
        self._starting = None
        self._tattr = termios.tcgetattr(self._fd)

    def _drop_shell(self, why: str) -> None:
        """Forget the current shell (killing it if needed); the next cell starts a new one."""
        proc, self._proc = self._proc, None
        self._res.proc = None
        self._fd = -1
        self._outstanding = None
        self._starting = None
        self._poller = None
        self._lost_note = why
        if proc is not None:
            _dispose(proc)

    # -- building the command line -----------------------------------------------------------

    def _resolve(self, cwd: str) -> str:
        return os.path.normpath(os.path.join(self._cwd, cwd))

    @staticmethod
    def _ext(interpreter: Optional[Sequence[str]]) -> str:
        if interpreter is None:
            return ".sh"
        if not interpreter:
            raise ValueError("interpreter must be a non-empty argv sequence")
        name = os.path.basename(interpreter[0])
        return _INTERPRETER_EXT.get(name) or _INTERPRETER_EXT.get(re.sub(r"[0-9.]+$", "", name), "")

    @staticmethod
    def _cell_bytes(source: str) -> bytes:
        if source and not source.endswith("\n"):
            source += "\n"
        return source.encode("utf-8", "surrogateescape")

    def _line(
        self,
        seq: int,
        path: str,
        cwd: Optional[str],
        interpreter: Optional[Sequence[str]],
        errexit: bool,
        save_trap: bool,
        exports: Optional[Mapping[str, str]],
        temp: List[str],
        ack: str,
    ) -> bytes:
        bash = self._kind == "bash"
        pre = f"__rb_a {seq} {int(errexit)} {int(cwd is not None)} {int(save_trap)}"
        if save_trap:
            # Not inside __rb_a: a function without errtrace does not see the ERR trap.
            pre = 'builtin trap -p ERR >|"$__rb_d/trap"; ' + pre
        if exports:
            lines = []
            for name, value in exports.items():
                if not _NAME_RE.match(name):
                    raise ValueError(f"cannot export {name!r}: not a valid variable name")
                lines.append(f"export {name}={_q(value.replace(chr(0), ''))}")
            snippet = "; ".join(lines)
            if len(snippet) < 400 and snippet.isprintable():
                pre += "; " + snippet
            else:
                env_path = os.path.join(self._celldir, "exports.sh")
                data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
                _write_file(env_path, data, reuse=True)
                pre += f"; {'builtin source' if bash else '.'} {_q(env_path)}"
        if interpreter is not None:
            cmd = " ".join(_q(a) for a in interpreter) + " " + _q(path)
        else:
            cmd = f"{'builtin source' if bash else '.'} {_q(path)}"
        if cwd is not None:
            cmd = f"{'builtin' if bash else 'command'} cd -P -- {_q(self._resolve(cwd))} && {cmd}"
        post = f"__rb_z E {seq}" + (f" {ack}" if ack else "")
        # The cell may turn xtrace on: the call after it always hides its trace.
        quiet = self._quiet_calls and bash
        self._quiet_calls = False  # known again when this cell's END arrives
        start = f"{pre}; " if quiet else f"{{ {pre}; }} 2>/dev/null; "
        line = f"{start}{cmd}; {{ {post}; }} 2>/dev/null\n"
        data = line.encode("utf-8", "surrogateescape")
        if len(data) > _MAX_LINE:
            raise ValueError(
                "the cell's cwd or interpreter is too long for one terminal line "
                f"({len(data)} bytes; the limit is {_MAX_LINE})"
            )
        return data

    # -- terminal I/O ------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """Write everything, draining output meanwhile so a full PTY cannot deadlock us."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._fd, view) :]
            except BlockingIOError:
                chunk = self._read(0.01)
                if chunk:
                    self._buf += chunk
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return  # the shell is gone; the reader will notice
                raise

    def _read(self, wait: float) -> Optional[bytes]:
        """Up to 64 KiB of output within ``wait`` seconds; b"" if none; None at end of file."""
        if wait > 0:
            if self._poller is not None:
                ready = self._poller.poll(wait * 1000.0)
            else:
                ready = select.select([self._fd], [], [], wait)[0]
            if not ready:
                return b""
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return None
            raise
        return data if data else None

    def _keep_stray(self, data: bytes) -> None:
        # Output between cells (late job output, a prompt a cell set): not any cell's output.
        self._stray += data
        if len(self._stray) > _STRAY_CAP:
            del self._stray[: len(self._stray) - _STRAY_CAP]

    @staticmethod
    def _holdback(buf: bytearray, markers: Sequence[bytes]) -> int:
        """Index from which ``buf`` might be the start of a marker split across reads."""
        longest = max(len(m) for m in markers)
        k = buf.rfind(_SEP, max(0, len(buf) - longest))
        while k >= 0:
            tail = bytes(buf[k:])
            if any(m.startswith(tail) for m in markers):
                return k
            k = buf.rfind(_SEP, max(0, len(buf) - longest), k)
        return len(buf)

    def _parse(self, cell: _Cell, resync: Optional[bytes]) -> Optional[List[bytes]]:
        """Consume buffered output; returns the resync fields once ``resync`` was seen."""
        buf = self._buf
        while True:
            if not cell.started:
                markers = [cell.start] + ([resync] if resync else [])
                i = buf.find(cell.start)
                j = buf.find(resync) if resync else -1
                if j >= 0 and (i < 0 or j < i):
                    self._keep_stray(bytes(buf[:j]))
                    del buf[:j]
                    fields = self._fields(resync or b"")
                    if fields is None:
                        return None
                    return fields
                if i < 0:
                    cut = self._holdback(buf, markers)
                    self._keep_stray(bytes(buf[:cut]))
                    del buf[:cut]
                    return None
                self._keep_stray(bytes(buf[:i]))
                del buf[: i + len(cell.start)]
                cell.started = True
                continue
            if cell.fields is None:
                markers = [cell.end] + ([resync] if resync else [])
                i = buf.find(cell.end)
                j = buf.find(resync) if resync else -1
                if j >= 0 and (i < 0 or j < i):
                    cell.emit(bytes(buf[:j]))
                    del buf[:j]
                    return self._fields(resync or b"")
                if i < 0:
                    cut = self._holdback(buf, markers)
                    cell.emit(bytes(buf[:cut]))
                    del buf[:cut]
                    return None
                cell.emit(bytes(buf[:i]))
                del buf[:i]
                fields = self._fields(cell.end)
                if fields is None:
                    return None
                cell.fields = fields
                continue
            if resync is None:
                return None
            j = buf.find(resync)
            if j < 0:
                cut = self._holdback(buf, [resync])
                self._keep_stray(bytes(buf[:cut]))
                del buf[:cut]
                return None
            self._keep_stray(bytes(buf[:j]))
            del buf[:j]
            return self._fields(resync)

    def _fields(self, prefix: bytes) -> Optional[List[bytes]]:
        """Split ``prefix rc:flags:tok EOS`` at the start of the buffer, consuming it."""
        buf = self._buf
        j = buf.find(_EOS, len(prefix))
        if j < 0:
            return None
        fields = bytes(buf[len(prefix) : j]).split(b":")
        del buf[: j + 1]
        while len(fields) < 3:
            fields.append(b"")
        return fields

    def _flush_writes(self, cell: _Cell) -> None:
        while cell.to_send:
            self._send(cell.to_send.pop(0))

    # -- running one line --------------------------------------------------------------------

    def _exchange(
        self,
        cell: _Cell,
        line: bytes,
        t0: float,
        timeout: float,
        path: str,
        ack: str,
        notes: List[str],
        stdin: Optional[str],
        answers: Sequence[Tuple[str, str]],
    ) -> Result:
        proc = self._proc
        deadline = t0 + timeout
        if line:
            self._send(line)
        quiet_since = time.monotonic()
        waiting_hits = 0
        eofs = 0
        while True:
            self._parse(cell, None)
            if cell.started:
                self._flush_writes(cell)
            if cell.fields is not None:
                if ack:
                    self._ack(ack)
                return self._finish(cell, t0, path, notes)
            now = time.monotonic()
            if now >= deadline:
                how = self._recover(cell, ack)
                return self._interrupted(cell, t0, notes, how, timed_out=True, timeout=timeout)
            data = self._read(min(_TICK, deadline - now))
            if data is None:
                return self._exited(cell, t0, notes)
            if data:
                self._buf += data
                quiet_since = time.monotonic()
                waiting_hits = 0
                continue
            if _peek_exit(proc) is not None:
                return self._exited(cell, t0, notes)
            now = time.monotonic()
            if cell.started and now - t0 >= _WAIT_AFTER and now - quiet_since >= _TICK * 0.9:
                if self._blocked_on_terminal():
                    waiting_hits += 1
                    if waiting_hits >= 2 and stdin is not None and not answers and eofs < 64:
                        # A pipe keeps answering end of input; a terminal gives one per ^D.
                        eofs += 1
                        waiting_hits = 0
                        self._send(b"\x04")
                    elif waiting_hits >= 2:
                        # What the interrupt itself prints (a newline, `^C`) is not the cell's.
                        keep = len(cell.chunks)
                        how = self._recover(cell, ack)
                        del cell.chunks[keep:]
                        if self._proc is None and self._lost_note.startswith("the shell was re"):
                            # `exec bash`: the new shell reads the terminal; not a prompt.
                            notes.append(
                                "The cell replaced the shell (`exec`), so it was stopped; the "
                                "next cell gets a fresh shell without the state built so far."
                            )
                            return Result(
                                output=self._output(cell),
                                status=None,
                                duration=time.monotonic() - t0,
                                replaced=True,
                                note=_join(notes),
                            )
                        syntax = self._posix_syntax_error(cell, path, t0, notes)
                        if syntax is not None:
                            return syntax
                        return self._interrupted(
                            cell, t0, notes, how, waiting=True, stdin=stdin, answers=answers
                        )
                else:
                    waiting_hits = 0
                quiet_since = now

    def _ack(self, ack: str) -> None:
        self._restore_tty()
        # Two newlines first: one ends a partial stdin line, the other survives a trailing ^V.
        self._send(b"\n\n" + ack.encode() + b"\n")

    def _restore_tty(self) -> None:
        if self._tattr is None or self._fd < 0:
            return
        try:
            if termios.tcgetattr(self._fd) != self._tattr:
                termios.tcsetattr(self._fd, termios.TCSANOW, self._tattr)
            if tuple(self._proc.getwinsize()) != (_ROWS, self._columns):
                self._proc.setwinsize(_ROWS, self._columns)
        except (termios.error, OSError):
            pass

    def _output(self, cell: _Cell) -> str:
        return self._cell_output(cell).decode("utf-8", "surrogateescape")

    def _cell_output(self, cell: _Cell) -> bytes:
        """What the cell printed, as a script would have printed it."""
        raw = _untrace(self._drop_own_trace(b"".join(cell.chunks)))
        if self._kind == "bash" and b"]" in raw:
            # Job notices (`[1]+  Done  sleep 1`) are interactive bash's, printed between
            # commands whenever a background job ended: a script never prints them.
            raw = _JOB_NOTICE.sub(b"", raw)
        return raw

    def _drop_own_trace(self, raw: bytes) -> bytes:
        """Under ``set -x`` bash traces the command that runs the cell (``+ builtin source
        .../cell.sh``, after ``+ builtin cd -P -- DIR`` for a ``cwd=``): ours, not the cell's.
        Only our line runs at the top level; the cell's own commands trace one ``+`` deeper."""
        celldir = self._celldir_bytes
        while raw.startswith(b"+\x0e "):
            eol = raw.find(b"\n")
            line = raw if eol < 0 else raw[:eol]
            if celldir not in line and not line.startswith(b"+\x0e builtin cd -P -- "):
                break
            raw = b"" if eol < 0 else raw[eol + 1 :]
        return raw

    def _finish(self, cell: _Cell, t0: float, path: str, notes: List[str]) -> Result:
        self._restore_tty()
        fields = cell.fields or [b"", b"", b""]
        try:
            status: Optional[int] = int(fields[0])
        except ValueError:
            status = None
        flags = fields[1].decode("ascii", "replace")
        self._quiet_calls = "x" not in flags
        raw = self._cell_output(cell)
        output = raw.decode("utf-8", "surrogateescape")
        incomplete = False
        where = path.encode("utf-8", "surrogateescape") + b": line "
        i = raw.find(where)
        while i >= 0:
            eol = raw.find(b"\n", i)
            text = raw[i : eol if eol >= 0 else len(raw)]
            if any(m in text for m in _INCOMPLETE):
                incomplete = True
                break
            i = raw.find(where, i + 1)
        if not incomplete and b"here-document at line" in raw:
            # Interactive bash reports an unterminated heredoc as `bash: warning: ...`, without
            # the file name; nested shells print their own prefix (`bash: -c: line 2: ...`).
            heredoc = re.compile(
                rb"^" + re.escape(self._argv[0].encode()) + rb": warning: here-document at line "
                rb"[0-9]+ delimited by end-of-file",
                re.MULTILINE,
            )
            incomplete = heredoc.search(raw) is not None
        if incomplete:
            notes.append(
                "The cell is incomplete: an unterminated quote, heredoc, brace or compound "
                "command left the shell waiting for more input (see the shell's message)."
            )
            status = None
        if "e" in flags:
            notes.append(
                "The cell turned on `set -e`; it was switched off again so that a later "
                "failing command does not end the session."
            )
        fatal = None
        if cell.sourced and status is not None:  # failed already or not: the note explains
            fatal = self._fatal_expansion_error(raw, cell.source, cell.errexit)
        if fatal is not None:
            status = status or 1
            notes.append(
                f"bash reported `{fatal}`: in a script (and in Runme) that error ends the cell "
                "with status 1. The session's interactive bash only skipped that command and "
                "went on with the next one, so the cell fails here as it would there."
            )
        return Result(
            output=output,
            status=status,
            duration=time.monotonic() - t0,
            incomplete=incomplete,
            note=_join(notes),
            failed_command=self._failed_command(cell) if status and cell.errexit else "",
        )

    def _failed_command(self, cell: _Cell) -> str:
        """What the ERR trap recorded for this cell: the command errexit stopped at."""
        try:
            with open(os.path.join(self._celldir, "failed"), "rb") as f:
                seq, _, command = f.read().partition(b"\n")
        except OSError:
            return ""
        if seq != str(cell.seq).encode():
            return ""
        return command.decode("utf-8", "surrogateescape")

    def _fatal_expansion_error(self, raw: bytes, source: bytes, errexit: bool) -> Optional[str]:
        """An error that ends a bash script but that interactive bash survives, if printed.

        ``${VAR:?message}``, ``set -u`` with an unset variable, assigning to a readonly
        variable, arithmetic errors: a script (Runme's cell) exits with status 1 there; our
        interactive session drops just that command, runs the rest, and the cell's status is
        its last command's.  Only the session's own messages count: ``bash: NAME: ...``
        without a line number (a child ``bash -c`` adds ``line N:``, and its failure already
        failed its command); a free-form ``${NAME:?message}`` counts when the cell has one.
        """
        prefix = os.path.basename(self._argv[0]).encode() + b": "
        if prefix not in raw:
            return None
        for match in _SESSION_ERROR.finditer(raw):
            if match.group("shell") != prefix[:-2]:
                continue
            what, message = match.group("what"), match.group("message")
            if _LINE_PREFIX.match(what):
                continue  # `bash: line 1: ...`: a child `bash -c`, whose failure is its own
            if message == b"readonly variable" and not errexit:
                continue  # a script without `set -e` goes on after this one
            if (
                message in _EXPANSION_ERRORS
                or b'(error token is "' in message
                or (
                    _IDENTIFIER.fullmatch(what) is not None
                    and what not in _BASH_BUILTINS
                    and message not in _COMMAND_ERRORS
                    and (b"${" + what + b":?" in source or b"${" + what + b"?" in source)
                )
            ):
                return match.group(0).decode("utf-8", "replace")
        return None

    def _posix_syntax_error(
        self, cell: _Cell, path: str, t0: float, notes: List[str]
    ) -> Optional[Result]:
        """dash abandons the whole command line on a syntax error in a sourced file."""
        if self._kind != "posix":
            return None
        raw = _untrace(b"".join(cell.chunks))
        if path.encode("utf-8", "surrogateescape") + b": Syntax error: " not in raw:
            return None
        incomplete = any(m in raw for m in _INCOMPLETE)
        notes.append(
            "The cell is incomplete: an unterminated quote, heredoc or compound command left "
            "the shell waiting for more input (see the shell's message)."
            if incomplete
            else "The shell rejected the cell with a syntax error."
        )
        return Result(
            output=raw.decode("utf-8", "surrogateescape"),
            status=None if incomplete else 2,
            duration=time.monotonic() - t0,
            incomplete=incomplete,
            note=_join(notes),
        )

    def _exited(self, cell: _Cell, t0: float, notes: List[str]) -> Result:
        proc = self._proc
        status = _wait_exit(proc, 2.0)
        # Whatever the shell printed before it died is still in the PTY: take it.
        while True:
            data = self._read(0.02)
            if not data:
                break
            self._buf += data
        self._parse(cell, None)
        if cell.started and cell.fields is None:
            cell.emit(bytes(self._buf))
        self._buf.clear()
        code = 255 if status is None else status
        self._drop_shell(f"the shell exited with status {code} in an earlier cell")
        notes.append(
            f"The shell exited with status {code} (`exit`, `exec` or a fatal error ended it); "
            "the next cell gets a fresh shell without the state built so far."
        )
        return Result(
            output=self._output(cell),
            status=code,
            duration=time.monotonic() - t0,
            shell_exited=code,
            note=_join(notes),
        )

    def _interrupted(
        self,
        cell: _Cell,
        t0: float,
        notes: List[str],
        how: str,
        *,
        timed_out: bool = False,
        waiting: bool = False,
        timeout: float = 0.0,
        stdin: Optional[str] = None,
        answers: Sequence[Tuple[str, str]] = (),
    ) -> Result:
        if timed_out:
            notes.append(f"Timed out after {timeout:g} s; {how}.")
        else:
            if cell.answers:
                what = f"no output matched the expected prompt {cell.answers[0][0].pattern!r}"
            elif answers or stdin:
                what = "it wanted more input than stdin/answers provided"
            else:
                what = "the cell has no stdin= or answers= for it"
            notes.append(f"Waiting for input: the cell read from the terminal, but {what}; {how}.")
        return Result(
            output=self._output(cell),
            status=None,
            duration=time.monotonic() - t0,
            timed_out=timed_out,
            waiting_for_input=waiting,
            note=_join(notes),
        )

    # -- waiting-for-input detection ---------------------------------------------------------

    def _blocked_on_terminal(self) -> bool:
        """True when the foreground job sleeps reading the terminal (and nothing else runs)."""
        proc = self._proc
        if proc is None:
            return False
        try:
            fg = os.tcgetpgrp(self._fd)
        except OSError:
            return False
        if not os.path.isdir("/proc/self"):
            return self._blocked_on_terminal_ps(fg)
        members = []
        for pid in _proc_pids():
            st = _proc_stat(pid)
            if st is not None and st[1] == fg:
                if st[0] not in ("S",):
                    return False  # running, in disk I/O, stopped: not simply waiting for us
                members.append(pid)
        return any(self._reads_terminal(pid) for pid in members)

    def _tty_names(self) -> Tuple[str, ...]:
        return (self._slave, "/dev/tty") if self._slave else ("/dev/tty",)

    def _reads_terminal(self, pid: int) -> bool:
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
            return wchan in ("n_tty_read", "wait_woken") and self._fd0_is_tty(pid)
        try:
            nr = int(parts[0])
            arg0 = int(parts[1], 16)
        except (ValueError, IndexError):
            return False
        names = self._tty_names()
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

    def _fd0_is_tty(self, pid: int) -> bool:
        try:
            return os.readlink(f"/proc/{pid}/fd/0") in self._tty_names()
        except OSError:
            return True  # unreadable (setuid): trust wchan

    def _blocked_on_terminal_ps(self, fg: int) -> bool:
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

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self, cell: _Cell, ack: str) -> str:
        """Interrupt whatever runs, prove the shell is back at its prompt; describe what it took.

        Escalates ^C, ^C, SIGTERM, SIGKILL on the foreground job; if the shell itself does not
        come back, it is killed and the next cell starts a fresh one.
        """
        proc = self._proc
        shell = int(proc.pid)
        self._restore_tty()  # a cell may have turned off ISIG or ICANON
        steps = [signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
        used: List[str] = []
        level = 0

        def hit(pgrp: int) -> None:
            nonlocal level
            sig = steps[min(level, len(steps) - 1)]
            level += 1
            name = "^C" if sig == signal.SIGINT else sig.name
            if not used or used[-1] != name:
                used.append(name)
            try:
                if pgrp == shell and sig == signal.SIGINT:
                    # ^C through the line discipline also flushes unread terminal input.
                    os.write(self._fd, b"\x03")
                else:
                    os.killpg(pgrp, sig)
            except OSError:
                pass

        def fg_pgrp() -> int:
            try:
                return os.tcgetpgrp(self._fd)
            except OSError:
                return shell

        first = fg_pgrp()
        if first == shell:
            hit(shell)
        else:
            with contextlib.suppress(OSError):
                os.write(self._fd, b"\x03")
            level = 1
            used.append("^C")
        last_hit = time.monotonic()
        budget = last_hit + 6.0
        resync: Optional[bytes] = None
        resync_at = 0.0
        end_seen_at_send = cell.fields is not None
        shell_fg_since: Optional[float] = None
        while time.monotonic() < budget:
            fields = self._parse(cell, resync)
            if cell.fields is not None and ack and not end_seen_at_send:
                self._ack(ack)
            if fields is not None:
                self._restore_tty()
                if fields[2].decode("ascii", "replace") != self._tok:
                    self._drop_shell("the shell was replaced (`exec`) in an earlier cell")
                    return (
                        "the shell had been replaced (`exec`), so it was stopped; the next cell "
                        "gets a fresh shell"
                    )
                return _describe_steps(used)
            data = self._read(0.01)
            if data is None or _peek_exit(proc) is not None:
                status = _wait_exit(proc, 1.0)
                self._drop_shell("the shell ended while a cell was interrupted")
                return (
                    f"{_describe_steps(used)}, and the shell ended (status {status}); the next "
                    "cell gets a fresh shell"
                )
            if data:
                self._buf += data
                continue
            now = time.monotonic()
            fg = fg_pgrp()
            if fg != shell:
                shell_fg_since = None
                if now - last_hit >= 0.4:
                    hit(fg)
                    last_hit = now
                continue
            if shell_fg_since is None:
                shell_fg_since = now
            ended_since = cell.fields is not None and not end_seen_at_send
            if resync is None or ended_since:
                if now - shell_fg_since < 0.02:
                    continue  # let the shell finish reacting before it reads our line
                # A job killed by a signal makes bash put back the terminal modes it saved
                # last, which may be a cell's `stty raw -isig`: our line needs canonical mode.
                self._restore_tty()
                seq = self._next_seq()
                resync = _SEP + b"R" + self._nonce + b"." + str(seq).encode() + b":"
                fallback = f"\\036R{self._nonce.decode()}.{seq}:127::\\037"
                b = "builtin" if self._kind == "bash" else "command"
                line = (
                    f"\x15{{ __rb_z R {seq} || {b} printf '{fallback}' >/dev/tty; }} 2>/dev/null\n"
                )
                self._send(line.encode())
                resync_at = now
                end_seen_at_send = cell.fields is not None
                continue
            if now - resync_at >= 0.5 and now - last_hit >= 0.5:
                # The shell itself is busy (a builtin loop, `read` ignoring ^C): press harder.
                if level >= 2:
                    used.append("killing the shell")
                    self._drop_shell("the shell had to be killed to stop an earlier cell")
                    return f"{_describe_steps(used)}; the next cell gets a fresh shell"
                hit(shell)
                last_hit = now
                resync = None
        self._drop_shell("the shell did not recover from an interrupted cell")
        return f"{_describe_steps(used)}, but the shell did not come back, so it was killed"

    # -- background --------------------------------------------------------------------------

    def _await_ready(
        self,
        pattern: re.Pattern[str],
        ready: str,
        pid: int,
        rc_file: str,
        log: str,
        t0: float,
        timeout: float,
        notes: List[str],
    ) -> Result:
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
            status = _read_rc(rc_file)
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
                    _stop_group(pid)
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
            chunk = self._read(0.02) if self._fd >= 0 else None
            if chunk:
                self._keep_stray(chunk)
            elif chunk is None:
                time.sleep(0.02)


def _read_logs(paths: Sequence[str]) -> bytes:
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


def _read_rc(path: str) -> Optional[int]:
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


def _stop_group(pid: int) -> None:
    """A background job is its own process group (job control): end all of it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                return
            time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    # Zombies count as gone: the shell reaps them only when it next looks.
    if os.path.isdir("/proc/self"):
        for pid in _proc_pids():
            st = _proc_stat(pid)
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    return True


def _describe_steps(used: List[str]) -> str:
    if not used:
        return "it was interrupted"
    return "it was interrupted with " + ", then ".join(used)


def _join(notes: List[str], extra: str = "") -> str:
    parts = [n for n in [*notes, extra] if n]
    return " ".join(parts)
