"""Start the session's bash on a new pseudo-terminal, as a session leader, with clean signals.

pexpect (ptyprocess) forks the whole Python process and runs Python in the child before exec.
In a pytest process of 40-80 MB that costs 3-5 ms per shell, a third of a 10-cell file's
time.  On Linux, ``posix_spawn`` (vfork + exec in glibc and musl) does the same job in about
0.5 ms: the child calls ``setsid`` and then opens the terminal's slave, which makes it the
controlling terminal (Linux's rule for a session leader without one).  Elsewhere (macOS and
the BSDs acquire a controlling terminal only through ``TIOCSCTTY``) pexpect spawns the shell.

Either way the shell starts with the signal dispositions a terminal would give it.  Python
ignores SIGPIPE and SIGXFSZ, and ignored signals survive exec: ``yes | head -1`` would print
"Broken pipe" and exit 1 instead of dying quietly as it does in a terminal.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import struct
import sys
import termios
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

ROWS = 50

# Signals a terminal's shell starts with at their defaults (SIGKILL/SIGSTOP cannot be set).
_DEFAULT_SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGUSR1", "SIGUSR2",
        "SIGCHLD", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGXFSZ", "SIGXCPU", "SIGWINCH",
    )
    if hasattr(signal, name)
)  # fmt: skip


def terminal_modes(attrs: List[Any]) -> List[Any]:
    """The modes a session's terminal needs, applied to ``tcgetattr`` output."""
    attrs[0] &= ~(termios.IXON | termios.IXOFF)  # ^S in stdin text must not freeze output
    attrs[1] &= ~termios.OPOST  # LF stays LF: no CRLF to undo, binary output stays exact
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)
    return attrs


def _prepare_child() -> None:
    """pexpect's child, before exec: modes final before the shell saves them, signals reset."""
    termios.tcsetattr(0, termios.TCSANOW, terminal_modes(termios.tcgetattr(0)))
    for sig in _DEFAULT_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)


