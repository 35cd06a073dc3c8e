"""What a closed shell leaves that nobody waits for, done on a helper thread: reaping it and
removing its directories.

A file's teardown kills every process of its session before it returns (nothing of a file may
outlive it: a server's port must be free for the next file). What is left then, the dead
shell to reap and two directories to remove, is about a third of a close; it is done here
while the next file runs. ``wait`` returns once all of it is done: the plugin calls it at the
end of the run, and it runs at exit.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections import deque
from typing import Callable, Deque, Iterable, Optional

Job = Callable[[], None]

_lock = threading.Condition()
_jobs: Deque[Job] = deque()
_busy = False  # the thread is running a job it took off the queue
_thread: Optional[threading.Thread] = None


def defer(*jobs: Job) -> None:
    """Run ``jobs``, in order, on the helper thread (at once where no thread can start)."""
    global _thread
    with _lock:
        if _thread is None:
            thread = threading.Thread(target=_work, name="runbook-reaper", daemon=True)
            try:
                thread.start()
                _thread = thread
            except RuntimeError:  # the interpreter is shutting down
                pass
        if _thread is not None:
            _jobs.extend(jobs)
            _lock.notify_all()
            return
    _run(jobs)


def wait() -> None:
    """Return once every deferred job has run."""
    with _lock:
        while _jobs or _busy:
            _lock.wait(0.1)


def _work() -> None:
    global _busy
    while True:
        with _lock:
            while not _jobs:
                _lock.wait()
            job = _jobs.popleft()
            _busy = True
        try:
            _run((job,))
        finally:
            with _lock:
                _busy = False
                _lock.notify_all()


def _run(jobs: Iterable[Job]) -> None:
    for job in jobs:
        with contextlib.suppress(Exception):  # best effort: the watchdog covers the rest
            job()


def _forget_after_fork() -> None:
    """A forked child has no helper thread: it runs its own jobs, if it ever has any."""
    global _lock, _jobs, _busy, _thread
    _lock, _jobs, _busy, _thread = threading.Condition(), deque(), False, None


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(wait)
