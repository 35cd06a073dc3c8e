"""CPU time the plugin adds to a pytest run without Markdown, measured in pairs.

    bench/.venvs/runbook-wheel/bin/python bench/paired_cpu.py            # plugin vs -p no:runbook
    bench/.venvs/runbook-wheel/bin/python bench/paired_cpu.py --before /tmp/old   # two checkouts

One empty test, run as a whole ``python -m pytest`` process. Each pair runs both variants
back to back (each first in turn), and the figure is the median of the per-pair differences
in the child's user+system CPU time: on this 2-core VM, separate series of the same command
drift by 10-20 ms, far more than the few ms measured here. Both with and without
PYTHONDONTWRITEBYTECODE=1. With ``--before``, the two variants are two checkouts of the plugin
(chosen with PYTHONPATH, bytecode compiled first), both enabled.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

Variant = Tuple[str, Tuple[str, ...], Dict[str, str]]  # label, extra args, extra env


def _cpu_ms(args: Sequence[str], env: Dict[str, str], cwd: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return used * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--pairs", type=int, default=30)
    parser.add_argument("--before", type=Path, help="a checkout to compare this one against")
    options = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    if options.before is not None:
        checkouts = [options.before.resolve(), here]
        for checkout in checkouts:
            compileall.compile_dir(str(checkout / "pytest_runbook"), quiet=1)
        variants: List[Variant] = [
            (f"before ({checkouts[0]})", (), {"PYTHONPATH": str(checkouts[0])}),
            (f"after ({checkouts[1]})", (), {"PYTHONPATH": str(checkouts[1])}),
        ]
    else:
        variants = [("-p no:runbook", ("-p", "no:runbook"), {}), ("plugin", (), {})]
    with tempfile.TemporaryDirectory() as cwd:
        Path(cwd, "pytest.ini").write_text("[pytest]\n")
        Path(cwd, "test_empty.py").write_text("def test_empty():\n    pass\n")
        for mode, extra_env in (
            ("bytecode", {}),
            ("PYTHONDONTWRITEBYTECODE=1", {"PYTHONDONTWRITEBYTECODE": "1"}),
        ):
            base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            times: Dict[str, List[float]] = {label: [] for label, _, _ in variants}
            differences = []
            for pair in range(options.pairs):
                order = variants if pair % 2 == 0 else variants[::-1]
                got = {
                    label: _cpu_ms(args, {**base, **extra_env, **env}, cwd)
                    for label, args, env in order
                }
                for label, value in got.items():
                    times[label].append(value)
                differences.append(got[variants[1][0]] - got[variants[0][0]])
            medians = ", ".join(
                f"{label} {statistics.median(v):.1f} ms" for label, v in times.items()
            )
            print(
                f"{mode}: {medians}; median paired difference (second - first) "
                f"{statistics.median(differences):+.1f} ms CPU ({options.pairs} pairs)"
            )


if __name__ == "__main__":
    main()
