""".ipynb notebooks end to end: collected, run in a real IPython kernel, updated, transcribed.

One notebook per test where possible: each run of pytest starts one kernel (about a second).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

nbformat = pytest.importorskip("nbformat", reason="the jupyter extra (nbformat) is not installed")
pytest.importorskip("jupyter_client", reason="the jupyter extra (jupyter_client) is not installed")
pytest.importorskip("ipykernel", reason="ipykernel (the Python kernel) is not installed")

v4 = nbformat.v4
# The smallest valid PNG: a 1x1 transparent pixel.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def code(
    source: str,
    *outputs: Any,
    count: Optional[int] = None,
    tags: Optional[List[str]] = None,
    **metadata: Any,
) -> Any:
    if tags:
        metadata["tags"] = tags
    return v4.new_code_cell(source, execution_count=count, outputs=list(outputs), metadata=metadata)


def stream(text: str) -> Any:
    return v4.new_output("stream", name="stdout", text=text)


def result(text: str, count: int) -> Any:
    return v4.new_output("execute_result", data={"text/plain": text}, execution_count=count)


def write_notebook(
    pytester: pytest.Pytester, cells: List[Any], kernel: str = "python3", name: str = "nb.ipynb"
) -> Path:
    nb = v4.new_notebook(
        metadata={
            "kernelspec": {"name": kernel, "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "custom": {"kept": [1, 2]},
        }
    )
    nb.cells = cells
    path = pytester.path / name
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return path


def outcomes(run: pytest.RunResult) -> Dict[str, int]:
    found = run.parseoutcomes()
    return {key: found[key] for key in ("passed", "failed", "skipped", "errors") if key in found}


def cells_of(path: Path) -> List[Dict[str, Any]]:
    cells: List[Dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return cells


def test_a_notebook_passes_fails_on_a_changed_output_and_update_mode_rewrites_it(
    pytester: pytest.Pytester,
) -> None:
    path = write_notebook(
        pytester,
        [
            v4.new_markdown_cell("# Numbers"),
            code("x = 40", count=1),
            code("print('hello', x)", stream("hello 40\n"), count=2, name="greet"),
            code("x + 2", result("41", 3), count=3, name="answer"),
            code("print('kept')", stream("kept\n"), count=4),
        ],
    )
    run = pytester.runpytest("nb.ipynb", "-v")
    assert outcomes(run) == {"passed": 3, "failed": 1}
    run.stdout.fnmatch_lines(
        [
            "nb.ipynb::x- PASSED*",
            "nb.ipynb::greet PASSED*",
            "nb.ipynb::answer FAILED*",
            "nb.ipynb::printkept PASSED*",
        ]
    )
    text = run.stdout.str()
    assert "cell 'answer' output differs from the outputs stored in nb.ipynb (cells[3]): " in text
    assert "\n-41\n+42\n" in text
    before = cells_of(path)

    run = pytester.runpytest("nb.ipynb", "--runbook-update")
    assert outcomes(run) == {"passed": 4}
    run.stdout.fnmatch_lines(["runbook: 1 output updated in 1 file", "  nb.ipynb"])
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["metadata"]["custom"] == {"kept": [1, 2]}
    assert after["metadata"]["kernelspec"]["name"] == "python3"
    assert after["cells"][:3] == before[:3] and after["cells"][4] == before[4]
    assert after["cells"][3]["outputs"] == [
        {
            "data": {"text/plain": ["42"]},  # nbformat writes text as a list of lines
            "execution_count": 3,  # the stored count, not the fresh kernel's
            "metadata": {},
            "output_type": "execute_result",
        }
    ]
    assert after["cells"][3]["execution_count"] == 3

    run = pytester.runpytest("nb.ipynb")
    assert outcomes(run) == {"passed": 4}


def test_skip_raises_exception_and_ignore_output_tags(pytester: pytest.Pytester) -> None:
    error = v4.new_output("error", ename="ValueError", evalue="no", traceback=["ValueError: no"])
    path = write_notebook(
        pytester,
        [
            code(
                "raise ValueError('no')", error, count=1, tags=["raises-exception"], name="raises"
            ),
            code(
                "import random\nrandom.random()",
                result("0.5", 2),
                count=2,
                tags=["nbval-ignore-output"],
                name="random",
            ),
            code("print('never')", stream("not this\n"), count=3, tags=["skip"], name="skipped"),
            code("raise KeyError('untagged')", count=4, name="untagged"),
            code("print('fresh')", name="stripped"),  # saved without outputs (nbstripout)
        ],
    )
    original = path.read_bytes()
    run = pytester.runpytest("nb.ipynb", "-v", "-rs", "--runbook-update")
    assert outcomes(run) == {"passed": 3, "failed": 1, "skipped": 1}
    run.stdout.fnmatch_lines(
        [
            "nb.ipynb::raises PASSED*",
            "nb.ipynb::random PASSED*",
            "nb.ipynb::skipped SKIPPED (tagged skip)*",
            "nb.ipynb::untagged FAILED*",
            "nb.ipynb::stripped PASSED*",
            "*KeyError: 'untagged'*",
            "runbook: no outputs needed updating",
        ]
    )
    assert path.read_bytes() == original  # ignored, skipped and failed cells are not written

    before = cells_of(path)
    run = pytester.runpytest("nb.ipynb", "--runbook-update=new")
    run.stdout.fnmatch_lines(["runbook: 1 output updated in 1 file"])
    after = cells_of(path)
    assert after[:4] == before[:4]  # the ignored cell's stale output stays as it was
    assert after[4]["outputs"] == [{"name": "stdout", "output_type": "stream", "text": ["fresh\n"]}]


def test_an_unknown_kernel_is_a_collection_error_naming_it_and_the_fix(
    pytester: pytest.Pytester,
) -> None:
    write_notebook(pytester, [code("print(1)")], kernel="no-such-kernel")
    run = pytester.runpytest("nb.ipynb")
    assert outcomes(run) == {"errors": 1}
    text = run.stdout.str()
    assert "nb.ipynb: no Jupyter kernel named 'no-such-kernel' (installed kernels: " in text
    assert "pip install 'pytest-runbook[jupyter]'" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("blocked", "says"),
    [
        ("nbformat", "running a .ipynb notebook needs nbformat and jupyter_client"),
        ("jupyter_client", "kernel 'python3' needs jupyter_client, which is not installed"),
    ],
)
def test_a_missing_jupyter_extra_is_a_collection_error_naming_the_install_command(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, blocked: str, says: str
) -> None:
    write_notebook(pytester, [code("print(1)")])
    monkeypatch.setitem(sys.modules, blocked, None)  # `import` of it raises ImportError
    run = pytester.runpytest("nb.ipynb")
    assert outcomes(run) == {"errors": 1}
    text = run.stdout.str()
    assert f"nb.ipynb: {says}" in text
    assert "fix: pip install 'pytest-runbook[jupyter]'" in text
    assert "Traceback" not in text


def test_a_cell_that_times_out_fails_and_later_cells_keep_the_state(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nrunbook_timeout = 2\n")
    write_notebook(
        pytester,
        [
            code("x = 'still here'", count=1, name="set"),
            code("import time\ntime.sleep(30)", count=2, name="sleeps"),
            code("print(x)", stream("still here\n"), count=3, name="later"),
        ],
    )
    run = pytester.runpytest("nb.ipynb", "-v")
    assert outcomes(run) == {"passed": 2, "failed": 1}
    run.stdout.fnmatch_lines(
        ["nb.ipynb::set PASSED*", "nb.ipynb::sleeps FAILED*", "nb.ipynb::later PASSED*"]
    )
    assert "cell 'sleeps' timed out after 2" in run.stdout.str()


def test_the_transcript_of_a_notebook_shows_its_outputs_and_links_its_images(
    pytester: pytest.Pytester,
) -> None:
    png = base64.b64encode(PIXEL).decode("ascii")
    write_notebook(
        pytester,
        [
            v4.new_markdown_cell("# A plot"),
            code(
                "from IPython.display import display\n"
                f"display({{'image/png': {png!r}, 'text/plain': '<Figure>'}}, raw=True)\n"
                "display({'image/svg+xml': '<svg/>'}, raw=True)",
                stream("<Figure>\n"),
                count=1,
                name="plot",
            ),
        ],
    )
    run = pytester.runpytest("nb.ipynb", "--runbook-transcript=out")
    assert outcomes(run) == {"passed": 1}
    out = pytester.path / "out"
    assert (out / "nb.ipynb.plot.1.png").read_bytes() == PIXEL
    assert (out / "nb.ipynb.plot.2.svg").read_bytes() == b"<svg/>"
    transcript = (out / "nb.ipynb.md").read_text(encoding="utf-8")
    assert transcript.startswith("# A plot\n\n```python\nfrom IPython.display import display\n")
    assert "<!-- runbook transcript: plot: exit 0 in " in transcript
    assert transcript.endswith(
        "```output\n<Figure>\n```\n\n![plot](nb.ipynb.plot.1.png)\n\n![plot](nb.ipynb.plot.2.svg)\n"
    )
    assert not (out / "nb.ipynb").exists()


def test_a_markdown_file_without_kernel_cells_does_not_import_jupyter_client(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            with open("imported.txt", "w") as handle:
                handle.write(str(sorted(
                    name for name in ("jupyter_client", "nbformat") if name in sys.modules
                )))
        """
    )
    pytester.makefile(".md", doc="```sh\necho hi\n```\n\n```output\nhi\n```\n")
    run = pytester.runpytest_subprocess("doc.md")
    assert outcomes(run) == {"passed": 1}
    assert (pytester.path / "imported.txt").read_text() == "[]"


