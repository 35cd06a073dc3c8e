"""The Python session's child: runs a Markdown file's Python cells in one ``__main__`` namespace.

Runs in the CHILD interpreter, which may be another Python than pytest's (a project's venv),
so it uses the standard library only, imports nothing from pytest_runbook and stays 3.9+.
Start-up time is part of every file's cost: the modules it imports at start are those the
interpreter has loaded already (marshal, _thread, _signal, _ast are built in); ``traceback``
and ``ctypes`` are imported only when needed.

Channels (file descriptors given on the command line, all private to the worker):

- requests: length-prefixed ``marshal`` dicts, read by the main thread between cells;
- async: stdin text for ``answers`` while a cell runs; its end of file means the session
  (pytest) is gone, and a thread that blocks on it then kills the worker's process group;
- results: one length-prefixed ``marshal`` dict per request;
- fd 1 and fd 2 are one pipe: all output, also that of ``os.system`` and C code. After a
  request's output the worker writes ``\\0RUNBOOK-END:<nonce>\\0`` on a private duplicate of
  that pipe, the nonce being new per request, so no output can fake the end.
- a ``>>>`` example (mode "example") has fd 2 pointed at a private file while it runs: doctest
  compares stdout only, so a warning or a log line must not count as output; what it wrote
  there comes back in the result as ``stderr``, for the report to show.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import _thread
import builtins
import marshal
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are strings here anyway
    from typing import Any, Dict, List, Optional

_ast: Any = __import__("_ast")  # built in; the ``ast`` module costs ~10 ms of start-up
_signal: Any = __import__("_signal")  # built in; ``signal`` builds enums at import

_HEADER = 4
_MARSHAL_VERSION = 4  # readable by every Python 3.4+, whichever side is newer
_SMALL_STDIN = 16384  # fits in a pipe's buffer: written at once, no writer thread
_ARM_DELAY = 0.5  # seconds before the parent-death signal is armed (see below)
_WORKER_FILE = __file__

# ``python -c BOOTSTRAP DIR fds...``: imported, not run as a script, so its bytecode comes from
# __pycache__ instead of being compiled at every start; then it leaves sys.path and
# sys.modules, so that a cell's ``import worker`` finds the user's module.
BOOTSTRAP = (
    "import sys;sys.path.insert(0,sys.argv.pop(1));import worker;del sys.path[0];"
    "del sys.modules['worker'];worker.main(sys.argv)"
)


def send(fd: int, message: Dict[str, Any]) -> None:
    data = marshal.dumps(message, _MARSHAL_VERSION)
    os.write(fd, len(data).to_bytes(_HEADER, "big") + data)


class Reader:
    """Length-prefixed messages from a pipe; ``None`` at end of file."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self) -> Optional[Dict[str, Any]]:
        while True:
            if len(self.buffer) >= _HEADER:
                size = int.from_bytes(self.buffer[:_HEADER], "big")
                if len(self.buffer) >= _HEADER + size:
                    data = self.buffer[_HEADER : _HEADER + size]
                    self.buffer = self.buffer[_HEADER + size :]
                    message: Dict[str, Any] = marshal.loads(data)
                    return message
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk


def die() -> None:
    """The session is gone: end this process and everything the cells started."""
    try:
        if os.getpgrp() == os.getpid():  # only when the session made us a group leader
            os.killpg(os.getpid(), 9)
    finally:
        os._exit(70)


