"""pytest-xdist: whatever ``--dist`` says, a runbook's cells run in order on one worker."""

from __future__ import annotations

import pytest

pytest.importorskip("xdist")

DEPENDENT_DOC = """
    ```sh {{name=one}}
    export TOKEN_{n}=value-{n}
    echo "{n} one $PYTEST_XDIST_WORKER $$" >> log-{n}
    ```

    ```sh {{name=two}}
    echo "{n} two $PYTEST_XDIST_WORKER $$" >> log-{n}
    ```

    ```sh {{name=three}}
    counter=3
    echo "{n} three $PYTEST_XDIST_WORKER $$" >> log-{n}
    ```

    ```sh {{name=four}}
    echo "{n} four $PYTEST_XDIST_WORKER $$" >> log-{n}
    ```

    ```sh {{name=five}}
    echo "{n} five $PYTEST_XDIST_WORKER $$" >> log-{n}
    echo "$TOKEN_{n} $counter"
    ```

    ```output
    value-{n} 3
    ```
    """

PLAIN_TESTS = """
import pytest

@pytest.mark.xdist_group("g")
def test_a():
    pass

@pytest.mark.xdist_group("g")
def test_b():
    pass

@pytest.mark.parametrize("i", range(4))
def test_c(i):
    pass
"""


@pytest.mark.parametrize("mode", ["load", "loadscope", "loadfile", "loadgroup", "worksteal"])
def test_each_file_runs_in_order_on_one_worker(
    pytester: pytest.Pytester, runbook, mode: str
) -> None:
    files = 4
    for n in range(files):
        runbook(DEPENDENT_DOC.format(n=n), name=f"doc{n}.md")
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    names = [f"doc{n}.md" for n in range(files)]
    result = pytester.runpytest("-n", "2", f"--dist={mode}", *names, "test_plain.py")
    result.assert_outcomes(passed=5 * files + 6)
    workers = set()
    for n in range(files):
        lines = [line.split() for line in (pytester.path / f"log-{n}").read_text().splitlines()]
        assert [line[1] for line in lines] == ["one", "two", "three", "four", "five"]
        assert len({line[2] for line in lines}) == 1  # one worker
        assert len({line[3] for line in lines}) == 1  # one shell
        workers.add(lines[0][2])
    assert workers <= {"gw0", "gw1"}


def test_selected_cell_under_xdist_runs_its_prerequisites(
    pytester: pytest.Pytester, runbook
) -> None:
    for n in range(2):
        runbook(DEPENDENT_DOC.format(n=n), name=f"doc{n}.md")
    result = pytester.runpytest("-n", "2", "doc0.md", "doc1.md", "-k", "five")
    result.assert_outcomes(passed=2)
    for n in range(2):
        steps = [line.split()[1] for line in (pytester.path / f"log-{n}").read_text().splitlines()]
        assert steps == ["one", "two", "three", "four", "five"]


def test_files_found_by_custom_patterns_stay_on_one_worker(
    pytester: pytest.Pytester, runbook
) -> None:
    # Issue 14: with `runbook_patterns = *.runbook` the cells were spread over the workers
    # and each replayed the cells before it: 12 cells ran 21 to 23 times.
    pytester.makeini("[pytest]\nrunbook_patterns = *.runbook\n")
    cells = "".join(
        f'```sh {{name=c{i}}}\necho "{{n}} c{i} $PYTEST_XDIST_WORKER" >> ../side-effects\n```\n\n'
        for i in range(4)
    )
    for n in range(3):
        runbook(cells.replace("{n}", str(n)), name=f"docs/doc{n}.runbook")
    result = pytester.runpytest("-n", "2", "--dist", "load", "docs")
    result.assert_outcomes(passed=12)
    lines = (pytester.path / "side-effects").read_text().splitlines()
    assert len(lines) == 12
    for n in range(3):
        mine = [line.split() for line in lines if line.startswith(f"{n} ")]
        assert [cell for _, cell, _ in mine] == ["c0", "c1", "c2", "c3"]
        assert len({worker for _, _, worker in mine}) == 1


def test_a_collection_warning_shows_once_whatever_the_number_of_workers(
    pytester: pytest.Pytester, runbook
) -> None:
    runbook("```sh {name=a colour=red}\necho a\n```\n")
    result = pytester.runpytest("-n", "2", "doc.md")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.stdout.str().count("unknown attribute 'colour'") == 1
    result.stdout.fnmatch_lines(["doc.md:1", "  doc.md:1: RunbookWarning: unknown attribute*"])
