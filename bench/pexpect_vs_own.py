"""Our shell session against pexpect, side by side, in one run.

Measures (a) ``ShellSession`` (posix_spawn + own poll loop on Linux), (b) ``pexpect.spawn``
of ``bash --noprofile --norc`` tuned fairly (echo off, a unique PS1, ``expect_exact``,
``delaybeforesend=None``, a ``searchwindowsize``) and (c) ``pexpect.replwrap.bash()``: a
shell's start + first round trip + close (median over several starts), and the median of
1,000 ``true`` round trips. Prints a small table of medians in milliseconds.

    python bench/pexpect_vs_own.py [--starts N] [--trips N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Tuple

import pexpect
import pexpect.replwrap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pytest_runbook.sessions.base import Request
from pytest_runbook.sessions.shell import ShellSession

_PROMPT = "__RB_BENCH_PROMPT_7f3a__"


class _Shell:
    """One way of driving bash: start + first round trip, a round trip, close."""

    def start(self, cwd: str) -> None:
        raise NotImplementedError

    def trip(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _Own(_Shell):
    def start(self, cwd: str) -> None:
        self.session = ShellSession(cwd=cwd)
        self.trip()

    def trip(self) -> None:
        result = self.session.run(Request("true", "bench", 0, timeout=10))
        assert result.status == 0, result

    def close(self) -> None:
        self.session.close()


class _Pexpect(_Shell):
    def start(self, cwd: str) -> None:
        env = dict(os.environ, PS1=_PROMPT, PS2="", TERM="dumb")
        env.pop("PROMPT_COMMAND", None)
        child = pexpect.spawn(
            "bash",
            ["--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            echo=False,
            encoding="utf-8",
            timeout=10,
            searchwindowsize=256,
        )
        child.delaybeforesend = None
        for obj in (child, child.ptyproc):  # closing must not sleep (ours does not)
            obj.delayafterclose = 0
            obj.delayafterterminate = 0
        child.expect_exact(_PROMPT)
        self.child = child
        self.trip()

    def trip(self) -> None:
        self.child.sendline("true")
        self.child.expect_exact(_PROMPT)

    def close(self) -> None:
        # As ours closes: end of input, then wait for bash to exit (no sleeps, no signals).
        self.child.sendeof()
        self.child.expect(pexpect.EOF)
        self.child.wait()
        self.child.close()


class _Replwrap(_Shell):
    def start(self, cwd: str) -> None:
        previous = os.getcwd()
        os.chdir(cwd)  # replwrap.bash() has no cwd parameter
        try:
            self.repl = pexpect.replwrap.bash()
        finally:
            os.chdir(previous)
        self.trip()

    def trip(self) -> None:
        self.repl.run_command("true", timeout=10)

    def close(self) -> None:
        self.repl.child.close(force=True)  # as it comes: replwrap's own delays included


def _measure(make: Callable[[], _Shell], starts: int, trips: int) -> Tuple[float, float]:
    """(median ms of start + first round trip + close, median ms of a round trip)."""
    lifecycle: List[float] = []
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(starts):
            shell = make()
            t = time.perf_counter()
            shell.start(cwd)
            shell.close()
            lifecycle.append(time.perf_counter() - t)
        shell = make()
        shell.start(cwd)
        try:
            for _ in range(50):  # warm up
                shell.trip()
            times: List[float] = []
            for _ in range(trips):
                t = time.perf_counter()
                shell.trip()
                times.append(time.perf_counter() - t)
        finally:
            shell.close()
    return statistics.median(lifecycle) * 1e3, statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--trips", type=int, default=1000)
    args = parser.parse_args()
    rows: Dict[str, Tuple[float, float]] = {}
    for name, make in (
        ("ShellSession (own)", _Own),
        ("pexpect.spawn, tuned", _Pexpect),
        ("pexpect.replwrap.bash()", _Replwrap),
    ):
        rows[name] = _measure(make, args.starts, args.trips)
    print(f"{'':26} {'start+trip+close ms':>20} {'round trip ms':>14}  (medians)")
    for name, (life, trip) in rows.items():
        print(f"{name:26} {life:20.2f} {trip:14.3f}")
    print(f"({args.starts} starts, {args.trips} round trips each; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
