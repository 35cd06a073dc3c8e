"""Update mode: edits queued per file, applied once at the end, atomically.

Only the lines of expected output change; every other byte (line endings, fences, list
indentation, blockquote markers, the final newline, a byte order mark) is kept. A file that
changed on disk since it was parsed is left alone rather than clobbered. In an ``.ipynb``
the code cells' outputs are replaced instead, through nbformat (``notebook.write_outputs``).

Two rules keep a second run quiet: the written lines are turned back into expected lines that
match exactly the actual output (``as_expected`` escapes the few lines the matcher or the
console parser would read differently), and a fence grows when the new content holds a line
that would close it.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .matching import check, normalise

if TYPE_CHECKING:  # the parser is imported only when a runbook is collected
    from .document import Block, Document

_BOM = "\ufeff"
_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")
# Characters a Markdown file cannot carry inside one line: a line break for the parser (\r),
# a NUL (the file would read as binary).
# NUL and CR cannot stand in a Markdown line; bytes that are not UTF-8 (surrogate-escaped)
# cannot be written to a UTF-8 file at all: such lines are written as `(re)` escapes.
_UNWRITABLE = re.compile("[\x00\r\udc80-\udcff]")
_CRAM_STATUS = re.compile(r"\[[0-9]+\]")


def _regex_char(char: str) -> str:
    if char in _REGEX_SPECIAL:
        return "\\" + char
    if (ord(char) < 0x20 and char != "\t") or char == "\x7f":
        return f"\\x{ord(char):02x}"
    if "\udc80" <= char <= "\udcff":  # an undecodable byte, as the session keeps it
        return f"\\u{ord(char):04x}"
    return char


def _as_regex(line: str, keys: Sequence[str]) -> str:
    """``line`` as a ``(re)`` line that matches exactly ``line`` and holds no placeholder key."""
    out: List[str] = []
    pos = 0
    while pos < len(line):
        key = next((k for k in keys if line.startswith(k, pos)), None)
        if key is not None:
            # The first character in \xNN form breaks the key, whatever characters it has.
            out.append(f"\\x{ord(key[0]):02x}" if ord(key[0]) < 0x100 else _regex_char(key[0]))
            out.extend(_regex_char(c) for c in key[1:])
            pos += len(key)
        else:
            out.append(_regex_char(line[pos]))
            pos += 1
    if out and out[0] == ">":
        out[0] = "\\>"  # a console continuation no more
    return "".join(out) + " (re)"


def as_expected(
    lines: Sequence[str], keys: Iterable[str] = (), *, console: bool = False
) -> List[str]:
    """Normalised actual lines as expected lines that match them, and only them, next time.

    Most lines are written as they are. A line the matcher would read as a wildcard (``...``),
    a regex (`` (re)``) or a substitution (``[CWD]``, frontmatter keys), a line holding a
    character a Markdown line cannot hold, and in console blocks a line the parser would read
    as a command, a continuation or an exit status, is written as an escaped ``(re)`` line.
    """
    ordered = sorted((k for k in keys if k), key=lambda k: (-len(k), k))
    result: List[str] = []
    leading = True  # console: "> " lines right after the command would continue it
    for number, line in enumerate(lines):
        escape = (
            line.strip() == "..."
            or line.endswith(" (re)")
            or _UNWRITABLE.search(line) is not None
            or any(k in line for k in ordered)
        )
        if console:
            continuation = line.startswith("> ") or line == ">"
            escape = (
                escape
                or line.startswith("$ ")
                or line == "$"
                or (leading and continuation)
                or (number == len(lines) - 1 and _CRAM_STATUS.fullmatch(line.strip()) is not None)
            )
            leading = leading and continuation
        result.append(_as_regex(line, ordered) if escape else line)
    return result


@dataclass(frozen=True)
class _Edit:
    start: int  # first line replaced (0-based)
    end: int  # exclusive; == start for a pure insertion
    lines: Tuple[str, ...]  # new lines, container prefix included, without line endings
    fence_lines: Tuple[int, ...] = ()  # opening and closing fence lines to grow to ``fence``
    fence: str = ""
    added: bool = False  # a new output block (``--runbook-update=new``), not a rewritten one


def _fence_for(lines: Sequence[str], fence: str) -> str:
    """A fence marker longer than any fence-like run in ``lines`` (CommonMark closes on those)."""
    char = fence[0]
    longest = len(fence) - 1
    for line in lines:
        stripped = line.lstrip(" ")
        run = len(stripped) - len(stripped.lstrip(char))
        if len(line) - len(stripped) <= 3 and run >= 3:
            longest = max(longest, run)
    return char * max(len(fence), longest + 1)


def _prefixed(prefix: str, line: str) -> str:
    if not line:
        return prefix.rstrip()
    if prefix.endswith(">") and line[0] in " \t":
        return prefix + " " + line  # ">" eats one optional space: give it one to eat
    return prefix + line


def _fence_run(line: str, char: str) -> Tuple[int, int]:
    """Where the first run of 3+ ``char`` starts in ``line``, and its length (0 if none).

    On an opening fence line only container syntax (spaces, ``>``, list markers) comes before
    the marker, and none of it is a backtick or a tilde, so the first run is the marker.
    """
    found = re.search(re.escape(char) + "{3,}", line)
    return (found.start(), found.end() - found.start()) if found else (0, 0)


def _is_closing(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened with ``fence`` (a never-closed block has none)."""
    pos, run = _fence_run(line, fence[0])
    return run >= len(fence) and not line[:pos].strip(" \t>") and not line[pos + run :].strip()


