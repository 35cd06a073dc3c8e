"""pytest-xdist scheduling that never splits a runbook file across workers.

The cells of one Markdown file share one shell, so they must run on one worker, in order.
Every ``--dist`` mode keeps its own meaning for other tests; Markdown items are grouped by
file. Imported only when xdist is active.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from xdist.scheduler import LoadScopeScheduling


def make_scheduler(config: Any, log: Any, suffixes: Tuple[str, ...]) -> Optional[Any]:
    mode = config.getvalue("dist")
    if mode in (None, "no", "each"):
        return None

    class RunbookScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path.lower().endswith(suffixes):
                return path
            if mode == "loadscope":
                return str(super()._split_scope(nodeid))
            if mode == "loadfile":
                return path
            if mode == "loadgroup" and "@" in nodeid:
                return nodeid.rsplit("@", 1)[-1]
            return nodeid  # load, worksteal: every other test is its own unit

    return RunbookScheduling(config, log)
