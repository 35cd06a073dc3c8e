"""Project-wide defaults for the parser, read from the ini file and command line.

Its own module so that the pytest hooks can read options without importing the parser
(markdown-it-py, PyYAML): a pytest run that collects no Markdown pays nothing for them.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import NamedTuple


class Defaults(NamedTuple):
    """Project-wide defaults from the ini file / command line; frontmatter and cells override.

    A NamedTuple, not a frozen dataclass: every pytest run imports this module, and creating
    a dataclass costs about 1 ms (a NamedTuple a tenth of that)."""

    timeout: float = 60.0
    shell: str = "bash"
    bare_fences: str = "skip"  # "skip" (documentation) or "shell" (Runme's behaviour)
    on_failure: str = "continue"  # or "stop"
    python: str = ""  # ini runbook_python: the Python session's interpreter ("" = pytest's)
    python_blocks: str = "named"  # ini runbook_python_blocks: "all" makes every block a cell
