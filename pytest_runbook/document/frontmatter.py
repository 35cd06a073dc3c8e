"""Frontmatter at the top of a runbook: YAML (``---``), TOML (``+++``) or a bare JSON object.

Frontmatter is not Markdown, so it is cut off before markdown-it sees the text (the parser
blanks those lines to keep line numbers). The three formats are the ones Runme reads.
``file_options`` turns the mapping into the file's ``FileOptions`` over the ini defaults.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..defaults import Defaults
from ..model import FileOptions
from .attributes import (
    Invalid,
    YamlNull,
    parse_bool,
    parse_list,
    parse_reason,
    parse_timeout,
    parse_words,
    text_of,
)
from .validate import Problems

# Values that become strings for the shell. YAML 1.1 would turn `1.10` into 1.1 and `yes`
# into True; Runme's Go YAML decodes them into strings as written, and so do we.
_TEXT_KEYS = ("env", "substitutions")

__all__ = ["FILE_KEYS", "Frontmatter", "file_options", "split_frontmatter"]


class Frontmatter:
    """The parsed mapping, its format and the lines it occupies (0 .. end, exclusive).

    Frontmatter that does not parse still has its lines (``meta`` is empty, ``problem`` says
    what is wrong), so the rest of the file is read as usual and its problems reported too.
    """

    def __init__(
        self,
        meta: Dict[str, Any],
        fmt: str,
        end: int,
        lines: List[str],
        problem: Optional[Invalid] = None,
    ) -> None:
        self.meta = meta
        self.format = fmt
        self.end = end
        self._lines = lines
        self.problem = problem

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
    from . import yamlload

    try:
        text = yamlload.load_as_written(body)
    except (yamlload.YAMLError, RecursionError):  # pragma: no cover - the typed load passed
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
        end = _closing(lines, first)
        if end is None:
            return None  # a thematic break, not frontmatter
    elif first.startswith("{"):
        text = "\n".join(lines)
        stop = _json_end(text)
        if stop is None or text[1:stop].lstrip()[:1] not in ('"', "}"):
            return None  # e.g. a Liquid/Jinja tag at the top, not a JSON object
        end = text.count("\n", 0, stop)
        line_end = text.find("\n", stop)
        if text[stop : len(text) if line_end < 0 else line_end].strip():
            return None  # text after the closing brace: not a frontmatter object
    else:
        return None
    fmt = {"---": "yaml", "+++": "toml"}.get(first, "json")
    try:
        meta = _mapping(_load(fmt, lines, end), fmt, 0)
    except Invalid as problem:
        return Frontmatter({}, fmt, end + 1, lines, problem)
    return Frontmatter(meta, fmt, end + 1, lines)


def _load(fmt: str, lines: List[str], end: int) -> Any:
    """The frontmatter's value; ``end`` is its last line (the closing marker or brace)."""
    if fmt == "json":
        text = "\n".join(lines)
        try:
            return json.loads(text[: _json_end(text)])
        except (ValueError, RecursionError) as exc:
            line = getattr(exc, "lineno", 1) - 1
            raise Invalid(f"invalid JSON frontmatter: {exc}", _HINT["json"], line) from None
    body = "".join(line + "\n" for line in lines[1:end])
    if fmt == "toml":
        if sys.version_info >= (3, 11):  # imported only for TOML frontmatter
            import tomllib
        else:  # pragma: no cover - exercised on old Pythons only
            import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
        try:
            return tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"line (\d+)", str(exc))
            line = int(found.group(1)) if found else end  # "at end of document"
            raise Invalid(f"invalid TOML frontmatter: {exc}", _HINT[fmt], line) from None
        except RecursionError:
            raise Invalid("frontmatter is nested too deeply", _HINT[fmt], 0) from None
    from . import yamlload  # PyYAML only for files that have YAML

    try:
        value = yamlload.load(body)
    except yamlload.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = 1 + mark.line if mark is not None else 0
        raise Invalid(f"invalid YAML frontmatter: {problem}", _HINT[fmt], line) from None
    except RecursionError:
        raise Invalid("frontmatter is nested too deeply", _HINT[fmt], 0) from None
    _keep_text(value, body)
    return value


