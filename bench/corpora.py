"""The benchmark corpora, generated in each tool's own syntax.

Every corpus is written under ``ROOT/<corpus>/<tool>/``; each directory gets an empty
``pytest.ini`` so pytest's rootdir is the corpus itself (no project config, no addopts).
``build(name, root, tool)`` returns what to run: paths relative to that directory, and how
many items (pytest) or cells the tool must report, so a run that silently did less fails.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

TOOLS = ("runbook", "pytest", "codeblocks", "pytest-prysk", "prysk", "tesh", "bash")

SEQ_N = 2_000_000  # `seq 1 2000000`: 14,888,896 bytes


@dataclass
class Job:
    cwd: Path
    paths: List[str]
    items: int  # items pytest must report (passed, or collected with --collect-only)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fresh(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _write(root / "pytest.ini", "[pytest]\n")
    return root


# -- one file per tool: cells are (command, expected output lines or None) ------------------


def _markdown_runbook(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = ["# Benchmark\n"]
    for command, expected in cells:
        out.append(f"```sh\n{command}\n```\n")
        if expected is not None:
            out.append("```output\n" + "".join(f"{line}\n" for line in expected) + "```\n")
    return "\n".join(out)


def _markdown_codeblocks(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = ["# Benchmark\n"]
    for command, expected in cells:
        out.append(f"```sh\n{command}\n```\n")
        if expected is not None and "..." not in expected:  # no `...`: left unchecked
            out.append(
                "<!--pytest-codeblocks:expected-output-->\n```\n"
                + "".join(f"{line}\n" for line in expected)
                + "```\n"
            )
    return "\n".join(out)


def _markdown_tesh(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = ["# Benchmark\n"]
    for command, expected in cells:
        lines = "".join(f"{line}\n" for line in expected or [])
        # tesh's 30 s default timeout is shorter than it takes to match 15 MB
        out.append(f'```console tesh-session="bench" tesh-timeout="900"\n$ {command}\n{lines}```\n')
    return "\n".join(out)


def _prysk(cells: List[Tuple[str, List[str] | None]]) -> str:
    out = []
    for command, expected in cells:
        out.append(f"  $ {command}\n")
        out.extend(f"  {line}\n" for line in expected or [])
    return "".join(out)


def _python_tests(count: int, body: str = "pass", header: str = "") -> str:
    return header + "".join(f"def test_{i}():\n    {body}\n\n\n" for i in range(count))


def _bash(cells: List[Tuple[str, List[str] | None]]) -> str:
    return "".join(f"{command}\n" for command, _ in cells)


def _one_file(
    tool: str, root: Path, cells: List[Tuple[str, List[str] | None]], stem: str = "doc"
) -> Tuple[str, int]:
    """Write ``cells`` as one file of ``tool``; return its name and its item count."""
    if tool == "runbook":
        _write(root / f"{stem}.md", _markdown_runbook(cells))
        return f"{stem}.md", len(cells)
    if tool == "codeblocks":
        _write(root / f"{stem}.md", _markdown_codeblocks(cells))
        return f"{stem}.md", len(cells)
    if tool == "tesh":
        _write(root / f"{stem}.md", _markdown_tesh(cells))
        return f"{stem}.md", len(cells)
    if tool in ("prysk", "pytest-prysk"):
        _write(root / f"{stem}.t", _prysk(cells))
        return f"{stem}.t", 1  # pytest-prysk: the whole file is one item
    if tool == "pytest":
        _write(root / f"test_{stem}.py", _python_tests(len(cells)))
        return f"test_{stem}.py", len(cells)
    if tool == "bash":
        _write(root / f"{stem}.sh", _bash(cells))
        return f"{stem}.sh", len(cells)
    raise ValueError(tool)


def _single(cells: List[Tuple[str, List[str] | None]]) -> Callable[[str, Path], Job]:
    def build(tool: str, root: Path) -> Job:
        name, items = _one_file(tool, root, cells)
        return Job(root, [name], items)

    return build


def _many(files: int, cells: List[Tuple[str, List[str] | None]]) -> Callable[[str, Path], Job]:
    def build(tool: str, root: Path) -> Job:
        total = 0
        for number in range(files):
            _, items = _one_file(tool, root / "docs", cells, stem=f"doc{number:04d}")
            total += items
        return Job(root, ["docs"], total)

    return build


def _sleeping(files: int, cells: int, seconds: float) -> Callable[[str, Path], Job]:
    def build(tool: str, root: Path) -> Job:
        if tool == "pytest":
            for number in range(files):
                _write(
                    root / "docs" / f"test_doc{number:04d}.py",
                    _python_tests(cells, f"time.sleep({seconds})", "import time\n\n\n"),
                )
            return Job(root, ["docs"], files * cells)
        return _many(files, [(f"sleep {seconds}", None)] * cells)(tool, root)

    return build


def _realistic_doc(number: int) -> List[Tuple[str, List[str] | None]]:
    return [
        (f"export STEP={number}", None),
        ('echo "step $STEP"', [f"step {number}"]),
        ("ls /", ["..."]),
    ]


BUILDERS: Dict[str, Callable[[int], Callable[[str, Path], Job]]] = {
    # corpus name -> (scale -> builder); scale is 1 normally
    "trivial": lambda _: _single([("true", None)] * 1000),
    "echo": lambda _: _single([(f"echo hello {i}", [f"hello {i}"]) for i in range(200)]),
    "files": lambda _: _many(100, [("true", None)] * 10),
    "big": lambda _: _single([(f"seq 1 {SEQ_N}", ["..."])]),
    "big-baseline": lambda _: _single([("true", None)]),
    "collect": lambda _: lambda tool, root: _many(1000, _realistic_doc(0))(tool, root),
    "sleep": lambda scale: _sleeping(20, 5, 0.1 if scale else 0.02),
}


def build(corpus: str, root: Path, tool: str, scale: int = 1) -> Job:
    """Write ``corpus`` for ``tool`` in ``root/<corpus>/<tool>-<scale>`` (reused if present)."""
    target = root / corpus / f"{tool}-{scale}"
    marker = target / ".complete.json"
    if marker.exists():  # the builders are deterministic: regenerate only when absent
        saved = json.loads(marker.read_text())
        return Job(target, saved["paths"], saved["items"])
    if target.exists():
        shutil.rmtree(target)
    job = BUILDERS[corpus](scale)(tool, _fresh(target))
    if corpus == "big" and tool in ("prysk", "pytest-prysk"):
        # cram/prysk have no `...`: checking the output means writing every line of it.
        _write(
            target / job.paths[0],
            f"  $ seq 1 {SEQ_N}\n" + "".join(f"  {i}\n" for i in range(1, SEQ_N + 1)),
        )
    marker.write_text(json.dumps({"paths": job.paths, "items": job.items}))
    return job
