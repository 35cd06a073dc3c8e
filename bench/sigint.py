"""How long Ctrl-C takes: SIGINT to pytest (serial, and the controller of ``-n 2``) while a
runbook's cell sleeps, until pytest exits and until the cell's process is gone (issue 18).

    python bench/sigint.py            # 5 runs each; needs pytest-xdist in this interpreter

The signal goes to pytest alone (its own session, as a CI runner's cancel does), not to a
terminal's foreground group, which would reach the xdist workers directly.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

DOC = "```sh {name=a}\ntrue\n```\n\n```sh {name=long timeout=120}\nsleep 297\n```\n"


def _sleeping() -> bool:
    found = subprocess.run(["pgrep", "-f", "^sleep 297$"], capture_output=True)
    return found.returncode == 0


def once(directory: Path, xdist: bool) -> Tuple[float, float]:
    """Seconds from SIGINT to pytest's exit, and to the cell's process being gone."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "doc.md"]
    process = subprocess.Popen(
        command + (["-n", "2"] if xdist else []),
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _sleeping():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            sys.exit("the cell never started sleeping")
        time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait()
    exited = time.monotonic() - sent
    while _sleeping() and time.monotonic() - sent < 30:
        time.sleep(0.02)
    return exited, time.monotonic() - sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    options = parser.parse_args()
    if _sleeping():
        sys.exit("a 'sleep 297' is already running: stop it first")
    with tempfile.TemporaryDirectory(prefix="runbook-sigint-") as tmp:
        directory = Path(tmp)
        (directory / "pytest.ini").write_text("[pytest]\n")
        (directory / "doc.md").write_text(DOC)
        load = os.getloadavg()[0]
        print(f"python {sys.version.split()[0]}, {options.runs} runs, load {load:.1f}")
        for label, xdist in (("serial", False), ("-n 2", True)):
            runs: List[Tuple[float, float]] = [once(directory, xdist) for _ in range(options.runs)]
            print(
                f"{label:7} pytest exits {statistics.median(r[0] for r in runs):.2f} s, "
                f"the cell's process gone {statistics.median(r[1] for r in runs):.2f} s "
                f"(medians; exits {', '.join(f'{r[0]:.2f}' for r in runs)})"
            )


if __name__ == "__main__":
    main()
