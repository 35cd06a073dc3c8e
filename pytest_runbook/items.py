"""pytest nodes: a Markdown file owns one shell session; each cell is an item run in it.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, NoReturn, Optional, Set, Tuple

import pytest

from . import report
from .document import Cell, Command, Document, ExitSpec, read
from .errors import RunbookError
from .matching import Mismatch, check
from .model import Result
from .rewrite import expected_for
from .session import Session, Submitted
from .settings import SETTINGS_KEY, Settings
from .transcript import Transcript

# Runme exports a named cell's output under its name when the name looks like an env var.
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_][A-Z0-9_]*[A-Z][A-Z0-9_]*$")
# Runme keeps about 128 KiB of an output; Linux refuses any single environment string over
# 128 KiB (E2BIG, every later command would fail), so keep the tail well under that, in bytes.
_LAST_OUTPUT_CAP = 100_000
_ERREXIT = {"bash": "set -e -o pipefail", "zsh": "set -e -o pipefail", "ksh": "set -e -o pipefail"}
_POSIX_SHELLS = {"sh", "dash", "ash", "busybox"}
_EXPORT_START = re.compile(r"\s*export\s+")
# One word of an export: NAME, or NAME=VALUE with a literal value (no $, `, \: a placeholder).
_EXPORT_WORD = re.compile(
    r"""([A-Za-z_][A-Za-z0-9_]*)(=(?:"[^"$`\\]*"|'[^']*'|[^\s"'$`\\;&|]*))?(?=[\s;&|]|$)"""
)


_PIPE = re.compile(r"(?<![|>])\|(?![|&])")  # a pipe, not `||`, `|&` or `>|`
_MAY_SKIP = frozenset({"skip", "skipif", "xfail"})  # marks that may keep a cell from running


class RunbookWarning(pytest.PytestWarning):
    """Valid but suspicious Markdown: an unknown attribute, an unclosed fence, ..."""


class CellFailed(Exception):
    """A cell did not do what its document says; ``args[0]`` is the whole report."""


@dataclass
class _Outcome:
    command: Optional[Command]
    result: Result


@dataclass
class _EarlyShell:
    """A file's shell, started while the file before it still runs (see start_shell_early)."""

    session: Session
    cwd: str
    env: Dict[str, str]


# By file node id; at most two: the file about to run its first cell and the one after it.
_EARLY_KEY = pytest.StashKey[Dict[str, _EarlyShell]]()


def _close_early_shells(config: pytest.Config, keep: Tuple[str, ...] = ()) -> None:
    early = config.stash.get(_EARLY_KEY, {})
    for nodeid in [n for n in early if n not in keep]:
        early.pop(nodeid).session.close()  # its file never ran a cell


