"""Runme's conventions, end to end: attributes, frontmatter, session variables, polyglot cells.

Each test writes a small runbook the way Runme users write them and runs it through pytester
(real bash, real PTY). The real Runme runbooks are run in ``test_compat_runme.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
needs_perl = pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")


# -- attributes -------------------------------------------------------------------------


def test_names_generated_and_deduplicated_like_runme(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"id":"01HF7BT3HD84GWTQB8ZCWPH803"}
        $ echo "Hello, runme!"
        ```

        ```ini
        echo "Hello, documentation"
        ```

        ```sh
        echo "Hello, again"
        ```

        ```sh { name=deploy }
        echo one
        ```

        ```sh {"name":"deploy"}
        echo two
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--collect-only", "-q")
    # The ini block is not a cell but takes "echo-hello-2", as in `runme list`.
    result.stdout.fnmatch_lines(
        ["doc.md::echo-hello", "doc.md::echo-hello-3", "doc.md::deploy", "doc.md::deploy-2"]
    )
    assert pytester.runpytest("doc.md").ret == 0


def test_ui_only_keys_are_accepted_silently(pytester: pytest.Pytester, runbook) -> None:
    ui = (
        '"closeTerminalOnSuccess":"false","openTerminalOnError":"true","terminalRows":"20",'
        '"mimeType":"text/plain","interactive":"false,","id":"01H","runme.dev/id":"x"'
    )
    runbook(
        """
        ```sh {"name":"a",UI}
        echo a
        ```

        ```sh { name=b closeTerminalOnSuccess=false terminalRows=5 background=false }
        echo b
        ```
        """.replace("UI", ui)
    )
    result = pytester.runpytest("doc.md", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=2)
    assert "unknown attribute" not in result.stdout.str()


def test_ignore_and_transform_false_are_not_cells(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"ignored","ignore":"true"}
        exit 3
        ```

        ```sh { name=plain transform=false }
        exit 4
        ```

        ```sh { name=runs }
        echo ran
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["doc.md::runs PASSED*"])


def test_exclude_from_run_all_runs_only_when_named(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"set-token","excludeFromRunAll":"true"}
        export TOKEN=secret
        echo set
        ```

        ```sh {"name":"use-token","excludeFromRunAll":false}
        echo "token=${TOKEN:-}"
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*excludeFromRunAll: select it explicitly*set-token*"])

    # Selected by id: it runs (and its export reaches the next cell).
    result = pytester.runpytest("doc.md::set-token", "doc.md::use-token", "-v", "-s")
    result.assert_outcomes(passed=2)

    # -k naming it counts as explicit; a -k that merely lets everything through does not.
    pytester.runpytest("-k", "set-token", "doc.md").assert_outcomes(passed=1)
    pytester.runpytest("-k", "not network", "doc.md").assert_outcomes(passed=1, skipped=1)


def test_excluded_cell_is_not_run_as_setup(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"destroy","excludeFromRunAll":"true"}
        touch destroyed
        ```

        ```sh {"name":"check"}
        test ! -e destroyed
        ```
        """
    )
    pytester.runpytest("doc.md::check").assert_outcomes(passed=1)
    assert not (pytester.path / "destroyed").exists()


def test_cell_cwd_is_relative_to_the_file_workdir_and_per_cell(
    pytester: pytest.Pytester, runbook
) -> None:
    (pytester.path / "docs" / "sub").mkdir(parents=True)
    runbook(
        """
        ---
        cwd: ..
        ---

        ```sh {"name":"root"}
        basename "$PWD"
        ```

        ```output
        [ROOT_NAME]
        ```

        ```sh {"name":"in-sub","cwd":"docs/sub"}
        pwd
        ```

        ```output
        [CWD]
        ```

        ```sh {"name":"back"}
        basename "$PWD"
        ```

        ```output
        [ROOT_NAME]
        ```

        ```sh { name=absolute cwd=/ }
        pwd
        ```

        ```output
        /
        ```
        """.replace("[ROOT_NAME]", pytester.path.name),
        name="docs/doc.md",
    )
    result = pytester.runpytest("docs/doc.md", "-v")
    result.assert_outcomes(passed=4)


