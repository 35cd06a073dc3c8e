"""``.ipynb`` notebooks -> Document, and update mode's way back: fresh outputs into the file.

Each code cell is a cell of kind ``kernel:NAME`` (NAME from the notebook's kernelspec, so the
languages table runs the file's cells in one kernel of that name); its stored outputs (streams
and ``text/plain`` results) are its expected output, read with ``output_text``, the same
function that turns a kernel's live outputs into ``Result.output``, so a notebook saved by
Jupyter matches a fresh run.
Cells carry their index in the notebook (``Cell.notebook_index``); their ``line`` and
``source_line`` point into the JSON text where Jupyter's layout allows, for reports and IDEs.

nbformat (the ``jupyter`` extra) is imported inside the functions: ``output_text`` is pure and
the kernel session imports it without needing nbformat.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .defaults import Defaults
from .document.names import NameCounter, generate
from .errors import RunbookError
from .languages import canonical_language
from .model import Block, Cell, CellOptions, Document, ExitSpec, Expected, FileOptions

__all__ = ["NotebookUnavailable", "output_text", "read_notebook", "write_outputs"]

DEFAULT_KERNEL = "python3"
_SKIP_TAGS = frozenset({"skip", "nbval-skip", "skip-execution"})
_IGNORE_OUTPUT_TAGS = frozenset({"nbval-ignore-output", "runbook-ignore-output"})
_RAISES_TAGS = frozenset({"raises-exception"})
_CELL_TYPE = re.compile(r'^\s*"cell_type":\s*"')
_SOURCE = re.compile(r'^\s*"source":\s*(\[)?')
_INSTALL_HINT = "pip install 'pytest-runbook[jupyter]'"
_DEFAULTS = Defaults()


class NotebookUnavailable(RunbookError):
    """nbformat is not installed: the collector reports it like any bad input."""


def _text(value: Any) -> str:
    # nbformat joins multi-line strings on read; raw dicts may still hold lists of lines.
    return "".join(value) if isinstance(value, list) else str(value)


def output_text(outputs: Iterable[Mapping[str, Any]]) -> str:
    """What a cell's outputs read as: stream text, and each result's ``text/plain`` on its own
    lines (as nbval compares them). Errors, images, HTML and widgets are left out."""
    parts: List[str] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(_text(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            plain = (output.get("data") or {}).get("text/plain")
            if plain is None:
                continue
            plain = _text(plain)
            if parts and not parts[-1].endswith("\n"):
                parts.append("\n")
            parts.append(plain if plain.endswith("\n") else plain + "\n")
    return "".join(parts)


def _nbformat(path: str) -> Any:
    try:
        import nbformat
    except ImportError:
        raise NotebookUnavailable(
            path,
            None,
            "running a .ipynb notebook needs nbformat and jupyter_client, which are not installed",
            _INSTALL_HINT,
        ) from None
    return nbformat


def _cell_lines(text: str, count: int) -> List[Tuple[int, int]]:
    """(cell line, first source line) per cell in Jupyter's JSON layout; zeros otherwise."""
    lines = text.split("\n")
    starts = [n for n, line in enumerate(lines) if _CELL_TYPE.match(line)]
    if len(starts) != count:
        return [(0, 0)] * count
    found: List[Tuple[int, int]] = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(lines)
        source_line = start
        for at in range(start, end):
            match = _SOURCE.match(lines[at])
            if match is not None:
                source_line = (
                    at + 1 if match.group(1) and not lines[at].rstrip().endswith("]") else at
                )
                break
        found.append((start, source_line))
    return found


def _tags(metadata: Mapping[str, Any]) -> Tuple[str, ...]:
    tags = metadata.get("tags") or ()
    return tuple(str(tag) for tag in tags) if isinstance(tags, (list, tuple)) else ()


def _quarto(source: str) -> Dict[str, Any]:
    if not source.startswith(("#|", "//|", "--|")):
        return {}
    from .textnotebooks import TextNotebookError, quarto_options

    try:
        return quarto_options(source.split("\n"))[0]
    except TextNotebookError:
        return {}  # a comment that merely looks like options; the cell still runs