class RunbookFile(pytest.Module):
    """One Markdown runbook: parses it, then lends its single session to its items in order.

    A ``Module`` (with an empty module object) so that module-scoped fixtures named in the
    frontmatter live exactly as long as the file's session.
    """

    document: Document
    cell_items: Dict[int, RunbookItem]

    def _getobj(self) -> types.ModuleType:
        return types.ModuleType(self.path.stem)

    def collect(self) -> Iterable[pytest.Item]:
        settings = self.config.stash[SETTINGS_KEY]
        try:
            self.document = read(str(self.path), settings.defaults)
        except RunbookError as error:
            error.path = self.display_path
            raise self.CollectError(str(error)) from None
        for notice in self.document.notices:
            warnings.warn_explicit(
                RunbookWarning(notice.message),
                category=RunbookWarning,
                filename=self.display_path,
                lineno=notice.line + 1,
            )
        if not self.document.options.enabled:
            return []
        self._check_shell()
        self.cell_items = {
            cell.index: RunbookItem.from_parent(self, name=cell.name, cell=cell)
            for cell in self.document.cells
        }
        return list(self.cell_items.values())

    def _check_shell(self) -> None:
        """A session shell that is not installed is an error of the file, not a skip.

        A missing ``interpreter=`` skips its cell (a reader may lack node); a missing
        frontmatter ``shell:`` would skip every shell cell of the file, and a typo there must
        not pass as a green run. Only shells that some cell actually runs through count.
        """
        document = self.document
        shell = document.options.shell
        if not any(c.kind == "script" and c.interpreter == shell for c in document.cells):
            return
        program = shell[0]
        if os.sep in program:
            found = os.access(program, os.X_OK)
        else:
            found = shutil.which(program, path=self._path_env()) is not None
        if found:
            return
        line = document.options.shell_line
        where = f"{self.display_path}:{line + 1}" if line is not None else self.display_path
        origin = (
            "frontmatter shell" if line is not None else "runbook_shell (ini or --runbook-shell)"
        )
        raise self.CollectError(
            f"{where}: {origin} {program!r} is not installed (not found on PATH); the file's "
            f"shell cells would run through it\n  fix: install {program}, correct the name, "
            "or remove it to run the shell cells in bash"
        )

    @property
    def display_path(self) -> str:
        return self.nodeid.split("::", 1)[0] or self.path.name

    # -- the session, shared by the items -------------------------------------------------

    def setup(self) -> None:
        self._settings: Settings = self.config.stash[SETTINGS_KEY]
        self._shell: Optional[Session] = None
        self._workdir: Optional[str] = None
        self._own_tmp: Optional[str] = None
        self._ran: Set[int] = set()
        self._settled = 0  # cells before this index are never prerequisites again
        self._exports: Dict[str, str] = {}
        self._physical_paths: Dict[str, str] = {}
        self._prefetched: Optional[Tuple[int, Submitted]] = None
        self._background_names: List[str] = []  # in start order, as the session's logs
        self.failed_cell: Optional[str] = None
        self._excluded: Optional[Set[int]] = None
        self.fixtures_exported = False
        self.transcript = Transcript(self.document) if self._settings.transcript_dir else None

    def teardown(self) -> None:
        try:
            self._run_pending_teardown_cells()
        finally:
            if self._shell is not None:
                self._shell.close()
                if self.transcript is not None:
                    self.transcript.background_log = self._shell.background_log()
                self._shell = None
            if self._own_tmp:
                shutil.rmtree(self._own_tmp, ignore_errors=True)
            if self.transcript is not None and self._settings.transcript_dir is not None:
                self.transcript.write(self._settings.transcript_dir / self.display_path)

    def _configured_dir(self) -> Optional[str]:
        """The file's own directory or its frontmatter ``cwd``; None for ``cwd: tmp``."""
        raw = self.document.options.cwd
        if raw == "tmp":
            return None
        base = str(self.path.parent)
        return os.path.normpath(os.path.join(base, os.path.expanduser(raw))) if raw else base

    def workdir(self) -> str:
        """The file's working directory: the file's own, or frontmatter ``cwd`` (``tmp``)."""
        if self._workdir is None:
            path = self._configured_dir()
            if path is None:
                self._own_tmp = tempfile.mkdtemp(prefix="runbook-cwd-")
                path = self._own_tmp
            elif not os.path.isdir(path):
                raise CellFailed(
                    f"{self.display_path}: frontmatter cwd {self.document.options.cwd!r} is "
                    f"not a directory ({path}); fix: point cwd at an existing directory, or "
                    "use cwd: tmp"
                )
            self._workdir = path
        return self._workdir

    def _given_env(self) -> Dict[str, str]:
        """What the run gives the file's shell: our environment, frontmatter, --runbook-env."""
        settings = self.config.stash[SETTINGS_KEY]
        return {**os.environ, **self.document.options.env, **settings.env}

    def _session_env(self) -> Dict[str, str]:
        env = self._given_env()
        # pytest's own per-phase marker would differ between an early start and now.
        env.pop("PYTEST_CURRENT_TEST", None)
        return env

    def _session_shell(self) -> Tuple[str, ...]:
        shell = self.document.options.shell
        return shell if Path(shell[0]).name == "bash" else ("bash",)

    def shell_session(self) -> Session:
        if self._shell is None:
            cwd, env = self.workdir(), self._session_env()
            early = self.config.stash.get(_EARLY_KEY, {}).pop(self.nodeid, None)
            if early is not None:
                if early.cwd == cwd and early.env == env:
                    self._shell = early.session
                    return early.session
                early.session.close()  # a fixture changed the environment since: start afresh
            self._shell = Session(
                cwd=cwd, shell=self._session_shell(), env=env, columns=self._settings.columns
            )
        return self._shell

    def start_shell_early(self, current: RunbookFile) -> None:
        """Start this file's shell while the previous file's last cell runs.

        The shell's own start-up (about 2 ms of bash) then overlaps pytest's work on the other
        core instead of delaying this file's first cell. Adopted by ``shell_session`` only if
        the directory and environment are still the same; otherwise it is closed unused.
        """
        config = self.config
        if _EARLY_KEY not in config.stash:
            config.stash[_EARLY_KEY] = {}
            config.add_cleanup(lambda: _close_early_shells(config))  # -x, interrupted, ...
        early = config.stash[_EARLY_KEY]
        _close_early_shells(config, keep=(self.nodeid, current.nodeid))
        if self.nodeid in early or not self.document.cells:
            return
        cwd = self._configured_dir()
        if cwd is None or not os.path.isdir(cwd):
            return  # `cwd: tmp` is made (and owned) by the file's own setup; errors are its too
        env = self._session_env()
        settings = self.config.stash[SETTINGS_KEY]
        try:
            session = Session(
                cwd=cwd, shell=self._session_shell(), env=env, columns=settings.columns
            )
            session.prestart()
        except (OSError, ValueError):
            return  # only a head start: the file's first cell reports any problem itself
        early[self.nodeid] = _EarlyShell(session, cwd, env)

    # -- which cells run as prerequisites -----------------------------------------------

    def excluded(self) -> Set[int]:
        """Cells never run, not even as setup: skipped by attribute, --deselect or -m."""
        if self._excluded is None:
            self._excluded = {c.index for c in self.document.cells if never_runs(self, c)}
        return self._excluded

    def prerequisites(self, cell: Cell) -> List[Cell]:
        excluded = self.excluded()
        cells = self.document.cells

        def done(c: Cell) -> bool:  # ran, excluded or teardown: stays so for the whole run
            return c.index in self._ran or c.index in excluded or c.options.teardown

        # Skip the settled prefix: rescanning it made each item O(cells before it), 1,000
        # cells in one file O(n^2) (about 40 ms).
        start = self._settled
        while start < cell.index and done(cells[start]):
            start += 1
        self._settled = start
        return [c for c in cells[start : cell.index] if not done(c)]

    def _run_pending_teardown_cells(self) -> None:
        """``teardown=true`` cells run at the end of the file even when they were not selected."""
        if self._shell is None:
            return
        failures: List[str] = []
        for cell in self.document.cells:
            if cell.options.teardown and cell.index not in self._ran:
                if cell.index in self.excluded():
                    continue
                try:
                    outcomes = self.run_cell(cell, None)
                except (CellFailed, pytest.skip.Exception):
                    continue
                last = outcomes[-1] if outcomes else None
                if last is None or cell.options.xfail is not None:
                    continue
                exit_spec = last.command.exit if last.command else cell.options.exit
                if not _finished_ok(last.result, exit_spec):
                    failures.append(
                        report.failure(
                            location=f"{self.display_path}:{cell.line + 1}",
                            headline=f"teardown cell {cell.name!r}, run at the end of the file, "
                            f"failed: {_why(last.result, exit_spec, cell.options.timeout)}",
                            cell=cell,
                            result=last.result,
                            expected_exit=str(exit_spec),
                            show_output=True,
                            notes=[last.result.note],
                        )
                    )
        if failures:  # an error at teardown of the file's last item, as a failing finalizer is
            raise CellFailed("\n\n".join(failures))

    # -- running a cell ---------------------------------------------------------------

    def cell_cwd(self, cell: Cell) -> Optional[str]:
        if not cell.options.cwd:
            return None
        path = os.path.normpath(os.path.join(self.workdir(), os.path.expanduser(cell.options.cwd)))
        if not os.path.isdir(path):
            raise CellFailed(
                f"{self.display_path}:{cell.line + 1}: cell {cell.name!r}: cwd "
                f"{cell.options.cwd!r} is not a directory ({path}); fix: create it in an "
                f"earlier cell or correct the path"
            )
        return path

    def run_cell(self, cell: Cell, on_output: Optional[Callable[[str], None]]) -> List[_Outcome]:
        """Run ``cell`` in the session; console cells stop at the first command that fails."""
        try:
            return self._run_cell(cell, on_output)
        except OSError as error:  # the shell could not start, a cell file could not be written
            shell = " ".join(self._session_shell())
            raise CellFailed(
                f"{self.display_path}:{cell.line + 1}: cell {cell.name!r} could not run: "
                f"{error}\n  fix: check that `{shell}` starts on its own in a terminal "
                "(frontmatter shell, --runbook-shell; a login shell runs your profile) and "
                "that the temporary directory is writable"
            ) from None

    def _run_cell(self, cell: Cell, on_output: Optional[Callable[[str], None]]) -> List[_Outcome]:
        self._ran.add(cell.index)
        session = self.shell_session()
        cwd = self.cell_cwd(cell)
        interpreter = self._interpreter(cell)
        started = time.monotonic()
        outcomes: List[_Outcome] = []
        ticket: Optional[Submitted] = None
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            if prefetched[0] == cell.index:
                ticket = prefetched[1]
            else:  # its item was skipped by something unforeseen; it ran, never run it again
                self._ran.add(prefetched[0])
        if cell.kind == "console":
            for command in cell.commands:
                # stdin= and answers apply to each command (answers wait for their prompts)
                ticket = self._submit(session, cell, command.source, cwd, None, on_output)
                result = self._located(session.collect(ticket), command.line)
                outcomes.append(_Outcome(command, result))
                self._remember(cell, result)
                if not _finished_ok(result, command.exit) and not _status_recordable(
                    self._settings.update, cell, command, result
                ):
                    break
                if not self._settings.update and _output_mismatch(
                    self, cell, command.expected, result, cwd
                ):
                    break
        elif cell.options.background:
            self._background_names.append(cell.name)
            result = session.start_background(
                self._source(cell, interpreter),
                timeout=cell.options.timeout,
                ready=cell.options.ready,
                cwd=cwd,
                interpreter=interpreter,
                exports=self._take_exports(),
            )
            outcomes.append(_Outcome(None, result))
        else:
            if ticket is None:
                source = self._source(cell, interpreter)
                ticket = self._submit(session, cell, source, cwd, interpreter, on_output)
            result = self._located(session.collect(ticket), cell.source_line)
            outcomes.append(_Outcome(None, result))
            self._remember(cell, result)
        if self.transcript is not None:
            self.transcript.record(cell, [o.result for o in outcomes], time.monotonic() - started)
        return outcomes

    def prefetch(self, item: RunbookItem) -> None:
        """Start the next cell now, so the shell works while pytest reports this one.

        Only when nothing can come between: the next item is this file's next cell to run,
        nothing can skip it or need its setup first, and it reads no input. Every other case
        runs the cell when its item runs, as before.
        """
        cell = item.cell
        options = cell.options
        if (
            self._prefetched is not None
            or self._shell is None
            or self.failed_cell is not None
            or self._settings.stream
            or cell.kind == "console"
            or options.background
            or options.stdin is not None
            or options.answers
            or options.teardown
            or options.exclude_from_run_all
            or hasattr(item, "_request")  # fixtures are set up in the item's own setup
            or any(mark.name in _MAY_SKIP for mark in item.iter_markers())
            or self.missing_interpreter(cell) is not None
            or self.prerequisites(cell)
        ):
            return
        try:
            cwd = self.cell_cwd(cell)
        except CellFailed:
            return
        interpreter = cell.interpreter if cell.kind == "script" else None
        source = self._source(cell, interpreter)
        ticket = self._submit(self._shell, cell, source, cwd, interpreter, None)
        self._prefetched = (cell.index, ticket)

    def _submit(
        self,
        session: Session,
        cell: Cell,
        source: str,
        cwd: Optional[str],
        interpreter: Optional[Tuple[str, ...]],
        on_output: Optional[Callable[[str], None]],
    ) -> Submitted:
        """Send one piece of a cell to the shell with the cell's options and pending exports."""
        return session.submit(
            source,
            timeout=cell.options.timeout,
            cwd=cwd,
            interpreter=interpreter,
            stdin=cell.options.stdin,
            answers=[(a.expect, a.send) for a in cell.options.answers],
            exports=self._take_exports(),
            on_output=on_output,
        )

    def _located(self, result: Result, first_line: int) -> Result:
        """Error messages name the private cell file; point them at the Markdown instead.

        ``bash: /dev/shm/.../cell.sh: line 2: ...`` becomes ``bash: doc.md:5: ...`` and
        Python's ``File ".../cell.py", line 2`` becomes ``File "doc.md", line 5``.
        """
        cell_dir = self.shell_session().cell_dir
        if cell_dir not in result.output:
            return result
        display = self.display_path

        def markdown_line(number: str) -> int:
            return first_line + int(number)

        pattern = re.compile(re.escape(cell_dir) + r'/cell[\w.]*(: line |", line |:)(\d+)')

        def relocate(match: re.Match[str]) -> str:
            line = markdown_line(match.group(2))
            if match.group(1) == '", line ':
                return f'{display}", line {line}'
            return f"{display}:{line}"

        output = pattern.sub(relocate, result.output)
        output = output.replace(cell_dir + "/", "")
        return dataclasses.replace(result, output=output)

    def background_tail(self, lines: int = 12) -> str:
        """The end of what the file's background cells printed, for failure reports: a
        server's log often says why a later cell failed. Never part of a cell's output."""
        shell = getattr(self, "_shell", None)
        if shell is None:
            return ""
        names = self._background_names
        parts = []
        for number, log in enumerate(shell.background_logs()):
            if log.strip():
                name = names[number] if number < len(names) else f"#{number + 1}"
                parts.append(f"background log of cell {name!r}:\n" + report.tail(log, lines))
        return "\n\n".join(parts)

    def _interpreter(self, cell: Cell) -> Optional[Tuple[str, ...]]:
        if cell.kind != "script" or not cell.interpreter:
            return None
        missing = self.missing_interpreter(cell)
        if missing is not None:
            _skip(missing)
        return cell.interpreter

    def missing_interpreter(self, cell: Cell) -> Optional[str]:
        """Why a script cell cannot run here (its interpreter is not installed), or None."""
        if cell.kind != "script" or not cell.interpreter:
            return None
        program = cell.interpreter[0]
        if os.sep in program:
            found = os.access(program, os.X_OK)
        else:
            found = shutil.which(program, path=self._path_env()) is not None
        if found:
            return None
        return f"cell {cell.name!r} needs {program!r}, which is not installed"

    def _path_env(self) -> str:
        return self._given_env().get("PATH", os.defpath)

    def _source(self, cell: Cell, interpreter: Optional[Tuple[str, ...]]) -> str:
        source = cell.source
        if cell.options.prompt_env == "yes" and cell.kind == "shell":
            source = self._keep_given_values(source)
        if interpreter:
            shell = Path(interpreter[0]).name
            # Runme runs shell cells under errexit, whatever the shell; on the first line, so
            # the shell's "line N" messages still count the cell's own lines.
            if shell in _ERREXIT:
                source = f"{_ERREXIT[shell]}; {source}"
            elif shell in _POSIX_SHELLS:
                source = f"set -e; {source}"
        return source

    def _keep_given_values(self, source: str) -> str:
        """promptEnv: a placeholder export keeps a value the run already provides (Runme)."""
        given = self._given_env()
        return "\n".join(_keep_given(line, given) for line in source.split("\n"))

    def _remember(self, cell: Cell, result: Result) -> None:
        """Runme's session variables: ``$__`` and an upper-case cell name hold the output."""
        if result.status is None:
            return
        tail = result.output[-_LAST_OUTPUT_CAP:]
        data = tail.encode("utf-8", "surrogateescape")
        if len(data) > _LAST_OUTPUT_CAP:  # cut, and no half character at the cut
            data = data[-_LAST_OUTPUT_CAP:].lstrip(bytes(range(0x80, 0xC0)))
        # surrogateescape: the exact bytes, invalid UTF-8 included (only NUL cannot be kept)
        value = data.decode("utf-8", "surrogateescape").rstrip("\n").replace("\0", "")
        self._exports["__"] = value
        if _ENV_NAME.match(cell.name):
            self._exports[cell.name] = value

    def add_export(self, name: str, value: str) -> None:
        self._exports[name] = value

    def _take_exports(self) -> Dict[str, str]:
        exports, self._exports = self._exports, {}
        return exports

    def _physical(self, path: str) -> str:
        """``path`` with symlinks resolved, once per path (it is asked for every command)."""
        physical = self._physical_paths.get(path)
        if physical is None:
            physical = self._physical_paths[path] = os.path.realpath(path)
        return physical

    def substitutions(self, cwd: Optional[str]) -> Dict[str, str]:
        subs = {
            # The shell starts in the physical directory (`cd -P`): `pwd` and getcwd() print
            # it without symlinks (macOS's /var is /private/var), so [CWD] stands for that.
            "[CWD]": self._physical(cwd or self.workdir()),
            "[TMP]": self.shell_session().tmpdir,
            "[ROOT]": str(self.config.rootpath),
        }
        subs.update(self.document.options.substitutions)
        return subs


