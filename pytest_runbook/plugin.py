"""The pytest hooks, and nothing else: options, collection, ordering, xdist, summary.

Every pytest run imports this module, Markdown or not: it imports only what such a run needs.
The parser, the sessions and the items load with the first runbook collected.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from fnmatch import translate
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Type

import pytest

from .errors import RunbookError
from .settings import MARKDOWN_SUFFIXES, SETTINGS_KEY, Settings, from_config

if TYPE_CHECKING:  # importing items loads the parser and the sessions
    from .items import RunbookFile


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runbook", "Markdown runbooks (pytest-runbook)")
    group.addoption(
        "--runbook",
        dest="runbook_collect",
        action="store_true",
        default=None,
        help="collect Markdown runbooks even when pytest runs without paths (testpaths/rootdir)",
    )
    group.addoption(
        "--runbook-update",
        dest="runbook_update",
        nargs="?",
        const="changed",
        default=None,
        metavar="{changed,new}",
        help="rewrite expected outputs that did not match with the actual output; "
        "=new also adds output blocks to cells that have none",
    )
    group.addoption(
        "--runbook-env",
        dest="runbook_env",
        action="append",
        metavar="NAME=VALUE",
        help="set a variable in every runbook session (repeatable)",
    )
    group.addoption(
        "--runbook-timeout",
        dest="runbook_timeout",
        default=None,
        metavar="SECONDS",
        help="default timeout of a cell (ini runbook_timeout, default 60)",
    )
    group.addoption(
        "--runbook-shell",
        dest="runbook_shell",
        default=None,
        help="shell for shell cells (ini runbook_shell, default bash)",
    )
    group.addoption(
        "--runbook-on-failure",
        dest="runbook_on_failure",
        default=None,
        choices=("continue", "stop"),
        help="after a failed cell: run the rest of the file (continue) or skip it (stop)",
    )
    group.addoption(
        "--runbook-stream",
        dest="runbook_stream",
        action="store_true",
        default=None,
        help="with -s, show each cell's output live, prefixed with the cell's name",
    )
    group.addoption(
        "--runbook-transcript",
        dest="runbook_transcript",
        default=None,
        metavar="DIR",
        help="write each runbook with its actual outputs, statuses and durations to DIR",
    )
    parser.addini(
        "runbook_patterns",
        type="args",
        default=["*.md", "*.markdown", "*.mdx", "*.mdr", "*.qmd", "*.ipynb"],
        help="glob patterns of Markdown files and notebooks collected as runbooks",
    )
    parser.addini("runbook", type="bool", default=False, help="same as --runbook")
    parser.addini("runbook_timeout", default="60", help="default cell timeout in seconds")
    parser.addini("runbook_shell", default="bash", help="shell for shell cells")
    parser.addini(
        "runbook_bare_fences",
        default="skip",
        help="'shell' runs fences without a language as shell (Runme); 'skip' (default) does not",
    )
    parser.addini("runbook_on_failure", default="continue", help="continue or stop")
    parser.addini("runbook_env", type="linelist", default=[], help="NAME=VALUE lines")
    parser.addini("runbook_update", type="bool", default=False, help="same as --runbook-update")
    parser.addini("runbook_stream", type="bool", default=False, help="same as --runbook-stream")
    parser.addini("runbook_transcript", default="", help="same as --runbook-transcript")
    parser.addini("runbook_columns", default="200", help="terminal width of the sessions")
    parser.addini("runbook_home", default="", help="'tmp': a fresh, empty HOME for each file")
    parser.addini("runbook_python", default="", help="interpreter of the Python sessions")
    parser.addini(
        "runbook_python_blocks", default="named", help="all: every ```python block is a cell"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: List[str]) -> None:
    """``--runbook-update docs/`` means update docs/, not an update mode named "docs/"."""
    for position, arg in enumerate(args[:-1]):
        following = args[position + 1]
        if arg == "--runbook-update" and following not in ("changed", "new"):
            args[position] = "--runbook-update=changed"


def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = from_config(config)
    except RunbookError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[SETTINGS_KEY] = settings
    config.stash[_SELECTION_KEY] = Selection(
        settings, named=bool(getattr(config.option, "file_or_dir", None))
    )
    config.addinivalue_line(
        "markers", "runbook: added to every item collected from a Markdown runbook"
    )
    if not hasattr(config, "workerinput"):  # not an xdist worker: maybe its controller
        config.pluginmanager.register(_WorkerInterrupts(config), "runbook-worker-interrupts")


class _WorkerInterrupts:
    """An xdist controller passes a SIGINT meant for it alone on to its workers.

    A ``kill -INT`` of the controller (a CI job cancelled, ``timeout -s INT``) reaches only
    the controller; execnet then lets each worker's running test go on for 5 s before the
    worker interrupts itself, and a runbook cell (a ``sleep``, a wait for a server) is just
    such a test. A ^C typed in a terminal reached the workers already (one foreground
    process group): then nothing is sent, so no worker is interrupted twice while it
    closes its sessions.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        if type(excinfo.value) is not KeyboardInterrupt:  # xdist's own stop (-x), pytest.exit
            return
        dsession = self.config.pluginmanager.get_plugin("dsession")
        group = getattr(getattr(dsession, "nodemanager", None), "group", None)
        if group is None or _terminal_interrupted_us():
            return
        for gateway in list(group):
            popen: Any = getattr(getattr(gateway, "_io", None), "popen", None)
            pid = getattr(popen, "pid", None)
            if isinstance(pid, int) and popen.poll() is None:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGINT)


