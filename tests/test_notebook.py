"""``.ipynb`` -> Document (names, expected outputs, tags, kernel) and update mode's write-back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

nbformat = pytest.importorskip("nbformat", reason="the jupyter extra (nbformat) is not installed")

from pytest_runbook.errors import RunbookError  # noqa: E402
from pytest_runbook.notebook import output_text, read_notebook, write_outputs  # noqa: E402

v4 = nbformat.v4


def stream(text: str, name: str = "stdout") -> Any:
    return v4.new_output("stream", name=name, text=text)


def result(text: str, count: int) -> Any:
    return v4.new_output("execute_result", data={"text/plain": text}, execution_count=count)


def write_notebook(path: Path) -> Path:
    nb = v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "custom": {"keep": [1, 2]},
        }
    )
    nb.cells = [
        v4.new_markdown_cell("# Title"),
        v4.new_code_cell(
            "x = 41\nprint('hi')\nx + 1",
            execution_count=1,
            outputs=[stream("hi\n"), result("42", 1)],
        ),
        v4.new_code_cell(
            "import time\ntime.time()",
            metadata={"tags": ["nbval-ignore-output"]},
            execution_count=2,
            outputs=[result("1700000000.0", 2)],
        ),
        v4.new_code_cell("raise ValueError('no')", metadata={"tags": ["raises-exception"]}),
        v4.new_code_cell("print('later')", metadata={"tags": ["skip"], "name": "named"}),
        v4.new_code_cell(
            "#| label: quarto-label\nprint('q')", execution_count=3, outputs=[stream("q\n")]
        ),
        v4.new_code_cell("x = 2", execution_count=4, outputs=[]),
        v4.new_code_cell("print('hi')", execution_count=5, outputs=[stream("hi\n")]),
    ]
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return path


def test_code_cells_become_kernel_cells_with_names_outputs_and_tags(tmp_path: Path) -> None:
    doc = read_notebook(str(write_notebook(tmp_path / "nb.ipynb")))
    assert doc.meta == {"kernel": "python3"}
    # Unnamed cells get Runme's generated names, as Markdown cells do ("x = 41" -> "x-").
    assert [c.name for c in doc.cells] == [
        "x-",
        "import-time",
        "raise-valueerrorno",
        "named",
        "quarto-label",
        "x--2",
        "printhi",
    ]
    assert [c.notebook_index for c in doc.cells] == [1, 2, 3, 4, 5, 6, 7]
    assert [c.index for c in doc.cells] == list(range(7))
    assert {c.kind for c in doc.cells} == {"kernel:python3"} and doc.cells[0].language == "python"
    first, ignored, raises, skipped, quarto, silent, _ = doc.cells
    assert first.source == "x = 41\nprint('hi')\nx + 1"
    assert first.expected is not None and first.expected.lines == ("hi", "42")
    assert ignored.expected is None  # nbval-ignore-output
    assert raises.expected is None and str(raises.options.exit) == "any"  # never ran
    assert skipped.options.skip == "tagged skip" and not skipped.generated_name
    assert quarto.expected is not None and quarto.expected.lines == ("q",)
    assert silent.expected is not None and silent.expected.lines == ()  # ran, printed nothing
    # Lines point into Jupyter's JSON: the cell's first source line is the "x = 41" line.
    lines = doc.text.split("\n")
    assert '"x = 41\\n"' in lines[first.source_line]
    assert '"cell_type": "code"' in lines[first.line]


def test_unreadable_notebook_is_a_runbook_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(RunbookError, match="not a readable Jupyter notebook") as info:
        read_notebook(str(path))
    assert info.value.path == str(path)


def test_output_text_puts_results_on_their_own_lines() -> None:
    outputs: List[Dict[str, Any]] = [
        {"output_type": "stream", "name": "stdout", "text": ["a\n", "b"]},
        {"output_type": "execute_result", "data": {"text/plain": "1"}, "execution_count": 1},
        {"output_type": "display_data", "data": {"image/png": "AAAA"}},
        {"output_type": "error", "ename": "E", "evalue": "v", "traceback": []},
    ]
    assert output_text(outputs) == "a\nb\n1\n"


def test_write_outputs_replaces_only_those_outputs(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb")
    before = json.loads(path.read_text(encoding="utf-8"))
    fresh = [
        {"output_type": "stream", "name": "stdout", "text": "hi\n"},
        {"output_type": "execute_result", "data": {"text/plain": "43"}, "execution_count": 9},
    ]
    assert write_outputs(str(path), {1: fresh}) is True
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["cells"][1]["outputs"][1]["data"]["text/plain"] == ["43"]
    assert after["cells"][1]["outputs"][1]["execution_count"] == 1  # the cell's own count
    after["cells"][1]["outputs"] = before["cells"][1]["outputs"]
    assert after == before  # metadata, other cells, nbformat version: all kept
    assert path.read_text(encoding="utf-8").endswith("}\n")
    assert read_notebook(str(path)).cells[0].expected.lines == ("hi", "43")  # type: ignore[union-attr]
    assert not list(tmp_path.glob(".*runbook-tmp"))


def test_write_outputs_is_a_no_op_when_nothing_changed(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb")
    original = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    same = [
        {"output_type": "stream", "name": "stdout", "text": "hi\n"},
        {"output_type": "execute_result", "data": {"text/plain": "42"}, "execution_count": 7},
    ]
    assert write_outputs(str(path), {1: same, 6: []}) is False
    assert path.read_bytes() == original and path.stat().st_mtime_ns == mtime


def test_write_outputs_round_trip_keeps_an_untouched_cell_byte_identical(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb")
    original = path.read_text(encoding="utf-8")
    assert write_outputs(
        str(path), {7: [{"output_type": "stream", "name": "stdout", "text": "x\n"}]}
    )
    assert write_outputs(
        str(path), {7: [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]}
    )
    assert path.read_text(encoding="utf-8") == original