def _skip(reason: str) -> NoReturn:
    """Skip with the item's own location (the Markdown line), as a skip mark reports it;
    plain pytest.skip() would name this file's line in ``-rs``."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


def _finished_ok(result: Result, exit_spec: ExitSpec) -> bool:
    return (
        result.status is not None
        and not result.timed_out
        and not result.waiting_for_input
        and not result.incomplete
        # `exit N` ends the shell, and N is the cell's status, as in Runme's script; the
        # next cell gets a fresh shell (with a note).
        and not result.replaced
        and exit_spec.accepts(result.status)
    )


def _keep_given(line: str, given: Mapping[str, str]) -> str:
    """``export A=x B=y; ...`` with ``A=x`` turned into ``A`` when the run gives A a value.

    Only the words of the line's leading ``export``; a value that is computed (``$``,
    backquotes) is not a placeholder and stays.
    """
    start = _EXPORT_START.match(line)
    if start is None:
        return line
    out = [line[: start.end()]]
    pos = start.end()
    while True:
        word = _EXPORT_WORD.match(line, pos)
        if word is None or word.end() == pos:
            break
        given_value = word.group(2) is not None and word.group(1) in given
        out.append(word.group(1) if given_value else word.group(0))  # keeps the run's value
        pos = word.end()
        gap = pos
        while gap < len(line) and line[gap] in " \t":
            gap += 1
        out.append(line[pos:gap])
        if gap == pos:
            break
        pos = gap
    out.append(line[pos:])
    return "".join(out)


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_recordable(update: Optional[str], cell: Cell, command: Command, result: Result) -> bool:
    """Update mode may write this console command's new status as ``[N]`` (and then go on
    with the block): never for xfail cells, a cell's own ``exit=``, or a block it cannot
    rewrite. Anything else that did not finish as declared stops the block."""
    return (
        update is not None
        and cell.options.xfail is None
        and cell.block is not None
        and (command.status_line is not None or cell.options.exit == ExitSpec())
        and _finished_but_for_status(result, command.exit)
    )


def _finished_but_for_status(result: Result, exit_spec: ExitSpec) -> bool:
    """The command ran to its end in the same shell, with a status the document does not
    expect: update mode can record that status."""
    return (
        result.status is not None
        and not exit_spec.accepts(result.status)
        and not result.timed_out
        and not result.waiting_for_input
        and not result.incomplete
        and not result.replaced  # `exit N` counts: N is the command's status
    )


def _output_mismatch(
    file: RunbookFile, cell: Cell, expected: Tuple[str, ...], result: Result, cwd: Optional[str]
) -> Optional[Mismatch]:
    match, ansi_keep = ("exact", False)
    if cell.expected is not None:
        match, ansi_keep = cell.expected.match, cell.expected.ansi_keep
    return check(
        expected,
        result.output,
        mode=match,
        substitutions=file.substitutions(cwd),
        ansi_keep=ansi_keep,
    )


def never_runs(file: RunbookFile, cell: Cell) -> bool:
    """SPEC 5: cells left out by attribute, ``--deselect`` or ``-m`` never run as setup."""
    options = cell.options
    if options.skip is not None or file.document.options.skip is not None:
        return True
    if options.exclude_from_run_all:
        return True
    if options.platforms and not _on_platform(options.platforms):
        return True
    if any(shutil.which(c) is None for c in options.requires):
        return True
    if file.missing_interpreter(cell) is not None:
        return True
    item = getattr(file, "cell_items", {}).get(cell.index)
    if item is not None and _skipped_by_marks(item):  # e.g. a skip a conftest hook added
        return True
    nodeid = f"{file.nodeid}::{cell.name}"
    for prefix in file.config.getoption("deselect") or []:
        if nodeid.startswith(str(prefix)):
            return True
    keyword = file.config.getoption("keyword") or ""
    if keyword and item is not None and _excluded_by_keyword(item, keyword):
        return True
    markexpr = file.config.getoption("markexpr") or ""
    if not markexpr:
        return False
    names = set(options.tags) | {"runbook"}
    if item is not None:  # also xfail, usefixtures and marks that conftest hooks added
        names |= {mark.name for mark in item.iter_markers()}
    return not _marks_match(markexpr, names)


def _skipped_by_marks(item: pytest.Item) -> bool:
    """Whether pytest will skip ``item`` for a skip/skipif mark (conditions evaluated)."""
    try:
        from _pytest.skipping import evaluate_skip_marks

        return evaluate_skip_marks(item) is not None
    except Exception:  # a private API, or a condition that fails: pytest will report it
        return any(True for _ in item.iter_markers("skip"))


def _marks_match(markexpr: str, names: Set[str]) -> bool:
    try:
        from _pytest.mark.expression import Expression

        def matcher(name: str, /, **kwargs: Any) -> bool:
            return name in names

        return bool(Expression.compile(markexpr).evaluate(matcher))
    except Exception:  # a private API: if it moves, err on the side of running the cell
        return True


def _named_by_keyword(item: pytest.Item, keyword: str) -> bool:
    """Whether ``-k keyword`` selects ``item`` because of its own name (``-k set-tokens``),
    not merely lets it through (``-k "not network"``): Runme runs an ``excludeFromRunAll``
    cell only when it is asked for by name."""
    try:
        from _pytest.mark import KeywordMatcher
        from _pytest.mark.expression import Expression

        expression = Expression.compile(keyword)
        matcher = KeywordMatcher.from_item(item)
        without_name = KeywordMatcher(set(matcher._names) - {item.name})
        return bool(expression.evaluate(matcher)) and not expression.evaluate(without_name)
    except Exception:  # a private API: if it moves, -k counts as explicit, as before
        return True


def _excluded_by_keyword(item: pytest.Item, keyword: str) -> bool:
    """Whether ``-k`` leaves ``item`` out because of its own name (``-k "not destroy"``),
    rather than merely not selecting it (``-k target``, whose earlier cells run as setup).
    A cell left out by name never runs, as one left out with --deselect."""
    try:
        from _pytest.mark import KeywordMatcher
        from _pytest.mark.expression import Expression

        expression = Expression.compile(keyword)
        matcher = KeywordMatcher.from_item(item)
        without_name = KeywordMatcher(set(matcher._names) - {item.name})
        if not expression.evaluate(matcher) and expression.evaluate(without_name):
            return True
    except Exception:  # a private API: if it moves, the words below still count
        pass
    # `-k "final and not danger"` selects neither by the rule above, but names danger under
    # a `not`: a cell named there is one the user wants left alone.
    return any(word in item.name.lower() for word in _negated_words(keyword))


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


def _on_platform(platforms: Tuple[str, ...]) -> bool:
    return any(sys.platform.startswith(p) for p in platforms)


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
        missing = [n for n in self.parent.document.options.fixtures if n not in known]
        if missing:
            raise CellFailed(
                f"{self.parent.display_path}: frontmatter fixtures: "
                + ", ".join(f"fixture {n!r} not found" for n in missing)
                + "\nfix: define it in a conftest.py or plugin ('pytest --fixtures' lists them)"
            )

    def _export_fixture_values(self) -> None:
        """String and path values become session variables, once per file (TMP_PATH, ...)."""
        file = self.parent
        if file.fixtures_exported or not hasattr(self, "_request"):
            return
        file.fixtures_exported = True
        for name in file.document.options.fixtures:
            value = self.funcargs.get(name)
            if isinstance(value, (str, os.PathLike, int, float)) and not isinstance(value, bool):
                file.add_export(
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
            if shutil.which(command) is None:
                self.add_marker(pytest.mark.skip(reason=f"requires {command!r}, not found on PATH"))
        if options.platforms and not _on_platform(options.platforms):
            wanted = ", ".join(options.platforms)
            self.add_marker(pytest.mark.skip(reason=f"runs on {wanted} only, not {sys.platform}"))

    def reportinfo(self) -> Tuple[Path, int, str]:
        return self.path, self.cell.line, f"[runbook] {self.name}"

    @property
    def location_text(self) -> str:
        return f"{self.parent.display_path}:{self.cell.line + 1}"

    def setup(self) -> None:
        file = self.parent
        cell = self.cell
        following = self.next_item
        if (
            isinstance(following, RunbookItem)
            and following.parent is not file
            and not any(mark.name in _MAY_SKIP for mark in following.iter_markers())
        ):
            following.parent.start_shell_early(file)
        if hasattr(self, "_request"):
            self._check_fixtures_exist()
            self._request._fillfixtures()
            self._export_fixture_values()
        if cell.options.exclude_from_run_all and not self._selected_explicitly():
            _skip(
                f"excludeFromRunAll: select it explicitly to run it "
                f"({file.display_path}::{self.name} or -k {self.name})"
            )
        if file.failed_cell is not None and not cell.options.teardown:
            _skip(f"earlier cell {file.failed_cell!r} failed (on-failure: stop)")
        missing = file.missing_interpreter(cell)
        if missing is not None:  # before its prerequisites run for nothing
            _skip(missing)
        if file.failed_cell is not None:
            return  # a teardown cell after on-failure stop: the skipped cells stay unrun
        for earlier in file.prerequisites(cell):
            self._run_prerequisite(earlier)

    def _selected_explicitly(self) -> bool:
        keyword = self.config.getoption("keyword")
        if keyword and _named_by_keyword(self, keyword):
            return True
        settings = self.config.stash[SETTINGS_KEY]
        invocation = self.config.invocation_params.dir
        for arg in settings.explicit_ids:
            path, _, rest = arg.partition("::")
            if rest == self.name and (invocation / path).resolve() == self.path.resolve():
                return True
        return False

    def _run_prerequisite(self, cell: Cell) -> None:
        file = self.parent
        stream = self._stream_writer(cell.name) if file._settings.stream else None
        outcomes = file.run_cell(cell, stream)
        last = outcomes[-1] if outcomes else None
        if last is None:
            return
        exit_spec = last.command.exit if last.command else cell.options.exit
        if cell.options.xfail is not None or _finished_ok(last.result, exit_spec):
            return
        if file.document.options.on_failure == "stop":
            file.failed_cell = cell.name
        raise CellFailed(
            report.failure(
                location=f"{file.display_path}:{cell.line + 1}",
                headline=(
                    f"earlier cell {cell.name!r}, run as setup for {self.name!r}, failed: "
                    f"{_why(last.result, exit_spec, cell.options.timeout)}"
                ),
                cell=cell,
                result=last.result,
                expected_exit=str(exit_spec),
                show_output=True,
                notes=[last.result.note],
            )
        )

    def runtest(self) -> None:
        file = self.parent
        settings = file._settings
        on_output = self._stream_writer() if settings.stream else None
        outcomes = file.run_cell(self.cell, on_output)
        try:
            self._judge(outcomes)
        except CellFailed:
            if self.cell.options.xfail is None and (file.document.options.on_failure == "stop"):
                file.failed_cell = self.name
            raise
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
        if isinstance(self.next_item, RunbookItem) and self.next_item.parent is file:
            file.prefetch(self.next_item)

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

    # -- verdicts -----------------------------------------------------------------------

    def _judge(self, outcomes: List[_Outcome]) -> None:
        cell = self.cell
        file = self.parent
        if cell.kind == "console":
            # Update mode rewrites a console block only when every command in it passed.
            edits = []
            for outcome in outcomes:
                assert outcome.command is not None
                edits.append(self._judge_command(outcome.command, outcome.result))
            for edit in edits:
                if edit is not None and cell.block is not None:
                    file._settings.rewriter.replace(file.document, *edit, cell.block)
            return
        result = outcomes[0].result
        cwd = file.cell_cwd(cell)
        if cell.options.background:
            if result.status is None or result.timed_out or result.status != 0:
                why = _why(result, cell.options.exit, cell.options.timeout)
                if cell.options.ready and result.timed_out:
                    why = (
                        f"printed nothing matching ready={cell.options.ready!r} "
                        f"within {cell.options.timeout:g} s"
                    )
                self._fail(
                    f"background cell did not come up: {why}",
                    result,
                    show_output=True,
                )
            return
        mismatch = None
        if cell.expected is not None:
            mismatch = _output_mismatch(file, cell, cell.expected.lines, result, cwd)
        if not _finished_ok(result, cell.options.exit):
            self._fail(
                _why(result, cell.options.exit, cell.options.timeout),
                result,
                diff=mismatch.diff() if mismatch else None,
                show_output=mismatch is None,
            )
        settings = file._settings
        if cell.expected is not None and mismatch is not None:
            block = cell.expected.block
            new_lines = None
            if self._updating:
                new_lines = expected_for(
                    result.output,
                    file.substitutions(cwd),
                    mode=cell.expected.match,
                    ansi_keep=cell.expected.ansi_keep,
                    previous=cell.expected.lines,
                )
            if new_lines is not None:
                settings.rewriter.replace(
                    file.document, block.content_start, block.content_end, new_lines, block
                )
                return
            expected_at = f"{file.display_path}:{block.fence_line + 1}"
            self._fail(
                f"output differs from the output block at {expected_at}: {mismatch.reason}"
                + (_UNWRITABLE_NOTE if self._updating else ""),
                result,
                diff=mismatch.diff(),
            )
        if cell.expected is None and self._updating == "new" and cell.block is not None:
            ansi_keep = str(cell.attributes.get("ansi", "")).lower() == "keep"
            new_lines = expected_for(result.output, file.substitutions(cwd), ansi_keep=ansi_keep)
            if new_lines:
                settings.rewriter.insert_after(file.document, cell.block, new_lines)

    @property
    def _updating(self) -> Optional[str]:
        """The update mode for this cell: never for xfail cells, whose failure is expected
        (rewriting their output would turn them into XPASS)."""
        return self.parent._settings.update if self.cell.options.xfail is None else None

    def _judge_command(
        self, command: Command, result: Result
    ) -> Optional[Tuple[int, int, List[str]]]:
        """Fail, or pass; in update mode a mismatch passes with the edit to queue returned."""
        file = self.parent
        location = f"{file.display_path}:{command.line + 1}"
        cwd = file.cell_cwd(self.cell)
        mismatch = _output_mismatch(file, self.cell, command.expected, result, cwd)
        # Update mode records a changed status as cram -i does: `[N]` under the output.
        new_status = _status_recordable(self._updating, self.cell, command, result)
        if not new_status and not _finished_ok(result, command.exit):
            self._fail(
                f"command {_first_line(command.source)!r} failed: "
                f"{_why(result, command.exit, self.cell.options.timeout)}",
                result,
                diff=mismatch.diff() if mismatch else None,
                show_output=mismatch is None,
                command=command,
                location=location,
            )
        if mismatch is None and not new_status:
            return None
        new_lines = None
        if mismatch is None:  # only the status changed: keep the output as written
            new_lines = list(command.expected)
        elif self._updating and self.cell.block is not None:
            new_lines = expected_for(
                result.output, file.substitutions(cwd), console=True, previous=command.expected
            )
        if new_lines is not None:
            if not new_status:
                return command.expected_start, command.expected_end, new_lines
            end = command.expected_end if command.status_line is None else command.status_line + 1
            if result.status:
                new_lines.append(f"[{result.status}]")
            return command.expected_start, end, new_lines
        assert mismatch is not None
        self._fail(
            f"command {_first_line(command.source)!r}: output differs: {mismatch.reason}"
            + (_UNWRITABLE_NOTE if self._updating else ""),
            result,
            diff=mismatch.diff(),
            command=command,
            location=location,
        )
        return None  # not reached: _fail raises

    def _fail(
        self,
        headline: str,
        result: Result,
        *,
        diff: Optional[str] = None,
        show_output: bool = False,
        command: Optional[Command] = None,
        location: Optional[str] = None,
    ) -> None:
        cell = self.cell
        exit_spec = command.exit if command else cell.options.exit
        notes = [result.note, self.parent.background_tail()]
        source = command.source if command is not None else cell.source
        if (
            cell.kind in ("shell", "console")
            and result.status
            and not exit_spec.accepts(result.status)
            and _PIPE.search(source)
        ):
            notes.append(
                "Shell cells run with `set -o pipefail`, as in Runme: a pipeline fails when "
                "any of its commands fails, not only the last one (`cmd | head` fails with "
                "141 when `cmd` is cut off)."
            )
        highlight = command.line if command is not None else None
        stopped = result.failed_command.strip()
        if command is None and stopped and result.status and not exit_spec.accepts(result.status):
            first = stopped.split("\n", 1)[0]
            source_lines = cell.source.split("\n")
            hits = [i for i, line in enumerate(source_lines) if first in line]
            where = ""
            if len(hits) == 1:
                highlight = cell.source_line + hits[0]
                where = f" ({self.parent.display_path}:{highlight + 1})"
                line = source_lines[hits[0]]
                if _PIPE.search(line[: line.index(first)]):
                    # bash names the last command of a pipeline; any of them may have failed.
                    stopped = line.strip()
            notes.insert(
                0,
                f"The cell stopped at `{_clip(stopped)}`{where}: errexit ends a cell "
                "at its first failing command.",
            )
        if command is not None:
            shown = _command_cell(cell, command)
            text = report.failure(
                location=location or self.location_text,
                headline=headline,
                cell=shown,
                result=result,
                expected_exit=str(exit_spec),
                diff=diff,
                show_output=show_output,
                highlight=command.line,
                notes=notes,
            )
        else:
            text = report.failure(
                location=location or self.location_text,
                headline=f"cell {cell.name!r} {headline}",
                cell=cell,
                result=result,
                expected_exit=str(exit_spec),
                diff=diff,
                show_output=show_output,
                highlight=highlight,
                notes=notes,
            )
        raise CellFailed(text)

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


_UNWRITABLE_NOTE = (
    " (update mode left it alone: no expected output written into the Markdown would match "
    "this output again)"
)


def _command_cell(cell: Cell, command: Command) -> Cell:
    """A stand-in cell holding just one console command, so its lines number right."""
    from dataclasses import replace

    lines = command.source.split("\n")
    shown = "\n".join(("$ " if i == 0 else "> ") + line for i, line in enumerate(lines))
    return replace(cell, source=shown, source_line=command.line)


def _first_line(source: str) -> str:
    return source.split("\n", 1)[0]


def _why(result: Result, exit_spec: ExitSpec, timeout: float) -> str:
    if result.timed_out:
        return f"timed out after {timeout:g} s (interrupted; the session carries on)"
    if result.waiting_for_input:
        return (
            "waiting for input that the document does not provide "
            '(give it with stdin="..." or an answers directive)'
        )
    if result.incomplete:
        return "the shell was left waiting for more input (unterminated quote, heredoc or brace)"
    if result.shell_exited is not None:
        return (
            f"the shell exited with status {result.shell_exited}; "
            "the next cell starts a fresh session without this file's earlier state"
        )
    if result.replaced:
        return (
            "replaced the shell (`exec`); "
            "the next cell starts a fresh session without this file's earlier state"
        )
    status = result.status
    if exit_spec.value == "0":
        return f"exit status {status}"
    return f"exit status {status}, expected {exit_spec}"


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
