"""Expected vs actual output as blocks: where each expected line lands, and the diff if none.

Imports nothing from pytest, so it is unit-tested (and property-tested) on its own. What one
expected line means (wildcards, regex lines, substitutions) and how actual output is
normalised live in ``patterns``; this module places the compiled lines against the output.

Matching works line by line and never builds one regex over the whole output: the expected
block is split on ``...`` lines into segments of consecutive lines, the first segment is anchored
at the start of the output, the last at the end, and the ones in between are searched for
leftmost-first. That is exact for ``...`` (a segment placed as early as possible leaves the most
room for the ones after it) and keeps 100,000-line outputs well under a second.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import bisect
import difflib
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

from .patterns import (
    DOTS,
    GLOB,
    RE_SUFFIX,
    ExpectedLine,
    Substituter,
    compile_block,
    normalise,
    normalise_line,
    show,
    split_on_dots,
)


@dataclass(frozen=True)
class Mismatch:
    """Why expected and actual output differ."""

    expected: Tuple[str, ...]  # expected lines as written
    actual: Tuple[str, ...]  # normalised actual lines
    reason: str  # one sentence: which expected line could not be matched, and why
    # Extras with defaults so the three-field constructor keeps working. ``diff`` needs the mode
    # and substitutions to re-run the alignment; ``line`` lets a report point at the Markdown
    # line (0-based index into ``expected``; None when the only problem is extra output).
    mode: str = "exact"
    substitutions: Tuple[Tuple[str, str], ...] = ()
    line: Optional[int] = None

    def diff(self, expected_label: str = "expected", actual_label: str = "actual") -> str:
        """A unified diff; lines matched by a wildcard are shown as context, as written."""
        lines = compile_block(self.expected, Substituter(dict(self.substitutions)))
        actual = list(self.actual)
        if self.mode == "contains":
            ops = _align_contains(lines, actual)
        else:
            ops = _align_exact(lines, actual)
        return _render(ops, lines, actual, expected_label, actual_label)

    def merge(self) -> Optional[List[Tuple[bool, str]]]:
        """The expected block with its stale lines replaced by the actual ones, as the diff
        aligns them: ``(True, expected line as written)`` where a line (a wildcard, a regex,
        ``...``) still matched, ``(False, actual line)`` for output nothing matched.

        What update mode writes instead of the whole output, so wildcards that still hold
        survive, as ``cram -i`` keeps them. For ``contains`` the block stays a selection: each
        expected line no output line matched is replaced by the most similar output line in
        its place (between the lines matched before and after it), or dropped when there is
        no output line there.
        """
        lines = compile_block(self.expected, Substituter(dict(self.substitutions)))
        actual = list(self.actual)
        if self.mode == "contains":
            return _merge_contains(_align_contains(lines, actual), lines, actual)
        merged: List[Tuple[bool, str]] = []
        for tag, i, j, count in _align_exact(lines, actual):
            if tag == "=":
                merged.extend((True, lines[i + k].text) for k in range(count))
            elif tag == ".":
                merged.append((True, lines[i].text))
            elif tag == "+":
                merged.extend((False, actual[j + k]) for k in range(count))
        return merged


def check(
    expected: Sequence[str],
    actual: str,
    *,
    mode: str = "exact",
    substitutions: Optional[Mapping[str, str]] = None,
    ansi_keep: bool = False,
) -> Optional[Mismatch]:
    """None when ``actual`` satisfies ``expected``, else a Mismatch."""
    if mode not in ("exact", "contains"):
        raise ValueError(f"unknown match mode {mode!r}: use 'exact' or 'contains'")
    subst = Substituter(substitutions)
    lines = compile_block(expected, subst)
    if all(line.dots for line in lines) and (lines or mode == "contains"):
        return None  # matches anything; skipping normalisation keeps 15 MB checks free
    if mode == "exact" and _quick_match(lines, actual, ansi_keep):
        return None
    actual_lines = normalise(actual, ansi_keep=ansi_keep)
    if mode == "contains":
        failure = _check_contains(lines, actual_lines)
    else:
        failure = _check_exact(lines, actual_lines)
    if failure is None:
        return None
    reason, index = failure
    return Mismatch(
        expected=tuple(expected),
        actual=tuple(actual_lines),
        reason=reason,
        mode=mode,
        substitutions=subst.pairs,
        line=index,
    )


# --- matching -------------------------------------------------------------------------------

_Failure = Tuple[str, Optional[int]]  # reason, 0-based expected index


def _segment_at(
    segment: List[ExpectedLine], actual: List[str], start: int, hi: Optional[int] = None
) -> int:
    """How many leading lines of ``segment`` match ``actual[start:hi]`` from its start."""
    limit = len(actual) if hi is None else hi
    count = 0
    for line in segment:
        pos = start + count
        if pos >= limit or not line.match(actual[pos]):
            break
        count += 1
    return count


def _find_segment(segment: List[ExpectedLine], actual: List[str], lo: int, hi: int) -> int:
    """Leftmost start in [lo, hi - len(segment)] where the whole segment matches, or -1."""
    first = segment[0].match
    size = len(segment)
    for start in range(lo, hi - size + 1):
        if first(actual[start]) and (size == 1 or _segment_at(segment, actual, start) == size):
            return start
    return -1


def _find_line(line: ExpectedLine, actual: List[str], lo: int, hi: int) -> int:
    match = line.match
    for j in range(lo, hi):
        if match(actual[j]):
            return j
    return -1


def _where(lo: int, hi: int, n: int) -> str:
    if lo and hi < n:
        return f" between output lines {lo} and {hi + 1}"
    if lo:
        return f" after output line {lo}"
    if hi < n:
        return f" before output line {hi + 1}"
    return ""


def _line_failure(line: ExpectedLine, actual: List[str], pos: int) -> _Failure:
    if pos >= len(actual):
        what = f"has no output line to match: output ended after {len(actual)} lines"
        return f"{line.describe()} {what}{line.note()}", line.index
    got = f"output line {pos + 1} {show(actual[pos])}"
    return f"{line.describe()} does not match {got}{line.note()}", line.index


def _check_exact(lines: List[ExpectedLine], actual: List[str]) -> Optional[_Failure]:
    n = len(actual)
    if not any(line.dots for line in lines):
        for line, got in zip(lines, actual):
            if not line.match(got):
                return _line_failure(line, actual, line.index)
        if n > len(lines):
            extra = n - len(lines)
            where = f"output line {len(lines) + 1} {show(actual[len(lines)])}"
            return f"output has {extra} more lines than expected, from {where}", None
        if n < len(lines):
            line = lines[n]
            return (
                f"expected {len(lines)} lines, output ended after {n}: "
                f"{line.describe()} is missing{line.note()}",
                line.index,
            )
        return None

    segments = split_on_dots(lines)
    lo, hi = 0, n
    if not lines[0].dots:
        head = segments.pop(0)
        matched = _segment_at(head, actual, 0)
        if matched < len(head):
            return _line_failure(head[matched], actual, matched)
        lo = len(head)
    tail: List[ExpectedLine] = []
    tail_ok = True
    if not lines[-1].dots and segments:
        tail = segments.pop()
        start = n - len(tail)
        tail_ok = start >= lo and _segment_at(tail, actual, start) == len(tail)
        # A failed tail must not shrink the search window, or a middle segment sitting in
        # the last lines would be blamed instead of the tail.
        hi = start if tail_ok else n
    for segment in segments:
        start = _find_segment(segment, actual, lo, hi)
        if start < 0:
            return _segment_failure(segment, actual, lo, hi)
        lo = start + len(segment)
    if tail_ok:
        return None
    start = n - len(tail)
    if start < lo:
        first = tail[0]
        if len(tail) == 1:
            return f"{first.describe()} matched no output line{_where(lo, n, n)}", first.index
        return (
            f"{first.describe()} starts the last {len(tail)} expected lines, but only "
            f"{n - lo} output lines remain after output line {lo}",
            first.index,
        )
    matched = _segment_at(tail, actual, start)
    line, pos = tail[matched], start + matched
    return (
        f"{line.describe()} does not match output line {pos + 1} {show(actual[pos])} "
        f"(the lines after '...' must match the end of the output){line.note()}",
        line.index,
    )


def _segment_failure(segment: List[ExpectedLine], actual: List[str], lo: int, hi: int) -> _Failure:
    """Name the first expected line that the best partial placement of ``segment`` misses."""
    best, best_start = 0, lo
    first = segment[0].match
    for start in range(lo, hi):
        if first(actual[start]):
            count = _segment_at(segment, actual, start, hi)
            if count > best:
                best, best_start = count, start
    if best == 0:
        line = segment[0]
        where = _where(lo, hi, len(actual))
        return f"{line.describe()} matched no output line{where}{line.note()}", line.index
    line, pos = segment[best], best_start + best
    if pos >= hi:
        return (
            f"{line.describe()} matched no output line: {segment[0].describe()} matched "
            f"output line {best_start + 1}, but the output ended after line {hi}{line.note()}",
            line.index,
        )
    return (
        f"{line.describe()} does not match output line {pos + 1} {show(actual[pos])}, "
        f"though the lines before it matched from output line {best_start + 1}{line.note()}",
        line.index,
    )


def _check_contains(lines: List[ExpectedLine], actual: List[str]) -> Optional[_Failure]:
    lo = 0
    for line in lines:
        if line.dots:
            continue
        found = _find_line(line, actual, lo, len(actual))
        if found < 0:
            where = f" after output line {lo}" if lo else ""
            earlier = _find_line(line, actual, 0, lo)
            order = ""
            if earlier >= 0:
                order = f" (it matches output line {earlier + 1}, before the previous match)"
            reason = f"{line.describe()} matched no output line{where}{order}{line.note()}"
            return reason, line.index
        lo = found + 1
    return None


# Lines a quick check may skip while looking for the last non-blank line before giving up.
_QUICK_BLANK_LIMIT = 1000


def _quick_match(lines: List[ExpectedLine], text: str, ansi_keep: bool) -> bool:
    """True when ``head ... tail`` matches by looking only at the ends of ``text``.

    Normalising 15 MB costs ~0.2 s; ``first line / ... / last line`` should not pay it.
    False means "don't know": the caller then runs the full check, which also builds the
    reason, so this never needs to be right about failures.
    """
    dots = [i for i, line in enumerate(lines) if line.dots]
    if not dots:
        return False
    first_dots, last_dots = dots[0], dots[-1]
    if not all(line.dots for line in lines[first_dots:last_dots]):
        return False  # a middle segment needs a search over the whole output
    head, tail = lines[:first_dots], lines[last_dots + 1 :]

    head_starts: List[int] = []
    pos = 0
    for line in head:
        if pos > len(text):
            return False
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        if not line.match(normalise_line(text[pos:end], ansi_keep)):
            return False
        head_starts.append(pos)
        pos = end + 1
    head_end = pos

    # Walk back from the end over trailing blank lines, then collect the tail lines.
    wanted = max(len(tail), 1)
    collected: List[str] = []
    starts: List[int] = []
    end = len(text)
    skipped = 0
    while len(collected) < wanted:
        if end < 0:
            break
        start = text.rfind("\n", 0, end) + 1
        line_text = normalise_line(text[start:end], ansi_keep)
        if line_text or collected:
            collected.append(line_text)
            starts.append(start)
        else:
            skipped += 1
            if skipped > _QUICK_BLANK_LIMIT:
                return False
        end = start - 1
    if len(collected) < wanted:
        return False
    if tail:
        if starts[-1] < head_end:
            return False  # head and tail would share output lines
        collected.reverse()
        return all(line.match(got) for line, got in zip(tail, collected))
    # No tail: the head lines must not be trailing blank lines that normalise() drops.
    return not head_starts or starts[0] >= head_starts[-1]


# --- alignment for the diff -----------------------------------------------------------------

# Runs of diff lines, kept as ranges so a 2,000,000-line mismatch costs a few tuples:
#   "=" expected[i:i+count] matched actual[j:j+count]    (context, expected text as written)
#   "." the "..." at expected[i] absorbed actual[j:j+count] (one context line)
#   "-" expected[i:i+count] unmatched
#   "+" actual[j:j+count] unmatched
#   "~" actual[j:j+count] ignored by match=contains       (context, actual text)
_Op = Tuple[str, int, int, int]

# Cells of the LCS table used to diff a region with no "..." in it; beyond this, plain -/+.
_LCS_BUDGET = 200_000


class _Ops:
    def __init__(self) -> None:
        self.ops: List[_Op] = []

    def add(self, tag: str, i: int, j: int, count: int) -> None:
        if count <= 0 and tag != ".":
            return
        if self.ops and tag != ".":
            ptag, pi, pj, pcount = self.ops[-1]
            # Only the coordinate a tag advances has to be contiguous.
            i_ok = tag not in "=-" or pi + pcount == i
            j_ok = tag not in "=+~" or pj + pcount == j
            if ptag == tag and i_ok and j_ok:
                self.ops[-1] = (tag, pi, pj, pcount + count)
                return
        self.ops.append((tag, i, j, count))


def _diff_region(
    ops: _Ops, lines: List[ExpectedLine], e0: int, e1: int, actual: List[str], a0: int, a1: int
) -> None:
    """Minimal -/+ between expected[e0:e1] and actual[a0:a1] (no "..." inside)."""
    ne, na = e1 - e0, a1 - a0
    if ne == 0 or na == 0 or ne * na > _LCS_BUDGET:
        ops.add("-", e0, a0, ne)
        ops.add("+", e1, a0, na)
        return
    match = [[lines[e0 + i].match(actual[a0 + j]) for j in range(na)] for i in range(ne)]
    # lcs[i][j]: longest common subsequence of expected[e0+i:] and actual[a0+j:].
    lcs = [[0] * (na + 1) for _ in range(ne + 1)]
    for i in range(ne - 1, -1, -1):
        row, below = lcs[i], lcs[i + 1]
        for j in range(na - 1, -1, -1):
            if match[i][j]:
                row[j] = below[j + 1] + 1
            else:
                row[j] = max(below[j], row[j + 1])
    i = j = 0
    while i < ne and j < na:
        if match[i][j] and lcs[i][j] == lcs[i + 1][j + 1] + 1:
            ops.add("=", e0 + i, a0 + j, 1)
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            ops.add("-", e0 + i, a0 + j, 1)  # deletions first, as difflib does
            i += 1
        else:
            ops.add("+", e0 + i, a0 + j, 1)
            j += 1
    ops.add("-", e0 + i, a0 + j, ne - i)
    ops.add("+", e1, a0 + j, na - j)


def _fill_gap(
    ops: _Ops, lines: List[ExpectedLine], e0: int, e1: int, actual: List[str], a0: int, a1: int
) -> None:
    """Render the unmatched stretch between two matched anchors."""
    dots = [i for i in range(e0, e1) if lines[i].dots]
    if not dots:
        _diff_region(ops, lines, e0, e1, actual, a0, a1)
        return
    # Lines before the first "..." take the first actual lines, lines after the last take the
    # last ones, and the first "..." absorbs what is left: what a reader would guess.
    first, last = dots[0], dots[-1]
    n_pre = min(first - e0, a1 - a0)
    n_post = min(e1 - last - 1, a1 - a0 - n_pre)
    _diff_region(ops, lines, e0, first, actual, a0, a0 + n_pre)
    absorbed_from, absorbed_to = a0 + n_pre, a1 - n_post
    for i in range(first, last + 1):
        if lines[i].dots:
            ops.add(".", i, absorbed_from, absorbed_to - absorbed_from)
            absorbed_from = absorbed_to
        else:
            ops.add("-", i, absorbed_from, 1)
    _diff_region(ops, lines, last + 1, e1, actual, a1 - n_post, a1)


def _align_exact(lines: List[ExpectedLine], actual: List[str]) -> List[_Op]:
    """A plausible (not necessarily optimal) alignment, linear apart from bounded LCS gaps."""
    n, m = len(actual), len(lines)
    pairs: List[Tuple[int, int]] = []  # (expected index, actual index), increasing in both
    segments = split_on_dots(lines)
    lo, hi = 0, n
    if segments and m and not lines[0].dots:
        head = segments.pop(0)
        count = _segment_at(head, actual, 0)
        pairs.extend((head[k].index, k) for k in range(count))
        lo = count
        if count < len(head) and not any(line.dots for line in lines):
            segments.insert(0, head[count:])  # match the rest from the end
    tail_pairs: List[Tuple[int, int]] = []
    if segments and not lines[-1].dots:
        tail = segments.pop()
        k = 1
        while (
            k <= len(tail)
            and n - k >= lo
            and (not pairs or tail[-k].index > pairs[-1][0])
            and tail[-k].match(actual[n - k])
        ):
            tail_pairs.append((tail[-k].index, n - k))
            k += 1
        tail_pairs.reverse()
        hi = n - len(tail_pairs)
    for segment in segments:
        start = _find_segment(segment, actual, lo, hi)
        count = len(segment)
        if start < 0:
            best, start = 0, lo
            for j in range(lo, hi):
                got = _segment_at(segment, actual, j, hi)
                if got > best:
                    best, start = got, j
            count = best
        pairs.extend((segment[k].index, start + k) for k in range(count))
        if count:
            lo = start + count
    pairs.extend(tail_pairs)

    ops = _Ops()
    prev_e, prev_a = 0, 0
    for e, a in pairs:
        _fill_gap(ops, lines, prev_e, e, actual, prev_a, a)
        ops.add("=", e, a, 1)
        prev_e, prev_a = e + 1, a + 1
    _fill_gap(ops, lines, prev_e, m, actual, prev_a, n)
    return ops.ops


def _align_contains(lines: List[ExpectedLine], actual: List[str]) -> List[_Op]:
    """Greedy leftmost, as the check is; a missing line is shown just before the next match."""
    ops = _Ops()
    lo = 0
    pending: List[ExpectedLine] = []
    for line in lines:
        if line.dots:
            pending.append(line)
            continue
        found = _find_line(line, actual, lo, len(actual))
        if found < 0:
            pending.append(line)
            continue
        ops.add("~", line.index, lo, found - lo)
        for p in pending:
            ops.add("." if p.dots else "-", p.index, found, 0 if p.dots else 1)
        pending = []
        ops.add("=", line.index, found, 1)
        lo = found + 1
    ops.add("~", len(lines), lo, len(actual) - lo)
    for p in pending:
        ops.add("." if p.dots else "-", p.index, len(actual), 0 if p.dots else 1)
    return ops.ops


_SIMILAR_CANDIDATES = 2000  # output lines compared with one stale line of a contains block


def _merge_contains(
    ops: List[_Op], lines: List[ExpectedLine], actual: List[str]
) -> List[Tuple[bool, str]]:
    merged: List[Tuple[bool, str]] = []
    pending: List[ExpectedLine] = []
    after = 0  # first output line after the last match

    def settle(lo: int, hi: int) -> None:
        for line in pending:
            if line.dots:
                merged.append((True, line.text))
                continue
            best = _most_similar(line.text, actual, lo, hi)
            if best >= 0:
                merged.append((False, actual[best]))
                lo = best + 1
        pending.clear()

    for tag, i, j, count in ops:
        if tag in "-.":
            pending.extend(lines[i + k] for k in range(max(count, 1)))
        elif tag == "=":
            settle(after, j)
            merged.extend((True, lines[i + k].text) for k in range(count))
            after = j + count
    settle(after, len(actual))
    return merged


def _most_similar(text: str, actual: List[str], lo: int, hi: int) -> int:
    """The index of the output line in ``actual[lo:hi]`` most like ``text`` (-1: none)."""
    best, best_ratio = -1, -1.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(text)
    for j in range(lo, min(hi, lo + _SIMILAR_CANDIDATES)):
        matcher.set_seq1(actual[j])
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = j, ratio
    return best


# --- rendering ------------------------------------------------------------------------------

_CONTEXT = 3
_FULL_CONTEXT_UP_TO = 60  # diff lines; below this the whole block is one hunk
_MAX_DIFF_LINES = 2000
_MAX_LINE_CHARS = 2000


def _clip(text: str) -> str:
    if len(text) <= _MAX_LINE_CHARS:
        return text
    return f"{text[:_MAX_LINE_CHARS]}... ({len(text) - _MAX_LINE_CHARS} more characters)"


def _range(start: int, length: int) -> str:
    # difflib's convention: an empty range names the line before it.
    if length == 1:
        return str(start + 1)
    if length == 0:
        return f"{start},0"
    return f"{start + 1},{length}"


def _render(
    ops: List[_Op],
    lines: List[ExpectedLine],
    actual: List[str],
    expected_label: str,
    actual_label: str,
) -> str:
    # Rendered-line index where each op starts, and the expected/actual line offsets there.
    starts: List[int] = []
    offsets: List[Tuple[int, int]] = []
    row = e_off = a_off = 0
    for tag, _i, _j, count in ops:
        starts.append(row)
        offsets.append((e_off, a_off))
        row += 1 if tag == "." else count
        e_off += 1 if tag == "." else count if tag in "=-" else 0
        a_off += count if tag in "=.+~" else 0
    total, totals = row, (e_off, a_off)

    def offset_at(r: int) -> Tuple[int, int]:
        if r >= total:
            return totals
        k = bisect.bisect_right(starts, r) - 1
        tag, _i, _j, _count = ops[k]
        d = r - starts[k]
        e, a = offsets[k]
        return (e + d if tag in "=-" else e, a + d if tag in "=+~" else a)

    def line_at(r: int) -> str:
        k = bisect.bisect_right(starts, r) - 1
        tag, i, j, _count = ops[k]
        d = r - starts[k]
        if tag == "=":
            return " " + _clip(lines[i + d].text)
        if tag == ".":
            return " " + lines[i].text
        if tag == "-":
            return "-" + _clip(lines[i + d].text)
        if tag == "+":
            return "+" + _clip(actual[j + d])
        return " " + _clip(actual[j + d])

    changes = [(starts[k], starts[k] + ops[k][3]) for k in range(len(ops)) if ops[k][0] in "-+"]
    if not changes:
        hunks: List[Tuple[int, int]] = []
    elif total <= _FULL_CONTEXT_UP_TO:
        hunks = [(0, total)]
    else:
        hunks = []
        for first, last in changes:
            lo, hi = max(0, first - _CONTEXT), min(total, last + _CONTEXT)
            if hunks and lo <= hunks[-1][1]:
                hunks[-1] = (hunks[-1][0], hi)
            else:
                hunks.append((lo, hi))

    # Materialise only what survives truncation, so a huge mismatch never is in full.
    hunk_starts: List[int] = []
    headers: List[str] = []
    out_total = 0
    for lo, hi in hunks:
        hunk_starts.append(out_total)
        (e_lo, a_lo), (e_hi, a_hi) = offset_at(lo), offset_at(hi)
        headers.append(f"@@ -{_range(e_lo, e_hi - e_lo)} +{_range(a_lo, a_hi - a_lo)} @@")
        out_total += hi - lo + 1

    def out_line(p: int) -> str:
        h = bisect.bisect_right(hunk_starts, p) - 1
        offset = p - hunk_starts[h]
        return headers[h] if offset == 0 else line_at(hunks[h][0] + offset - 1)

    out = [f"--- {expected_label}", f"+++ {actual_label}"]
    if out_total <= _MAX_DIFF_LINES:
        out.extend(out_line(p) for p in range(out_total))
    else:
        keep = _MAX_DIFF_LINES // 2
        out.extend(out_line(p) for p in range(keep))
        out.append(f"... {out_total - 2 * keep} diff lines omitted ...")
        out.extend(out_line(p) for p in range(out_total - keep, out_total))
    return "\n".join(out)


__all__ = ["DOTS", "GLOB", "RE_SUFFIX", "Mismatch", "check", "normalise"]
