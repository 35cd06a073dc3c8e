"""Run-wide settings read once from the command line and ini file, kept in ``config.stash``.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, TypeVar

import pytest

from .defaults import Defaults
from .errors import RunbookError
from .options import OptionError, parse_choice, parse_columns, parse_duration, parse_home

if TYPE_CHECKING:  # every pytest run reads the settings; only update mode needs the rewriter
    from .rewrite import Rewriter

# Named on the command line, always a runbook (SPEC 1); .qmd is Markdown to the parser.
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx", ".mdr", ".qmd", ".ipynb")


class Settings:
    """What every file and item of this run needs to know about the user's choices.

    A plain class, not a dataclass: every pytest run creates it (about 1 ms saved)."""

    def __init__(
        self,
        *,
        defaults: Defaults,
        patterns: Tuple[str, ...],
        opt_in: bool,  # --runbook / ini runbook = true: collect Markdown without explicit paths
        explicit_ids: Tuple[str, ...],  # command-line arguments that name items (path::name)
        env: Dict[str, str],  # --runbook-env / ini runbook_env
        update: Optional[str],  # None, "changed" or "new"
        stream: bool,
        transcript_dir: Optional[Path],
        columns: int,
        home: Optional[str] = None,  # "tmp": each file gets a fresh, empty HOME
        doctest_optionflags: Tuple[str, ...] = (),  # pytest's ini key, also for ```pycon
    ) -> None:
        self.defaults = defaults
        self.patterns = patterns
        self.opt_in = opt_in
        self.explicit_ids = explicit_ids
        self.env = env
        self.update = update
        self.stream = stream
        self.transcript_dir = transcript_dir
        self.columns = columns
        self.home = home
        self.doctest_optionflags = doctest_optionflags
        self.warned_markers: List[str] = []
        self._rewriter: Optional[Rewriter] = None

    @property
    def rewriter(self) -> Rewriter:
        """The run's queued rewrites, made on first use (it imports the matcher)."""
        if self._rewriter is None:
            from .rewrite import Rewriter

            self._rewriter = Rewriter()
        return self._rewriter

    @property
    def rewriter_used(self) -> bool:
        return self._rewriter is not None


SETTINGS_KEY = pytest.StashKey[Settings]()
T = TypeVar("T")


def _option(config: pytest.Config, name: str, ini: str) -> Tuple[object, str]:
    """The command line's value, else the ini file's, with where it came from (for errors)."""
    value = config.getoption(name)
    if value is not None:
        return value, "--" + name.replace("_", "-")
    return config.getini(ini), f"ini {ini}"


def _checked(parse: Callable[[Any, str], T], value: object, origin: str) -> T:
    """``parse(value)``, a bad value reported as a usage error that names ``origin``."""
    try:
        return parse(value, origin.split(" ")[-1])
    except OptionError as problem:
        raise RunbookError(origin, None, problem.message, problem.hint) from None


def _env_pairs(pairs: List[str], source: str) -> Dict[str, str]:
    env: Dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise RunbookError(
                source,
                None,
                f"runbook env {pair!r} is not NAME=value",
                "write e.g. REGION=eu-west-1",
            )
        env[name.strip()] = value
    return env


def _choice(allowed: Tuple[str, ...]) -> Callable[[Any, str], str]:
    return lambda value, key: parse_choice(value, allowed, key)


def _ini(config: pytest.Config, key: str) -> Any:
    """An ini value; one pytest cannot read (``runbook_stream = maybe``) names its key."""
    try:
        return config.getini(key)
    except ValueError as error:
        raise RunbookError(f"ini {key}", None, f"{key}: {error}", f"write {key} = true") from None


def _ini_python(config: pytest.Config) -> str:
    """ini ``runbook_python``, a relative path (``.venv/bin/python``) made absolute from the
    ini file's directory: the sessions start in each file's own directory, where it would
    name nothing for a file in ``docs/``."""
    value = str(config.getini("runbook_python"))
    try:
        words = shlex.split(value)
    except ValueError:
        return value  # reported, with its fix, where the value is parsed (frontmatter.py)
    if not words or os.path.isabs(words[0]) or os.sep not in words[0]:
        return value  # pytest's own, "script", or a command looked up on PATH
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return shlex.join([os.path.join(str(base), words[0]), *words[1:]])


def from_config(config: pytest.Config) -> Settings:
    """Read options once; ini values are the defaults the command line overrides."""

    timeout = _checked(parse_duration, *_option(config, "runbook_timeout", "runbook_timeout"))
    defaults = Defaults(
        timeout=timeout,
        shell=str(_option(config, "runbook_shell", "runbook_shell")[0]),
        bare_fences=_checked(
            _choice(("skip", "shell")),
            config.getini("runbook_bare_fences"),
            "ini runbook_bare_fences",
        ),
        on_failure=_checked(
            _choice(("continue", "stop")),
            *_option(config, "runbook_on_failure", "runbook_on_failure"),
        ),
        python=_ini_python(config),
        python_blocks=_checked(
            _choice(("named", "all")),
            config.getini("runbook_python_blocks") or "named",
            "ini runbook_python_blocks",
        ),
    )
    env = _env_pairs(list(config.getini("runbook_env")), "ini runbook_env")
    env.update(_env_pairs(list(config.getoption("runbook_env") or []), "--runbook-env"))

    update = config.getoption("runbook_update")
    if update is not None:
        update = _checked(_choice(("changed", "new")), update, "--runbook-update")
    if update is None and _ini(config, "runbook_update"):
        update = "changed"
    transcript = config.getoption("runbook_transcript") or config.getini("runbook_transcript")

    invocation_dir = config.invocation_params.dir
    args = getattr(config.option, "file_or_dir", None) or []  # absent with --help
    explicit_ids = [str(arg) for arg in args if "::" in str(arg)]
    return Settings(
        defaults=defaults,
        patterns=tuple(str(p) for p in config.getini("runbook_patterns")),
        opt_in=bool(config.getoption("runbook_collect") or _ini(config, "runbook")),
        explicit_ids=tuple(explicit_ids),
        env=env,
        update=update,
        stream=bool(config.getoption("runbook_stream") or _ini(config, "runbook_stream")),
        transcript_dir=Path(os.path.join(invocation_dir, str(transcript))) if transcript else None,
        columns=_checked(parse_columns, config.getini("runbook_columns"), "ini runbook_columns"),
        home=_checked(parse_home, config.getini("runbook_home"), "ini runbook_home"),
        doctest_optionflags=_doctest_flag_names(config),
    )


def _doctest_flag_names(config: pytest.Config) -> Tuple[str, ...]:
    """pytest's doctest plugin owns the ini key; with ``-p no:doctest`` it does not exist."""
    try:
        return tuple(str(name) for name in config.getini("doctest_optionflags"))
    except ValueError:
        return ()