def test_a_kernel_failure_points_at_the_document_line_that_raised(
    pytester: pytest.Pytester, runbook: Any
) -> None:
    runbook(
        """
        ---
        kernel: python3
        ---
        # Title

        ```python
        def helper(v):
            return 1 / v
        ```

        Some text.

        ```python {name=boom}
        a = 1
        b = 0
        helper(b)
        ```
        """
    )
    run = pytester.runpytest("doc.md")
    assert outcomes(run) == {"passed": 1, "failed": 1}
    # The location line and the marked source line are the statement that raised (line 16),
    # not the fence; IPython's cell-local listing is numbered with the document's lines.
    run.stdout.fnmatch_lines(
        [
            "doc.md:16: cell 'boom' raised ZeroDivisionError: division by zero, exit status 1",
            "",
            " 14 | a = 1",
            " 15 | b = 0",
            ">16 | helper(b)",
            "",
            "-*",
            "ZeroDivisionError * Traceback (most recent call last)",
            "doc.md:16",
            "     14 a = 1",
            "     15 b = 0",
            "---> 16 helper(b)",
            "",
            "doc.md:8, in helper(v)",
            "      7 def helper(v):",
            "----> 8     return 1 / v",
            "",
            "ZeroDivisionError: division by zero",
        ]
    )
    run.stdout.fnmatch_lines(["FAILED doc.md::boom - doc.md:16: cell 'boom' raised*"])


