"""Markdown text -> Document: cells, their options, expected outputs and exact line spans.

Imports nothing from pytest: the parser is tested on its own. Line numbers are 0-based
everywhere (markdown-it's ``token.map``); only reports add 1. The dataclasses below are
what the rest of the package reads: the session, the matcher and the pytest items never
look at Markdown themselves.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
import shlex
import shutil
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from markdown_it import MarkdownIt
from markdown_it.token import Token

from .attributes import (
    Invalid,
    decode_escapes,
    parse_answers,
    parse_bool,
    parse_directive,
    parse_exit,
    parse_info_attributes,
    parse_list,
    parse_platforms,
    parse_regex,
    parse_timeout,
    parse_words,
    runme_attributes,
    split_info,
)
from .defaults import Defaults
from .errors import RunbookError
from .frontmatter import Frontmatter, split_frontmatter
from .model import (
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
from .names import NameCounter, generate

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
]


_DEFAULTS = Defaults()


# -- implementation --------------------------------------------------------------------------

SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "zsh", "shellscript"})
CONSOLE_LANGUAGES = frozenset({"console", "shell-session"})
_INTERPRETERS: Dict[str, Tuple[str, ...]] = {
    "python": ("python3",),
    "py": ("python3",),
    "python3": ("python3",),
    "js": ("node",),
    "javascript": ("node",),
    "node": ("node",),
    "ruby": ("ruby",),
    "rb": ("ruby",),
    "perl": ("perl",),
    "pl": ("perl",),
    "php": ("php",),
    "lua": ("lua",),
}
_TYPESCRIPT = frozenset({"ts", "typescript"})
_TS_RUNNERS: Tuple[Tuple[str, ...], ...] = (("ts-node",), ("deno", "run"), ("bun", "run"))

_RUNME_KEYS = [
    "name",
    "id",
    "excludeFromRunAll",
    "cwd",
    "interpreter",
    "background",
    "interactive",
    "promptEnv",
    "ignore",
    "transform",
    "tag",
    "category",
]
# Runme UI keys: accepted, no effect here.
_UI_KEYS = [
    "closeTerminalOnSuccess",
    "openTerminalOnError",
    "terminalRows",
    "mimeType",
    "mimetype",
    "skipPrompts",
]
_OUR_KEYS = [
    "timeout",
    "exit",
    "skip",
    "xfail",
    "requires",
    "platform",
    "stdin",
    "answers",
    "ready",
    "teardown",
    "match",
    "ansi",
]
KNOWN_ATTRIBUTES = frozenset(_RUNME_KEYS + _UI_KEYS + _OUR_KEYS)
_OUTPUT_KEYS = frozenset({"match", "ansi"})
# What Runme itself writes and never reads back as a cell option.
_RESERVED_PREFIXES = ("runme.dev/", "_")

_FILE_KEYS = {
    "shell": "shell",
    "cwd": "cwd",
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
}
_RUNBOOK_ONLY_KEYS = frozenset({"skip", "enabled"})
# Frontmatter keys of Runme and of documentation sites that merely look like ours.
_OTHER_TOOLS_KEYS = frozenset({"runbook", "runme", "tags", "categories"})

_PROMPT_ENV = {
    "yes": "yes",
    "true": "yes",
    "1": "yes",
    "always": "yes",
    "no": "no",
    "false": "no",
    "0": "no",
    "never": "no",
    "auto": "auto",
    "": "auto",
}

_CRAM_STATUS = re.compile(r"\[([0-9]+)\]")
_MARKER_UNSAFE = re.compile(r"[^\w+\-./\[\]]")
# pytest's own marks (a tag named so would act) and the words of -m expressions.
_RESERVED_MARKS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "runbook"}
    | {"and", "or", "not", "true", "false", "none"}
)
# `user@host:~$ ls`, `root@box:/# apt ...`, `% ls`, `(venv) $ pip`: prompts other than "$ ".
_OTHER_PROMPT = re.compile(r"^(?:\([^)\s]+\) ?)?(?:[\w.@~:/-]+[$#]|\[[^\]\n]+\][$#]|\$|%) +\S")
_markdown: Optional[MarkdownIt] = None
_ts_runner: Optional[Tuple[str, ...]] = None


def _block_parser() -> MarkdownIt:
    # Built on first use (it costs import time for runs that collect no Markdown). Inline
    # parsing is off: cells, output blocks and directives are all block-level tokens, and
    # inline parsing would be a third of the parse time.
    global _markdown
    if _markdown is None:
        _markdown = MarkdownIt("commonmark").disable(["inline", "text_join"], ignoreInvalid=True)
    return _markdown


def _typescript_runner() -> Tuple[str, ...]:
    # Looked up once and only when a document has a ts cell: PATH lookups cost collection time.
    global _ts_runner
    if _ts_runner is None:
        found = [argv for argv in _TS_RUNNERS if shutil.which(argv[0])]
        _ts_runner = found[0] if found else _TS_RUNNERS[0]
    return _ts_runner


_SHELLS = frozenset({"sh", "bash", "zsh", "ksh", "mksh", "dash", "ash", "fish"})


def _program(argv: Sequence[str]) -> Tuple[str, int]:
    """The program's basename (looking through ``env``) and how many arguments follow it."""
    words = list(argv)
    if words and os.path.basename(words[0]) == "env":
        words = words[1:]
        # env's own options and NAME=value assignments come before the program.
        while words and (words[0].startswith("-") or "=" in words[0]):
            words = words[1:]
    return (os.path.basename(words[0]), len(words) - 1) if words else ("", 0)


