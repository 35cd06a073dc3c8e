"""pytest-runbook: Markdown runbooks as pytest tests, run in one persistent shell per file.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from types import ModuleType
from typing import Optional, Sequence

__version__ = "0.1.0"

__all__ = ["__version__"]


class _PlainImport:
    """Loads this package's modules as Python does without pytest: from their cached bytecode.

    pytest assertion-rewrites every module of a plugin installed by entry point. It parses
    and compiles each module before it sees ``PYTEST_DONT_REWRITE`` in the docstring, and
    where bytecode is not written (PYTHONDONTWRITEBYTECODE, usual in CI images) it does so on
    every run: 7,000 lines for one runbook. A module whose docstring carries the marker is
    loaded here, ahead of pytest's import hook, with the code pytest would have run; a module
    without the marker is left to pytest.
    """

    owner = __name__

    def find_spec(
        self,
        name: str,
        path: Optional[Sequence[str]] = None,
        target: Optional[ModuleType] = None,
    ) -> Optional[ModuleSpec]:
        if not name.startswith(f"{__name__}.") or path is None:
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is None or not isinstance(spec.loader, SourceFileLoader) or not spec.origin:
            return None
        try:
            with open(spec.origin, "rb") as source:
                head = source.read(8192)  # the module docstring
        except OSError:
            return None
        return spec if b"PYTEST_DONT_REWRITE" in head else None


if not any(getattr(finder, "owner", None) == __name__ for finder in sys.meta_path):
    sys.meta_path.insert(0, _PlainImport())