def test_a_notebook_failure_points_at_the_json_line_of_the_statement(
    pytester: pytest.Pytester,
) -> None:
    path = write_notebook(
        pytester,
        [
            v4.new_markdown_cell("# Title"),
            code("a = 1\nb = 0\nb.missing", name="boom"),
            code("x = (1 +\n", name="syntax"),
        ],
    )
    lines = path.read_text(encoding="utf-8").split("\n")
    statement = lines.index('    "b.missing"') + 1
    unfinished = lines.index('    "x = (1 +\\n"') + 1
    run = pytester.runpytest("nb.ipynb")
    assert outcomes(run) == {"failed": 2}
    run.stdout.fnmatch_lines(
        [
            f"nb.ipynb:{statement}: cell 'boom' raised AttributeError: *",
            f">{statement} | b.missing",
            f"nb.ipynb:{statement}",
            f"---> {statement} b.missing",
            f"nb.ipynb:{unfinished}: cell 'syntax' raised SyntaxError: *",
            f">{unfinished} | x = (1 +",
        ]
    )


@pytest.mark.parametrize("indent", [1, 2], ids=["nbformat-layout", "two-space-layout"])
def test_update_mode_rewrites_only_the_outputs_that_differ_and_keeps_the_rest_byte_for_byte(
    pytester: pytest.Pytester, indent: int
) -> None:
    nb = v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "P", "language": "python"}}
    )
    nb.cells = [
        v4.new_markdown_cell("# Update"),
        # A stream with a wildcard and a placeholder that still matches, then a result that
        # changed: only the result is rewritten.
        code(
            "import os, random\nprint('took', random.random())\nprint(os.getcwd())\n6 * 7",
            stream("took [..]\n[CWD]\n"),
            result("41", 1),
            count=1,
            name="mixed",
        ),
        code("print('id', id(0))", stream("id [..]\n"), count=2, name="matches"),
        code("print('new')", stream("old\n"), count=3, name="changed"),
    ]
    # Written as nbformat would, but with this indentation (editors differ) and a trailing
    # newline: the rewrite must keep the file's own layout.
    raw = json.loads(nbformat.writes(nb))
    path = pytester.path / "nb.ipynb"
    original = json.dumps(raw, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(original, encoding="utf-8")
    assert original.count('"41"') == 1 and original.count('"old\\n"') == 1

    run = pytester.runpytest("nb.ipynb", "--runbook-update")
    assert outcomes(run) == {"passed": 3}
    run.stdout.fnmatch_lines(["runbook: 2 outputs updated in 1 file", "  nb.ipynb"])
    # The wildcards stayed; exactly the two stale outputs changed, nothing else in the file.
    assert path.read_text(encoding="utf-8") == original.replace('"41"', '"42"').replace(
        '"old\\n"', '"new\\n"'
    )

    run = pytester.runpytest("nb.ipynb", "--runbook-update")
    assert outcomes(run) == {"passed": 3}
    assert "updated" not in run.stdout.str()
    assert path.read_text(encoding="utf-8") == original.replace('"41"', '"42"').replace(
        '"old\\n"', '"new\\n"'
    )


def test_update_mode_writes_outputs_a_cell_never_had_in_the_files_layout(
    pytester: pytest.Pytester,
) -> None:
    path = write_notebook(
        pytester,
        [code("print('a')\n1 + 1", name="fresh"), code("x = 1", count=2, name="quiet")],
    )
    before = path.read_text(encoding="utf-8")
    run = pytester.runpytest("nb.ipynb", "--runbook-update=new")
    assert outcomes(run) == {"passed": 2}
    after = path.read_text(encoding="utf-8")
    cell = json.loads(after)["cells"][0]
    assert cell["outputs"] == [
        {"name": "stdout", "output_type": "stream", "text": ["a\n"]},
        {
            "data": {"text/plain": ["2"]},
            "execution_count": 1,  # the cell has no stored count: the kernel's
            "metadata": {},
            "output_type": "execute_result",
        },
    ]
    assert json.loads(after)["cells"][1] == json.loads(before)["cells"][1]
    # In nbformat's own layout: what nbformat would write for the same notebook.
    written = nbformat.reads(after, as_version=4)
    assert after == nbformat.writes(written) + "\n"
