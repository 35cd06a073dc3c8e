"""The persistent bash session of a Markdown file, split by concern.

``spawn`` starts bash on a PTY; ``protocol`` frames each cell's line and reads the sentinels;
``session`` (``ShellSession``) ties them into the state machine the runner talks to;
``waits`` tells a cell that waits for input from one that only waits; ``recovery`` gets the
shell back to its prompt after an interrupt; ``output`` reads the
terminal's output as a script's; ``background`` runs background cells; ``processes`` finds
and kills everything the session started.
PYTEST_DONT_REWRITE
"""

from .session import ShellSession, ShellTicket

__all__ = ["ShellSession", "ShellTicket"]