class Rewriter:
    """Collects edits during the run; ``write_all`` applies them at session end."""

    def __init__(self) -> None:
        self._docs: Dict[str, Document] = {}
        # One edit per place: an item run twice (reruns) replaces its earlier edit.
        self._edits: Dict[str, Dict[Tuple[int, int], _Edit]] = {}
        self._outputs = 0  # output blocks rewritten
        self._added = 0  # output blocks inserted
        self._written: List[str] = []
        self._skipped: List[str] = []
        # .ipynb files: fresh outputs by notebook cell index, written with nbformat.
        self._notebooks: Dict[str, Dict[int, Sequence[Mapping[str, Any]]]] = {}
        self._notebook_substitutions: Dict[str, Mapping[str, str]] = {}

    def replace(
        self, doc: Document, start: int, end: int, lines: Sequence[str], block: Block
    ) -> None:
        """Replace lines [start, end) of ``doc`` (inside ``block``) with ``lines``."""
        # An indented block (fence "") has no fence to grow.
        new_fence = _fence_for(lines, block.fence) if block.fence else block.fence
        grow: Tuple[int, ...] = ()
        if new_fence != block.fence:
            grow = (block.fence_line, block.content_end)
        edit = _Edit(
            start, end, tuple(_prefixed(block.prefix, line) for line in lines), grow, new_fence
        )
        self._add(doc, edit)

    def insert_after(self, doc: Document, cell_block: Block, lines: Sequence[str]) -> bool:
        """Add a new output block after the cell whose fence is ``cell_block``.

        False (and nothing queued) when the cell's fence is never closed: a block written
        after it would land inside it.
        """
        from .document import split_lines

        text_lines = split_lines(doc.text)
        end = cell_block.content_end
        if end >= len(text_lines) or not _is_closing(text_lines[end], cell_block.fence):
            return False
        fence = _fence_for(lines, "```" if cell_block.fence[0] == "`" else cell_block.fence)
        prefix = cell_block.prefix
        body = [prefix.rstrip(), prefix + fence + "output"]
        body += [_prefixed(prefix, line) for line in lines]
        body.append(prefix + fence)
        self._add(doc, _Edit(end + 1, end + 1, tuple(body), added=True))
        return True

    def notebook_outputs(
        self,
        doc: Document,
        notebook_index: int,
        outputs: Sequence[Mapping[str, Any]],
        substitutions: Optional[Mapping[str, str]] = None,
    ) -> None:
        """Replace the outputs of the notebook's code cell ``notebook_index`` (an .ipynb)
        that no longer match (``substitutions``: the placeholders they may use)."""
        self._docs[doc.path] = doc
        self._notebooks.setdefault(doc.path, {})[notebook_index] = outputs
        if substitutions is not None:
            self._notebook_substitutions[doc.path] = substitutions

    def _add(self, doc: Document, edit: _Edit) -> None:
        self._docs[doc.path] = doc
        self._edits.setdefault(doc.path, {})[(edit.start, edit.end)] = edit

    def unchanged_on_disk(self, doc: Document) -> bool:
        """The file still holds what was parsed: its edits can be written at the end."""
        if doc.path.lower().endswith(".ipynb"):
            try:
                return Path(doc.path).read_text(encoding="utf-8") == doc.text  # as read
            except (OSError, UnicodeDecodeError):
                return False
        try:
            return (
                Path(doc.path).read_bytes().decode("utf-8") == (_BOM if doc.bom else "") + doc.text
            )
        except (OSError, UnicodeDecodeError):
            return False

    def write_all(self) -> None:
        self._write_notebooks()
        for path, edits in self._edits.items():
            doc = self._docs[path]
            if not self.unchanged_on_disk(doc):
                self._skipped.append(path)  # edited while we ran: never clobber the user's work
                continue
            new = _apply(doc.text, doc.newline, list(edits.values()))
            if new != doc.text:
                write_atomically(path, (_BOM if doc.bom else "") + new)
                self._written.append(path)
                added = sum(1 for edit in edits.values() if edit.added)
                self._added += added
                self._outputs += len(edits) - added
        self._edits.clear()

    def _write_notebooks(self) -> None:
        for path, updates in self._notebooks.items():
            if not self.unchanged_on_disk(self._docs[path]):
                self._skipped.append(path)  # edited while we ran: never clobber the user's work
                continue
            from .notebook import write_outputs

            if write_outputs(path, updates, self._notebook_substitutions.get(path)):
                self._written.append(path)
                self._outputs += len(updates)
        self._notebooks.clear()

    def summary_counts(self) -> Dict[str, Union[int, List[str]]]:
        return {
            "outputs": self._outputs,
            "added": self._added,
            "files": list(self._written),
            "skipped": self._skipped,
        }

    def add_counts(self, counts: Dict[str, Union[int, List[str]]]) -> None:
        outputs, added = counts.get("outputs", 0), counts.get("added", 0)
        self._outputs += outputs if isinstance(outputs, int) else 0
        self._added += added if isinstance(added, int) else 0
        for key, target in (("files", self._written), ("skipped", self._skipped)):
            value = counts.get(key, [])
            if isinstance(value, list):
                target.extend(value)

    def summary_line(self, update: Optional[str] = "changed") -> str:
        """E.g. "runbook: 4 outputs updated and 1 added in 1 file"; "" when nothing to say."""
        if not self._outputs and not self._added and not self._skipped:
            return "runbook: no outputs needed updating" if update else ""
        files = len(self._written)
        done = []
        if self._outputs or not self._added:
            done.append(f"{self._outputs} output{'s' if self._outputs != 1 else ''} updated")
        if self._added:
            done.append(f"{self._added} output block{'s' if self._added != 1 else ''} added")
        text = f"runbook: {' and '.join(done)} in {files} file{'s' if files != 1 else ''}"
        if self._skipped:
            text += f"; {len(self._skipped)} file(s) changed during the run and were not written: "
            text += ", ".join(self._skipped)
        return text

    @property
    def skipped(self) -> List[str]:
        """Files with edits that were not written: they changed on disk during the run."""
        return list(self._skipped)

    def written_paths(self) -> List[str]:
        return list(self._written)


