"""Frontmatter at the top of a runbook: YAML (``---``), TOML (``+++``) or a bare JSON object.

Frontmatter is not Markdown, so it is cut off before markdown-it sees the text (the parser
blanks those lines to keep line numbers). The three formats are the ones Runme reads.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Dict, List, Optional

import yaml

from .attributes import _YAML_LOADER, Invalid, TextLoader, YamlNull

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on old Pythons only
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

# Values that become strings for the shell. YAML 1.1 would turn `1.10` into 1.1 and `yes`
# into True; Runme's Go YAML decodes them into strings as written, and so do we.
_TEXT_KEYS = ("env", "substitutions")

__all__ = ["Frontmatter", "split_frontmatter"]


class Frontmatter:
    """The parsed mapping, its format and the lines it occupies (0 .. end, exclusive)."""

    def __init__(self, meta: Dict[str, Any], fmt: str, end: int, lines: List[str]) -> None:
        self.meta = meta
        self.format = fmt
        self.end = end
        self._lines = lines

    def line_of(self, key: str) -> int:
        """Best-effort line of ``key`` so a bad value is reported where it is written."""
        pattern = re.compile(r"\s*[\"']?" + re.escape(key) + r"[\"']?\s*[:=]")
        for index, line in enumerate(self._lines[: self.end]):
            if pattern.match(line):
                return index
        return 0


_HINT = {
    "yaml": "fix the YAML between the '---' lines (key: value, one per line)",
    "toml": "fix the TOML between the '+++' lines (key = value)",
    "json": "fix the JSON object at the top of the file",
}


def _mapping(value: Any, fmt: str, line: int) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(
            f"frontmatter must be a mapping of keys to values, not {type(value).__name__}",
            _HINT[fmt],
            line,
        )
    return {str(k): v for k, v in value.items()}


def _keep_text(value: Any, body: str) -> None:
    """Put the as-written text of the ``env`` and ``substitutions`` mappings into ``value``.

    Top level and under ``runbook:``. Only a mapping replaces a mapping, so a wrong shape
    (``env: [a]``) is still reported as typed.
    """
    targets = [value] if isinstance(value, dict) else []
    if targets and isinstance(value.get("runbook"), dict):
        targets.append(value["runbook"])
    if not any(isinstance(t.get(k), dict) for t in targets for k in _TEXT_KEYS):
        return
    try:
        text = yaml.load(body, Loader=TextLoader)
    except (yaml.YAMLError, RecursionError):  # pragma: no cover - the typed load passed
        return
    sources = [text] if isinstance(text, dict) else []
    if sources and isinstance(text.get("runbook"), dict):
        sources.append(text["runbook"])
    for target, source in zip(targets, sources):
        for key in _TEXT_KEYS:
            if isinstance(target.get(key), dict) and isinstance(source.get(key), dict):
                target[key] = {
                    str(k): None if isinstance(v, YamlNull) else v for k, v in source[key].items()
                }


def _closing(lines: List[str], marker: str) -> Optional[int]:
    for index in range(1, len(lines)):
        if lines[index].rstrip() == marker:
            return index
    return None


def _json_end(text: str) -> Optional[int]:
    """Offset just past the object that starts at 0 (Runme's brace counting), or None."""
    level, in_quote, pos = 0, False, 0
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 1
        elif char == '"':
            in_quote = not in_quote
        elif not in_quote and char == "{":
            level += 1
        elif not in_quote and char == "}":
            level -= 1
            if level == 0:
                return pos + 1
        pos += 1
    return None


def split_frontmatter(lines: List[str]) -> Optional[Frontmatter]:
    """Find and parse frontmatter at line 0 of ``lines`` (no line endings); None if absent."""
    if not lines:
        return None
    first = lines[0].rstrip()
    if first in ("---", "+++"):
        fmt = "yaml" if first == "---" else "toml"
        end = _closing(lines, first)
        if end is None:
            return None  # a thematic break, not frontmatter
        body = "".join(line + "\n" for line in lines[1:end])
        if fmt == "yaml":
            try:
                value = yaml.load(body, Loader=_YAML_LOADER)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                line = 1 + mark.line if mark is not None else 0
                raise Invalid(f"invalid YAML frontmatter: {problem}", _HINT[fmt], line) from None
            except RecursionError:
                raise Invalid("frontmatter is nested too deeply", _HINT[fmt], 0) from None
            _keep_text(value, body)
        else:
            try:
                value = tomllib.loads(body)
            except tomllib.TOMLDecodeError as exc:
                found = re.search(r"line (\d+)", str(exc))
                line = int(found.group(1)) if found else end  # "at end of document"
                raise Invalid(f"invalid TOML frontmatter: {exc}", _HINT[fmt], line) from None
            except RecursionError:
                raise Invalid("frontmatter is nested too deeply", _HINT[fmt], 0) from None
        return Frontmatter(_mapping(value, fmt, 0), fmt, end + 1, lines)
    if first.startswith("{"):
        text = "\n".join(lines)
        stop = _json_end(text)
        if stop is None or text[1:stop].lstrip()[:1] not in ('"', "}"):
            return None  # e.g. a Liquid/Jinja tag at the top, not a JSON object
        end = text.count("\n", 0, stop)
        line_end = text.find("\n", stop)
        if text[stop : len(text) if line_end < 0 else line_end].strip():
            return None  # text after the closing brace: not a frontmatter object
        try:
            value = json.loads(text[:stop])
        except (ValueError, RecursionError) as exc:
            line = getattr(exc, "lineno", 1) - 1
            raise Invalid(f"invalid JSON frontmatter: {exc}", _HINT["json"], line) from None
        return Frontmatter(_mapping(value, "json", 0), "json", end + 1, lines)
    return None