def test_missing_cell_cwd_fails_clearly(pytester: pytest.Pytester, runbook) -> None:
    # Runme silently runs in the parent directory instead; a test should not.
    runbook(
        """
        ```sh {"name":"nowhere","cwd":"no/such/dir"}
        pwd
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cwd 'no/such/dir' is not a directory*"])


def test_interpreter_attribute_overrides_language_and_frontmatter_shell(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ---
        shell: no-such-shell-xyz
        ---

        ```sh {"name":"as-bash","interpreter":"bash"}
        echo "$BASH_VERSION" | cut -c1
        ```

        ```js {"name":"as-cat","interpreter":"cat"}
        not javascript at all
        ```

        ```output
        not javascript at all
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-rs")
    result.assert_outcomes(passed=2)  # no cell runs through the missing shell: no error
    doc = pytester.path / "doc.md"
    doc.write_text(doc.read_text() + '\n```sh {"name":"frontmatter-shell"}\necho never\n```\n')
    # A session shell that is not installed is an error of the file (a typo there must not
    # turn into a run where every shell cell is skipped), unlike a missing interpreter=.
    result = pytester.runpytest("doc.md", "-rs")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["doc.md:2: frontmatter shell 'no-such-shell-xyz' is not installed (not found on PATH)*"]
    )


def test_tags_and_categories_become_markers(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ---
        category: solution-2
        ---

        ```sh {"name":"install"}
        echo install
        ```

        ```sh {"name":"net","tag":"network,slow"}
        echo net
        ```

        ```sh { name=delete category=delete-solution }
        echo delete
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-m", "solution-2", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result = pytester.runpytest("doc.md", "-m", "not network", "--strict-markers")
    result.assert_outcomes(passed=2, deselected=1)
    pytester.runpytest("doc.md", "-m", "delete-solution").assert_outcomes(passed=1, deselected=2)


# -- frontmatter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frontmatter",
    [
        "---\nshell: bash\ncwd: sub\nskipPrompts: true\ntag: fm\nrunme:\n  id: 01HF7B\n"
        "  version: v3\n---\n",
        '+++\nshell = "bash"\ncwd = "sub"\nskipPrompts = true\ntag = "fm"\n\n[runme]\n'
        'id = "01HF7B"\nversion = "v3"\n+++\n',
        '{\n  "shell": "bash",\n  "cwd": "sub",\n  "skipPrompts": true,\n  "tag": "fm",\n'
        '  "runme": {"id": "01HF7B", "version": "v3"}\n}\n',
    ],
    ids=["yaml", "toml", "json"],
)
def test_frontmatter_formats(pytester: pytest.Pytester, frontmatter: str) -> None:
    (pytester.path / "sub").mkdir()
    (pytester.path / "doc.md").write_text(
        frontmatter + '\n```sh {"name":"where"}\nbasename "$PWD"\n```\n\n```output\nsub\n```\n',
        encoding="utf-8",
    )
    result = pytester.runpytest("doc.md", "-m", "fm", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=1)


# -- session variables ------------------------------------------------------------------


def test_previous_output_and_named_output_exports(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"CLUSTER_ID"}
        echo c-1234
        ```

        ```sh {"name":"lower_name"}
        echo lower
        ```

        ```sh {"name":"use"}
        echo "previous=$__ cluster=$CLUSTER_ID lower=${lower_name:-unset}"
        ```

        ```output
        previous=lower cluster=c-1234 lower=unset
        ```

        ```python {"name":"from-python"}
        import os
        print(os.environ["CLUSTER_ID"], os.environ["__"])
        ```

        ```output
        c-1234 previous=lower cluster=c-1234 lower=unset
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("name", "exported"), [("ABC", True), ("ABC_123", True), ("AB", False), ("Abc_1", False)]
)
def test_env_name_rule(pytester: pytest.Pytester, runbook, name: str, exported: bool) -> None:
    runbook(
        f"""
        ```sh {{"name":"{name}"}}
        echo value
        ```

        ```sh {{"name":"check"}}
        echo "${{{name}:-unset}}"
        ```

        ```output
        {"value" if exported else "unset"}
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_runbook_env_and_prompt_env_placeholders(
    pytester: pytest.Pytester, runbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROM_ENVIRONMENT", "outer")
    monkeypatch.delenv("NOT_GIVEN", raising=False)
    monkeypatch.delenv("NOT_GIVEN2", raising=False)
    monkeypatch.delenv("ZONE", raising=False)
    runbook(
        """
        ```sh {"name":"prompted","promptEnv":"yes"}
        export REGION="Enter a region"
        export FROM_ENVIRONMENT='placeholder'
        export NOT_GIVEN="placeholder kept"
        echo "$REGION|$FROM_ENVIRONMENT|$NOT_GIVEN"
        export REGION=us-east-1 ZONE=a; export NOT_GIVEN2=b
        echo "$REGION|$ZONE|$NOT_GIVEN2"
        ```

        ```output
        eu-west-1|outer|placeholder kept
        eu-west-1|a|b
        ```

        ```sh {"name":"verbatim"}
        export REGION="written value"
        echo "$REGION"
        ```

        ```output
        written value
        ```

        ```sh {"name":"never","promptEnv":"never"}
        export FROM_ENVIRONMENT=literal
        echo "$FROM_ENVIRONMENT"
        ```

        ```output
        literal
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--runbook-env", "REGION=eu-west-1")
    result.assert_outcomes(passed=3)


def test_dollar_prompt_is_dropped_only_with_its_space(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"prompts"}
        $ export GREETING=hi PRINTER=echo
        $PRINTER "a \\$VAR line is code"
        $ echo "$GREETING"
        ```

        ```output
        a $VAR line is code
        hi
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=1)


