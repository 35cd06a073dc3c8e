"""What the plugin costs a pytest run: start-up, runs without Markdown, small runbooks (issue 15).

    python bench/startup.py            # 15 timed runs per figure, a few minutes
    python bench/startup.py -n 5       # quicker, noisier
    python bench/startup.py --only a,c
    python bench/startup.py --wheel    # the plugin installed from a wheel, as users get it

Each figure is the median wall (and CPU) time of a whole ``python -m pytest -q`` process, run
from a directory holding only its corpus and an empty pytest.ini; the variants of a scenario
alternate within each repetition, each first in turn, after one untimed warm-up run each (which
writes bytecode where it may).
Every scenario runs twice: as usual, and with PYTHONDONTWRITEBYTECODE=1 (CI images), where pytest
cannot cache the modules it compiles. A run must exit 0 and pass the expected number of tests.

Which install: by default this interpreter's (the dev venv, an editable install of the
checkout), with the checkout put on PYTHONPATH so that pytest treats it as installed, and its
bytecode compiled first, as pip does at install time. ``--wheel`` builds a wheel of the
checkout and installs it into bench/.venvs/runbook-wheel (pytest and the plugin's dependencies
from PyPI): what users get. pip writes every module's bytecode at install time even under
PYTHONDONTWRITEBYTECODE=1 (it compiles with py_compile, which ignores the variable), so a
wheel-installed plugin never compiles its own modules; an editable one without bytecode would.

    a  1 empty test: with the plugin vs -p no:runbook            (goal: within 2 ms)
    b  100 empty test files named one by one: plugin vs -p no:runbook   (goal: within 1.05x)
    c  a 1-cell runbook vs 1 empty test                           (goal: within 20 ms)
    d  100 runbooks x 10 `true` cells named one by one vs by directory vs 1,000 empty tests
       (in 100 files, by directory and named one by one)
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

EMPTY_TEST = "def test_empty():\n    pass\n"
ONE_CELL = "# One cell\n\n```sh\ntrue\n```\n"
TEN_CELLS = "# Ten cells\n\n" + "".join(f"```sh {{name=c{i}}}\ntrue\n```\n\n" for i in range(10))
TEN_TESTS = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(10))


@dataclass(frozen=True)
class Variant:
    label: str
    args: Tuple[str, ...]
    passed: int


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    directory: Path
    variants: Tuple[Variant, ...]  # the first is the baseline the others are compared with


def _write(directory: Path, files: Dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def scenarios(root: Path) -> List[Scenario]:
    one = _write(root / "a", {"test_empty.py": EMPTY_TEST, "doc.md": ONE_CELL})
    hundred = {f"test_{i:03}.py": EMPTY_TEST for i in range(100)}
    many = _write(root / "b", hundred)
    docs = {f"docs/doc_{i:03}.md": TEN_CELLS for i in range(100)}
    tests = {f"tests/test_{i:03}.py": TEN_TESTS for i in range(100)}
    files = _write(root / "d", {**docs, **tests})
    return [
        Scenario(
            "a",
            "1 empty test",
            one,
            (
                Variant("-p no:runbook", ("-p", "no:runbook", "test_empty.py"), 1),
                Variant("plugin", ("test_empty.py",), 1),
            ),
        ),
        Scenario(
            "b",
            "100 test files named one by one",
            many,
            (
                Variant("-p no:runbook", ("-p", "no:runbook", *sorted(hundred)), 100),
                Variant("plugin", tuple(sorted(hundred)), 100),
            ),
        ),
        Scenario(
            "c",
            "1-cell runbook vs 1 empty test",
            one,
            (
                Variant("1 empty test", ("test_empty.py",), 1),
                Variant("1-cell runbook", ("doc.md",), 1),
            ),
        ),
        Scenario(
            "d",
            "100 runbooks x 10 cells vs 1,000 tests",
            files,
            (
                Variant("1,000 empty tests", ("tests",), 1000),
                Variant("runbooks by directory", ("docs",), 1000),
                Variant("runbooks named one by one", tuple(sorted(docs)), 1000),
                # Like for like: pytest re-collects a named file's directory per argument,
                # for test files as for runbooks.
                Variant("tests named one by one", tuple(sorted(tests)), 1000),
            ),
        ),
    ]


_PASSED = re.compile(r"(\d+) passed")


# The interpreter whose pytest runs the scenarios, and where it finds the plugin's package.
PYTHON = sys.executable
PACKAGE_DIR = Path()  # set by main()
WHEEL_VENV = Path(__file__).resolve().parent / ".venvs" / "runbook-wheel"


def run_once(scenario: Scenario, variant: Variant, env: Dict[str, str]) -> Tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the whole process tree) of one run."""
    command = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *variant.args]
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=scenario.directory, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    found = _PASSED.search(output)
    if process.returncode != 0 or not found or int(found.group(1)) != variant.passed:
        sys.exit(
            f"{scenario.key} {variant.label}: exit {process.returncode}, expected "
            f"{variant.passed} passed\n{output[-3000:]}"
        )
    return elapsed, usage.ru_utime + usage.ru_stime


