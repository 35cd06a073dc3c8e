"""The Python session against real interpreters: no mocks, every outcome exact."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from pytest_runbook.model import Result
from pytest_runbook.sessions.base import Request
from pytest_runbook.sessions.python.session import KILL_GRACE, PythonSession

LINUX = sys.platform.startswith("linux")
needs_proc = pytest.mark.skipif(not LINUX, reason="inspects /proc")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[PythonSession]:
    s = PythonSession(cwd=str(tmp_path), env=dict(os.environ))
    yield s
    s.close()


def run(s: PythonSession, source: str, **kw: Any) -> Result:
    kw.setdefault("timeout", 10)
    kw.setdefault("path", "doc.md")
    kw.setdefault("line", 0)
    return s.run(Request(source=textwrap.dedent(source), **kw))


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


# -- state and display -----------------------------------------------------------------------


def test_state_persists_and_main_is_the_namespace(session: PythonSession) -> None:
    assert run(session, "import math\nx = 41\ndef f(y):\n    return y + 1").output == ""
    r = run(session, "print(f(x), math.pi > 3, __name__)")
    assert r == Result(output="42 True __main__\n", status=0, duration=r.duration)
    # pickle finds a cell's class through sys.modules["__main__"], as in a script.
    r = run(session, "import pickle\nclass P: pass\ntype(pickle.loads(pickle.dumps(P()))).__name__")
    assert (r.output, r.status) == ("'P'\n", 0)


def test_last_expression_is_echoed_unless_none_or_semicolon(session: PythonSession) -> None:
    assert run(session, "x = [1, 'a']\nx").output == "[1, 'a']\n"
    assert run(session, "x;").output == ""
    assert run(session, "x  ;  # hidden").output == ""
    assert run(session, "None").output == ""
    assert run(session, "print('p')").output == "p\n"  # print's None is not echoed
    assert run(session, "for i in range(2):\n    i").output == ""  # not a bare final expression
    assert run(session, "'é' * 2").output == "'éé'\n"
    assert run(session, "_").output == "'éé'\n"  # _ is the last shown value
    assert run(session, "x;\n_").output == "'éé'\n"  # a hidden value does not replace it


def test_future_import_holds_for_later_cells(session: PythonSession) -> None:
    run(session, "from __future__ import annotations")
    assert run(session, "def f(a: Undefined) -> None: pass\nf.__annotations__").output == (
        "{'a': 'Undefined', 'return': 'None'}\n"
    )


# -- output: file-descriptor level, merged, in order ---------------------------------------


def test_fd_level_output_in_order(session: PythonSession) -> None:
    r = run(
        session,
        """
        import os, subprocess, sys
        print("one")
        os.system("echo two")
        print("three", file=sys.stderr)
        subprocess.run(["sh", "-c", "echo four; echo five >&2"])
        os.write(1, b"six\\n")
        print("seven")
        """,
    )
    assert (r.output, r.status) == ("one\ntwo\nthree\nfour\nfive\nsix\nseven\n", 0)


def test_output_cannot_fake_the_end(session: PythonSession) -> None:
    r = run(session, r"print('\0RUNBOOK-END:0123456789abcdef\0 not the end'); print('after')")
    assert r.output == "\0RUNBOOK-END:0123456789abcdef\0 not the end\nafter\n"
    assert run(session, "print('next')").output == "next\n"


def test_live_output_and_undecodable_bytes(session: PythonSession) -> None:
    seen: List[str] = []
    r = run(session, "import os\nos.write(1, b'a\\xff\\n')\nprint('b')", on_output=seen.append)
    assert r.output == "a\udcff\nb\n"
    assert "".join(seen) == r.output


# -- failures ------------------------------------------------------------------------------


def test_exception_points_at_the_markdown(session: PythonSession) -> None:
    run(session, "def f():\n    raise ValueError('bad value')\n", line=20)
    r = run(session, "x = 1\nf()", line=30)
    assert (r.status, r.output, r.exception) == (1, "", "ValueError: bad value\n")
    assert r.traceback.startswith("Traceback (most recent call last):\n")
    assert '  File "doc.md", line 32, in <module>\n    f()\n' in r.traceback
    assert "  File \"doc.md\", line 22, in f\n    raise ValueError('bad value')\n" in r.traceback
    assert "worker" not in r.traceback
    assert r.traceback.endswith("ValueError: bad value\n")


def test_syntax_error_points_at_the_markdown(session: PythonSession) -> None:
    r = run(session, "x = (\n", line=6)
    assert (r.status, r.exception) == (1, "SyntaxError: '(' was never closed\n")
    assert r.traceback.startswith('  File "doc.md", line 7\n')


def test_system_exit(session: PythonSession) -> None:
    assert run(session, "import sys\nsys.exit(3)").status == 3
    assert run(session, "sys.exit()").status == 0
    r = run(session, "sys.exit('fatal: no config')")
    assert (r.status, r.output) == (1, "fatal: no config\n")
    assert run(session, "print('still here')").output == "still here\n"


# -- hangs and crashes -----------------------------------------------------------------------


def test_timeout_interrupts_and_keeps_state(session: PythonSession) -> None:
    run(session, "x = 5")
    r = run(session, "print('before', flush=True)\nwhile True: pass", timeout=0.5)
    assert (r.status, r.timed_out, r.state_lost, r.output) == (None, True, False, "before\n")
    assert r.exception == "KeyboardInterrupt\n"
    assert r.note == (
        "Timed out after 0.5 s; interrupted with ^C (KeyboardInterrupt); the Python session "
        "kept its state."
    )
    assert 0.5 <= r.duration < 2
    r = run(session, "x")
    assert (r.output, r.status, r.state_lost) == ("5\n", 0, False)


def test_timeout_stops_an_os_system_child(session: PythonSession) -> None:
    r = run(session, "import os\nos.system('sleep 30')\nprint('after')", timeout=0.5)
    # ^C reaches the whole group, as on a terminal: sleep dies, the cell goes on, and still
    # fails: it ran out of time.
    assert (r.output, r.status, r.timed_out, r.exception) == ("after\n", None, True, "")
    assert r.duration < KILL_GRACE
    assert run(session, "print('ok')").output == "ok\n"


def test_cell_ignoring_keyboard_interrupt_is_killed(session: PythonSession) -> None:
    run(session, "x = 5")
    source = """
        import time
        print("waiting", flush=True)
        while True:
            try:
                time.sleep(10)
            except KeyboardInterrupt:
                pass
        """
    start = time.monotonic()
    r = run(session, source, timeout=0.3)
    assert KILL_GRACE <= time.monotonic() - start < KILL_GRACE + 2
    assert (r.status, r.timed_out, r.state_lost, r.output) == (None, True, False, "waiting\n")
    assert "did not stop within 3 s of KeyboardInterrupt: the Python session was killed" in r.note
    r = run(session, "x")
    assert (r.status, r.state_lost, r.exception) == (
        1,
        True,
        "NameError: name 'x' is not defined\n",
    )
    assert r.note.startswith(
        "The Python session was started afresh: the previous one was killed when a cell did not "
        "stop within 3 s of KeyboardInterrupt; objects from earlier Python cells are gone."
    )
    assert run(session, "x = 1\nx").state_lost is False  # said once


def test_os_exit_and_segfault_lose_state(session: PythonSession) -> None:
    run(session, "x = 5")
    r = run(session, "print('bye', flush=True)\nimport os\nos._exit(3)")
    assert (r.status, r.output, r.state_lost) == (None, "bye\n", False)
    assert r.note == (
        "The Python session exited with status 3 during this cell; the next Python cell starts "
        "a fresh interpreter without this file's earlier state."
    )
    r = run(session, "x = 6\nimport ctypes\nctypes.string_at(0)")
    assert r.state_lost is True
    assert "the previous one exited with status 3" in r.note
    assert "The Python session was killed by SIGSEGV during this cell" in r.note
    assert r.status is None
    r = run(session, "'x' in globals()")
    assert (r.output, r.state_lost) == ("False\n", True)


def test_forked_child_does_not_answer(session: PythonSession) -> None:
    r = run(
        session,
        """
        import os
        pid = os.fork()
        if pid == 0:
            print('child')
        else:
            os.waitpid(pid, 0)
            print('parent')
        """,
    )
    assert (r.output, r.status) == ("child\nparent\n", 0)
    assert run(session, "print('next')").output == "next\n"


def test_large_output(session: PythonSession) -> None:
    r = run(session, "import sys\nfor i in range(200000):\n    sys.stdout.write(f'{i}\\n')")
    assert r.output == "".join(f"{i}\n" for i in range(200000))


def test_bad_interpreter_is_a_clear_failure(tmp_path: Path) -> None:
    s = PythonSession(python=[str(tmp_path / "nope" / "python")], cwd=str(tmp_path), env={})
    r = run(s, "1")
    assert r.status is None
    assert r.note == (
        f"Could not start the Python session ({tmp_path}/nope/python): "
        f"No such file or directory: {tmp_path}/nope/python. Fix: name an installed "
        "interpreter in the frontmatter's python: (or ini runbook_python), or remove it to use "
        "pytest's own Python."
    )
    assert s.close() == []


def test_interpreter_that_cannot_run_the_worker(tmp_path: Path) -> None:
    s = PythonSession(python=["sh", "-c", "echo 'no python here' >&2; exit 4"], cwd=".", env={})
    r = run(s, "1")
    assert (r.output, r.status) == ("no python here\n", None)
    assert r.note == (
        "The Python interpreter (sh -c echo 'no python here' >&2; exit 4) exited with status 4 "
        "as it started, before running this cell (the session needs Python 3.8 or later); its "
        "output says why."
    )
    s.close()


def _interpreters(version: str) -> List[str]:
    """A real interpreter of ``version`` on this machine, if there is one (pyenv or system)."""
    found = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python3")))
    found += [
        p
        for p in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}")
        if os.path.exists(p)
    ]
    return found[:1]


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_other_python_versions(version: str, tmp_path: Path) -> None:
    pythons = _interpreters(version)
    if not pythons:
        pytest.skip(f"no Python {version} on this machine")
    s = PythonSession(python=pythons, cwd=str(tmp_path), env=dict(os.environ))
    try:
        r = run(s, "import sys\nsys.version_info[:2]")
        assert r.output == f"{tuple(int(x) for x in version.split('.'))}\n"
        r = run(s, "def f():\n    1 / 0\nf()", line=7)
        assert (r.status, r.exception) == (1, "ZeroDivisionError: division by zero\n")
        assert '  File "doc.md", line 10, in <module>\n' in r.traceback
        assert run(s, "x = 1;\nx", mode="cell").output == "1\n"
        assert run(s, "x + 1\n", mode="example").output == "2\n"
        r = run(s, "while True: pass", timeout=0.3)
        assert (r.timed_out, r.exception) == (True, "KeyboardInterrupt\n")
        assert run(s, "x").output == "1\n"
    finally:
        s.close()


# -- stdin and answers -----------------------------------------------------------------------


def test_input_without_stdin_is_end_of_input_at_once(session: PythonSession) -> None:
    r = run(session, "input('Name: ')", timeout=5)
    assert (r.status, r.output, r.exception) == (1, "Name: ", "EOFError: EOF when reading a line\n")
    assert r.duration < 2
    assert run(session, "import sys\nsys.stdin.read()").output == "''\n"


def test_stdin_text_then_end_of_input(session: PythonSession) -> None:
    r = run(session, "print(input('Name: '))\nimport sys\nsys.stdin.read()", stdin="bob\nrest\n")
    assert (r.status, r.output) == (0, "Name: bob\n'rest\\n'\n")
    # what one cell left unread does not reach the next
    run(session, "input()", stdin="a\nb\nc\n")
    assert run(session, "sys.stdin.read()").output == "''\n"


def test_large_stdin(session: PythonSession) -> None:
    text = "x" * 200_000 + "\n"
    assert run(session, "import sys\nlen(sys.stdin.read())", stdin=text).output == "200001\n"


def test_answers_are_sent_when_their_prompt_appears(session: PythonSession) -> None:
    r = run(
        session,
        "name = input('Name: ')\nage = input('Age: ')\nprint(name, age)\ninput('More? ')",
        answers=(("Name: $", "ann"), ("Age:", "3")),
    )
    # not echoed, as in shell cells and kernels; after the last answer, end of input
    assert (r.output, r.exception) == (
        "Name: Age: ann 3\nMore? ",
        "EOFError: EOF when reading a line\n",
    )


def test_bad_answers_regex_runs_nothing(session: PythonSession) -> None:
    r = run(session, "print('ran')", answers=(("(", "x"),))
    assert (r.output, r.status) == ("", None)
    assert r.note == (
        "An answers prompt is not a valid regular expression: '(': missing ), unterminated "
        "subpattern at position 0."
    )
    assert run(session, "print('ok')").output == "ok\n"


# -- environment ---------------------------------------------------------------------------


def test_cwd_environ_and_exports_are_adopted(session: PythonSession, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    r = run(
        session,
        "import os\ne = os.environ\nprint(os.getcwd(), e.get('A'), e.get('B'), 'HOME' in e)",
        cwd=str(tmp_path / "sub"),
        environ={"A": "1", "PATH": os.environ["PATH"]},
        exports={"B": "2"},
    )
    assert r.output == f"{tmp_path}/sub 1 2 False\n"
    # None keeps what the interpreter has; a child sees it too
    r = run(session, "os.system('echo $A $B; pwd')")
    assert r.output == f"1 2\n{tmp_path}/sub\n0\n"
    r = run(session, "print(os.environ.get('A'))", environ={"A": "3", "PATH": os.environ["PATH"]})
    assert r.output == "3\n"
    # given again unchanged, nothing changed in the shell: what a cell set itself stays
    run(session, "os.environ['A'] = 'mine'")
    r = run(session, "print(os.environ.get('A'))", environ={"A": "3", "PATH": os.environ["PATH"]})
    assert r.output == "mine\n"
    # the shell changing it wins
    r = run(session, "print(os.environ.get('A'))", environ={"A": "4", "PATH": os.environ["PATH"]})
    assert r.output == "4\n"
    run(session, "os.environ['A'] = 'mine'")
    assert run(session, "print(os.environ.get('A'))").output == "mine\n"  # None: keep


def test_own_modules_import_from_the_cwd(session: PythonSession, tmp_path: Path) -> None:
    (tmp_path / "worker.py").write_text("NAME = 'the user module'\n")
    assert run(session, "import worker\nworker.NAME").output == "'the user module'\n"
    # the worker's own late imports are not fooled by a same-named file there
    (tmp_path / "traceback.py").write_text("raise SystemExit('wrong traceback module')\n")
    (tmp_path / "linecache.py").write_text("raise SystemExit('wrong linecache module')\n")
    r = run(session, "1 / 0")
    assert r.exception == "ZeroDivisionError: division by zero\n"
    assert '  File "doc.md", line 1, in <module>\n    1 / 0\n' in r.traceback


# -- doctest examples ------------------------------------------------------------------------


def test_example_mode_echoes_values_as_doctest(session: PythonSession) -> None:
    assert run(session, "1 + 1\n", mode="example").output == "2\n"
    assert run(session, "for i in range(2):\n    i\n", mode="example").output == "0\n1\n"
    r = run(session, "int('x')\n", mode="example", line=4)
    assert r.exception == "ValueError: invalid literal for int() with base 10: 'x'\n"
    assert '  File "doc.md", line 5, in <module>\n' in r.traceback


# -- the end of the session: nothing survives ------------------------------------------------


@needs_proc
def test_close_kills_children_and_threads(session: PythonSession, tmp_path: Path) -> None:
    r = run(
        session,
        """
        import os, subprocess, threading, time
        child = subprocess.Popen(["sleep", "100"])
        threading.Thread(target=time.sleep, args=(100,), name="napper").start()
        print(child.pid, os.getpid())
        """,
    )
    child, worker = map(int, r.output.split())
    assert alive(child) and alive(worker)
    notes = session.close()
    assert notes == [
        "Stopped 1 thread that Python cells left running: napper.",
        f"Killed 1 process that Python cells left running: sleep 100 (pid {child}).",
    ]
    assert gone_within(child, 2) and gone_within(worker, 2)


@needs_proc
def test_worker_dies_with_its_owner(tmp_path: Path) -> None:
    owner = textwrap.dedent(
        """
        import os, sys
        from pytest_runbook.sessions.base import Request
        from pytest_runbook.sessions.python.session import PythonSession
        import threading
        s = PythonSession(cwd=os.getcwd(), env=dict(os.environ))
        if sys.argv[2] == "thread":  # no parent-death signal then: the pipe's end must do
            spawner = threading.Thread(target=s.start)
            spawner.start()
            spawner.join()
        s.submit(Request(source=sys.argv[1], path="doc.md", line=0, timeout=60))
        print(s._process.pid, flush=True)
        sys.stdin.read()
        """
    )
    # idle between cells, or busy in code that never reads its pipes, or in C code that
    # never lets go of the GIL (only the kernel's parent-death signal can help then: armed
    # once a cell has run a while, and only when spawned from the main thread, as pytest does);
    # spawned from another thread, only the end of the pipe tells.
    hog = "import time\ntime.sleep(1.5)\nsum(range(10**15))"
    for cell, spawner, wait in (
        ("pass", "main", 0.3),
        ("while True: pass", "main", 0.3),
        (hog, "main", 2.5),
        ("pass", "thread", 0.3),
    ):
        proc = subprocess.Popen(
            [sys.executable, "-c", owner, cell, spawner],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=tmp_path,
        )
        assert proc.stdout is not None
        worker = int(proc.stdout.readline())
        try:
            time.sleep(wait)
            assert alive(worker)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert gone_within(worker, 2), (cell, spawner)
        finally:  # a failure must not leave it spinning
            with contextlib.suppress(OSError):
                os.killpg(worker, signal.SIGKILL)
