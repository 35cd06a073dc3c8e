"""Run-wide settings read once from the command line and ini file, kept in ``config.stash``.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import pytest

from .defaults import Defaults
from .errors import RunbookError

if TYPE_CHECKING:  # every pytest run reads the settings; only update mode needs the rewriter
    from .rewrite import Rewriter

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx", ".mdr")  # named, always a runbook (SPEC 1)


@dataclass
class Settings:
    """What every file and item of this run needs to know about the user's choices."""

    defaults: Defaults
    patterns: Tuple[str, ...]
    opt_in: bool  # --runbook / ini runbook = true: collect Markdown without explicit paths
    explicit_ids: Tuple[str, ...]  # command-line arguments that name items (path::name)
    env: Dict[str, str]  # --runbook-env / ini runbook_env
    update: Optional[str]  # None, "changed" or "new"
    stream: bool
    transcript_dir: Optional[Path]
    columns: int
    warned_markers: List[str] = field(default_factory=list)
    _rewriter: Optional[Rewriter] = field(default=None, repr=False)

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


def _timeout(value: str, source: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise RunbookError(
            source, None, f"runbook timeout {value!r} is not a number of seconds", "use e.g. 60"
        ) from None
    if seconds <= 0:
        raise RunbookError(source, None, "runbook timeout must be positive", "use e.g. 60")
    return seconds


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


def _choice(value: str, allowed: Tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise RunbookError(
            "ini/command line", None, f"{what} {value!r} is not one of {', '.join(allowed)}", ""
        )
    return value


def from_config(config: pytest.Config) -> Settings:
    """Read options once; ini values are the defaults the command line overrides."""

    def opt(name: str, ini: str) -> object:
        value = config.getoption(name)
        return value if value is not None else config.getini(ini)

    timeout = _timeout(str(opt("runbook_timeout", "runbook_timeout")), "--runbook-timeout")
    defaults = Defaults(
        timeout=timeout,
        shell=str(opt("runbook_shell", "runbook_shell")),
        bare_fences=_choice(
            str(config.getini("runbook_bare_fences")), ("skip", "shell"), "runbook_bare_fences"
        ),
        on_failure=_choice(
            str(opt("runbook_on_failure", "runbook_on_failure")),
            ("continue", "stop"),
            "runbook on-failure",
        ),
    )
    env = _env_pairs(list(config.getini("runbook_env")), "ini runbook_env")
    env.update(_env_pairs(list(config.getoption("runbook_env") or []), "--runbook-env"))

    update = config.getoption("runbook_update")
    if update is not None:
        update = _choice(str(update), ("changed", "new"), "--runbook-update")
    if update is None and config.getini("runbook_update"):
        update = "changed"
    transcript = config.getoption("runbook_transcript") or config.getini("runbook_transcript")

    invocation_dir = config.invocation_params.dir
    args = getattr(config.option, "file_or_dir", None) or []  # absent with --help
    explicit_ids = [str(arg) for arg in args if "::" in str(arg)]
    return Settings(
        defaults=defaults,
        patterns=tuple(str(p) for p in config.getini("runbook_patterns")),
        opt_in=bool(config.getoption("runbook_collect") or config.getini("runbook")),
        explicit_ids=tuple(explicit_ids),
        env=env,
        update=update,
        stream=bool(config.getoption("runbook_stream") or config.getini("runbook_stream")),
        transcript_dir=Path(os.path.join(invocation_dir, str(transcript))) if transcript else None,
        columns=int(str(config.getini("runbook_columns"))),
    )
