"""What every kind of session promises the runner: start, run a cell -> Result, interrupt, close.

A session lives for one file. The runner owns one per kind the file uses (a bash session, a
Python interpreter, a Jupyter kernel) and never looks inside: it builds a ``Request`` from the
cell's resolved options, hands it over, and judges the ``Result`` that comes back. A new kind
of session is a module that implements this protocol plus a row in ``languages``.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Mapping, Optional, Protocol, Tuple

from ..model import Result


@dataclass(frozen=True)
class Request:
    """One piece of a cell to run: a whole cell, a console command or a ``>>>`` example.

    ``line`` is the 0-based Markdown line of the source's first line, so that a session can
    report its own errors (a Python traceback, a bash syntax error) at the document's lines.
    """

    source: str
    path: str  # the document as a person reads it (``docs/setup.md``), for located errors
    line: int
    timeout: float
    cwd: Optional[str] = None  # None: wherever the session is now (a ``cd`` persists)
    stdin: Optional[str] = None  # text, then end of input; "" = end of input at once
    answers: Tuple[Tuple[str, str], ...] = ()  # (regex of a prompt, text sent plus newline)
    exports: Mapping[str, str] = field(default_factory=dict)  # set before the source runs
    # The shell session's exported environment (before a Python or kernel cell): the session
    # applies what changed in it since the last one it got; None keeps the session's own.
    environ: Optional[Mapping[str, str]] = None
    interpreter: Optional[Tuple[str, ...]] = None  # a script through this argv (shell only)
    mode: str = "cell"  # "cell"; "example": a doctest example (single mode, echo its values)
    on_output: Optional[Callable[[str], None]] = None  # live output, for --runbook-stream


class Ticket(Protocol):
    """A request that was sent and not yet collected."""


class Session(Protocol):
    """One interpreter, shell or kernel that lives for one file and runs its cells in order."""

    #: True when objects, variables and the working directory carry from cell to cell; a
    #: ``script`` session (a fresh process per cell) keeps nothing but the file system.
    state_survives: bool

    def start(self) -> None:
        """Begin starting without waiting for it (the first ``submit`` waits); idempotent."""

    def submit(self, request: Request) -> Ticket:
        """Send a request and return at once, so the caller can overlap its own work."""

    def collect(self, ticket: Ticket) -> Result:
        """Wait for a submitted request; timeouts, crashes and hangs come back as data."""

    def run(self, request: Request) -> Result:
        """``collect(submit(request))``."""

    def interrupt(self) -> None:
        """Stop what runs now (^C, KeyboardInterrupt, a kernel interrupt); state survives."""

    def close(self) -> List[str]:
        """End the session and every process it started; notes on what had to be killed."""