def _apply(text: str, newline: str, edits: List[_Edit]) -> str:
    from .document import split_lines

    lines = split_lines(text)
    # Fences first (edits never touch fence lines): each grows once, to the longest need.
    need: Dict[int, str] = {}
    for edit in edits:
        for number in edit.fence_lines:
            if len(edit.fence) > len(need.get(number, "")):
                need[number] = edit.fence
    for number, fence in need.items():
        if number >= len(lines):
            continue
        pos, run = _fence_run(lines[number], fence[0])
        opening = any(number == e.fence_lines[0] for e in edits if e.fence_lines)
        if 3 <= run < len(fence) and (opening or _is_closing(lines[number], fence[0] * 3)):
            lines[number] = lines[number][:pos] + fence + lines[number][pos + run :]
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        ending = _ending(lines[edit.start - 1]) if 0 < edit.start <= len(lines) else ""
        ending = ending or newline
        new = [line + ending for line in edit.lines]
        if edit.start == len(lines) and lines and not _ending(lines[-1]):
            # Appending after a last line without a newline: it gets one, the new last doesn't.
            lines[-1] += ending
            new[-1] = new[-1][: -len(ending)]
        lines[edit.start : edit.end] = new
    return "".join(lines)


def _ending(line: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    if line.endswith(("\n", "\r")):
        return line[-1]
    return ""


def write_atomically(path: str, text: str) -> None:
    """Temp file in the same directory + rename: readers see the old file or the new one."""
    target = Path(path)
    mode = target.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".runbook-tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def expected_for(
    actual: str,
    substitutions: Mapping[str, str],
    *,
    mode: str = "exact",
    ansi_keep: bool = False,
    console: bool = False,
    previous: Sequence[str] = (),
) -> Optional[List[str]]:
    """The lines to write for ``actual``, or None if no written form would match it again.

    With the ``previous`` expected lines, those that still match are kept as written and
    only the stale ones are replaced; the whole output is written when that cannot match.

    The session's own paths (its private temporary directory, the cell's working directory,
    the rootdir) are written as ``[TMP]``, ``[CWD]``, ``[ROOT]``: written literally they would
    differ on the next run or the next machine.
    """

    def matches(candidate: List[str]) -> bool:
        again = check(
            candidate, actual, mode=mode, substitutions=substitutions, ansi_keep=ansi_keep
        )
        return again is None

    if previous:
        # Keep what still matches (wildcards, regexes, `...`); write only the stale lines.
        stale = check(previous, actual, mode=mode, substitutions=substitutions, ansi_keep=ansi_keep)
        merged = stale.merge() if stale is not None else None
        if merged is not None:
            for portable in (True, False):
                candidate = _merged_lines(merged, substitutions, console, portable)
                if matches(candidate):
                    return candidate
    lines = as_expected(normalise(actual, ansi_keep=ansi_keep), substitutions, console=console)
    portable_lines = _placeholders(lines, substitutions)
    for candidate in (portable_lines, lines) if portable_lines != lines else (lines,):
        if matches(candidate):
            return candidate
    return None


