"""Before/after of start-up, interleaved in one run: two checkouts of the plugin, same scenarios.

    python bench/startup_ab.py BEFORE_CHECKOUT            # this checkout is "after"
    python bench/startup_ab.py /tmp/old -n 15 --only c,d

This machine's wall times drift by 10-20% between runs minutes apart, so figures from two
separate runs of bench/startup.py cannot be compared. Here each repetition runs every
(variant, checkout) pair back to back, each first in turn, and the checkout is chosen with
PYTHONPATH (ahead of the installed package; bytecode compiled first, as pip does at install).
Run it with an interpreter whose venv holds pytest and the plugin's dependencies only (for
instance bench/.venvs/runbook-wheel/bin/python, made by ``bench/startup.py --wheel``).
Scenarios are bench/startup.py's; each with and without PYTHONDONTWRITEBYTECODE=1.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import startup  # bench/ is not a package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path, help="checkout of the plugin to compare against")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("-n", "--runs", type=int, default=11)
    parser.add_argument("--only", default="c,d", help="scenario letters of bench/startup.py")
    options = parser.parse_args()
    checkouts = {"before": options.before.resolve(), "after": options.after.resolve()}
    for checkout in checkouts.values():
        compileall.compile_dir(str(checkout / "pytest_runbook"), quiet=1)
    wanted = set(options.only.split(","))
    print(f"python {sys.version.split()[0]} ({sys.executable}), median of {options.runs} runs")
    for label, path in checkouts.items():
        print(f"  {label}: {path}")
    with tempfile.TemporaryDirectory(prefix="runbook-ab-") as tmp:
        for scenario in [s for s in startup.scenarios(Path(tmp)) if s.key in wanted]:
            for env_label, env in _environments().items():
                print(f"{scenario.key}  {scenario.title}, {env_label}")
                _compare(scenario, env, checkouts, options.runs)
                sys.stdout.flush()


def _environments() -> Dict[str, Dict[str, str]]:
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    without_bytecode = {**plain, "PYTHONDONTWRITEBYTECODE": "1"}
    return {"bytecode": plain, "PYTHONDONTWRITEBYTECODE=1": without_bytecode}


def _compare(
    scenario: startup.Scenario, env: Dict[str, str], checkouts: Dict[str, Path], runs: int
) -> None:
    pairs = [(v, c) for v in scenario.variants for c in checkouts]
    times: Dict[Tuple[int, str], List[Tuple[float, float]]] = {}
    for index, (variant, checkout) in enumerate(pairs):
        run_env = {**env, "PYTHONPATH": str(checkouts[checkout])}
        startup.run_once(scenario, variant, run_env)  # warm-up
        times[(index, checkout)] = []
    for repetition in range(runs):
        for offset in range(len(pairs)):
            index = (repetition + offset) % len(pairs)
            variant, checkout = pairs[index]
            run_env = {**env, "PYTHONPATH": str(checkouts[checkout])}
            times[(index, checkout)].append(startup.run_once(scenario, variant, run_env))
    base = {c: statistics.median(w for w, _ in times[(checkouts_index(pairs, 0, c), c)])
            for c in checkouts}  # fmt: skip
    for index, (variant, checkout) in enumerate(pairs):
        walls = [w for w, _ in times[(index, checkout)]]
        cpus = [c for _, c in times[(index, checkout)]]
        wall = statistics.median(walls)
        print(
            f"    {variant.label:27} {checkout:6} wall {wall * 1000:6.0f} ms "
            f"{wall / base[checkout]:5.2f}x {(wall - base[checkout]) * 1000:+5.0f} ms"
            f"   cpu {statistics.median(cpus) * 1000:6.0f} ms"
        )


def checkouts_index(pairs: List[Tuple[startup.Variant, str]], variant: int, checkout: str) -> int:
    """Index in ``pairs`` of the scenario's ``variant``-th variant run with ``checkout``."""
    wanted = [i for i, (_, c) in enumerate(pairs) if c == checkout]
    return wanted[variant]


if __name__ == "__main__":
    main()
