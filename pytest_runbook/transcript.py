"""``--runbook-transcript``: the runbook as it ran, each cell followed by what it printed.

A Markdown artifact CI can upload (Runme's "session outputs"): the original document, with an
``output`` block and a status line inserted after every cell that ran.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from .document import Cell, Document, split_lines
from .model import Result


class Transcript:
    def __init__(self, document: Document) -> None:
        self.document = document
        self._entries: Dict[int, Tuple[Cell, Sequence[Result], float]] = {}
        self.background_log = ""  # what background cells printed, shown after the document

    def record(self, cell: Cell, results: Sequence[Result], duration: float) -> None:
        self._entries[cell.index] = (cell, list(results), duration)

    def render(self) -> str:
        doc = self.document
        lines = [line.rstrip("\r\n") for line in split_lines(doc.text)]
        inserts: List[Tuple[int, List[str]]] = []
        for cell, results, duration in self._entries.values():
            anchor = cell.expected.block if cell.expected is not None else cell.block
            if anchor is None:
                continue
            prefix = anchor.prefix
            output = "".join(r.output for r in results)
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
            inserts.append((anchor.content_end + 1, block))
        for at, block in sorted(inserts, key=lambda pair: pair[0], reverse=True):
            lines[at:at] = block
        if self.background_log.strip():
            log = self.background_log.rstrip("\n").split("\n")
            fence = "`" * max(3, _longest_backticks(log) + 1)
            lines += ["", "<!-- runbook transcript: background output -->", f"{fence}output"]
            lines += [*log, fence]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(self.render())
        os.replace(tmp, path)


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