def _merged_lines(
    merged: Sequence[Tuple[bool, str]],
    substitutions: Mapping[str, str],
    console: bool,
    portable: bool,
) -> List[str]:
    """Kept expected lines as written; each run of new output lines escaped as a block."""
    out: List[str] = []
    run: List[str] = []

    def flush() -> None:
        if run:
            lines = as_expected(run, substitutions, console=console)
            out.extend(_placeholders(lines, substitutions) if portable else lines)
            run.clear()

    for kept, text in merged:
        if kept:
            flush()
            out.append(text)
        else:
            run.append(text)
    flush()
    return out


_PORTABLE = ("[TMP]", "[CWD]", "[ROOT]")


def _placeholders(lines: List[str], substitutions: Mapping[str, str]) -> List[str]:
    pairs = sorted(
        ((str(v), k) for k, v in substitutions.items() if k in _PORTABLE and v and len(str(v)) > 1),
        key=lambda pair: (-len(pair[0]), _PORTABLE.index(pair[1])),
    )
    if not pairs:
        return lines
    keys: Dict[str, str] = {}
    for value, key in pairs:
        keys.setdefault(value, key)  # the same path twice: [CWD] before [ROOT]
    found = re.compile("|".join(re.escape(value) for value, _ in pairs))
    # Escaped lines (written as regexes) stay as they are.
    return [
        line if line.endswith(" (re)") else found.sub(lambda m: keys[m.group()], line)
        for line in lines
    ]
