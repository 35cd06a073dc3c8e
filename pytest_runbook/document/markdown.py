"""The markdown-it walk: fences, comment directives and output blocks -> cells.

One pass over markdown-it's block tokens in document order decides what each fence is
(cell, console transcript, output block, documentation), merges its attributes and builds
its ``Cell``. Imports nothing from pytest. The session, the matcher and the pytest items
never look at Markdown themselves: the ``Document`` built here is all they read.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from markdown_it.token import Token

from ..defaults import Defaults
from ..languages import canonical_language
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
)
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
    parse_reason,
    parse_regex,
    parse_timeout,
    parse_words,
    runme_attributes,
    split_info,
    text_of,
)
from .console import NO_STATUS, parse_console, readme_transcript, root_prompts
from .frontmatter import file_options, split_frontmatter
from .names import NameCounter, generate, python_name
from .validate import Problems
from .vocabulary import (
    CONSOLE_LANGUAGES,
    EXAMPLE,
    INTERPRETERS,
    KNOWN_ATTRIBUTES,
    OTHER_PROMPT,
    OUTPUT_KEYS,
    PROMPT_ENV,
    PYTHON_LANGUAGES,
    RUN_ONLY_KEYS,
    RUNME_BOOKKEEPING,
    RUNNABLE_LANGUAGES,
    SHELL_LANGUAGES,
    SHELLS,
    TYPESCRIPT,
    block_parser,
    content_lines,
    is_bash,
    is_runme_style,
    program,
    strip_prompts,
    typescript_runner,
)

if TYPE_CHECKING:  # MyST and Quarto cells only: imported when a file has some
    from ..textnotebooks import FenceCell

__all__ = ["parse_text"]


# -- implementation --------------------------------------------------------------------------


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
        self.lines = content_lines(normalized)
        self.problems = Problems(path)
        self.names = NameCounter()
        self.drafts: List[_Draft] = []

    # -- errors and notices ------------------------------------------------------------------

    def error(self, line: Optional[int], problem: Invalid) -> None:
        """Record an error and carry on: every problem of the file is reported at once."""
        self.problems.error(line, problem)

    def notice(self, line: int, message: str) -> None:
        self.problems.notice(line, message)

    # -- the walk ----------------------------------------------------------------------------

    def run(self, text: str, bom: bool) -> Document:
        front = split_frontmatter(self.lines)
        if front is not None and front.problem is not None:
            self.error(front.problem.line, front.problem)
        self.options = file_options(front, self.defaults, self.problems)
        start = front.end if front is not None else 0
        source = "\n" * start + "".join(line + "\n" for line in self.lines[start:])
        tokens = block_parser().parse(source)

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
                self._indented(index, token)

        self.problems.raise_errors()
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
            notices=self.problems.sorted_notices(),
            bom=bom,
        )

    def _directive(self, content: str, first_line: int) -> Optional[Tuple[int, Dict[str, Any]]]:
        try:
            found = parse_directive(content)
        except Invalid as problem:
            # YAML reports an unexpected end one line past the text: keep it in the comment.
            last = first_line + content.rstrip("\n").count("\n")
            self.error(min(first_line + (problem.line or 0), last), problem)
            return None  # the fence after it runs without it (and does not run: an error)
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
        lines = content_lines(token.content)
        language, attr_text = split_info(token.info)
        language = canonical_language(language)
        attrs: Dict[str, Any] = {}
        origins: Dict[str, int] = {}
        if directive is not None:
            attrs.update(directive[2])
            origins.update(dict.fromkeys(directive[2], directive[1]))
        # A text notebook's code cell (MyST ```{code-cell} python, Quarto ```{python}): its
        # option lines become attributes, and the source starts below them.
        text_cell = self._text_notebook_cell(token, block)
        skipped_lines = 0
        if text_cell is not None:
            language = canonical_language(
                text_cell.language or self.options.kernel_language or "python"
            )
            attr_text = None
            from ..textnotebooks import runbook_attributes

            found = runbook_attributes(text_cell)
            attrs.update(found)
            origins.update(dict.fromkeys(found, line))
            skipped_lines = text_cell.option_lines
            lines = lines[skipped_lines:]
        problem: Optional[Invalid] = None
        if attr_text is not None:
            try:
                info_attrs = parse_info_attributes(attr_text)
            except Invalid as exc:
                problem = exc
                info_attrs = runme_attributes(attr_text)
            # Broken attributes are an error where a cell could be meant; on a documentation
            # block (```js {1,3} line highlights, say) they are left alone. The cell is still
            # built, without them, so what follows it is read as usual (its output block).
            if problem is not None and (
                language in SHELL_LANGUAGES | CONSOLE_LANGUAGES | {"", "output"}
                or language in INTERPRETERS
                or language in TYPESCRIPT
            ):
                self.error(line, problem)
                info_attrs, problem = {}, None
            attrs.update(info_attrs)
            origins.update(dict.fromkeys(info_attrs, line))

        runme_style = problem is None and attr_text is not None and is_runme_style(attr_text)
        role, interpreter = self._role(
            language, attrs, lines, origins, runme_style or text_cell is not None
        )
        if problem is not None and role != "doc":
            self.error(line, problem)
        if role == "doc" and text_cell is not None and text_cell.flavour == "myst":
            self._unrun_code_cell(line, language)
        elif role == "doc" and text_cell is None and language:
            self._unrun_language(line, language, attrs)
        if role not in ("doc", "output") and self._ignored(attrs, origins):
            role = "doc"

        commands: Tuple[Command, ...] = ()
        # A file shell other than bash (shell: zsh) makes a shell block a script; one written
        # as a transcript is still read as one, and runs like a ```console block (in bash).
        through_file_shell = (
            role == "script" and "interpreter" not in attrs and interpreter == self.options.shell
        )
        if role == "shell" or through_file_shell:
            # ```sh with "$ jq --version" then "jq-1.6": a transcript, as a reader reads it.
            transcript = readme_transcript(lines, block.content_start)
            if transcript is not None:
                role, commands = "console", self._commands(transcript)
                interpreter = None
        elif role == "pycon":
            commands = self._examples(lines, block.content_start + skipped_lines)
            if not commands:
                role = "doc"
        elif role == "console":
            prompt = "# " if root_prompts(lines) else "$ "
            parsed = parse_console(lines, block.content_start, prompt=prompt)
            commands = self._commands(parsed) if parsed is not None else ()
            if not commands:
                role = "doc"
                other = next((t for t in lines if OTHER_PROMPT.match(t)), None)
                if other is not None:
                    self.notice(
                        block.fence_line,
                        f"console block has no '$ ' command lines, so nothing in it runs; "
                        f"{other[:60]!r} looks like a prompt: write each command as "
                        "'$ command' (the output lines below it stay as they are)",
                    )

        name_value = attrs.get("name")
        explicit = name_value is not None and text_of(name_value) != ""
        if explicit:
            base = text_of(name_value)
        elif role == "console":
            base = generate([c.source for c in commands])
        else:
            base = generate(lines)
        if role in ("python", "pycon") and not explicit:
            # Runme names this block by its rule, as a shell line (``>>> 1 + 1`` -> ``1``);
            # that name is still counted, so later shell cells get Runme's names.
            runme_base = base or f"cell-{line + 1}"
            base = python_name([c.source for c in commands] if commands else lines) or role
            counted_only = base != runme_base  # Runme's name: counted, not this cell's id
            runme_role = "doc" if counted_only else role
            runme_name = self.names.take(runme_base, block.fence_line, runme_role)
            name = self.names.take(base, block.fence_line, role) if counted_only else runme_name
        else:
            if not base and role not in ("doc", "output"):
                base = f"cell-{line + 1}"  # Runme would give "", which is no usable test id
            name = self.names.take(base.replace("::", "-"), block.fence_line, role)
        if explicit and role not in ("doc", "output") and name != base:
            where = origins.get("name", block.fence_line)
            why = "'::' separates pytest ids" if "::" in base else self._name_holder(base)
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
        self.problems.unknown_keys(attrs, origins, KNOWN_ATTRIBUTES, "attribute")
        options = self._cell_options(attrs, origins)
        self.problems.background_without_effect(options, role, origins, block.fence_line)
        if role == "pycon":
            kind, source = "pycon", "\n".join(c.source for c in commands)
            source_line = commands[0].line
        elif role == "console":
            kind, source = "console", "\n".join(c.source for c in commands)
            source_line = commands[0].line
            commands = tuple(
                c if c.exit != NO_STATUS else replace(c, exit=options.exit) for c in commands
            )
        else:
            kind = role
            source_line = block.content_start + skipped_lines
            # Prompts are a shell convention: a python script keeps its "$ " lines.
            shellish = role == "shell" or program(interpreter or ())[0] in SHELLS
            source = strip_prompts(lines) if shellish else "\n".join(lines)
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

    def _name_holder(self, name: str) -> str:
        """Which earlier block has ``name``, for a cell whose explicit name was taken."""
        line, role = self.names.owner(name)
        if line < 0:
            return "an earlier cell has it"
        if role in ("doc", "output"):
            what = "the output block" if role == "output" else "the code block"
            return (
                f"{what} on line {line + 1} has it: Runme names every code block from its "
                "first line, and test ids keep Runme's names"
            )
        return f"the cell on line {line + 1} has it"

    def _indented(self, index: int, token: Token) -> None:
        """Indented code: a doctest transcript when it holds ``>>>`` lines (as pytest's
        --doctest-glob reads it), else documentation that Runme still names."""
        assert token.map is not None
        lines = content_lines(token.content)
        first, end = token.map
        while end > first + len(lines):  # markdown-it's map takes in trailing blank lines
            end -= 1
        commands: Tuple[Command, ...] = ()
        if self.options.python_session and any(EXAMPLE.match(line) for line in lines):
            commands = self._examples(lines, first)
        if not commands:
            self.names.take(generate(lines), first, "doc")
            return
        raw = self.lines[first] if first < len(self.lines) else ""
        before = raw[: len(raw) - len(lines[0])] if lines and raw.endswith(lines[0]) else "    "
        block = Block(first, first, end, "".join(c if c in " \t>" else " " for c in before), "")
        # As for a fenced transcript: Runme's name is still counted, the test id is readable.
        runme_base = generate(lines) or f"cell-{first + 1}"
        base = python_name([c.source for c in commands]) or "pycon"
        counted_only = base != runme_base
        runme_name = self.names.take(runme_base, first, "doc" if counted_only else "pycon")
        name = self.names.take(base, first, "pycon") if counted_only else runme_name
        fields: Dict[str, Any] = dict(
            name=name,
            generated_name=True,
            kind="pycon",
            language="pycon",
            source="\n".join(c.source for c in commands),
            line=first,
            source_line=commands[0].line,
            interpreter=None,
            options=self._cell_options({}, {}),
            commands=commands,
            block=block,
            attributes={},
        )
        self.drafts.append(_Draft(index, fields, None, None))

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
                self.error(origins.get("interpreter"), problem)
        if language in SHELL_LANGUAGES or (
            language == "" and (attrs or self.options.bare_fences == "shell")
        ):
            chosen = declared or shebang
            if chosen is None:
                chosen = self.options.shell
            if is_bash(chosen):
                return "shell", None
            return "script", chosen
        if declared is not None:
            return "script", declared
        # A shebang picks the program of a block that may run: a bare fence or a language
        # with a known interpreter (shells are handled above). It does not make `text`,
        # `yaml`, `json` or an unknown language run: those show files and are documentation.
        if shebang is not None and (
            language == "" or language in INTERPRETERS or language in TYPESCRIPT
        ):
            return "script", shebang
        named = runme_style or (attrs.get("name") is not None and text_of(attrs["name"]) != "")
        options = self.options
        transcript = language == "pycon" or (language in PYTHON_LANGUAGES and _is_transcript(lines))
        if (
            options.kernel
            and declared is None
            and shebang is None
            and not transcript
            and (
                language == options.kernel_language
                or (language in PYTHON_LANGUAGES and options.kernel_language == "python")
            )
        ):
            # Jupytext Markdown: every block in the kernel's language is a code cell.
            return f"kernel:{options.kernel}", None
        if language in PYTHON_LANGUAGES and options.python_session:
            if transcript:
                return "pycon", None
            if named or options.python_blocks == "all":
                return "python", None
        name = attrs.get("name")
        if runme_style or (name is not None and text_of(name) != ""):
            if language in INTERPRETERS:
                return "script", INTERPRETERS[language]
            if language in TYPESCRIPT:
                return "script", typescript_runner()
        return "doc", None

    def _unrun_code_cell(self, line: int, language: str) -> None:
        # A {code-cell} is code by its author's word: silently leaving it out would collect
        # nothing and pass.
        kernel = self.options.kernel_language
        runs = f"its kernel runs {kernel} cells" if kernel else "no kernelspec names a kernel"
        self.notice(
            line,
            f"{{code-cell}} {language} does not run: no session here runs {language} cells "
            f"({runs}); write the cell's language as python, bash or the kernel's language, "
            "or name a kernel for it in the frontmatter's kernelspec",
        )

    def _unrun_language(self, line: int, language: str, attrs: Mapping[str, Any]) -> None:
        # ```bahs {name=deploy}: attributes say a cell was meant, but an unknown language
        # makes it documentation, which would pass unseen. Runme's own ids and UI keys on
        # every block (```yaml {"id":...}) say nothing about that.
        meant = set(attrs) - RUNME_BOOKKEEPING
        known = sorted(RUNNABLE_LANGUAGES | {self.options.kernel_language or "python"})
        if not meant or "ignore" in attrs or "transform" in attrs or language in known:
            return
        close = difflib.get_close_matches(language, known, n=1, cutoff=0.75)
        if not close and not meant & RUN_ONLY_KEYS:
            return
        hint = f"did you mean {close[0]}? " if close else ""
        self.notice(
            line,
            f"fence language {language!r} carries cell attributes but nothing runs it, so "
            f"the block is documentation; {hint}write a language that runs (bash, sh, "
            "python, console, ...) or drop the attributes",
        )

    def _ignored(self, attrs: Mapping[str, Any], origins: Mapping[str, int]) -> bool:
        try:
            if "ignore" in attrs and parse_bool("ignore", attrs["ignore"]):
                return True
            if "transform" in attrs and not parse_bool("transform", attrs["transform"]):
                return True
        except Invalid as problem:
            key = "ignore" if "ignore" in attrs else "transform"
            self.error(origins.get(key), problem)
        return False

    def _choice(
        self, attrs: Mapping[str, Any], origins: Mapping[str, int], key: str, choices: Sequence[str]
    ) -> Optional[str]:
        if key not in attrs:
            return None
        value = text_of(attrs[key]).strip().lower()
        if value not in choices:
            problem = Invalid(
                f"{key} must be " + " or ".join(choices) + f", not {attrs[key]!r}",
                f"write {key}={choices[-1]}",
            )
            self.error(origins[key], problem)
            return None
        return value

    def _cell_options(self, attrs: Mapping[str, Any], origins: Mapping[str, int]) -> CellOptions:
        values: Dict[str, Any] = {}
        tag_lists: Dict[str, Tuple[str, ...]] = {}
        for key, value in attrs.items():
            try:
                if key == "timeout":
                    values["timeout"] = parse_timeout(value)
                elif key == "cwd":
                    values["cwd"] = text_of(value)
                elif key == "exit":
                    values["exit"] = ExitSpec(parse_exit(value))
                elif key == "skip":
                    values["skip"] = parse_reason(value, "skip attribute")
                elif key == "xfail":
                    values["xfail"] = parse_reason(value, "xfail attribute")
                elif key == "requires":
                    values["requires"] = parse_list(key, value)
                elif key == "platform":
                    values["platforms"] = parse_platforms(value)
                elif key in ("excludeFromRunAll", "background", "teardown"):
                    field_name = "exclude_from_run_all" if key == "excludeFromRunAll" else key
                    values[field_name] = parse_bool(key, value)
                elif key == "ready":
                    values["ready"] = parse_regex(key, text_of(value))
                elif key == "stdin":
                    values["stdin"] = decode_escapes(text_of(value))
                elif key == "answers":
                    values["answers"] = tuple(Answer(e, s) for e, s in parse_answers(value))
                elif key == "promptEnv":
                    mode = PROMPT_ENV.get(text_of(value).strip().lower())
                    if mode is None:
                        self.notice(
                            origins[key],
                            f"promptEnv={value!r} is not one of auto, yes, no; using auto",
                        )
                    values["prompt_env"] = mode or "auto"
                elif key in ("tag", "category"):
                    tag_lists[key] = parse_list(key, value)
            except Invalid as problem:
                self.error(origins.get(key), problem)
        tags = tag_lists.get("tag", ()) + tag_lists.get("category", ())
        # As in Runme, a cell's own tag/category replaces the document's instead of adding to
        # it (``runme run --tag doc-tag`` leaves out a cell tagged otherwise).
        if tags:
            where = origins.get("tag", origins.get("category", 0))
            values["tags"] = self.problems.marker_names(tags, where)
        else:
            values["tags"] = self.options.tags
        values.setdefault("timeout", self.options.timeout)
        return CellOptions(**values)

    def _text_notebook_cell(self, token: Token, block: Block) -> Optional[FenceCell]:
        if not token.info.lstrip().startswith("{"):
            return None
        from ..textnotebooks import TextNotebookError, parse_fence  # MyST and Quarto only

        try:
            return parse_fence(token.info, token.content)
        except TextNotebookError as error:
            self.error(block.content_start + error.line, Invalid(str(error)))
            return None

    def _examples(self, lines: Sequence[str], first_line: int) -> Tuple[Command, ...]:
        """A transcript's ``>>>`` examples as commands, by doctest's parser; ``+SKIP``
        examples are left out, as doctest leaves them."""
        from ..doctests import TranscriptError, parse_examples  # doctest for transcripts only

        try:
            examples = parse_examples("".join(line + "\n" for line in lines), first_line)
        except TranscriptError as error:
            self.error(error.line, Invalid(error.message, "fix the transcript's >>> lines"))
            return ()
        return tuple(
            Command(
                source=example.source.rstrip("\n"),
                line=example.line,
                expected=tuple(example.want.splitlines()),
                expected_start=example.want_start,
                expected_end=example.want_end,
                doctest_options=tuple(example.options.items()),
                indent=example.indent,
            )
            for example in examples
            if not example.skipped(0)
        )

    def _commands(
        self, parsed: Tuple[Tuple[Command, ...], List[Tuple[int, Invalid]]]
    ) -> Tuple[Command, ...]:
        commands, problems = parsed
        for line, problem in problems:
            self.error(line, problem)
        return commands

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
        self.problems.unknown_keys(attrs, origins, OUTPUT_KEYS, "output block attribute")
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
        if draft.fields["attributes"].get("ignore-output"):
            return  # nbval-ignore-output and friends: the stored output is not checked
        draft.fields["expected"] = Expected(
            lines=tuple(lines),
            block=block,
            match=match or draft.match or "exact",
            ansi_keep=(ansi or draft.ansi or "strip") == "keep",
        )

    @staticmethod
    def _finish(index: int, draft: _Draft) -> Cell:
        return Cell(index=index, **draft.fields)


def parse_text(text: str, path: str, defaults: Defaults, bom: bool) -> Document:
    """Parse Markdown ``text`` (without its byte order mark); problems raise RunbookError."""
    return _Parser(text, path, defaults).run(text, bom)


def _is_transcript(lines: Sequence[str]) -> bool:
    """``doctests.is_transcript``; a Python block without ``>>>`` does not import doctest."""
    if not any(">>>" in line for line in lines):
        return False
    from ..doctests import is_transcript

    return is_transcript("\n".join(lines))