FILE_KEYS = {
    "shell": "shell",
    "cwd": "cwd",
    "home": "home",
    "env": "env",
    "timeout": "timeout",
    "on-failure": "on_failure",
    "on_failure": "on_failure",
    "substitutions": "substitutions",
    "fixtures": "fixtures",
    "bare-fences": "bare_fences",
    "bare_fences": "bare_fences",
    "skipPrompts": "skip_prompts",
    "skip-prompts": "skip_prompts",
    "skip_prompts": "skip_prompts",
    "tag": "tag",
    "category": "category",
    "python": "python",
    "python-blocks": "python_blocks",
    "python_blocks": "python_blocks",
}
_RUNBOOK_ONLY_KEYS = frozenset({"skip", "enabled"})
# Frontmatter keys of Runme and of documentation sites that merely look like ours.
# ``kernel``, ``kernelspec`` and ``jupyter`` are read by ``_kernel`` (Jupytext, MyST, Quarto).
_OTHER_TOOLS_KEYS = frozenset(
    {"runbook", "runme", "tags", "categories", "kernel", "kernelspec", "jupyter", "jupytext"}
)


def file_options(
    front: Optional[Frontmatter], defaults: Defaults, problems: Problems
) -> FileOptions:
    """The file's options: ini defaults < frontmatter; bad values are recorded in ``problems``."""
    meta: Mapping[str, Any] = front.meta if front is not None else {}
    settings: Dict[str, Tuple[str, Any]] = {}
    line_of = front.line_of if front is not None else (lambda key: 0)
    for key, value in meta.items():
        if key in FILE_KEYS and value is not None:
            settings[FILE_KEYS[key]] = (key, value)
        elif key not in FILE_KEYS and key not in _OTHER_TOOLS_KEYS:
            problems.near_miss(line_of(str(key)), str(key), [*FILE_KEYS, "runbook"])
    enabled, skip = True, None
    runbook = meta.get("runbook")
    try:
        if isinstance(runbook, dict):
            for key, value in runbook.items():
                key = str(key)
                if key == "skip":
                    skip = parse_reason(value, "skipped by 'runbook: skip' in the frontmatter")
                elif key == "enabled":
                    enabled = parse_bool("runbook.enabled", value)
                elif key in FILE_KEYS:
                    if value is not None:
                        settings[FILE_KEYS[key]] = (key, value)
                else:
                    known = sorted(set(FILE_KEYS) | _RUNBOOK_ONLY_KEYS)
                    close = difflib.get_close_matches(key, known, n=1)
                    guess = f" (did you mean '{close[0]}'?)" if close else ""
                    problems.notice(
                        line_of(key),
                        f"unknown frontmatter key 'runbook.{key}'{guess}; known keys: "
                        + ", ".join(known),
                    )
        elif runbook is not None:
            enabled = parse_bool("runbook", runbook)
    except Invalid as problem:
        _frontmatter_error(problems, line_of("runbook"), "runbook", problem)

    values: Dict[str, Any] = {}
    for field_name, (key, value) in settings.items():
        try:
            values[field_name] = _file_value(field_name, key, value)
        except Invalid as problem:
            _frontmatter_error(problems, line_of(key), key, problem)
    env = values.get("env", {})
    for name, text in env.items():
        _unexpanded_reference(problems, line_of(name), name, text, env)
    tags = values.pop("tag", ()) + values.pop("category", ())
    tags = problems.marker_names(tags, line_of("tag" if "tag" in settings else "category"))
    try:
        default_shell = parse_words("shell", defaults.shell)
    except Invalid as problem:
        problems.error(None, problem)
        default_shell = ("bash",)
    python_value = values.get("python")
    if python_value is None and defaults.python:
        try:
            python_value = parse_words("runbook_python", defaults.python)
        except Invalid as problem:
            problems.error(None, problem)
    kernel, kernel_language = _kernel(meta, line_of, problems)
    return FileOptions(
        python=() if python_value in (None, "script") else python_value,
        python_session=python_value != "script",
        python_blocks=values.get("python_blocks", defaults.python_blocks),
        kernel=kernel,
        kernel_language=kernel_language,
        enabled=enabled,
        skip=skip,
        shell=values.get("shell", default_shell),
        cwd=values.get("cwd"),
        env=values.get("env", {}),
        timeout=values.get("timeout", defaults.timeout),
        on_failure=values.get("on_failure", defaults.on_failure),
        substitutions=values.get("substitutions", {}),
        fixtures=values.get("fixtures", ()),
        bare_fences=values.get("bare_fences", defaults.bare_fences),
        skip_prompts=values.get("skip_prompts", False),
        tags=tags,
        shell_line=line_of(settings["shell"][0]) if "shell" in settings else None,
        cwd_line=line_of(settings["cwd"][0]) if "cwd" in settings else None,
        fixtures_line=line_of(settings["fixtures"][0]) if "fixtures" in settings else None,
        home=values.get("home"),
    )


