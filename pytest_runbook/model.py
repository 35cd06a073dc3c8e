"""The nouns every stage shares, frozen: what a document holds and what running a cell gave.

Imports nothing from pytest and nothing from the parser or the sessions, so each stage of the
pipeline (document -> items -> runner -> session -> Result -> verdict -> report / rewrite)
can depend on these and on nothing further upstream. Line numbers are 0-based.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple


@dataclass(frozen=True)
class ExitSpec:
    """Which exit statuses a cell (or console command) may end with."""

    value: str = "0"  # a decimal status "0".."255", "any" or "nonzero"

    def accepts(self, status: int) -> bool:
        if self.value == "any":
            return True
        if self.value == "nonzero":
            return status != 0
        return status == int(self.value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Answer:
    """One scripted reply to an interactive prompt: when ``expect`` (a regex) appears, send."""

    expect: str
    send: str  # sent followed by a newline


@dataclass(frozen=True)
class Block:
    """Where a fenced block's content sits in the file, so update mode can rewrite it."""

    fence_line: int  # the opening fence
    content_start: int  # first content line (== content_end when the block is empty)
    content_end: int  # exclusive: the closing fence's line (len(lines) if never closed)
    prefix: str  # container prefix of content lines: list indent, "> " of a blockquote, ...
    fence: str  # the opening fence marker as written, e.g. "```" or "~~~~"


@dataclass(frozen=True)
class Expected:
    """An output block that follows a cell: its lines are the cell's expected output."""

    lines: Tuple[str, ...]  # content lines with the container prefix removed
    block: Block
    match: str = "exact"  # or "contains" (``match=contains``)
    ansi_keep: bool = False  # ``ansi=keep``: compare escape sequences too


@dataclass(frozen=True)
class Command:
    """One ``$ `` command of a console block, with the output lines that follow it."""

    source: str  # the command; ``> `` continuation lines joined with "\n", prompts removed
    line: int  # the ``$ `` line
    expected: Tuple[str, ...]  # output lines (prefix removed), without a closing ``[N]`` line
    expected_start: int  # first expected-output line in the file
    expected_end: int  # exclusive end of expected output (the ``[N]`` line is not included)
    exit: ExitSpec = ExitSpec()  # from a ``[N]`` line closing the output
    status_line: Optional[int] = None  # that ``[N]`` line in the file, if there is one
    # A doctest example (```pycon): its inline ``# doctest:`` flags, and the indentation of
    # its ``>>>`` inside the block, which update mode keeps for the lines it writes.
    doctest_options: Tuple[Tuple[int, bool], ...] = ()
    indent: int = 0


@dataclass(frozen=True)
class CellOptions:
    """A cell's effective options: defaults < frontmatter < directive < info string, merged once."""

    timeout: float = 60.0
    cwd: Optional[str] = None  # cell ``cwd=``, relative to the file's working directory
    exit: ExitSpec = ExitSpec()
    skip: Optional[str] = None  # reason; None = not skipped
    xfail: Optional[str] = None  # reason; None = not expected to fail
    requires: Tuple[str, ...] = ()  # commands that must be on PATH, else skip
    platforms: Tuple[str, ...] = ()  # e.g. ("linux", "darwin"); empty = any
    tags: Tuple[str, ...] = ()  # Runme tag/category (cell + frontmatter) -> pytest markers
    exclude_from_run_all: bool = False
    background: bool = False
    ready: Optional[str] = None  # regex that says a background cell is up
    stdin: Optional[str] = None  # text fed to the cell (escapes already decoded)
    answers: Tuple[Answer, ...] = ()
    teardown: bool = False
    prompt_env: str = "auto"  # "auto", "yes" or "no"


@dataclass(frozen=True)
class Cell:
    """A runnable fenced block: one pytest item."""

    index: int  # position among the document's cells
    name: str
    generated_name: bool  # True when the name is Runme's generated one
    kind: str  # "shell" (runs in the session shell), "script" (through an interpreter), "console"
    language: str  # the info string's first word, lowercased ("" for none)
    source: str  # what runs; shell: ``$ `` prompts dropped, one output line per input line
    line: int  # the opening fence
    source_line: int  # the first source line
    interpreter: Optional[Tuple[str, ...]]  # argv for scripts; for shell cells only if set
    options: CellOptions
    expected: Optional[Expected] = None  # the output block that follows, if any
    commands: Tuple[Command, ...] = ()  # console blocks only
    block: Optional[Block] = None  # the cell's own fence (update mode: inserting after it)
    attributes: Mapping[str, Any] = field(default_factory=dict)  # merged raw attributes
    # A cell of an .ipynb notebook: its index in the notebook's cells (Markdown cells counted),
    # which update mode rewrites instead of lines; its ``expected.block`` is then a placeholder.
    notebook_index: Optional[int] = None


