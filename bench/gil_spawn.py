"""Why the shell is not spawned on a helper thread: os.posix_spawn keeps the GIL.

    python bench/gil_spawn.py

The main thread waits 0.5 ms at a time in ``select`` (as pytest's thread waits for a cell),
first alone, then while a helper thread spawns ``/bin/true`` in a loop (as a spawning thread
would start the next file's bash). Printed: how long those waits take, median, p90 and max.
If spawning released the GIL they would stay near 0.5 ms; they take several ms, the switch
interval, because the main thread must wait for the helper to give the GIL back.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import List


def _waits(read_end: int, count: int = 200) -> List[float]:
    lasted = []
    for _ in range(count):
        start = time.perf_counter()
        select.select([read_end], [], [], 0.0005)
        lasted.append(time.perf_counter() - start)
    return sorted(lasted)


def _spawn_until(stop: threading.Event, env: dict) -> None:  # type: ignore[type-arg]
    pids = []
    while not stop.is_set():
        pids.append(os.posix_spawn("/bin/true", ["true"], env))
    for pid in pids:
        os.waitpid(pid, 0)


def main() -> None:
    read_end, write_end = os.pipe()
    alone = _waits(read_end)
    stop = threading.Event()
    spawner = threading.Thread(target=_spawn_until, args=(stop, dict(os.environ)))
    spawner.start()
    try:
        busy = _waits(read_end)
    finally:
        stop.set()
        spawner.join()
    os.close(read_end)
    os.close(write_end)
    for label, lasted in (("alone", alone), ("while a thread spawns", busy)):
        median, p90, most = lasted[len(lasted) // 2], lasted[len(lasted) * 9 // 10], lasted[-1]
        print(
            f"0.5 ms waits, {label}: median {median * 1e3:.2f} ms, "
            f"p90 {p90 * 1e3:.2f} ms, max {most * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