def _kernel(
    meta: Mapping[str, Any], line_of: Callable[[str], int], problems: Problems
) -> Tuple[Optional[str], Optional[str]]:
    """The kernel the frontmatter names (``kernel:``, a Jupytext/MyST ``kernelspec``) and the
    language whose cells it runs: the kernelspec's own, else ``python`` for a ``python*``
    kernel, else what the installed kernel says (which needs the jupyter extra)."""
    if not any(key in meta for key in ("kernel", "kernelspec", "jupyter")):
        return None, None  # the usual case, without importing the text notebooks' module
    from ..textnotebooks import kernel_from_frontmatter

    ref = kernel_from_frontmatter(meta)
    if ref is None:
        return None, None
    if ref.language:
        from ..languages import canonical_language

        return ref.name, canonical_language(ref.language)
    if ref.name.lower().startswith("python"):
        return ref.name, "python"
    from ..sessions.kernel import KernelUnavailable, check_kernel

    try:
        return ref.name, check_kernel(ref.name).lower()
    except KernelUnavailable as error:
        problems.error(line_of(ref.key), Invalid(error.message, error.hint))
        return ref.name, None


def _file_value(field_name: str, key: str, value: Any) -> Any:
    if field_name == "shell":
        return parse_words(key, value)
    if field_name == "python":
        if text_of(value).strip().lower() == "script":
            return "script"
        return parse_words(key, value)
    if field_name == "python_blocks":
        text = text_of(value).strip().lower()
        if text not in ("all", "named"):
            raise Invalid(
                f"{key} must be all or named, not {value!r}",
                f"write {key}: all (every ```python block runs in the file's Python session)",
            )
        return text
    if field_name == "cwd":
        if isinstance(value, (dict, list, bool)):
            raise Invalid(f"cwd must be a directory path, not {value!r}", "write cwd: ../..")
        return str(value)
    if field_name == "home":
        if text_of(value).strip().lower() != "tmp":
            raise Invalid(
                f"home must be tmp (a fresh, empty HOME for the file), not {value!r}",
                "write home: tmp, or leave it out to keep your own HOME",
            )
        return "tmp"
    if field_name in ("env", "substitutions"):
        if not isinstance(value, dict):
            raise Invalid(
                f"{key} must be a mapping of names to strings, not {value!r}",
                f'write {key}: {{NAME: "value"}}',
            )
        out: Dict[str, str] = {}
        for name, item in value.items():
            if isinstance(item, (dict, list)):
                raise Invalid(
                    f"{key} value for {name!r} must be a string, not {item!r}",
                    f'quote it: {name}: "..."',
                )
            out[str(name)] = "" if item is None else text_of(item)
        return out
    if field_name == "timeout":
        return parse_timeout(value, key)
    if field_name in ("on_failure", "bare_fences"):
        choices = ("continue", "stop") if field_name == "on_failure" else ("shell", "skip")
        text = text_of(value).strip().lower()
        if text not in choices:
            raise Invalid(
                f"{key} must be {choices[0]} or {choices[1]}, not {value!r}",
                f"write {key}: {choices[0]}",
            )
        return text
    if field_name == "fixtures":
        return parse_list(key, value)
    if field_name == "skip_prompts":
        return parse_bool(key, value)
    return parse_list(key, value)  # tag, category


_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_]\w*)[^}]*\}|([A-Za-z_]\w*))")


def _unexpanded_reference(
    problems: Problems, line: int, name: str, value: str, env: Mapping[str, str]
) -> None:
    """Warn about ``PATH: $HOME/bin:$PATH``: taken as written, it would break the session.

    Only a reference to a variable that exists (here or in the file's env) counts, so a
    value that merely holds a ``$`` (a password) stays quiet.
    """
    for found in _REFERENCE.finditer(value):
        ref = found.group(1) or found.group(2)
        if ref in os.environ or ref in env:
            problems.notice(
                line,
                f"env {name}: {value!r} is set as written: frontmatter values are not "
                f"expanded, so {found.group(0)} stays literal text; to build on ${ref}, "
                f'export it in a first cell instead: export {name}="{value}"',
            )
            return


def _frontmatter_error(problems: Problems, line: int, key: str, problem: Invalid) -> None:
    # Value checks are shared with cell attributes, whose hints say key=value.
    problems.error(line, problem, problem.hint.replace(f"{key}=", f"{key}: "))
