"""pytest-xdist scheduling that never splits a runbook file across workers.

The cells of one Markdown file share one shell, so they must run on one worker, in order.
Every ``--dist`` mode keeps its own meaning for other tests; runbook items are grouped by
file. The controller sees node ids only, so a runbook is known by its file's name: the same
test (``runbook_patterns``, or a Markdown suffix) that collection applies first. Imported only
when xdist is active.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from xdist.scheduler import LoadScopeScheduling


def make_scheduler(config: Any, log: Any, may_be_runbook: Callable[[str], bool]) -> Optional[Any]:
    mode = config.getvalue("dist")
    if mode in (None, "no", "each"):
        return None

    class RunbookScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if may_be_runbook(path.rsplit("/", 1)[-1]):
                return path
            if mode == "loadscope":
                return str(super()._split_scope(nodeid))
            if mode == "loadfile":
                return path
            if mode == "loadgroup" and "@" in nodeid:
                return nodeid.rsplit("@", 1)[-1]
            return nodeid  # load, worksteal: every other test is its own unit

    return RunbookScheduling(config, log)
