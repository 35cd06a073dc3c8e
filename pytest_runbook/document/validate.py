"""Every problem of one file, collected while it is parsed and reported together.

A file with a bad ``timeout=soon`` and a ``tiemout=`` typo two cells later should say both at
once: fixing one problem only to meet the next on the following run is what a user hates most
about a checker. So the parser records each problem where it finds it, carries on with a safe
fallback (the default value, no directive), and raises :class:`InvalidDocument` at the end
when any error was found. Warnings (``Notice``) never stop a file; when errors do, they are
listed with them, since a typo warning often explains an error.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Collection, List, Mapping, Optional, Sequence, Tuple

from ..errors import RunbookError
from ..model import CellOptions, Notice
from .attributes import Invalid

__all__ = ["InvalidDocument", "Problem", "Problems"]

_MARKER_UNSAFE = re.compile(r"[^\w+\-./\[\]]")
# pytest's own marks (a tag named so would act) and the words of -m expressions.
_RESERVED_MARKS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "runbook"}
    | {"and", "or", "not", "true", "false", "none"}
)
# What Runme writes and never reads back as a cell option.
_RESERVED_PREFIXES = ("runme.dev/", "_")


@dataclass(frozen=True)
class Problem:
    """One error: where (0-based line, None for the whole file), what is wrong, the fix."""

    line: Optional[int]
    message: str
    hint: str


class InvalidDocument(RunbookError):
    """A file that cannot run: all its errors, and the warnings found beside them.

    A ``RunbookError`` whose own fields are the first error, so code that reports one error
    keeps working; ``str()`` lists every problem in line order, each ``path:LINE``.
    """

    def __init__(self, path: str, errors: Sequence[Problem], notices: Sequence[Notice]) -> None:
        first = errors[0]
        super().__init__(path, first.line, first.message, first.hint)
        self.errors: Tuple[Problem, ...] = tuple(errors)
        self.notices: Tuple[Notice, ...] = tuple(notices)

    def __str__(self) -> str:
        if len(self.errors) == 1 and not self.notices:
            return super().__str__()
        entries: List[Tuple[int, int, str]] = []
        for error in self.errors:
            text = f"{self._where(error.line)}: {error.message}"
            if error.hint:
                text += f"\n  fix: {error.hint}"
            entries.append((-1 if error.line is None else error.line, 0, text))
        for notice in self.notices:
            entries.append(
                (notice.line, 1, f"{self._where(notice.line)}: warning: {notice.message}")
            )
        count = _plural(len(self.errors), "error")
        if self.notices:
            count += f" and {_plural(len(self.notices), 'warning')}"
        header = f"{self.path}: {count}; nothing in the file runs until the errors are fixed"
        return "\n".join([header, *(text for _, _, text in sorted(entries))])

    def _where(self, line: Optional[int]) -> str:
        return self.path if line is None else f"{self.path}:{line + 1}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Problems:
    """The problems of the file being parsed, in the order they were found."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: List[Problem] = []
        self.notices: List[Notice] = []

    def error(self, line: Optional[int], problem: Invalid, hint: Optional[str] = None) -> None:
        """Record an error; the caller carries on with a fallback value."""
        entry = Problem(line, problem.message, problem.hint if hint is None else hint)
        if entry not in self.errors:  # one bad value can be met twice (cell and output block)
            self.errors.append(entry)

    def notice(self, line: int, message: str) -> None:
        self.notices.append(Notice(line, message))

    def sorted_notices(self) -> Tuple[Notice, ...]:
        return tuple(sorted(self.notices, key=lambda n: n.line))

    def raise_errors(self) -> None:
        """Raise every error found, with the warnings, as one ``InvalidDocument``."""
        if self.errors:
            raise InvalidDocument(self.path, self.errors, self.sorted_notices())

    def unknown_keys(
        self,
        attrs: Mapping[str, Any],
        origins: Mapping[str, int],
        known: Collection[str],
        what: str,
    ) -> None:
        """A typo guard: a warning for each key nothing reads, with the closest known one."""
        for key in attrs:
            if key in known or key == "index" or key.startswith(_RESERVED_PREFIXES):
                continue
            close = difflib.get_close_matches(key, list(known), n=1)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            self.notice(
                origins[key],
                f"unknown {what} '{key}'{guess}; known {what}s: " + ", ".join(sorted(known)),
            )

    def near_miss(self, line: int, key: str, ours: Sequence[str]) -> None:
        """A frontmatter key that is not ours but close to one of ours: almost surely a typo.

        Other tools' keys (title, sidebar_position) are left alone.
        """
        close = difflib.get_close_matches(key, list(ours), n=1, cutoff=0.6)
        if close:
            self.notice(
                line,
                f"frontmatter key {key!r} is not one pytest-runbook reads; "
                f"did you mean {close[0]!r}?",
            )

    def background_without_effect(
        self, options: CellOptions, role: str, origins: Mapping[str, int], fence_line: int
    ) -> None:
        """``ready=`` or ``background=true`` where they change nothing: said, not ignored."""
        if options.ready is not None and not options.background:
            self.notice(
                origins.get("ready", fence_line),
                "ready= has no effect without background=true: the cell runs in the "
                "foreground until it ends; add background=true, or remove ready=",
            )
        elif options.background and role not in ("shell", "script"):
            # Only the shell session starts jobs in the background (languages.py).
            what = "a console transcript" if role == "console" else "a Python or kernel cell"
            self.notice(
                origins.get("background", fence_line),
                f"background=true has no effect on {what}: it runs in the foreground; "
                "start a service from a ```sh cell",
            )

    def marker_names(self, tags: Sequence[str], line: int) -> Tuple[str, ...]:
        """Tags as pytest marker names ``-m`` can select; others are renamed, with a notice.

        pytest's ``-m`` words may hold letters, digits, ``_ - . + / [ ]``; a ``:`` cannot be
        registered as a marker and a space cannot be selected.
        """
        names = []
        for tag in tags:
            name = _MARKER_UNSAFE.sub("_", tag.strip())
            if name.lower() in _RESERVED_MARKS:
                name = f"tag_{name}"  # a `skip` tag must not skip, nor `not` break -m
            if name != tag:
                self.notice(
                    line,
                    f"tag {tag!r} cannot be a pytest marker as written; select it with -m {name!r}",
                )
            if name:
                names.append(name)
        return tuple(dict.fromkeys(names))
