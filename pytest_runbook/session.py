"""One persistent shell per Markdown file, driven through a PTY by pexpect.

INTERFACE CONTRACT (signatures fixed; implementation below them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Result:
    """What one cell did."""

    output: str  # merged stdout+stderr as the terminal showed it (LF line ends, lossless)
    status: Optional[int]  # the cell's exit status; None when it never finished
    duration: float  # seconds
    timed_out: bool = False
    waiting_for_input: bool = False  # it blocked reading a terminal that had nothing for it
    incomplete: bool = False  # unterminated quote/heredoc/brace: bash waited for more input
    shell_exited: Optional[int] = None  # the shell itself ended in this cell (its status)
    note: str = ""  # one human sentence for reports, e.g. why it was interrupted


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
        raise NotImplementedError

    @property
    def tmpdir(self) -> str:
        """The session's private temporary directory (also $RUNBOOK_TMPDIR)."""
        raise NotImplementedError

    @property
    def restarted(self) -> bool:
        """True once a dead shell has been replaced: state from earlier cells was lost."""
        raise NotImplementedError

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
        raise NotImplementedError

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
        raise NotImplementedError

    def background_log(self) -> str:
        """Everything background cells have printed so far."""
        raise NotImplementedError

    def close(self) -> List[str]:
        """End the shell and every process it started; describe any that had to be killed."""
        raise NotImplementedError