def _is_bash(argv: Sequence[str]) -> bool:
    """A plain bash (also via ``env``): such cells run in the session shell itself."""
    return _program(argv) == ("bash", 0)


def _runme_style(attr_text: str) -> bool:
    """Attributes as Runme writes them: a JSON object or ``key=value`` pairs.

    Docusaurus line highlights (``js {1,3}``) and bare flags (``{xfail}``) are not: they do
    not make a documentation block runnable.
    """
    try:
        value = json.loads(attr_text)
    except (ValueError, RecursionError):
        return "=" in attr_text
    return isinstance(value, dict) and bool(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.date, datetime.time)):  # TOML dates, as TOML writes them
        return value.isoformat()
    return str(value)


def _reason(value: Any, default: str) -> Optional[str]:
    """``skip``/``xfail``: bare or true -> a default reason, false -> None, text -> reason."""
    if value is None or value is False:
        return None
    if value is True:
        return default
    text = _text(value).strip()
    if text.lower() in ("false", "0", "no", "off"):
        return None
    if text.lower() in ("", "true", "1", "yes", "on"):
        return default
    return text


def _strip_prompts(lines: Sequence[str]) -> str:
    # "$ cmd" -> "cmd" (Runme's convention); "$VAR=..." is code and stays. The line count is
    # kept so source line i is file line source_line + i.
    out = []
    for line in lines:
        if line.startswith("$ "):
            line = line[2:]
        elif line == "$":
            line = ""
        out.append(line)
    return "\n".join(out)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str) -> List[str]:
    """Lines with their endings, broken exactly where markdown-it breaks them (not on \\f)."""
    return _LINE.findall(text)


def _content_lines(content: str) -> List[str]:
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class _Draft:
    """A cell before its output block is known (Cell is frozen)."""

    def __init__(
        self, token_index: int, fields: Dict[str, Any], match: Optional[str], ansi: Optional[str]
    ) -> None:
        self.token_index = token_index
        self.fields = fields
        self.match = match
        self.ansi = ansi


