"""Getting the shell back to its prompt after a timeout, an interrupt or a read of input.

Escalates ^C, ^C, SIGTERM, SIGKILL on the terminal's foreground job (^C through the line
discipline when the shell itself is in front, which also flushes unread input), then sends a
resync line whose sentinel proves the shell reads commands again. A shell that does not come
back is killed; the next cell starts a fresh one and says state was lost. A resync answered
without the session's token means a cell replaced the shell (``exec bash``).
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING, List, NamedTuple, Optional

from . import protocol
from .processes import peek_exit, wait_exit
from .protocol import CellReader

if TYPE_CHECKING:
    from .session import ShellSession


class Recovery(NamedTuple):
    how: str  # what it took, for the note
    replaced: bool  # the shell had been replaced by another program (`exec bash`)


def recover(session: ShellSession, cell: CellReader, ack: str) -> Recovery:
    """Interrupt whatever runs, prove the shell is back at its prompt; describe what it took.

    Escalates ^C, ^C, SIGTERM, SIGKILL on the foreground job; if the shell itself does not
    come back, it is killed and the next cell starts a fresh one.
    """
    proc = session._proc
    shell = int(proc.pid)
    session._restore_tty()  # a cell may have turned off ISIG or ICANON
    steps = [signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    used: List[str] = []
    level = 0

    def hit(pgrp: int) -> None:
        nonlocal level
        sig = steps[min(level, len(steps) - 1)]
        level += 1
        name = "^C" if sig == signal.SIGINT else sig.name
        if not used or used[-1] != name:
            used.append(name)
        try:
            if pgrp == shell and sig == signal.SIGINT:
                # ^C through the line discipline also flushes unread terminal input.
                os.write(session._fd, b"\x03")
            else:
                os.killpg(pgrp, sig)
        except OSError:
            pass

    def fg_pgrp() -> int:
        try:
            return os.tcgetpgrp(session._fd)
        except OSError:
            return shell

    first = fg_pgrp()
    if first == shell:
        hit(shell)
    else:
        with contextlib.suppress(OSError):
            os.write(session._fd, b"\x03")
        level = 1
        used.append("^C")
    last_hit = time.monotonic()
    budget = last_hit + 6.0
    resync: Optional[bytes] = None
    resync_at = 0.0
    end_seen_at_send = cell.fields is not None
    shell_fg_since: Optional[float] = None
    while time.monotonic() < budget:
        fields = session._io.parse(cell, resync)
        if cell.fields is not None and ack and not end_seen_at_send:
            session._ack(ack)
        if fields is not None:
            session._restore_tty()
            if fields[2].decode("ascii", "replace") != session._tok:
                session._drop_shell("the shell was replaced (`exec`) in an earlier cell")
                how = (
                    "the shell had been replaced (`exec`), so it was stopped; the next cell "
                    "gets a fresh shell"
                )
                return Recovery(how, replaced=True)
            return Recovery(describe_steps(used), replaced=False)
        data = session._io.read(0.01)
        if data is None or peek_exit(proc) is not None:
            status = wait_exit(proc, 1.0)
            session._drop_shell("the shell ended while a cell was interrupted")
            how = (
                f"{describe_steps(used)}, and the shell ended (status {status}); the next "
                "cell gets a fresh shell"
            )
            return Recovery(how, replaced=False)
        if data:
            session._io.buf += data
            continue
        now = time.monotonic()
        fg = fg_pgrp()
        if fg != shell:
            shell_fg_since = None
            if now - last_hit >= 0.4:
                hit(fg)
                last_hit = now
            continue
        if shell_fg_since is None:
            shell_fg_since = now
        ended_since = cell.fields is not None and not end_seen_at_send
        if resync is None or ended_since:
            if now - shell_fg_since < 0.02:
                continue  # let the shell finish reacting before it reads our line
            # A job killed by a signal makes bash put back the terminal modes it saved
            # last, which may be a cell's `stty raw -isig`: our line needs canonical mode.
            session._restore_tty()
            resync, line = protocol.resync_line(session._nonce, session._next_seq())
            session._io.send(line)
            resync_at = now
            end_seen_at_send = cell.fields is not None
            continue
        if now - resync_at >= 0.5 and now - last_hit >= 0.5:
            # The shell itself is busy (a builtin loop, `read` ignoring ^C): press harder.
            if level >= 2:
                used.append("killing the shell")
                session._drop_shell("the shell had to be killed to stop an earlier cell")
                return Recovery(f"{describe_steps(used)}; the next cell gets a fresh shell", False)
            hit(shell)
            last_hit = now
            resync = None
    session._drop_shell("the shell did not recover from an interrupted cell")
    return Recovery(
        f"{describe_steps(used)}, but the shell did not come back, so it was killed", False
    )


def describe_steps(used: List[str]) -> str:
    if not used:
        return "it was interrupted"
    return "it was interrupted with " + ", then ".join(used)