class SpawnedShell:
    """A process on a PTY master: the part of ``pexpect.spawn``'s interface a session uses."""

    def __init__(self, pid: int, master_fd: int, slave_name: str) -> None:
        self.pid = pid
        self.child_fd = master_fd
        self.slave_name = slave_name
        self.exitstatus: Optional[int] = None
        self.signalstatus: Optional[int] = None
        self.terminated = False

    def _reaped(self, status: int) -> None:
        self.terminated = True
        if os.WIFSIGNALED(status):
            self.signalstatus = os.WTERMSIG(status)
        else:
            self.exitstatus = os.WEXITSTATUS(status)

    def isalive(self) -> bool:
        """False once the process has ended (and then it is reaped)."""
        if self.terminated:
            return False
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.terminated = True
            return False
        if pid == 0:
            return True
        self._reaped(status)
        return False

    def wait(self) -> None:
        """Block until the process ends and reap it."""
        if self.terminated:
            return
        try:
            _pid, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            self.terminated = True
            return
        self._reaped(status)

    def close(self, force: bool = True) -> None:
        """Close the master side (the shell gets SIGHUP if it still runs)."""
        if self.child_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.child_fd)
            self.child_fd = -1

    def getwinsize(self) -> Tuple[int, int]:
        packed = fcntl.ioctl(self.child_fd, termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols = struct.unpack("HHHH", packed)[:2]
        return rows, cols

    def setwinsize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _inherited_fds() -> List[int]:
    """Our descriptors above 2 that a child would inherit: the spawn closes them."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):
                if os.get_inheritable(fd):
                    fds.append(fd)
    return fds


_FAST = {"works": True}  # until posix_spawn says it cannot (e.g. a libc without setsid)


def fast_spawn_available() -> bool:
    """posix_spawn makes the terminal the child's controlling terminal on Linux only."""
    return (
        _FAST["works"]
        and sys.platform.startswith("linux")
        and hasattr(os, "posix_spawn")
        and hasattr(os, "POSIX_SPAWN_OPEN")
    )


def spawn_shell(
    argv: Sequence[str], env: Mapping[str, str], cwd: str, rows: int, columns: int
) -> Any:
    """Start ``argv`` as a session leader whose controlling terminal is a new PTY.

    Returns a ``SpawnedShell`` on Linux, a ``pexpect.spawn`` elsewhere (same interface);
    only the latter starts in ``cwd``, so the caller moves the shell there itself.
    Raises ``OSError`` when the program cannot be started.
    """
    # Checked here, not in the child: ptyprocess's child would raise from its chdir and go on
    # running a copy of pytest on the terminal.
    if not os.path.isdir(cwd):
        raise OSError(f"the directory {cwd!r} does not exist")
    if not fast_spawn_available():
        return _pexpect_spawn(argv, env, cwd, rows, columns)
    path = env.get("PATH", os.defpath)
    program = _find_program(argv[0], path)
    if not program:
        raise OSError(f"{argv[0]!r} was not found on PATH ({path})")
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        termios.tcsetattr(slave, termios.TCSANOW, terminal_modes(termios.tcgetattr(slave)))
        name = os.ttyname(slave)
        actions: List[Tuple[Any, ...]] = [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()]
        actions += [
            (os.POSIX_SPAWN_OPEN, 0, name, os.O_RDWR, 0),  # after setsid: the ctty
            (os.POSIX_SPAWN_DUP2, 0, 1),
            (os.POSIX_SPAWN_DUP2, 0, 2),
        ]
        # posix_spawn cannot change directory (Python exposes no addchdir): the caller's
        # first command to the shell must be a `cd`.
        pid = os.posix_spawn(
            program,
            list(argv),
            dict(env),
            file_actions=actions,
            setsid=True,
            setsigmask=(),
            setsigdef=_DEFAULT_SIGNALS,
        )
    except NotImplementedError:
        # Python built against a libc without POSIX_SPAWN_SETSID (glibc < 2.26, old musl).
        os.close(master)
        _FAST["works"] = False
        return _pexpect_spawn(argv, env, cwd, rows, columns)
    except ValueError as exc:  # e.g. an environment name with "=" or a value with NUL
        os.close(master)
        raise OSError(f"cannot start {argv[0]!r}: {exc}") from None
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return SpawnedShell(pid, master, name)


_FOUND: Dict[Tuple[str, str], str] = {}


def _find_program(name: str, path: str) -> Optional[str]:
    """``name`` resolved on ``path``; remembered, as every file of a run asks the same."""
    if os.sep in name:
        return name
    found = _FOUND.get((name, path))
    if found is None or not os.access(found, os.X_OK):
        found = shutil.which(name, path=path)
        if found is None:
            return None
        _FOUND[(name, path)] = found
    return found


def _pexpect_spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: str, rows: int, columns: int
) -> Any:
    import pexpect  # not on Linux's posix_spawn path: importing it costs ~5 ms

    try:
        proc = pexpect.spawn(
            argv[0],
            list(argv[1:]),
            env=dict(env),
            cwd=cwd,
            echo=False,
            dimensions=(rows, columns),
            timeout=None,
            preexec_fn=_prepare_child,
        )
    except pexpect.ExceptionPexpect as exc:
        raise OSError(str(exc)) from exc
    # Closing must not sleep: the session waits for the shell itself.
    for obj in (proc, proc.ptyproc):
        obj.delayafterclose = 0
        obj.delayafterterminate = 0
    return proc


def check_bash(argv0: str) -> None:
    """The persistent session is bash's: its protocol needs bash 4+ (another ``shell:`` runs
    each shell cell as a fresh script through that shell, outside this session)."""
    name = os.path.basename(argv0)
    if name == "bash" or re.fullmatch(r"bash[0-9.]*", name):
        return
    raise ValueError(
        f"unsupported session shell {argv0!r}: the persistent session runs bash; run cells "
        "through another shell as scripts (interpreter=)"
    )


def _utf8_locale() -> str:
    return "en_US.UTF-8" if sys.platform == "darwin" else "C.UTF-8"


def terminal_env(
    env: Optional[Mapping[str, str]], columns: int, marker: str, tmpdir: str
) -> Dict[str, str]:
    """The hermetic environment of a session's shell: ``env`` (else ours) made predictable.

    No colours, no pagers, no history file, a UTF-8 locale, the terminal's size; ``marker``
    is the ``RUNBOOK_SESSION`` value every process of the session inherits (clean-up finds
    them by it).
    """
    base = dict(os.environ if env is None else env)
    for name in ("PROMPT_COMMAND", "LANGUAGE", "FORCE_COLOR", "CLICOLOR_FORCE"):
        base.pop(name, None)
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
        COLUMNS=str(columns),
        LINES=str(ROWS),
        RUNBOOK_SESSION=marker,
        RUNBOOK_TMPDIR=tmpdir,
    )
    return base
