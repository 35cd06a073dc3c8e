"""Which session runs a cell, and how: ONE table, the only place that decides it.

The parser resolves each cell's ``kind`` from its fence (``shell``, ``script``, ``console``;
next ``python`` and ``kernel:NAME``); this table maps a kind to the session of the file that
runs it and to how the runner feeds it. Items, runner, verdict, report and rewrite never look
at the fence's language. Adding a kind of session is one row plus a factory::

    LANGUAGES["python"] = Language(kind="python", session="python", factory=_python)

and for a family whose sessions differ by name (Jupyter kernels), ``session=None`` gives each
``kernel:NAME`` its own session, and the factory reads the name from ``SessionSpec.key``.
Imports nothing from pytest; a factory imports its session module only when first called.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Optional, Tuple

if TYPE_CHECKING:
    from .model import Cell
    from .sessions.base import Session


@dataclass(frozen=True)
class SessionSpec:
    """What a factory needs to start one session of a file."""

    key: str  # the session's key: "shell", "python", "kernel:python3", ...
    cwd: str  # the file's working directory
    env: Mapping[str, str]  # the whole environment of the session
    shell: Tuple[str, ...]  # the file's shell argv (frontmatter shell / runbook_shell)
    columns: int  # terminal width
    python: Tuple[str, ...] = ()  # the Python session's interpreter argv; () = pytest's own


Factory = Callable[[SessionSpec], "Session"]


@dataclass(frozen=True)
class Language:
    """One row: a kind of cell and the session that runs it."""

    kind: str  # Cell.kind this row serves; "kernel" serves every "kernel:NAME"
    session: Optional[str]  # the session it runs in (shared by rows); None: the cell's kind
    factory: Factory
    piecewise: bool = False  # run command by command (console blocks), stop at a failure
    interpreter: bool = False  # the cell's ``interpreter`` argv runs it (Request.interpreter)
    background: bool = False  # ``background=true`` cells can run (session.start_background)
    mode: str = "cell"  # Request.mode: "cell", or "example" for doctest-style examples
    pipefail: bool = False  # runs under `set -o pipefail` (a failure report explains it)
    # Takes the shell session's directory and exported environment before each piece, so a
    # `cd` or `export` in an earlier shell cell holds here too (Python, kernels).
    shell_state: bool = False
    checker: str = "runbook"  # how expected output is compared: "runbook" or "doctest"

    def session_key(self, cell: Cell) -> str:
        return self.session if self.session is not None else cell.kind


def _shell(spec: SessionSpec) -> Session:
    from .sessions.shell import ShellSession

    return ShellSession(cwd=spec.cwd, shell=_bash(spec.shell), env=spec.env, columns=spec.columns)


def _bash(shell: Tuple[str, ...]) -> Tuple[str, ...]:
    """The session shell is bash, with the file's own argv when that is bash; other shells
    (zsh, sh) run their cells as scripts through the bash session (kind "script")."""
    return shell if shell and shell[0].rsplit("/", 1)[-1] == "bash" else ("bash",)


def _python(spec: SessionSpec) -> Session:
    import sys

    from .sessions.python.session import PythonSession

    return PythonSession(python=spec.python or (sys.executable,), cwd=spec.cwd, env=spec.env)


def _kernel(spec: SessionSpec) -> Session:
    from .sessions.kernel import KernelSession

    return KernelSession(kernel_name=spec.key.partition(":")[2], cwd=spec.cwd, env=spec.env)


LANGUAGES: Dict[str, Language] = {
    row.kind: row
    for row in (
        Language(kind="shell", session="shell", factory=_shell, background=True, pipefail=True),
        Language(kind="script", session="shell", factory=_shell, interpreter=True, background=True),
        Language(kind="console", session="shell", factory=_shell, piecewise=True, pipefail=True),
        Language(kind="python", session="python", factory=_python, shell_state=True),
        Language(
            kind="pycon",
            session="python",
            factory=_python,
            piecewise=True,
            mode="example",
            shell_state=True,
            checker="doctest",
        ),
        Language(kind="kernel", session=None, factory=_kernel, shell_state=True),
    )
}


class UnknownLanguage(LookupError):
    """A cell kind no row serves: a parser/table mismatch, reported at the cell."""


def language_of(cell: Cell) -> Language:
    """The row that runs ``cell``; "kernel:NAME" is served by the "kernel" row."""
    row = LANGUAGES.get(cell.kind) or LANGUAGES.get(cell.kind.partition(":")[0])
    if row is None:
        raise UnknownLanguage(f"no session runs cells of kind {cell.kind!r}")
    return row


# Names that mean Python where a document names a language: Jupytext and Jupyter Book write
# ```{code-cell} ipython3, and notebooks' lexers say ipython3.
_LANGUAGE_ALIASES = {"ipython3": "python", "ipython": "python"}


def canonical_language(name: str) -> str:
    """A fence's, cell's or kernelspec's language name as the parser's tables know it."""
    return _LANGUAGE_ALIASES.get(name, name)
