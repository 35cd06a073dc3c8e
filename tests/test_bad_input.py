"""Bad input (SPEC 7): each a clear message naming file:line and the fix, through pytest.

Never a plugin traceback, never a hang, never a changed file. The fuzz tests at the end feed
random Markdown-shaped text and random bytes to the parser: a Document or a RunbookError.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_runbook.document import Defaults, Document, parse, read
from pytest_runbook.errors import RunbookError

RUN_LIMIT = 20.0  # seconds for one in-process pytest run: generous, a hang would take 60


def run(
    pytester: pytest.Pytester, data: bytes, *args: str, name: str = "doc.md"
) -> pytest.RunResult:
    path = pytester.path / name
    path.write_bytes(data)
    started = time.monotonic()
    result = pytester.runpytest(name, "-p", "no:cacheprovider", "-rs", *args)
    assert time.monotonic() - started < RUN_LIMIT
    assert path.read_bytes() == data, "the run changed the file"
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert "pytest_runbook" not in out, "a plugin path leaked into the report"
    return result


def md(text: str) -> bytes:
    return text.encode("utf-8")


# (id, file bytes, outcomes, lines the output must contain in order)
ERRORS: List[Any] = [
    pytest.param(
        md("---\ntitle: [unclosed\nother: 1\n---\n\n```sh\necho hi\n```\n"),
        ["doc.md:3: invalid YAML frontmatter: *", "  fix: fix the YAML between the '---' lines*"],
        id="yaml-frontmatter",
    ),
    pytest.param(
        md('+++\ntimeout = "\n+++\n\n```sh\necho hi\n```\n'),
        ["doc.md:*: invalid TOML frontmatter: *", "  fix: fix the TOML between the '+++' lines*"],
        id="toml-frontmatter",
    ),
    pytest.param(
        md("---\ntimeout: soon\n---\n\n```sh\necho hi\n```\n"),
        ["doc.md:2: *timeout must be a number of seconds*", "  fix: write timeout: 30*"],
        id="frontmatter-timeout",
    ),
    pytest.param(
        md("---\non-failure: maybe\n---\n\n```sh\necho hi\n```\n"),
        ["doc.md:2: *on-failure must be continue or stop, not 'maybe'", "  fix: *"],
        id="frontmatter-choice",
    ),
    pytest.param(
        md("---\nenv: [A, B]\n---\n\n```sh\necho hi\n```\n"),
        ["doc.md:2: *env must be a mapping of names to strings*", "  fix: *"],
        id="frontmatter-env-list",
    ),
    pytest.param(
        md("Intro.\n\n<!-- runbook: {name: [bad -->\n```sh\necho hi\n```\n"),
        ["doc.md:3: invalid YAML in the runbook directive: *", "  fix: write a YAML mapping*"],
        id="directive-yaml",
    ),
    pytest.param(
        md('<!-- runbook: {answers: "y"} -->\n```sh\nread x\n```\n'),
        ["doc.md:1: *answers must be a list of {expect, send} mappings*", "  fix: *"],
        id="directive-answers-shape",
    ),
    pytest.param(
        md("# Title\n\n```sh {name=a timeout=soon}\necho hi\n```\n"),
        [
            "doc.md:3: timeout must be a number of seconds such as 30 or 2m, not 'soon'",
            "  fix: write timeout=30 (seconds), timeout=2m or timeout=1h",
        ],
        id="timeout-soon",
    ),
    pytest.param(
        md('# Title\n\n```sh {name=a, "x": }\necho hi\n```\n'),
        ["doc.md:3: a quote where an attribute name should be *", "  fix: write key=value pairs*"],
        id="neither-json-nor-key-value",
    ),
    pytest.param(
        md('```sh {"name": "a", "timeout": }\necho hi\n```\n'),
        ["doc.md:1: invalid JSON attributes *", "  fix: write key=value pairs*"],
        id="broken-json",
    ),
    pytest.param(
        md('```sh {name="a}\necho hi\n```\n'),
        ["doc.md:1: unbalanced \" quote in attribute 'name'", "  fix: close the quote: *"],
        id="unbalanced-quote",
    ),
    pytest.param(
        md('```sh {name=a background=true ready="(unclosed"}\necho hi\n```\n'),
        ["doc.md:1: *ready*not a valid regular expression*", "  fix: *"],
        id="bad-ready-regex",
    ),
    pytest.param(
        md("```sh {name=a exit=often}\necho hi\n```\n"),
        ["doc.md:1: *exit*often*", "  fix: *"],
        id="bad-exit",
    ),
    pytest.param(
        md("# caf\xe9\n").replace(b"\xc3\xa9", b"\xe9") + md("\n```sh\necho hi\n```\n"),
        ["doc.md:1: not valid UTF-8 (byte 0xe9 at offset 5)", "  fix: save the file as UTF-8"],
        id="latin-1",
    ),
    pytest.param(
        "# T\n\n```sh\necho hi\n```\n".encode("utf-16"),
        [
            "doc.md:1: UTF-16 (little-endian) text, not UTF-8",
            "  fix: convert it: iconv -f UTF-16 -t UTF-8 doc.md > doc.md.utf8 "
            "&& mv doc.md.utf8 doc.md",
        ],
        id="utf-16-with-bom",
    ),
    pytest.param(
        "# T\n\n```sh\necho hi\n```\n".encode("utf-16-be"),
        ["doc.md:1: UTF-16 (big-endian) text, not UTF-8", "  fix: *iconv -f UTF-16BE -t UTF-8 *"],
        id="utf-16-be-without-bom",
    ),
    pytest.param(
        "# T\n\n```sh\necho hi\n```\n".encode("utf-32-le"),
        [
            "doc.md:1: UTF-32 (little-endian) text, not UTF-8",
            "  fix: *iconv -f UTF-32LE -t UTF-8 *",
        ],
        id="utf-32-le-without-bom",
    ),
    pytest.param(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        [
            "doc.md:3: binary file (it contains a NUL byte), not Markdown text",
            "  fix: leave binary files out of runbook_patterns, or rename the file",
        ],
        id="binary",
    ),
    pytest.param(
        md("---\ntitle: x\nshell: nosuchshell\n---\n\n```sh\necho hi\n```\n"),
        [
            "doc.md:3: frontmatter shell 'nosuchshell' is not installed (not found on PATH); the "
            "file's shell cells would run through it",
            "  fix: install nosuchshell, correct the name, or remove it to run the shell cells "
            "in bash",
        ],
        id="unknown-shell",
    ),
]


@pytest.mark.parametrize("data, wanted", ERRORS)
def test_collection_error_names_file_line_and_fix(
    pytester: pytest.Pytester, data: bytes, wanted: Sequence[str]
) -> None:
    result = run(pytester, data)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting doc.md*", *wanted])
    # update mode, the one mode that writes Markdown, leaves a bad file alone too
    run(pytester, data, "--runbook-update=new").assert_outcomes(errors=1)


def test_every_problem_of_a_file_is_reported_at_once(pytester: pytest.Pytester) -> None:
    data = md(
        "---\non-failure: maybe\n---\n\n"  # line 2: an error
        "```sh {name=a tiemout=3}\necho a\n```\n\n"  # line 5: a typo, only a warning
        "```sh {name=b timeout=soon}\necho b\n```\n"  # line 9
        "```output\nb\n```\n\n"
        "<!-- runbook: {name: [bad -->\n```sh\necho c\n```\n\n"  # line 16
        "```console\n$ false\n[256]\n```\n"  # line 23
    )
    result = run(pytester, data)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting doc.md*",
            "doc.md: 4 errors and 1 warning; nothing in the file runs until the errors are fixed",
            "doc.md:2: on-failure must be continue or stop, not 'maybe'",
            "  fix: write on-failure: continue",
            "doc.md:5: warning: unknown attribute 'tiemout' (did you mean 'timeout'?); *",
            "doc.md:9: timeout must be a number of seconds such as 30 or 2m, not 'soon'",
            "  fix: write timeout=30 (seconds), timeout=2m or timeout=1h",
            "doc.md:16: invalid YAML in the runbook directive: *",
            "  fix: *",
            "doc.md:23: exit status [256] is out of range",
            "  fix: write a status from [0] to [255]",
        ]
    )
    # the warning is still a warning, at its line
    result.stdout.fnmatch_lines(["*doc.md:5: RunbookWarning: unknown attribute 'tiemout'*"])


def test_unknown_interpreter_is_an_error_naming_it_and_the_fix(pytester: pytest.Pytester) -> None:
    data = md(
        "# T\n\n```sh {name=a interpreter=nosuch}\necho hi\n```\n\n```sh {name=b}\necho ok\n```\n"
    )
    result = run(pytester, data)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:3: cell 'a' needs 'nosuch', which is not installed (not found on PATH)",
            "  fix: install it, or add requires=nosuch to skip the cell where it is missing",
        ]
    )


def test_attribute_typo_warns_with_known_keys_and_the_file_runs(pytester: pytest.Pytester) -> None:
    data = md("# T\n\n```sh {name=a timout=3}\necho hi\n```\n")
    result = run(pytester, data)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*doc.md:3: RunbookWarning: unknown attribute 'timout' (did you mean 'timeout'?); "
            "known attributes: ansi, answers, background, *, timeout, *"
        ]
    )


def test_unclosed_fence_warns_and_the_file_runs(pytester: pytest.Pytester) -> None:
    data = md("```sh {name=first}\necho one\n```\n\n```sh {name=open}\necho two\n")
    result = run(pytester, data)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*doc.md:5: RunbookWarning: *"])


def test_missing_working_directories_are_item_errors_with_the_fix(
    pytester: pytest.Pytester,
) -> None:
    data = md("```sh {name=a cwd=no/such/dir}\necho hi\n```\n\n```sh {name=b}\necho ok\n```\n")
    result = run(pytester, data)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["doc.md:1: cell 'a': cwd 'no/such/dir' is not a directory (*); fix: *"]
    )
    data = md("---\ncwd: ../nowhere-at-all\n---\n\n```sh {name=a}\necho hi\n```\n")
    result = run(pytester, data)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["doc.md:2: frontmatter cwd '../nowhere-at-all' is not a directory*"]
    )


def test_empty_and_frontmatter_only_files_yield_nothing(pytester: pytest.Pytester) -> None:
    run(pytester, b"").assert_outcomes()
    run(pytester, md("---\ntitle: x\n---\n")).assert_outcomes()
    run(pytester, md("\ufeff# only text\n\n```\nnot a cell\n```\n")).assert_outcomes()


# -- fuzzing the parser -------------------------------------------------------------------------

_WORDS = st.sampled_from(
    ["name", "timeout", "exit", "cwd", "interpreter", "background", "ready", "stdin", "skip",
     "xfail", "ignore", "answers", "match", "ansi", "tag", "teardown", "excludeFromRunAll",
     "promptEnv", "timout", "", "a b", "x=y", '"', "'", "{", "}", "[", "]", ":", "é", "\\"]
)  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(["30", "2m", "soon", "true", "false", "any", "nonzero", "-1", "1e999", "",
                     "python3", "a b", '"q"', "'q'", "(", "[0-9]+", "y\\n", "..", "tmp"]),
    st.text(max_size=6),
)  # fmt: skip


@st.composite
def _attributes(draw: Any) -> str:
    pairs = draw(st.lists(st.tuples(_WORDS, _VALUES, st.booleans()), max_size=4))
    style = draw(st.sampled_from(["kv", "json", "raw"]))
    if style == "json":
        body = ", ".join(f'"{k}": {v if bare else repr(v)}' for k, v, bare in pairs)
        return "{" + body + "}"
    if style == "kv":
        return "{ " + " ".join(f'{k}="{v}"' if q else f"{k}={v}" for k, v, q in pairs) + " }"
    return draw(st.text(max_size=12))


@st.composite
def _fence(draw: Any) -> str:
    marker = draw(st.sampled_from(["```", "````", "~~~", "```"]))
    language = draw(
        st.sampled_from(["sh", "bash", "console", "output", "python", "js", "", "text", "zsh"])
    )
    info = draw(st.one_of(st.just(""), _attributes()))
    body_lines = draw(
        st.lists(
            st.sampled_from(
                ["echo hi", "$ echo hi", "> more", "hi", "[2]", "...", "#!/usr/bin/env python3",
                 "x = 1", "```", "EOF", "cat <<EOF", "  indented", "", "\t", "é\u200b"]
            )
            | st.text(max_size=10),
            max_size=5,
        )
    )  # fmt: skip
    closed = draw(st.booleans()) or draw(st.booleans())
    indent = draw(st.sampled_from(["", "", "  ", "- ", "> ", "1. "]))
    text = f"{indent}{marker}{language} {info}\n" + "".join(f"{indent}{b}\n" for b in body_lines)
    return text + (f"{indent}{marker}\n" if closed else "")


@st.composite
def _directive(draw: Any) -> str:
    yaml_body = draw(
        st.sampled_from(
            ["{name: a}", "{name: [bad", "{answers: [{expect: 'x', send: y}]}", "{answers: 3}",
             "{timeout: soon}", "{stdin: 'a\\n'}", "name: a\n  timeout: 3", ": :", "{ready: '('}"]
        )
        | st.text(max_size=10)
    )  # fmt: skip
    closed = draw(st.booleans()) or draw(st.booleans())
    return f"<!-- runbook: {yaml_body}" + (" -->\n" if closed else "\n")


@st.composite
def _frontmatter(draw: Any) -> str:
    kind = draw(st.sampled_from(["yaml", "toml", "json", "none", "none"]))
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["shell", "cwd", "env", "timeout", "on-failure", "runbook",
                                 "tag", "bare-fences", "substitutions", "fixtures", "x"]),
                _VALUES,
            ),
            max_size=3,
        )
    )  # fmt: skip
    if kind == "yaml":
        return (
            "---\n" + "".join(f"{k}: {v}\n" for k, v in keys) + draw(st.sampled_from(["---\n", ""]))
        )
    if kind == "toml":
        return "+++\n" + "".join(f"{k} = {v}\n" for k, v in keys) + "+++\n"
    if kind == "json":
        return "{" + ", ".join(f'"{k}": "{v}"' for k, v in keys) + "}\n"
    return ""


@st.composite
def markdown_documents(draw: Any) -> str:
    parts = [draw(_frontmatter())]
    for _ in range(draw(st.integers(0, 6))):
        parts.append(
            draw(
                st.one_of(
                    _fence(),
                    _directive(),
                    st.sampled_from(["# Heading\n", "\n", "Some *text*.\n", "<!-- other -->\n",
                                     "    indented code\n", "| a | b |\n", "\r\n"]),
                    st.text(max_size=8),
                )
            )
        )  # fmt: skip
    text = "".join(parts)
    if draw(st.booleans()):  # a random mutation: cut, insert or swap a character
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.text(max_size=2)) + text[pos + draw(st.integers(0, 2)) :]
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text


def _check(text: str, defaults: Defaults) -> Optional[Document]:
    lines = max(1, text.count("\n") + text.count("\r") + 1)
    try:
        document = parse(text, "f.md", defaults)
    except RunbookError as err:
        assert err.path == "f.md"
        assert err.line is None or 0 <= err.line <= lines, (err.line, lines)
        assert err.message and err.hint, "every error says what is wrong and how to fix it"
        assert str(err).startswith("f.md")
        return None
    names = [cell.name for cell in document.cells]
    assert len(names) == len(set(names))
    for cell in document.cells:
        assert cell.name and "::" not in cell.name
        assert 0 <= cell.line < lines
        assert cell.options.timeout > 0
    for notice in document.notices:
        assert 0 <= notice.line <= lines
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdown_documents(), st.sampled_from(["skip", "shell"]))
def test_fuzz_markdown_shaped_documents(text: str, bare_fences: str) -> None:
    _check(text, Defaults(bare_fences=bare_fences))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | markdown_documents().map(lambda t: t.encode("utf-8")))
def test_fuzz_bytes_through_read(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("fuzz") / "f.md"
    path.write_bytes(data)
    try:
        read(str(path))
    except RunbookError as err:
        assert err.path == str(path) and err.message and err.hint
    assert path.read_bytes() == data
