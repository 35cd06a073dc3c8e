"""SPEC 5 end to end: selection with prerequisites, markers, fixtures, failure policy,
teardown cells, live output, transcripts, junit and ini options."""

from __future__ import annotations

import os

import pytest

# Every cell touches a marker file named after itself, so a test can tell which cells ran
# (as tests or as setup) and, above all, which never ran at all.
SELECTION_DOC = """
    # Selection

    ```sh {name=first}
    touch ran-first
    export FROM_FIRST=one
    ```

    ```sh {name=skipped skip="not today"}
    touch ran-skipped
    ```

    ```sh {name=needs requires=no-such-command-xyz}
    touch ran-needs
    ```

    ```sh {name=elsewhere platform=windows}
    touch ran-elsewhere
    ```

    ```sh {name=manual excludeFromRunAll=true}
    touch ran-manual
    ```

    ```sh {name=online tag=network}
    touch ran-online
    ```

    ```sh {name=dropped}
    touch ran-dropped
    ```

    ```sh {name=second}
    touch ran-second
    export FROM_SECOND="$FROM_FIRST-two"
    ```

    ```sh {name=target}
    touch ran-target
    echo "$FROM_SECOND"
    ```

    ```output
    one-two
    ```

    ```sh {name=after}
    touch ran-after
    ```
    """

ALL_CELLS = (
    "first",
    "skipped",
    "needs",
    "elsewhere",
    "manual",
    "online",
    "dropped",
    "second",
    "target",
    "after",
)


def ran(pytester: pytest.Pytester) -> set[str]:
    return {name for name in ALL_CELLS if (pytester.path / f"ran-{name}").exists()}


# -- selection ---------------------------------------------------------------------------


def test_whole_file_runs_cells_once_in_order(pytester: pytest.Pytester, runbook) -> None:
    runbook(SELECTION_DOC)
    result = pytester.runpytest("doc.md", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=6, skipped=4)
    assert ran(pytester) == {"first", "online", "dropped", "second", "target", "after"}


def test_selecting_by_id_runs_earlier_cells_as_setup(pytester: pytest.Pytester, runbook) -> None:
    runbook(SELECTION_DOC)
    result = pytester.runpytest("doc.md::target", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["doc.md::target PASSED*"])
    # attribute-skipped cells never ran, not even as setup; the rest built the state
    assert ran(pytester) == {"first", "online", "dropped", "second", "target"}


def test_keyword_selection_runs_earlier_cells_as_setup(pytester: pytest.Pytester, runbook) -> None:
    runbook(SELECTION_DOC)
    result = pytester.runpytest("doc.md", "-k", "target")
    result.assert_outcomes(passed=1, deselected=9)
    assert ran(pytester) == {"first", "online", "dropped", "second", "target"}


