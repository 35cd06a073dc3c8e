"""Values from the document never reach the shell unquoted; the plugin's temp files are private.

Every attribute and frontmatter value that ends up in the session (cwd, interpreter, env,
shell, ready, stdin, answers, names, exported outputs, paths) carries a ``$(touch ...)``,
backtick or ``;`` payload; after the run no ``PWN-*`` file exists anywhere it could land.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Iterator, List

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux paths (/dev/shm)")


def pwned(*roots: Path) -> List[str]:
    found = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            found += [os.path.join(dirpath, f) for f in files if f.startswith("PWN-")]
    return found


@pytest.fixture
def zero_umask() -> Iterator[None]:
    """Privacy must not depend on the user's umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")


def test_values_never_run_as_shell_code(pytester: pytest.Pytester) -> None:
    root = pytester.path
    (root / "$(touch PWN-cwd)").mkdir()
    (root / "`touch PWN-fcwd`; touch PWN-fcwd2").mkdir()
    folder = root / "docs $(touch PWN-dir); touch PWN-dir2"
    write(
        folder / "doc;touch PWN-file.md",
        r"""
        ---
        env:
          INJECT: "$(touch PWN-env) `touch PWN-env2`; touch PWN-env3"
        ---

        ```sh {name=env}
        echo "$INJECT"; echo "$FROM_CLI"
        ```

        ```output
        $(touch PWN-env) `touch PWN-env2`; touch PWN-env3
        '; touch PWN-cli; '$(touch PWN-cli2)
        ```

        ```sh {name=cell-cwd cwd="../$(touch PWN-cwd)"}
        basename "$PWD"
        ```

        ```output
        $(touch PWN-cwd)
        ```

        ```sh {name=missing-cwd cwd="$(touch PWN-cwd3)"}
        echo never
        ```

        ```sh {name=semicolon-interpreter interpreter="python3; touch PWN-interp"}
        print("never")
        ```

        ```sh {name=argv-interpreter interpreter="python3 -c 'print(1)' ; touch PWN-argv"}
        this file is an argument, never read
        ```

        ```output
        1
        ```

        ```sh {name=stdin stdin="$(touch PWN-stdin)\n"}
        read -r line; echo "$line"
        ```

        ```output
        $(touch PWN-stdin)
        ```

        <!-- runbook: {answers: [{expect: "Token: ", send: "`touch PWN-answer`"}]} -->
        ```sh {name=answers}
        read -r -p "Token: " token; echo "[$token]"
        ```

        ```output
        Token: [`touch PWN-answer`]
        ```

        ~~~sh {name=service background=true ready="`touch PWN-ready`|\$\(touch"}
        echo '$(touch PWN-ready2) `touch PWN-ready`'; sleep 30
        ~~~

        ```sh {name=PWN_OUT}
        echo "'; touch PWN-export; '\$(touch PWN-export2)"
        ```

        ```sh {name="x;touch PWN-name"}
        printf '%s\n' "$PWN_OUT" "$__"
        ```

        ```output
        '; touch PWN-export; '$(touch PWN-export2)
        '; touch PWN-export; '$(touch PWN-export2)
        ```
        """,
    )
    write(
        root / "fm-cwd.md",
        """
        ---
        cwd: "`touch PWN-fcwd`; touch PWN-fcwd2"
        ---

        ```sh {name=where}
        basename "$PWD"
        ```

        ```output
        `touch PWN-fcwd`; touch PWN-fcwd2
        ```
        """,
    )
    write(
        root / "fm-shell.md",
        """
        ---
        shell: "bash; touch PWN-shell"
        ---

        ```sh
        echo never
        ```
        """,
    )
    started = time.monotonic()
    result = pytester.runpytest(
        str(folder / "doc;touch PWN-file.md"),
        "fm-cwd.md",
        "fm-shell.md",
        "-p",
        "no:cacheprovider",
        "-rs",
        "--continue-on-collection-errors",
        "--runbook-env",
        "FROM_CLI='; touch PWN-cli; '$(touch PWN-cli2)",
    )
    assert time.monotonic() - started < 20
    result.assert_outcomes(passed=9, failed=1, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*doc;touch PWN-file.md:23: cell 'missing-cwd': cwd '$(touch PWN-cwd3)' is not a "
            "directory (*); fix: *",
            "*doc;touch PWN-file.md:27: cell 'semicolon-interpreter' needs "
            "'python3;', which is not installed (not found on PATH)",
            "fm-shell.md:2: frontmatter shell 'bash;' is not installed (not found on PATH)*",
        ]
    )
    assert pwned(root, Path(tempfile.gettempdir()), Path("/dev/shm")) == []
    assert pwned(Path.home()) == [] if Path.home().is_dir() else True


def test_temp_files_are_private_and_removed(pytester: pytest.Pytester, zero_umask: None) -> None:
    report = pytester.path / "modes.txt"
    write(
        pytester.path / "doc.md",
        """
        ---
        cwd: tmp
        ---

        ```sh {name=service background=true}
        sleep 30
        ```

        ```sh {name=look}
        cells=$(dirname "${BASH_SOURCE[0]}")
        stat -c '%a %n' "$RUNBOOK_TMPDIR" "$PWD" "$cells" "$cells"/* > "$REPORT"
        ```
        """,
    )
    result = pytester.runpytest(
        "doc.md", "-p", "no:cacheprovider", "--runbook-env", f"REPORT={report}"
    )
    result.assert_outcomes(passed=2)
    entries = [line.split(" ", 1) for line in report.read_text().splitlines()]
    assert len(entries) >= 6  # three directories, the cell file, the background files
    tmpdir, workdir, cells = (Path(p) for _, p in entries[:3])
    assert [mode for mode, _ in entries[:3]] == ["700", "700", "700"]
    files = entries[3:]
    assert {mode for mode, _ in files} == {"600"}, files
    assert any(name.endswith(".log") for _, name in files)  # the background log is private too
    for path in (tmpdir, workdir, cells, *(Path(p) for _, p in files)):
        assert not path.exists(), f"{path} outlived the run"
    assert stat.S_IMODE(os.stat(pytester.path).st_mode) != 0  # sanity: the scan saw real files
