"""pytest nodes, adapting pytest to the runner: a file is a ``FileRun``, a cell an item.

Everything pytest-specific lives here: collection, markers, fixtures, which cells the
selection (``-k``, ``-m``, ``--deselect``, skip marks) leaves out, skip/xfail, and turning
a ``verdict.Failure`` into the item's report. Running is ``runner``'s, judging ``verdict``'s.
Helpers that read pytest's private APIs fail closed: when they cannot tell whether a cell is
selected, it is not run as setup, and the cell that needed it is skipped, saying why.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, NoReturn, Optional, Set, Tuple

import pytest

from . import report
from .document import Cell, Document, Notice, read
from .errors import RunbookError
from .lookahead import look_ahead
from .runner import CellSkipped, FileRun, RunError, RunSettings, on_platform
from .settings import SETTINGS_KEY, Settings
from .verdict import Failure, Rewrite

_MAY_SKIP = frozenset({"skip", "skipif", "xfail"})  # marks that may keep a cell from running


class RunbookWarning(pytest.PytestWarning):
    """Valid but suspicious Markdown: an unknown attribute, an unclosed fence, ..."""


class CellFailed(Exception):
    """A cell did not do what its document says; ``args[0]`` is the whole report."""


# Files whose sessions were started early (before their first item), by node id: closed at
# the end of the run if the file never ran (-x, interrupted, deselected at the last moment).
_EARLY_KEY = pytest.StashKey[Dict[str, "RunbookFile"]]()


def _close_early_runs(config: pytest.Config, keep: Tuple[str, ...] = ()) -> None:
    early = config.stash.get(_EARLY_KEY, {})
    for nodeid in [n for n in early if n not in keep]:
        file = early.pop(nodeid)
        file.file_run.close()
        file._run = None  # should the file run after all, it starts afresh, not on a closed run


@contextlib.contextmanager
def _as_pytest_outcomes() -> Iterator[None]:
    """The runner's exceptions as pytest's: a skip at the item's line, a located failure."""
    try:
        yield
    except RunError as error:
        raise CellFailed(str(error.args[0])) from None
    except CellSkipped as skipped:
        _skip(str(skipped.args[0]))


