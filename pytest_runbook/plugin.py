"""The pytest hooks, and nothing else: options, collection, ordering, xdist, summary."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, List, Optional

import pytest

from .errors import RunbookError
from .settings import MARKDOWN_SUFFIXES, SETTINGS_KEY, from_config


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
        default=["*.md", "*.markdown", "*.mdx", "*.mdr"],
        help="glob patterns of Markdown files collected as runbooks",
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


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: List[str]) -> None:
    """``--runbook-update docs/`` means update docs/, not an update mode named "docs/"."""
    for position, arg in enumerate(args[:-1]):
        following = args[position + 1]
        if arg == "--runbook-update" and following not in ("changed", "new"):
            args[position] = "--runbook-update=changed"


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[SETTINGS_KEY] = from_config(config)
    except RunbookError as error:
        raise pytest.UsageError(str(error)) from None
    config.addinivalue_line(
        "markers", "runbook: added to every item collected from a Markdown runbook"
    )
    _stop_sessions_on_sigterm(config)


_SIGTERM_KEY = pytest.StashKey[bool]()


def _stop_sessions_on_sigterm(config: pytest.Config) -> None:
    """Turn SIGTERM into KeyboardInterrupt so file teardown closes shells and their children."""
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_interrupt)
            config.stash[_SIGTERM_KEY] = True
    except ValueError:  # not the main thread (pytest run from a thread): nothing to do
        pass


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give SIGTERM back as it was (pytester runs pytest inside a pytest process)."""
    if config.stash.get(_SIGTERM_KEY, False):
        try:
            if signal.getsignal(signal.SIGTERM) is _raise_interrupt:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except ValueError:
            pass


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional[pytest.Collector]:
    settings = parent.config.stash[SETTINGS_KEY]
    if not settings.wants(file_path.resolve()):
        return None
    from .items import RunbookFile  # the parser and session load only when there is Markdown

    return RunbookFile.from_parent(parent, path=file_path)


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
    settings = session.config.stash[SETTINGS_KEY]
    settings.rewriter.write_all()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["runbook_written"] = settings.rewriter.summary_counts()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: add up what each worker rewrote, for one summary line."""
    counts = getattr(node, "workeroutput", {}).get("runbook_written")
    if counts:
        node.config.stash[SETTINGS_KEY].rewriter.add_counts(counts)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    settings = config.stash[SETTINGS_KEY]
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

    return make_scheduler(config, log, MARKDOWN_SUFFIXES)
