"""Update mode: edits queued per file, applied once at the end, atomically.

Only the lines of expected output change; every other byte (line endings, fences, list
indentation, blockquote markers, the final newline) is kept. A file that changed on disk
since it was parsed is left alone rather than clobbered.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from .document import Block, Document, split_lines


@dataclass(frozen=True)
class _Edit:
    start: int  # first line replaced (0-based)
    end: int  # exclusive; == start for a pure insertion
    lines: Tuple[str, ...]  # new lines, container prefix included, without line endings
    grow: Tuple[int, ...] = ()  # fence lines whose marker must grow
    fence: str = ""  # the marker being grown
    new_fence: str = ""


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
    return prefix + line if line else prefix.rstrip()


class Rewriter:
    """Collects edits during the run; ``write_all`` applies them at session end."""

    def __init__(self) -> None:
        self._docs: Dict[str, Document] = {}
        self._edits: Dict[str, List[_Edit]] = {}
        self._outputs = 0
        self._written: List[str] = []
        self._skipped: List[str] = []

    def replace(
        self, doc: Document, start: int, end: int, lines: Sequence[str], block: Block
    ) -> None:
        """Replace lines [start, end) of ``doc`` (inside ``block``) with ``lines``."""
        new_fence = _fence_for(lines, block.fence)
        grow: Tuple[int, ...] = ()
        if new_fence != block.fence:
            grow = (block.fence_line, block.content_end)
        edit = _Edit(
            start,
            end,
            tuple(_prefixed(block.prefix, line) for line in lines),
            grow,
            block.fence,
            new_fence,
        )
        self._add(doc, edit)

    def insert_after(self, doc: Document, cell_block: Block, lines: Sequence[str]) -> None:
        """Add a new output block after the cell whose fence is ``cell_block``."""
        fence = _fence_for(lines, "```" if cell_block.fence[0] == "`" else cell_block.fence)
        prefix = cell_block.prefix
        body = [prefix.rstrip(), prefix + fence + "output"]
        body += [_prefixed(prefix, line) for line in lines]
        body.append(prefix + fence)
        at = cell_block.content_end + 1
        self._add(doc, _Edit(at, at, tuple(body)))

    def _add(self, doc: Document, edit: _Edit) -> None:
        self._docs[doc.path] = doc
        self._edits.setdefault(doc.path, []).append(edit)
        self._outputs += 1

    def write_all(self) -> None:
        for path, edits in self._edits.items():
            doc = self._docs[path]
            try:
                current = Path(path).read_bytes().decode("utf-8")
            except OSError:
                self._skipped.append(path)
                continue
            if current.lstrip("\ufeff") != doc.text.lstrip("\ufeff"):
                self._skipped.append(path)  # edited while we ran: never clobber the user's work
                continue
            _write_atomically(path, _apply(current, doc.newline, edits))
            self._written.append(path)
        self._edits.clear()

    def summary_counts(self) -> Dict[str, Union[int, List[str]]]:
        return {"outputs": self._outputs, "files": list(self._written), "skipped": self._skipped}

    def add_counts(self, counts: Dict[str, Union[int, List[str]]]) -> None:
        outputs = counts.get("outputs", 0)
        self._outputs += outputs if isinstance(outputs, int) else 0
        for key, target in (("files", self._written), ("skipped", self._skipped)):
            value = counts.get(key, [])
            if isinstance(value, list):
                target.extend(value)

    def summary_line(self) -> str:
        if not self._outputs and not self._skipped:
            return ""
        files = len(self._written)
        text = (
            f"runbook: {self._outputs} output{'s' if self._outputs != 1 else ''} updated "
            f"in {files} file{'s' if files != 1 else ''}"
        )
        if self._skipped:
            text += f"; {len(self._skipped)} file(s) changed during the run and were not written: "
            text += ", ".join(self._skipped)
        return text

    def written_paths(self) -> List[str]:
        return list(self._written)


def _apply(text: str, newline: str, edits: List[_Edit]) -> str:
    lines = split_lines(text)
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        for fence_line in edit.grow:
            if fence_line < len(lines):
                lines[fence_line] = lines[fence_line].replace(edit.fence, edit.new_fence, 1)
        ending = newline
        if edit.start == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline  # appending after a last line that had no newline
            new = [line + ending for line in edit.lines]
            new[-1] = new[-1][: -len(ending)]
        else:
            new = [line + ending for line in edit.lines]
        lines[edit.start : edit.end] = new
    return "".join(lines)


def _write_atomically(path: str, text: str) -> None:
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
