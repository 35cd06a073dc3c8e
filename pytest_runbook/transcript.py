"""``--runbook-transcript``: the runbook as it ran, each cell followed by what it printed.

A Markdown artifact CI can upload (Runme's "session outputs"): the original document, with an
``output`` block and a status line inserted after every cell that ran. Images a kernel
displayed (PNG, SVG: plots) are saved beside the transcript and linked under their cell, so
the artifact shows them. A notebook's transcript is Markdown too (``NAME.ipynb.md``): its
Markdown cells, then each code cell fenced, with what it printed; JSON would hide all that.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from .document import Cell, Document, split_lines
from .model import Result

_IMAGE_SUFFIXES = {"image/png": "png", "image/svg+xml": "svg"}
_UNSAFE_IN_NAME = re.compile(r"[^\w.-]+")


class Transcript:
    def __init__(self, document: Document) -> None:
        self.document = document
        self._entries: Dict[int, Tuple[Cell, Sequence[Result], float]] = {}
        self.background_log = ""  # what background cells printed, shown after the document
        self._notebook = document.path.lower().endswith(".ipynb") or any(
            cell.notebook_index is not None for cell in document.cells
        )

    def record(self, cell: Cell, results: Sequence[Result], duration: float) -> None:
        self._entries[cell.index] = (cell, list(results), duration)

    def images(self) -> List[Tuple[str, bytes]]:
        """(file name, data) of every image the recorded cells displayed, in document order."""
        return [image for index in sorted(self._entries) for image in self._images_of(index)]

    def _images_of(self, index: int) -> List[Tuple[str, bytes]]:
        cell, results, _ = self._entries[index]
        base = Path(self.document.path).name
        name = _UNSAFE_IN_NAME.sub("-", cell.name)
        displays = [d for r in results for d in r.displays if d[0] in _IMAGE_SUFFIXES]
        return [
            (f"{base}.{name}.{number}.{_IMAGE_SUFFIXES[mime]}", data)
            for number, (mime, data) in enumerate(displays, 1)
        ]

    def _block(self, cell: Cell, prefix: str) -> List[str]:
        """What ``cell`` did: its status line, an output block, links to its images."""
        _, results, duration = self._entries[cell.index]
        output = "".join(_shown(r) for r in results)
        statuses = ", ".join(_status(r) for r in results) or "not run"
        body = output.rstrip("\n").split("\n") if output.strip() else []
        fence = "`" * max(3, _longest_backticks(body) + 1)
        block = [
            prefix.rstrip(),
            f"{prefix}<!-- runbook transcript: {cell.name}: {statuses} in {duration:.2f} s -->",
            f"{prefix}{fence}output",
            *[(prefix + line) if line else prefix.rstrip() for line in body],
            f"{prefix}{fence}",
        ]
        for file_name, _ in self._images_of(cell.index):
            block += [prefix.rstrip(), f"{prefix}![{cell.name}]({file_name})"]
        return block

    def render(self) -> str:
        if self._notebook:
            return self._render_notebook()
        doc = self.document
        lines = [line.rstrip("\r\n") for line in split_lines(doc.text)]
        inserts: List[Tuple[int, List[str]]] = []
        for cell, _, _ in self._entries.values():
            anchor = cell.expected.block if cell.expected is not None else cell.block
            if anchor is None:
                continue
            inserts.append((anchor.content_end + 1, self._block(cell, anchor.prefix)))
        for at, block in sorted(inserts, key=lambda pair: pair[0], reverse=True):
            lines[at:at] = block
        return self._with_background_log(lines)

    def _render_notebook(self) -> str:
        """The notebook as Markdown: its JSON is read again for the Markdown cells."""
        raw: Dict[str, Any] = json.loads(self.document.text)
        by_index = {cell.notebook_index: cell for cell in self.document.cells}
        lines: List[str] = []
        for index, entry in enumerate(raw.get("cells") or []):
            source = _joined(entry.get("source", ""))
            if lines:
                lines.append("")
            if entry.get("cell_type") != "code":
                lines += source.split("\n")
                continue
            cell = by_index.get(index)
            language = cell.language if cell is not None else ""
            fence = "`" * max(3, _longest_backticks(source.split("\n")) + 1)
            lines += [f"{fence}{language}", *source.split("\n"), fence]
            if cell is not None and cell.index in self._entries:
                lines += self._block(cell, "")[1:]
        return self._with_background_log(lines)

    def _with_background_log(self, lines: List[str]) -> str:
        if self.background_log.strip():
            log = self.background_log.rstrip("\n").split("\n")
            fence = "`" * max(3, _longest_backticks(log) + 1)
            lines += ["", "<!-- runbook transcript: background output -->", f"{fence}output"]
            lines += [*log, fence]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        """Write the transcript at ``path`` (a notebook's at ``path`` + ".md"), images beside."""
        if self._notebook:
            path = path.with_name(path.name + ".md")
        path.parent.mkdir(parents=True, exist_ok=True)
        for file_name, data in self.images():
            _replace(path.parent / file_name, data)
        _replace(path, self.render().encode("utf-8", "surrogateescape"))


def _replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _shown(result: Result) -> str:
    """What a terminal would have shown: the output, an example's stderr after it, and the
    traceback of an uncaught exception (Python and kernels keep it apart from the output)."""
    text = result.output + result.stderr
    raised = result.traceback or result.exception
    if raised:
        if text and not text.endswith("\n"):
            text += "\n"
        text += raised if raised.endswith("\n") else raised + "\n"
    return text


def _status(result: Result) -> str:
    if result.timed_out:
        return "timed out"
    if result.waiting_for_input:
        return "waiting for input"
    if result.status is None:
        return "did not finish"
    return f"exit {result.status}"


def _longest_backticks(lines: List[str]) -> int:
    longest = 0
    for line in lines:
        stripped = line.lstrip()
        longest = max(longest, len(stripped) - len(stripped.lstrip("`")))
    return longest
