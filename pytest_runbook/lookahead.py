"""Kernel look-ahead: the next files' Jupyter kernels start while the current file runs.

A kernel takes about 0.5 s of CPU to start, and notebooks' cells are often quick, so a run of
notebooks would mostly wait for one kernel after another. When a file's first cell is set up,
the kernels of the next ``LOOK_AHEAD`` files that need one start in the background (each file's
own ``FileRun``, so its first cell finds its kernel up or nearly). At most ``LOOK_AHEAD`` files
are ahead at any time; a file that drops out of the window without running (-x, a file whose
cells were all skipped) and whatever is ahead at the end of the run (interrupted, -x) are
closed, and every closed kernel is reaped before the run ends.

"Next" is what this process will run: the collected items in order, or under xdist the
worker's own queue (pytest-xdist's private ``torun``; if that cannot be read, only the next
item is known, and only its file is started ahead).
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import bisect
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import pytest

if TYPE_CHECKING:
    from .items import RunbookFile, RunbookItem

# How many files' kernels start ahead of the one running. Measured on 2 cores (notebooks
# benchmark, bench/run.py): 1 leaves kernel start-up on the critical path; more than 2 only
# makes the kernels compete for the CPU with the file that runs.
LOOK_AHEAD = 2

_STATE_KEY = pytest.StashKey["_LookAhead"]()


class _LookAhead:
    """The run's files with kernels started ahead, and how to find the next ones."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ahead: Dict[str, RunbookFile] = {}  # node id -> file whose kernels started early
        self.current: Optional[str] = None  # node id of the file last looked ahead from
        self._positions: Optional[Dict[int, int]] = None  # id(item) -> index in session.items
        self._kernel_starts: List[int] = []  # first item index of each kernel file, in order
        self._kernel_files: List[RunbookFile] = []
        # Whether any collected file has a kernel cell; None until the first item. Without
        # one, looking ahead (a scan of an xdist worker's whole queue per file) is skipped.
        self.any_kernels: Optional[bool] = None

    def step(self, item: RunbookItem, last_of_file: bool) -> None:
        file = item.parent
        arrived = file.nodeid != self.current
        if not arrived and not last_of_file:
            return
        if self.any_kernels is None:
            self.any_kernels = _any_kernel_cells(item.session.items)
        if not self.any_kernels:  # a run without kernels: nothing to look for, at any file
            return
        self.current = file.nodeid
        if arrived and self.ahead.pop(file.nodeid, None) is None:
            # Not started ahead (the first file): its own kernel goes before the next ones,
            # unless fixtures come first (one may change the environment it should get).
            run = file.file_run
            if run.needs_kernel and not file.document.options.fixtures:
                run.start_kernels_early()
        wanted = self._next_kernel_files(item)
        keep = {f.nodeid for f in wanted}
        for nodeid in [n for n in self.ahead if n not in keep]:
            _close_unused(self.ahead.pop(nodeid))
        for following in wanted:
            if following.nodeid not in self.ahead:
                following.file_run.start_kernels_early()
                self.ahead[following.nodeid] = following

    def close_all(self) -> None:
        for file in self.ahead.values():
            _close_unused(file)
        self.ahead.clear()
        kernel = sys.modules.get(f"{__package__}.sessions.kernel")
        if kernel is not None:  # a run without kernels does not import it for this
            kernel.wait_for_shutdowns()

    # -- which files come next ---------------------------------------------------------------

    def _next_kernel_files(self, item: RunbookItem) -> List[RunbookFile]:
        queue = _xdist_queue(self.config)
        if queue is not None:
            return _kernel_files_in(_items_of(item.session, queue), item.parent)
        if not hasattr(self.config, "workerinput"):
            return self._next_in_session(item)
        following = item.next_item  # an xdist worker whose queue could not be read
        return _kernel_files_in([following] if following is not None else [], item.parent)

    def _next_in_session(self, item: RunbookItem) -> List[RunbookFile]:
        if self._positions is None:
            self._index(item.session.items)
        assert self._positions is not None
        position = self._positions.get(id(item))
        if position is None:  # not a collected item (a rerun plugin's copy): nothing to add
            return []
        found: List[RunbookFile] = []
        at = bisect.bisect_right(self._kernel_starts, position)
        for following in self._kernel_files[at:]:
            if len(found) == LOOK_AHEAD:
                break
            if following is not item.parent and not following.file_run.closed:
                found.append(following)
        return found

    def _index(self, items: List[pytest.Item]) -> None:
        from .items import RunbookItem

        self._positions = {id(item): n for n, item in enumerate(items)}
        seen = set()
        for n, candidate in enumerate(items):
            if not isinstance(candidate, RunbookItem) or candidate.parent.nodeid in seen:
                continue
            seen.add(candidate.parent.nodeid)
            if candidate.parent.file_run.needs_kernel:
                self._kernel_starts.append(n)
                self._kernel_files.append(candidate.parent)


def _any_kernel_cells(items: List[pytest.Item]) -> bool:
    from .items import RunbookItem

    documents = {
        id(i.parent.document): i.parent.document for i in items if isinstance(i, RunbookItem)
    }
    return any(
        cell.kind.startswith("kernel:")
        for document in documents.values()
        for cell in document.cells
    )


def _kernel_files_in(items: List[pytest.Item], current: RunbookFile) -> List[RunbookFile]:
    """The first ``LOOK_AHEAD`` files after ``current`` among ``items`` that need a kernel."""
    from .items import RunbookItem

    found: List[RunbookFile] = []
    seen = {current.nodeid}
    for candidate in items:
        if len(found) == LOOK_AHEAD:
            break
        if not isinstance(candidate, RunbookItem) or candidate.parent.nodeid in seen:
            continue
        file = candidate.parent
        seen.add(file.nodeid)
        if file.file_run.needs_kernel and not file.file_run.closed:
            found.append(file)
    return found


def _xdist_queue(config: pytest.Config) -> Optional[List[int]]:
    """The item indices this xdist worker has been given and not yet run, in order; None
    outside xdist or when pytest-xdist's private queue cannot be read."""
    if not hasattr(config, "workerinput"):
        return None
    try:
        for plugin in config.pluginmanager.get_plugins():
            queue: Any = getattr(plugin, "torun", None)
            if queue is None or not hasattr(plugin, "nextitem_index"):
                continue
            with queue.lock() as pending:
                indices = [plugin.nextitem_index, *pending]
            return [n for n in indices if isinstance(n, int) and not isinstance(n, bool)]
    except Exception:  # a private API that moved: fall back to the next item alone
        return None
    return None


def _items_of(session: pytest.Session, indices: List[int]) -> List[pytest.Item]:
    items = session.items
    return [items[n] for n in indices if 0 <= n < len(items)]


def _close_unused(file: RunbookFile) -> None:
    """End the kernels of a file that was started ahead but did not run (yet): should it
    run later after all, it starts afresh."""
    file.file_run.close()
    file._run = None


def look_ahead(item: RunbookItem, last_of_file: bool = False) -> None:
    """At the set-up of ``item``: when it is the first of its file (or, with
    ``last_of_file``, the last, for an xdist worker whose queue has grown), start the kernels
    of the next files that need one and close those that fell out of the window."""
    config = item.config
    state = config.stash.get(_STATE_KEY, None)
    if state is None:
        state = config.stash[_STATE_KEY] = _LookAhead(config)
        config.add_cleanup(state.close_all)
    state.step(item, last_of_file)