def test_cells_run_under_errexit_like_runme(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"multi"}
        failhereplease
        echo multi
        ```

        ```sh {"name":"after"}
        echo "still here"
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*failhereplease: command not found*", "*exit status: 127*"])
    assert "multi\n" not in result.stdout.str().split("exit status: 127")[0].split("output:")[-1]


# -- polyglot cells ---------------------------------------------------------------------


@needs_node
@needs_perl
def test_polyglot_cells_see_session_exports_and_cwd(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"setup"}
        export SHARED=from-shell
        mkdir -p work && cd work
        ```

        ```python {"name":"py"}
        import os
        print("py", os.environ["SHARED"], os.path.basename(os.getcwd()))
        ```

        ```output
        py from-shell work
        ```

        ```js {"id":"01HNQWVXY92G9KC9VYB17EMNR4"}
        console.log("js", process.env.SHARED, require("path").basename(process.cwd()))
        ```

        ```output
        js from-shell work
        ```

        ```javascript { interactive=false }
        console.log("javascript", process.env.SHARED)
        ```

        ```output
        javascript from-shell
        ```

        ```perl {"name":"pl"}
        use Cwd; my @d = split m{/}, getcwd(); print "perl $ENV{SHARED} $d[-1]\\n";
        ```

        ```output
        perl from-shell work
        ```

        ```
        #!/usr/bin/env python3
        import os
        print("shebang", os.environ["SHARED"])
        ```

        ```output
        shebang from-shell
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["doc.md::setup", "doc.md::py", "doc.md::consolelogjs-process*"])
    pytester.runpytest("doc.md").assert_outcomes(passed=6)