class RunbookFile(pytest.Module):
    """One Markdown runbook: parses it, then runs its cells through one ``FileRun``.

    A ``Module`` (with an empty module object) so that module-scoped fixtures named in the
    frontmatter live exactly as long as the file's sessions.
    """

    document: Document
    cell_items: Dict[int, RunbookItem]
    _run: Optional[FileRun] = None

    def _getobj(self) -> types.ModuleType:
        return types.ModuleType(self.path.stem)

    def collect(self) -> Iterable[pytest.Item]:
        settings = self.config.stash[SETTINGS_KEY]
        try:
            if self.path.suffix.lower() == ".ipynb":
                from .notebook import read_notebook  # nbformat only for notebooks

                self.document = read_notebook(str(self.path), settings.defaults)
            else:
                self.document = read(str(self.path), settings.defaults)
        except RunbookError as error:
            error.path = self.display_path
            # Warnings found beside the errors (InvalidDocument) are listed in the error too.
            self._warn(getattr(error, "notices", ()))
            raise self.CollectError(str(error)) from None
        self._warn(self.document.notices)
        if not self.document.options.enabled:
            return []
        missing_shell = self.file_run.missing_shell()
        if missing_shell is not None:
            raise self.CollectError(missing_shell)
        self._check_kernels()
        self.cell_items = {
            cell.index: RunbookItem.from_parent(self, name=cell.name, cell=cell)
            for cell in self.document.cells
        }
        return list(self.cell_items.values())

    def _check_kernels(self) -> None:
        """A kernel that is not installed (or no jupyter extra) fails the file at collection,
        naming the kernel and the fix, rather than each of its cells at run time. Files
        without kernel cells never import jupyter_client."""
        names = sorted(
            {c.kind.partition(":")[2] for c in self.document.cells if c.kind.startswith("kernel:")}
        )
        if not names:
            return
        from .sessions.kernel import KernelUnavailable, check_kernel

        for name in names:
            try:
                check_kernel(name)
            except KernelUnavailable as error:
                raise self.CollectError(f"{self.display_path}: {error}") from None

    def _warn(self, notices: Iterable[Notice]) -> None:
        for notice in notices:
            warnings.warn_explicit(
                RunbookWarning(notice.message),
                category=RunbookWarning,
                filename=self.display_path,
                lineno=notice.line + 1,
            )

    @property
    def display_path(self) -> str:
        return self.nodeid.split("::", 1)[0] or self.path.name

    @property
    def file_run(self) -> FileRun:
        """The file's run: made on first use (collection checks, an early start, setup)."""
        if self._run is None:
            settings: Settings = self.config.stash[SETTINGS_KEY]
            run_settings = RunSettings(
                env=settings.env,
                columns=settings.columns,
                update=settings.update,
                root=str(self.config.rootpath),
                home=settings.home,
                transcript=settings.transcript_dir is not None,
                doctest_flags=_doctest_flags(settings.doctest_optionflags, self.document),
            )
            directory = str(self.path.parent)
            self._run = FileRun(self.document, self.display_path, directory, run_settings)
        return self._run

    # -- the run, shared by the items -------------------------------------------------------

    def setup(self) -> None:
        self.config.stash.get(_EARLY_KEY, {}).pop(self.nodeid, None)  # now this file's own
        self._settings: Settings = self.config.stash[SETTINGS_KEY]
        self.fixtures_exported = False
        self.file_run.excluded = {
            cell.index: why
            for cell in self.document.cells
            for excluded, why in [_never_runs(self, cell)]
            if excluded
        }

    def teardown(self) -> None:
        run = self.file_run
        transcript_dir = self.config.stash[SETTINGS_KEY].transcript_dir
        try:
            failures = run.run_pending_teardown()
        finally:
            run.close(later=True)  # the run's end waits for what it leaves (plugin.py)
            if run.transcript is not None and transcript_dir is not None:
                run.transcript.write(transcript_dir / self.display_path)
            for line, note in run.closing_notes:
                warnings.warn_explicit(
                    RunbookWarning(note),
                    category=RunbookWarning,
                    filename=self.display_path,
                    lineno=line + 1,
                )
        if failures:  # an error at teardown of the file's last item, as a failing finalizer is
            raise CellFailed("\n\n".join(report.render(failure) for failure in failures))

    def start_early(self, current: RunbookFile) -> None:
        """Start this file's sessions while ``current``'s last cell runs (see FileRun)."""
        config = self.config
        if _EARLY_KEY not in config.stash:
            config.stash[_EARLY_KEY] = {}
            config.add_cleanup(lambda: _close_early_runs(config))  # -x, interrupted, ...
        early = config.stash[_EARLY_KEY]
        _close_early_runs(config, keep=(self.nodeid, current.nodeid))
        if self.nodeid in early or not self.document.cells or self.file_run.closed:
            return
        self.file_run.start_early()
        early[self.nodeid] = self


def start_first_file(item: pytest.Item) -> None:
    """Start the sessions of the run's first file once collection ends: the shell starts up
    while pytest reports and sets up, as the next file's does while a file's last cell runs."""
    if isinstance(item, RunbookItem) and not any(
        mark.name in _MAY_SKIP for mark in item.iter_markers()
    ):
        item.parent.start_early(item.parent)


