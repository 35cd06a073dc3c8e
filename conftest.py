"""This project's own runs: the docs' cells call `pytest` and `python3` by name.

`.venv/bin/pytest -n 2` from a terminal whose venv is not activated must still give those
cells this venv's pytest (with the plugin), as activating it would: its bin/ goes first.
"""

from __future__ import annotations

import os
import sys

_bin = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _bin:
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")
