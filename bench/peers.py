"""Virtual environments of the peer tools, installed from PyPI into bench/.venvs/ (git-ignored).

    python bench/peers.py          # create or refresh them (idempotent)

Each peer gets its own venv so their dependencies cannot disturb ours or each other's;
pytest-runbook gets a lean one too (editable install of this checkout with its `[jupyter]`
extra, plus plain pytest and ipykernel). The versions are pinned to the ones the peer survey ran
(shared/research/peers.md), pytest and pytest-xdist to the ones pytest-runbook is developed
against, and the Jupyter stack to one set shared by our venv and nbval's, so both talk to the
same kernel. tesh needs Python <= 3.11 (distutils), so its venv is made with the first
python3.11/3.10/3.9 found on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

try:
    import tomllib
except ImportError:  # Python < 3.11: without a TOML reader, install the packages directly
    tomllib = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"

PYTEST = ["pytest==9.2.0", "pytest-xdist==3.8.0"]
JUPYTER = ["jupyter_client==8.10.0", "nbformat==5.11.1", "ipykernel==7.4.0"]


def _runbook_requirements() -> List[str]:
    """This checkout, with its `[jupyter]` extra once pyproject declares it (else the packages)."""
    extras = {}
    if tomllib is not None:
        with open(HERE.parent / "pyproject.toml", "rb") as handle:
            project = tomllib.load(handle).get("project", {})
        extras = project.get("optional-dependencies", {})
    target = f"{HERE.parent}[jupyter]" if "jupyter" in extras else str(HERE.parent)
    return ["-e", target, *PYTEST, *JUPYTER]


PEERS: Dict[str, Tuple[List[str], Tuple[str, ...]]] = {
    # name: (pip install arguments, interpreters to try, best first)
    # pytest-runbook itself (editable) and plain pytest run here, not in the dev venv: its
    # hypothesis plugin alone adds 0.75 s to every pytest start-up, which the peers don't pay.
    "runbook": (_runbook_requirements(), ("python3.11", "python3")),
    "codeblocks": ([*PYTEST, "pytest-codeblocks==0.18.0"], ("python3.11", "python3")),
    "prysk": ([*PYTEST, "prysk==0.20.0", "pytest-prysk==0.4.0"], ("python3.11", "python3")),
    "tesh": (["tesh==0.3.2"], ("python3.11", "python3.10", "python3.9")),
    # Python cells and notebooks (issues 16 and 17)
    "sybil": ([*PYTEST, "sybil==10.1.0"], ("python3.11", "python3")),
    "mddocs": ([*PYTEST, "pytest-markdown-docs==0.9.2"], ("python3.11", "python3")),
    "byexample": (["byexample==11.0.0"], ("python3.11", "python3")),
    "nbval": ([*PYTEST, "nbval==0.11.0", *JUPYTER], ("python3.11", "python3")),
}


def bin_path(peer: str, program: str) -> Path:
    return VENVS / peer / "bin" / program


def _python_for(candidates: Tuple[str, ...]) -> Optional[str]:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure(peer: str, quiet: bool = True) -> Optional[str]:
    """Create the peer's venv if missing; return None when ready, else why it is unavailable."""
    requirements, pythons = PEERS[peer]
    venv = VENVS / peer
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(requirements)
    if stamp.is_file() and stamp.read_text() == wanted:
        return None
    python = _python_for(pythons)
    if python is None:
        return f"{peer}: needs one of {', '.join(pythons)} on PATH"
    if venv.exists():
        shutil.rmtree(venv)
    print(f"[bench] installing {peer} ({' '.join(requirements)}) into {venv}", file=sys.stderr)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", *(["-q"] if quiet else [])]
    done = subprocess.run([*pip, *requirements], env=env)
    if done.returncode != 0:
        return f"{peer}: pip install failed (exit {done.returncode})"
    stamp.write_text(wanted)
    return None


def main() -> None:
    for peer in PEERS:
        problem = ensure(peer, quiet=False)
        print(f"{peer}: {problem or 'ready'} ({VENVS / peer})")


if __name__ == "__main__":
    main()
