"""A file's Python session: one interpreter, in its own process group, running its Python cells.

The interpreter runs ``worker.py`` (standard library only, so any Python 3.9+ can be the
child: frontmatter ``python:`` may name a project's venv). This side spawns it, frames
requests and results on private pipes, reads the merged output from fd 1/2 of the child,
feeds ``answers``, turns timeouts into ``KeyboardInterrupt`` and, when that is not enough,
kills the process group and starts afresh at the next cell with ``state_lost``. Crashes,
hangs and timeouts come back as ``Result`` data, never as exceptions.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import codecs
import contextlib
import marshal
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ...model import Result
from .. import leftovers, watchdog
from ..base import Request, Session, Ticket
from . import worker

#: Seconds a cell gets to stop after ``KeyboardInterrupt`` before the interpreter is killed.
KILL_GRACE = 3.0
#: Seconds ``close()`` waits for the interpreter to list the threads cells left running.
CLOSE_GRACE = 0.5
_WORKER_DIR = os.path.dirname(os.path.abspath(worker.__file__))
_HEADER = 4


class PythonTicket:
    """A request sent to the interpreter and not yet collected."""

    def __init__(self, request: Request, ident: int, nonce: bytes, started: float) -> None:
        self.request = request
        self.ident = ident
        self.nonce = nonce
        self.started = started
        self.failed: Optional[Result] = None  # it could not even be sent
        self.answers: List[Tuple[re.Pattern[str], str]] = []
        self.state_lost = ""  # why the interpreter was started afresh for it


class _Process:
    """One running interpreter and the parent's ends of its pipes."""

    def __init__(self, python: Sequence[str], cwd: str, env: Mapping[str, str]) -> None:
        request_read, self.requests = os.pipe()
        async_read, self.async_fd = os.pipe()
        self.results, results_write = os.pipe()
        self.output, output_write = os.pipe()
        child_ends = (request_read, async_read, results_write)
        argv = [
            *python,
            "-c",
            worker.BOOTSTRAP,
            _WORKER_DIR,
            *(str(fd) for fd in child_ends),
            str(os.getpid()),
            # The kernel's parent-death signal fires when the spawning *thread* ends, so ask
            # for it only from the main thread, which lives as long as pytest.
            "1" if threading.current_thread() is threading.main_thread() else "0",
        ]
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output_write,
                stderr=subprocess.STDOUT,
                pass_fds=child_ends,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        except BaseException:
            for fd in (self.requests, self.async_fd, self.results, self.output):
                os.close(fd)
            raise
        finally:
            for fd in (*child_ends, output_write):
                os.close(fd)
        self.pid = self.popen.pid
        self.buffer = b""  # results read but not yet parsed
        self.carry = b""  # output that arrived after a request's end marker
        self.environ: Optional[Mapping[str, str]] = None  # last environment sent
        self.ready = False  # it said hello: the worker runs, a death is no start-up failure

    def send(self, fd: int, message: Dict[str, Any]) -> None:
        data = marshal.dumps(message, 4)
        os.write(fd, len(data).to_bytes(_HEADER, "big") + data)

    def read_more(self) -> bool:
        """Read what the results pipe has (it is readable); False at end of file."""
        chunk = os.read(self.results, 1 << 16)
        self.buffer += chunk
        return bool(chunk)

    def parse_result(self) -> Dict[str, Any]:
        """The next whole message read, {} if none; the start-up hello only marks it ready."""
        while len(self.buffer) >= _HEADER:
            size = int.from_bytes(self.buffer[:_HEADER], "big")
            if len(self.buffer) < _HEADER + size:
                break
            message: Dict[str, Any] = marshal.loads(self.buffer[_HEADER : _HEADER + size])
            self.buffer = self.buffer[_HEADER + size :]
            if not message.get("ready"):
                return message
            self.ready = True
        return {}

    def kill(self) -> None:
        """SIGKILL the whole process group: the interpreter and whatever its cells started."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def reap(self) -> Optional[int]:
        """Wait for the (dying) interpreter; its returncode (-N for a signal)."""
        try:
            return self.popen.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.popen.wait()

    def close_fds(self) -> None:
        for fd in (self.requests, self.async_fd, self.results, self.output):
            with contextlib.suppress(OSError):
                os.close(fd)


class PythonSession:
    """One interpreter for one Markdown file: globals, imports and objects persist."""

    state_survives = True

    def __init__(
        self,
        *,
        python: Sequence[str] = (sys.executable,),
        cwd: str,
        env: Mapping[str, str],
    ) -> None:
        self._python = tuple(python)
        self._cwd = cwd
        # Every process the cells start inherits it, also one that leaves the interpreter's
        # session (``setsid``, a daemon): close() finds those by it, as the shell session does.
        self._marker = leftovers.new_marker()
        self._env = {**env, leftovers.MARKER_NAME: self._marker}
        self._since = -1  # start time of its first interpreter: what is older is not the cells'
        self._process: Optional[_Process] = None
        self._start_error = ""
        self._lost = ""  # why the previous interpreter is gone (state lost), "" if none was
        self._next_id = 0
        self._pending: Optional[PythonTicket] = None
        self._closed = False

    # -- the Session protocol -------------------------------------------------------------

    def start(self) -> None:
        if self._process is not None or self._closed:
            return
        try:
            self._process = _Process(self._python, self._cwd, self._env)
            if self._since < 0:
                self._since = leftovers.start_ticks(self._process.pid)
                # After kill -9 of pytest, the watchdog ends what the cells detached.
                watchdog.register(leftovers.watchdog_marker(self._marker), [])
            self._start_error = ""
        except OSError as exc:
            what = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
            self._start_error = (
                f"Could not start the Python session ({' '.join(self._python)}): {what}. "
                "Fix: name an installed interpreter in the frontmatter's python: (or ini "
                "runbook_python), or remove it to use pytest's own Python."
            )

    def submit(self, request: Request) -> PythonTicket:
        if self._pending is not None:
            raise RuntimeError("collect() the previous Python request before submitting another")
        self._next_id += 1
        ticket = PythonTicket(request, self._next_id, os.urandom(8).hex().encode(), 0.0)
        if self._closed:
            ticket.failed = _closed_result()
            return ticket
        try:
            ticket.answers = [(re.compile(expect), send) for expect, send in request.answers]
        except re.error as exc:
            note = f"An answers prompt is not a valid regular expression: {exc.pattern!r}: {exc}."
            ticket.failed = Result(output="", status=None, duration=0.0, note=note)
            return ticket
        if self._process is None:
            ticket.state_lost, self._lost = self._lost, ""
            self.start()
        process = self._process
        ticket.started = time.monotonic()
        if process is None:
            ticket.failed = Result(output="", status=None, duration=0.0, note=self._start_error)
            return ticket
        environ = request.environ
        if environ is not None and environ == process.environ:
            environ = None  # the interpreter has it: the shell changed nothing since
        message = {
            "op": "run",
            "id": ticket.ident,
            "nonce": ticket.nonce,
            "source": request.source,
            "path": request.path,
            "line": request.line,
            "mode": request.mode,
            "cwd": request.cwd,
            "environ": dict(environ) if environ is not None else None,
            "adopt_environ": request.environ is not None,
            "exports": dict(request.exports),
            "stdin": request.stdin,
            "answers": bool(request.answers),
        }
        with contextlib.suppress(OSError):  # it died: collect() finds out how and says so
            process.send(process.requests, message)
        if request.environ is not None:
            process.environ = dict(request.environ)
        self._pending = ticket
        return ticket

    def collect(self, ticket: Ticket) -> Result:
        if not isinstance(ticket, PythonTicket):
            raise TypeError(f"not a ticket of this Python session: {ticket!r}")
        if ticket.failed is not None:
            return ticket.failed
        if self._pending is not ticket:
            raise RuntimeError("this ticket was collected already")
        self._pending = None
        process = self._process
        if process is None:
            return _closed_result()
        result = _Collector(self, process, ticket).run()
        if ticket.state_lost:
            lost = (
                f"The Python session was started afresh: {ticket.state_lost}; objects from "
                "earlier Python cells are gone."
            )
            result = _with(result, state_lost=True, note=_join([lost, result.note]))
        return result

    def run(self, request: Request) -> Result:
        return self.collect(self.submit(request))

    def interrupt(self) -> None:
        process = self._process
        if process is not None:
            # The group, as ^C on a terminal: also a child in os.system() gets it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGINT)

    def close(self) -> List[str]:
        self._closed = True
        process = self._process
        self._process = None
        if self._since < 0:
            return []  # no interpreter ever started: no cell ran
        notes: List[str] = []
        threads: List[str] = []
        if process is not None and self._pending is None and process.popen.poll() is None:
            threads = _ask_threads(process, self._next_id + 1)
        leader = process.pid if process is not None else -1
        processes = leftovers.left_running(self._marker, self._since, leader, leader)
        if process is not None:
            process.kill()
        leftovers.kill(processes)  # those that left the group (setsid, setpgid)
        watchdog.unregister(leftovers.watchdog_marker(self._marker))
        if process is not None:
            process.reap()
            process.close_fds()
        if threads:
            notes.append(
                f"Stopped {_count(len(threads), 'thread')} that Python cells left running: "
                f"{', '.join(threads)}."
            )
        if processes:
            notes.append(
                f"Killed {_count(len(processes), 'process', 'processes')} that Python cells "
                f"left running: {'; '.join(text for _, text in processes)}."
            )
        return notes

    # -- used by the collector ------------------------------------------------------------

    def _lose(self, process: _Process, why: str) -> None:
        """The interpreter is gone (or killed now): the next request starts a fresh one."""
        process.kill()
        process.reap()
        process.close_fds()
        if self._process is process:
            self._process = None
        self._lost = why


class _Collector:
    """Reads one request's output and result, feeding answers and enforcing the timeout."""

    def __init__(self, session: PythonSession, process: _Process, ticket: PythonTicket) -> None:
        self.session = session
        self.process = process
        self.ticket = ticket
        request = ticket.request
        self.marker = b"\0RUNBOOK-END:" + ticket.nonce + b"\0"
        self.data = bytearray(process.carry)
        process.carry = b""
        self.ended = -1  # where the marker starts in data, once seen
        self.searched = 0  # data before this holds no marker
        self.emitted = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.text = ""  # decoded so far, for answers
        self.answers = list(ticket.answers)
        self.answer_from = 0
        self.live = request.on_output is not None or bool(self.answers)
        self.find_marker()

    def run(self) -> Result:
        process, ticket = self.process, self.ticket
        timeout = ticket.request.timeout
        deadline = ticket.started + timeout
        kill_at = 0.0
        message: Optional[Dict[str, Any]] = None
        while message is None or self.ended < 0:
            now = time.monotonic()
            if kill_at and now >= kill_at:
                self.drain()
                self.session._lose(
                    process,
                    f"the previous one was killed when a cell did not stop within "
                    f"{KILL_GRACE:g} s of KeyboardInterrupt",
                )
                return self.result(
                    None,
                    timed_out=True,
                    note=f"Timed out after {timeout:g} s and did not stop within {KILL_GRACE:g} s "
                    "of KeyboardInterrupt: the Python session was killed; the next Python cell "
                    "starts a fresh interpreter without this file's earlier state.",
                )
            if not kill_at and now >= deadline:
                self.session.interrupt()
                kill_at = now + KILL_GRACE
            wait = (kill_at or deadline) - now
            fds = [process.output] if message is not None else [process.output, process.results]
            ready = _wait_readable(fds, wait)
            if process.output in ready:
                chunk = os.read(process.output, 1 << 16)
                if chunk:
                    self.data += chunk
                    self.find_marker()
                    self.feed()
                elif message is None:  # nobody writes output any more: it exited
                    ready = [process.results]
            if message is None and process.results in ready:
                alive = process.read_more()
                message = process.parse_result() or None
                if message is None and not alive:
                    return self.died(timed_out=bool(kill_at), timeout=timeout)
        process.carry = bytes(self.data[self.ended + len(self.marker) :])
        del self.data[self.ended :]
        self.feed()
        return self.result(message, timed_out=bool(kill_at), timeout=timeout)

    def find_marker(self) -> None:
        """Look for the end marker in what is new (a long output is not scanned again)."""
        if self.ended < 0:
            self.ended = self.data.find(self.marker, self.searched)
            self.searched = max(0, len(self.data) - len(self.marker) + 1)

    def feed(self) -> None:
        """Live output and answers: what is surely not part of the end marker."""
        if not self.live:
            return
        safe = self.ended if self.ended >= 0 else len(self.data)
        if self.ended < 0:
            start = self.data.rfind(b"\0", max(0, safe - len(self.marker) + 1))
            if start >= 0 and self.marker.startswith(bytes(self.data[start:])):
                safe = start
        if safe <= self.emitted:
            return
        piece = self.decoder.decode(bytes(self.data[self.emitted : safe]))
        self.emitted = safe
        on_output = self.ticket.request.on_output
        if on_output is not None and piece:
            on_output(piece.replace("\r\n", "\n"))
        if self.answers:
            self.text += piece
            while self.answers:
                pattern, send = self.answers[0]
                found = pattern.search(self.text, self.answer_from)
                if found is None:
                    break
                self.answers.pop(0)
                self.answer_from = found.end()
                message = {
                    "id": self.ticket.ident,
                    "data": send + "\n",
                    "eof": not self.answers,
                }
                with contextlib.suppress(OSError):
                    self.process.send(self.process.async_fd, message)

    def drain(self) -> None:
        """Take the output already in the pipe (the writer is gone or about to be)."""
        while True:
            if not _wait_readable([self.process.output], 0):
                return
            chunk = os.read(self.process.output, 1 << 16)
            if not chunk:
                return
            self.data += chunk

    def output(self) -> str:
        end = self.ended if self.ended >= 0 else len(self.data)
        text = bytes(self.data[:end]).decode("utf-8", "surrogateescape")
        return text.replace("\r\n", "\n")

    def died(self, *, timed_out: bool, timeout: float) -> Result:
        """The interpreter ended during the request (os._exit, a crash, a signal)."""
        status = self.process.reap()
        self.drain()
        if status is not None and status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            how = f"was killed by {name}"
        else:
            how = f"exited with status {status}"
        self.session._lose(self.process, f"the previous one {how}")
        if not self.process.ready:
            return self.result(
                None,
                timed_out=timed_out,
                note=f"The Python interpreter ({' '.join(self.session._python)}) {how} as it "
                "started, before running this cell (the session needs Python 3.8 or later); "
                "its output says why.",
            )
        notes = []
        if timed_out:
            notes.append(f"Timed out after {timeout:g} s; interrupted with KeyboardInterrupt.")
        notes.append(
            f"The Python session {how} during this cell; the next Python cell starts a fresh "
            "interpreter without this file's earlier state."
        )
        return self.result(None, timed_out=timed_out, note=_join(notes))

    def result(
        self,
        message: Optional[Dict[str, Any]],
        *,
        timed_out: bool,
        timeout: float = 0.0,
        note: str = "",
    ) -> Result:
        duration = time.monotonic() - self.ticket.started
        if message is None:
            return Result(
                output=self.output(),
                status=None,
                duration=duration,
                timed_out=timed_out,
                note=note,
                session_lost=timed_out,  # without a result message the interpreter is gone
            )
        if timed_out:  # even if it then ended well: it took too long
            note = (
                f"Timed out after {timeout:g} s; interrupted with ^C (KeyboardInterrupt); "
                "the Python session kept its state."
            )
        elif message["interrupted"]:
            note = "Interrupted with ^C (KeyboardInterrupt); the Python session kept its state."
        stderr = bytes(message.get("stderr", b"")).decode("utf-8", "surrogateescape")
        stderr = stderr.replace("\r\n", "\n")
        on_output = self.ticket.request.on_output
        if stderr and on_output is not None:  # shown live after the example's stdout
            on_output(stderr)
        return Result(
            output=self.output(),
            status=None if timed_out or message["interrupted"] else message["status"],
            duration=duration,
            timed_out=timed_out,
            note=note,
            exception=message["exception"],
            traceback=message["traceback"],
            stderr=stderr,
        )


