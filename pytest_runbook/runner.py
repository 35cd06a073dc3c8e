"""FileRun: one Markdown file's cells, in order, on the file's sessions. No pytest here.

The runner owns what lives as long as a file: its sessions (one per key of the ``languages``
table, created when first needed or started early while the file before still runs), its
working directory and optional fresh HOME, Runme's exported variables (``$__``, named cells),
the transcript, and the memory of which cells ran. pytest's side (``items``) tells it which
cells the selection excludes and asks it to run a cell; ``verdict`` judges what came back.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Set, Tuple

from . import report
from .cell_source import prepared_source
from .languages import Language, SessionSpec, UnknownLanguage, language_of
from .model import Cell, Document, Result
from .sessions.base import Request, Session, Ticket
from .verdict import Failure, Outcome, Verdict, console_goes_on, judge, judge_setup

if TYPE_CHECKING:  # imported only with --runbook-transcript
    from .transcript import Transcript

# Runme exports a named cell's output under its name when the name looks like an env var.
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_][A-Z0-9_]*[A-Z][A-Z0-9_]*$")
# Runme keeps about 128 KiB of an output; Linux refuses any single environment string over
# 128 KiB (E2BIG, every later command would fail), so keep the tail well under that, in bytes.
_LAST_OUTPUT_CAP = 100_000
# A fresh HOME must be the only home: XDG variables would point tools back at the user's.
_HOME_VARIABLES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


class CellSkipped(Exception):
    """The cell cannot run here (its interpreter is missing); ``args[0]`` says why."""


class RunError(Exception):
    """The cell could not be run at all (bad cwd, the shell would not start); ``args[0]`` is
    the whole message, located at the Markdown line."""


@dataclass(frozen=True)
class RunSettings:
    """What the whole run tells each file (from the command line and ini file)."""

    env: Mapping[str, str]  # --runbook-env / ini runbook_env
    columns: int
    update: Optional[str]  # None, "changed", "new"
    root: str  # [ROOT]
    home: Optional[str] = None  # ini runbook_home; frontmatter ``home`` wins
    transcript: bool = False
    python: Tuple[str, ...] = ()  # ini runbook_python; frontmatter ``python`` wins
    doctest_flags: int = 0  # ini doctest_optionflags, for ```pycon examples


class FileRun:
    """Runs one document's cells on its sessions; lives from the file's first cell (or an
    early start) to its teardown (``close``)."""

    def __init__(
        self, document: Document, display_path: str, file_dir: str, settings: RunSettings
    ) -> None:
        self.document = document
        self.display_path = display_path
        self.settings = settings
        self._file_dir = file_dir
        self._sessions: Dict[str, Session] = {}
        self._session_env: Optional[Dict[str, str]] = None  # what running sessions got
        self._checked_env = False  # adopted sessions were checked against the env of now
        self._workdir: Optional[str] = None
        self._own_dirs: List[str] = []  # cwd: tmp, home: tmp; removed by close()
        self._home: Optional[str] = None
        self._ran: Set[int] = set()
        self._settled = 0  # cells before this index are never prerequisites again
        self._exports: Dict[str, str] = {}
        self._physical_paths: Dict[str, str] = {}
        self._prefetched: Optional[Tuple[int, Session, Ticket]] = None
        self._background_names: List[str] = []  # in start order, as the session's logs
        # (0-based line, words) told at the file's end: a background job that exited non-zero.
        self.closing_notes: List[Tuple[int, str]] = []
        self._shell_moved = False  # a shell cell ran since Python last took the shell's state
        self.excluded: Dict[int, Optional[str]] = {}  # never run as setup; str: cannot tell why
        self.stopped_by: Optional[str] = None  # on-failure stop: the cell that failed
        self.transcript: Optional[Transcript] = None
        if settings.transcript:
            from .transcript import Transcript

            self.transcript = Transcript(document)
        self.closed = False

    # -- the file's directory, environment and sessions -------------------------------------

    def configured_dir(self) -> Optional[str]:
        """The file's own directory or its frontmatter ``cwd``; None for ``cwd: tmp``."""
        raw = self.document.options.cwd
        if raw == "tmp":
            return None
        base = self._file_dir
        return os.path.normpath(os.path.join(base, os.path.expanduser(raw))) if raw else base

    def workdir(self) -> str:
        """The file's working directory: the file's own, or frontmatter ``cwd`` (``tmp``)."""
        if self._workdir is None:
            path = self.configured_dir()
            if path is None:
                path = self._own_dir("runbook-cwd-")
            elif not os.path.isdir(path):
                line = self.document.options.cwd_line
                where = f"{self.display_path}:{line + 1}" if line is not None else self.display_path
                raise RunError(
                    f"{where}: frontmatter cwd {self.document.options.cwd!r} is "
                    f"not a directory ({path}); fix: point cwd at an existing directory, or "
                    "use cwd: tmp"
                )
            self._workdir = path
        return self._workdir

    def _own_dir(self, prefix: str) -> str:
        # The owner's pid in the name: a later run removes what a killed run left
        # (sessions/watchdog.py remove_stale).
        path = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")
        self._own_dirs.append(path)
        return path

    @property
    def home(self) -> Optional[str]:
        """``home: tmp`` (frontmatter, else ini runbook_home): this file's fresh HOME."""
        wanted = self.document.options.home or self.settings.home
        if wanted == "tmp" and self._home is None:
            self._home = self._own_dir("runbook-home-")
        return self._home

    def given_env(self) -> Dict[str, str]:
        """What the run gives the file's sessions: our environment, frontmatter, --runbook-env."""
        env = self._given_without_home()
        home = self.home
        if home is not None:
            env["HOME"] = home
            for name in _HOME_VARIABLES:
                env.pop(name, None)
        return env

    def _given_without_home(self) -> Dict[str, str]:
        return {**os.environ, **self.document.options.env, **self.settings.env}

    def _env_now(self) -> Dict[str, str]:
        env = self.given_env()
        # pytest's own per-phase marker would differ between an early start and now.
        env.pop("PYTEST_CURRENT_TEST", None)
        return env

    def session_for(self, cell: Cell) -> Session:
        return self._session(self._language(cell).session_key(cell), self._language(cell))

    def _language(self, cell: Cell) -> Language:
        try:
            return language_of(cell)
        except UnknownLanguage as error:
            raise RunError(f"{self.display_path}:{cell.line + 1}: {error}") from None

    def _session(self, key: str, row: Language) -> Session:
        if not self._checked_env:
            self._checked_env = True
            if self._sessions and self._session_env != self._env_now():
                self._close_sessions()  # a fixture changed the environment since: start afresh
        session = self._sessions.get(key)
        if session is None:
            env = self._env_now()
            shell, columns = self.document.options.shell, self.settings.columns
            python = self.document.options.python or self.settings.python
            if python and os.sep in python[0] and not os.path.isabs(python[0]):
                # Frontmatter python: .venv/bin/python is a path from the file, as its cwd:
                # is, whatever directory the session starts in (cwd: tmp, cwd: sub).
                python = (os.path.join(self._file_dir, python[0]), *python[1:])
            spec = SessionSpec(key, self.workdir(), env, shell, columns, python)
            session = self._sessions[key] = row.factory(spec)
            self._session_env = env
        return session

    def start_early(self) -> None:
        """Start the sessions this file's cells need, now, while the file before still runs.

        Their start-up (a few ms of bash, far more for a kernel) then overlaps pytest's work
        instead of delaying the file's first cell. Only a head start: any problem is left
        for the first cell to report.
        """
        keys: Dict[str, Language] = {}
        for cell in self.document.cells:
            try:
                row = language_of(cell)
            except UnknownLanguage:
                continue
            keys.setdefault(row.session_key(cell), row)
        try:
            self._checked_env = True  # nothing to compare yet: these sessions get the env now
            for key, row in keys.items():
                self._session(key, row).start()
        except (OSError, ValueError, RunError):
            self._close_sessions()
        finally:
            self._checked_env = False  # checked again when the file's first cell runs

    @property
    def needs_kernel(self) -> bool:
        """Some cell of this file runs in a Jupyter kernel (slow to start: worth starting
        files ahead); cells the document itself skips do not count."""
        if self.document.options.skip is not None:
            return False
        return any(
            cell.kind.startswith("kernel:") and cell.options.skip is None
            for cell in self.document.cells
        )

    def start_kernels_early(self) -> None:
        """Start this file's kernels files ahead of its turn (a kernel takes about 0.5 s of
        CPU to start; a shell a few ms, left to ``start_early``). Only a head start: any
        problem is left for the file's first kernel cell to report."""
        try:
            self._checked_env = True  # nothing to compare yet: these sessions get the env now
            for cell in self.document.cells:
                if cell.kind.startswith("kernel:"):
                    row = language_of(cell)
                    self._session(row.session_key(cell), row).start()
        except Exception:  # the file's first kernel cell reports it, located
            self._close_sessions()
        finally:
            self._checked_env = False  # checked again when the file's first cell runs

    def _close_sessions(self, later: bool = False) -> List[str]:
        notes: List[str] = []
        self._prefetched = None
        for session in self._sessions.values():
            close_later = getattr(session, "close_later", None) if later else None
            notes += close_later() if close_later is not None else session.close()
        self._sessions.clear()
        return notes

    def close(self, later: bool = False) -> None:
        """End the sessions and their processes, remove the file's own directories, write
        nothing further: the transcript, if any, is complete.

        ``later``: a session may leave what nobody waits for (reaping a dead shell, removing
        its directories) to a helper thread; its processes are gone all the same.
        """
        if self.closed:
            return
        self.closed = True
        try:
            self.closing_notes = [(c.line, words) for c, words in self._background_exits()]
            shell = self._sessions.get("shell")
            self._close_sessions(later)
            if self.transcript is not None and shell is not None:
                self.transcript.background_log = getattr(shell, "background_log", str)()
        finally:
            for path in self._own_dirs:
                shutil.rmtree(path, ignore_errors=True)

    # -- which cells run, and when ----------------------------------------------------------

    def _done(self, cell: Cell) -> bool:
        """Ran, excluded or teardown: stays so for the whole run."""
        return cell.index in self._ran or cell.index in self.excluded or cell.options.teardown

    def prerequisites(self, cell: Cell) -> List[Cell]:
        """The earlier cells that must run first: those neither run nor excluded yet."""
        cells = self.document.cells
        # Skip the settled prefix: rescanning it made each item O(cells before it), 1,000
        # cells in one file O(n^2) (about 40 ms).
        start = self._settled
        while start < cell.index and self._done(cells[start]):
            start += 1
        self._settled = start
        return [c for c in cells[start : cell.index] if not self._done(c)]

    def undecided_before(self, cell: Cell) -> List[Tuple[Cell, str]]:
        """Earlier cells left out of replay because the selection could not be read for
        them (fail closed): ``cell`` may depend on them, so it must not pass silently."""
        # Walks the exclusions, not the cells before: per cell that was O(n), 1,000 cells in
        # one file O(n^2) (7% of their run).
        cells = self.document.cells
        return [
            (cells[index], why)
            for index, why in sorted(self.excluded.items())
            if why and index < cell.index and index not in self._ran
        ]

    def missing_interpreter(self, cell: Cell) -> Optional[str]:
        """Why a cell cannot run here (its interpreter is not installed), or None.

        An error of the cell, not a skip (SPEC 7): a typo'd or missing interpreter must not
        pass as a green run; ``requires=`` is how a cell says it may be skipped.
        """
        if not cell.interpreter or not self._through_interpreter(cell):
            return None
        program = cell.interpreter[0]
        if self._installed(program):
            return None
        return (
            f"{self.display_path}:{cell.line + 1}: cell {cell.name!r} needs {program!r}, which "
            f"is not installed (not found on PATH)\n  fix: install it, or add "
            f"requires={shlex.quote(program)} to skip the cell where it is missing"
        )

    def missing_shell(self) -> Optional[str]:
        """A frontmatter/ini shell that is not installed, when some cell runs through it.

        An error of the file rather than a skip: a typo there would otherwise skip every
        shell cell of the file and pass as a green run.
        """
        shell = self.document.options.shell
        cells = self.document.cells
        if not any(c.interpreter == shell and self._through_interpreter(c) for c in cells):
            return None
        program = shell[0]
        if self._installed(program):
            return None
        line = self.document.options.shell_line
        where = f"{self.display_path}:{line + 1}" if line is not None else self.display_path
        origin = (
            "frontmatter shell" if line is not None else "runbook_shell (ini or --runbook-shell)"
        )
        return (
            f"{where}: {origin} {program!r} is not installed (not found on PATH); the file's "
            f"shell cells would run through it\n  fix: install {program}, correct the name, "
            "or remove it to run the shell cells in bash"
        )

    @staticmethod
    def _through_interpreter(cell: Cell) -> bool:
        try:
            return language_of(cell).interpreter
        except UnknownLanguage:
            return False

    def _installed(self, program: str) -> bool:
        if os.sep in program:
            return os.access(program, os.X_OK)
        return (
            shutil.which(program, path=self._given_without_home().get("PATH", os.defpath))
            is not None
        )

    def note_failure(self, cell: Cell) -> None:
        """A cell failed: with ``on-failure: stop`` the rest of the file is skipped."""
        if cell.options.xfail is None and self.document.options.on_failure == "stop":
            self.stopped_by = cell.name

    # -- running ------------------------------------------------------------------------------

    def run(self, cell: Cell, on_output: Optional[Callable[[str], None]] = None) -> List[Outcome]:
        """Run ``cell``; console blocks stop at the first command that fails."""
        try:
            return self._run(cell, on_output)
        except OSError as error:  # the shell could not start, a cell file could not be written
            shell = " ".join(self.document.options.shell)
            raise RunError(
                f"{self.display_path}:{cell.line + 1}: cell {cell.name!r} could not run: "
                f"{error}\n  fix: check that `{shell}` starts on its own in a terminal "
                "(frontmatter shell, --runbook-shell; a login shell runs your profile) and "
                "that the temporary directory is writable"
            ) from None

    def _run(self, cell: Cell, on_output: Optional[Callable[[str], None]]) -> List[Outcome]:
        row = self._language(cell)
        missing = self.missing_interpreter(cell)
        if missing is not None:
            raise RunError(missing)
        self._ran.add(cell.index)
        session = self.session_for(cell)
        cwd = self.cell_cwd(cell)
        started = time.monotonic()
        outcomes: List[Outcome] = []
        ticket: Optional[Ticket] = None
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            if prefetched[0] == cell.index:
                ticket = prefetched[2]
            else:  # its item was skipped by something unforeseen; it ran, never run it again
                self._ran.add(prefetched[0])
        if row.piecewise:
            for command in cell.commands:
                if ticket is not None:  # the first command, started early
                    result = self._located(session, session.collect(ticket), command.line)
                    ticket = None
                else:
                    # stdin= and answers apply to each command (answers wait for their prompts)
                    request = self._request(cell, row, command.source, command.line, cwd, on_output)
                    result = self._located(session, session.run(request), command.line)
                outcomes.append(Outcome(command, result))
                self._remember(cell, result)
                subs = self.substitutions(cwd, session)
                flags = self.settings.doctest_flags
                if not console_goes_on(self.settings.update, cell, command, result, subs, flags):
                    break
        elif cell.options.background and row.background:
            self._background_names.append(cell.name)
            request = self._request(cell, row, self._source(cell, row), cell.source_line, cwd)
            result = session.start_background(request, cell.options.ready)  # type: ignore[attr-defined]
            outcomes.append(Outcome(None, result))
        else:
            if ticket is None:
                request = self._request(
                    cell, row, self._source(cell, row), cell.source_line, cwd, on_output
                )
                ticket = session.submit(request)
            result = self._located(session, session.collect(ticket), cell.source_line)
            outcomes.append(Outcome(None, result))
            self._remember(cell, result)
        if not cell.options.background:  # its report never shows a passing cell's notes
            outcomes = self._with_background_exits(outcomes)
        if self.transcript is not None:
            self.transcript.record(cell, [o.result for o in outcomes], time.monotonic() - started)
        return outcomes

    def _background_exits(self) -> List[Tuple[Cell, str]]:
        """Background cells whose process exited non-zero since the last look, and words."""
        shell = self._sessions.get("shell")
        exits: Optional[Callable[[], List[Tuple[int, int]]]] = getattr(
            shell, "background_exits", None
        )
        if exits is None or not self._background_names:
            return []
        by_name = {c.name: c for c in self.document.cells}
        found = []
        for number, status in exits():
            if number < len(self._background_names):
                cell = by_name[self._background_names[number]]
                found.append(
                    (
                        cell,
                        f"background cell {cell.name!r} ({self.display_path}:{cell.line + 1}) "
                        f"exited with status {status} after it started; see its log.",
                    )
                )
        return found

    def _with_background_exits(self, outcomes: List[Outcome]) -> List[Outcome]:
        # A service that dies after its cell passed: said in the next cell's report (a
        # warning when that cell passes), not left for the end of the run.
        found = self._background_exits() if outcomes else []
        if not found:
            return outcomes
        last = outcomes[-1]
        note = " ".join([last.result.note, *(words for _, words in found)]).strip()
        return [*outcomes[:-1], Outcome(last.command, dataclasses.replace(last.result, note=note))]

    def prefetchable(self, cell: Cell) -> bool:
        """Whether ``cell`` may start now, while pytest still reports the cell before it.

        Only when running it later, from its item, could not differ: the file's session for
        it is up and idle, the cell is the next one to run, and it is a plain cell.
        """
        try:
            row = language_of(cell)
        except UnknownLanguage:
            return False
        idle = self._prefetched is None and row.session_key(cell) in self._sessions
        pieces = not row.piecewise or bool(cell.commands)
        return idle and pieces and _plain(cell, row) and self._next_to_run(cell)

    def _next_to_run(self, cell: Cell) -> bool:
        """Nothing comes between: no stop, no replay, and nothing keeps it from running."""
        return (
            self.stopped_by is None
            and cell.index not in self.excluded
            and not self.prerequisites(cell)
            and self.missing_interpreter(cell) is None
            and self._cwd_exists(cell)
        )

    def prefetch(self, cell: Cell) -> None:
        """Start ``cell`` now if ``prefetchable``; its item's ``run`` collects it."""
        if not self.prefetchable(cell):
            return
        row = language_of(cell)
        session = self.session_for(cell)
        cwd = self.cell_cwd(cell)
        if row.piecewise:  # the first command always runs; whether the rest do, it tells
            first = cell.commands[0]
            request = self._request(cell, row, first.source, first.line, cwd)
        else:
            request = self._request(cell, row, self._source(cell, row), cell.source_line, cwd)
        self._prefetched = (cell.index, session, session.submit(request))

    def run_prerequisite(
        self, cell: Cell, needed_by: str, on_output: Optional[Callable[[str], None]] = None
    ) -> Optional[Failure]:
        """Run an earlier cell as setup for ``needed_by``; its failure (data) or None."""
        outcomes = self.run(cell, on_output)
        role = f"setup for {needed_by!r}"
        verdict = judge_setup(cell, outcomes, path=self.display_path, role=role)
        if isinstance(verdict, Failure):
            if self.document.options.on_failure == "stop":
                self.stopped_by = cell.name
            return verdict
        return None

    def run_pending_teardown(self) -> List[Failure]:
        """``teardown=true`` cells run at the end of the file even when they were not selected."""
        if not self._sessions:
            return []
        failures: List[Failure] = []
        for cell in self.document.cells:
            if not cell.options.teardown or cell.index in self._ran:
                continue
            if cell.index in self.excluded:
                continue
            try:
                outcomes = self.run(cell, None)
            except (RunError, CellSkipped):
                continue
            verdict = judge_setup(cell, outcomes, path=self.display_path, role="teardown")
            if isinstance(verdict, Failure):
                failures.append(verdict)
        return failures

    def judge(self, cell: Cell, outcomes: List[Outcome]) -> Verdict:
        """``verdict.judge`` with what only the run knows: placeholders, background logs."""
        session = self.session_for(cell) if outcomes else None
        return judge(
            cell,
            outcomes,
            path=self.display_path,
            update=self.settings.update,
            substitutions=self.substitutions(self.cell_cwd(cell), session),
            background_log=self.background_tail(),
            doctest_flags=self.settings.doctest_flags,
        )

    # -- pieces of a run ----------------------------------------------------------------------

    def cell_cwd(self, cell: Cell) -> Optional[str]:
        if not cell.options.cwd:
            return None
        path = self._cell_path(cell.options.cwd)
        if not os.path.isdir(path):
            raise RunError(
                f"{self.display_path}:{cell.line + 1}: cell {cell.name!r}: cwd "
                f"{cell.options.cwd!r} is not a directory ({path}); fix: create it in an "
                f"earlier cell or correct the path"
            )
        return path

    def _cell_path(self, cwd: str) -> str:
        return os.path.normpath(os.path.join(self.workdir(), os.path.expanduser(cwd)))

    def _cwd_exists(self, cell: Cell) -> bool:
        return not cell.options.cwd or os.path.isdir(self._cell_path(cell.options.cwd))

    def _request(
        self,
        cell: Cell,
        row: Language,
        source: str,
        line: int,
        cwd: Optional[str],
        on_output: Optional[Callable[[str], None]] = None,
    ) -> Request:
        """One piece of a cell, with the cell's options and the exports not yet sent."""
        options = cell.options
        environ = None
        if row.shell_state:
            cwd, environ = self._shell_state(cwd)
        elif row.session == "shell":
            self._shell_moved = True
        return Request(
            source=source,
            path=self.display_path,
            line=line,
            timeout=options.timeout,
            cwd=cwd,
            environ=environ,
            stdin=options.stdin,
            answers=tuple((a.expect, a.send) for a in options.answers),
            exports=self._take_exports(),
            interpreter=cell.interpreter if row.interpreter and cell.interpreter else None,
            mode=row.mode,
            on_output=on_output,
        )

    def _shell_state(self, cwd: Optional[str]) -> Tuple[Optional[str], Optional[Dict[str, str]]]:
        """The shell session's directory and exported environment, for a session that
        follows it (a Python cell after ``cd build; export MODE=x``); one round trip, and
        only when a shell cell ran since the last time."""
        shell = self._sessions.get("shell")
        if shell is None or not self._shell_moved:
            return cwd, None
        self._shell_moved = False
        where, environ = shell.snapshot()  # type: ignore[attr-defined]
        return (cwd or where), environ

    def _source(self, cell: Cell, row: Language) -> str:
        given = self.given_env() if cell.options.prompt_env == "yes" else None
        return prepared_source(cell, row, given)

    def _located(self, session: Session, result: Result, first_line: int) -> Result:
        """Error messages name the private cell file; point them at the Markdown instead.

        ``bash: /dev/shm/.../cell.sh: line 2: ...`` becomes ``bash: doc.md:5: ...`` and
        Python's ``File ".../cell.py", line 2`` becomes ``File "doc.md", line 5``.
        """
        cell_dir: Optional[str] = getattr(session, "cell_dir", None)
        if not cell_dir or cell_dir not in result.output:
            return result
        display = self.display_path
        pattern = re.compile(re.escape(cell_dir) + r'/cell[\w.]*(: line |", line |:)(\d+)')

        def relocate(match: re.Match[str]) -> str:
            line = first_line + int(match.group(2))
            if match.group(1) == '", line ':
                return f'{display}", line {line}'
            return f"{display}:{line}"

        output = pattern.sub(relocate, result.output)
        output = output.replace(cell_dir + "/", "")
        return dataclasses.replace(result, output=output)

    def background_tail(self, lines: int = 12) -> str:
        """The end of what the file's background cells printed, for failure reports: a
        server's log often says why a later cell failed. Never part of a cell's output."""
        parts = []
        for session in self._sessions.values():
            logs: Callable[[], List[str]] = getattr(session, "background_logs", list)
            for number, log in enumerate(logs()):
                if log.strip():
                    names = self._background_names
                    name = names[number] if number < len(names) else f"#{number + 1}"
                    parts.append(f"background log of cell {name!r}:\n" + report.tail(log, lines))
        return "\n\n".join(parts)

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
        """A variable the next piece of code to run gets (fixture values: TMP_PATH, ...)."""
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

    def substitutions(self, cwd: Optional[str], session: Optional[Session]) -> Dict[str, str]:
        subs = {
            # The shell starts in the physical directory (`cd -P`): `pwd` and getcwd() print
            # it without symlinks (macOS's /var is /private/var), so [CWD] stands for that.
            "[CWD]": self._physical(cwd or self.workdir()),
            "[ROOT]": self.settings.root,
        }
        tmpdir: Optional[str] = getattr(session, "tmpdir", None)
        if tmpdir is not None:
            subs = {"[CWD]": subs["[CWD]"], "[TMP]": tmpdir, "[ROOT]": subs["[ROOT]"]}
        subs.update(self.document.options.substitutions)
        return subs


def _plain(cell: Cell, row: Language) -> bool:
    """A cell whose run needs nothing from its item's moment: in the foreground, without
    input to feed, not a teardown (its place is the end) and not excludeFromRunAll (it runs
    only if its item is selected by name). A console block or ``>>>`` transcript starts only
    its first command early: whether the next ones run depends on its result."""
    options = cell.options
    return (
        not options.background
        and options.stdin is None
        and not options.answers
        and not options.teardown
        and not options.exclude_from_run_all
    )


def on_platform(platforms: Tuple[str, ...]) -> bool:
    return any(sys.platform.startswith(p) for p in platforms)