class _Parser:
    """One parse: walks markdown-it's block tokens once, in document order.

    Order matters twice: Runme's name counter runs over every code block as it appears, and
    an output block belongs to the cell whose token comes right before it.
    """

    options: FileOptions

    def __init__(self, text: str, path: str, defaults: Defaults) -> None:
        self.path = path
        self.defaults = defaults
        normalized = text.replace("\r\n", "\n").replace("\r", "\n")
        self.lines = _content_lines(normalized)
        self.notices: List[Notice] = []
        self.names = NameCounter()
        self.drafts: List[_Draft] = []

    # -- errors and notices ------------------------------------------------------------------

    def error(self, line: Optional[int], problem: Invalid) -> RunbookError:
        return RunbookError(self.path, line, problem.message, problem.hint)

    def frontmatter_error(self, line: int, key: str, problem: Invalid) -> RunbookError:
        # Value checks are shared with cell attributes, whose hints say key=value.
        hint = problem.hint.replace(f"{key}=", f"{key}: ")
        return RunbookError(self.path, line, problem.message, hint)

    def notice(self, line: int, message: str) -> None:
        self.notices.append(Notice(line, message))

    def _marker_names(self, tags: Sequence[str], line: int) -> Tuple[str, ...]:
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

    # -- frontmatter -------------------------------------------------------------------------

    def file_options(self, front: Optional[Frontmatter]) -> FileOptions:
        meta: Mapping[str, Any] = front.meta if front is not None else {}
        settings: Dict[str, Tuple[str, Any]] = {}
        line_of = front.line_of if front is not None else (lambda key: 0)
        for key, value in meta.items():
            if key in _FILE_KEYS and value is not None:
                settings[_FILE_KEYS[key]] = (key, value)
            elif key not in _FILE_KEYS and key not in _OTHER_TOOLS_KEYS:
                # Other tools' keys (title, sidebar_position) are left alone; a near miss of
                # one of ours is almost certainly a typo that would silently do nothing.
                ours = [*_FILE_KEYS, "runbook"]
                close = difflib.get_close_matches(str(key), ours, n=1, cutoff=0.6)
                if close:
                    self.notice(
                        line_of(str(key)),
                        f"frontmatter key {str(key)!r} is not one pytest-runbook reads; "
                        f"did you mean {close[0]!r}?",
                    )
        enabled, skip = True, None
        runbook = meta.get("runbook")
        try:
            if isinstance(runbook, dict):
                for key, value in runbook.items():
                    key = str(key)
                    if key == "skip":
                        skip = _reason(value, "skipped by 'runbook: skip' in the frontmatter")
                    elif key == "enabled":
                        enabled = parse_bool("runbook.enabled", value)
                    elif key in _FILE_KEYS:
                        if value is not None:
                            settings[_FILE_KEYS[key]] = (key, value)
                    else:
                        known = sorted(set(_FILE_KEYS) | _RUNBOOK_ONLY_KEYS)
                        close = difflib.get_close_matches(key, known, n=1)
                        guess = f" (did you mean '{close[0]}'?)" if close else ""
                        self.notice(
                            line_of(key),
                            f"unknown frontmatter key 'runbook.{key}'{guess}; known keys: "
                            + ", ".join(known),
                        )
            elif runbook is not None:
                enabled = parse_bool("runbook", runbook)
        except Invalid as problem:
            raise self.frontmatter_error(line_of("runbook"), "runbook", problem) from None

        values: Dict[str, Any] = {}
        for field_name, (key, value) in settings.items():
            try:
                values[field_name] = self._file_value(field_name, key, value)
            except Invalid as problem:
                raise self.frontmatter_error(line_of(key), key, problem) from None
        tags = values.pop("tag", ()) + values.pop("category", ())
        tags = self._marker_names(tags, line_of("tag" if "tag" in settings else "category"))
        try:
            default_shell = parse_words("shell", self.defaults.shell)
        except Invalid as problem:
            raise self.error(None, problem) from None
        return FileOptions(
            enabled=enabled,
            skip=skip,
            shell=values.get("shell", default_shell),
            cwd=values.get("cwd"),
            env=values.get("env", {}),
            timeout=values.get("timeout", self.defaults.timeout),
            on_failure=values.get("on_failure", self.defaults.on_failure),
            substitutions=values.get("substitutions", {}),
            fixtures=values.get("fixtures", ()),
            bare_fences=values.get("bare_fences", self.defaults.bare_fences),
            skip_prompts=values.get("skip_prompts", False),
            tags=tags,
            shell_line=line_of(settings["shell"][0]) if "shell" in settings else None,
        )

    @staticmethod
    def _file_value(field_name: str, key: str, value: Any) -> Any:
        if field_name == "shell":
            return parse_words(key, value)
        if field_name == "cwd":
            if isinstance(value, (dict, list, bool)):
                raise Invalid(f"cwd must be a directory path, not {value!r}", "write cwd: ../..")
            return str(value)
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
                out[str(name)] = "" if item is None else _text(item)
            return out
        if field_name == "timeout":
            return parse_timeout(value, key)
        if field_name in ("on_failure", "bare_fences"):
            choices = ("continue", "stop") if field_name == "on_failure" else ("shell", "skip")
            text = _text(value).strip().lower()
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

    # -- the walk ----------------------------------------------------------------------------

    def run(self, text: str, bom: bool) -> Document:
        try:
            front = split_frontmatter(self.lines)
        except Invalid as problem:
            raise self.error(problem.line, problem) from None
        self.options = self.file_options(front)
        start = front.end if front is not None else 0
        source = "\n" * start + "".join(line + "\n" for line in self.lines[start:])
        tokens = _block_parser().parse(source)

        directive: Optional[Tuple[int, int, Dict[str, Any]]] = None  # token, line, values
        for index, token in enumerate(tokens):
            if token.type == "html_block" and token.map is not None:
                found = self._directive(token.content, token.map[0])
                if found is None:
                    continue
                line, values = found
                nxt = tokens[index + 1] if index + 1 < len(tokens) else None
                if nxt is not None and nxt.type == "fence":
                    directive = (index, line, values)
                else:
                    self.notice(
                        line,
                        "runbook directive is not directly followed by a code fence; "
                        "it applies to nothing",
                    )
            elif token.type == "fence" and token.map is not None:
                applied = directive if directive is not None and directive[0] == index - 1 else None
                self._fence(index, token, applied)
                directive = None
            elif token.type == "code_block" and token.map is not None:
                # Indented code is never a cell, but Runme names it, so it takes a name.
                self.names.take(generate(_content_lines(token.content)))

        cells = tuple(self._finish(i, draft) for i, draft in enumerate(self.drafts))
        newline = "\n"
        first = text.find("\n")
        if first > 0 and text[first - 1] == "\r":
            newline = "\r\n"
        return Document(
            path=self.path,
            text=text,
            newline=newline,
            meta=front.meta if front is not None else {},
            options=self.options,
            cells=cells,
            notices=tuple(sorted(self.notices, key=lambda n: n.line)),
            bom=bom,
        )

    def _directive(self, content: str, first_line: int) -> Optional[Tuple[int, Dict[str, Any]]]:
        try:
            found = parse_directive(content)
        except Invalid as problem:
            # YAML reports an unexpected end one line past the text: keep it in the comment.
            last = first_line + content.rstrip("\n").count("\n")
            raise self.error(min(first_line + (problem.line or 0), last), problem) from None
        if found is None:
            return None
        line = first_line + found.line_offset
        if not found.closed:
            self.notice(line, "runbook directive comment is never closed with '-->'")
        return line, found.values

    def _block(self, token: Token) -> Tuple[Block, bool]:
        assert token.map is not None
        first, end = token.map
        # markdown-it maps a closed fence to [open, close + 1]; its content holds one "\n" per
        # line, so one spare line in the map is the closing fence.
        closed = end - first - 1 - token.content.count("\n") == 1
        content_end = end - 1 if closed else end
        marker = token.markup
        # Content lines are the opening line's prefix (blockquote ">", list indentation,
        # the fence's own indentation, which markdown-it strips from content lines too) plus
        # text. A list marker on the opening line ("- ```") is indentation for the lines after
        # it. The closing fence's indentation may differ and is not a safe prefix.
        raw = self.lines[first] if first < len(self.lines) else ""
        before = raw[: max(raw.find(marker), 0)]
        prefix = "".join(c if c in " \t>" else " " for c in before)
        return Block(first, first + 1, content_end, prefix, marker), closed

    def _fence(
        self, index: int, token: Token, directive: Optional[Tuple[int, int, Dict[str, Any]]]
    ) -> None:
        block, closed = self._block(token)
        line = block.fence_line
        if not closed:
            self.notice(
                line,
                f"code fence {block.fence} is never closed, so it runs to line "
                f"{block.content_end} (the end of the file or of its list/quote); "
                f"close it with {block.fence}",
            )
        lines = _content_lines(token.content)
        language, attr_text = split_info(token.info)
        attrs: Dict[str, Any] = {}
        origins: Dict[str, int] = {}
        if directive is not None:
            attrs.update(directive[2])
            origins.update(dict.fromkeys(directive[2], directive[1]))
        problem: Optional[Invalid] = None
        if attr_text is not None:
            try:
                info_attrs = parse_info_attributes(attr_text)
            except Invalid as exc:
                problem = exc
                info_attrs = runme_attributes(attr_text)
            attrs.update(info_attrs)
            origins.update(dict.fromkeys(info_attrs, line))

        # Broken attributes are an error where a cell could be meant; on a documentation
        # block (```js {1,3} line highlights, say) they are left alone.
        if problem is not None and (
            language in SHELL_LANGUAGES | CONSOLE_LANGUAGES | {"", "output"}
            or language in _INTERPRETERS
            or language in _TYPESCRIPT
        ):
            raise self.error(line, problem)
        runme_style = problem is None and attr_text is not None and _runme_style(attr_text)
        role, interpreter = self._role(language, attrs, lines, origins, runme_style)
        if problem is not None and role != "doc":
            raise self.error(line, problem)
        if role not in ("doc", "output") and self._ignored(attrs, origins):
            role = "doc"

        commands: Tuple[Command, ...] = ()
        if role == "console":
            commands = self._console(lines, block)
            if not commands:
                role = "doc"
                prompt = next((t for t in lines if _OTHER_PROMPT.match(t)), None)
                if prompt is not None:
                    self.notice(
                        block.fence_line,
                        f"console block has no '$ ' command lines, so nothing in it runs; "
                        f"{prompt[:60]!r} looks like a prompt: write each command as "
                        "'$ command' (the output lines below it stay as they are)",
                    )

        name_value = attrs.get("name")
        explicit = name_value is not None and _text(name_value) != ""
        if explicit:
            base = _text(name_value)
        elif role == "console":
            base = generate([c.source for c in commands])
        else:
            base = generate(lines)
        if not base and role not in ("doc", "output"):
            base = f"cell-{line + 1}"  # Runme would give "", which is no usable test id
        name = self.names.take(base.replace("::", "-"))
        if explicit and role not in ("doc", "output") and name != base:
            where = origins.get("name", block.fence_line)
            why = "'::' separates pytest ids" if "::" in base else "an earlier cell has it"
            self.notice(
                where,
                f"name {base!r} is used as {name!r} ({why}); select the cell as "
                f"::{name} or give it a name of its own",
            )

        if role == "doc":
            return
        if role == "output":
            self._output(index, token, block, lines, attrs, origins, directive)
            return
        self._check_keys(attrs, origins, KNOWN_ATTRIBUTES, "attribute")
        options = self._cell_options(attrs, origins)
        if role == "console":
            kind, source = "console", "\n".join(c.source for c in commands)
            source_line = commands[0].line
            commands = tuple(
                c if c.exit != _NO_STATUS else replace(c, exit=options.exit) for c in commands
            )
        else:
            kind = role
            source_line = block.content_start
            # Prompts are a shell convention: a python script keeps its "$ " lines.
            shellish = role == "shell" or _program(interpreter or ())[0] in _SHELLS
            source = _strip_prompts(lines) if shellish else "\n".join(lines)
        fields: Dict[str, Any] = dict(
            name=name,
            generated_name=not explicit,
            kind=kind,
            language=language,
            source=source,
            line=line,
            source_line=source_line,
            interpreter=interpreter,
            options=options,
            commands=commands,
            block=block,
            attributes=attrs,
        )
        match = self._choice(attrs, origins, "match", ("exact", "contains"))
        ansi = self._choice(attrs, origins, "ansi", ("keep", "strip"))
        self.drafts.append(_Draft(index, fields, match, ansi))

    def _role(
        self,
        language: str,
        attrs: Mapping[str, Any],
        lines: Sequence[str],
        origins: Mapping[str, int],
        runme_style: bool = False,
    ) -> Tuple[str, Optional[Tuple[str, ...]]]:
        """What a fence is: output, doc, console, shell or script (+ its interpreter).

        A known language runs when it is named, or when its info string carries Runme
        attributes (``{"id":"01H..."}``, ``{ interactive=false }``): it was written for Runme,
        which runs it. A plain ``python`` example stays documentation.
        """
        if language == "output":
            return "output", None
        if language in CONSOLE_LANGUAGES:
            return "console", None
        shebang: Optional[Tuple[str, ...]] = None
        if lines and lines[0].startswith("#!"):
            try:
                shebang = tuple(shlex.split(lines[0][2:]))
            except ValueError:
                shebang = tuple(lines[0][2:].split())
            shebang = shebang or None
        declared: Optional[Tuple[str, ...]] = None
        if "interpreter" in attrs:
            try:
                declared = parse_words("interpreter", attrs["interpreter"])
            except Invalid as problem:
                raise self.error(origins.get("interpreter"), problem) from None
        if language in SHELL_LANGUAGES or (
            language == "" and (attrs or self.options.bare_fences == "shell")
        ):
            chosen = declared or shebang
            if chosen is None:
                chosen = self.options.shell
            if _is_bash(chosen):
                return "shell", None
            return "script", chosen
        if declared is not None:
            return "script", declared
        # A shebang picks the program of a block that may run: a bare fence or a language
        # with a known interpreter (shells are handled above). It does not make `text`,
        # `yaml`, `json` or an unknown language run: those show files and are documentation.
        if shebang is not None and (
            language == "" or language in _INTERPRETERS or language in _TYPESCRIPT
        ):
            return "script", shebang
        name = attrs.get("name")
        if runme_style or (name is not None and _text(name) != ""):
            if language in _INTERPRETERS:
                return "script", _INTERPRETERS[language]
            if language in _TYPESCRIPT:
                return "script", _typescript_runner()
        return "doc", None

    def _ignored(self, attrs: Mapping[str, Any], origins: Mapping[str, int]) -> bool:
        try:
            if "ignore" in attrs and parse_bool("ignore", attrs["ignore"]):
                return True
            if "transform" in attrs and not parse_bool("transform", attrs["transform"]):
                return True
        except Invalid as problem:
            key = "ignore" if "ignore" in attrs else "transform"
            raise self.error(origins.get(key), problem) from None
        return False

    def _check_keys(
        self, attrs: Mapping[str, Any], origins: Mapping[str, int], known: Any, what: str
    ) -> None:
        for key in attrs:
            if key in known or key == "index" or key.startswith(_RESERVED_PREFIXES):
                continue
            close = difflib.get_close_matches(key, list(known), n=1)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            self.notice(
                origins[key],
                f"unknown {what} '{key}'{guess}; known {what}s: " + ", ".join(sorted(known)),
            )

    def _choice(
        self, attrs: Mapping[str, Any], origins: Mapping[str, int], key: str, choices: Sequence[str]
    ) -> Optional[str]:
        if key not in attrs:
            return None
        value = _text(attrs[key]).strip().lower()
        if value not in choices:
            problem = Invalid(
                f"{key} must be " + " or ".join(choices) + f", not {attrs[key]!r}",
                f"write {key}={choices[-1]}",
            )
            raise self.error(origins[key], problem)
        return value

    def _cell_options(self, attrs: Mapping[str, Any], origins: Mapping[str, int]) -> CellOptions:
        values: Dict[str, Any] = {}
        key = ""
        try:
            for key, value in attrs.items():
                if key == "timeout":
                    values["timeout"] = parse_timeout(value)
                elif key == "cwd":
                    values["cwd"] = _text(value)
                elif key == "exit":
                    values["exit"] = ExitSpec(parse_exit(value))
                elif key == "skip":
                    values["skip"] = _reason(value, "skip attribute")
                elif key == "xfail":
                    values["xfail"] = _reason(value, "xfail attribute")
                elif key == "requires":
                    values["requires"] = parse_list(key, value)
                elif key == "platform":
                    values["platforms"] = parse_platforms(value)
                elif key in ("excludeFromRunAll", "background", "teardown"):
                    field_name = "exclude_from_run_all" if key == "excludeFromRunAll" else key
                    values[field_name] = parse_bool(key, value)
                elif key == "ready":
                    values["ready"] = parse_regex(key, _text(value))
                elif key == "stdin":
                    values["stdin"] = decode_escapes(_text(value))
                elif key == "answers":
                    values["answers"] = tuple(Answer(e, s) for e, s in parse_answers(value))
                elif key == "promptEnv":
                    mode = _PROMPT_ENV.get(_text(value).strip().lower())
                    if mode is None:
                        self.notice(
                            origins[key],
                            f"promptEnv={value!r} is not one of auto, yes, no; using auto",
                        )
                    values["prompt_env"] = mode or "auto"
            tags = parse_list("tag", attrs.get("tag", ())) if "tag" in attrs else ()
            key = "category"
            if "category" in attrs:
                tags += parse_list("category", attrs["category"])
        except Invalid as problem:
            raise self.error(origins.get(key), problem) from None
        # As in Runme, a cell's own tag/category replaces the document's instead of adding to
        # it (``runme run --tag doc-tag`` leaves out a cell tagged otherwise).
        if tags:
            where = origins.get("tag", origins.get("category", 0))
            values["tags"] = self._marker_names(tags, where)
        else:
            values["tags"] = self.options.tags
        values.setdefault("timeout", self.options.timeout)
        return CellOptions(**values)

    def _console(self, lines: Sequence[str], block: Block) -> Tuple[Command, ...]:
        """``$ `` commands, ``> `` continuations and the output under each (cram style)."""
        starts = [i for i, text in enumerate(lines) if text.startswith("$ ") or text == "$"]
        commands: List[Command] = []
        for number, start in enumerate(starts):
            stop = starts[number + 1] if number + 1 < len(starts) else len(lines)
            parts = [lines[start][2:]]
            pos = start + 1
            while pos < stop and (lines[pos].startswith("> ") or lines[pos] == ">"):
                parts.append(lines[pos][2:])
                pos += 1
            end = stop
            # Blank lines before the next "$ " (or the fence) separate, they are not output.
            while end > pos and not lines[end - 1].strip():
                end -= 1
            exit_spec = _NO_STATUS
            status_line: Optional[int] = None
            if end > pos:
                status = _CRAM_STATUS.fullmatch(lines[end - 1].strip())
                if status:
                    status_line = block.content_start + end - 1
                    if int(status.group(1)) > 255:
                        raise RunbookError(
                            self.path,
                            block.content_start + end - 1,
                            f"exit status {status.group(0)} is out of range",
                            "write a status from [0] to [255]",
                        )
                    exit_spec = ExitSpec(str(int(status.group(1))))
                    end -= 1
                    while end > pos and not lines[end - 1].strip():
                        end -= 1
            commands.append(
                Command(
                    source="\n".join(parts),
                    line=block.content_start + start,
                    expected=tuple(lines[pos:end]),
                    expected_start=block.content_start + pos,
                    expected_end=block.content_start + end,
                    exit=exit_spec,
                    status_line=status_line,
                )
            )
        return tuple(commands)

    def _output(
        self,
        index: int,
        token: Token,
        block: Block,
        lines: Sequence[str],
        attrs: Mapping[str, Any],
        origins: Mapping[str, int],
        directive: Optional[Tuple[int, int, Dict[str, Any]]],
    ) -> None:
        self._check_keys(attrs, origins, _OUTPUT_KEYS, "output block attribute")
        match = self._choice(attrs, origins, "match", ("exact", "contains"))
        ansi = self._choice(attrs, origins, "ansi", ("keep", "strip"))
        previous = (directive[0] if directive is not None else index) - 1
        draft = self.drafts[-1] if self.drafts else None
        if draft is None or draft.token_index != previous or "expected" in draft.fields:
            self.notice(
                block.fence_line,
                "output block does not directly follow a cell, so it checks nothing; "
                "put it right after the cell it belongs to",
            )
            return
        if draft.fields["kind"] == "console":
            self.notice(
                block.fence_line,
                "output block after a console block is ignored: write the expected output "
                "under each '$ ' command instead",
            )
            return
        draft.fields["expected"] = Expected(
            lines=tuple(lines),
            block=block,
            match=match or draft.match or "exact",
            ansi_keep=(ansi or draft.ansi or "strip") == "keep",
        )

    @staticmethod
    def _finish(index: int, draft: _Draft) -> Cell:
        return Cell(index=index, **draft.fields)


# A console command without its own "[N]" takes the cell's exit= (set when the cell is built).
_NO_STATUS = ExitSpec("no status")


def read(path: str, defaults: Defaults = _DEFAULTS) -> Document:
    """Read and parse ``path``; undecodable or binary files raise RunbookError."""
    with open(path, "rb") as handle:
        data = handle.read()
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
    return _Parser(text, path, defaults).run(text, bom)
