"""Text notebooks inside Markdown: MyST ``{code-cell}`` and Quarto ``{python}`` fences, kernels.

The Markdown parser asks ``parse_fence`` about each fence; a text-notebook cell comes back with
its language, its options (MyST ``:key: value`` lines or a ``---`` YAML block, Quarto ``#|``
lines) and its source without those option lines, plus how many lines were removed, so that
source lines stay exact. ``runbook_attributes`` turns the options into the parser's own
attribute keys. ``kernel_from_frontmatter`` reads the kernel a Jupytext/MyST/Quarto file names.
Imports nothing from pytest and no Jupyter package.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = [
    "FenceCell",
    "KernelRef",
    "TextNotebookError",
    "kernel_from_frontmatter",
    "parse_fence",
    "quarto_options",
    "runbook_attributes",
]

_MYST = re.compile(r"^\{code-cell\}(?:\s+(\S+))?\s*(.*)$")
_QUARTO = re.compile(r"^\{([A-Za-z][\w+-]*)(?:[\s,]+(.*))?\}\s*$")
_MYST_OPTION = re.compile(r"^:([\w-]+):(?:\s+(.*))?$")
# Quarto's option comment per language family: "#|" (Python, R, Julia, shells), "//|" (JS,
# C-like), "--|" (SQL, Lua, Haskell).
_QUARTO_OPTION = re.compile(r"^(#\||//\||--\|)\s?(.*)$")
_IGNORE_OUTPUT_TAGS = frozenset({"nbval-ignore-output", "runbook-ignore-output"})
_SKIP_TAGS = frozenset({"skip", "nbval-skip", "skip-execution"})


class TextNotebookError(ValueError):
    """Options that are not valid YAML; ``line`` is 0-based within the fence's content."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class FenceCell:
    """A MyST or Quarto code cell found in a fence."""

    flavour: str  # "myst" or "quarto"
    language: str  # lowercased; "" when a MyST cell names none (the kernel's language)
    options: Dict[str, Any]
    source: str  # the content without the option lines
    option_lines: int  # content lines removed from the top (source line 0 = content line this)


@dataclass(frozen=True)
class KernelRef:
    """The kernel a file's frontmatter names."""

    name: str
    language: Optional[str] = None
    key: str = "kernel"  # the frontmatter key it came from, for errors that point at it


def _yaml(text: str, first_line: int) -> Dict[str, Any]:
    import yaml

    try:
        value = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # An unexpected end is reported one line past the text: keep it on the last option.
        offset = min(mark.line if mark is not None else 0, max(text.count("\n") - 1, 0))
        problem = getattr(exc, "problem", None) or str(exc)
        raise TextNotebookError(
            first_line + offset, f"cell options are not valid YAML: {problem}"
        ) from None
    if not isinstance(value, dict):
        raise TextNotebookError(first_line, "cell options must be 'key: value' pairs")
    return {str(key): val for key, val in value.items()}


def _myst_options(lines: List[str]) -> Tuple[Dict[str, Any], int]:
    if lines and lines[0].strip() == "---":
        for end in range(1, len(lines)):
            if lines[end].strip() == "---":
                return _yaml("".join(line + "\n" for line in lines[1:end]), 1), end + 1
        raise TextNotebookError(0, "the cell's '---' options block is never closed with '---'")
    count = 0
    yaml_lines: List[str] = []
    for line in lines:
        match = _MYST_OPTION.match(line.strip())
        if match is None:
            break
        yaml_lines.append(f"{match.group(1)}: {match.group(2) or ''}")
        count += 1
    options = _yaml("".join(line + "\n" for line in yaml_lines), 0) if yaml_lines else {}
    # MyST reads "one blank line after the options" as their end, not as source.
    if count and count < len(lines) and not lines[count].strip():
        count += 1
    return options, count


def quarto_options(lines: List[str]) -> Tuple[Dict[str, Any], int]:
    """Options from ``#| key: value`` lines at the top of a cell, and how many there were."""
    yaml_lines: List[str] = []
    for line in lines:
        match = _QUARTO_OPTION.match(line)
        if match is None:
            break
        yaml_lines.append(match.group(2))
    return (_yaml("".join(line + "\n" for line in yaml_lines), 0) if yaml_lines else {}), len(
        yaml_lines
    )


def parse_fence(info: str, content: str) -> Optional[FenceCell]:
    """A MyST or Quarto cell for this fence's info string and content, else None."""
    info = info.strip()
    if not info.startswith("{"):
        return None
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the content's final newline ends the last line, it is not one
    myst = _MYST.match(info)
    if myst is not None:
        options, removed = _myst_options(lines)
        flavour, language = "myst", (myst.group(1) or "").lower()
    else:
        quarto = _QUARTO.match(info)
        if quarto is None:
            return None  # {.python} (a Pandoc class), {=html} (raw output): not cells
        options, removed = quarto_options(lines)
        flavour, language = "quarto", quarto.group(1).lower()
    source = "".join(line + "\n" for line in lines[removed:])
    return FenceCell(flavour, language, options, source, removed)


def _tags(value: Any) -> Tuple[str, ...]:
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, (list, tuple)):
        return tuple(str(t) for t in value)
    return ()


def runbook_attributes(cell: FenceCell) -> Dict[str, Any]:
    """The cell's options as the parser's attribute keys: ``name``, ``skip``, ``exit``, ...

    MyST ``:name:`` and Quarto ``label`` name the cell; tags ``skip`` and Quarto
    ``eval: false`` skip it; tag ``raises-exception`` and Quarto ``error: true`` allow an
    error (``exit=any``, as nbclient); ``timeout`` carries over; tags that ignore output give
    ``ignore-output``. Display options (``echo``, ``hide-input``, ...) mean nothing to a test.
    """
    options = cell.options
    attributes: Dict[str, Any] = {}
    name = options.get("name") if cell.flavour == "myst" else options.get("label")
    if name is not None and str(name):
        attributes["name"] = str(name)
    tags = _tags(options.get("tags"))
    if any(tag in _SKIP_TAGS for tag in tags):
        attributes["skip"] = True
    if options.get("eval") is False:
        attributes["skip"] = "eval: false"
    if "raises-exception" in tags or options.get("error") is True:
        attributes["exit"] = "any"
    if any(tag in _IGNORE_OUTPUT_TAGS for tag in tags):
        attributes["ignore-output"] = True
    if "timeout" in options:
        attributes["timeout"] = options["timeout"]
    return attributes


def kernel_from_frontmatter(meta: Mapping[str, Any]) -> Optional[KernelRef]:
    """The kernel named by ``kernel:``, MyST ``kernelspec:``, Jupytext ``jupyter: kernelspec:``
    or Quarto ``jupyter: NAME``; None when the frontmatter names none."""
    own = meta.get("kernel")
    if isinstance(own, str) and own:
        return KernelRef(own, None, "kernel")
    spec = meta.get("kernelspec")
    key = "kernelspec"
    jupyter = meta.get("jupyter")
    if not isinstance(spec, Mapping) and isinstance(jupyter, Mapping):
        spec, key = jupyter.get("kernelspec"), "jupyter"
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str) and spec["name"]:
        language = spec.get("language")
        return KernelRef(spec["name"], language.lower() if isinstance(language, str) else None, key)
    if isinstance(jupyter, str) and jupyter:
        return KernelRef(jupyter, None, "jupyter")
    return None
