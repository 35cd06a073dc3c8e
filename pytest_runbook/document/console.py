"""Console transcripts: ``$ `` commands with their expected output, in console blocks and in
README-style shell blocks; and the small shell reader that tells a command from its output.

A README shows ```` ```sh ```` blocks such as ``$ jq --version`` followed by ``jq-1.6``:
every reader reads the second line as output. Runme would run it as a command (``bash:
jq-1.6: command not found``). Such a block is checked as a transcript here, but only when the
shell reader is sure each command ended before its output starts: a heredoc body, an open
quote, a trailing backslash or an open ``if``/``(``/``{`` make the following lines part of
the command. When the reader is not sure (``case``, ``function``, unbalanced closers), the
block is not a transcript and keeps Runme's behaviour.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from ..model import Command, ExitSpec
from .attributes import Invalid

__all__ = ["NO_STATUS", "completeness", "parse_console", "readme_transcript", "root_prompts"]

# A console command without its own "[N]" takes the cell's exit= (set when the cell is built).
NO_STATUS = ExitSpec("no status")
_CRAM_STATUS = re.compile(r"\[([0-9]+)\]")

COMPLETE, INCOMPLETE, UNSURE = "complete", "incomplete", "unsure"

# Reserved words that open a compound command, and the word that closes it.
_OPENERS = {"if": "fi", "for": "done", "while": "done", "until": "done", "select": "done"}
_CLOSERS = frozenset({"fi", "done", "}"})
# After these the next word is still in command position (``then echo``, ``! grep``).
_KEEP_COMMAND = frozenset({"then", "do", "else", "elif", "!", "time"})
# Constructs this reader does not follow: ``case`` patterns end in ")" and ``function f``
# opens its "{" out of command position.
_NOT_FOLLOWED = frozenset({"case", "esac", "function", "coproc"})
_CODE = frozenset({"(", "$(", "fi", "done", "}"})
_WORD_END = frozenset(" \t\n;&|()<>")
_MAX_COMMAND_LINES = 500  # a heredoc longer than this in a README: not a transcript


class _Unsure(Exception):
    pass


def completeness(text: str) -> str:
    """Whether bash would run ``text`` as it stands: "complete", "incomplete" (it would wait
    for more lines: an open quote, heredoc, ``(``, ``{``, ``if``/loop, trailing backslash)
    or "unsure" (a construct this small reader does not follow)."""
    try:
        return COMPLETE if _Reader(text).read() else INCOMPLETE
    except _Unsure:
        return UNSURE


class _Reader:
    """One pass over ``text`` with a stack of open quotes, substitutions and compounds."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stack: List[str] = []
        self.heredocs: List[Tuple[str, bool]] = []  # (delimiter, strip leading tabs) pending
        self.command = True  # the next word is in command position
        self.word: List[str] = []
        self.plain = True  # the current word has no quoting (only such a word is reserved)
        self.dangling = False  # a backslash ends the text: bash waits for the next line

    def read(self) -> bool:
        size, pos = len(self.text), 0
        while pos < size:
            top = self.stack[-1] if self.stack else None
            pos = self._code(pos) if top is None or top in _CODE else self._quoted(pos, top)
        self._end_word()
        return not self.stack and not self.heredocs and not self.dangling

    def _quoted(self, pos: int, top: str) -> int:
        text, char = self.text, self.text[pos]
        if top == "'":
            if char == "'":
                self.stack.pop()
            return pos + 1
        if char == "\\":
            return pos + 2
        if (top == "$'" and char == "'") or (top in ('"', "`") and char == top):
            self.stack.pop()
            return pos + 1
        if top == "${" and char == "}":
            self.stack.pop()
            return pos + 1
        if top == "$'":
            return pos + 1
        if top == "${" and char in "'\"":
            self.stack.append(char)
            return pos + 1
        if text.startswith("$(", pos):
            self.stack.append("$(")
            self.command = True
            return pos + 2
        if text.startswith("${", pos):
            self.stack.append("${")
            return pos + 2
        if char == "`" and top != "`":
            self.stack.append("`")
            return pos + 1
        return pos + 1

    def _code(self, pos: int) -> int:
        text, char = self.text, self.text[pos]
        if char in " \t":
            self._end_word()
            return pos + 1
        if char == "\n":
            self._end_word()
            self.command = True
            return self._heredoc_bodies(pos + 1)
        if char == "\\":
            self.plain = False
            if pos + 1 == len(text):
                self.dangling = True
                return pos + 1
            if text.startswith("\\\n", pos):
                return pos + 2  # a line continuation: the word goes on
            self.word.append(text[pos + 1 : pos + 2])
            return pos + 2
        if char == "#" and not self.word and self.plain:
            end = text.find("\n", pos)
            return len(text) if end < 0 else end
        if char in "'\"`" or text.startswith("$'", pos) or text.startswith("${", pos):
            self.plain = False
            opener = text[pos : pos + 2] if char == "$" else char
            self.stack.append(opener)
            return pos + len(opener)
        if text.startswith("$(", pos):
            self.plain = False
            self.stack.append("$(")
            self.command = True
            return pos + 2
        if char in "()":
            self._end_word()
            if char == "(":
                self.stack.append("(")
            elif self.stack and self.stack[-1] in ("(", "$("):
                self.stack.pop()
            else:
                raise _Unsure  # a case pattern, or a stray ")"
            self.command = True
            return pos + 1
        if char in ";&|":
            self._end_word()
            self.command = True
            return pos + 1
        if text.startswith("<<", pos) and not text.startswith("<<<", pos):
            self._end_word()
            return self._heredoc(pos + 2)
        if char in "<>":
            self._end_word()
            return pos + 1 + (text.startswith("<<<", pos) * 2)
        self.word.append(char)
        return pos + 1

    def _end_word(self) -> None:
        word = "".join(self.word)
        plain, command = self.plain, self.command
        self.word, self.plain = [], True
        if not word and plain:
            return
        self.command = False
        if not (plain and command):
            return
        if word in _NOT_FOLLOWED:
            raise _Unsure
        if word in _OPENERS:
            self.stack.append(_OPENERS[word])
            self.command = word in ("if", "while", "until")  # a condition command follows
        elif word == "{":
            self.stack.append("}")
            self.command = True
        elif word in _CLOSERS:
            if not self.stack or self.stack[-1] != word:
                raise _Unsure
            self.stack.pop()
        elif word in _KEEP_COMMAND:
            self.command = True

    def _heredoc(self, pos: int) -> int:
        """Read the delimiter after ``<<``; its body starts after the current line."""
        text = self.text
        strip = text.startswith("-", pos)
        pos += strip
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        delimiter: List[str] = []
        quote = ""
        while pos < len(text) and (quote or text[pos] not in _WORD_END):
            char = text[pos]
            if quote:
                if char == quote:
                    quote = ""
                else:
                    delimiter.append(char)
            elif char in "'\"":
                quote = char
            elif char != "\\":
                delimiter.append(char)
            pos += 1
        if quote or not delimiter:
            raise _Unsure
        self.heredocs.append(("".join(delimiter), strip))
        return pos

    def _heredoc_bodies(self, pos: int) -> int:
        """Skip the bodies of the heredocs opened on the line that just ended."""
        text = self.text
        while self.heredocs:
            delimiter, strip = self.heredocs[0]
            while pos < len(text):
                end = text.find("\n", pos)
                line = text[pos : len(text) if end < 0 else end]
                pos = len(text) if end < 0 else end + 1
                if (line.lstrip("\t") if strip else line) == delimiter:
                    self.heredocs.pop(0)
                    break
            else:
                return pos  # the body is not finished: incomplete
        return pos


Problem = Tuple[int, Invalid]


def parse_console(
    lines: Sequence[str],
    content_start: int,
    *,
    prompt: str = "$ ",
    shell_syntax: bool = False,
) -> Optional[Tuple[Tuple[Command, ...], List[Problem]]]:
    """The commands of a transcript, cram style, and problems at their file lines.

    ``prompt`` starts a command (alone without its space too), ``> `` continues it, and the
    lines up to the next prompt are its output; a last ``[N]`` line is its exit status. With
    ``shell_syntax``, lines after a command that is not complete yet (a heredoc body, an open
    quote) are part of it; None when the shell reader cannot tell where a command ends.
    """
    bare = prompt.rstrip()
    commands: List[Command] = []
    problems: List[Problem] = []
    size, index = len(lines), 0

    def is_prompt(text: str) -> bool:
        return text.startswith(prompt) or text == bare

    while index < size and not is_prompt(lines[index]):
        index += 1  # text before the first prompt is not part of any command
    while index < size:
        start = index
        parts = [lines[index][len(prompt) :]]
        index += 1
        while index < size and (lines[index].startswith("> ") or lines[index] == ">"):
            parts.append(lines[index][2:])
            index += 1
        if shell_syntax:
            state = completeness("\n".join(parts))
            while state == INCOMPLETE and index < size and len(parts) < _MAX_COMMAND_LINES:
                parts.append(lines[index])
                index += 1
                state = completeness("\n".join(parts))
            if state != COMPLETE:
                return None
        pos = index
        while index < size and not is_prompt(lines[index]):
            index += 1
        end = index
        # Blank lines before the next prompt (or the fence) separate, they are not output.
        while end > pos and not lines[end - 1].strip():
            end -= 1
        exit_spec = NO_STATUS
        status_line: Optional[int] = None
        status = _CRAM_STATUS.fullmatch(lines[end - 1].strip()) if end > pos else None
        if status:
            status_line = content_start + end - 1
            if int(status.group(1)) > 255:
                problem = Invalid(
                    f"exit status {status.group(0)} is out of range",
                    "write a status from [0] to [255]",
                )
                problems.append((status_line, problem))
            else:
                exit_spec = ExitSpec(str(int(status.group(1))))
            end -= 1
            while end > pos and not lines[end - 1].strip():
                end -= 1
        commands.append(
            Command(
                source="\n".join(parts),
                line=content_start + start,
                expected=tuple(lines[pos:end]),
                expected_start=content_start + pos,
                expected_end=content_start + end,
                exit=exit_spec,
                status_line=status_line,
            )
        )
    return tuple(commands), problems


def readme_transcript(
    lines: Sequence[str], content_start: int
) -> Optional[Tuple[Tuple[Command, ...], List[Problem]]]:
    """A shell block written as a console transcript, or None to run it as a script.

    It is one when its first line is a ``$ `` command and some command is followed by an
    output line. It is not when the would-be output looks like code: a line starting with
    ``$`` (``$HOME/bin/tool``, an indented ``  $ cmd``), or only ``#`` comment lines. Such a
    block stays a script: Runme drops the prompts and runs it.
    """
    first = next((line for line in lines if line.strip()), "")
    if not first.startswith("$ "):
        return None
    parsed = parse_console(lines, content_start, shell_syntax=True)
    if parsed is None:
        return None
    commands = parsed[0]
    output = [line for c in commands for line in c.expected if line.strip()]
    if any(line.lstrip().startswith("$") for line in output):
        return None  # `$HOME/bin/tool`, `  $ cmd`: code more likely than output
    if any(not line.lstrip().startswith("#") for line in output):
        return parsed
    return parsed if any(c.status_line is not None for c in commands) else None


def root_prompts(lines: Sequence[str]) -> bool:
    """A console block whose prompts are ``# `` (root) and never ``$ ``."""
    first = next((line for line in lines if line.strip()), "")
    return first.startswith("# ") and not any(
        line.startswith("$ ") or line == "$" for line in lines
    )