def _skip(reason: str) -> NoReturn:
    """Skip with the item's own location (the Markdown line), as a skip mark reports it;
    plain pytest.skip() would name this file's line in ``-rs``."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


# -- which cells the selection leaves out (SPEC 5) --------------------------------------------
# Each answer is (excluded, why): why is None when the answer is certain, else the reason it
# could not be told, and the cell counts as excluded (fail closed: never run a cell the
# selection may have left out).

_Exclusion = Tuple[bool, Optional[str]]
_RUNS: _Exclusion = (False, None)
_EXCLUDED: _Exclusion = (True, None)


def _never_runs(file: RunbookFile, cell: Cell) -> _Exclusion:
    """SPEC 5: cells left out by attribute, ``--deselect`` or ``-m`` never run as setup."""
    options = cell.options
    if options.skip is not None or file.document.options.skip is not None:
        return _EXCLUDED
    if options.exclude_from_run_all:
        return _EXCLUDED
    if options.platforms and not on_platform(options.platforms):
        return _EXCLUDED
    if any(_which(c) is None for c in options.requires):
        return _EXCLUDED
    if file.file_run.missing_interpreter(cell) is not None:
        return _EXCLUDED
    item = getattr(file, "cell_items", {}).get(cell.index)
    if item is not None:  # e.g. a skip a conftest hook added
        skipped = _skipped_by_marks(item)
        if skipped[0]:
            return skipped
    nodeid = f"{file.nodeid}::{cell.name}"
    for prefix in file.config.getoption("deselect") or []:
        if nodeid.startswith(str(prefix)):
            return _EXCLUDED
    keyword = file.config.getoption("keyword") or ""
    if keyword and item is not None:
        by_keyword = _excluded_by_keyword(item, keyword)
        if by_keyword[0]:
            return by_keyword
    markexpr = file.config.getoption("markexpr") or ""
    if not markexpr:
        return _RUNS
    names = set(options.tags) | {"runbook"}
    if item is not None:  # also xfail, usefixtures and marks that conftest hooks added
        names |= {mark.name for mark in item.iter_markers()}
    return _excluded_by_marks(markexpr, names)


def _which(command: str) -> Optional[str]:
    import shutil

    return shutil.which(command)


def _skipped_by_marks(item: pytest.Item) -> _Exclusion:
    """Whether pytest will skip ``item`` for a skip/skipif mark (conditions evaluated)."""
    if not any(True for _ in item.iter_markers("skip")) and not any(
        True for _ in item.iter_markers("skipif")
    ):
        return _RUNS
    try:
        from _pytest.skipping import evaluate_skip_marks

        return (evaluate_skip_marks(item) is not None, None)
    except Exception as error:  # a private API that moved, or a condition that fails
        return (True, f"cannot tell whether its skip/skipif marks skip it ({_brief(error)})")


def _excluded_by_marks(markexpr: str, names: Set[str]) -> _Exclusion:
    """Whether ``-m markexpr`` leaves out a cell whose marks are ``names``."""
    try:
        from _pytest.mark.expression import Expression

        def matcher(name: str, /, **kwargs: Any) -> bool:
            return name in names

        return (not Expression.compile(markexpr).evaluate(matcher), None)
    except Exception as error:  # a private API: if it moved, do not guess
        return (True, f"cannot tell whether -m {markexpr!r} selects it ({_brief(error)})")


def _brief(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _keyword_matches(item: pytest.Item, keyword: str) -> Tuple[bool, bool]:
    """Whether ``-k keyword`` matches ``item``, and whether it would without the item's own
    name; raises when pytest's private API moved."""
    from _pytest.mark import KeywordMatcher
    from _pytest.mark.expression import Expression

    expression = Expression.compile(keyword)
    matcher = KeywordMatcher.from_item(item)
    without_name = KeywordMatcher(set(matcher._names) - {item.name})
    return bool(expression.evaluate(matcher)), bool(expression.evaluate(without_name))


def _named_by_keyword(item: pytest.Item, keyword: str) -> _Exclusion:
    """Whether ``-k keyword`` selects ``item`` because of its own name (``-k set-tokens``),
    not merely lets it through (``-k "not network"``): Runme runs an ``excludeFromRunAll``
    cell only when it is asked for by name. (True, None) when named; (False, why) when it
    cannot tell."""
    try:
        with_name, without_name = _keyword_matches(item, keyword)
    except Exception as error:  # a private API that moved: not asked for by name, say why
        return (False, f"cannot tell whether -k {keyword!r} names it ({_brief(error)})")
    return (with_name and not without_name, None)


def _excluded_by_keyword(item: pytest.Item, keyword: str) -> _Exclusion:
    """Whether ``-k`` leaves ``item`` out because of its own name (``-k "not destroy"``),
    rather than merely not selecting it (``-k target``, whose earlier cells run as setup).
    A cell left out by name never runs, as one left out with --deselect."""
    # `-k "final and not danger"` selects neither by the rule below, but names danger under
    # a `not`: a cell named there is one the user wants left alone.
    if any(word in item.name.lower() for word in _negated_words(keyword)):
        return _EXCLUDED
    try:
        with_name, without_name = _keyword_matches(item, keyword)
    except Exception as error:  # a private API that moved: do not guess
        return (True, f"cannot tell whether -k {keyword!r} leaves it out ({_brief(error)})")
    return (not with_name and without_name, None)


