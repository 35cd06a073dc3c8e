"""Matcher timings for the performance contract (SPEC section 8); prints numbers, asserts nothing.

Run: ``python bench/bench_matcher.py``. Each figure is the median of 5 runs of ``check()``
(normalisation included), so it is what a cell pays on top of producing its output.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, List, Optional, Sequence

from pytest_runbook.matching import Mismatch, check, normalise

RUNS = 5


def median_seconds(fn: Callable[[], object]) -> float:
    times: List[float] = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(label: str, expected: Sequence[str], actual: str, mode: str = "exact") -> None:
    result: List[Optional[Mismatch]] = []
    seconds = median_seconds(lambda: result.append(check(expected, actual, mode=mode)))
    verdict = "match" if result[-1] is None else "MISMATCH"
    print(f"{label:<58} {seconds * 1000:9.1f} ms  ({verdict})")


def main() -> None:
    # 100,000 log-like lines against several "..." and "[..]" lines.
    log = "".join(
        f"2024-01-01 12:00:{i % 60:02d} worker-{i % 7} item {i} ok\n" for i in range(100_000)
    )
    expected = [
        "2024-01-01 12:00:00 worker-0 item 0 ok",
        "...",
        "2024-01-01 [..] worker-[..] item 5000 ok",
        "...",
        "[..] item 50000 [..]",
        "2024-01-01 12:00:[..] worker-[..] item 50001 ok",
        "...",
        "[..] worker-[..] item 99999 ok",
    ]
    print(f"100,000 lines ({len(log) / 1e6:.1f} MB), median of {RUNS}:")
    report("  exact, 3 x '...' and 6 x '[..]'", expected, log)
    report("  contains, same lines", [e for e in expected if e != "..."], log, "contains")
    seconds = median_seconds(lambda: normalise(log))
    print(f"{'  normalise() alone':<58} {seconds * 1000:9.1f} ms")

    seq = "".join(f"{i}\n" for i in range(1, 2_000_001))
    print(f"seq 1 2000000 ({len(seq) / 1e6:.1f} MB), median of {RUNS}:")
    report("  '...' alone", ["..."], seq)
    report("  '1' / '...' / '2000000'", ["1", "...", "2000000"], seq)
    report(
        "  '1' / '...' / '1000000' / '...' / '2000000' (full scan)",
        ["1", "...", "1000000", "...", "2000000"],
        seq,
    )
    seconds = median_seconds(lambda: normalise(seq))
    print(f"{'  normalise() alone':<58} {seconds * 1000:9.1f} ms")
    for label, expected_seq in [
        ("  failing tail: Mismatch.diff()", ["1", "...", "2000001"]),
        ("  '0' vs 2,000,000 lines: Mismatch.diff() (truncated)", ["0"]),
    ]:
        mismatch = check(expected_seq, seq)
        if mismatch is None:
            continue
        seconds = median_seconds(mismatch.diff)
        size = len(mismatch.diff())
        print(f"{label:<58} {seconds * 1000:9.1f} ms  ({size} chars of diff)")


if __name__ == "__main__":
    main()
