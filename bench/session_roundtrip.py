"""Session round trip and large-output cost, outside pytest (SPEC section 8).

python bench/session_roundtrip.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from pytest_runbook.session import Session


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    s = Session(cwd=os.getcwd())
    try:
        for _ in range(30):
            s.run("true", timeout=10)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            s.run("true", timeout=10)
            times.append(time.perf_counter() - t)
        times.sort()
        print(
            f"true x{n}: median {statistics.median(times) * 1e3:.3f} ms, "
            f"p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms"
        )
        t = time.perf_counter()
        subprocess.run(["bash", "-c", "seq 1 2000000 >/dev/null"], check=True)
        bare = time.perf_counter() - t
        best = []
        for _ in range(3):
            t = time.perf_counter()
            r = s.run("seq 1 2000000", timeout=60)
            best.append(time.perf_counter() - t)
        assert r.status == 0 and len(r.output) == 14888896, (r.status, len(r.output))
        print(
            f"seq 1 2000000 ({len(r.output)} bytes): "
            f"session {min(best):.3f} s, bash alone {bare:.3f} s"
        )
    finally:
        s.close()


if __name__ == "__main__":
    main()
