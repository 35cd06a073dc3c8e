"""One persistent bash per Markdown file, on a PTY of its own: ``ShellSession``.

* The shell is started by ``spawn.spawn_shell`` (posix_spawn on Linux, pexpect elsewhere)
  with ``--noprofile --rcfile SETUP --noediting``, a hermetic environment and the signal
  dispositions a terminal gives it; lazily, or early through ``start()`` so that bash starts
  up while the caller works. Output post-processing is off (``-opost``), so the terminal shows
  LF, never CRLF. How a cell's line is framed is ``protocol``'s business.
* A cell that turns on ``set -e`` (and survives) gets it switched off again, with a note:
  otherwise the next failing command anywhere would end the session. ``set -e; false``
  inside one cell ends the shell, exactly as in a terminal.
* Stdin is the terminal, or with ``stdin=`` a file holding that text (a program sees no
  terminal, as with ``printf ... | cmd``). A cell that blocks reading the terminal with nothing
  to read is detected (``waits``) and interrupted after ~0.4 s instead of hanging until the
  timeout.
* A shell that no longer runs the protocol's line (a cell disabled what it needs) is noticed
  as a shell at its prompt that never printed START; the cell then runs on a fresh shell, with
  a note. A shell that ended between cells (``set -t``...) is replaced the same way.
* Timeouts and ``interrupt()`` stop the foreground job (^C, ^C, SIGTERM, SIGKILL to its
  process group), then a resync line proves the shell is back at its prompt. The shell is
  killed and replaced only when nothing else works; the next cell then says state was lost.
* ``close()`` ends the shell and every process of the session (``processes``).

Only bash runs here. A file whose ``shell:`` is another program runs each shell cell as a
fresh script through that program (``interpreter=``), which this session runs like any script.

Known differences from typing into a terminal: ``$LINENO`` counts lines within the cell;
syntax errors name the cell file (``<private dir>/cell.sh: line N: ...``; the caller maps
them back to the Markdown line); job start announcements (``[1] 123``) and notices are not
shown, as in a script (so a ``jobs`` listing loses its finished jobs); bash may print
``Terminated`` when an interrupt escalated to SIGTERM. Under errexit a failing ``$(...)``
stops at its first failure too (like ``inherit_errexit``), and a user's own ERR trap does not
fire during errexit cells (it is put back afterwards).
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import tempfile
import termios
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ...model import Result
from .. import watchdog
from ..base import Request, Ticket
from . import background, output, protocol, reaper, waits
from .processes import Resources, dispose, peek_exit, read_logs, wait_exit
from .protocol import CellReader, Channel, write_file
from .recovery import recover
from .spawn import ROWS, check_bash, spawn_shell, terminal_env

_BROKEN = (
    "the shell stopped running the plugin's commands (a cell redefined or disabled "
    "something they need, such as a function named `builtin` or `enable -n`)"
)
_TICK = 0.1  # seconds of silence between liveness / waiting-for-input checks
_WAIT_AFTER = 0.3  # a cell may legitimately read the terminal this long before we look
# A poll/select that may include the terminal is only "waiting for input" after this much
# silence: programs that wait with a timeout look the same for a while.
_POLL_QUIET = 3.0
_SNAPSHOT_TIMEOUT = 10.0


@dataclass
class ShellTicket:
    """A cell whose command line was sent; ``ShellSession.collect`` turns it into a Result."""

    cell: CellReader
    t0: float
    timeout: float
    path: str
    ack: str
    notes: List[str]
    stdin: Optional[str]
    answers: List[Tuple[str, str]]
    state_lost: bool = False
    interrupt_requested: bool = field(default=False, compare=False)
    request: Optional[Request] = field(default=None, compare=False)  # to run again on a
    errexit: bool = True  # fresh shell when this one turned out broken


class _ProtocolBroken(Exception):
    """The cell never started: the shell sits at its prompt (a cell broke what the
    protocol's line needs) or it ended between cells. ``why`` completes "because ..."."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class ShellSession:
    """A bash that lives for one Markdown file; cells run in it in order."""

    state_survives = True

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
        check_bash(shell[0])
        self._argv = list(shell)
        self._cwd = os.path.abspath(cwd)
        self._columns = int(columns)
        self._nonce = secrets.token_hex(8).encode()
        self._tok = secrets.token_hex(6)
        env_nonce = secrets.token_hex(12)
        root = protocol.private_cell_root()
        watchdog.remove_stale([tempfile.gettempdir(), *([root] if root else [])])
        self._tmpdir = tempfile.mkdtemp(prefix=watchdog.dir_prefix(""))
        cells = watchdog.dir_prefix("cells-")
        try:
            self._celldir = tempfile.mkdtemp(prefix=cells, dir=root)
        except OSError:
            self._celldir = tempfile.mkdtemp(prefix=cells)
        self._celldir_bytes = self._celldir.encode("utf-8", "surrogateescape")
        self._bg_logs: List[str] = []
        self._bg_exits = background.Exits()
        self._outstanding: Optional[ShellTicket] = None  # sent, not yet collected
        self._running: Optional[ShellTicket] = None  # being collected now
        marker = b"RUNBOOK_SESSION=" + env_nonce.encode()
        self._res = Resources(marker, [self._celldir, self._tmpdir], self._bg_logs)
        # Closes the shell and kills its processes when the caller forgets (also at exit);
        # the watchdog does it when the caller is killed.
        watchdog.register(marker, [self._celldir, self._tmpdir])
        self._finalizer = weakref.finalize(self, _close_resources, self._res)
        self._env = terminal_env(env, self._columns, env_nonce, self._tmpdir)
        self._proc: Any = None
        self._fd = -1
        self._io = Channel(-1)
        self._slave = ""
        self._tattr: Optional[List[Any]] = None
        self._seq = 0
        self._spawned = False
        self._starting: Optional[CellReader] = None  # the setup line sent, its END not yet seen
        self._init_path = ""
        self._restarted = False
        self._lost_note = ""  # why the last shell was dropped, for the next cell's note
        self._pending_notes: List[str] = []  # a restart that happened outside any cell
        self._err_trap_seen = False
        self._traps_guarded = False  # a DEBUG or RETURN trap may be set: see protocol
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

    def start(self) -> None:
        """Start the shell now without waiting for it: it starts up while the caller works.

        The first cell then finds it ready. Errors are left for that cell to report.
        """
        if self._proc is None and not self._spawned and not self._res.closed:
            with contextlib.suppress(OSError):
                self._spawn_start()

    def run(self, request: Request, *, errexit: bool = True) -> Result:
        """Run one cell and wait for it."""
        return self.collect(self.submit(request, errexit=errexit))

    def submit(self, request: Request, *, errexit: bool = True) -> ShellTicket:
        """Start one cell and return at once; ``collect`` waits for it.

        Lets the caller overlap the shell's work with its own (pytest reporting the previous
        cell). One cell at a time: a second submit first collects the one outstanding.
        ``errexit``: Runme's ``set -e -o pipefail`` for a sourced cell (not for
        ``interpreter=`` scripts, which run as their own process).
        """
        if self._outstanding is not None:
            self.collect(self._outstanding)
        t0 = time.monotonic()
        interpreter = request.interpreter
        ext = protocol.interpreter_ext(interpreter)
        answer_list = list(request.answers)
        for pattern, _text in answer_list:
            re.compile(pattern)  # a bad pattern is the caller's error, before anything runs
        notes = self._ensure_shell()
        state_lost = bool(notes)
        exports = self._new_exports(request)
        seq = self._next_seq()
        path = os.path.join(self._celldir, f"cell{ext}")
        data = protocol.cell_bytes(request.source)
        write_file(path, data, reuse=True)  # rewritten below when traps are guarded
        use_errexit = errexit and interpreter is None
        # Saving the user's ERR trap costs a file write per cell: only once one exists.
        self._err_trap_seen = self._err_trap_seen or "ERR" in request.source
        save_trap = use_errexit and self._err_trap_seen
        src = request.source
        self._traps_guarded = self._traps_guarded or "DEBUG" in src or "RETURN" in src
        stdin = request.stdin
        stdin_path = ""
        if stdin is not None and not answer_list:
            # A file read like a pipe, as `printf ... | cmd` would give: not a terminal, so
            # programs neither prompt nor wait, and input left unread simply ends with it.
            stdin_path = os.path.join(self._celldir, "stdin")
            write_file(stdin_path, stdin.encode("utf-8", "surrogateescape"), reuse=True)
        ack = secrets.token_hex(6) if answer_list else ""
        cwd = self._resolve(request.cwd) if request.cwd is not None else None
        guard = self._traps_guarded
        if guard and interpreter is None:
            write_file(path, protocol.TRAP_PREFIX + data, reuse=True)
        line = protocol.cell_line(
            seq,
            path,
            cwd,
            interpreter,
            use_errexit,
            save_trap,
            exports,
            self._celldir,
            ack,
            self._quiet_calls,
            guard,
            stdin_path,
        )
        self._quiet_calls = False  # known again when this cell's END arrives
        cell = CellReader(self._nonce, seq, request.on_output, answer_list)
        cell.sourced = interpreter is None
        cell.errexit = use_errexit
        if cell.sourced:
            cell.source = data
        if stdin is not None and answer_list:  # typed at the terminal, before the answers
            cell.to_send.append(stdin.encode("utf-8", "surrogateescape"))
        self._io.send(line)
        if exports:
            self._exported.update(exports)  # only once the line reached the shell
        ticket = ShellTicket(
            cell, t0, request.timeout, path, ack, notes, stdin, answer_list, state_lost
        )
        ticket.request, ticket.errexit = request, errexit
        self._outstanding = ticket
        return ticket

    def collect(self, ticket: Ticket) -> Result:
        """Wait for a submitted cell and return what it did."""
        if not isinstance(ticket, ShellTicket) or ticket is not self._outstanding:
            raise RuntimeError("that cell was already collected")
        self._outstanding = None
        cell = ticket.cell
        try:
            result = self._exchange(ticket, b"")
        except _ProtocolBroken as exc:
            self._drop_shell(exc.why)
            if ticket.request is None or ticket.state_lost:  # a fresh shell broke: give up
                return Result(
                    output="",
                    status=None,
                    duration=time.monotonic() - ticket.t0,
                    note=_join([*ticket.notes, f"The cell did not run: {exc.why}."]),
                    state_lost=ticket.state_lost,
                )
            return self.collect(self.submit(ticket.request, errexit=ticket.errexit))
        except BaseException:
            # Interrupted mid-cell (e.g. KeyboardInterrupt): the shell's state is unknown.
            self._drop_shell("the previous cell was interrupted")
            raise
        if cell.callback_error is not None:
            raise cell.callback_error
        return _with_state_lost(result) if ticket.state_lost else result

    def interrupt(self) -> None:
        """Stop the cell that runs now (^C to its foreground job, escalating); state survives.

        Safe from another thread: ``collect`` sees the request within a tick and recovers
        the shell, and the cell's Result says ``interrupted``. Without a cell running it
        does nothing.
        """
        ticket = self._outstanding or self._running
        if ticket is not None:
            ticket.interrupt_requested = True

    def start_background(self, request: Request, ready: Optional[str] = None) -> Result:
        """Start a cell in the background; return once started (or once ``ready`` matched)."""
        if self._outstanding is not None:
            self.collect(self._outstanding)
        t0 = time.monotonic()
        pattern = re.compile(ready) if ready is not None else None
        notes = self._ensure_shell()
        seq = self._next_seq()
        cwd = self._resolve(request.cwd) if request.cwd is not None else None
        launcher, rc_file, pid_file, log = background.write_job(
            self._celldir, seq, request.source, cwd, request.interpreter
        )
        self._bg_logs.append(log)
        job = self._bg_exits.add(rc_file)
        exports = self._new_exports(request)
        line = protocol.cell_line(
            seq, launcher, None, None, False, False, exports, self._celldir, "", False
        )
        ticket = ShellTicket(
            CellReader(self._nonce, seq, None, ()), t0, request.timeout, launcher, "", notes,
            None, [], bool(notes),
        )  # fmt: skip
        try:
            res = self._exchange(ticket, line)
        except _ProtocolBroken as exc:
            self._drop_shell(exc.why)
            note = f"The cell did not start: {exc.why}; the next cell gets a fresh shell."
            return Result(output="", status=None, duration=time.monotonic() - t0, note=note)
        except BaseException:
            self._drop_shell("the previous cell was interrupted")
            raise
        if exports:
            self._exported.update(exports)
        if res.status != 0:
            self._bg_exits.told.add(job)
            return res
        pid = background.read_pid(pid_file)
        started = f"started in the background (pid {pid}); its output goes to the background log"
        if pattern is None:
            died = background.died_at_once(rc_file, log)
            if died is not None:
                self._bg_exits.told.add(job)
                return dataclasses.replace(died, note=_join([*notes, started + ".", died.note]))
            return Result(
                output="",
                status=0,
                duration=time.monotonic() - t0,
                note=_join([*notes, started + "."]),
                state_lost=bool(notes),
            )
        io = self._io if self._fd >= 0 else None
        res = background.await_ready(io, pattern, pid, rc_file, log, t0, request.timeout, notes)
        if res.status != 0:  # its own report says how it ended
            self._bg_exits.told.add(job)
        return res if not notes else _with_state_lost(res)

    def background_exits(self) -> List[Tuple[int, int]]:
        """Background jobs (numbered in start order) that exited non-zero since last asked."""
        return self._bg_exits.failed_since()

    def background_logs(self) -> List[str]:
        """What each background cell printed so far: one text per cell, in start order."""
        return background.read_each(self._bg_logs)

    def background_log(self) -> str:
        """Everything background cells have printed so far."""
        data = self._res.final_log
        if data is None:
            data = read_logs(self._bg_logs)
        return data.decode("utf-8", "surrogateescape")

    def snapshot(self) -> Tuple[str, Dict[str, str]]:
        """The shell's physical working directory and exported environment, now.

        One round trip between cells (a Python cell adopts them, so it sees an earlier shell
        cell's ``cd`` and ``export``). Runs only the protocol's own helper: no alias,
        function or PATH of the user's decides what runs, and nothing a cell can see
        changes. Raises ``OSError`` when the shell does not answer.
        """
        if self._outstanding is not None:
            self.collect(self._outstanding)
        notes = self._ensure_shell()
        self._pending_notes += notes  # a restart is told to the next cell
        seq = self._next_seq()
        path = os.path.join(self._celldir, "snapshot")
        ticket = ShellTicket(
            CellReader(self._nonce, seq, None, ()), time.monotonic(), _SNAPSHOT_TIMEOUT, path,
            "", [], None, [],
        )  # fmt: skip
        try:
            res = self._exchange(ticket, protocol.snapshot_line(seq))
        except _ProtocolBroken as exc:
            self._drop_shell(exc.why)
            raise OSError(f"the shell did not report its directory: {exc.why}") from None
        except BaseException:
            self._drop_shell("the previous cell was interrupted")
            raise
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.unlink(path)
        except OSError:
            data = b""
        if res.status is None or res.shell_exited is not None or b"\0" not in data:
            if res.note:
                self._pending_notes.append(res.note)
            raise OSError(f"the shell did not report its directory and environment: {res.note}")
        return protocol.parse_snapshot(data)

    def close(self) -> List[str]:
        """End the shell and every process it started; describe any that had to be killed."""
        return self._close(later=False)

    def close_later(self) -> List[str]:
        """``close``, leaving the reaping of the dead shell and the removal of its directories
        to a helper thread (``reaper``): a file's teardown need not wait for them."""
        return self._close(later=True)

    def _close(self, later: bool) -> List[str]:
        self._proc = None
        self._fd = -1
        self._io = Channel(-1)
        self._outstanding = None  # a cell submitted but never collected dies with the shell
        return _close_resources(self._res, later)

    # -- shell lifecycle ---------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_exports(self, request: Request) -> Dict[str, str]:
        """What to export before the cell: values this shell does not hold yet (`$__` is
        often unchanged). ``environ`` (another session's environment) is exported too;
        variables it lacks are not unset."""
        wanted = {**(request.environ or {}), **request.exports}
        return {k: v for k, v in wanted.items() if self._exported.get(k) != v}

    def _ensure_shell(self) -> List[str]:
        if self._res.closed:
            raise RuntimeError("the runbook session is closed")
        notes, self._pending_notes = self._pending_notes, []
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
        init = protocol.init_script(self._cwd, self._nonce, self._tok, self._celldir)
        seq = self._next_seq()
        ready = protocol.ready_line(seq)
        path = os.path.join(self._celldir, f"init{secrets.token_hex(4)}.sh")
        self._init_path = path
        typed = protocol.skips_rcfile(self._argv[1:])
        if not typed:
            # bash reads its setup as its rc file: no line to send, no echo to wait for.
            write_file(path, (init + ready).encode())
            args = ["--noprofile", "--rcfile", path, "--noediting", *self._argv[1:]]
        else:  # this bash reads no rc file of ours: type the setup
            write_file(path, init.encode())
            args = ["--noprofile", "--norc", "--noediting", *self._argv[1:]]
        try:
            proc = spawn_shell([self._argv[0], *args], self._env, self._cwd, ROWS, self._columns)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise OSError(f"cannot start the shell {self._argv!r}: {exc}") from exc
        self._proc = proc
        self._res.proc = proc
        self._spawned = True
        self._fd = int(proc.child_fd)
        self._io = Channel(self._fd)
        self._slave = getattr(proc, "slave_name", "")
        if not self._slave and os.path.isdir("/proc/self"):
            try:
                self._slave = os.readlink(f"/proc/{proc.pid}/fd/0")
            except OSError:
                self._slave = ""
        self._exported = {}
        self._starting = CellReader(self._nonce, seq, None, ())
        if typed:
            try:
                self._io.send(f"builtin source {protocol.q(path)}; {ready}".encode())
            except BaseException:
                self._drop_shell("it failed to start")
                raise

    def _spawn_finish(self) -> None:
        cell, proc = self._starting, self._proc
        assert cell is not None
        try:
            deadline = time.monotonic() + 15.0
            while True:
                self._io.parse(cell, None)
                if cell.fields is not None:
                    break
                if time.monotonic() > deadline:
                    raise OSError(f"the shell {self._argv!r} did not start within 15 s")
                data = self._io.read(_TICK)
                if data is None or (data == b"" and peek_exit(proc) is not None):
                    out = bytes(self._io.stray).decode("utf-8", "replace")
                    raise OSError(f"the shell {self._argv!r} exited while starting: {out[-500:]}")
                self._io.buf += data
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
        self._io = Channel(-1)  # never write to a descriptor number the system reuses
        self._lost_note = why
        if proc is not None:
            dispose(proc)

    def _resolve(self, cwd: str) -> str:
        return os.path.normpath(os.path.join(self._cwd, cwd))

    # -- running one line --------------------------------------------------------------------

    def _exchange(self, ticket: ShellTicket, line: bytes) -> Result:
        self._running = ticket
        try:
            return self._exchange_running(ticket, line)
        finally:
            self._running = None

    def _exchange_running(self, ticket: ShellTicket, line: bytes) -> Result:
        cell, t0, notes, ack = ticket.cell, ticket.t0, ticket.notes, ticket.ack
        stdin, answers = ticket.stdin, ticket.answers
        proc = self._proc
        deadline = t0 + ticket.timeout
        if line:
            self._io.send(line)
        quiet_since = time.monotonic()
        waiting_hits = 0
        idle_hits = 0
        last_output = t0
        while True:
            self._io.parse(cell, None)
            if cell.started:
                self._io.flush_writes(cell)
            if cell.fields is not None:
                if ack:
                    self._ack(ack)
                return self._finish(cell, t0, ticket.path, notes)
            if ticket.interrupt_requested:
                how = recover(self, cell, ack).how
                notes.append(f"Interrupted: {how}.")
                return self._stopped(cell, t0, notes, interrupted=True)
            now = time.monotonic()
            if now >= deadline:
                blocked = waits.describe_foreground(self._fd) if self._fd >= 0 else ""
                how = recover(self, cell, ack).how
                where = f" ({blocked})" if blocked else ""
                notes.append(f"Timed out after {ticket.timeout:g} s{where}; {how}.")
                return self._stopped(cell, t0, notes, timed_out=True)
            data = self._io.read(min(_TICK, deadline - now))
            if data is None:
                return self._exited(cell, t0, notes)
            if data:
                self._io.buf += data
                quiet_since = last_output = time.monotonic()
                waiting_hits = 0
                continue
            if peek_exit(proc) is not None:
                return self._exited(cell, t0, notes)
            now = time.monotonic()
            if (
                not cell.started
                and now - t0 >= _WAIT_AFTER
                and now - quiet_since >= _TICK * 0.9
                and self._shell_at_prompt()
            ):
                idle_hits += 1
                if idle_hits >= 2:
                    raise _ProtocolBroken(_BROKEN)
                quiet_since = now
                continue
            if cell.started and now - t0 >= _WAIT_AFTER and now - quiet_since >= _TICK * 0.9:
                kind = waits.blocked_on_terminal(self._fd, self._slave) if self._fd >= 0 else None
                if kind == "read" or (kind == "poll" and now - last_output >= _POLL_QUIET):
                    waiting_hits += 1
                    if waiting_hits >= 2:
                        # What the interrupt itself prints (a newline, `^C`) is not the cell's.
                        keep = len(cell.chunks)
                        shell_read = self._shell_in_front()
                        recovery = recover(self, cell, ack)
                        del cell.chunks[keep:]
                        if recovery.replaced:
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
                        if shell_read and self._proc is None:
                            # Neither ^C nor our resync line got an answer from the shell at
                            # its prompt: the cell broke what the protocol needs.
                            self._lost_note = _BROKEN
                            notes.append(f"The cell's end was never reported: {_BROKEN}; "
                                         f"{recovery.how}.")  # fmt: skip
                            return self._stopped(cell, t0, notes)
                        notes.append(waits.waiting_note(cell.answers, stdin, answers, recovery.how))
                        return self._stopped(cell, t0, notes, waiting=True)
                else:
                    waiting_hits = 0
                quiet_since = now

    def _shell_in_front(self) -> bool:
        try:
            return self._fd >= 0 and os.tcgetpgrp(self._fd) == int(self._proc.pid)
        except OSError:
            return False

    def _shell_at_prompt(self) -> bool:
        """The shell itself (no job of a cell) sleeps reading the terminal."""
        return self._shell_in_front() and waits.blocked_on_terminal(self._fd, self._slave) == "read"

    def _ack(self, ack: str) -> None:
        self._restore_tty()
        # Two newlines first: one ends a partial stdin line, the other survives a trailing ^V.
        self._io.send(b"\n\n" + ack.encode() + b"\n")

    def _restore_tty(self) -> None:
        if self._tattr is None or self._fd < 0:
            return
        try:
            if termios.tcgetattr(self._fd) != self._tattr:
                termios.tcsetattr(self._fd, termios.TCSANOW, self._tattr)
            if tuple(self._proc.getwinsize()) != (ROWS, self._columns):
                self._proc.setwinsize(ROWS, self._columns)
        except (termios.error, OSError):
            pass

    def _output(self, cell: CellReader) -> str:
        raw = output.script_output(cell.chunks, self._celldir_bytes)
        return raw.decode("utf-8", "surrogateescape")

    def _finish(self, cell: CellReader, t0: float, path: str, notes: List[str]) -> Result:
        self._restore_tty()
        result, self._quiet_calls = output.cell_result(
            cell, path, self._argv[0], self._celldir, notes, time.monotonic() - t0
        )
        return result

    def _exited(self, cell: CellReader, t0: float, notes: List[str]) -> Result:
        status = wait_exit(self._proc, 2.0)
        # Whatever the shell printed before it died is still in the PTY: take it.
        while True:
            data = self._io.read(0.02)
            if not data:
                break
            self._io.buf += data
        self._io.parse(cell, None)
        if cell.started and cell.fields is None:
            cell.emit(bytes(self._io.buf))
        self._io.buf.clear()
        code = 255 if status is None else status
        if not cell.started:  # it ended before this cell began: the cell never ran
            raise _ProtocolBroken(f"the shell ended (status {code}) before the cell began")
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

    def _stopped(
        self,
        cell: CellReader,
        t0: float,
        notes: List[str],
        *,
        timed_out: bool = False,
        waiting: bool = False,
        interrupted: bool = False,
    ) -> Result:
        return Result(
            output=self._output(cell),
            status=None,
            duration=time.monotonic() - t0,
            timed_out=timed_out,
            waiting_for_input=waiting,
            interrupted=interrupted,
            note=_join(notes),
            session_lost=self._proc is None,  # stopping it took killing the shell
        )


def _close_resources(res: Resources, later: bool = False) -> List[str]:
    def forget() -> None:  # the watchdog minds the directories until they are gone
        watchdog.unregister(res.marker)

    if later:
        return res.close(defer=lambda release: reaper.defer(release, forget))
    killed = res.close()
    forget()
    return killed


def _with_state_lost(result: Result) -> Result:
    return dataclasses.replace(result, state_lost=True)


def _join(notes: List[str]) -> str:
    return " ".join(n for n in notes if n)
