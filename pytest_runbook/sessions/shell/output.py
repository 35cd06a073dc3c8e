"""What a cell's terminal output means, read as a script's output would be.

The session's bash is interactive, a cell is a sourced file: where that differs from a script
(Runme runs each cell as one), the cell's output and status are made the script's. Trace lines
lose the extra ``+`` of sourcing, job notices go, and errors that end a script but that
interactive bash survives fail the cell. Bash's own messages are recognised here; nothing
decides on wording this package wrote itself.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from ...model import Result

if TYPE_CHECKING:
    from .protocol import CellReader

_INCOMPLETE = (
    b"unexpected EOF while looking for matching",
    b"syntax error: unexpected end of file",
    b"delimited by end-of-file",
)

# What interactive bash prints for errors that would end a script (see fatal_expansion_error).
_SESSION_ERROR = re.compile(
    rb"^(?:[^\n:]*/)?(?P<shell>[^\n:/]+): (?P<what>[^\n:]+): (?P<message>[^\n]+)$", re.MULTILINE
)
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_LINE_PREFIX = re.compile(rb"line [0-9]+\Z")
_JOB_NOTICE = re.compile(
    rb"^\[[0-9]+\][+ -] +(?:Done|Exit [0-9]+|Terminated|Killed|Hangup|Interrupt|Quit|Aborted"
    rb"|Broken pipe|Alarm clock|Segmentation fault|User defined signal [12])"
    rb"(?: \(core dumped\))?(?: {2,}| *$)[^\n]*\n?",
    re.MULTILINE,
)
_EXPANSION_ERRORS = frozenset(
    {
        b"unbound variable",
        b"parameter null or not set",
        b"parameter not set",
        b"readonly variable",
        b"invalid indirect expansion",
        b"bad substitution",
        b"bad array subscript",
    }
)
_COMMAND_ERRORS = frozenset(
    {b"command not found", b"No such file or directory", b"Permission denied", b"Is a directory"}
)
# `bash: cd: /x: No such file or directory` is a builtin's error: its status says it failed.
_BASH_BUILTINS = frozenset(
    b"""alias bg bind break builtin caller cd command compgen complete compopt continue declare
    dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill
    let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt
    source suspend test times trap true type typeset ulimit umask unalias unset wait warning
    coproc select function time""".split()
)

_TRACE = re.compile(rb"^\+(\+*)\x0e ", re.MULTILINE)


def untrace(raw: bytes) -> bytes:
    """``set -x`` lines as a terminal prints them: ``+ cmd``, not ``++ cmd``.

    Cells are sourced, one level deeper than typed commands, so bash doubles PS4's ``+``.
    PS4 carries an invisible ``\x0e`` to tell its trace lines from output that merely
    starts with ``++``; one ``+`` and the marker are dropped.
    """
    if b"\x0e" not in raw:
        return raw
    return _TRACE.sub(rb"\1 ", raw)


def drop_own_trace(raw: bytes, cell_dir: bytes) -> bytes:
    """Under ``set -x`` bash traces the command that runs the cell (``+ builtin source
    .../cell.sh``, after ``+ builtin cd -P -- DIR`` for a ``cwd=``): ours, not the cell's.
    Only our line runs at the top level; the cell's own commands trace one ``+`` deeper."""
    while raw.startswith(b"+\x0e "):
        eol = raw.find(b"\n")
        line = raw if eol < 0 else raw[:eol]
        if cell_dir not in line and not line.startswith(b"+\x0e builtin cd -P -- "):
            break
        raw = b"" if eol < 0 else raw[eol + 1 :]
    return raw


def script_output(chunks: Sequence[bytes], cell_dir: bytes) -> bytes:
    """What the cell printed, as a script would have printed it."""
    raw = untrace(drop_own_trace(b"".join(chunks), cell_dir))
    if b"]" in raw:
        # Job notices (`[1]+  Done  sleep 1`) are interactive bash's, printed between
        # commands whenever a background job ended: a script never prints them.
        raw = _JOB_NOTICE.sub(b"", raw)
    return raw


def is_incomplete(raw: bytes, path: str, shell: str) -> bool:
    """bash said the cell file ``path`` ended inside a quote, heredoc, brace or compound."""
    where = path.encode("utf-8", "surrogateescape") + b": line "
    i = raw.find(where)
    while i >= 0:
        eol = raw.find(b"\n", i)
        text = raw[i : eol if eol >= 0 else len(raw)]
        if any(m in text for m in _INCOMPLETE):
            return True
        i = raw.find(where, i + 1)
    if b"here-document at line" in raw:
        # Interactive bash reports an unterminated heredoc as `bash: warning: ...`, without
        # the file name; nested shells print their own prefix (`bash: -c: line 2: ...`).
        heredoc = re.compile(
            rb"^" + re.escape(shell.encode()) + rb": warning: here-document at line "
            rb"[0-9]+ delimited by end-of-file",
            re.MULTILINE,
        )
        return heredoc.search(raw) is not None
    return False