def _terminal_interrupted_us() -> bool:
    """Whether this process leads the foreground of its terminal (where ^C signals the group)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


class Selection:
    """Which of the files pytest offers are runbooks to collect (SPEC 1), decided cheaply.

    pytest offers every file of every directory it walks, and walks a directory again for
    each file named in it: ``pytest f1.py ... f100.py`` makes 10,000 offers. One compiled
    pattern turns away nearly all of them without a system call; a Markdown name is then
    looked up among pytest's own initial paths (absolute, symlinks kept, as pytest offers
    files), the file and its directories upward.
    """

    # Left in a --runbook-transcript directory, so that later runs, with the option or without,
    # know its Markdown for transcripts of runbooks and not runbooks.
    TRANSCRIPT_MARK = ".pytest-runbook-transcripts"

    def __init__(self, settings: Settings, named: bool) -> None:
        patterns = [translate(pattern) for pattern in settings.patterns]
        suffixes = "|".join(re.escape(suffix[1:]) for suffix in MARKDOWN_SUFFIXES)
        # A file named on the command line with a Markdown suffix is a runbook whatever the
        # patterns say; any other file must match them.
        self._candidate = re.compile("|".join([*patterns, rf"(?is:.*\.(?:{suffixes}))\Z"]))
        self._pattern = re.compile("|".join(patterns) or "(?!)")
        self.named = named  # paths on the command line (else testpaths or rootdir)
        self.opt_in = settings.opt_in
        transcript = settings.transcript_dir
        self.transcript_dir = Path(os.path.abspath(transcript)) if transcript else None
        self._transcripts: Dict[Path, bool] = {}  # directory -> holds transcripts
        self.offered: Dict[Tuple[pytest.Collector, Path], Optional[pytest.Collector]] = {}

    def may_be_runbook(self, name: str) -> bool:
        """Whether a file of this name could be a runbook (no file system access)."""
        return self._candidate.match(name) is not None

    def wants(self, path: Path, session: pytest.Session) -> bool:
        """Whether to collect ``path``, a file that passed ``may_be_runbook``.

        A file named on the command line is always a runbook; one found in a directory named
        there (or, with ``--runbook``, in testpaths or the rootdir) must match the patterns.
        A file pytest offers only because it lies beside or above a named one was not asked
        for, nor was what an earlier ``--runbook-transcript`` wrote into the tested tree.
        """
        if session.isinitpath(path):
            return self.named or (self.opt_in and self._pattern.match(path.name) is not None)
        if not (self.named or self.opt_in) or self._pattern.match(path.name) is None:
            return False
        for directory in path.parents:
            if session.isinitpath(directory):
                return True
            if self._holds_transcripts(directory):
                return False
        return False

    def _holds_transcripts(self, directory: Path) -> bool:
        known = self._transcripts.get(directory)
        if known is None:
            known = directory == self.transcript_dir or os.path.exists(
                os.path.join(directory, self.TRANSCRIPT_MARK)
            )
            self._transcripts[directory] = known
        return known

    def mark_transcripts(self) -> None:
        """Leave the mark in the transcript directory, if this run wrote one."""
        if self.transcript_dir is None or not self.transcript_dir.is_dir():
            return
        mark = self.transcript_dir / self.TRANSCRIPT_MARK
        if not mark.exists():
            mark.write_text(
                "pytest-runbook --runbook-transcript wrote the Markdown files here: transcripts "
                "of runs, never collected as runbooks unless named on the command line.\n"
            )


_SELECTION_KEY = pytest.StashKey[Selection]()
_SIGTERM_KEY = pytest.StashKey[bool]()


def _runbook_file_class(config: pytest.Config) -> Type[RunbookFile]:
    """The items module, loaded with the first runbook; sessions will need SIGTERM handled."""
    from .items import RunbookFile

    if _SIGTERM_KEY not in config.stash:
        config.stash[_SIGTERM_KEY] = _stop_sessions_on_sigterm()
    return RunbookFile


def _stop_sessions_on_sigterm() -> bool:
    """Turn SIGTERM into KeyboardInterrupt so file teardown closes shells and their children."""
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_interrupt)
            return True
    except ValueError:  # not the main thread (pytest run from a thread): nothing to do
        pass
    return False


def pytest_unconfigure(config: pytest.Config) -> None:
    """Finish closing the shells; give SIGTERM back as it was (pytester runs pytest inside a
    pytest process)."""
    reaper = sys.modules.get(f"{__package__}.sessions.shell.reaper")
    if reaper is not None:
        reaper.wait()
    if config.stash.get(_SIGTERM_KEY, False):
        try:
            if signal.getsignal(signal.SIGTERM) is _raise_interrupt:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except ValueError:
            pass


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional[pytest.Collector]:
    selection = parent.config.stash[_SELECTION_KEY]
    if not selection.may_be_runbook(file_path.name):
        return None
    # pytest walks a directory again for each file named in it and discards all it offered
    # but that file: `pytest f1.md ... f100.md` would build 10,000 nodes for 100 files, and
    # decide 10,000 times which files are runbooks. Each is decided once.
    key = (parent, file_path)
    if key in selection.offered:
        return selection.offered[key]
    node = None
    if selection.wants(file_path, parent.session):
        node = _runbook_file_class(parent.config).from_parent(parent, path=file_path)
    if node is None or not parent.config.getoption("keepduplicates", False):
        selection.offered[key] = node  # a file named twice with --keep-duplicates: two nodes
    return node


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    config.stash[_SELECTION_KEY].offered.clear()
    runbook_items = sys.modules.get(f"{__package__}.items")
    if (
        runbook_items is not None
        and session.items
        and not config.option.collectonly
        and not hasattr(config, "workerinput")  # an xdist worker runs what it is sent
    ):
        runbook_items.start_first_file(session.items[0])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Optional[pytest.Item]) -> None:
    """Tell a cell what runs after it, so the file can start that cell early."""
    items = sys.modules.get(f"{__package__}.items")
    if items is not None and isinstance(item, items.RunbookItem):
        item.next_item = nextitem


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    runbook_items = sys.modules.get(f"{__package__}.items")
    if runbook_items is not None:  # no runbook was collected otherwise
        runbook_items.order_items(config, items)


def pytest_report_header(config: pytest.Config) -> Optional[str]:
    settings = config.stash[SETTINGS_KEY]
    if settings.update:
        return f"runbook: update mode ({settings.update}): outputs that differ are rewritten"
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    settings = config.stash[SETTINGS_KEY]
    if settings.rewriter_used:
        settings.rewriter.write_all()
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["runbook_written"] = settings.rewriter.summary_counts()
    if config.pluginmanager.has_plugin("dsession"):  # the xdist controller
        _show_collection_warnings_once(config)
    if settings.update and settings.rewriter.skipped and session.exitstatus == pytest.ExitCode.OK:
        # Outputs that no longer match were not written (the file changed meanwhile): the
        # run must not look green. The summary names the files.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if settings.transcript_dir is not None:
        config.stash[_SELECTION_KEY].mark_transcripts()


def _show_collection_warnings_once(config: pytest.Config) -> None:
    """Every xdist worker collects every file, so each reports a runbook's warnings again.

    Runs before the terminal reporter's summary (its sessionfinish is a wrapper); drops the
    repeats of a collection warning (no node id) located in a runbook.
    """
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    reports = getattr(reporter, "stats", {}).get("warnings")
    if not reports:
        return
    selection = config.stash[_SELECTION_KEY]
    seen = set()
    kept = []
    for report in reports:
        location = getattr(report, "fslocation", None)
        if not getattr(report, "nodeid", None) and location:
            key = (report.message, tuple(location))
            if selection.may_be_runbook(os.path.basename(str(location[0]))):
                if key in seen:
                    continue
                seen.add(key)
        kept.append(report)
    reports[:] = kept


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: add up what each worker rewrote, for one summary line."""
    counts = getattr(node, "workeroutput", {}).get("runbook_written")
    if counts:
        node.config.stash[SETTINGS_KEY].rewriter.add_counts(counts)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    settings = config.stash[SETTINGS_KEY]
    if not settings.update and not settings.rewriter_used:
        return  # nothing to say, and no need to import the rewriter
    line = settings.rewriter.summary_line(settings.update)
    if line:
        terminalreporter.write_sep("-", "runbook update")
        terminalreporter.write_line(line)
        here = config.invocation_params.dir
        for path in sorted(settings.rewriter.written_paths()):
            shown = os.path.relpath(path, here)
            terminalreporter.write_line(f"  {path if shown.startswith('..') else shown}")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Keep every runbook file on one worker, in order, whatever ``--dist`` says."""
    from .xdist_scheduling import make_scheduler

    return make_scheduler(config, log, config.stash[_SELECTION_KEY].may_be_runbook)
