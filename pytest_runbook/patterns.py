"""What expected output means line by line, and what actual output is once normalised.

The pattern language of ``output`` blocks and console transcripts: ``...`` alone on a line,
``[..]`` within a line, a `` (re)`` suffix, substitutions such as ``[CWD]``; and the terminal
normalisation of actual output (CRLF, ANSI escapes, ``\\r`` redraws, trailing blanks). Each
expected line compiles once into a predicate over one actual line; ``matching`` places those
lines against the output as a block. Imports nothing from pytest.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

DOTS = "..."
GLOB = "[..]"
RE_SUFFIX = " (re)"

__all__ = [
    "DOTS",
    "GLOB",
    "RE_SUFFIX",
    "ExpectedLine",
    "Substituter",
    "compile_block",
    "normalise",
    "normalise_line",
    "show",
    "split_on_dots",
]

# --- normalisation --------------------------------------------------------------------------


def normalise(text: str, *, ansi_keep: bool = False) -> List[str]:
    """CRLF -> LF, ANSI escapes removed, trailing spaces and trailing blank lines dropped."""
    # Every step is line-local (no escape sequence pattern crosses a newline), so this equals
    # normalise_line on each line; the bulk paths only exist because 15 MB outputs are common.
    lines = text.split("\n")
    if ansi_keep or not ("\x1b" in text or "\r" in text or "\b" in text):
        lines = [line.rstrip() for line in lines]
    elif "\r" in text or "\b" in text:
        lines = [normalise_line(line, False) for line in lines]
    else:
        lines = [line.rstrip() for line in _ANSI.sub("", text).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# 7-bit sequences only: C1 bytes (0x9b...) are ordinary characters in UTF-8 text. No branch may
# match "\n" or "\r", which keeps stripping line-local and lets \r emulation see every \r.
_ANSI = re.compile(
    r"\x1b[\]PX^_][^\x07\x1b\n\r]*(?:\x07|\x1b\\)?"  # OSC/DCS/SOS/PM/APC up to BEL or ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI (a truncated one too)
    r"|\x1b[ -/]*[0-~]"  # two-byte and nF escapes: ESC ( B, ESC 7, ESC =, ...
    r"|\x1b"  # a stray ESC
)
# What a terminal does with the cursor inside one line: \r, backspace, erase-in-line.
_CURSOR = re.compile(r"(\r|\x08|\x1b\[[0-2]?K)")


def normalise_line(raw: str, ansi_keep: bool) -> str:
    """One line as a terminal would show it (cursor emulation only when escapes are stripped)."""
    if ansi_keep:
        return raw.rstrip()  # keep the raw bytes the user wants to assert on
    if "\r" in raw or "\b" in raw:
        return _emulate_cursor(raw).rstrip()
    if "\x1b" in raw:
        raw = _ANSI.sub("", raw)
    return raw.rstrip()


def _emulate_cursor(raw: str) -> str:
    """Progress bars and spinners redraw with \\r and ESC[K; show their final state."""
    buf = ""
    col = 0
    for token in _CURSOR.split(raw):
        if token == "\r":
            col = 0
        elif token == "\b":
            col = max(0, col - 1)
        elif token.startswith("\x1b"):
            kind = token[2:-1]
            if kind in ("", "0"):
                buf = buf[:col]
            elif kind == "1":
                buf = " " * min(col + 1, len(buf)) + buf[col + 1 :]
            else:
                buf = " " * min(col, len(buf))
        elif token:
            chunk = _ANSI.sub("", token) if "\x1b" in token else token
            if col > len(buf):
                buf += " " * (col - len(buf))
            buf = buf[:col] + chunk + buf[col + len(chunk) :]
            col += len(chunk)
    return buf


# --- expected lines -------------------------------------------------------------------------


class Substituter:
    """Replaces placeholder keys in expected text, longest key first, in a single pass."""

    def __init__(self, substitutions: Optional[Mapping[str, str]]) -> None:
        items = {str(k): "" if v is None else str(v) for k, v in (substitutions or {}).items() if k}
        self.pairs: Tuple[Tuple[str, str], ...] = tuple(
            sorted(items.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        )
        self._map = items
        self._escaped = {k: re.escape(v) for k, v in items.items()}
        # Alternation tries keys in order, so longest-first makes "[TMP]x" beat "[TMP]".
        self._re = re.compile("|".join(re.escape(k) for k, _ in self.pairs)) if items else None

    def literal(self, text: str) -> str:
        if self._re is None:
            return text
        return self._re.sub(lambda m: self._map[m.group()], text)

    def regex(self, pattern: str) -> str:
        if self._re is None:
            return pattern
        return self._re.sub(lambda m: self._escaped[m.group()], pattern)


class ExpectedLine:
    """One expected line, compiled once into a predicate over an actual line."""

    __slots__ = ("dots", "index", "match", "regex_error", "text")

    def __init__(
        self,
        text: str,
        index: int,
        match: Callable[[str], bool],
        dots: bool = False,
        regex_error: Optional[str] = None,
    ) -> None:
        self.text = text
        self.index = index
        self.match = match
        self.dots = dots
        self.regex_error = regex_error

    def describe(self) -> str:
        return f"expected line {self.index + 1} {show(self.text)}"

    def note(self) -> str:
        """What the reason for a miss of this line adds: a likely mistake in writing it."""
        if self.regex_error is not None:
            return f"; its regex is invalid ({self.regex_error}), so it was compared literally"
        if DOTS in self.text and not self.dots and not self.text.endswith(RE_SUFFIX):
            # doctest's ELLIPSIS habit: here "..." is a wildcard only as a line of its own.
            return f"; '{DOTS}' within a line is literal text: '{GLOB}' matches any text there"
        return ""


def _any_line(_: str) -> bool:
    return True


def compile_block(expected: Sequence[str], subst: Substituter) -> List[ExpectedLine]:
    """An expected block's lines, compiled; trailing blank lines dropped, as in the output."""
    texts: List[str] = []
    for item in expected:
        # Defensive: a caller handing over "a\nb" as one line gets two lines, not a silent miss.
        texts.extend(part.rstrip() for part in str(item).split("\n"))
    while texts and not texts[-1]:
        texts.pop()
    return [_compile_line(text, i, subst) for i, text in enumerate(texts)]


def _compile_line(text: str, index: int, subst: Substituter) -> ExpectedLine:
    if text.strip() == DOTS:
        return ExpectedLine(text, index, _any_line, dots=True)
    error: Optional[str] = None
    if text.endswith(RE_SUFFIX):
        try:
            rx = re.compile(subst.regex(text[: -len(RE_SUFFIX)]))
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            error = str(exc)
        else:
            return ExpectedLine(text, index, lambda s: rx.fullmatch(s) is not None)
    if GLOB in text:
        # Split before substituting: a substituted value is literal even if it contains "[..]".
        pieces = [subst.literal(piece) for piece in text.split(GLOB)]
        return ExpectedLine(text, index, _glob_matcher(pieces), regex_error=error)
    literal = subst.literal(text)
    return ExpectedLine(text, index, literal.__eq__, regex_error=error)


def _glob_matcher(pieces: List[str]) -> Callable[[str], bool]:
    """``[..]`` matching, with the output's trailing whitespace given back to the pattern.

    Output lines are right-stripped, so ``hello [..]`` must also accept ``hello`` (printed as
    ``hello `` with an empty variable): a trailing ``[..]`` may have swallowed the space its
    literal text ended with. Each such reading is one more variant of the pattern.
    """
    variants = [pieces]
    current = pieces
    while len(current) > 1 and current[-1] == "":
        kept = current[:]
        while len(kept) > 1 and kept[-1] == "":
            kept.pop()
        stripped = kept[-1].rstrip()
        if stripped == kept[-1]:
            break
        if stripped or len(kept) == 1:
            variants.append([*kept[:-1], stripped])  # now anchored at the end of the line
            break
        current = [*kept[:-1], ""]  # all-blank piece: the glob before it may absorb it too
        variants.append(current)
    matchers = [_glob_variant(variant) for variant in variants]
    if len(matchers) == 1:
        return matchers[0]
    return lambda s: any(m(s) for m in matchers)


def _glob_variant(pieces: List[str]) -> Callable[[str], bool]:
    """Linear-time glob: prefix, suffix, then a leftmost find for each middle piece.

    Leftmost placement is optimal when the only wildcard is "any text", so nothing ever
    backtracks, even for many ``[..]`` on a megabyte-long line.
    """
    if len(pieces) == 1:
        return pieces[0].__eq__
    head, middle, tail = pieces[0], pieces[1:-1], pieces[-1]
    fixed = len(head) + len(tail)

    def match(s: str) -> bool:
        if len(s) < fixed or not s.startswith(head) or not s.endswith(tail):
            return False
        pos, end = len(head), len(s) - len(tail)
        for piece in middle:
            found = s.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    return match


def show(text: str, limit: int = 120) -> str:
    """Quote a line for a reason; repr() only when needed, so regexes keep single backslashes."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    if text.isprintable():
        return f"'{text}'"
    # Undecodable bytes (surrogate-escaped) as the \xNN they were, as the diff shows them.
    shown = repr(text)
    return re.sub(r"\\udc([89a-f][0-9a-f])", r"\\x\1", shown)


def split_on_dots(lines: List[ExpectedLine]) -> List[List[ExpectedLine]]:
    """The runs of consecutive lines between ``...`` lines (the segments ``matching`` places)."""
    segments: List[List[ExpectedLine]] = []
    current: List[ExpectedLine] = []
    for line in lines:
        if line.dots:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(line)
    if current:
        segments.append(current)
    return segments