class Worker:
    def __init__(self, requests: int, async_fd: int, results: int, parent: int) -> None:
        self.requests = Reader(requests)
        self.async_fd = async_fd
        self.results = results
        self.parent = parent
        self.pid = os.getpid()
        self.output = os.dup(1)  # the marker's own way to the pipe, whatever a cell does to fd 1
        self.null_stdin = os.dup(0)  # /dev/null: end of input at once between requests
        for fd in (requests, async_fd, results, self.output, self.null_stdin):
            os.set_inheritable(fd, False)
        self.in_user_code = False
        self.stdin_lock = _thread.allocate_lock()
        self.stdin_writer = -1  # write end of the running request's stdin pipe
        self.stdin_request = -1
        self.sources: Dict[str, List[str]] = {}  # Markdown path -> lines, for tracebacks
        self.environ: Optional[Dict[str, str]] = None  # the last environment the session sent
        self.start_environ = dict(os.environ)  # what the shell's first hand-over differs from
        self.flags = 0  # ``from __future__`` features seen so far, as the REPL keeps them
        self.stderr_file = -1  # where an example's fd 2 goes; made at the first example
        main = type(sys)("__main__")
        main.__dict__["__builtins__"] = builtins
        self.main_module = sys.modules["__main__"]  # keep the worker's own globals alive
        sys.modules["__main__"] = main  # pickle and dataclasses find cells' classes here
        self.namespace: Dict[str, Any] = main.__dict__

    # -- the threads ----------------------------------------------------------------------

    def watch_async(self) -> None:
        """Forward answers to the running cell's stdin; die when the session's end closes."""
        reader = Reader(self.async_fd)
        while True:
            try:
                message = reader.next()
            except OSError:
                message = None
            if message is None:
                die()
                return
            with self.stdin_lock:
                if message["id"] != self.stdin_request or self.stdin_writer < 0:
                    continue
                data = message["data"].encode("utf-8", "surrogateescape")
                try:  # noqa: SIM105 (contextlib would cost the worker's start-up)
                    os.write(self.stdin_writer, data)
                except OSError:
                    pass
                if message["eof"]:
                    os.close(self.stdin_writer)
                    self.stdin_writer = -1

    def on_sigint(self, signum: int, frame: Any) -> None:
        if self.in_user_code:
            raise KeyboardInterrupt
        # A late ^C (the cell had just finished) must not break the worker's own framing.

    # -- the main loop --------------------------------------------------------------------

    def serve(self) -> None:
        send(self.results, {"id": 0, "ready": True})  # set up: a later death is no start failure
        while True:
            try:
                request = self.requests.next()
            except KeyboardInterrupt:
                continue
            if request is None:
                die()
                return
            if request["op"] == "close":
                send(self.results, {"id": request["id"], "threads": _live_threads()})
                continue
            result = self.handle(request)
            if os.getpid() != self.pid:  # a cell forked and the child came back here: as at
                self.flush()  # the end of a script, it ends (it must not answer the session)
                os._exit(0)
            self.flush()
            os.write(self.output, b"\0RUNBOOK-END:" + request["nonce"] + b"\0")
            send(self.results, result)

    def flush(self) -> None:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except Exception:  # a cell replaced or closed the stream: nothing to flush
                pass

    def handle(self, request: Dict[str, Any]) -> Dict[str, Any]:
        result: Dict[str, Any] = {
            "id": request["id"],
            "status": 0,
            "exception": "",
            "traceback": "",
            "interrupted": False,
        }
        stdin = request["stdin"]
        answers = request["answers"]
        example = request["mode"] == "example"
        saved_stderr = self.divert_stderr() if example else -1
        try:
            self.in_user_code = True
            try:
                self.adopt(request)
                if stdin is not None or answers:
                    self.open_stdin(request["id"], stdin or "", answers)
                if example:
                    self.run_example(request["source"], request["path"], request["line"])
                else:
                    self.run_cell(request["source"], request["path"], request["line"])
            finally:
                self.in_user_code = False
        except SystemExit as exc:
            if example:  # doctest reports it as any other exception
                result["status"] = 1
                self.describe(exc, result)
            else:
                result["status"] = self.exit_status(exc)
        except BaseException as exc:
            result["status"] = None if isinstance(exc, KeyboardInterrupt) else 1
            result["interrupted"] = isinstance(exc, KeyboardInterrupt)
            self.describe(exc, result)
        finally:
            if stdin is not None or answers:
                self.close_stdin()
            if saved_stderr >= 0:
                result["stderr"] = self.restore_stderr(saved_stderr)
            if "linecache" in sys.modules:
                self.register_sources()
        return result

    def divert_stderr(self) -> int:
        """Point fd 2 at the (emptied) stderr file; return a duplicate of the fd 2 it had
        (-1 when that cannot be done: stderr then stays merged, nothing is lost)."""
        self.flush()  # what was written before the example is not its stderr
        try:
            if self.stderr_file < 0:
                self.stderr_file = _anonymous_file()
            else:
                os.ftruncate(self.stderr_file, 0)
                os.lseek(self.stderr_file, 0, 0)
            saved = os.dup(2)
        except OSError:
            return -1
        os.set_inheritable(saved, False)
        os.dup2(self.stderr_file, 2)  # inheritable: a subprocess's stderr goes there too
        return saved

    def restore_stderr(self, saved: int) -> bytes:
        """Put fd 2 back; what the example wrote to it (read from the start of the file)."""
        self.flush()
        chunks = []
        try:
            os.dup2(saved, 2)
            os.close(saved)
            size = os.fstat(self.stderr_file).st_size
            offset = 0
            while offset < size:
                chunk = os.pread(self.stderr_file, min(size - offset, 1 << 20), offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
        except OSError:  # the example closed or replaced these fds: keep what was read
            pass
        return b"".join(chunks)

    def adopt(self, request: Dict[str, Any]) -> None:
        environ = request["environ"]  # the shell's exported environment, sent when it changed
        if environ is not None:
            # Only what the shell changed since the last hand-over: a cell's own os.environ
            # changes stay unless the shell changed the same variable.
            before = self.environ if self.environ is not None else self.start_environ
            for key in before.keys() - environ.keys():
                os.environ.pop(key, None)
            for key, value in environ.items():
                if before.get(key) != value:
                    os.environ[key] = value
            self.environ = environ
        if request["exports"]:
            os.environ.update(request["exports"])
        if request["cwd"] is not None:
            os.chdir(request["cwd"])

    # -- running code ---------------------------------------------------------------------

    def remember(self, source: str, path: str, line: int) -> str:
        """Keep the cell's lines at their Markdown place; return the source padded to it."""
        lines = self.sources.setdefault(path, [])
        new = source.splitlines(True)
        if len(lines) < line + len(new):
            lines.extend(["\n"] * (line + len(new) - len(lines)))
        lines[line : line + len(new)] = [x if x.endswith("\n") else x + "\n" for x in new]
        return "\n" * line + source

    def run_cell(self, source: str, path: str, line: int) -> None:
        padded = self.remember(source, path, line)
        flags = self.flags | _ast.PyCF_ONLY_AST
        tree = compile(padded, path, "exec", flags, True)
        body = tree.body
        last = None
        if body and type(body[-1]) is _ast.Expr and not _hidden(source, line, body[-1]):
            last = body.pop()
        code = compile(tree, path, "exec", self.flags, True)
        self.flags |= code.co_flags & _FUTURE_FLAGS
        exec(code, self.namespace)
        if last is not None:
            expression = _ast.Expression(last.value)
            value = eval(compile(expression, path, "eval", self.flags, True), self.namespace)
            if value is not None:
                sys.displayhook(value)

    def run_example(self, source: str, path: str, line: int) -> None:
        # "single" mode needs the final newline that ends a compound statement
        # (`>>> class A: pass`), as doctest adds it to every example's source.
        padded = self.remember(source, path, line) + "\n"
        code = compile(padded, path, "single", self.flags, True)
        self.flags |= code.co_flags & _FUTURE_FLAGS
        exec(code, self.namespace)

    # -- outcomes -------------------------------------------------------------------------

    def exit_status(self, exc: SystemExit) -> int:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code & 0xFF
        try:  # noqa: SIM105 - contextlib would cost start-up time
            sys.stderr.write(f"{code}\n")  # as the interpreter does when it exits on it
        except Exception:
            pass
        return 1

    def describe(self, exc: BaseException, result: Dict[str, Any]) -> None:
        traceback = _stdlib("traceback")
        self.register_sources()
        tb = _without_worker_frames(exc.__traceback__)
        try:
            only = traceback.format_exception_only(type(exc), exc)
            result["exception"] = only[-1] if only else ""
            result["traceback"] = "".join(traceback.format_exception(type(exc), exc, tb))
        except BaseException as inner:  # a __str__ that raises: say what we can
            result["exception"] = f"{type(exc).__name__}: <unprintable: {inner!r}>\n"
            result["traceback"] = result["exception"]

    def register_sources(self) -> None:
        linecache = _stdlib("linecache")
        for path, lines in self.sources.items():
            linecache.cache[path] = (sum(map(len, lines)), None, lines, path)

    # -- stdin ----------------------------------------------------------------------------

    def open_stdin(self, request_id: int, text: str, answers: bool) -> None:
        read, write = os.pipe()
        os.dup2(read, 0)
        os.close(read)
        data = text.encode("utf-8", "surrogateescape")
        if len(data) <= _SMALL_STDIN:
            if data:
                os.write(write, data)
            if not answers:
                os.close(write)
                return
        else:
            # Larger than a pipe holds: a thread writes it while the cell reads.
            writer = os.dup(write)
            _thread.start_new_thread(_write_all, (writer, data))
            if not answers:
                os.close(write)
                return
        with self.stdin_lock:
            self.stdin_writer = write
            self.stdin_request = request_id

    def close_stdin(self) -> None:
        with self.stdin_lock:
            if self.stdin_writer >= 0:
                os.close(self.stdin_writer)
            self.stdin_writer = -1
            self.stdin_request = -1
        os.dup2(self.null_stdin, 0)
        # What the cell left unread in sys.stdin's buffer must not reach the next cell.
        if sys.stdin is sys.__stdin__ and sys.stdin is not None:
            encoding, errors = sys.stdin.encoding, sys.stdin.errors
            fresh = open(0, encoding=encoding, errors=errors, closefd=False)  # noqa: SIM115
            sys.stdin = fresh
            sys.__stdin__ = fresh  # type: ignore[misc]


_FUTURE_FLAGS = 0x1FE0000  # CO_FUTURE_* bits: a future import in one cell holds for the next


def _anonymous_file() -> int:
    """A read-write file with no name (nothing to clean up), not inherited as itself."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            fd: int = memfd_create("runbook-example-stderr", os.MFD_CLOEXEC)
            return fd
        except OSError:  # not supported by this kernel: a file that is unlinked at once
            pass
    directory = os.environ.get("TMPDIR") or "/tmp"
    path = os.path.join(directory, f".runbook-stderr-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.unlink(path)
    os.set_inheritable(fd, False)
    return fd


def _stdlib(name: str) -> Any:
    """Import a standard module the worker needs late, never a same-named file in the cwd."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    saved = sys.path[:]
    cwd = os.getcwd()
    sys.path[:] = [p for p in saved if p not in ("", ".", cwd)]
    try:
        return __import__(name)
    finally:
        sys.path[:] = saved


def _without_worker_frames(tb: Any) -> Any:
    """The traceback without the worker's own frames (its loop, its ^C handler)."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != _WORKER_FILE:
            kept.append(tb)
        tb = tb.tb_next
    for entry, following in zip(kept, [*kept[1:], None]):
        entry.tb_next = following
    return kept[0] if kept else None


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:  # the cell ended without reading it all
        pass
    finally:
        os.close(fd)


def _hidden(source: str, line: int, node: Any) -> bool:
    """A trailing ``;`` after the last expression hides its value, as in Jupyter."""
    lines = source.split("\n")
    index = node.end_lineno - 1 - line
    if not 0 <= index < len(lines):
        return False
    rest = lines[index].encode("utf-8")[node.end_col_offset :].decode("utf-8", "replace")
    return bool(rest.lstrip().startswith(";"))


def _live_threads() -> List[str]:
    """Names of the threads the cells started that still run (the session ends them)."""
    threading = sys.modules.get("threading")
    if threading is None:
        return []
    me = threading.current_thread()
    return [t.name for t in threading.enumerate() if t is not me and t.is_alive() and t.ident]


def _set_parent_death_signal(parent: int) -> None:
    """Linux: the kernel kills us with the session's process, even if a cell holds the GIL.

    The async thread already dies with the session as soon as it gets the GIL; this covers a
    cell stuck in C code that never lets go of it. ``ctypes`` costs a few ms, so it is armed
    after ``_ARM_DELAY``, off the path of the first cells (quick files never pay for it).
    """
    if not sys.platform.startswith("linux"):
        return
    time.sleep(_ARM_DELAY)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        return
    if os.getppid() != parent:  # it died before the prctl: nobody will send the signal
        die()
    # The kernel keeps the setting on this thread, and drops it when the thread ends: stay.
    forever = _thread.allocate_lock()
    forever.acquire()
    forever.acquire()


def _configure_streams() -> None:
    # Line buffered, as on a terminal: a print() and an os.system() stay in order.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", line_buffering=True)


def main(argv: List[str]) -> None:
    """Entry point; the session starts it with ``BOOTSTRAP`` (``python -c``)."""
    requests, async_fd, results, parent, deathsig = (int(x) for x in argv[1:6])
    sys.argv = [""]  # as in the interactive interpreter (and sys.path[0] is "", the cwd)
    _configure_streams()
    worker = Worker(requests, async_fd, results, parent)
    _signal.signal(_signal.SIGINT, worker.on_sigint)
    _thread.start_new_thread(worker.watch_async, ())
    if deathsig:
        _thread.start_new_thread(_set_parent_death_signal, (parent,))
    worker.serve()


if __name__ == "__main__":
    main(sys.argv)
