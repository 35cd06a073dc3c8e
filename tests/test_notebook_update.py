"""``notebook.write_outputs`` on its own: which outputs it replaces, and the file's layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

nbformat = pytest.importorskip("nbformat", reason="the jupyter extra (nbformat) is not installed")

from pytest_runbook.notebook import write_outputs  # noqa: E402

v4 = nbformat.v4
FRESH = [{"output_type": "stream", "name": "stdout", "text": "b\n"}]


def notebook() -> Dict[str, Any]:
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell(
            "print('a')", execution_count=1, outputs=[v4.new_output("stream", text="a\n")]
        ),
        v4.new_code_cell("x", execution_count=2, outputs=[]),
    ]
    raw: Dict[str, Any] = json.loads(nbformat.writes(nb))
    return raw


def test_json_on_one_line_is_spliced_in_its_own_layout(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    original = json.dumps(notebook(), sort_keys=True, separators=(",", ":"))
    path.write_text(original, encoding="utf-8")
    assert write_outputs(str(path), {0: FRESH})
    assert path.read_text(encoding="utf-8") == original.replace('"a\\n"]', '"b\\n"]', 1)


def test_an_output_that_still_matches_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    raw = notebook()
    raw["cells"][0]["outputs"][0]["text"] = ["[..]\n"]
    original = json.dumps(raw, indent=1, sort_keys=True)
    path.write_text(original, encoding="utf-8")
    assert not write_outputs(str(path), {0: FRESH})
    assert path.read_text(encoding="utf-8") == original


def test_a_layout_it_cannot_follow_is_written_whole_by_nbformat(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    raw = notebook()
    path.write_text(json.dumps(raw, indent="\t", sort_keys=True), encoding="utf-8")
    assert write_outputs(str(path), {1: FRESH})
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["cells"][1]["outputs"] == [
        {"name": "stdout", "output_type": "stream", "text": ["b\n"]}
    ]
    assert written["cells"][0] == raw["cells"][0]
    assert path.read_text(encoding="utf-8") == nbformat.writes(
        nbformat.reads(json.dumps(written), 4)
    )
