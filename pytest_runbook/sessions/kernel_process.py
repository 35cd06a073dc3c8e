"""A Jupyter kernel's process: looking a kernel up, launching it, waiting until it answers,
and ending it (the process group killed at once, the waiting and cleaning on a thread).

Split from ``kernel.py`` (which runs cells on a started kernel): this half knows jupyter_client's
launch and shutdown, that half its messages. jupyter_client is imported only when a kernel is
looked up or started.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, List, Optional

from . import leftovers, watchdog

if TYPE_CHECKING:
    from jupyter_client.manager import KernelManager

INSTALL_HINT = "pip install 'pytest-runbook[jupyter]'"
# Run inside an IPython kernel at start (POSIX): when the process that started it (pytest, an
# xdist worker) dies, even by kill -9, kill the kernel's whole process group, so processes its
# cells started go too. ipykernel's own parent poller would exit the kernel alone, leaving them.
WATCHDOG_STARTUP = """\
def _runbook_watchdog():
    import os, threading, time
    parent = os.getppid()
    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os.killpg(os.getpgrp(), 9)
    threading.Thread(target=watch, name="runbook-parent-watchdog", daemon=True).start()
_runbook_watchdog()
del _runbook_watchdog"""
# ipykernel's own launcher (``python -m ipykernel_launcher``), but with the debugger's debugpy
# blocked while the kernel starts: importing it is about a quarter of a kernel's start-up CPU,
# and a test run never debugs. ``UNBLOCK_DEBUGPY`` (run once the kernel is up) lets cells import it.
LAUNCHER = """\
import sys
from pathlib import Path
if sys.path[0] == "" or Path(sys.path[0]) == Path.cwd():
    del sys.path[0]
sys.modules["debugpy"] = None
import importlib.util
sys.argv[0] = importlib.util.find_spec("ipykernel_launcher").origin
from ipykernel import kernelapp
kernelapp.launch_new_instance()"""
UNBLOCK_DEBUGPY = '__import__("sys").modules.pop("debugpy", None)'


# Kernels being reaped in the background, after their process group was killed.
def await_kernel(client: Any, timeout: float) -> None:
    """jupyter_client's ``wait_for_ready`` without its closing IOPub flush, which waits until
    IOPub has been quiet for 0.2 s: a fixed 0.2 s per kernel, 40% of a run of ten small
    notebooks. Nothing needs the flush: a cell's handlers ignore messages not sent for it.

    As there, a kernel is ready once it answers ``kernel_info`` on the shell channel and an
    IOPub message arrives (so the IOPub subscription is live and no output can be missed).
    """
    from queue import Empty

    deadline = time.monotonic() + timeout
    while True:
        client.kernel_info()
        try:
            reply = client.shell_channel.get_msg(timeout=1)
        except Empty:
            pass
        else:
            if reply["msg_type"] == "kernel_info_reply":
                try:
                    client.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # IOPub not connected yet: ask again
                else:
                    adapt = getattr(client, "_handle_kernel_info_reply", None)
                    if adapt is not None:  # protocol version adaptation, as wait_for_ready
                        adapt(reply)
                    return
        if not client.is_alive():
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")


REAPERS: List[threading.Thread] = []
REAPERS_LOCK = threading.Lock()


def wait_for_shutdowns(timeout: float = 10.0) -> None:
    """Wait until every closed kernel has been reaped and its files removed.

    The threads are not daemons, so the interpreter would wait for them anyway; the run
    calls this at its end so that nothing of a kernel is left when pytest's session ends.
    """
    deadline = time.monotonic() + timeout
    with REAPERS_LOCK:
        reapers = list(REAPERS)
    for reaper in reapers:
        reaper.join(max(0.0, deadline - time.monotonic()))


def reap(manager: KernelManager, runtime_dir: Optional[str], marker: str, since: int) -> None:
    """Wait for a killed kernel, release its sockets and files (in a background thread).

    First the processes its cells started outside its group (``setsid``, daemons), which
    the group kill missed: they carry this kernel's ``marker``.
    """
    try:
        if since >= 0:
            leftovers.kill(leftovers.left_running(marker, since))
        manager.shutdown_kernel(now=True)  # the group is dead already; this waits and cleans
    except Exception:  # already gone, or its files were removed under it
        with contextlib.suppress(Exception):
            manager.cleanup_resources()
    finally:
        if runtime_dir is not None:
            shutil.rmtree(runtime_dir, ignore_errors=True)
        watchdog.unregister(leftovers.watchdog_marker(marker))
        _close_thread_loop()
        with REAPERS_LOCK, contextlib.suppress(ValueError):
            REAPERS.remove(threading.current_thread())


def _close_thread_loop() -> None:
    """Close the event loop jupyter_client's sync calls made for this thread: left open, it
    is garbage collected later as an "unclosed event loop" warning in the user's run."""
    from jupyter_core import utils

    thread_loop = getattr(utils, "_loop", None)  # jupyter_core's per-thread loop (a ContextVar)
    loop = thread_loop.get() if thread_loop is not None else None
    if loop is not None and not loop.is_running():
        with contextlib.suppress(Exception):
            loop.close()


def kill_group(manager: KernelManager) -> None:
    """SIGKILL the kernel's process group now: the kernel and what its cells started."""
    provisioner = getattr(manager, "provisioner", None)
    pgid = getattr(provisioner, "pgid", None)
    process = getattr(provisioner, "process", None)
    if pgid and hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
            return
    if process is not None:
        with contextlib.suppress(OSError):
            process.kill()


class KernelUnavailable(Exception):
    """The kernel cannot be started at all: the extra is not installed or no such kernel.

    The collector turns it into a collection error at the file's ``kernel:`` line.
    """

    def __init__(self, kernel_name: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.kernel_name = kernel_name
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}"


def jupyter_client_for(kernel_name: str) -> Any:
    try:
        import jupyter_client
    except ImportError as exc:
        raise KernelUnavailable(
            kernel_name,
            f"kernel {kernel_name!r} needs jupyter_client, which is not installed ({exc})",
            f"{INSTALL_HINT} (it includes ipykernel, the Python kernel)",
        ) from None
    return jupyter_client


def no_such_kernel(kernel_name: str) -> KernelUnavailable:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        known = sorted(KernelSpecManager().find_kernel_specs())
    except Exception:  # the listing is a courtesy; the error stands without it
        known = []
    listing = f"installed kernels: {', '.join(known)}" if known else "no kernels are installed"
    return KernelUnavailable(
        kernel_name,
        f"no Jupyter kernel named {kernel_name!r} ({listing})",
        f"install it (Python: {INSTALL_HINT}, which includes ipykernel; another language: its "
        "kernel package), or name an installed kernel in the file's kernel/kernelspec",
    )


def check_kernel(kernel_name: str) -> str:
    """The kernel's language, or ``KernelUnavailable``; for the collector, without starting it."""
    jupyter_client_for(kernel_name)
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise no_such_kernel(kernel_name) from None
    return str(spec.language or "").lower()
