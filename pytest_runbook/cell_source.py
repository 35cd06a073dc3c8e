"""What a cell's source becomes before a session runs it, as Runme would run it.

An interpreter shell cell (``interpreter=`` or frontmatter ``shell:``) runs under errexit,
as Runme runs every shell cell; with ``promptEnv: yes``, an ``export A=x`` placeholder keeps
the value the run already gives ``A``. No pytest here.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from typing import Mapping, Optional

from .languages import Language
from .model import Cell

_ERREXIT = {"bash": "set -e -o pipefail", "zsh": "set -e -o pipefail", "ksh": "set -e -o pipefail"}
_POSIX_SHELLS = {"sh", "dash", "ash", "busybox"}
_EXPORT_START = re.compile(r"\s*export\s+")
# One word of an export: NAME, or NAME=VALUE with a literal value (no $, `, \: a placeholder).
_EXPORT_WORD = re.compile(
    r"""([A-Za-z_][A-Za-z0-9_]*)(=(?:"[^"$`\\]*"|'[^']*'|[^\s"'$`\\;&|]*))?(?=[\s;&|]|$)"""
)


def prepared_source(cell: Cell, row: Language, given: Optional[Mapping[str, str]]) -> str:
    """The source to run for ``cell`` (whole, not command by command); ``given``: the
    environment the run gives the file, when the cell's promptEnv is yes."""
    source = cell.source
    if given is not None and not row.interpreter and not row.piecewise:
        source = "\n".join(_keep_given(line, given) for line in source.split("\n"))
    if row.interpreter and cell.interpreter:
        shell = cell.interpreter[0].rsplit("/", 1)[-1]
        # Runme runs shell cells under errexit, whatever the shell; on the first line, so
        # the shell's "line N" messages still count the cell's own lines.
        if shell in _ERREXIT:
            source = f"{_ERREXIT[shell]}; {source}"
        elif shell in _POSIX_SHELLS:
            source = f"set -e; {source}"
    return source


def _keep_given(line: str, given: Mapping[str, str]) -> str:
    """``export A=x B=y; ...`` with ``A=x`` turned into ``A`` when the run gives A a value.

    Only the words of the line's leading ``export``; a value that is computed (``$``,
    backquotes) is not a placeholder and stays.
    """
    start = _EXPORT_START.match(line)
    if start is None:
        return line
    out = [line[: start.end()]]
    pos = start.end()
    while True:
        word = _EXPORT_WORD.match(line, pos)
        if word is None or word.end() == pos:
            break
        given_value = word.group(2) is not None and word.group(1) in given
        out.append(word.group(1) if given_value else word.group(0))  # keeps the run's value
        pos = word.end()
        gap = pos
        while gap < len(line) and line[gap] in " \t":
            gap += 1
        out.append(line[pos:gap])
        if gap == pos:
            break
        pos = gap
    out.append(line[pos:])
    return "".join(out)
