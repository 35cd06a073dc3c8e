"""Frontmatter ``fixtures:`` follow pytest's scopes: a function-scoped fixture is made afresh
for every cell and its value exported before each; a module-scoped one once per file."""

from __future__ import annotations

import pytest

COUNTING_CONFTEST = """
import pytest

CALLS = {"per_cell": 0, "per_file": 0}


@pytest.fixture
def per_cell():
    CALLS["per_cell"] += 1
    return CALLS["per_cell"]


@pytest.fixture(scope="module")
def per_file():
    CALLS["per_file"] += 1
    return CALLS["per_file"]
"""


def test_a_function_scoped_fixture_is_fresh_for_every_cell(
    pytester: pytest.Pytester, runbook
) -> None:
    pytester.makeconftest(COUNTING_CONFTEST)
    runbook(
        """
        ---
        fixtures: [per_cell, per_file, tmp_path]
        ---

        ```sh {name=one}
        echo "cell $PER_CELL, file $PER_FILE"
        echo "$TMP_PATH" > first-tmp
        ```

        ```output
        cell 1, file 1
        ```

        ```sh {name=two}
        echo "cell $PER_CELL, file $PER_FILE"
        test -d "$TMP_PATH" && test "$TMP_PATH" != "$(cat first-tmp)" && echo "a fresh tmp_path"
        ```

        ```output
        cell 2, file 1
        a fresh tmp_path
        ```

        ```sh {name=three}
        echo "cell $PER_CELL, file $PER_FILE"
        ```

        ```output
        cell 3, file 1
        ```
        """
    )
    runbook(
        """
        ---
        fixtures: [per_cell, per_file]
        ---

        ```sh {name=other}
        echo "cell $PER_CELL, file $PER_FILE"
        ```

        ```output
        cell 4, file 2
        ```
        """,
        name="other.md",
    )
    result = pytester.runpytest("doc.md", "other.md", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
