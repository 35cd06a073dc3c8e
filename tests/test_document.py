"""The Markdown parser on its own: cells, attributes, names, frontmatter, spans, errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_runbook.document import (
    Answer,
    Cell,
    Defaults,
    Document,
    ExitSpec,
    RunbookError,
    parse,
    read,
)
from pytest_runbook.document.names import generate, python_name
from pytest_runbook.document.validate import InvalidDocument

COMPAT = Path(__file__).resolve().parents[2] / "shared" / "compat" / "runme"
DEFAULTS = Defaults()


def doc(text: str, defaults: Defaults = DEFAULTS) -> Document:
    return parse(textwrap.dedent(text).lstrip("\n"), "t.md", defaults)


def one(text: str, defaults: Defaults = DEFAULTS) -> Cell:
    cells = doc(text, defaults).cells
    assert len(cells) == 1, cells
    return cells[0]


def error(text: str, defaults: Defaults = DEFAULTS) -> RunbookError:
    with pytest.raises(RunbookError) as info:
        doc(text, defaults)
    return info.value


def names(text: str, defaults: Defaults = DEFAULTS) -> List[str]:
    return [cell.name for cell in doc(text, defaults).cells]


# -- which fences are cells -----------------------------------------------------------------


@pytest.mark.parametrize("language", ["sh", "bash", "shell", "zsh", "shellscript", "SH"])
def test_shell_languages_are_shell_cells(language: str) -> None:
    cell = one(f"```{language}\necho hi\n```\n")
    assert (cell.kind, cell.language, cell.interpreter) == ("shell", language.lower(), None)
    assert cell.source == "echo hi"
    assert (cell.line, cell.source_line) == (0, 1)


@pytest.mark.parametrize(
    "info",
    ["python", "json", "yaml", "go", "ini", "output", "js {1,3}", "python title=x", "py {xfail}"],
)
def test_documentation_blocks_are_not_cells(info: str) -> None:
    assert doc(f"```{info}\nx = 1\n```\n").cells == ()


def test_bare_fence_is_documentation_by_default_and_shell_on_request() -> None:
    text = "```\necho hi\n```\n"
    assert doc(text).cells == ()
    assert one(text, Defaults(bare_fences="shell")).kind == "shell"
    assert one("---\nbare-fences: shell\n---\n" + text).kind == "shell"
    assert doc("---\nbare_fences: skip\n---\n" + text, Defaults(bare_fences="shell")).cells == ()


@pytest.mark.parametrize("info", ['{"name":"a"}', ' {"name":"a"}', "{name=a}", '{"id":"01H"}'])
def test_no_language_with_attributes_is_a_shell_cell(info: str) -> None:
    cell = one(f"```{info}\necho hi\n```\n")
    assert (cell.kind, cell.language) == ("shell", "")


def test_directive_attributes_make_a_bare_fence_a_cell() -> None:
    cell = one("<!-- runbook: {name: a} -->\n```\necho hi\n```\n")
    assert (cell.name, cell.kind) == ("a", "shell")


def test_shebang_makes_a_script_cell_and_keeps_the_line() -> None:
    cell = one("```\n#!/usr/bin/env python3 -u\nprint(1)\n```\n")
    assert cell.kind == "script"
    assert cell.interpreter == ("/usr/bin/env", "python3", "-u")
    assert cell.source == "#!/usr/bin/env python3 -u\nprint(1)"


@pytest.mark.parametrize(
    "language", ["text", "txt", "yaml", "yml", "json", "toml", "log", "plaintext", "go", "diff"]
)
def test_shebang_does_not_make_a_documentation_block_run(language: str) -> None:
    # These show a file's content; the reference lists them as documentation.
    text = f"```{language}\n#!/usr/bin/env bash\necho ran\n```\n"
    assert doc(text).cells == ()
    assert doc(f"```{language}\n#!/usr/bin/env foo\na: 1\n```\n").cells == ()
    with_output = f"```{language}\n#!/bin/sh\necho\n```\n```output\nhi\n```\n"
    assert doc(with_output).cells == ()


def test_output_block_starting_with_a_shebang_is_expected_output() -> None:
    assert doc("```sh {name=a}\necho\n```\n```output\n#!/bin/sh\n```\n").cells[0].expected


@pytest.mark.parametrize(
    ("info", "kind", "interpreter"),
    [
        ("", "script", ("/usr/bin/env", "python3")),
        ("{name=x}", "script", ("/usr/bin/env", "python3")),
        ('{"id":"01HNQWVXY92G9KC9VYB17EMNR4"}', "script", ("/usr/bin/env", "python3")),
        ("sh", "script", ("/usr/bin/env", "python3")),
        ("zsh {name=x}", "script", ("/usr/bin/env", "python3")),
        ("python", "script", ("/usr/bin/env", "python3")),
        ("js", "script", ("/usr/bin/env", "python3")),
        ("ts", "script", ("/usr/bin/env", "python3")),
        ("text {interpreter=python3}", "script", ("python3",)),
    ],
)
def test_shebang_still_picks_the_program_of_a_block_that_runs(
    info: str, kind: str, interpreter: Any
) -> None:
    cell = one(f"```{info}\n#!/usr/bin/env python3\nprint(1)\n```\n")
    assert (cell.kind, cell.interpreter) == (kind, interpreter)


@pytest.mark.parametrize("language", ["python", "py", "python3"])
def test_named_python_blocks_join_the_python_session(language: str) -> None:
    cell = one(f"```{language} {{name=x}}\nprint(1)\n```\n")
    assert (cell.kind, cell.interpreter, cell.source) == ("python", None, "print(1)")
    assert doc(f"```{language}\nprint(1)\n```\n").cells == ()


def test_python_script_frontmatter_keeps_runmes_fresh_script() -> None:
    cell = one("---\npython: script\n---\n```python {name=x}\nprint(1)\n```\n")
    assert (cell.kind, cell.interpreter) == ("script", ("python3",))


def test_shebang_python_block_stays_a_script() -> None:
    cell = one("```python {name=x}\n#!/usr/bin/env python3\nprint(1)\n```\n")
    assert cell.kind == "script"


def test_python_blocks_all_makes_every_python_block_a_cell() -> None:
    cells = doc("---\npython-blocks: all\n---\n```python\nx = 1\n```\n\n```py\nx\n```\n").cells
    assert [c.kind for c in cells] == ["python", "python"]


def test_python_cells_get_readable_generated_names() -> None:
    text = (
        "---\npython-blocks: all\n---\n"
        "```pycon\n>>> 1 + 1\n2\n```\n"  # Runme's rule: "1" (as a shell line), here "1-"
        "```python\n>>> rows = load()  # the data\n```\n"
        '```python\n# comment first\nprint("hi")\n```\n'
        "```pycon\n>>> 2 * 3\n6\n```\n"
        "```python\n_private_x = {'a': 1}\n```\n"
        "```python {name=given}\nx = 1\n```\n"
        "```sh\ngrpcurl \\\n  -plaintext\n```\n"  # shell cells keep Runme's rule
        "```sh\nprinthi\n```\n"  # Runme counted the print("hi") block as "printhi"
    )
    cells = doc(text).cells
    assert [c.name for c in cells] == [
        "pycon",
        "rows",
        "print-hi",
        "pycon-2",
        "private-x",
        "given",
        "grpcurl-",
        "printhi-2",
    ]
    assert [c.generated_name for c in cells] == [True] * 5 + [False, True, True]


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("df.head()", "df-head"),
        ("total = sum(xs)", "total"),
        ("x == 1", "x"),
        ("f(key=1)", "f-key"),
        ("x += 1", "x"),
        ('d["k"] = v', "d-k"),
        (">>> import os", "import-os"),
        ("from pathlib import Path", "from-pathlib"),
        ("__name__", "name"),
        ("1 + 1", ""),
        ("# only a comment", ""),
        ("a_very_long_identifier_name_here.another_long_one()", "a-very-long-identifier-name-here"),
        ("x_ = 1", "x"),
    ],
)
def test_python_name(source: str, name: str) -> None:
    assert python_name(source.split("\n")) == name
    assert not python_name(source.split("\n")).endswith("-")


def test_transcripts_are_doctest_examples_at_their_lines() -> None:
    text = (
        "# T\n\n```pycon\n>>> x = 1  # doctest: +ELLIPSIS\n>>> x\n1\n```\n\n"
        "```python\n>>> 2\n2\n```\n"
    )
    first, second = doc(text).cells
    assert (first.kind, second.kind) == ("pycon", "pycon")
    assert [(c.source, c.line, c.expected) for c in first.commands] == [
        ("x = 1  # doctest: +ELLIPSIS", 3, ()),
        ("x", 4, ("1",)),
    ]
    assert first.commands[0].doctest_options and not first.commands[1].doctest_options
    assert (second.commands[0].expected_start, second.commands[0].expected_end) == (10, 11)


def test_kernel_frontmatter_sends_every_block_of_its_language_to_the_kernel() -> None:
    text = "---\nkernel: python3\n---\n```python\nx = 1\n```\n\n```sh\necho hi\n```\n"
    py, sh = doc(text).cells
    assert (py.kind, sh.kind) == ("kernel:python3", "shell")


def test_myst_and_quarto_code_cells_keep_exact_source_lines() -> None:
    myst = (
        "---\nkernelspec:\n  name: python3\n---\n```{code-cell} python\n:tags: [skip]\nx = 1\n```\n"
    )
    (cell,) = doc(myst).cells
    assert (cell.kind, cell.source, cell.source_line, cell.options.skip is not None) == (
        "kernel:python3",
        "x = 1",
        6,
        True,
    )
    quarto = "```{python}\n#| label: load\nx = 1\n```\n"
    (cell,) = doc(quarto).cells
    assert (cell.kind, cell.name, cell.source, cell.source_line) == ("python", "load", "x = 1", 2)


@pytest.mark.parametrize(
    ("language", "argv"),
    [
        ("js", ("node",)),
        ("javascript", ("node",)),
        ("node", ("node",)),
        ("ruby", ("ruby",)),
        ("rb", ("ruby",)),
        ("perl", ("perl",)),
        ("pl", ("perl",)),
        ("php", ("php",)),
        ("lua", ("lua",)),
    ],
)
def test_named_blocks_of_known_languages_are_script_cells(language: str, argv: Any) -> None:
    cell = one(f"```{language} {{name=x}}\nprint(1)\n```\n")
    assert (cell.kind, cell.interpreter, cell.source) == ("script", argv, "print(1)")
    assert doc(f"```{language}\nprint(1)\n```\n").cells == ()


@pytest.mark.parametrize(
    "info", ['javascript {"id":"01HNQWVXY92G9KC9VYB17EMNR4"}', "ruby { interactive=false }"]
)
def test_known_language_with_runme_attributes_is_a_script_cell(info: str) -> None:
    # Written for Runme (which runs it), though unnamed: a cell with a generated name.
    cell = one(f"```{info}\nprint(1)\n```\n")
    assert (cell.kind, cell.name, cell.generated_name) == ("script", "print1", True)


def test_typescript_uses_an_available_runner() -> None:
    cell = one("```ts {name=t}\nconsole.log(1)\n```\n")
    assert cell.interpreter in (("ts-node",), ("deno", "run"), ("bun", "run"))


def test_unknown_language_needs_an_interpreter() -> None:
    assert doc("```go {name=x}\npackage main\n```\n").cells == ()
    cell = one('```yaml {"interpreter":"cat"}\na: 1\n```\n')
    assert (cell.kind, cell.interpreter, cell.source) == ("script", ("cat",), "a: 1")
    quoted = one('```python {interpreter="python3 -u"}\nprint()\n```\n')
    assert quoted.interpreter == ("python3", "-u")


@pytest.mark.parametrize(
    "attrs", ["{ignore=true}", "{ignore}", '{"ignore":"true"}', "{transform=false}"]
)
def test_ignore_and_transform_false_exclude_a_block(attrs: str) -> None:
    assert doc(f"```sh {attrs}\necho\n```\n").cells == ()


def test_skip_keeps_the_cell_with_a_reason() -> None:
    assert one("```sh {skip}\necho\n```\n").options.skip == "skip attribute"
    assert one('```sh {skip="not today"}\necho\n```\n').options.skip == "not today"
    assert one("```sh {skip=false}\necho\n```\n").options.skip is None
    assert one("```sh {xfail='flaky net'}\necho\n```\n").options.xfail == "flaky net"


# -- the shell-interpreter rule -------------------------------------------------------------


@pytest.mark.parametrize("interp", ["bash", "/bin/bash", "/usr/bin/env bash"])
def test_a_plain_bash_interpreter_runs_in_the_session(interp: str) -> None:
    cell = one(f'```sh {{"interpreter":"{interp}"}}\necho\n```\n')
    assert (cell.kind, cell.interpreter) == ("shell", None)


def test_other_interpreters_make_shell_cells_scripts() -> None:
    cell = one('```sh {interpreter="bash -e"}\n$ echo\n```\n')
    assert (cell.kind, cell.interpreter, cell.source) == ("script", ("bash", "-e"), "echo")
    assert one("```sh {interpreter=zsh}\necho\n```\n").interpreter == ("zsh",)


def test_frontmatter_shell_is_the_program_for_shell_cells() -> None:
    cell = one("---\nshell: zsh -f\n---\n```sh\necho\n```\n")
    assert (cell.kind, cell.interpreter) == ("script", ("zsh", "-f"))
    # Runme: the cell interpreter beats the frontmatter shell (grpc-client/hello.md).
    cell = one('---\nshell: zsh\n---\n```sh {"interpreter":"bash"}\necho\n```\n')
    assert (cell.kind, cell.interpreter) == ("shell", None)
    assert one("```sh\necho\n```\n", Defaults(shell="sh")).interpreter == ("sh",)


def test_shebang_in_a_shell_block_selects_its_program() -> None:
    assert one("```bash\n#!/usr/bin/env bash\necho\n```\n").kind == "shell"
    cell = one("```sh\n#!/bin/sh\necho\n```\n")
    assert (cell.kind, cell.interpreter) == ("script", ("/bin/sh",))


# -- prompts, sources and line numbers ------------------------------------------------------


def test_dollar_prompts_are_dropped_and_line_count_kept() -> None:
    cell = one("text\n\n```sh\n$ echo a\n$\n$HOME/bin/x\n  $ indented\n```\n")
    assert cell.source == "echo a\n\n$HOME/bin/x\n  $ indented"
    assert (cell.line, cell.source_line) == (2, 3)
    assert len(cell.source.split("\n")) == cell.block.content_end - cell.block.content_start  # type: ignore[union-attr]


def test_non_shell_sources_keep_dollars() -> None:
    assert one("```python {name=p}\n$ x\n```\n").source == "$ x"
    shebang = one('```{"name":"a"}\n#!/usr/bin/env python3\n$ x\n```\n')
    assert (shebang.kind, shebang.source) == ("script", "#!/usr/bin/env python3\n$ x")
    zsh = one("---\nshell: zsh\n---\n```sh\n$ x\n```\n")
    assert (zsh.kind, zsh.source) == ("script", "x")


def test_env_wrapped_interpreters() -> None:
    cell = one('```sh {interpreter="/usr/bin/env -S bash -e"}\nx\n```\n')
    assert (cell.kind, cell.interpreter) == ("script", ("/usr/bin/env", "-S", "bash", "-e"))
    assert one('```sh {interpreter="env -S LC_ALL=C bash"}\nx\n```\n').kind == "shell"


def test_crlf_file_line_numbers_and_newline() -> None:
    text = (
        "---\r\ntimeout: 5\r\n---\r\n# T\r\n\r\n```sh\r\necho a\r\n```\r\n```output\r\na\r\n```\r\n"
    )
    document = parse(text, "t.md")
    assert document.newline == "\r\n"
    assert document.text == text
    cell = document.cells[0]
    assert (cell.line, cell.source_line, cell.source) == (5, 6, "echo a")
    assert cell.expected is not None
    assert cell.expected.block.fence_line == 8
    assert cell.expected.lines == ("a",)
    assert cell.options.timeout == 5
    assert parse("a\n```sh\nx\n```\r\n").newline == "\n"


def test_lone_carriage_returns_count_as_line_breaks() -> None:
    assert parse("a\r\r```sh\rx\r```\r").cells[0].line == 2


# -- containers and spans -------------------------------------------------------------------


def test_fence_in_a_list_item_with_its_output() -> None:
    document = doc(
        """
        1. Install:

           ```sh {name=a}
           echo hi
             indented
           ```

           ```output
           hi
           ```
        """
    )
    cell = document.cells[0]
    assert cell.source == "echo hi\n  indented"
    assert cell.block is not None
    assert (cell.block.fence_line, cell.block.content_start, cell.block.content_end) == (2, 3, 5)
    assert (cell.block.prefix, cell.block.fence) == ("   ", "```")
    assert cell.expected is not None
    block = cell.expected.block
    assert (block.fence_line, block.content_start, block.content_end, block.prefix) == (
        7,
        8,
        9,
        "   ",
    )


def test_fence_in_a_blockquote() -> None:
    cell = one("> Note\n>\n> ~~~~bash\n> echo a\n> ~~~~\n")
    assert cell.source == "echo a"
    assert cell.block is not None
    assert (cell.block.fence_line, cell.block.content_end, cell.block.prefix) == (2, 4, "> ")
    assert cell.block.fence == "~~~~"


def test_list_item_opening_fence_prefix_is_indentation() -> None:
    cell = one("- ```sh\n  echo\n")  # never closed: prefix derived from the opening line
    assert cell.block is not None
    assert (cell.block.prefix, cell.block.content_end) == ("  ", 2)


def test_prefix_ignores_the_closing_fence_indentation() -> None:
    cell = one("```sh\necho\n   ```\n")
    assert cell.block is not None
    assert (cell.block.prefix, cell.block.content_end) == ("", 2)


@pytest.mark.parametrize(
    "layout",
    [
        "```sh\n{body}\n```\n",
        "  ```sh\n  {body}\n  ```\n",
        "- item\n\n  ```sh\n  {body}\n  ```\n",
        "- ```sh\n  {body}\n  ```\n",
        "10. ```sh\n    {body}\n    ```\n",
        "> ```sh\n> {body}\n> ```\n",
        "> - ```sh\n>   {body}\n>   ```\n",
        "1. step\n\n   > ```sh\n   > {body}\n   > ```\n",
    ],
)
def test_rewriting_content_with_the_prefix_round_trips(layout: str) -> None:
    # What update mode does: replace the content lines with prefix + new line.
    (cell,) = parse(layout.format(body="echo old")).cells
    block = cell.block
    assert block is not None
    new = ["echo new", "  indented", "", "last"]
    lines = layout.format(body="echo old").split("\n")
    lines[block.content_start : block.content_end] = [block.prefix + x for x in new]
    assert parse("\n".join(lines)).cells[0].source == "\n".join(new)


def test_empty_fence_span() -> None:
    cell = one("```sh {name=e}\n```\n")
    assert cell.block is not None
    assert (cell.block.content_start, cell.block.content_end, cell.source) == (1, 1, "")


# -- output blocks --------------------------------------------------------------------------


def test_output_block_after_blank_lines_is_the_expected_output() -> None:
    cell = one("```sh\necho a\n```\n\n\n```output\na\n\nb\n```\n")
    assert cell.expected is not None
    assert cell.expected.lines == ("a", "", "b")
    assert (cell.expected.match, cell.expected.ansi_keep) == ("exact", False)
    assert cell.expected.block.content_end == 9


def test_empty_output_block() -> None:
    cell = one("```sh\ntrue\n```\n```output\n```\n")
    assert cell.expected is not None
    assert cell.expected.lines == ()


def test_match_and_ansi_from_cell_or_output_block() -> None:
    cell = one("```sh {match=contains ansi=keep}\necho\n```\n```output\nx\n```\n")
    assert cell.expected is not None
    assert (cell.expected.match, cell.expected.ansi_keep) == ("contains", True)
    cell = one("```sh {match=contains}\necho\n```\n```output {match=exact}\nx\n```\n")
    assert cell.expected is not None
    assert cell.expected.match == "exact"


def test_output_block_separated_by_text_is_a_notice() -> None:
    document = doc("```sh\necho\n```\nsome text\n```output\nx\n```\n")
    assert document.cells[0].expected is None
    assert [n.line for n in document.notices] == [4]
    assert "does not directly follow a cell" in document.notices[0].message


def test_output_after_a_documentation_block_is_a_notice() -> None:
    document = doc("```python\nx\n```\n```output\nx\n```\n")
    assert document.cells == ()
    assert document.notices[0].line == 3


def test_second_output_block_is_a_notice() -> None:
    document = doc("```sh\necho\n```\n```output\na\n```\n```output\nb\n```\n")
    assert document.cells[0].expected is not None
    assert document.cells[0].expected.lines == ("a",)
    assert [n.line for n in document.notices] == [6]


def test_output_in_a_list_item_does_not_belong_to_a_cell_outside() -> None:
    document = doc("```sh\necho\n```\n- ```output\n  x\n  ```\n")
    assert document.cells[0].expected is None
    assert len(document.notices) == 1


def test_console_block_with_another_prompt_is_a_notice() -> None:
    document = doc(
        "```console\nuser@host:~$ echo hi\nhi\n```\n\n"
        "```console\n% ls\n```\n\n"
        "```console\nBuilding... 50% done\n-> ok\n# a comment\n```\n"
    )
    assert document.cells == ()
    assert [n.line for n in document.notices] == [0, 5]
    assert "'user@host:~$ echo hi' looks like a prompt: write each command as '$ command'" in (
        document.notices[0].message
    )


def test_an_explicit_name_that_cannot_be_kept_is_a_notice() -> None:
    document = doc(
        "```sh {name=build}\ntrue\n```\n"
        "```sh {name=build}\ntrue\n```\n"
        "```sh {name=a::b}\ntrue\n```\n"
        "```sh\necho build\n```\n"
    )
    assert [c.name for c in document.cells] == ["build", "build-2", "a-b", "echo-build"]
    assert [n.line for n in document.notices] == [3, 6]
    assert "name 'build' is used as 'build-2' (the cell on line 1 has it)" in (
        document.notices[0].message
    )
    assert "'::' separates pytest ids" in document.notices[1].message


# -- console blocks -------------------------------------------------------------------------


def test_console_commands_continuations_output_and_status() -> None:
    cell = one(
        """
        ```console
        $ export GREETING=hi
        $ echo "$GREETING" \\
        > there
        hi there

        $ false
        [1]

        $ ls missing

        oops
        [2]

        ```
        """
    )
    assert cell.kind == "console"
    assert cell.name == "export-greeting"
    assert cell.source == 'export GREETING=hi\necho "$GREETING" \\\nthere\nfalse\nls missing'
    first, second, third, fourth = cell.commands
    assert (first.source, first.line, first.expected) == ("export GREETING=hi", 1, ())
    assert (first.expected_start, first.expected_end, first.exit) == (2, 2, ExitSpec("0"))
    assert second.source == 'echo "$GREETING" \\\nthere'
    assert (second.line, second.expected, second.expected_start, second.expected_end) == (
        2,
        ("hi there",),
        4,
        5,
    )
    assert (third.expected, third.exit, third.expected_start, third.expected_end) == (
        (),
        ExitSpec("1"),
        7,
        7,
    )
    assert (fourth.expected, fourth.exit) == (("", "oops"), ExitSpec("2"))
    assert (fourth.expected_start, fourth.expected_end) == (10, 12)
    assert cell.source_line == 1


def test_console_cell_exit_applies_to_commands_without_status() -> None:
    cell = one("```console {exit=any}\n$ false\n$ true\n[0]\n```\n")
    assert [c.exit for c in cell.commands] == [ExitSpec("any"), ExitSpec("0")]


def test_console_without_commands_is_not_a_cell_and_shell_session_is_console() -> None:
    assert doc("```console\nsome output\n```\n").cells == ()
    assert one("```shell-session\n$ echo\n```\n").kind == "console"


def test_console_expected_lines_lose_the_blockquote_prefix() -> None:
    cell = one("> ```console\n> $ echo a\n> a\n> ```\n")
    assert cell.commands[0].expected == ("a",)
    assert (cell.commands[0].expected_start, cell.commands[0].expected_end) == (2, 3)


def test_console_bad_status_is_an_error() -> None:
    err = error("```console\n$ x\n[256]\n```\n")
    assert (err.line, err.message) == (2, "exit status [256] is out of range")


def test_output_block_after_console_is_a_notice() -> None:
    document = doc("```console\n$ echo\n```\n```output\nx\n```\n")
    assert document.cells[0].expected is None
    assert "console" in document.notices[0].message


# -- attributes -----------------------------------------------------------------------------


def test_three_syntaxes_merge_directive_below_info_string() -> None:
    cell = one(
        """
        <!-- runbook: {name: install, timeout: 30, skip: "from directive"} -->

        ```sh {"name":"setup","exit":"2"}
        echo
        ```
        """
    )
    assert cell.name == "setup"
    assert (cell.options.timeout, cell.options.exit, cell.options.skip) == (
        30.0,
        ExitSpec("2"),
        "from directive",
    )
    assert dict(cell.attributes) == {
        "name": "setup",
        "timeout": "30",  # as written: attribute values are text, whatever the syntax
        "skip": "from directive",
        "exit": "2",
    }


def test_directive_values_are_read_as_written() -> None:
    cell = one("<!-- runbook: {name: 1.10, timeout: 1.50, background: yes} -->\n```sh\necho\n```\n")
    assert (cell.name, cell.options.timeout, cell.options.background) == ("1.10", 1.5, True)
    assert dict(cell.attributes)["name"] == "1.10"


def test_multiline_directive_in_a_list() -> None:
    cell = one(
        """
        - step

          <!-- runbook:
          name: install
          stdin: "y\\n"
          answers:
            - {expect: "Continue\\\\? \\\\[y/N\\\\]", send: "y"}
          -->
          ```sh
          read x
          ```
        """
    )
    assert cell.name == "install"
    assert cell.options.stdin == "y\n"
    assert cell.options.answers == (Answer("Continue\\? \\[y/N\\]", "y"),)


def test_directive_answers_and_lists_keep_scalars_as_written() -> None:
    cell = one(
        """
        <!-- runbook:
        answers:
          - {expect: "a", send: yes}
          - {expect: 10, send: 0123}
          - {expect: c, send: 1.10}
          - {expect: d, send: off}
        tag: [v1.10, 2.0]
        -->
        ```sh
        read x
        ```
        """
    )
    assert cell.options.answers == (
        Answer("a", "yes"),
        Answer("10", "0123"),
        Answer("c", "1.10"),
        Answer("d", "off"),
    )
    assert cell.options.tags == ("v1.10", "2.0")


def test_html_style_quotes_bare_keys_and_escapes() -> None:
    cell = one(
        "```sh { name=flaky xfail skip=\"not today\" stdin='a b\\n\\x41\\u00e9' "
        "requires=docker,kubectl platform=macos,linux tag=net,slow teardown }\necho\n```\n"
    )
    options = cell.options
    assert cell.name == "flaky"
    assert options.xfail == "xfail attribute"
    assert options.skip == "not today"
    assert options.stdin == "a b\nAé"
    assert options.requires == ("docker", "kubectl")
    assert options.platforms == ("darwin", "linux")
    assert options.tags == ("net", "slow")
    assert options.teardown is True


def test_quoted_value_with_escaped_quote() -> None:
    assert one('```sh {stdin="say \\"hi\\"\\n"}\necho\n```\n').options.stdin == 'say "hi"\n'


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ('"true"', True), ('"1"', True), ('"yes"', True), ('"false"', False),
     ('"0"', False), ('"no"', False), ("false", False)],
)  # fmt: skip
def test_json_booleans_may_be_strings(value: str, expected: bool) -> None:
    cell = one(f'```sh {{"excludeFromRunAll":{value},"background":{value}}}\necho\n```\n')
    assert cell.options.exclude_from_run_all is expected
    assert cell.options.background is expected


def test_runme_interactive_with_trailing_comma_is_accepted() -> None:
    cell = one(
        '```sh {"interactive":"false,","mimeType":"image/svg+xml","terminalRows":""}\nx\n```'
    )
    assert cell.attributes["interactive"] == "false,"


@pytest.mark.parametrize(
    ("value", "seconds"), [("30", 30.0), ("2.5", 2.5), ("30s", 30.0), ("2m", 120.0),
                           ("1h", 3600.0), ("500ms", 0.5), ('"45"', 45.0)],
)  # fmt: skip
def test_timeout_units(value: str, seconds: float) -> None:
    assert one(f"```sh {{timeout={value}}}\nx\n```\n").options.timeout == seconds


def test_timeout_precedence() -> None:
    assert one("```sh\nx\n```\n", Defaults(timeout=7)).options.timeout == 7
    text = "---\ntimeout: 9\n---\n```sh\nx\n```\n"
    assert one(text, Defaults(timeout=7)).options.timeout == 9
    assert one(text.replace("```sh", "```sh {timeout=3}")).options.timeout == 3


@pytest.mark.parametrize(("value", "spec"), [("0", "0"), ("2", "2"), ("255", "255"),
                                             ("any", "any"), ("nonzero", "nonzero")])  # fmt: skip
def test_exit_values(value: str, spec: str) -> None:
    assert one(f"```sh {{exit={value}}}\nx\n```\n").options.exit == ExitSpec(spec)


@pytest.mark.parametrize(
    ("value", "mode"),
    [("yes", "yes"), ("true", "yes"), ("1", "yes"), ("always", "yes"), ("no", "no"),
     ("false", "no"), ("0", "no"), ("never", "no"), ("auto", "auto"), ('""', "auto")],
)  # fmt: skip
def test_prompt_env_values(value: str, mode: str) -> None:
    assert one(f"```sh {{promptEnv={value}}}\nx\n```\n").options.prompt_env == mode
    assert one("```sh\nx\n```\n").options.prompt_env == "auto"


def test_other_options() -> None:
    cell = one('```sh {cwd=../x background ready="Listening on \\\\d+" excludeFromRunAll}\nx\n```')
    assert cell.options.cwd == "../x"
    assert cell.options.background is True
    assert cell.options.ready == "Listening on \\\\d+"
    assert cell.options.exclude_from_run_all is True


def test_answers_from_json_attributes() -> None:
    cell = one('```sh {"answers":[{"expect":"name\\\\?","send":"ada"}]}\nread n\n```\n')
    assert cell.options.answers == (Answer("name\\?", "ada"),)


def test_cell_tags_replace_file_tags_as_in_runme() -> None:
    document = doc(
        '---\ntag: doc, a\n---\n```sh {"tag":"a,b","category":"c"}\nx\n```\n\n```sh\ny\n```\n'
    )
    assert [c.options.tags for c in document.cells] == [("a", "b", "c"), ("doc", "a")]


def test_unknown_attribute_is_a_notice_naming_known_keys() -> None:
    document = doc("text\n\n```sh {nmae=x closeTerminalOnSuccess=false runme.dev/id=1}\nx\n```\n")
    assert len(document.notices) == 1
    notice = document.notices[0]
    assert notice.line == 2
    assert notice.message.startswith("unknown attribute 'nmae' (did you mean 'name'?)")
    assert "known attributes: ansi, answers," in notice.message


def test_unknown_key_in_directive_is_reported_at_the_directive() -> None:
    document = doc("<!--\nrunbook: {timout: 3}\n-->\n```sh\nx\n```\n")
    assert [n.line for n in document.notices] == [1]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ("sh {name = x}", "spaces around '=' in attribute 'name'"),
        ("sh {name= x}", "spaces around '=' in attribute 'name'"),
        ('sh {skip="not today}', "unbalanced \" quote in attribute 'skip'"),
        ("sh {name=x", "the attributes in the info string open '{' but never close it"),
        ("sh {=x}", "'=' without an attribute name in {=x}"),
        ("sh {timeout=soon}", "timeout must be a number of seconds such as 30 or 2m, not 'soon'"),
        ("sh {timeout=0}", "timeout must be greater than 0 seconds, not '0'"),
        ("sh {exit=256}", "exit must be a status 0-255, 'any' or 'nonzero', not '256'"),
        ("sh {exit=some}", "exit must be a status 0-255, 'any' or 'nonzero', not 'some'"),
        ("sh {background=maybe}", "background must be true or false, not 'maybe'"),
        ('sh {"excludeFromRunAll":"sure"}', "excludeFromRunAll must be true or false, not 'sure'"),
        ("sh {ignore=perhaps}", "ignore must be true or false, not 'perhaps'"),
        ("sh {platform=linx}", "unknown platform 'linx'"),
        ("sh {match=fuzzy}", "match must be exact or contains, not 'fuzzy'"),
        ("sh {ansi=yes}", "ansi must be keep or strip, not 'yes'"),
        ("sh {answers=y}", "answers must be a list of {expect, send} mappings"),
        ('sh {interpreter="python3}', "unbalanced \" quote in attribute 'interpreter'"),
        ("sh {interpreter=''}", "interpreter is empty"),
        ('sh {"name": "x",}', "invalid JSON attributes"),
        ("sh {stdin=\\x4}", "bad \\x escape in stdin"),
    ],
)
def test_bad_attributes_name_the_fence_line(info: str, message: str) -> None:
    err = error(f"# Title\n\n```{info}\necho\n```\n")
    assert err.line == 2
    assert err.path == "t.md"
    assert err.message.startswith(message), err.message
    assert err.hint
    assert str(err).startswith("t.md:3: ")


def test_bad_regex_is_an_error() -> None:
    err = error('```sh {ready="Listening (on"}\nx\n```\n')
    assert err.message.startswith("ready is not a valid regular expression")
    err = error('<!-- runbook: {answers: [{expect: "(", send: y}]} -->\n```sh\nx\n```\n')
    assert (err.line, err.message.split(" (")[0]) == (
        0,
        "answers.expect is not a valid regular expression",
    )


def test_bad_value_in_a_directive_names_the_directive_line() -> None:
    err = error("<!-- runbook: {timeout: soon} -->\n\n```sh\nx\n```\n")
    assert err.line == 0


def test_bad_directive_yaml_names_its_line() -> None:
    err = error("text\n\n<!-- runbook:\nname: install\ntimeout: [\n-->\n```sh\necho\n```\n")
    assert err.line == 5
    assert err.message.startswith("invalid YAML in the runbook directive")
    err = error("<!-- runbook: [a, b] -->\n```sh\nx\n```\n")
    assert (err.line, err.message) == (0, "the runbook directive must be a mapping, not list")


def test_bad_attributes_on_documentation_blocks_are_tolerated() -> None:
    assert doc("```json {\n{}\n```\n```text {a = b}\nx\n```\n").cells == ()


def test_bad_attributes_on_output_blocks_are_errors() -> None:
    assert error("```sh\nx\n```\n```output {match = contains}\nx\n```\n").line == 3


# -- notices --------------------------------------------------------------------------------


def test_unclosed_fence_swallows_the_rest_and_warns() -> None:
    document = doc("```sh\necho a\n\n# Heading\n```sh\necho b\n")
    assert len(document.cells) == 1
    cell = document.cells[0]
    assert cell.block is not None
    assert cell.block.content_end == 6
    assert [n.line for n in document.notices] == [0]
    assert "never closed" in document.notices[0].message


def test_directive_not_followed_by_a_fence_is_a_notice() -> None:
    document = doc("<!-- runbook: {name: a} -->\n\nSome text.\n\n```sh\nx\n```\n")
    assert document.cells[0].name == "x"
    assert [n.line for n in document.notices] == [0]
    assert "not directly followed by a code fence" in document.notices[0].message


def test_other_html_comments_are_ignored() -> None:
    document = doc("<!-- prettier-ignore -->\n```sh\nx\n```\n")
    assert document.notices == ()
    assert document.cells[0].name == "x"


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "name"),
    [
        (['echo "Hello, runme!"'], "echo-hello"),
        (['$ echo "Hello, runme!"'], "echo-hello"),
        (["temp_dir=$(mktemp -d -t runme-XXXXXXX)"], "tempdir"),
        (["grpcurl \\", "  -d x"], "grpcurl-"),
        (['echo  "By default I am not excluded"'], "echo-"),
        (["cat > heredoc << EOF"], "cat-"),
        (["# a comment", "echo Inferred"], "echo-inferred"),
        (["echo hi # trailing comment"], "echo-hi"),
        (['export VERSION="v1" # note'], "export-version"),
        (["package main"], "package-main"),
        (["$ stty -opost"], "stty-opost"),
        (['echo "1"'], "echo-1"),
        (["# Only comments here"], "only"),
        (["", "  ", "ls"], "ls"),
        ([], ""),
        (["==="], ""),
        (["abcdefghijklmnopqrstuvwxyz0123456789 second"], "abcdefghijklmnopqrstuvwxyz012345"),
        (["ééééééééééééééééé tail"], ""),
        (["Echo Hello World"], "echo-hello"),
    ],
)
def test_runme_name_generator(lines: List[str], name: str) -> None:
    assert generate(lines) == name


def test_names_dedupe_across_every_code_block() -> None:
    text = """
    ```sh
    echo "Hello, runme!"
    ```

    ```json
    echo "Hello, runme!"
    ```

        echo "Hello, runme!"

    ```output
    echo hello
    ```

    ```
    echo "Hello"
    ```

    ```sh {name=echo-hello}
    x
    ```
    """
    assert names(text) == ["echo-hello", "echo-hello-6"]
    assert names(text, Defaults(bare_fences="shell")) == [
        "echo-hello",
        "echo-hello-5",
        "echo-hello-6",
    ]


def test_explicit_duplicates_get_suffixes_and_stay_unique() -> None:
    text = "```sh {name=x-2}\na\n```\n```sh {name=x}\na\n```\n```sh {name=x}\na\n```\n"
    assert names(text) == ["x-2", "x", "x-3"]
    assert [c.generated_name for c in doc(text).cells] == [False, False, False]


def test_empty_generated_name_falls_back_to_the_line() -> None:
    cells = doc("text\n\n```sh\n```\n```sh\n# ===\n```\n").cells
    assert [c.name for c in cells] == ["cell-3", "cell-5"]
    assert all(c.generated_name for c in cells)


def test_double_colon_in_names_is_replaced() -> None:
    assert names("```sh {name=ns::task}\nx\n```\n") == ["ns-task"]


def test_ignored_blocks_still_take_names() -> None:
    text = "```sh {ignore=true}\necho a\n```\n```sh\necho a\n```\n"
    assert names(text) == ["echo-a-2"]


# -- frontmatter ----------------------------------------------------------------------------


def test_yaml_frontmatter_options() -> None:
    document = doc(
        """
        ---
        title: Docusaurus page
        sidebar_position: 2
        runme: {id: 01H, version: v3}
        shell: bash
        cwd: tmp
        env: {A: 1, B: true, C: null, D: text}
        timeout: 2m
        on-failure: stop
        substitutions: {"[HOST]": example.org}
        fixtures: [tmp_path, my_server]
        skipPrompts: true
        category: docs,slow
        ---
        ```sh
        x
        ```
        """
    )
    options = document.options
    assert options.cwd == "tmp"
    assert options.env == {"A": "1", "B": "true", "C": "", "D": "text"}
    assert (options.timeout, options.on_failure) == (120.0, "stop")
    assert options.substitutions == {"[HOST]": "example.org"}
    assert options.fixtures == ("tmp_path", "my_server")
    assert options.skip_prompts is True
    assert options.tags == ("docs", "slow")
    assert options.shell == ("bash",)
    assert document.meta["title"] == "Docusaurus page"
    assert document.cells[0].line == 14
    assert document.notices == ()


def test_yaml_env_values_are_the_text_as_written() -> None:
    # YAML 1.1 typing would give 1.1, 1.5, True, 8 and a date; the shell wants the text.
    options = doc(
        """
        ---
        env:
          VERSION: 1.10
          RATIO: 1.50
          ON: yes
          NO: off
          OCTAL: 010
          HEX: 0x1F
          BIG: 1e3
          DAY: 2024-01-02
          TRUE: True
          QUOTED: "1.10"
          EMPTY:
          TILDE: ~
          NULL: null
          FOLDED: a
            b
        substitutions: {"[VERSION]": 1.10, "[ON]": yes}
        ---
        """
    ).options
    assert options.env == {
        "VERSION": "1.10",
        "RATIO": "1.50",
        "ON": "yes",
        "NO": "off",
        "OCTAL": "010",
        "HEX": "0x1F",
        "BIG": "1e3",
        "DAY": "2024-01-02",
        "TRUE": "True",
        "QUOTED": "1.10",
        "EMPTY": "",
        "TILDE": "",
        "NULL": "",
        "FOLDED": "a b",
    }
    assert options.substitutions == {"[VERSION]": "1.10", "[ON]": "yes"}


def test_yaml_env_text_under_runbook_and_through_anchors() -> None:
    document = doc(
        "---\nbase: &b {V: 1.10}\nenv: {<<: *b, W: 2.50}\nrunbook:\n  env: {X: 0.10}\n"
        "timeout: 1.5\n---\n"
    )
    # runbook: wins over the top level; other keys keep their YAML types.
    assert document.options.env == {"X": "0.10"}
    assert document.options.timeout == 1.5
    assert document.meta["env"] == {"V": "1.10", "W": "2.50"}
    assert document.meta["base"] == {"V": 1.1}


def test_toml_and_json_env_values_are_typed_by_their_author() -> None:
    toml = doc('+++\n[env]\nA = 1.10\nB = true\nC = 3\nD = "1.10"\n+++\n').options
    assert toml.env == {"A": "1.1", "B": "true", "C": "3", "D": "1.10"}
    json_env = doc('{"env": {"A": 1.10, "B": false, "C": null, "D": "1.10"}}\n').options
    assert json_env.env == {"A": "1.1", "B": "false", "C": "", "D": "1.10"}


def test_runbook_mapping_wins_over_top_level_keys() -> None:
    options = doc(
        "---\ntimeout: 5\non_failure: stop\nrunbook:\n  timeout: 7\n  on-failure: continue\n"
        "  skip: needs a cluster\n---\n"
    ).options
    assert (options.timeout, options.on_failure, options.skip) == (
        7.0,
        "continue",
        "needs a cluster",
    )
    assert options.enabled is True


def test_runbook_false_disables_the_file() -> None:
    assert doc("---\nrunbook: false\n---\n```sh\nx\n```\n").options.enabled is False
    assert doc("---\nrunbook: {enabled: false}\n---\n").options.enabled is False
    assert doc("---\nrunbook: {skip: true}\n---\n").options.skip


def test_unknown_runbook_key_is_a_notice() -> None:
    document = doc("---\nrunbook:\n  timout: 3\n---\n")
    assert [n.line for n in document.notices] == [2]


def test_toml_frontmatter() -> None:
    document = doc(
        '+++\ntimeout = 3\ntag = ["a"]\n[runbook]\nshell = "zsh"\n+++\n\n```sh\nx\n```\n'
    )
    assert (document.options.timeout, document.options.tags) == (3.0, ("a",))
    assert document.cells[0].interpreter == ("zsh",)
    assert document.cells[0].line == 7


def test_json_frontmatter() -> None:
    document = doc('{\n  "runme": {"id": "01H"},\n  "shell": "bash"\n}\n\n```sh\nx\n```\n')
    assert document.meta == {"runme": {"id": "01H"}, "shell": "bash"}
    assert document.cells[0].line == 5


def test_brace_at_the_top_that_is_not_json_is_markdown() -> None:
    assert doc("{% raw %}\n```sh\nx\n```\n").meta == {}


def test_thematic_break_without_closing_is_not_frontmatter() -> None:
    assert doc("---\n\n```sh\nx\n```\n").cells[0].line == 2


def test_empty_frontmatter() -> None:
    document = doc("---\n---\n```sh\nx\n```\n")
    assert (document.meta, document.cells[0].line) == ({}, 2)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("---\ntitle: x\n  bad: [\n---\n", 2, "invalid YAML frontmatter: mapping values are not"),
        ("---\n- a\n---\n", 0, "frontmatter must be a mapping of keys to values, not list"),
        ("---\njust text\n---\n", 0, "frontmatter must be a mapping of keys to values, not str"),
        ("+++\na = 1\nb = \n+++\n", 2, "invalid TOML frontmatter"),
        ('{\n  "a": 1,\n}\n', 2, "invalid JSON frontmatter"),
        ("---\nenv: [a]\n---\n", 1, "env must be a mapping of names to strings"),
        ("---\nenv: {A: [1]}\n---\n", 1, "env value for 'A' must be a string"),
        ("---\ntimeout: soon\n---\n", 1, "timeout must be a number of seconds such as 30 or 2m"),
        ("---\non-failure: halt\n---\n", 1, "on-failure must be continue or stop, not 'halt'"),
        ("---\nbare-fences: run\n---\n", 1, "bare-fences must be shell or skip, not 'run'"),
        ("---\nrunbook: maybe\n---\n", 1, "runbook must be true or false, not 'maybe'"),
        ("---\nshell: ''\n---\n", 1, "shell is empty"),
        ("---\nskipPrompts: sometimes\n---\n", 1, "skipPrompts must be true or false"),
        ("---\nx: 1\nrunbook:\n  timeout: -1\n---\n", 3, "timeout must be greater than 0"),
        ("---\ntitle: x\nhome: ~/work\n---\n", 2, "home must be tmp (a fresh, empty HOME"),
        ("---\nrunbook:\n  home: yes\n---\n", 2, "home must be tmp"),
    ],
)
def test_frontmatter_errors(text: str, line: int, message: str) -> None:
    err = error(text)
    assert (err.line, err.path) == (line, "t.md")
    assert err.message.startswith(message), err.message
    assert err.hint


def test_every_problem_is_collected_not_only_the_first() -> None:
    err = error(
        """
        ---
        title: [unclosed
        ---
        ```sh {name=a timeout=soon exit=often tiemout=3}
        echo a
        ```
        ```sh {name="b}
        echo b
        ```
        ```sh {"name": }
        echo c
        ```
        """
    )
    assert isinstance(err, InvalidDocument)
    assert [(p.line, p.message.split(":")[0]) for p in err.errors] == [
        (2, "invalid YAML frontmatter"),
        (3, "timeout must be a number of seconds such as 30 or 2m, not 'soon'"),
        (3, "exit must be a status 0-255, 'any' or 'nonzero', not 'often'"),
        (6, "unbalanced \" quote in attribute 'name'"),
        (9, 'invalid JSON attributes {"name"'),
    ]
    assert [(n.line, n.message[:27]) for n in err.notices] == [(3, "unknown attribute 'tiemout'")]
    # the first error is the RunbookError's own: code that reads one error keeps working
    assert (err.line, err.message) == (err.errors[0].line, err.errors[0].message)
    text = str(err).splitlines()
    assert text[0] == (
        "t.md: 5 errors and 1 warning; nothing in the file runs until the errors are fixed"
    )
    assert text[1] == "t.md:3: invalid YAML frontmatter: " + err.errors[0].message.split(": ", 1)[1]


def test_one_error_alone_reads_as_before() -> None:
    err = error("```sh {timeout=soon}\necho\n```\n")
    assert str(err) == (
        "t.md:1: timeout must be a number of seconds such as 30 or 2m, not 'soon'\n"
        "  fix: write timeout=30 (seconds), timeout=2m or timeout=1h"
    )


def test_frontmatter_error_hints_use_yaml_syntax() -> None:
    assert error("---\ntimeout: soon\n---\n").hint.startswith("write timeout: 30")


# -- read() ---------------------------------------------------------------------------------


def test_read_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_bytes(b"line\nmore\x00\x01")
    with pytest.raises(RunbookError) as info:
        read(str(path))
    assert (info.value.path, info.value.line) == (str(path), 1)
    assert info.value.message.startswith("binary file")


def test_read_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "l.md"
    path.write_bytes("# café\n\nok\n".encode() + b"caf\xe9\n")
    with pytest.raises(RunbookError) as info:
        read(str(path))
    assert info.value.line == 3
    assert info.value.message.startswith("not valid UTF-8")
    assert info.value.hint == "save the file as UTF-8"


def test_read_strips_a_bom_and_keeps_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf---\r\ntimeout: 4\r\n---\r\n```sh\r\necho\r\n```\r\n")
    document = read(str(path))
    assert document.bom is True
    assert document.text.startswith("---\r\n")
    assert document.newline == "\r\n"
    assert document.options.timeout == 4
    assert document.cells[0].line == 3
    assert document.path == str(path)


# -- the Runme corpus -----------------------------------------------------------------------

_SHELLISH = {"sh", "bash", "shell", "zsh", "shellscript", "console", "shell-session"}
_KNOWN = {"python", "py", "python3", "js", "javascript", "node", "ts", "typescript", "ruby",
          "rb", "perl", "pl", "php", "lua"}  # fmt: skip


def _expected_cell(entry: Dict[str, Any], bare_fences: str) -> bool:
    """Our rules (SPEC 2) applied to the corpus' recorded language and attributes."""
    if entry["status"] == "not-a-cell":
        return False
    language = entry["language"] or ""
    attributes = entry["attributes"]
    if language in _SHELLISH or "interpreter" in attributes:
        return True
    if language == "":
        return bool(attributes) or bare_fences == "shell"
    # Named, or carrying Runme attributes (the corpus has only key=value / JSON ones).
    return language in _KNOWN and bool(attributes)


def _corpus() -> List[Dict[str, Any]]:
    if not (COMPAT / "expectations.json").exists():
        return []
    files: List[Dict[str, Any]] = json.loads(
        (COMPAT / "expectations.json").read_text(encoding="utf-8")
    )["files"]
    return files


@pytest.mark.skipif(not COMPAT.exists(), reason="Runme compat corpus not present")
@pytest.mark.parametrize("bare_fences", ["skip", "shell"])
@pytest.mark.parametrize("entry", _corpus(), ids=lambda e: e["file"])
def test_runme_corpus_names_lines_and_cells(entry: Dict[str, Any], bare_fences: str) -> None:
    document = read(str(COMPAT / entry["file"]), Defaults(bare_fences=bare_fences))
    cells = {cell.name: cell for cell in document.cells}
    wanted = [c for c in entry["cells"] if _expected_cell(c, bare_fences)]
    assert [c.name for c in document.cells] == [c["name"] for c in wanted]
    for expected in wanted:
        cell = cells[expected["name"]]
        assert cell.line + 1 == expected["line"], expected["name"]
        assert cell.generated_name == expected["generated_name"], expected["name"]
        assert cell.language == (expected["language"] or "")
        assert cell.options.exclude_from_run_all == (expected["status"] == "excluded")
    assert document.notices == ()


@pytest.mark.skipif(not COMPAT.exists(), reason="Runme compat corpus not present")
def test_runme_corpus_specifics() -> None:
    hello = read(str(COMPAT / "examples__grpc-client__hello.md"))
    assert hello.options.shell == ("zsh",)
    assert [(c.kind, c.interpreter) for c in hello.cells] == [("shell", None)] * 2
    basic = read(str(COMPAT / "testdata__script__basic__README.md"))
    kinds = {c.name: (c.kind, c.interpreter) for c in basic.cells}
    assert kinds["hello-js"] == ("script", ("node",))
    assert kinds["hello-cat"] == ("script", ("cat",))
    assert kinds["hello-python"] == ("script", ("python3",))
    tags = read(str(COMPAT / "testdata__tags__tags__install-manual-solution-2.md"))
    assert tags.options.tags == ("solution-2",)
    assert read(str(COMPAT / "testdata__flags__fmt__LCID-all.md")).meta["runme"]["version"] == "v3"
    vscode = read(str(COMPAT / "vscode-runme__examples__README.md"))
    assert {c.name: c.interpreter for c in vscode.cells}["import-os"] == ("/usr/bin/python3",)


# -- fuzzing --------------------------------------------------------------------------------

_PIECES = [
    "```", "````", "~~~", "```sh", "```bash {", "```console\n$ ", "```output", "{", "}", "=",
    '"', "'", "\\", "name=", "timeout=", "exit=", "stdin=", '{"name":', "<!--", "-->",
    "<!-- runbook:", "runbook: {", "---", "+++", "{\n", "$ ", "> ", "- ", "1. ", "    ", "\t",
    "\n", "\n\n", "\r\n", "\r", "#!", "[1]", "[", "]", ":", "answers:", "- {expect:", "\x00",
    "é", "::", "ignore", "interpreter=", "python {name=", " ", "a", "echo hi",
]  # fmt: skip


def _check(text: str, defaults: Defaults = DEFAULTS) -> None:
    try:
        document = parse(text, "f.md", defaults)
    except RunbookError as err:
        assert err.path == "f.md"
        assert err.line is None or err.line >= 0
        str(err)
        return
    seen = [cell.name for cell in document.cells]
    assert len(seen) == len(set(seen))
    for cell in document.cells:
        assert cell.name
        assert cell.block is not None
        assert cell.block.fence_line < cell.block.content_start <= cell.block.content_end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=40), st.booleans())
