"""Markdown text -> Document: the parser package's public face. No pytest import.

``parse`` and ``read`` are all the rest of the plugin calls; the nouns they return live in
``model`` and are re-exported here so ``from pytest_runbook.document import Cell`` works.
Inside: ``markdown`` walks markdown-it's tokens, ``attributes`` reads Runme's attribute
syntaxes and the directive, ``frontmatter`` the file's options, ``console`` transcripts,
``names`` Runme's cell names, ``validate`` collects every problem of a file. Line numbers
are 0-based everywhere (markdown-it's ``token.map``); only reports add 1.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import re
import shlex
from typing import List, Optional, Tuple

from ..defaults import Defaults
from ..errors import RunbookError
from ..model import (
    Answer,
    Block,
    Cell,
    CellOptions,
    Command,
    Document,
    ExitSpec,
    Expected,
    FileOptions,
    Notice,
)
from .markdown import parse_text

__all__ = [
    "Answer",
    "Block",
    "Cell",
    "CellOptions",
    "Command",
    "Defaults",
    "Document",
    "ExitSpec",
    "Expected",
    "FileOptions",
    "Notice",
    "RunbookError",
    "parse",
    "read",
    "split_lines",
]

_DEFAULTS = Defaults()

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str) -> List[str]:
    """Lines with their endings, broken exactly where markdown-it breaks them (not on \\f)."""
    return _LINE.findall(text)


# Byte order marks, longest first (a UTF-32 LE mark starts with the UTF-16 LE one).
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)", "UTF-32"),
    (b"\xff\xfe", "UTF-16 (little-endian)", "UTF-16"),
    (b"\xfe\xff", "UTF-16 (big-endian)", "UTF-16"),
)
# Without a mark, where the NUL bytes of mostly-ASCII text sit in each code unit.
_WIDE_PATTERNS = (
    (4, (1, 2, 3), 0, "UTF-32 (little-endian)", "UTF-32LE"),
    (4, (0, 1, 2), 3, "UTF-32 (big-endian)", "UTF-32BE"),
    (2, (1,), 0, "UTF-16 (little-endian)", "UTF-16LE"),
    (2, (0,), 1, "UTF-16 (big-endian)", "UTF-16BE"),
)


def _wide_encoding(data: bytes) -> Optional[Tuple[str, str]]:
    """(what a person calls it, iconv's name) when ``data`` is UTF-16 or UTF-32 text.

    Editors on Windows save "Unicode" as UTF-16; without this it would read as a binary file.
    The check without a byte order mark wants 90% of the code units in the first 4 KiB to be
    ASCII-shaped, so a binary file with many NULs is not mistaken for text.
    """
    for bom, name, iconv in _WIDE_BOMS:
        if data.startswith(bom):
            return name, iconv
    for size, zeros, text, name, iconv in _WIDE_PATTERNS:
        sample = data[: 4096 - 4096 % size]
        units = len(sample) // size
        if units < 2 or len(data) % size:
            continue
        shaped = sum(
            1
            for start in range(0, units * size, size)
            if sample[start + text] != 0 and all(sample[start + z] == 0 for z in zeros)
        )
        if shaped >= 0.9 * units:
            return name, iconv
    return None


def read(path: str, defaults: Defaults = _DEFAULTS) -> Document:
    """Read and parse ``path``; undecodable or binary files raise RunbookError."""
    with open(path, "rb") as handle:
        data = handle.read()
    wide = _wide_encoding(data)
    if wide is not None:
        name, iconv = wide
        base = shlex.quote(os.path.basename(path))
        raise RunbookError(
            path,
            0,
            f"{name} text, not UTF-8",
            f"convert it: iconv -f {iconv} -t UTF-8 {base} > {base}.utf8 && mv {base}.utf8 {base}",
        )
    nul = data.find(b"\0")
    if nul >= 0:
        raise RunbookError(
            path,
            data.count(b"\n", 0, nul),
            "binary file (it contains a NUL byte), not Markdown text",
            "leave binary files out of runbook_patterns, or rename the file",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunbookError(
            path,
            data.count(b"\n", 0, exc.start),
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            "save the file as UTF-8",
        ) from None
    return parse(text, path, defaults)


def parse(text: str, path: str = "<string>", defaults: Defaults = _DEFAULTS) -> Document:
    """Parse Markdown ``text``; malformed input raises RunbookError (file:line + fix)."""
    bom = text.startswith("\ufeff")
    if bom:
        text = text[1:]
    return parse_text(text, path, defaults, bom)