@dataclass(frozen=True)
class FileOptions:
    """Per-file settings: ini defaults < frontmatter."""

    enabled: bool = True  # frontmatter ``runbook: false`` -> no items
    skip: Optional[str] = None  # ``runbook: {skip: reason}`` -> every item skipped
    shell: Tuple[str, ...] = ("bash",)  # argv of the session shell
    cwd: Optional[str] = None  # raw frontmatter cwd (relative to the file); "tmp" is special
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    on_failure: str = "continue"  # or "stop"
    substitutions: Mapping[str, str] = field(default_factory=dict)
    fixtures: Tuple[str, ...] = ()
    bare_fences: str = "skip"
    skip_prompts: bool = False
    tags: Tuple[str, ...] = ()
    shell_line: Optional[int] = None  # where the frontmatter names ``shell`` (None: ini default)
    cwd_line: Optional[int] = None  # where the frontmatter names ``cwd`` (None: not there)
    fixtures_line: Optional[int] = None  # where the frontmatter names ``fixtures``
    # The Python session: its interpreter argv (frontmatter ``python:`` / ini runbook_python;
    # () = pytest's own), off for ``python: script`` (every Python cell a fresh script).
    python: Tuple[str, ...] = ()
    python_session: bool = True
    python_blocks: str = "named"  # or "all": every ```python block joins the session
    kernel: Optional[str] = None  # ``kernel: NAME`` / a kernelspec: that kernel's cells
    kernel_language: Optional[str] = None  # the kernel's language, whose fences go to it
    home: Optional[str] = None


@dataclass(frozen=True)
class Notice:
    """A warning about valid but suspicious input (unknown key, unclosed fence)."""

    line: int
    message: str


@dataclass(frozen=True)
class Document:
    """A parsed Markdown runbook."""

    path: str
    text: str
    newline: str  # "\n" or "\r\n", as the file uses
    meta: Mapping[str, Any]  # the frontmatter as written (parsed)
    options: FileOptions
    cells: Tuple[Cell, ...]
    notices: Tuple[Notice, ...] = ()
    bom: bool = False  # the file started with a UTF-8 byte order mark (kept out of ``text``)


@dataclass(frozen=True)
class Result:
    """What one cell did."""

    output: str  # merged stdout+stderr as the terminal showed it (LF line ends, lossless)
    status: Optional[int]  # the cell's exit status; None when it never finished
    duration: float  # seconds
    timed_out: bool = False
    interrupted: bool = False  # stopped on request (``Session.interrupt``), not by its timeout
    waiting_for_input: bool = False  # it blocked reading a terminal that had nothing for it
    incomplete: bool = False  # unterminated quote/heredoc/brace: bash waited for more input
    shell_exited: Optional[int] = None  # the shell itself ended in this cell (its status)
    note: str = ""  # one human sentence for reports, e.g. why it was interrupted
    replaced: bool = False  # the cell replaced the shell (`exec bash`): the next cell starts afresh
    failed_command: str = ""  # under errexit: the command that failed, as bash shows it
    # ...and its PIPESTATUS (one status per command of that pipeline); () when not known.
    pipe_status: Tuple[int, ...] = ()
    # Python and kernels: an uncaught exception as doctest compares it ("ValueError: bad\n",
    # the last line of the traceback), and the traceback as a report shows it, its frames
    # already pointing at the Markdown's lines. Empty when nothing was raised.
    exception: str = ""
    traceback: str = ""
    state_lost: bool = False  # the session had to start afresh before this cell (say so)
    # A ``>>>`` example's stderr, kept out of ``output`` (stdout only then), because doctest
    # compares stdout only; reports and transcripts show it. "" for everything else.
    stderr: str = ""
    # Stopping this cell (a timeout) ended its session: the next cell starts afresh.
    session_lost: bool = False
    # Rich outputs a kernel displayed, as (mime type, data): images for transcripts.
    displays: Tuple[Tuple[str, bytes], ...] = ()
    # A kernel's outputs as nbformat output dicts, for update mode to write into a notebook.
    kernel_outputs: Tuple[Mapping[str, Any], ...] = field(default=(), compare=False)
    # The 0-based document line of the cell's own statement that raised (a kernel cell's
    # traceback names it): where a failure report points instead of the cell's fence.
    raised_at: Optional[int] = None