def _wait_readable(fds: Sequence[int], seconds: float) -> List[int]:
    """The fds with something to read (or at end of file); poll(), as fds may pass 1023."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    timeout = int(min(max(seconds, 0.0), 3600.0) * 1000) + (1 if seconds > 0 else 0)
    return [fd for fd, _ in poller.poll(timeout)]


def _ask_threads(process: _Process, ident: int) -> List[str]:
    """The names of threads cells left running, if the interpreter answers in time."""
    try:
        process.send(process.requests, {"op": "close", "id": ident})
        deadline = time.monotonic() + CLOSE_GRACE
        while True:
            message = process.parse_result()
            if message.get("id") == ident:
                return list(message["threads"])
            if message:
                continue
            wait = deadline - time.monotonic()
            if wait <= 0 or not _wait_readable([process.results], wait):
                return []
            if not process.read_more():
                return []
    except OSError:
        return []


def _closed_result() -> Result:
    return Result(
        output="", status=None, duration=0.0, note="The Python session was closed before this cell."
    )


def _with(result: Result, **changes: Any) -> Result:
    from dataclasses import replace

    return replace(result, **changes)


def _join(notes: Sequence[str]) -> str:
    return " ".join(n for n in notes if n)


def _count(n: int, singular: str, plural: str = "") -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


if TYPE_CHECKING:
    _conforms: Session = PythonSession(cwd=".", env={})  # mypy checks the protocol here
