"""MyST / Quarto fences and Jupytext / MyST / Quarto kernel frontmatter (pytest-free helpers)."""

from __future__ import annotations

import pytest

from pytest_runbook.textnotebooks import (
    FenceCell,
    KernelRef,
    TextNotebookError,
    kernel_from_frontmatter,
    parse_fence,
    runbook_attributes,
)


def test_myst_colon_options_are_removed_and_counted() -> None:
    cell = parse_fence(
        "{code-cell} python", ":tags: [skip, raises-exception]\n:name: setup\nx = 1\n"
    )
    assert cell == FenceCell(
        "myst", "python", {"tags": ["skip", "raises-exception"], "name": "setup"}, "x = 1\n", 2
    )
    assert runbook_attributes(cell) == {"name": "setup", "skip": True, "exit": "any"}


def test_myst_yaml_block_options() -> None:
    content = "---\ntags: [nbval-ignore-output]\ntimeout: 5\n---\nprint(1)\nprint(2)\n"
    cell = parse_fence("{code-cell} ipython3", content)
    assert cell is not None
    assert (cell.language, cell.source, cell.option_lines) == (
        "ipython3",
        "print(1)\nprint(2)\n",
        4,
    )
    assert runbook_attributes(cell) == {"ignore-output": True, "timeout": 5}


def test_myst_blank_line_after_options_is_part_of_them_and_no_options_is_fine() -> None:
    cell = parse_fence("{code-cell}", ":name: a\n\nx\n")
    assert cell is not None and (cell.language, cell.source, cell.option_lines) == ("", "x\n", 2)
    plain = parse_fence("{code-cell} python", "x = 1\n")
    assert plain is not None and (plain.options, plain.source, plain.option_lines) == (
        {},
        "x = 1\n",
        0,
    )


def test_quarto_hash_pipe_options() -> None:
    content = "#| label: load\n#| eval: false\n#| fig-cap: |\n#|   A caption\nimport os\n"
    cell = parse_fence("{python}", content)
    assert cell is not None
    assert (cell.flavour, cell.language, cell.option_lines) == ("quarto", "python", 4)
    assert cell.options == {"label": "load", "eval": False, "fig-cap": "A caption\n"}
    assert cell.source == "import os\n"
    assert runbook_attributes(cell) == {"name": "load", "skip": "eval: false"}


def test_quarto_other_languages_and_error_option() -> None:
    cell = parse_fence("{r}", "#| error: true\nstop('x')\n")
    assert cell is not None and cell.language == "r"
    assert runbook_attributes(cell) == {"exit": "any"}
    js = parse_fence("{ojs}", "//| label: chart\nx = 1\n")
    assert js is not None and js.options == {"label": "chart"} and js.source == "x = 1\n"


@pytest.mark.parametrize("info", ["python", "{.python}", "{=html}", "", "sh {name=x}"])
def test_other_fences_are_not_text_notebook_cells(info: str) -> None:
    assert parse_fence(info, "x\n") is None


def test_bad_option_yaml_names_the_line() -> None:
    with pytest.raises(TextNotebookError) as info:
        parse_fence("{python}", "#| label: a\n#| tags: [unclosed\nx\n")
    assert info.value.line == 1 and "not valid YAML" in info.value.message
    with pytest.raises(TextNotebookError, match="never closed"):
        parse_fence("{code-cell} python", "---\ntags: [a]\nx = 1\n")
    with pytest.raises(TextNotebookError, match="key: value"):
        parse_fence("{code-cell} python", "---\n- a list\n---\nx\n")


def test_kernel_from_frontmatter() -> None:
    jupytext = {"jupyter": {"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}}}
    assert kernel_from_frontmatter(jupytext) == KernelRef("ir", "r", "jupyter")
    myst = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    assert kernel_from_frontmatter(myst) == KernelRef("python3", None, "kernelspec")
    assert kernel_from_frontmatter({"jupyter": "julia-1.10"}) == KernelRef(
        "julia-1.10", None, "jupyter"
    )
    assert kernel_from_frontmatter({"kernel": "python3", "kernelspec": {"name": "ir"}}) == (
        KernelRef("python3", None, "kernel")
    )
    assert kernel_from_frontmatter({"title": "x"}) is None
    assert kernel_from_frontmatter({"kernelspec": {"display_name": "no name"}}) is None