def test_plain_python_example_is_documentation(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```python
        raise SystemExit("documentation, never run")
        ```

        ```js {1,3}
        process.exit(1)
        ```

        ```sh {"name":"only"}
        echo only
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["doc.md::only", "*1 test collected*"])


def test_script_cell_failure_and_python_errors(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```py {"name":"boom"}
        import sys
        print("about to fail")
        sys.exit(3)
        ```

        ```py {"name":"declared","exit":"3"}
        raise SystemExit(3)
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*about to fail*", "*exit status: 3*"])


def test_missing_interpreter_is_an_error_naming_it_and_requires_skips(
    pytester: pytest.Pytester, runbook, tmp_path: Path
) -> None:
    # A PATH with bash and coreutils but without ruby/php/lua: those cells are errors naming
    # the program and the fix (SPEC 7); requires= is how a cell asks to be skipped instead.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "cat", "env", "mkdir", "rm", "stty", "sleep", "printf"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    runbook(
        f"""
        ---
        env:
          PATH: "{bin_dir}"
        ---

        ```ruby {{"name":"rb"}}
        puts "hi"
        ```

        ```php {{"name":"php"}}
        <?php echo "hi";
        ```

        ```lua {{"name":"lua"}}
        print("hi")
        ```

        ```sh {{"name":"fake","interpreter":"fake-interpreter-xyz --flag"}}
        hi
        ```

        ```ts {{"name":"ts"}}
        console.log("hi")
        ```

        ```ruby {{"name":"optional","requires":"ruby"}}
        puts "hi"
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-rs")
    result.assert_outcomes(errors=5, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "doc.md:6: cell 'rb' needs 'ruby', which is not installed (not found on PATH)",
            "  fix: install it, or add requires=ruby to skip the cell where it is missing",
            "*'php' needs 'php', which is not installed*",
            "*'lua' needs 'lua', which is not installed*",
            "*'fake' needs 'fake-interpreter-xyz', which is not installed*",
            "*'ts' needs '*', which is not installed*",
            "SKIPPED * requires 'ruby', not found on PATH",
        ]
    )


def test_a_cell_with_a_missing_interpreter_does_not_block_the_rest(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {"name":"a"}
        export A=1
        ```

        ```sh {"name":"needs-fake","interpreter":"fake-interpreter-xyz"}
        x
        ```

        ```sh {"name":"b"}
        echo "A=$A"
        ```

        ```output
        A=1
        ```
        """
    )
    pytester.runpytest("doc.md::b").assert_outcomes(passed=1)
    pytester.runpytest("doc.md").assert_outcomes(passed=2, errors=1)


# -- where one persistent shell differs from Runme ----------------------------------------


def test_functions_aliases_and_cd_persist(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"define"}
        greet() { echo "hello $1"; }
        alias ll='echo listing'
        mkdir -p deep && cd deep
        plain=not-exported
        ```

        ```sh {"name":"use"}
        greet ada
        ll
        basename "$PWD"
        echo "$plain"
        ```

        ```output
        hello ada
        listing
        deep
        not-exported
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_exit_ends_the_session_and_the_next_cell_gets_a_fresh_one(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {"name":"before"}
        export KEPT=no
        ```

        ```sh {"name":"echo-ok"}
        echo ok
        exit 1
        ```

        ```sh {"name":"after"}
        echo "fresh ${KEPT:-session}"
        ```

        ```output
        fresh session
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*the shell exited with status 1*fresh session*"])


def test_stty_opost_does_not_break_later_cells(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```bash {"name":"print-foo","interactive":true}
        $ stty -opost
        $ echo "foo!"
        ```

        ```output
        foo!
        ```

        ```bash {"name":"later"}
        printf 'a\\nb\\n'
        echo done
        ```

        ```output
        a
        b
        done
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2)


def test_heredoc_without_end_fails_cleanly_and_session_recovers(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {"name":"setup"}
        export KEEP=kept
        ```

        ```sh {"name":"rm-f"}
        $ cat << EOF
        line1
        EOF > somefile
        ```

        ```sh {"name":"after"}
        echo "$KEEP"
        ```

        ```output
        kept
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-o", "runbook_timeout=20")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*left waiting for more input*"])


def test_read_without_input_fails_fast(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {"name":"print-name"}
        echo "Enter your name: "
        read name
        echo "Hi, $name!"
        ```

        ```sh {"name":"with-stdin","stdin":"Ada\\n"}
        read name
        echo "Hi, $name!"
        ```

        ```output
        Hi, Ada!
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-o", "runbook_timeout=30")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*waiting for input*"])


# -- the docs page is a runbook too ---------------------------------------------------------


def test_coming_from_runme_page_passes(pytester: pytest.Pytester) -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "coming-from-runme.md"
    (pytester.path / "docs").mkdir()
    shutil.copyfile(page, pytester.path / "docs" / page.name)
    result = pytester.runpytest("docs", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=10, skipped=1)  # destroy-cluster: excludeFromRunAll
    result = pytester.runpytest("docs/coming-from-runme.md::destroy-cluster")
    result.assert_outcomes(passed=1)