def test_fuzz_markdownish_text(pieces: List[str], shell: bool) -> None:
    _check("".join(pieces), Defaults(bare_fences="shell" if shell else "skip"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_through_read(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f.md"
    path.write_bytes(data)
    try:
        read(str(path))
    except RunbookError as err:
        assert err.path == str(path)


def test_toml_dates_in_env_are_written_as_toml_writes_them() -> None:
    document = doc(
        "+++\n[env]\nDAY = 2024-01-02\nWHEN = 2024-01-02T07:32:00\n+++\n```sh\necho\n```\n"
    )
    assert document.options.env == {"DAY": "2024-01-02", "WHEN": "2024-01-02T07:32:00"}


def test_a_frontmatter_key_close_to_ours_is_a_notice() -> None:
    document = doc(
        "---\ntitle: Hello\nsidebar_position: 3\ntags: [docs]\ntimout: 1\nevn:\n  A: 1\n"
        "runbook:\n  timout: 3\n---\n```sh\necho\n```\n"
    )
    messages = [(n.line, n.message) for n in document.notices]
    assert (
        4,
        "frontmatter key 'timout' is not one pytest-runbook reads; did you mean 'timeout'?",
    ) in messages
    assert any("'evn'" in m and "'env'" in m for _, m in messages)
    assert any("'runbook.timout' (did you mean 'timeout'?)" in m for _, m in messages)
    assert not any("title" in m or "sidebar" in m or "'tags'" in m for _, m in messages)


def test_frontmatter_home_tmp_and_its_near_misses() -> None:
    assert doc("---\nhome: tmp\n---\n```sh\necho\n```\n").options.home == "tmp"
    assert doc("---\nrunbook: {home: TMP}\n---\n```sh\necho\n```\n").options.home == "tmp"
    assert doc("```sh\necho\n```\n").options.home is None  # the ini setting decides
    document = doc("---\ntitle: x\nhoem: tmp\nrunbook: {hom: tmp}\n---\n```sh\necho\n```\n")
    messages = [(n.line, n.message) for n in document.notices]
    assert (2, "frontmatter key 'hoem' is not one pytest-runbook reads; did you mean 'home'?") in (
        messages
    )
    assert any("'runbook.hom' (did you mean 'home'?); known keys: " in m for _, m in messages)
    assert document.options.home is None


def test_tags_named_like_pytest_marks_or_expression_words_are_renamed() -> None:
    document = doc("```sh {name=a tag=skip,not,fast}\necho\n```\n")
    assert document.cells[0].options.tags == ("tag_skip", "tag_not", "fast")
    assert "select it with -m 'tag_skip'" in document.notices[0].message


def test_a_misspelled_runbook_key_is_a_notice() -> None:
    document = doc("---\nrunbok:\n  timeout: 3\n---\n```sh\necho\n```\n")
    assert "did you mean 'runbook'?" in document.notices[0].message
