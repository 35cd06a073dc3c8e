"""Cell attributes: the info-string syntaxes, the ``<!-- runbook: -->`` directive, value types.

Runme writes attributes either as JSON (``{"name":"x"}``) or HTML-style (``{ name=x }``);
we accept both, plus quoting so values can hold spaces, and a YAML comment directive.
Functions here raise :class:`Invalid` (message + hint, no position); the parser adds the
file and line, because only it knows which line a value came from.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
import textwrap
from typing import Any, Dict, List, Optional, Tuple

from ..options import OptionError, parse_duration


class YamlNull(str):
    """A YAML null as written ("", "~", "NULL"): None as a value, its text as a key."""


__all__ = [
    "Directive",
    "Invalid",
    "as_written",
    "decode_escapes",
    "parse_answers",
    "parse_bool",
    "parse_directive",
    "parse_exit",
    "parse_info_attributes",
    "parse_list",
    "parse_platforms",
    "parse_reason",
    "parse_regex",
    "parse_timeout",
    "parse_words",
    "runme_attributes",
    "split_info",
    "text_of",
]


class Invalid(Exception):
    """A bad attribute or frontmatter value; ``line`` is an offset when the text knows it."""

    def __init__(self, message: str, hint: str = "", line: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.line = line


ATTRIBUTE_HINT = (
    "write key=value pairs such as {name=install timeout=30}, quote values with spaces "
    '(skip="not today"), or a JSON object such as {"name":"install"}'
)


def split_info(info: str) -> Tuple[str, Optional[str]]:
    """Split an info string into (language, attribute text between the braces or None).

    The language is cut at ``{`` so ``sh{name=x}`` still means sh (Runme would read the
    language ``sh{name=x}`` and not run the block; nobody means that).
    """
    info = info.strip()
    if info.startswith("{"):
        language = ""
    else:
        language = info.split(None, 1)[0].split("{", 1)[0].lower() if info else ""
    start = info.find("{")
    if start < 0:
        return language, None
    end = info.rfind("}")
    # An unclosed "{" is returned as is; parse_info_attributes says what is wrong with it.
    return language, info[start : end + 1] if end > start else info[start:]


def parse_info_attributes(text: str) -> Dict[str, Any]:
    """Parse ``{...}`` from an info string: a JSON object, else HTML-style ``key=value``."""
    if not text.endswith("}"):
        raise Invalid(
            "the attributes in the info string open '{' but never close it",
            "close the braces: ```sh {name=install}",
        )
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        inner = text[1:-1].strip()
        if inner.startswith('"'):
            # Meant as JSON: the key=value reading would only give a confusing second error.
            raise Invalid(f"invalid JSON attributes {text}: {exc}", ATTRIBUTE_HINT) from None
        return _parse_pairs(inner)
    if not isinstance(value, dict):  # pragma: no cover - "{...}" parses only to an object
        raise Invalid(f"attributes {text} are not a JSON object", ATTRIBUTE_HINT)
    return {str(k): v for k, v in value.items() if v is not None}


def _parse_pairs(text: str) -> Dict[str, Any]:
    """HTML-style pairs with shell-like quoting; a bare key means true."""
    result: Dict[str, Any] = {}
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos].isspace():
            pos += 1
        if pos >= size:
            return result
        start = pos
        while pos < size and not text[pos].isspace() and text[pos] not in "=\"'":
            pos += 1
        key = text[start:pos]
        if not key:
            if text[pos] == "=":
                raise Invalid(f"'=' without an attribute name in {{{text}}}", ATTRIBUTE_HINT)
            raise Invalid(
                f"a quote where an attribute name should be in {{{text}}}", ATTRIBUTE_HINT
            )
        if pos >= size or text[pos].isspace():
            rest = text[pos:].lstrip()
            if rest.startswith("="):
                raise Invalid(
                    f"spaces around '=' in attribute '{key}'",
                    f"write {key}=value without spaces around '='",
                )
            result[key] = True
            continue
        if text[pos] != "=":
            raise Invalid(f"unexpected quote in attribute name '{key}'", ATTRIBUTE_HINT)
        pos += 1
        if pos < size and text[pos].isspace():
            raise Invalid(
                f"spaces around '=' in attribute '{key}'",
                f"write {key}=value without spaces around '='",
            )
        value, pos = _read_value(text, pos, key)
        result[key] = value


def _read_value(text: str, pos: int, key: str) -> Tuple[str, int]:
    """One value: quoted parts and bare parts glued together, as a shell word would be."""
    out: List[str] = []
    size = len(text)
    while pos < size and not text[pos].isspace():
        quote = text[pos]
        if quote not in "\"'":
            out.append(quote)
            pos += 1
            continue
        pos += 1
        while True:
            if pos >= size:
                raise Invalid(
                    f"unbalanced {quote} quote in attribute '{key}'",
                    f"close the quote: {key}={quote}some value{quote}",
                )
            char = text[pos]
            if char == "\\" and pos + 1 < size:
                # Only an escaped quote is unescaped here; other escapes stay for stdin's
                # Python-style decoding, so "a\\n" keeps meaning backslash-n there.
                nxt = text[pos + 1]
                out.append(quote if nxt == quote else char + nxt)
                pos += 2
                continue
            pos += 1
            if char == quote:
                break
            out.append(char)
    return "".join(out), pos


def runme_attributes(text: str) -> Dict[str, Any]:
    """Runme's own never-failing reading; used only to name blocks that are not cells."""
    try:
        return parse_info_attributes(text)
    except Invalid:
        result: Dict[str, Any] = {}
        if not text.endswith("}"):
            return result
        for item in text[1:-1].split(" "):
            key, sep, value = item.partition("=")
            if sep:
                result[key] = value.split("=", 1)[0]
        return result


class Directive:
    """A ``<!-- runbook: ... -->`` comment: its YAML mapping and the line the YAML starts on."""

    def __init__(self, values: Dict[str, Any], line_offset: int, closed: bool) -> None:
        self.values = values
        self.line_offset = line_offset  # lines from the html block's first line to "runbook:"
        self.closed = closed


_DIRECTIVE_HINT = (
    "write a YAML mapping: <!-- runbook: {name: install, timeout: 30} --> "
    "or one key per line after 'runbook:'"
)


def parse_directive(content: str) -> Optional[Directive]:
    """Read an HTML block; None unless it is a ``runbook:`` comment. Bad YAML -> Invalid."""
    start = content.find("<!--")
    if start < 0 or content[:start].strip():
        return None
    body = content[start + 4 :]
    lead = len(body) - len(body.lstrip())
    if not body[lead:].startswith("runbook:"):
        return None
    offset = content[: start + 4 + lead].count("\n")
    body = body[lead + len("runbook:") :]
    end = body.find("-->")
    closed = end >= 0
    if closed:
        body = body[:end]
    from . import yamlload  # PyYAML only for files that have YAML

    try:
        values = yamlload.load(textwrap.dedent(body))
    except yamlload.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = offset + (mark.line if mark is not None else 0)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise Invalid(
            f"invalid YAML in the runbook directive: {problem}", _DIRECTIVE_HINT, line
        ) from None
    except RecursionError:
        raise Invalid(
            "the runbook directive is nested too deeply", _DIRECTIVE_HINT, offset
        ) from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise Invalid(
            f"the runbook directive must be a mapping, not {type(values).__name__}",
            _DIRECTIVE_HINT,
            offset,
        )
    if _has_typed_scalar(values):
        # `name: 1.10` is the name "1.10", as `name=1.10` in an info string, and an answer's
        # `send: yes` types "yes", not "true": a value YAML typed is read back as written
        # (attribute values are text, parsed per key), nested ones included.
        values = as_written(values, yamlload.load_as_written(textwrap.dedent(body)))
    return Directive({str(k): v for k, v in values.items() if v is not None}, offset, closed)


def _has_typed_scalar(value: Any) -> bool:
    if isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, dict):
        return any(_has_typed_scalar(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_typed_scalar(v) for v in value)
    return False


def as_written(typed: Any, written: Any) -> Any:
    """``typed`` (a YAML load) with each bool/int/float replaced by its source text.

    ``written`` is the same YAML read by ``yamlload.load_as_written``; where the two shapes
    differ (they never should) the typed value is kept.
    """
    if isinstance(typed, (bool, int, float)) and isinstance(written, str):
        return str(written)
    if isinstance(typed, dict) and isinstance(written, dict):
        texts = {str(k): v for k, v in written.items()}
        return {k: as_written(v, texts.get(str(k))) for k, v in typed.items()}
    if isinstance(typed, list) and isinstance(written, list) and len(typed) == len(written):
        return [as_written(t, w) for t, w in zip(typed, written)]
    return typed


def text_of(value: Any) -> str:
    """A scalar value as text, the way the file wrote it (``true``, TOML dates)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.date, datetime.time)):  # TOML dates, as TOML writes them
        return value.isoformat()
    return str(value)


def parse_reason(value: Any, default: str) -> Optional[str]:
    """``skip``/``xfail``: bare or true -> a default reason, false -> None, text -> reason."""
    if value is None or value is False:
        return None
    if value is True:
        return default
    text = text_of(value).strip()
    if text.lower() in ("false", "0", "no", "off"):
        return None
    if text.lower() in ("", "true", "1", "yes", "on"):
        return default
    return text


# -- value types ---------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on", "t"}
_FALSE = {"false", "0", "no", "off", "f"}


def parse_bool(key: str, value: Any) -> bool:
    """Booleans as Runme stores them (often the strings "true"/"false")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise Invalid(
        f"{key} must be true or false, not {value!r}",
        f"write {key}=true or {key}=false",
    )


def parse_timeout(value: Any, key: str = "timeout") -> float:
    """Seconds: 30, 2.5, "30s", "500ms", "2m", "1m30s", "1h" (must be > 0); see options."""
    try:
        return parse_duration(value, key)
    except OptionError as problem:
        raise Invalid(problem.message, problem.hint) from None


def parse_exit(value: Any) -> str:
    """An exit spec: 0..255, "any" or "nonzero"."""
    text = str(value).strip().lower() if not isinstance(value, bool) else ""
    if text in ("any", "nonzero"):
        return text
    if text.isdigit() and text.isascii() and int(text) <= 255:
        return str(int(text))
    raise Invalid(
        f"exit must be a status 0-255, 'any' or 'nonzero', not {value!r}",
        "write exit=2, exit=any or exit=nonzero",
    )


def parse_list(key: str, value: Any) -> Tuple[str, ...]:
    """A comma-separated string (Runme's tag/category) or a list, as stripped words."""
    if isinstance(value, str):
        items: List[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [str(value)]
    else:
        raise Invalid(
            f"{key} must be a comma-separated list, not {value!r}",
            f"write {key}=a,b or a YAML list",
        )
    out: List[str] = []
    for item in items:
        if isinstance(item, (dict, list)) or item is None:
            raise Invalid(f"{key} must hold plain words, not {item!r}", f"write {key}=a,b")
        word = str(item).strip()
        if word and word not in out:
            out.append(word)
    return tuple(out)


_PLATFORMS = {
    "linux": "linux",
    "darwin": "darwin",
    "macos": "darwin",
    "mac": "darwin",
    "osx": "darwin",
    "freebsd": "freebsd",
    "openbsd": "openbsd",
    "netbsd": "netbsd",
    "win32": "win32",
    "windows": "win32",
    "cygwin": "cygwin",
}


def parse_platforms(value: Any) -> Tuple[str, ...]:
    """``platform=linux,darwin`` as ``sys.platform`` prefixes (mac/macos mean darwin)."""
    out: List[str] = []
    for word in parse_list("platform", value):
        name = _PLATFORMS.get(word.lower())
        if name is None:
            raise Invalid(
                f"unknown platform {word!r}",
                "write platform=linux, platform=darwin (or macos) or platform=linux,darwin",
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def parse_words(key: str, value: Any) -> Tuple[str, ...]:
    """A command line (interpreter, shell): a string split like a shell does, or a list."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        words = tuple(value)
    elif isinstance(value, str):
        try:
            words = tuple(shlex.split(value))
        except ValueError as exc:
            raise Invalid(
                f"{key} {value!r}: {exc}", f'quote it whole: {key}="python3 -u"'
            ) from None
    else:
        raise Invalid(
            f"{key} must be a command such as python3, not {value!r}", f"write {key}=bash"
        )
    if not words:
        raise Invalid(f"{key} is empty", f"name a program: {key}=bash")
    return words


def parse_regex(key: str, value: Any) -> str:
    """A regular expression, compiled once here so a typo fails at collection."""
    if not isinstance(value, str):
        raise Invalid(
            f"{key} must be a regular expression string, not {value!r}", f'write {key}="..."'
        )
    try:
        re.compile(value)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise Invalid(
            f"{key} is not a valid regular expression ({value!r}): {exc}",
            "escape regex characters such as ? [ ( with a backslash",
        ) from None
    return value


_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "e": "\x1b",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def decode_escapes(text: str, key: str = "stdin") -> str:
    """Python-style escapes (``\\n``, ``\\t``, ``\\xNN``, ``\\uNNNN``...): an info string is
    one line, so this is the only way to write a newline there. Unknown escapes stay as is."""
    out: List[str] = []
    pos, size = 0, len(text)
    while pos < size:
        char = text[pos]
        if char != "\\" or pos + 1 >= size:
            out.append(char)
            pos += 1
            continue
        code = text[pos + 1]
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
            pos += 2
        elif code in _HEX_ESCAPES:
            digits = text[pos + 2 : pos + 2 + _HEX_ESCAPES[code]]
            if len(digits) != _HEX_ESCAPES[code] or not all(
                d in "0123456789abcdefABCDEF" for d in digits
            ):
                raise Invalid(
                    f"bad \\{code} escape in {key} {text!r}",
                    f"\\{code} needs {_HEX_ESCAPES[code]} hex digits, e.g. \\x1b or \\u00e9",
                )
            number = int(digits, 16)
            if number > 0x10FFFF:
                raise Invalid(
                    f"bad \\{code} escape in {key} {text!r}", "use a code point <= 10FFFF"
                )
            out.append(chr(number))
            pos += 2 + len(digits)
        else:
            out.append(char + code)
            pos += 2
    return "".join(out)


def _scalar_text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Invalid(f"{key} must be text, not {value!r}", f'write {key}: "text"')


def parse_answers(value: Any) -> Tuple[Tuple[str, str], ...]:
    """``answers: [{expect: regex, send: text}, ...]`` -> ((expect, send), ...)."""
    hint = 'in a directive: <!-- runbook: {answers: [{expect: "Continue\\\\?", send: "y"}]} -->'
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise Invalid("answers must be a list of {expect, send} mappings", hint) from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise Invalid("answers must be a list of {expect, send} mappings", hint)
    out: List[Tuple[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or "expect" not in item or "send" not in item:
            raise Invalid(f"each answer needs 'expect' and 'send', got {item!r}", hint)
        extra = set(map(str, item)) - {"expect", "send"}
        if extra:
            raise Invalid(f"unknown key(s) {sorted(extra)} in answer {item!r}", hint)
        expect = parse_regex("answers.expect", _scalar_text("answers.expect", item["expect"]))
        send = decode_escapes(_scalar_text("answers.send", item["send"]), "answers.send")
        out.append((expect, send))
    return tuple(out)