def test_deselect_and_marker_expression_never_run_a_cell(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(SELECTION_DOC)
    result = pytester.runpytest(
        "doc.md", "-m", "not network", "--deselect", "doc.md::dropped", "-k", "target"
    )
    result.assert_outcomes(passed=1, deselected=9)
    assert ran(pytester) == {"first", "second", "target"}


def test_a_cell_left_out_by_name_with_k_never_runs(pytester: pytest.Pytester, runbook) -> None:
    # `-k "not dropped"` names the cell to leave out: it is not run as setup for later ones
    # (while `-k target` above still runs the earlier cells it does not name).
    runbook(SELECTION_DOC)
    result = pytester.runpytest("doc.md", "-k", "not dropped and not online")
    result.assert_outcomes(passed=4, skipped=4, deselected=2)
    assert ran(pytester) == {"first", "second", "target", "after"}
    result = pytester.runpytest("doc.md::target", "-k", "not dropped")
    result.assert_outcomes(passed=1)
    assert "dropped" not in ran(pytester)
    result = pytester.runpytest("doc.md", "-k", "target and not dropped")
    result.assert_outcomes(passed=1, deselected=9)
    assert "dropped" not in ran(pytester)


def test_marker_expression_leaves_tagged_cells_out_of_a_full_run(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(SELECTION_DOC)
    result = pytester.runpytest("doc.md", "-m", "not network", "--strict-markers")
    result.assert_outcomes(passed=5, skipped=4, deselected=1)
    assert ran(pytester) == {"first", "dropped", "second", "target", "after"}


def test_exclude_from_run_all_runs_when_selected_explicitly(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(SELECTION_DOC)
    result = pytester.runpytest("doc.md::manual", "-v")
    result.assert_outcomes(passed=1)
    assert ran(pytester) == {"first", "manual"}


def test_failing_prerequisite_is_a_setup_error_naming_the_cell(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=broken}
        echo about to fail
        false
        ```

        ```sh {name=target}
        touch ran-target
        ```
        """
    )
    result = pytester.runpytest("doc.md::target")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of *target*",
            "*earlier cell 'broken', run as setup for 'target', failed: exit status 1*",
        ]
    )
    assert not (pytester.path / "ran-target").exists()


def test_last_failed_reruns_failures_with_their_prerequisites(
    pytester: pytest.Pytester, runbook
) -> None:
    path = runbook(
        """
        ```sh {name=prepare}
        echo prepared >> log
        export VALUE=42
        ```

        ```sh {name=check}
        echo checked >> log
        test "$VALUE" = 42 && test -e fixed
        ```

        ```sh {name=other}
        echo other >> log
        ```
        """
    )
    pytester.runpytest("doc.md").assert_outcomes(passed=2, failed=1)
    (path.parent / "fixed").touch()
    (path.parent / "log").unlink()
    result = pytester.runpytest("doc.md", "--lf")
    result.assert_outcomes(passed=1, deselected=2)
    assert (path.parent / "log").read_text().split() == ["prepared", "checked"]


# -- markers -----------------------------------------------------------------------------


def test_tags_categories_and_frontmatter_tags_are_registered_markers(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ---
        tag: docs
        ---

        ```sh {name=slowone tag="slow,network"}
        true
        ```

        ```sh {name=deploying category=deploy}
        true
        ```

        ```sh {name=plain}
        true
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--strict-markers", "-m", "network or deploy")
    result.assert_outcomes(passed=2, deselected=1)
    # as in Runme, a cell's own tags replace the document's: only "plain" carries "docs"
    result = pytester.runpytest("doc.md", "--strict-markers", "-m", "docs", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*::plain PASSED*"])
    result.stdout.no_fnmatch_line("*PytestUnknownMarkWarning*")


def test_tags_that_cannot_be_markers_are_renamed_with_a_warning(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ---
        tag: team docs
        ---

        ```sh {"name":"prod","category":"k8s:prod"}
        true
        ```

        ```sh {name=other tag=long-running}
        true
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--strict-markers", "-m", "k8s_prod", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*doc.md:2: RunbookWarning: tag 'team docs' cannot be a pytest marker as written; "
            "select it with -m 'team_docs'",
            "*doc.md:5: RunbookWarning: tag 'k8s:prod' cannot be a pytest marker as written; "
            "select it with -m 'k8s_prod'",
        ]
    )
    result.stdout.no_fnmatch_line("*PytestUnknownMarkWarning*")
    result = pytester.runpytest("doc.md", "--strict-markers", "-m", "long-running")
    result.assert_outcomes(passed=1, deselected=1)


def test_skip_xfail_requires_platform(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=bare skip}
        touch ran-bare
        ```

        ```sh {name=reasoned skip="waiting for the vendor"}
        touch ran-reasoned
        ```

        ```sh {name=expected xfail}
        false
        ```

        ```sh {name=fixed xfail="flaky"}
        true
        ```

        ```sh {name=missing requires=no-such-command-xyz}
        touch ran-missing
        ```

        ```sh {name=present requires=bash}
        touch ran-present
        ```

        ```sh {name=linux platform=linux}
        touch ran-linux
        ```

        ```sh {name=windows platform=win32}
        touch ran-windows
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-rsxX")
    result.assert_outcomes(passed=2, skipped=4, xfailed=1, xpassed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*waiting for the vendor*",
            "*requires 'no-such-command-xyz', not found on PATH*",
            "*runs on win32 only*",
        ]
    )
    names = {p.name for p in pytester.path.glob("ran-*")}
    assert names == {"ran-present", "ran-linux"}


# -- fixtures ----------------------------------------------------------------------------

SERVICE_CONFTEST = '''
import socket
import subprocess
import sys
import time

import pytest

STARTS = []


@pytest.fixture(scope="module")
def web_server(tmp_path_factory, request):
    """A real local HTTP service serving one file, alive as long as the runbook."""
    root = tmp_path_factory.mktemp("site")
    (root / "hello.txt").write_text("hello from the fixture server\\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    STARTS.append(port)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)
    (request.config.rootpath / f"stopped-{port}").write_text("")


@pytest.fixture
def starts():
    return len(STARTS)
'''


def test_fixtures_export_values_and_module_scope_lives_with_the_file(
    pytester: pytest.Pytester, runbook
) -> None:
    pytester.makeconftest(SERVICE_CONFTEST)
    runbook(
        """
        ---
        fixtures: [tmp_path, web_server, starts]
        ---

        ```sh {name=fetch}
        fetch() {
          python3 - "$1" <<'EOF'
        import sys, urllib.request
        with urllib.request.urlopen(sys.argv[1]) as response:
            sys.stdout.write(f"{response.status} {response.read().decode()}")
        EOF
        }
        fetch "$WEB_SERVER/hello.txt"
        ```

        ```output
        200 hello from the fixture server
        ```

        ```sh {name=paths}
        test -d "$TMP_PATH" && echo "tmp ok" && echo "starts $STARTS"
        echo marker > "$TMP_PATH/file"
        ```

        ```output
        tmp ok
        starts 1
        ```

        ```sh {name=again}
        curl -fsS -o /dev/null -w '%{http_code}\\n' "$WEB_SERVER/hello.txt"
        test -e "$TMP_PATH/file" || echo "tmp_path is per cell"
        ```

        ```output
        200
        tmp_path is per cell
        ```
        """
    )
    runbook(
        """
        ---
        fixtures: [web_server]
        ---

        ```sh {name=fetch}
        echo "$WEB_SERVER" | grep -q '^http://127.0.0.1:'
        ls stopped-* | wc -l
        ```

        ```output
        1
        ```
        """,
        name="other.md",
    )
    result = pytester.runpytest("doc.md", "other.md", "-v")
    result.assert_outcomes(passed=4)
    # module scope: one server per file, each stopped when its file is done (other.md saw
    # doc.md's server stopped before its own cells ran)
    assert len(list(pytester.path.glob("stopped-*"))) == 2


def test_unknown_fixture_is_a_clean_error(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ---
        fixtures: [no_such_fixture]
        ---

        ```sh {name=cell}
        touch ran-cell
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'no_such_fixture' not found*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert not (pytester.path / "ran-cell").exists()


# -- failure policy and teardown cells -----------------------------------------------------

POLICY_DOC = """
    {frontmatter}
    ```sh {{name=cleanup teardown=true}}
    touch ran-cleanup
    ```

    ```sh {{name=start}}
    touch ran-start
    ```

    ```sh {{name=breaks}}
    false
    ```

    ```sh {{name=later}}
    touch ran-later
    ```
    """


def test_on_failure_continue_is_the_default(pytester: pytest.Pytester, runbook) -> None:
    runbook(POLICY_DOC.format(frontmatter=""))
    result = pytester.runpytest("doc.md", "-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*::start PASSED*",
            "*::breaks FAILED*",
            "*::later PASSED*",
            "*::cleanup PASSED*",
        ]
    )


@pytest.mark.parametrize(
    ("frontmatter", "args"),
    [
        ("---\n    on-failure: stop\n    ---\n", ()),
        ("", ("--runbook-on-failure=stop",)),
        ("", ("-o", "runbook_on_failure=stop")),
    ],
    ids=["frontmatter", "option", "ini"],
)
def test_on_failure_stop_skips_the_rest_but_runs_teardown(
    pytester: pytest.Pytester, runbook, frontmatter: str, args: tuple[str, ...]
) -> None:
    runbook(POLICY_DOC.format(frontmatter=frontmatter))
    result = pytester.runpytest("doc.md", "-v", "-rs", *args)
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*::start PASSED*",
            "*::breaks FAILED*",
            "*::later SKIPPED*",
            "*::cleanup PASSED*",
            "*earlier cell 'breaks' failed*",
        ]
    )
    assert (pytester.path / "ran-cleanup").exists()
    assert not (pytester.path / "ran-later").exists()


def test_frontmatter_on_failure_overrides_ini(pytester: pytest.Pytester, runbook) -> None:
    runbook(POLICY_DOC.format(frontmatter="---\n    on-failure: continue\n    ---\n"))
    result = pytester.runpytest("doc.md", "-o", "runbook_on_failure=stop")
    result.assert_outcomes(passed=3, failed=1)


def test_deselected_teardown_cell_still_runs_in_file_teardown(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(POLICY_DOC.format(frontmatter=""))
    result = pytester.runpytest("doc.md", "-k", "start")
    result.assert_outcomes(passed=1, deselected=3)
    assert (pytester.path / "ran-cleanup").exists()
    assert not (pytester.path / "ran-later").exists()


def test_teardown_cell_sees_the_session_state(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=stop teardown=true}
        echo "stopping $SERVICE" > stopped
        ```

        ```sh {name=start}
        export SERVICE=db
        false
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--runbook-on-failure=stop")
    result.assert_outcomes(passed=1, failed=1)
    assert (pytester.path / "stopped").read_text() == "stopping db\n"


# -- reporting -----------------------------------------------------------------------------


def test_stream_prefixes_live_output_with_the_cell_name(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=count}
        for i in 1 2 3; do echo "line $i"; done
        ```

        ```sh {name=other}
        echo done
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-s", "--runbook-stream")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*[[]count] line 1", "[[]count] line 2", "[[]count] line 3"])
    result.stdout.fnmatch_lines(["*[[]other] done"])
    # cells run as setup for a selected cell stream too, under their own names
    result = pytester.runpytest("doc.md::other", "-s", "--runbook-stream")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*[[]count] line 3", "*[[]other] done"])
    # without -s there is nothing to stream into
    quiet = pytester.runpytest("doc.md", "--runbook-stream")
    quiet.stdout.no_fnmatch_line("*[[]count] line*")


def test_transcript_holds_outputs_statuses_and_durations(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        # Guide

        ```sh {name=hello}
        echo "hello transcript"
        ```

        ```sh {name=compare}
        echo actual
        ```

        ```output
        expected
        ```

        ```sh {name=never skip}
        echo never
        ```
        """,
        name="docs/guide.md",
    )
    result = pytester.runpytest("docs/guide.md", "--runbook-transcript", "out")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    text = (pytester.path / "out" / "docs" / "guide.md").read_text()
    hello = text.index("<!-- runbook transcript: hello: exit 0 in ")
    assert text.index("```output\nhello transcript\n```", hello) > hello
    compare = text.index("<!-- runbook transcript: compare: exit 0 in ")
    # the actual output follows the document's own expected block
    assert text.index("```output\nexpected\n```") < compare
    assert text.index("```output\nactual\n```", compare) > compare
    assert "transcript: never" not in text
    assert text.startswith("# Guide\n")


def test_transcript_ends_with_the_background_log(pytester: pytest.Pytester, runbook) -> None:
    runbook(
        """
        ```sh {name=service background=true ready="up"}
        echo up; echo "request log line"; sleep 30
        ```

        ```sh {name=later}
        echo foreground
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--runbook-transcript", "out")
    result.assert_outcomes(passed=2)
    text = (pytester.path / "out" / "doc.md").read_text()
    background = text.index("<!-- runbook transcript: background output -->")
    assert text.index("```output\nup\nrequest log line\n```", background) > background
    later = text.index("<!-- runbook transcript: later: exit 0 in ")
    assert text[later:background].count("request log line") == 0  # not in a later cell


def test_transcript_via_ini_and_junit_xml(pytester: pytest.Pytester, runbook) -> None:
    pytester.makeini("[pytest]\nrunbook_transcript = artifacts\njunit_family = xunit1\n")
    runbook(
        "# T\n\n```sh {name=ok}\necho fine\n```\n\n```sh {name=bad}\nexit 3\n```\n\n"
        '```sh {name=later skip="not in CI"}\ntrue\n```\n'
    )
    result = pytester.runpytest("doc.md", "--junitxml=out.xml")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    xml = (pytester.path / "out.xml").read_text()
    assert '<testcase classname="doc.md" name="ok" file="doc.md" line="2" time="' in xml
    assert '<testcase classname="doc.md" name="bad" file="doc.md" line="6" time="' in xml
    assert "cell 'bad' the shell exited with status 3" in xml
    assert 'name="later" file="doc.md" line="10"' in xml
    assert '<skipped type="pytest.skip" message="not in CI"' in xml
    transcript = (pytester.path / "artifacts" / "doc.md").read_text()
    assert "bad: exit 3 in " in transcript


def test_collect_only_lists_path_and_cell_name(pytester: pytest.Pytester, runbook) -> None:
    runbook("```sh {name=one}\ntrue\n```\n\n```sh\necho hi there\n```\n", name="docs/a.md")
    result = pytester.runpytest("docs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["docs/a.md::one", "docs/a.md::echo-hi"])


# -- ini options and --runbook-env ---------------------------------------------------------


def test_ini_options_in_pyproject(pytester: pytest.Pytester, runbook) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        runbook = true
        runbook_patterns = ["*.runbook.md"]
        runbook_env = ["REGION=eu-west-1", "STAGE=prod"]
        runbook_timeout = "1"
        runbook_bare_fences = "shell"
        runbook_on_failure = "stop"
        """
    )
    runbook(
        "```\necho $REGION-$STAGE\n```\n\n```output\neu-west-1-prod\n```\n", name="a.runbook.md"
    )
    runbook(
        "```sh {name=slow}\nsleep 5\n```\n\n```sh {name=after}\ntrue\n```\n",
        name="b.runbook.md",
    )
    runbook("```sh\nfalse\n```\n", name="ignored.md")
    result = pytester.runpytest("-v")  # no paths: collected only because of ini runbook = true
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*a.runbook.md::echo-regionstage PASSED*", "*timed out after 1 s*"]
    )


def test_ini_stream_and_env_option(pytester: pytest.Pytester, runbook) -> None:
    pytester.makeini("[pytest]\nrunbook_stream = true\nrunbook_env =\n    A=from-ini\n")
    runbook('```sh {name=show}\necho "$A $B"\n```\n')
    result = pytester.runpytest("doc.md", "-s", "--runbook-env", "B=from option")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*[[]show] from-ini from option"])
    result = pytester.runpytest("doc.md", "-s", "--runbook-env", "A=override", "--runbook-env=B=b")
    result.stdout.fnmatch_lines(["*[[]show] override b"])


def test_teardown_cell_at_the_end_does_not_run_skipped_cells_as_setup(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=breaks}
        false
        ```

        ```sh {name=later}
        touch ran-later
        ```

        ```sh {name=cleanup teardown=true}
        touch ran-cleanup
        ```
        """
    )
    result = pytester.runpytest("doc.md", "--runbook-on-failure=stop")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    assert (pytester.path / "ran-cleanup").exists()
    assert not (pytester.path / "ran-later").exists()


def test_marker_expression_sees_every_mark_of_a_cell(pytester: pytest.Pytester, runbook) -> None:
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "hooked":
                    item.add_marker("manual")
        """
    )
    runbook(
        """
        ```sh {name=flaky xfail}
        touch ran-flaky
        ```

        ```sh {name=hooked}
        touch ran-hooked
        ```

        ```sh {name=target}
        touch ran-target
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-m", "not xfail and not manual")
    result.assert_outcomes(passed=1, deselected=2)
    assert {p.name for p in pytester.path.glob("ran-*")} == {"ran-target"}


def test_stream_is_live_while_the_cell_runs(pytester: pytest.Pytester, runbook) -> None:
    """The cell waits for a file that the test creates only after seeing the cell's first
    line on pytest's stdout: without live streaming it would time out."""
    import subprocess
    import sys

    runbook(
        """
        ```sh {name=waits timeout=20}
        echo started
        while [ ! -e go ]; do sleep 0.05; done
        echo finished
        ```
        """
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "doc.md",
            "-s",
            "--runbook-stream",
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "[waits] started" in line:
            (pytester.path / "go").touch()
    assert process.wait(30) == 0, "".join(seen)
    assert any(line.rstrip().endswith("[waits] finished") for line in seen)


def test_failing_deselected_teardown_cell_is_a_teardown_error(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook(
        """
        ```sh {name=start}
        true
        ```

        ```sh {name=cleanup teardown=true}
        echo cleaning up
        false
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-k", "start")
    result.assert_outcomes(passed=1, errors=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of *start*",
            "doc.md:5: teardown cell 'cleanup', run at the end of the file, failed: exit status 1",
            "*cleaning up*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


# -- one shell per file, the next one started early -----------------------------------------


def test_each_file_has_its_own_shell_even_when_started_early(
    pytester: pytest.Pytester, runbook
) -> None:
    # The second file's shell starts while the first file's last cell runs; its fixture
    # changes the environment after that, so the early shell must not be the one used.
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="module")
        def which_file(request, tmp_path_factory):
            mp = pytest.MonkeyPatch()
            mp.setenv("SET_BY_FIXTURE", request.node.path.name)
            yield
            mp.undo()
        """
    )
    runbook(
        """
        ```sh {name=a1}
        export LEAKED=from-a
        echo "a pid $$" > pids
        ```

        ```sh {name=a2}
        cd /
        ```
        """,
        "a.md",
    )
    runbook(
        """
        ---
        fixtures: [which_file]
        ---

        ```sh {name=b1}
        echo "${LEAKED-unset} $SET_BY_FIXTURE $PWD" | sed "s#$(pwd -P)#HERE#"
        echo "b pid $$" >> ../pids
        ```

        ```output
        unset b.md HERE
        ```
        """,
        "sub/b.md",
    )
    runbook(
        """
        ```sh {name=c1}
        echo "${LEAKED-unset} $PWD" | sed "s#$(pwd -P)#HERE#"
        echo "c pid $$" >> pids
        ```

        ```output
        unset HERE
        ```
        """,
        "c.md",
    )
    result = pytester.runpytest("a.md", "sub/b.md", "c.md", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    pids = (pytester.path / "pids").read_text().split("\n")
    assert len({line.split()[-1] for line in pids if line}) == 3, pids


def _live_shells() -> list[str]:
    """Shells this process started that are still running (not zombies): pytester runs
    pytest in this very process, so a file's session shell is a child of it."""
    me, found = str(os.getpid()), []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                comm, rest = f.read().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        state, ppid = rest.split()[:2]
        if ppid == me and comm.endswith("(bash") and state not in "ZX":
            found.append(pid)
    return found


_RECORD_SHELLS = """
from test_pytest_native import _live_shells

def pytest_runtest_logreport(report):
    if report.when == "call" and report.nodeid == "{nodeid}":
        with open("shells-then", "w") as f:
            f.write(" ".join(_live_shells()))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="inspects /proc")
def test_the_next_files_shell_starts_early_and_is_the_one_used(
    pytester: pytest.Pytester, runbook
) -> None:
    pytester.makeconftest(_RECORD_SHELLS.format(nodeid="first.md::last"))
    pytester.syspathinsert(os.path.dirname(__file__))
    runbook(
        "```sh {name=only}\necho $$ > first-pid\n```\n\n```sh {name=last}\ntrue\n```\n", "first.md"
    )
    runbook("```sh {name=mine}\necho $$ > ../second-pid\n```\n", "later/second.md")
    result = pytester.runpytest("first.md", "later/second.md", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    # While first.md's last cell ran, second.md's shell was already running beside it.
    then = set((pytester.path / "shells-then").read_text().split())
    first = (pytester.path / "first-pid").read_text().strip()
    second = (pytester.path / "second-pid").read_text().strip()
    assert first != second and {first, second} <= then, (first, second, then)
    assert not set(_live_shells()) & then  # and both are gone


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="inspects /proc")
def test_a_shell_started_early_for_a_file_that_never_runs_is_closed(
    pytester: pytest.Pytester, runbook
) -> None:
    pytester.makeconftest(_RECORD_SHELLS.format(nodeid="a.md::fails"))
    pytester.syspathinsert(os.path.dirname(__file__))
    runbook("```sh {name=fails}\necho $$ > a-pid; false\n```\n", "a.md")
    runbook("```sh {name=never}\ntouch ran-never\n```\n", "later/b.md")
    result = pytester.runpytest("a.md", "later/b.md", "-x", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    assert not (pytester.path / "later" / "ran-never").exists()
    # b.md's shell had been started early beside a.md's, and the stop closed it (not the GC).
    then = set((pytester.path / "shells-then").read_text().split())
    assert len(then - {(pytester.path / "a-pid").read_text().strip()}) == 1, then
    assert not set(_live_shells()) & then


# -- ini values, one grammar (issue 14) ------------------------------------------------------


def test_ini_timeout_takes_the_duration_grammar(pytester: pytest.Pytester, runbook) -> None:
    pytester.makeini("[pytest]\nrunbook_timeout = 500ms\n")
    runbook(
        """
        ```sh {name=slow}
        sleep 5
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["doc.md:1: cell 'slow' timed out after 0.5 s *"])
    pytester.makeini("[pytest]\nrunbook_timeout = 2m\n")
    runbook("```sh\necho fine\n```\n")
    pytester.runpytest("doc.md").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        (
            "runbook_timeout = soon",
            [],
            "ERROR: ini runbook_timeout: runbook_timeout must be a number of seconds such as "
            "30 or 2m, not 'soon'",
        ),
        (
            "runbook_timeout = 30",
            ["--runbook-timeout=1m1m"],
            "ERROR: --runbook-timeout: --runbook-timeout must be a number of seconds such as "
            "30 or 2m, not '1m1m'",
        ),
        (
            "runbook_columns = wide",
            [],
            "ERROR: ini runbook_columns: runbook_columns must be a whole number of terminal "
            "columns (20 to 10000), not 'wide'",
        ),
        (
            "runbook_home = yes",
            [],
            "ERROR: ini runbook_home: runbook_home must be one of tmp, not 'yes'",
        ),
        (
            "runbook_on_failure = later",
            [],
            "ERROR: ini runbook_on_failure: runbook_on_failure must be one of continue, stop, "
            "not 'later'",
        ),
    ],
    ids=["ini-timeout", "cli-timeout", "ini-columns", "ini-home", "ini-on-failure"],
)
def test_a_bad_option_value_is_a_usage_error_naming_its_origin(
    pytester: pytest.Pytester, runbook, ini: str, args: list[str], expected: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    runbook("```sh\necho hi\n```\n")
    result = pytester.runpytest("doc.md", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


# -- home: tmp (issue 18) ------------------------------------------------------------------


def test_home_tmp_keeps_global_git_config_out_of_the_real_home(
    pytester: pytest.Pytester, runbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_home = pytester.path / "real-home"
    real_home.mkdir()
    (real_home / ".gitconfig").write_text("[user]\n\tname = Real Person\n")
    monkeypatch.setenv("HOME", str(real_home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    pytester.makeini("[pytest]\nrunbook_home = tmp\n")
    runbook(
        """
        ```sh {name=configure}
        git config --global user.name X
        git config --global user.name
        ls -A "$HOME"
        echo "$HOME" > home-was
        ```

        ```output
        X
        .gitconfig
        ```
        """
    )
    result = pytester.runpytest("doc.md")
    result.assert_outcomes(passed=1)
    assert (real_home / ".gitconfig").read_text() == "[user]\n\tname = Real Person\n"
    used = (pytester.path / "home-was").read_text().strip()
    assert used != str(real_home)
    assert not os.path.exists(used)  # removed at the end of the file


def test_without_home_tmp_the_session_has_the_users_home(
    pytester: pytest.Pytester, runbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(pytester.path))
    runbook('```sh\necho "$HOME"\n```\n\n```output\n[CWD]\n```\n')
    pytester.runpytest("doc.md").assert_outcomes(passed=1)


# -- selection helpers fail closed (issue 14) ------------------------------------------------

UNREADABLE_SELECTION = """
    import _pytest.mark.expression as expression

    class Unreadable(expression.Expression):
        @classmethod
        def compile(cls, text):
            raise RuntimeError("private API moved")

    # Only pytest-runbook's helpers import the name from here at call time; pytest's own -m
    # handling keeps the class it imported at start-up.
    expression.Expression = Unreadable
"""


def test_a_selection_it_cannot_read_runs_no_cell_as_setup(
    pytester: pytest.Pytester, runbook
) -> None:
    pytester.makeconftest(UNREADABLE_SELECTION)
    runbook(SELECTION_DOC)
    result = pytester.runpytest_subprocess("doc.md", "-m", "not network", "-rs")
    # pytest itself still selects (9 items pass its -m); none of ours runs an earlier cell
    # as setup on a guess: every later cell is skipped, saying why.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, result.stdout.str()  # `first`: nothing before it
    assert "deselected" in outcomes
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * earlier cell 'online' was not run as setup: cannot tell whether "
            "-m 'not network' selects it (RuntimeError: private API moved); *",
        ]
    )
    assert ran(pytester) == {"first"}


def test_an_explicit_k_it_cannot_read_does_not_run_an_exclude_from_run_all_cell(
    pytester: pytest.Pytester, runbook
) -> None:
    pytester.makeconftest(UNREADABLE_SELECTION)
    runbook(SELECTION_DOC)
    result = pytester.runpytest_subprocess("doc.md", "-k", "manual", "-rs")
    result.assert_outcomes(skipped=1, deselected=9)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * excludeFromRunAll: select it explicitly to run it (doc.md::manual or "
            "-k manual); cannot tell whether -k 'manual' names it (RuntimeError: *",
        ]
    )
    assert ran(pytester) == set()


def test_plain_consecutive_cells_start_before_their_item_runs(
    pytester: pytest.Pytester, runbook
) -> None:
    # The next cell starts while pytest reports the one before (prefetch): by the time the
    # item of `second` is called, its cell is already running in the shell.
    pytester.makeconftest(
        """
        import os, time, pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_call(item):
            if item.name in ("second", "fed"):
                deadline = time.monotonic() + (10 if item.name == "second" else 0.5)
                while not os.path.exists(f"started-{item.name}") and time.monotonic() < deadline:
                    time.sleep(0.01)
                with open(f"early-{item.name}", "w") as out:
                    out.write(str(os.path.exists(f"started-{item.name}")))
        """
    )
    runbook(
        """
        ```sh {name=first}
        echo one
        ```

        ```sh {name=second}
        touch started-second
        ```

        ```sh {name=fed stdin="x"}
        touch started-fed
        ```
        """
    )
    pytester.runpytest("doc.md", "-p", "no:randomly").assert_outcomes(passed=3)
    assert (pytester.path / "early-second").read_text() == "True"
    assert (pytester.path / "early-fed").read_text() == "False"  # input: runs from its item
