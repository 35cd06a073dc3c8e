"""Generated cell names: Runme's, reproduced exactly so pytest ids match ``runme list``.

The algorithm (Runme ``document/block.go`` ``sanitizeName`` and ``internal/shell/format.go``)
has quirks that real runbooks depend on: trailing hyphens (``grpcurl \\`` -> ``grpcurl-``),
a 32-byte cut, and one de-duplication counter per document over every code block. Python
session cells, which Runme does not run that way, get ``python_name`` instead: Runme's rule
reads ``>>> 1 + 1`` as ``1-``, no id a person would type.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence, Set, Tuple

__all__ = ["NameCounter", "generate", "python_name", "sanitize"]

_IDENTIFIER = re.compile(r"[^\W\d]\w*")
_MAX_NAME = 32


def _first_command(lines: Sequence[str]) -> str:
    # Runme first drops leading "$" and trailing blanks from every line, then looks for the
    # first line that still has text before a "#" (comments are cut at the first "#" anywhere,
    # even inside quotes). A block of only comments falls back to its first line.
    normalized = [line.lstrip("$").rstrip() for line in lines]
    for line in normalized:
        code = line.strip().split("#", 1)[0]
        if code:
            return code.rstrip()
    return normalized[0] if normalized else ""


def sanitize(text: str) -> str:
    """Runme's ``sanitizeName``: the text before ``=``, 32 bytes, two words, ``[a-z0-9-]``."""
    cut = text.find("=")
    if cut > 0:
        text = text[:cut]
    # Go slices bytes; a rune cut in half is dropped later anyway (it is not [a-z0-9]).
    text = text.encode("utf-8")[:32].decode("utf-8", "ignore")
    text = " ".join(text.split(" ")[:2])
    out: List[str] = []
    for char in text.lower():
        if char == " " and out:
            out.append("-")
        elif "0" <= char <= "9" or "a" <= char <= "z":
            out.append(char)
    return "".join(out)


def generate(lines: Sequence[str]) -> str:
    """The name Runme gives an unnamed block with these content lines ("" when nothing fits)."""
    return sanitize(_first_command(lines))


def python_name(lines: Sequence[str]) -> str:
    """A readable name for a Python cell or ``>>>`` transcript ("" when nothing fits).

    The first two identifiers of the first statement (prompts and comments ignored), left of
    an assignment's ``=``: ``df.head()`` -> ``df-head``, ``total = sum(xs)`` -> ``total``,
    ``print("hi")`` -> ``print-hi``. Lowercase ``[a-z0-9-]`` as Runme's names are, never
    starting or ending with ``-``; ``1 + 1`` has none, and the caller falls back.
    """
    statement = ""
    for line in lines:
        text = line.strip()
        if text.startswith((">>>", "...")):
            text = text[3:].strip()
        text = text.split("#", 1)[0].strip()
        if text:
            statement = text
            break
    depth = 0
    for index, char in enumerate(statement):
        depth += char in "([{"
        depth -= char in ")]}"
        # An assignment's "=" (also "+="), not a comparison's nor a keyword argument's.
        before, after = statement[index - 1 : index], statement[index + 1 : index + 2]
        if depth == 0 and char == "=" and before not in ("=", "<", ">", "!") and after != "=":
            statement = statement[:index]
            break
    words = _IDENTIFIER.findall(statement)[:2]
    name = "-".join(words).lower().replace("_", "-")
    name = "".join(c for c in name if c == "-" or "a" <= c <= "z" or "0" <= c <= "9")
    name = re.sub("-{2,}", "-", name)[:_MAX_NAME]
    return name.strip("-")


class NameCounter:
    """Runme's per-document de-duplication (``x``, ``x-2``, ``x-3``), made collision-free.

    Runme counts each base name separately, so an explicit ``x-2`` followed by two ``x``
    blocks gives two ``x-2``. Cell names become pytest ids and must be unique, so a result
    that is already taken keeps counting; this never changes a name Runme would make unique.
    """

    def __init__(self) -> None:
        self._counts: Dict[str, int] = {}
        self._taken: Set[str] = set()
        # name -> (0-based line, role) of the block that took it, for "who has this name"
        self._owners: Dict[str, Tuple[int, str]] = {}

    def take(self, base: str, line: int = -1, role: str = "") -> str:
        count = self._counts.get(base, 0) + 1
        name = base if count == 1 else f"{base}-{count}"
        while name in self._taken:
            count += 1
            name = f"{base}-{count}"
        self._counts[base] = count
        self._taken.add(name)
        self._owners[name] = (line, role)
        return name

    def owner(self, name: str) -> Tuple[int, str]:
        """(line, role) of the block that took ``name``: (-1, "") when nobody said."""
        return self._owners.get(name, (-1, ""))