def fatal_expansion_error(raw: bytes, source: bytes, errexit: bool, shell: str) -> Optional[str]:
    """An error that ends a bash script but that interactive bash survives, if printed.

    ``${VAR:?message}``, ``set -u`` with an unset variable, assigning to a readonly
    variable, arithmetic errors: a script (Runme's cell) exits with status 1 there; our
    interactive session drops just that command, runs the rest, and the cell's status is
    its last command's.  Only the session's own messages count: ``bash: NAME: ...``
    without a line number (a child ``bash -c`` adds ``line N:``, and its failure already
    failed its command); a free-form ``${NAME:?message}`` counts when the cell has one.
    """
    prefix = os.path.basename(shell).encode() + b": "
    if prefix not in raw:
        return None
    for match in _SESSION_ERROR.finditer(raw):
        if match.group("shell") != prefix[:-2]:
            continue
        what, message = match.group("what"), match.group("message")
        if _LINE_PREFIX.match(what):
            continue  # `bash: line 1: ...`: a child `bash -c`, whose failure is its own
        if message == b"readonly variable" and not errexit:
            continue  # a script without `set -e` goes on after this one
        if (
            message in _EXPANSION_ERRORS
            or b'(error token is "' in message
            or (
                _IDENTIFIER.fullmatch(what) is not None
                and what not in _BASH_BUILTINS
                and message not in _COMMAND_ERRORS
                and (b"${" + what + b":?" in source or b"${" + what + b"?" in source)
            )
        ):
            return match.group(0).decode("utf-8", "replace")
    return None


def failed_command(cell_dir: str, seq: int) -> Tuple[str, Tuple[int, ...]]:
    """What the ERR trap recorded for cell ``seq``: the command errexit stopped at, and
    ``PIPESTATUS`` as that command left it (one status per command of its pipeline)."""
    try:
        with open(os.path.join(cell_dir, "failed"), "rb") as f:
            recorded, _, rest = f.read().partition(b"\n")
    except OSError:
        return "", ()
    if recorded != str(seq).encode():
        return "", ()
    statuses, _, command = rest.partition(b"\n")
    try:
        pipe_status = tuple(int(word) for word in statuses.split())
    except ValueError:
        pipe_status = ()
    return command.decode("utf-8", "surrogateescape"), pipe_status


def cell_result(
    cell: CellReader, path: str, shell: str, cell_dir: str, notes: List[str], duration: float
) -> Tuple[Result, bool]:
    """The Result of a cell whose END line arrived, and whether xtrace is off in the shell
    now (the next call to the protocol's helper then needs no redirection)."""
    fields = cell.fields or [b"", b"", b""]
    try:
        status: Optional[int] = int(fields[0])
    except ValueError:
        status = None
    flags = fields[1].decode("ascii", "replace")
    raw = script_output(cell.chunks, cell_dir.encode("utf-8", "surrogateescape"))
    incomplete = is_incomplete(raw, path, shell)
    if incomplete:
        notes.append(
            "The cell is incomplete: an unterminated quote, heredoc, brace or compound "
            "command left the shell waiting for more input (see the shell's message)."
        )
        status = None
    if "e" in flags:
        notes.append(
            "The cell turned on `set -e`; it was switched off again so that a later "
            "failing command does not end the session."
        )
    fatal = None
    if cell.sourced and status is not None:  # failed already or not: the note explains
        fatal = fatal_expansion_error(raw, cell.source, cell.errexit, shell)
    if fatal is not None:
        status = status or 1
        notes.append(
            f"bash reported `{fatal}`: in a script (and in Runme) that error ends the cell "
            "with status 1. The session's interactive bash only skipped that command and "
            "went on with the next one, so the cell fails here as it would there."
        )
    failed = ""
    pipe_status: Tuple[int, ...] = ()
    if status and cell.errexit:
        failed, pipe_status = failed_command(cell_dir, cell.seq)
    result = Result(
        output=raw.decode("utf-8", "surrogateescape"),
        status=status,
        duration=duration,
        incomplete=incomplete,
        note=" ".join(n for n in notes if n),
        failed_command=failed,
        pipe_status=pipe_status,
    )
    return result, "x" not in flags
