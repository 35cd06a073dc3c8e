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