def read_notebook(path: str, defaults: Defaults = _DEFAULTS) -> Document:
    """Read an ``.ipynb`` file: one ``kernel:NAME`` cell per code cell; bad JSON is a RunbookError.

    ``Document.meta`` holds ``{"kernel": NAME}`` (from ``metadata.kernelspec.name``, else
    ``python3``), the way a Markdown file's frontmatter names its kernel.
    """
    nbformat = _nbformat(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        notebook = nbformat.reads(text, as_version=4)
    except (UnicodeDecodeError, ValueError) as exc:
        # nbformat raises NotJSONError / ValidationError, both ValueErrors; its JSON error
        # names no line, which json's own does (a merge conflict, a truncated save).
        line, problem = None, f"not a readable Jupyter notebook: {exc}"
        if not isinstance(exc, UnicodeDecodeError):
            import json

            try:
                json.loads(text)
            except json.JSONDecodeError as bad:
                line = bad.lineno - 1
                problem = (
                    f"not a readable Jupyter notebook: not valid JSON: {bad.msg} "
                    f"(column {bad.colno})"
                )
            except ValueError:
                pass
        raise RunbookError(
            path,
            line,
            problem,
            "open and save it in Jupyter, or leave it out of the collected paths",
        ) from None
    meta = notebook.get("metadata") or {}
    spec = meta.get("kernelspec") or {}
    kernel = str(spec.get("name") or DEFAULT_KERNEL)
    language = canonical_language(
        str(
            spec.get("language") or (meta.get("language_info") or {}).get("name") or "python"
        ).lower()
    )
    options = FileOptions(
        shell=(defaults.shell,),
        timeout=defaults.timeout,
        on_failure=defaults.on_failure,
        kernel=kernel,
        kernel_language=language,
    )
    names = NameCounter()
    positions = _cell_lines(text, len(notebook.cells))
    cells: List[Cell] = []
    for index, raw in enumerate(notebook.cells):
        if raw.get("cell_type") != "code":
            continue
        cells.append(
            _cell(raw, index, len(cells), positions[index], kernel, language, options, names)
        )
    return Document(
        path=path,
        text=text,
        newline="\n",
        meta={"kernel": kernel},
        options=options,
        cells=tuple(cells),
    )


def _cell(
    raw: Mapping[str, Any],
    index: int,
    position: int,
    lines: Tuple[int, int],
    kernel: str,
    language: str,
    file_options: FileOptions,
    names: NameCounter,
) -> Cell:
    source = _text(raw.get("source", ""))
    metadata = raw.get("metadata") or {}
    tags = _tags(metadata)
    quarto = _quarto(source)
    explicit = metadata.get("name") or quarto.get("label")
    base = str(explicit) if explicit else generate(source.split("\n"))
    if not explicit and not any(c.isalpha() for c in base):
        # `10`, `2-` or nothing (a cell of `10 * 3`, of symbols) reads as no name at all.
        base = f"cell-{index + 1}"
    name = names.take(base.replace("::", "-"))
    skip: Optional[str] = None
    if _SKIP_TAGS.intersection(tags):
        skip = "tagged skip"
    elif quarto.get("eval") is False:
        skip = "eval: false"
    exit_spec = ExitSpec("any") if _RAISES_TAGS.intersection(tags) else ExitSpec()
    line, source_line = lines
    expected: Optional[Expected] = None
    outputs = raw.get("outputs") or []
    ran = raw.get("execution_count") is not None or bool(outputs)
    compared = not _IGNORE_OUTPUT_TAGS.intersection(tags)
    # A placeholder block: update mode rewrites notebook cells by index, not by lines; a cell
    # that never ran gets one too, so that --runbook-update=new fills in its outputs.
    block = Block(line, line, line, "", "") if compared else None
    if ran and block is not None:
        text = output_text(outputs)
        expected = Expected(
            lines=tuple(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"))
            if text
            else (),
            block=block,
        )
    return Cell(
        index=position,
        name=name,
        generated_name=not explicit,
        kind=f"kernel:{kernel}",
        language=language,
        source=source,
        line=line,
        source_line=source_line,
        interpreter=None,
        options=CellOptions(timeout=file_options.timeout, exit=exit_spec, skip=skip),
        expected=expected,
        block=block,
        attributes=dict(metadata),
        notebook_index=index,
    )


def write_outputs(
    path: str,
    updates: Mapping[int, Sequence[Mapping[str, Any]]],
    substitutions: Optional[Mapping[str, str]] = None,
) -> bool:
    """Write fresh outputs into the code cells at these notebook indices; True when written.

    Only outputs that no longer match are replaced: a stored output whose text still matches
    its fresh counterpart (wildcards and placeholders, with ``substitutions``) is kept as
    written, and so is everything else in the file, byte for byte: the new outputs are
    spliced into the JSON text in the file's own layout. A file whose JSON cannot be laid
    out so is written whole by nbformat instead (metadata and other cells kept). An
    execute_result takes the cell's stored execution count. Written atomically.
    """
    nbformat = _nbformat(path)
    text = Path(path).read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    if notebook.get("nbformat") != 4:
        raise RunbookError(
            path,
            None,
            f"update mode writes nbformat 4 notebooks; this one is version {notebook.nbformat}",
            "open and save it in a current Jupyter to upgrade it",
        )
    merged: Dict[int, List[Tuple[Optional[int], Any]]] = {}
    for index, outputs in updates.items():
        cell = notebook.cells[index]
        if cell.get("cell_type") != "code":
            raise ValueError(f"cell {index} of {path} is not a code cell")
        count = cell.get("execution_count")
        fresh = [_output_node(nbformat, output, count) for output in outputs]
        stored = list(cell.get("outputs", []))
        plan = _merge_outputs(stored, fresh, substitutions or {})
        if [k for k, _ in plan] != list(range(len(stored))):
            merged[index] = plan
    if not merged:
        return False
    new_text = _spliced(nbformat, text, merged)
    if new_text is None:
        for index, plan in merged.items():
            notebook.cells[index]["outputs"] = [node for _, node in plan]
        new_text = nbformat.writes(notebook, version=nbformat.NO_CONVERT)
        if text.endswith("\n") and not new_text.endswith("\n"):
            new_text += "\n"
    _write_atomically(path, new_text)
    return True


def _kind(output: Mapping[str, Any]) -> Tuple[str, str]:
    return str(output.get("output_type", "")), str(output.get("name", ""))


def _merge_outputs(
    stored: List[Any], fresh: List[Any], substitutions: Mapping[str, str]
) -> List[Tuple[Optional[int], Any]]:
    """The cell's new outputs: (index of the stored output kept as written, it) where a stored
    output of the same kind still matches its fresh counterpart, else (None, fresh output)."""
    from difflib import SequenceMatcher

    from .matching import check

    plan: List[Tuple[Optional[int], Any]] = [(None, node) for node in fresh]
    pairs = SequenceMatcher(None, [_kind(o) for o in stored], [_kind(o) for o in fresh], False)
    for block in pairs.get_matching_blocks():
        for offset in range(block.size):
            old, new = block.a + offset, block.b + offset
            expected = output_text([stored[old]])
            lines = expected[:-1].split("\n") if expected.endswith("\n") else expected.split("\n")
            if (
                check(
                    lines if expected else [],
                    output_text([fresh[new]]),
                    substitutions=substitutions,
                )
                is None
            ):
                plan[new] = (old, stored[old])
    return plan


# -- splicing outputs into the notebook's own JSON text ---------------------------------------


def _spliced(
    nbformat: Any, text: str, merged: Mapping[int, List[Tuple[Optional[int], Any]]]
) -> Optional[str]:
    """``text`` with the merged outputs of these cells in place, everything else as it was;
    None when the JSON's layout cannot be followed (the caller writes with nbformat)."""
    import json

    try:
        spans = _outputs_spans(text, set(merged))
        unit = _indent_unit(text)
    except (ValueError, IndexError):
        return None
    if spans is None or unit is None or set(spans) != set(merged):
        return None
    pieces: List[str] = []
    at = 0
    for index in sorted(merged):
        (start, end), elements, key_indent = spans[index]
        pieces += [
            text[at:start],
            _array_text(nbformat, text, start, end, elements, merged[index], key_indent, unit),
        ]
        at = end
    pieces.append(text[at:])
    new_text = "".join(pieces)
    try:  # the splice must have changed exactly those outputs
        before, after = json.loads(text), json.loads(new_text)
    except ValueError:
        return None
    for index, plan in merged.items():
        wanted = [_joined(_split(nbformat, node)) for _, node in plan]
        if [_joined(o) for o in after["cells"][index].pop("outputs")] != wanted:
            return None
        before["cells"][index].pop("outputs")
    return new_text if before == after else None


def _array_text(
    nbformat: Any,
    text: str,
    start: int,
    end: int,
    elements: List[Tuple[int, int]],
    plan: List[Tuple[Optional[int], Any]],
    key_indent: str,
    unit: str,
) -> str:
    """The outputs array: kept outputs as written, fresh ones in the file's layout."""
    import json

    if not plan:
        return "[]"
    if elements:
        lead = text[start + 1 : elements[0][0]]
        tail = text[elements[-1][1] : end - 1]
        between = text[elements[0][1] : elements[1][0]] if len(elements) > 1 else "," + lead
    else:
        lead = ("\n" + key_indent + unit) if unit else ""
        tail = ("\n" + key_indent) if unit else ""
        between = "," + lead
    indent = lead.rsplit("\n", 1)[-1] if "\n" in lead else ""
    pieces = []
    for kept, node in plan:
        if kept is not None:
            start_of, end_of = elements[kept]
            pieces.append(text[start_of:end_of])
            continue
        dumped = json.dumps(
            _split(nbformat, node),
            indent=len(unit) if unit else None,
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ": ") if unit else (",", ":"),
        )
        pieces.append(dumped.replace("\n", "\n" + indent))
    return "[" + lead + between.join(pieces) + tail + "]"


def _split(nbformat: Any, node: Any) -> Any:
    """An output as nbformat writes it: multi-line text as a list of lines."""
    cell = nbformat.v4.new_code_cell("", outputs=[nbformat.from_dict(dict(node))])
    holder = nbformat.v4.new_notebook(cells=[cell])
    return nbformat.v4.rwbase.split_lines(holder).cells[0].outputs[0]


def _joined(output: Any) -> Any:
    """A JSON output with lists of lines joined, to compare outputs however they were split."""
    if isinstance(output, dict):
        return {key: _joined(value) for key, value in output.items()}
    if isinstance(output, list) and all(isinstance(part, str) for part in output):
        return "".join(output)
    return output


def _indent_unit(text: str) -> Optional[str]:
    """The file's indentation step: the whitespace before the top-level object's first key
    ("" for JSON on one line); None when it is not made of spaces."""
    opening = _skip(text, 0)
    if text[opening] != "{":
        return None
    space = text[opening + 1 : _skip(text, opening + 1)]
    unit = space.rsplit("\n", 1)[-1] if "\n" in space else ""
    return unit if unit.strip(" ") == "" else None


def _members(text: str, at: int) -> Tuple[List[Tuple[str, int, int]], int]:
    """The (key, value start, value end) of the JSON object at ``at``, and its end."""
    import json

    decoder = json.JSONDecoder()
    assert text[at] == "{"
    found: List[Tuple[str, int, int]] = []
    at = _skip(text, at + 1)
    if text[at] == "}":
        return found, at + 1
    while True:
        key, at = decoder.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("not a JSON object")
        start = _skip(text, at + 1)
        _, end = decoder.raw_decode(text, start)
        found.append((str(key), start, end))
        at = _skip(text, end)
        if text[at] == "}":
            return found, at + 1
        if text[at] != ",":
            raise ValueError("not a JSON object")
        at = _skip(text, at + 1)


def _elements(text: str, at: int) -> List[Tuple[int, int]]:
    """The (start, end) of each element of the JSON array at ``at``."""
    import json

    decoder = json.JSONDecoder()
    if text[at] != "[":
        raise ValueError("not a JSON array")
    found: List[Tuple[int, int]] = []
    at = _skip(text, at + 1)
    if text[at] == "]":
        return found
    while True:
        _, end = decoder.raw_decode(text, at)
        found.append((at, end))
        at = _skip(text, end)
        if text[at] == "]":
            return found
        if text[at] != ",":
            raise ValueError("not a JSON array")
        at = _skip(text, at + 1)


def _outputs_spans(
    text: str, wanted: Iterable[int]
) -> Optional[Dict[int, Tuple[Tuple[int, int], List[Tuple[int, int]], str]]]:
    """Per wanted cell: the span of its ``outputs`` array, its elements' spans, and the
    indentation of the ``"outputs"`` key."""
    top, _ = _members(text, _skip(text, 0))
    cells_at = [start for key, start, _ in top if key == "cells"]
    if len(cells_at) != 1:
        return None
    cells = _elements(text, cells_at[0])
    found: Dict[int, Tuple[Tuple[int, int], List[Tuple[int, int]], str]] = {}
    for index in wanted:
        members, _ = _members(text, cells[index][0])
        outputs = [(start, end) for key, start, end in members if key == "outputs"]
        if len(outputs) != 1:
            return None
        start, end = outputs[0]
        line_start = text.rfind("\n", 0, start) + 1
        key_indent = text[line_start : _skip(text, line_start, " \t")]
        found[index] = ((start, end), _elements(text, start), key_indent)
    return found


def _skip(text: str, at: int, space: str = " \t\n\r") -> int:
    """The first position from ``at`` that is not ``space``."""
    while at < len(text) and text[at] in space:
        at += 1
    return at


def _output_node(nbformat: Any, output: Mapping[str, Any], count: Optional[int]) -> Any:
    node = nbformat.from_dict({key: value for key, value in output.items()})
    if node.get("output_type") == "execute_result":
        node["execution_count"] = count if count is not None else node.get("execution_count")
        node.setdefault("metadata", {})
    elif node.get("output_type") == "display_data":
        node.setdefault("metadata", {})
    elif node.get("output_type") == "stream":
        node["text"] = _text(node.get("text", ""))
    return node


def _write_atomically(path: str, text: str) -> None:
    from .rewrite import write_atomically

    write_atomically(path, text)