def _package_dir() -> Path:
    found = subprocess.run(
        [PYTHON, "-c", "import pytest_runbook; print(pytest_runbook.__file__)"],
        cwd=tempfile.gettempdir(),  # not the checkout, which would shadow an installed wheel
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip()).resolve().parent


def install_wheel() -> str:
    """Build a wheel of this checkout, install it into WHEEL_VENV; return its interpreter."""
    checkout = Path(__file__).resolve().parent.parent
    python = WHEEL_VENV / "bin" / "python"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(WHEEL_VENV)], check=True)

    def pip(*args: str) -> None:
        subprocess.run([str(python), "-m", "pip", "-q", *args], env=env, check=True)

    with tempfile.TemporaryDirectory(prefix="runbook-wheel-") as built:
        pip("wheel", "--no-deps", "-w", built, str(checkout))
        wheel = str(next(Path(built).glob("pytest_runbook-*.whl")))
        pip("install", wheel)  # with its dependencies
        pip("install", "--force-reinstall", "--no-deps", wheel)  # this very build
    return str(python)


def _forget_rewritten(scenario: Scenario) -> None:
    """Delete the modules pytest rewrote and cached: a CI image that writes no bytecode has none.

    Python's own bytecode stays: pip compiles it at install time.
    """
    for directory in (PACKAGE_DIR, scenario.directory):
        for cached in directory.rglob("*-pytest-*.pyc"):
            cached.unlink()


def measure(scenario: Scenario, env: Dict[str, str], runs: int) -> List[Tuple[float, float]]:
    """Median wall and CPU seconds per variant; variants alternate, so load drifts hit all."""
    if env.get("PYTHONDONTWRITEBYTECODE"):
        _forget_rewritten(scenario)
    for variant in scenario.variants:
        run_once(scenario, variant, env)  # warm-up: bytecode, file system caches
    times: List[List[Tuple[float, float]]] = [[] for _ in scenario.variants]
    count = len(scenario.variants)
    for repetition in range(runs):
        for step in range(count):  # each variant goes first in turn: no place is favoured
            index = (repetition + step) % count
            times[index].append(run_once(scenario, scenario.variants[index], env))
    return [(statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for t in times]


def _as_installed() -> Dict[str, str]:
    """PYTHONPATH that makes pytest treat an editable install like a regular one.

    pytest marks an entry-point plugin's package for assertion rewriting only when it finds
    the package on sys.path; an editable install's package is found by its own import hook,
    so pytest would rewrite none of it and the figures would miss what users pay.
    """
    source = PACKAGE_DIR.parent
    if "site-packages" in source.parts:
        return {}
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
    }


def environments() -> List[Tuple[str, Dict[str, str]]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    base.update(_as_installed())
    return [
        ("bytecode", base),
        ("PYTHONDONTWRITEBYTECODE=1", {**base, "PYTHONDONTWRITEBYTECODE": "1"}),
    ]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="timed runs per figure")
    parser.add_argument("--only", default="", help="scenario letters, e.g. a,c")
    parser.add_argument(
        "--wheel", action="store_true", help="measure the plugin installed from a wheel"
    )
    options = parser.parse_args(argv)
    wanted = set(options.only.split(",")) if options.only else None
    global PYTHON, PACKAGE_DIR
    if options.wheel:
        PYTHON = install_wheel()
    PACKAGE_DIR = _package_dir()
    compileall.compile_dir(str(PACKAGE_DIR), quiet=1)  # as pip does when it installs
    with tempfile.TemporaryDirectory(prefix="runbook-startup-") as tmp:
        chosen = [s for s in scenarios(Path(tmp)) if wanted is None or s.key in wanted]
        print(f"median of {options.runs} runs each; python {sys.version.split()[0]}")
        print(f"pytest-runbook from {PACKAGE_DIR}" + (" (wheel)" if options.wheel else ""))
        if _as_installed():
            print(f"PYTHONPATH={_as_installed()['PYTHONPATH']} (as if installed from a wheel)")
        print("wall: median wall time; cpu: median user+system time (steadier on a busy machine)")
        header = "".join(f"{name:>36}" for name, _ in environments())
        print(f"{'':4}{'variant':27}{header}")
        for scenario in chosen:
            print(f"{scenario.key}   {scenario.title}")
            columns = [measure(scenario, env, options.runs) for _, env in environments()]
            for index, variant in enumerate(scenario.variants):
                for kind in (0, 1):
                    cells = [
                        _cell(medians[index][kind], medians[0][kind], index) for medians in columns
                    ]
                    label = variant.label if kind == 0 else "  cpu"
                    print(f"{'':4}{label:27}{''.join(f'{c:>36}' for c in cells)}")
            sys.stdout.flush()


def _cell(seconds: float, base: float, index: int) -> str:
    if index == 0:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.0f} ms {seconds / base:5.2f}x {(seconds - base) * 1000:+6.0f} ms"


if __name__ == "__main__":
    main()