def _negated_words(expression: str) -> List[str]:
    """The words of a -k expression under a ``not``, lower-cased (pytest matches them as
    case-insensitive substrings)."""
    words: List[str] = []
    negated_groups: List[bool] = []
    pending = False
    for token in re.findall(r"\(|\)|[^\s()]+", expression):
        inside = bool(negated_groups and negated_groups[-1])
        if token == "not":
            pending = not pending
        elif token == "(":
            negated_groups.append(pending or inside)
            pending = False
        elif token == ")":
            if negated_groups:
                negated_groups.pop()
        elif token in ("and", "or"):
            pending = False
        else:
            if pending or inside:
                words.append(token.lower())
            pending = False
    return words


class RunbookItem(pytest.Item):
    """One cell. Its outcome: exit status accepted and output as the document says."""

    parent: RunbookFile
    next_item: Optional[pytest.Item] = None  # set by pytest_runtest_protocol: what runs next
    obj: Any = None  # pytest's fixture error report reads ``item.obj`` (doctest items do this too)

    def __init__(self, *, cell: Cell, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self._add_markers()
        if self.parent.document.options.fixtures:
            self._request_fixtures(self.parent.document.options.fixtures)

    def _request_fixtures(self, names: Tuple[str, ...]) -> None:
        """Frontmatter ``fixtures:``, requested the way pytest's doctest items do it."""
        self.add_marker(pytest.mark.usefixtures(*names))
        manager = self.session._fixturemanager
        if int(pytest.__version__.split(".")[0]) >= 8:
            info = manager.getfixtureinfo(node=self, func=None, cls=None)
        else:  # pytest 7 would read the arguments of ``func`` (None) without this flag
            legacy: Any = manager
            info = legacy.getfixtureinfo(node=self, func=None, cls=None, funcargs=False)
        self._fixtureinfo = info
        self.fixturenames = info.names_closure
        self.funcargs: Dict[str, Any] = {}
        try:
            from _pytest.fixtures import TopRequest

            self._request = TopRequest(self, _ispytest=True)  # type: ignore[arg-type]
        except ImportError:  # pytest 7
            from _pytest.fixtures import FixtureRequest

            legacy_request: Any = FixtureRequest  # concrete in pytest 7
            self._request = legacy_request(self, _ispytest=True)

    def _check_fixtures_exist(self) -> None:
        """An unknown name in frontmatter ``fixtures:`` is the document's error: say so plainly."""
        known = self._fixtureinfo.name2fixturedefs
        options = self.parent.document.options
        missing = [n for n in options.fixtures if n not in known]
        if missing:
            where = self.parent.display_path
            if options.fixtures_line is not None:
                where += f":{options.fixtures_line + 1}"
            raise CellFailed(
                f"{where}: frontmatter fixtures: "
                + ", ".join(f"fixture {n!r} not found" for n in missing)
                + "\nfix: define it in a conftest.py or plugin ('pytest --fixtures' lists them)"
            )

    def _export_fixture_values(self) -> None:
        """String and path values become session variables (TMP_PATH, ...). pytest makes a
        function-scoped fixture afresh for every item, and ends it after, so its value is
        exported before every cell; a wider one's once per file."""
        file = self.parent
        if not hasattr(self, "_request"):
            return
        first = not file.fixtures_exported
        file.fixtures_exported = True
        definitions = self._fixtureinfo.name2fixturedefs
        for name in file.document.options.fixtures:
            if not first and definitions[name][-1].scope != "function":
                continue
            value = self.funcargs.get(name)
            if isinstance(value, (str, os.PathLike, int, float)) and not isinstance(value, bool):
                file.file_run.add_export(
                    name.upper(), os.fspath(value) if isinstance(value, os.PathLike) else str(value)
                )

    @property
    def file(self) -> RunbookFile:
        return self.parent

    def _add_markers(self) -> None:
        options = self.cell.options
        doc_options = self.parent.document.options
        self.add_marker("runbook")
        for tag in options.tags:
            _register_marker(self.config, tag)
            self.add_marker(tag)
        if doc_options.skip is not None:
            self.add_marker(pytest.mark.skip(reason=doc_options.skip or "runbook skipped"))
        if options.skip is not None:
            self.add_marker(pytest.mark.skip(reason=options.skip or f"cell {self.name!r} skipped"))
        if options.xfail is not None:
            self.add_marker(pytest.mark.xfail(reason=options.xfail or "", strict=False))
        for command in options.requires:
            if _which(command) is None:
                self.add_marker(pytest.mark.skip(reason=f"requires {command!r}, not found on PATH"))
        if options.platforms and not on_platform(options.platforms):
            wanted = ", ".join(options.platforms)
            self.add_marker(pytest.mark.skip(reason=f"runs on {wanted} only, not {sys.platform}"))

    def reportinfo(self) -> Tuple[Path, int, str]:
        return self.path, self.cell.line, f"[runbook] {self.name}"

    @property
    def location_text(self) -> str:
        return f"{self.parent.display_path}:{self.cell.line + 1}"

    def may_start_early(self) -> bool:
        """pytest's half of whether this cell may start before its item runs: nothing of
        pytest's (fixtures to set up, a skip/skipif/xfail mark, live streaming for this
        item's name) has to happen first. The runner's half is ``FileRun.prefetchable``."""
        return (
            not hasattr(self, "_request")
            and not self.parent._settings.stream
            and not any(mark.name in _MAY_SKIP for mark in self.iter_markers())
        )

    def setup(self) -> None:
        file = self.parent
        run = file.file_run
        cell = self.cell
        following = self.next_item
        look_ahead(self, last_of_file=getattr(following, "parent", None) is not file)
        if (
            isinstance(following, RunbookItem)
            and following.parent is not file
            and not any(mark.name in _MAY_SKIP for mark in following.iter_markers())
        ):
            following.parent.start_early(file)
        if hasattr(self, "_request"):
            self._check_fixtures_exist()
            self._request._fillfixtures()
            self._export_fixture_values()
        if cell.options.exclude_from_run_all:
            selected, why = self._selected_explicitly()
            if not selected:
                _skip(
                    f"excludeFromRunAll: select it explicitly to run it "
                    f"({file.display_path}::{self.name} or -k {self.name})"
                    + (f"; {why}" if why else "")
                )
        if run.stopped_by is not None and not cell.options.teardown:
            _skip(f"earlier cell {run.stopped_by!r} failed (on-failure: stop)")
        missing = run.missing_interpreter(cell)
        if missing is not None:  # before its prerequisites run for nothing
            raise CellFailed(missing)
        if run.stopped_by is not None:
            return  # a teardown cell after on-failure stop: the skipped cells stay unrun
        undecided = run.undecided_before(cell)
        if undecided:
            earlier, why = undecided[0]
            _skip(
                f"earlier cell {earlier.name!r} was not run as setup: {why}; select it or "
                "leave it out explicitly (-k, --deselect) so that its part is clear"
            )
        stream = file._settings.stream
        for earlier in run.prerequisites(cell):
            with _as_pytest_outcomes():
                on_output = self._stream_writer(earlier.name) if stream else None
                failure = run.run_prerequisite(earlier, self.name, on_output)
            if failure is not None:
                raise CellFailed(report.render(failure))

    def _selected_explicitly(self) -> Tuple[bool, Optional[str]]:
        keyword = self.config.getoption("keyword")
        why = None
        if keyword:
            named, why = _named_by_keyword(self, keyword)
            if named:
                return True, None
        settings = self.config.stash[SETTINGS_KEY]
        invocation = self.config.invocation_params.dir
        for arg in settings.explicit_ids:
            path, _, rest = arg.partition("::")
            if rest == self.name and (invocation / path).resolve() == self.path.resolve():
                return True, None
        return False, why

    def runtest(self) -> None:
        file = self.parent
        run = file.file_run
        on_output = self._stream_writer() if file._settings.stream else None
        with _as_pytest_outcomes():
            outcomes = run.run(self.cell, on_output)
            verdict = run.judge(self.cell, outcomes)
        if isinstance(verdict, Failure):
            run.note_failure(self.cell)
            raise CellFailed(report.render(verdict))
        if isinstance(verdict, Rewrite):
            rewriter = file._settings.rewriter
            if any(not edit.insert for edit in verdict.edits) and not rewriter.unchanged_on_disk(
                file.document
            ):
                raise CellFailed(
                    f"{self.location_text}: cell {self.name!r}: its output no longer matches "
                    f"what the file says, and update mode cannot rewrite it: "
                    f"{file.display_path} changed on disk during the run\n"
                    "  fix: run with --runbook-update again once the file is saved"
                )
            for edit in verdict.edits:
                if edit.outputs is not None and self.cell.notebook_index is not None:
                    rewriter.notebook_outputs(
                        file.document,
                        self.cell.notebook_index,
                        edit.outputs,
                        run.substitutions(run.cell_cwd(self.cell), None),
                    )
                elif edit.insert:
                    rewriter.insert_after(file.document, edit.block, edit.lines)
                else:
                    rewriter.replace(file.document, edit.start, edit.end, edit.lines, edit.block)
        if not self.cell.options.background:
            # A passing cell can still deserve a word: it ran in a fresh shell (state lost),
            # or it turned on `set -e`, which was switched off again.
            for note in dict.fromkeys(o.result.note for o in outcomes if o.result.note):
                warnings.warn_explicit(
                    RunbookWarning(f"cell {self.name!r}: {note}"),
                    category=RunbookWarning,
                    filename=file.display_path,
                    lineno=self.cell.line + 1,
                )
        following = self.next_item
        if (
            isinstance(following, RunbookItem)
            and following.parent is file
            and following.may_start_early()
        ):
            run.prefetch(following.cell)

    def _stream_writer(self, name: Optional[str] = None) -> Optional[Callable[[str], None]]:
        if self.config.getoption("capture") != "no":
            return None
        prefix = f"[{name or self.name}] "
        state = {"at_line_start": True}

        def write(chunk: str) -> None:
            out = []
            for piece in chunk.splitlines(keepends=True):
                if state["at_line_start"]:
                    out.append(prefix)
                out.append(piece)
                state["at_line_start"] = piece.endswith("\n")
            sys.stdout.write("".join(out))
            sys.stdout.flush()

        return write

    def _repr_failure_py(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> Any:
        """Setup errors (a prerequisite cell failed) read like call failures, no traceback."""
        if isinstance(excinfo.value, (CellFailed, RunbookError)):
            return self.repr_failure(excinfo)
        return super()._repr_failure_py(excinfo, style)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CellFailed):
            return str(excinfo.value.args[0])
        if isinstance(excinfo.value, RunbookError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


def _register_marker(config: pytest.Config, tag: str) -> None:
    settings = config.stash[SETTINGS_KEY]
    if tag not in settings.warned_markers:
        settings.warned_markers.append(tag)
        config.addinivalue_line("markers", f"{tag}: runbook tag (Runme tag/category)")


def order_items(config: pytest.Config, items: List[pytest.Item]) -> None:
    """``teardown=true`` cells move to the end of their file, so they run after the rest."""
    result: List[pytest.Item] = []
    position = 0
    while position < len(items):
        item = items[position]
        if not isinstance(item, RunbookItem):
            result.append(item)
            position += 1
            continue
        end = position
        while (
            end < len(items)
            and isinstance(items[end], RunbookItem)
            and items[end].parent is item.parent
        ):
            end += 1
        group = items[position:end]
        result += [i for i in group if not i.cell.options.teardown]  # type: ignore[attr-defined]
        result += [i for i in group if i.cell.options.teardown]  # type: ignore[attr-defined]
        position = end
    items[:] = result


def _doctest_flags(names: Tuple[str, ...], document: Document) -> int:
    if not any(cell.kind == "pycon" for cell in document.cells):
        return 0  # and doctest stays unimported
    from .doctests import optionflags_from_ini

    try:
        return optionflags_from_ini(names)
    except ValueError as error:
        # A collection error of the file, not a UsageError: raised inside collect(), pytest
        # shows a UsageError as a plugin traceback.
        raise pytest.Collector.CollectError(
            f"ini {error}\n  fix: correct the name in the ini file's doctest_optionflags"
        ) from None
