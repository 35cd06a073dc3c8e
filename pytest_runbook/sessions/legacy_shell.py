"""TEMPORARY: the old ``session.Session`` behind the ``Request`` API of ``sessions/base.py``.

Lets the runner speak the new interface before ``sessions/shell/`` lands; deleted at the
merge, when the languages table's shell factory points at ``sessions.shell.ShellSession``.
"""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

from ..model import Result
from ..session import Session, Submitted
from .base import Request, Ticket


class ShellSession:
    """The bash session: state (variables, ``cd``, functions) carries from cell to cell."""

    state_survives = True

    def __init__(
        self, *, cwd: str, shell: Sequence[str], env: Mapping[str, str], columns: int
    ) -> None:
        self._session = Session(cwd=cwd, shell=shell, env=env, columns=columns)

    def start(self) -> None:
        self._session.prestart()

    def submit(self, request: Request) -> Submitted:
        return self._session.submit(
            request.source,
            timeout=request.timeout,
            cwd=request.cwd,
            interpreter=request.interpreter,
            stdin=request.stdin,
            answers=list(request.answers),
            exports=dict(request.exports),
            on_output=request.on_output,
        )

    def collect(self, ticket: Ticket) -> Result:
        assert isinstance(ticket, Submitted)
        return self._session.collect(ticket)

    def run(self, request: Request) -> Result:
        return self.collect(self.submit(request))

    def interrupt(self) -> None:
        """Not needed by the runner yet: a timeout interrupts inside ``collect``."""

    def close(self) -> List[str]:
        return self._session.close()

    def start_background(self, request: Request, ready: Optional[str]) -> Result:
        return self._session.start_background(
            request.source,
            timeout=request.timeout,
            ready=ready,
            cwd=request.cwd,
            interpreter=request.interpreter,
            exports=dict(request.exports),
        )

    def background_logs(self) -> List[str]:
        return self._session.background_logs()

    def background_log(self) -> str:
        return self._session.background_log()

    @property
    def tmpdir(self) -> str:
        return self._session.tmpdir

    @property
    def cell_dir(self) -> str:
        return self._session.cell_dir

    @property
    def restarted(self) -> bool:
        return self._session.restarted
