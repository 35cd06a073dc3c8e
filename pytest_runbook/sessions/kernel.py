"""A Jupyter kernel as a session: one kernel per file, its cells run in order via jupyter_client.

jupyter_client is an optional extra, imported only when a kernel is started or looked up, so
this module itself imports without it; a missing extra or kernel becomes ``KernelUnavailable``
naming the install command. The kernel talks over IPC sockets in a private directory (no TCP
port a neighbour could reach, no ipykernel warning on stderr). ``start()`` only launches the
process; the first ``submit`` waits for it to answer, so a runner that starts the next file's
kernel early hides most of its start-up.

Nothing outlives the run: ``close()`` kills the kernel's process group (the kernel and what its
cells spawned) at once and leaves the waiting and the cleaning up to a background thread, so
the next file need not wait for it; ``wait_for_shutdowns()`` (called at the end of the run)
joins those threads. If pytest itself dies (even by ``kill -9``), an IPython kernel's watchdog
thread kills that process group within a fraction of a second; other kernels rely on their own
parent polling (jupyter_client sets ``JPY_PARENT_PID``; ipykernel's poller exits when it
changes) and take only themselves down.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from ..model import Result
from ..notebook import output_text
from . import leftovers, watchdog
from .base import Request, Session, Ticket
from .kernel_process import (
    INSTALL_HINT,
    LAUNCHER,
    REAPERS,
    REAPERS_LOCK,
    UNBLOCK_DEBUGPY,
    WATCHDOG_STARTUP,
    KernelUnavailable,
    await_kernel,
    check_kernel,
    jupyter_client_for,
    kill_group,
    no_such_kernel,
    reap,
    wait_for_shutdowns,
)

if TYPE_CHECKING:
    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.manager import KernelManager

__all__ = [
    "INSTALL_HINT",
    "KernelSession",
    "KernelUnavailable",
    "check_kernel",
    "wait_for_shutdowns",
]

_EOF = "\x04"  # ipykernel raises EOFError in input() for this input_reply
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# IPython names a cell's frames "Cell In[7], line 3"; mapped back to the document's lines.
_CELL_FRAME = re.compile(r"Cell In\[(\d+)\], line (\d+)")
# A source line IPython lists under a frame: "      1 a = 1" or "----> 3 helper(b)".
_LISTED_LINE = re.compile(r"^(\s*|-*> ?)(\d+)(?= |$)")
_PROMPT_WINDOW = 65536  # characters of recent output an answer's prompt is looked for in
_POLL_SECONDS = 0.25  # how often a waiting collect checks that the kernel is still alive


_CONTEXT: List[Any] = []


def _client_context() -> Any:
    """The zmq context of our kernel clients: sockets retry a refused connection every 5 ms.

    The client's sockets connect before the kernel has bound its own, so they retry, by
    default every 100 ms, each on its own. The shell socket's answer to ``kernel_info`` says
    the kernel is ready, but the stdin socket may still be waiting for its next try, and the
    kernel drops an ``input_request`` to a client that is not connected yet: the first cell
    reading input() then hung until its timeout (5 of 20 fresh kernels under load).
    """
    import zmq

    if not _CONTEXT:
        context = zmq.Context()
        context.setsockopt(zmq.RECONNECT_IVL, 5)
        _CONTEXT.append(context)
    return _CONTEXT[0]


@dataclass
class _Ticket:
    request: Request
    msg_id: str
    started: float
    preamble_id: Optional[str] = None
    failure: str = ""  # why the kernel could not run it at all
    note: str = ""


@dataclass
class _Run:
    """What one execute request produced so far."""

    stdin_left: str
    answers_left: List[Tuple[str, str]]
    outputs: List[Dict[str, Any]] = field(default_factory=list)
    clear_pending: bool = False  # clear_output(wait=True): clear when the next output comes
    idle: bool = False
    reply: Optional[Dict[str, Any]] = None
    preamble_error: Optional[Dict[str, Any]] = None
    eof_given: bool = False
    prompts: List[str] = field(default_factory=list)
    since_answer: str = ""  # output since the last answer: where an answer's prompt may show


class KernelSession:
    """One Jupyter kernel for one file: state survives from cell to cell, like a notebook's."""

    state_survives = True

    def __init__(
        self,
        *,
        kernel_name: str,
        cwd: str,
        env: Mapping[str, str],
        startup_timeout: float = 60.0,
        interrupt_grace: float = 5.0,
    ) -> None:
        """``env`` is the kernel's whole environment; ``cwd`` its working directory."""
        self.kernel_name = kernel_name
        self.cwd = cwd
        self.env = dict(env)
        self.startup_timeout = startup_timeout
        self.interrupt_grace = interrupt_grace
        self.language = ""
        self._manager: Optional[KernelManager] = None
        self._client: Optional[BlockingKernelClient] = None
        self._ready = False
        self._runtime_dir: Optional[str] = None
        self._lost: Optional[str] = None  # why the previous kernel was replaced
        self._frames: Dict[int, Tuple[str, int]] = {}  # execution count -> (path, first line)
        self._broken: Optional[str] = None  # why the kernel could not start
        self._handed_environ: Dict[str, str] = dict(env)  # the shell's, as last handed over
        # The running kernel's RUNBOOK_SESSION marker and start time (ticks; -1 unknown):
        # what its cells started outside its process group is found by them when it ends.
        self._marker = ""
        self._since = -1

    # -- life cycle ------------------------------------------------------------------------

    @property
    def kernel_pid(self) -> Optional[int]:
        """The running kernel's process id (None before start and after close)."""
        manager = self._manager
        provisioner = getattr(manager, "provisioner", None) if manager is not None else None
        pid = getattr(provisioner, "pid", None)
        return int(pid) if pid is not None else None

    def start(self) -> None:
        """Launch the kernel process and return; the first ``submit`` waits until it answers."""
        if self._manager is not None:
            return
        jupyter_client = jupyter_client_for(self.kernel_name)
        from jupyter_client.kernelspec import NoSuchKernel

        self._runtime_dir = tempfile.mkdtemp(prefix="runbook-kernel-")
        transport = {"transport": "ipc", "ip": os.path.join(self._runtime_dir, "k")}
        manager = jupyter_client.KernelManager(
            kernel_name=self.kernel_name,
            connection_file=os.path.join(self._runtime_dir, "kernel.json"),
            **(transport if os.name == "posix" else {}),
        )
        try:
            spec = manager.kernel_spec
        except NoSuchKernel:
            self._remove_runtime_dir()
            raise no_such_kernel(self.kernel_name) from None
        self.language = str(spec.language or "").lower()
        self._handed_environ = dict(self.env)  # a new kernel starts from the session's env
        extra: List[str] = []
        if any("ipykernel" in part for part in spec.argv):
            # IPython would write every cell into the user's ~/.ipython history database.
            extra.append("--HistoryManager.hist_file=:memory:")
            if os.name == "posix":  # the watchdog replaces ipykernel's own parent poller
                startup = WATCHDOG_STARTUP
                if spec.argv[1:3] == ["-m", "ipykernel_launcher"]:
                    spec.argv = [spec.argv[0], "-c", LAUNCHER, *spec.argv[3:]]
                    startup += "\n" + UNBLOCK_DEBUGPY
                extra += ["--IPKernelApp.parent_handle=0", f"--IPKernelApp.exec_lines={startup}"]
        log = open(os.path.join(self._runtime_dir, "kernel.log"), "wb")  # noqa: SIM115
        self._marker = leftovers.new_marker()
        try:
            manager.start_kernel(
                cwd=self.cwd,
                env={**self.env, leftovers.MARKER_NAME: self._marker},
                extra_arguments=extra,
                stdout=log,
                stderr=log,
            )
        except NoSuchKernel:
            self._remove_runtime_dir()
            raise no_such_kernel(self.kernel_name) from None
        except OSError as exc:  # the kernelspec's program is missing or not executable
            self._remove_runtime_dir()
            raise KernelUnavailable(
                self.kernel_name,
                f"kernel {self.kernel_name!r} could not be launched ({' '.join(spec.argv)}): {exc}",
                "repair or reinstall the kernel (`jupyter kernelspec list` shows where it is)",
            ) from None
        finally:
            log.close()  # the kernel holds its own copy of the descriptor
        pid = getattr(getattr(manager, "provisioner", None), "pid", None)
        self._since = leftovers.start_ticks(int(pid)) if pid is not None else -1
        # After kill -9 of pytest, what the kernel's cells detached is ended by the watchdog.
        runtime = [self._runtime_dir] if self._runtime_dir else []
        watchdog.register(leftovers.watchdog_marker(self._marker), runtime)
        client = manager.client(context=_client_context())
        # No heartbeat thread: a dead kernel is seen by polling its process.
        client.start_channels(hb=False)
        self._manager, self._client, self._ready = manager, client, False

    def _wait_ready(self) -> Optional[str]:
        """None once the kernel answers; else why it never did."""
        if self._ready:
            return None
        assert self._client is not None
        try:
            await_kernel(self._client, self.startup_timeout)
        except RuntimeError as exc:
            return f"kernel {self.kernel_name!r} did not start: {exc}{self._log_tail()}"
        self._ready = True
        return None

    def _log_tail(self) -> str:
        if self._runtime_dir is None:
            return ""
        try:
            with open(os.path.join(self._runtime_dir, "kernel.log"), "rb") as handle:
                text = handle.read()[-2000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f"; it said:\n{text}" if text else ""

    def _replace_kernel(self, why: str) -> None:
        """Kill this kernel and launch a fresh one now; the next cell hears that state was lost."""
        self._shutdown()
        self._lost = why
        self.start()

    def _shutdown(self) -> None:
        """Kill the kernel now; waiting for it and removing its files happen in the background."""
        client, manager = self._client, self._manager
        self._client = self._manager = None
        self._ready = False
        self._frames.clear()
        if client is not None:
            client.stop_channels()
        if manager is None:
            self._remove_runtime_dir()
            return
        kill_group(manager)
        runtime_dir, self._runtime_dir = self._runtime_dir, None
        reaper = threading.Thread(
            target=reap,
            args=(manager, runtime_dir, self._marker, self._since),
            name="runbook-kernel-reaper",
        )
        self._since = -1
        with REAPERS_LOCK:
            REAPERS.append(reaper)
        reaper.start()

    def _remove_runtime_dir(self) -> None:
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
            self._runtime_dir = None

    def close(self) -> List[str]:
        self._shutdown()
        return []

    def interrupt(self) -> None:
        if self._manager is not None:
            self._manager.interrupt_kernel()

    # -- running cells ---------------------------------------------------------------------

    def run(self, request: Request) -> Result:
        return self.collect(self.submit(request))

    def submit(self, request: Request) -> _Ticket:
        failure = self._broken
        if failure is None:
            self.start()
            failure = self._wait_ready()
        if failure is not None:
            # A kernel that cannot start fails each cell at once, not after another wait.
            self._shutdown()
            self._broken = failure
            return _Ticket(request, msg_id="", started=time.monotonic(), failure=failure)
        # The cell's clock starts now: a kernel's start-up is not the cell's time.
        started = time.monotonic()
        client = self._client
        assert client is not None
        preamble = self._preamble(request)
        preamble_id = None
        if preamble:
            preamble_id = client.execute(
                preamble, silent=True, store_history=False, allow_stdin=False
            )
        note = ""
        if not preamble and (request.cwd or request.exports or request.environ is not None):
            note = (
                f"cwd= and exported variables were not applied: kernel {self.kernel_name!r} "
                f"runs {self.language or 'an unknown language'}, and only Python kernels take them"
            )
        msg_id = client.execute(
            request.source, store_history=True, allow_stdin=True, stop_on_error=False
        )
        return _Ticket(request, msg_id, started, preamble_id=preamble_id, note=note)

    def _preamble(self, request: Request) -> str:
        # A cell's cwd= and the environment can only be set from inside the kernel, in its own
        # language; Python kernels get it, silently and outside the user's history.
        if self.language != "python":
            return ""
        steps: List[str] = []
        if request.environ is not None:
            # Only what the shell changed since the last hand-over (the kernel's own
            # os.environ changes stay), as in the Python session.
            before, self._handed_environ = self._handed_environ, dict(request.environ)
            changed = {k: v for k, v in request.environ.items() if before.get(k) != v}
            removed = sorted(before.keys() - request.environ.keys())
            if changed:
                steps.append(f"_os.environ.update({changed!r})")
            if removed:
                steps.append(f"for _k in {removed!r}: _os.environ.pop(_k, None)")
        if request.exports:
            steps.append(f"_os.environ.update({dict(request.exports)!r})")
        if request.cwd is not None:
            steps.append(f"_os.chdir({request.cwd!r})")
        if not steps:
            return ""
        return "\n".join(["import os as _os", *steps, "del _os"])

    def collect(self, ticket: Ticket) -> Result:
        if not isinstance(ticket, _Ticket):
            raise TypeError(f"not a ticket of this kernel session: {ticket!r}")
        lost, self._lost = self._lost, None
        if not ticket.msg_id:  # the kernel never started
            return Result(
                output="",
                status=None,
                duration=time.monotonic() - ticket.started,
                note=ticket.failure,
                state_lost=lost is not None,
            )
        request = ticket.request
        run = _Run(stdin_left=request.stdin or "", answers_left=list(request.answers))
        timed_out, note = self._wait(ticket, run)
        return self._result(ticket, run, timed_out, note, lost)

    def _wait(self, ticket: _Ticket, run: _Run) -> Tuple[bool, str]:
        """Read the kernel's messages until the request is done: (timed out, note)."""
        import zmq

        client, manager = self._client, self._manager
        assert client is not None and manager is not None
        request = ticket.request
        channels = [
            (client.iopub_channel, self._on_iopub),
            (client.shell_channel, self._on_shell),
            (client.stdin_channel, self._on_stdin),
        ]
        poller = zmq.Poller()
        for channel, _ in channels:
            poller.register(channel.socket, zmq.POLLIN)
        deadline = ticket.started + request.timeout
        interrupted = False
        while not (run.idle and run.reply is not None):
            now = time.monotonic()
            if now >= deadline:
                if not interrupted:
                    manager.interrupt_kernel()
                    interrupted = True
                    deadline = now + self.interrupt_grace
                    continue
                self._replace_kernel(
                    f"a cell timed out after {request.timeout:g}s and ignored the interrupt"
                )
                return (
                    True,
                    f"timed out after {request.timeout:g}s; the interrupt did not stop it within "
                    f"{self.interrupt_grace:g}s, so the kernel was restarted",
                )
            ready = dict(poller.poll(int(1000 * min(deadline - now, _POLL_SECONDS)) + 1))
            if not ready:
                if not manager.is_alive():
                    self._replace_kernel("the kernel died")
                    return False, "the kernel died while running this cell"
                continue
            for channel, handler in channels:
                if channel.socket in ready:
                    handler(ticket, run, channel.get_msg(timeout=0))
        if interrupted:
            return True, f"timed out after {request.timeout:g}s; interrupted, state kept"
        return False, ""

    def _on_iopub(self, ticket: _Ticket, run: _Run, msg: Dict[str, Any]) -> None:
        if msg["parent_header"].get("msg_id") != ticket.msg_id:
            return
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status":
            run.idle = run.idle or content.get("execution_state") == "idle"
            return
        if kind == "clear_output":
            if content.get("wait"):
                run.clear_pending = True
            else:
                run.outputs.clear()
            return
        output: Optional[Dict[str, Any]] = None
        if kind == "stream":
            output = {"output_type": "stream", "name": content["name"], "text": content["text"]}
        elif kind in ("execute_result", "display_data"):
            output = {
                "output_type": kind,
                "data": content.get("data", {}),
                "metadata": content.get("metadata", {}),
            }
            if kind == "execute_result":
                output["execution_count"] = content.get("execution_count")
        elif kind == "error":
            output = {
                "output_type": "error",
                "ename": content.get("ename", ""),
                "evalue": content.get("evalue", ""),
                "traceback": list(content.get("traceback", [])),
            }
        if output is None:
            return
        if run.clear_pending:
            run.outputs.clear()
            run.clear_pending = False
        self._append(run, output)
        text = output_text([output])
        if text:
            if run.answers_left:  # the tail is enough to find a prompt, and stays small
                run.since_answer = (run.since_answer + text)[-_PROMPT_WINDOW:]
            if ticket.request.on_output is not None:
                ticket.request.on_output(text)

    @staticmethod
    def _append(run: _Run, output: Dict[str, Any]) -> None:
        last = run.outputs[-1] if run.outputs else None
        if (
            last is not None
            and output["output_type"] == "stream"
            and last["output_type"] == "stream"
            and last["name"] == output["name"]
        ):
            last["text"] += output["text"]  # one stream output per run, as Jupyter stores it
        else:
            run.outputs.append(output)

    def _on_shell(self, ticket: _Ticket, run: _Run, msg: Dict[str, Any]) -> None:
        parent = msg["parent_header"].get("msg_id")
        if msg["msg_type"] != "execute_reply":
            return
        if parent == ticket.msg_id:
            run.reply = msg["content"]
            count = msg["content"].get("execution_count")
            if isinstance(count, int):
                self._frames[count] = (ticket.request.path, ticket.request.line)
        elif parent == ticket.preamble_id and msg["content"].get("status") == "error":
            run.preamble_error = msg["content"]

    def _on_stdin(self, ticket: _Ticket, run: _Run, msg: Dict[str, Any]) -> None:
        if msg["msg_type"] != "input_request":
            return
        assert self._client is not None
        prompt = str(msg["content"].get("prompt", ""))
        run.prompts.append(prompt)
        # As with a pipe for stdin: the prompt shows, the answer is not echoed.
        if prompt:
            self._append(run, {"output_type": "stream", "name": "stdout", "text": prompt})
            run.since_answer += prompt
        self._client.input(self._answer(run))

    @staticmethod
    def _answer(run: _Run) -> str:
        """The next stdin= line, else the next answer whose prompt showed, else end of input."""
        if run.stdin_left:
            line, _, run.stdin_left = run.stdin_left.partition("\n")
            return line
        if run.answers_left and re.search(run.answers_left[0][0], run.since_answer):
            _, send = run.answers_left.pop(0)
            run.since_answer = ""
            return send
        run.eof_given = True
        return _EOF

    # -- the result ------------------------------------------------------------------------

    def _result(
        self,
        ticket: _Ticket,
        run: _Run,
        timed_out: bool,
        note: str,
        lost: Optional[str],
    ) -> Result:
        request = ticket.request
        notes: List[str] = []
        if lost is not None:
            notes.append(f"the kernel was restarted ({lost}): state from earlier cells was lost")
        notes += [text for text in (note, ticket.note) if text]
        status: Optional[int] = None
        exception = traceback = ""
        raised_at: Optional[int] = None
        reply = run.reply
        if reply is not None and not timed_out:
            status = 0 if reply.get("status") == "ok" else 1
        error = reply if reply is not None and reply.get("status") == "error" else None
        if error is None and run.preamble_error is not None and not timed_out:
            error, status = run.preamble_error, 1
            notes.append("setting the cell's working directory or environment failed")
        if error is not None:
            name, value = str(error.get("ename", "")), str(error.get("evalue", ""))
            exception = f"{name}: {value}\n" if value else f"{name}\n"
            count = reply.get("execution_count") if reply is not None else None
            traceback, raised_at = self._traceback(
                error.get("traceback", []), count if isinstance(count, int) else None
            )
        if run.eof_given and (status or 0) != 0 and request.stdin is None:
            notes.append("input() got end of input: give the cell stdin= or answers")
        outputs = tuple(run.outputs)
        return Result(
            output=output_text(outputs),
            status=status,
            duration=time.monotonic() - ticket.started,
            timed_out=timed_out,
            note="; ".join(notes),
            exception=exception,
            traceback=traceback,
            state_lost=lost is not None,
            session_lost=timed_out and self._lost is not None,  # replaced to stop this cell
            displays=_displays(outputs),
            kernel_outputs=outputs,
            raised_at=raised_at,
        )

    def _traceback(self, lines: Any, count: Optional[int]) -> Tuple[str, Optional[int]]:
        """The traceback with its cell frames at the document's lines, and the 0-based line
        of the statement of cell ``count`` (the failing one) that raised, if it shows.

        IPython names a frame ``Cell In[7], line 3`` and numbers the listed source lines
        (``----> 3 helper(b)``) within the cell; both become the document's lines.
        """
        text = _ANSI.sub("", "\n".join(str(line) for line in lines))
        out: List[str] = []
        first: Optional[int] = None  # the frame's cell starts after this document line
        raised_at: Optional[int] = None
        for line in text.split("\n"):
            frame = _CELL_FRAME.search(line)
            if frame is not None:
                known = self._frames.get(int(frame.group(1)))
                first = known[1] if known is not None else None
                if known is not None:
                    at = known[1] + int(frame.group(2))
                    line = line[: frame.start()] + f"{known[0]}:{at}" + line[frame.end() :]
                    if int(frame.group(1)) == count:
                        raised_at = at - 1  # the innermost frame of the failing cell wins
            elif not line.strip():
                first = None
            elif first is not None:
                listed = _LISTED_LINE.match(line)
                # at least IPython's width, so a SyntaxError's quoted "    1 + 2" is left be
                if listed is not None and len(listed.group(0)) >= 7:
                    line = _listed(listed, first) + line[listed.end() :]
            out.append(line)
        return "\n".join(out), raised_at


def _listed(match: re.Match[str], first: int) -> str:
    """IPython's ``----> 3`` / ``      1`` prefix with the document's line number instead."""
    number = str(first + int(match.group(2)))
    width = max(7, len(number) + 2)
    if match.group(1).strip():  # the arrow at the line that was running
        return "-" * (width - len(number) - 2) + "> " + number
    return number.rjust(width)


def _displays(outputs: Tuple[Mapping[str, Any], ...]) -> Tuple[Tuple[str, bytes], ...]:
    found: List[Tuple[str, bytes]] = []
    for output in outputs:
        data = output.get("data") or {}
        png = data.get("image/png")
        if isinstance(png, str):
            with contextlib.suppress(ValueError):  # not base64: nothing a transcript could show
                found.append(("image/png", base64.b64decode(png)))
        svg = data.get("image/svg+xml")
        if isinstance(svg, (str, list)):
            found.append(("image/svg+xml", "".join(svg).encode("utf-8")))
    return tuple(found)


if TYPE_CHECKING:  # mypy checks that a KernelSession is a Session

    def _is_a_session(session: KernelSession) -> Session:
        return session
