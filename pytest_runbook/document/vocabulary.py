"""What a fence's language and attributes mean to the parser: the language families, Runme's
and our attribute keys, the interpreter each script language defaults to, the prompt shapes
of console transcripts, and small pure helpers over them. Kept apart from the markdown-it walk
(``markdown.py``) so that walk reads as decisions, not tables.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

from markdown_it import MarkdownIt

SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "zsh", "shellscript"})
CONSOLE_LANGUAGES = frozenset({"console", "shell-session"})
INTERPRETERS: Dict[str, Tuple[str, ...]] = {
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
# Fences that may join the file's Python session (``pycon``: doctest transcripts only).
PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "pycon"})
TYPESCRIPT = frozenset({"ts", "typescript"})
EXAMPLE = re.compile(r"\s*>>>( |$)")  # a doctest example's first line
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
# Keys Runme writes on every block it saves, and keys that only matter to a cell that runs.
RUNME_BOOKKEEPING = frozenset({"id", *_UI_KEYS})
RUN_ONLY_KEYS = frozenset(
    {*_OUR_KEYS, "background", "cwd", "interactive", "promptEnv", "excludeFromRunAll"}
)
RUNNABLE_LANGUAGES = frozenset(
    {*SHELL_LANGUAGES, *CONSOLE_LANGUAGES, *INTERPRETERS, *TYPESCRIPT, *PYTHON_LANGUAGES}
)
KNOWN_ATTRIBUTES = frozenset([*_RUNME_KEYS, *_UI_KEYS, *_OUR_KEYS, "ignore-output"])
OUTPUT_KEYS = frozenset({"match", "ansi"})

PROMPT_ENV = {
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

# `user@host:~$ ls`, `root@box:/# apt ...`, `% ls`, `(venv) $ pip`: prompts other than "$ ".
OTHER_PROMPT = re.compile(r"^(?:\([^)\s]+\) ?)?(?:[\w.@~:/-]+[$#]|\[[^\]\n]+\][$#]|\$|%) +\S")
_markdown: Optional[MarkdownIt] = None
_ts_runner: Optional[Tuple[str, ...]] = None


def block_parser() -> MarkdownIt:
    # Built on first use (it costs import time for runs that collect no Markdown). Inline
    # parsing is off: cells, output blocks and directives are all block-level tokens, and
    # inline parsing would be a third of the parse time.
    global _markdown
    if _markdown is None:
        _markdown = MarkdownIt("commonmark").disable(["inline", "text_join"], ignoreInvalid=True)
    return _markdown


def typescript_runner() -> Tuple[str, ...]:
    # Looked up once and only when a document has a ts cell: PATH lookups cost collection time.
    global _ts_runner
    if _ts_runner is None:
        found = [argv for argv in _TS_RUNNERS if shutil.which(argv[0])]
        _ts_runner = found[0] if found else _TS_RUNNERS[0]
    return _ts_runner


SHELLS = frozenset({"sh", "bash", "zsh", "ksh", "mksh", "dash", "ash", "fish"})


def program(argv: Sequence[str]) -> Tuple[str, int]:
    """The program's basename (looking through ``env``) and how many arguments follow it."""
    words = list(argv)
    if words and os.path.basename(words[0]) == "env":
        words = words[1:]
        # env's own options and NAME=value assignments come before the program.
        while words and (words[0].startswith("-") or "=" in words[0]):
            words = words[1:]
    return (os.path.basename(words[0]), len(words) - 1) if words else ("", 0)


def is_bash(argv: Sequence[str]) -> bool:
    """A plain bash (also via ``env``): such cells run in the session shell itself."""
    return program(argv) == ("bash", 0)


def is_runme_style(attr_text: str) -> bool:
    """Attributes as Runme writes them: a JSON object or ``key=value`` pairs.

    Docusaurus line highlights (``js {1,3}``) and bare flags (``{xfail}``) are not: they do
    not make a documentation block runnable.
    """
    try:
        value = json.loads(attr_text)
    except (ValueError, RecursionError):
        return "=" in attr_text
    return isinstance(value, dict) and bool(value)


def strip_prompts(lines: Sequence[str]) -> str:
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


def content_lines(content: str) -> List[str]:
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
