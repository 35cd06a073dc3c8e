"""ShellSession against real bash through real PTYs: no mocks, every outcome exact."""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

from pytest_runbook.model import Result
from pytest_runbook.sessions.base import Request
from pytest_runbook.sessions.shell import ShellSession as Session
from pytest_runbook.sessions.shell import spawn

LINUX = sys.platform.startswith("linux")
needs_proc = pytest.mark.skipif(not LINUX, reason="inspects /proc")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session(cwd=str(tmp_path))
    yield s
    s.close()


def request(source: str, **kw: Any) -> Request:
    kw.setdefault("timeout", 10)
    for name in ("answers", "interpreter"):
        if name in kw:
            kw[name] = tuple(kw[name])
    return Request(source=source, path="doc.md", line=0, **kw)


def run(s: Session, source: str, *, errexit: bool = True, **kw: Any) -> Result:
    return s.run(request(source, **kw), errexit=errexit)


def background(s: Session, source: str, ready: Optional[str] = None, **kw: Any) -> Result:
    return s.start_background(request(source, **kw), ready)


def marked_pids(s: Session) -> List[int]:
    """Processes (not zombies) carrying this session's RUNBOOK_SESSION marker."""
    marker = b"\0RUNBOOK_SESSION=" + s._env["RUNBOOK_SESSION"].encode() + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            with open(f"/proc/{name}/environ", "rb") as f:
                env = b"\0" + f.read() + b"\0"
        except OSError:
            continue
        if state != b"Z" and marker in env:
            found.append(int(name))
    return found


# -- state carries over, as in a terminal ----------------------------------------------------


def test_state_persists_between_cells(session: Session, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert run(session, "export GREETING=hi; plain=p; cd sub").output == ""
    run(session, "greet() { echo \"$GREETING from fn\"; }\nalias hello='echo alias-ok'")
    r = run(session, 'echo "$GREETING $plain"; pwd; greet; hello')
    assert r == Result(
        output=f"hi p\n{tmp_path}/sub\nhi from fn\nalias-ok\n",
        status=0,
        duration=r.duration,
    )
    assert run(session, "python3 -c 'import os; print(os.environ[\"GREETING\"])'").output == "hi\n"


def test_hermetic_environment(tmp_path: Path) -> None:
    s = Session(cwd=str(tmp_path), env={"PATH": os.environ["PATH"], "EXTRA": "x", "PS1": "$ "})
    try:
        r = run(
            s,
            'echo "$TERM|$NO_COLOR|$PAGER|$GIT_PAGER|$HISTFILE|$EXTRA|[$PS1]|$RUNBOOK_TMPDIR"; '
            "echo ${PROMPT_COMMAND-unset}; tput cols 2>/dev/null || stty size",
        )
        assert r.output.splitlines()[:2] == [
            f"dumb|1|cat|cat|/dev/null|x|[]|{s.tmpdir}",
            "unset",
        ]
        assert r.output.splitlines()[2] in ("200", "50 200")
        assert run(s, "locale charmap").output == "UTF-8\n"
    finally:
        s.close()


@pytest.fixture(params=["posix_spawn", "pexpect"])
def spawner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a shell is started: posix_spawn on Linux, pexpect elsewhere."""
    if request.param == "pexpect":
        monkeypatch.setattr(spawn, "fast_spawn_available", lambda: False)
    elif not spawn.fast_spawn_available():
        pytest.skip("posix_spawn gives no controlling terminal here")
    return str(request.param)


def test_shell_starts_as_a_terminal_would_start_it(tmp_path: Path, spawner: str) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    env = {"PATH": os.environ["PATH"], "OLDPWD": "/"}
    s = Session(cwd=str(tmp_path / "link"), env=env)
    try:
        r = run(s, 'echo "$PWD $OLDPWD"; tty; ps -o sid= -p $$; echo $$')
        pwd, tty, sid, pid = r.output.splitlines()
        assert pwd == f"{real} /"
        assert tty.startswith("/dev/")  # the PTY is the controlling terminal
        assert sid.strip() == pid  # the shell leads its own session
        # Python ignores SIGPIPE; a terminal's shell does not: `head` ends `yes` quietly.
        r = run(s, 'yes | head -n 1; echo "${PIPESTATUS[*]}"', errexit=False)
        assert r.output == "y\n141 0\n"
        assert (
            run(s, "grep -E '^SigIgn' /proc/self/status", errexit=False).output
            in (
                "SigIgn:\t0000000000000000\n",
                "SigIgn:\t0000000180000000\n",  # glibc's posix_spawn ignores its own 32 and 33
            )
            or not LINUX
        )
    finally:
        s.close()


def test_xtrace_left_on_shows_only_the_cells_commands(session: Session, tmp_path: Path) -> None:
    # Our own calls around a cell must never show up in a trace, whether xtrace was
    # turned on by this cell or is still on from an earlier one.
    assert run(session, "echo before").output == "before\n"
    assert run(session, "set -x").output == ""
    assert run(session, "echo hi").output == "+ echo hi\nhi\n"
    assert run(session, "echo hi", exports={"A": "b"}).output == "+ echo hi\nhi\n"
    assert run(session, "echo hi", cwd=str(tmp_path)).output == "+ echo hi\nhi\n"
    assert run(session, "print('py')", interpreter=("python3",)).output == "py\n"
    assert run(session, "set +x").output == "+ set +x\n"
    assert run(session, "echo done").output == "done\n"


def test_job_notices_are_not_output(session: Session) -> None:
    # Interactive bash announces finished jobs between commands; a script never does.
    assert run(session, "sleep 0.1 &\nwait\necho waited").output == "waited\n"
    assert run(session, "(sleep 0.2; echo from-job) &").output == ""
    assert run(session, "sleep 0.4; echo later").output == "from-job\nlater\n"
    r = run(session, "false &\nwait\nsleep 9 &\nkill %1\nwait\necho killed")
    assert r.output == "killed\n"  # and reaped, so no later `jobs` lists it under load
    listing = run(session, "sleep 3 &\njobs -r\nkill %%").output
    assert re.fullmatch(r"\[[0-9]+\]\+  Running +sleep 3 &\n", listing), listing


def test_exports_reach_a_fresh_shell_again(session: Session) -> None:
    # A value already exported is not sent again, until a new shell needs it.
    assert run(session, "echo $A", exports={"A": "1"}).output == "1\n"
    assert run(session, "echo $A; A=changed-by-cell", exports={"A": "1"}).output == "1\n"
    # The cell changed it: the same value again is not resent (Runme's `$__` is ours to set).
    assert run(session, "echo $A", exports={"A": "1"}).output == "changed-by-cell\n"
    assert run(session, "echo $A", exports={"A": "2"}).output == "2\n"
    assert run(session, "exit 0", exports={"A": "1"}).shell_exited == 0
    assert run(session, "echo $A", exports={"A": "1"}).output == "1\n"


@pytest.mark.parametrize("flag", ["-l", "--login", "--norc", "--posix"])
def test_a_bash_that_reads_no_rcfile_gets_its_setup_typed(tmp_path: Path, flag: str) -> None:
    # A login, --norc or --posix bash ignores our --rcfile, so its setup is typed instead.
    s = Session(cwd=str(tmp_path), shell=("bash", flag))
    try:
        login = flag in ("-l", "--login")
        r = run(s, "export A=1; shopt -q login_shell && echo login || echo other")
        assert r.output == ("login\n" if login else "other\n")
        assert run(s, "echo $A").output == "1\n"
    finally:
        s.close()


def test_a_background_cell_is_not_one_of_the_users_jobs(session: Session) -> None:
    assert background(session, "echo up; sleep 300", timeout=5, ready="up").status == 0
    # `%1` is the user's first job, `jobs` lists only theirs, a bare `wait` returns.
    r = run(session, "sleep 100 &\njobs\nkill %1\nwait\necho waited")
    assert re.fullmatch(r"\[1\]\+  Running +sleep 100 &\nwaited\n", r.output), r.output
    r = run(session, "(sleep 0.2; echo a) & (sleep 0.3; echo b) &\nwait\necho all-done", timeout=5)
    assert (r.output, r.status) == ("a\nb\nall-done\n", 0)
    assert any("sleep 300" in killed for killed in session.close())  # still cleaned up


def test_noclobber_in_a_cell_does_not_break_our_own_files(session: Session) -> None:
    assert run(session, "set -o noclobber; trap 'echo user-err' ERR").output == ""
    for _ in range(2):  # our record of the failing command is overwritten each time
        r = run(session, "echo a\nfalse")
        assert (r.output, r.status, r.failed_command) == ("a\n", 1, "false")
    started = background(session, "echo up; sleep 100", timeout=5, ready="up")
    assert started.status == 0 and "(pid 0)" not in started.note
    assert run(session, "false || true; echo ok").output == "ok\n"


def test_missing_directory_is_a_clear_error(tmp_path: Path, spawner: str) -> None:
    s = Session(cwd=str(tmp_path / "gone"))
    try:
        with pytest.raises(OSError, match=r"cannot start the shell.*gone"):
            run(s, "true")
    finally:
        s.close()


# -- exit status and errexit -----------------------------------------------------------------


def test_errexit_stops_at_first_failure(session: Session) -> None:
    r = run(session, "echo one\nfalse\necho never")
    assert (r.output, r.status) == ("one\n", 1)
    r = run(session, "echo a; (exit 7); echo never")
    assert (r.output, r.status) == ("a\n", 7)
    assert run(session, "false | true; echo never").status == 1  # pipefail
    f = run(session, "f() { echo in-f; false; echo never-f; }; f; echo never")
    assert (f.output, f.status) == ("in-f\n", 1)
    # Conditions are exempt, exactly as under set -e.
    r = run(session, "if false; then :; fi; false || echo or-ok; ! false; echo end")
    assert (r.output, r.status) == ("or-ok\nend\n", 0)
    # errexit's own settings do not leak into later cells.
    cell = "shopt -qo pipefail || echo no-pipefail; [[ $- == *E* ]] || echo no-errtrace; trap -p"
    assert run(session, cell, errexit=False).output == "no-pipefail\nno-errtrace\n"


def test_errexit_false_and_last_status(session: Session) -> None:
    r = run(session, "echo a; false; echo b", errexit=False)
    assert (r.output, r.status) == ("a\nb\n", 0)
    assert run(session, "true; (exit 5)", errexit=False).status == 5
    assert run(session, "false | true", errexit=False).status == 0


def test_set_e_left_on_does_not_kill_later_cells(session: Session) -> None:
    r = run(session, "set -e")
    assert r.status == 0 and "set -e" in r.note
    r = run(session, "false; echo survived", errexit=False)
    assert (r.output, r.status, r.shell_exited) == ("survived\n", 0, None)
    assert run(session, "echo alive").output == "alive\n"
    assert not session.restarted


def test_user_err_trap_is_kept(session: Session) -> None:
    run(session, "trap 'echo user-trap' ERR", errexit=False)
    r = run(session, "false; echo never")
    assert r.status == 1
    assert run(session, "trap -p ERR", errexit=False).output == "trap -- 'echo user-trap' ERR\n"


# -- cwd, interpreter, exports ---------------------------------------------------------------


def test_cwd_param_holds_for_one_cell(session: Session, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run(session, "pwd", cwd="a").output == f"{tmp_path}/a\n"
    assert run(session, "pwd").output == f"{tmp_path}\n"
    # A cd inside the cell still does not leak out of a cwd= cell ...
    assert run(session, "cd ../b; pwd", cwd="a").output == f"{tmp_path}/b\n"
    assert run(session, "pwd").output == f"{tmp_path}\n"
    # ... but persists from an ordinary cell.
    run(session, "cd b")
    assert run(session, "pwd").output == f"{tmp_path}/b\n"
    r = run(session, "echo never", cwd=str(tmp_path / "missing"))
    assert r.status == 1 and "No such file or directory" in r.output and "never" not in r.output


def test_interpreter_sees_exports_and_cwd(session: Session, tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    run(session, "export FROM_SHELL=shell-value")
    r = run(
        session,
        "import os, sys\nprint(os.environ['FROM_SHELL'], os.getcwd())\nsys.exit(3)\n",
        interpreter=["python3", "-u"],
        cwd="w",
    )
    assert (r.output, r.status) == (f"shell-value {tmp_path}/w\n", 3)
    assert run(session, "pwd").output == f"{tmp_path}\n"


def test_exports(session: Session) -> None:
    tricky = 'it\'s $(touch pwned) `x` \\ "q"\nline2\x00!'
    r = run(session, 'printf "%s|" "$__" "$N"', exports={"__": tricky, "N": "1"})
    assert r.output == tricky.replace("\x00", "") + "|1|"
    big = "x" * 20000
    assert run(session, 'echo "${#BIG}"', exports={"BIG": big}).output == "20000\n"
    assert run(session, "test ! -e pwned && echo $N").output == "1\n"
    with pytest.raises(ValueError):
        run(session, "true", exports={"BAD-NAME": "x"})


def test_attribute_values_never_execute(session: Session, tmp_path: Path) -> None:
    evil = "$(touch pwned)"
    r = run(session, "true", cwd=evil)
    assert r.status == 1
    r = run(session, "true", interpreter=[evil])
    assert r.status == 127
    r = run(session, "true", interpreter=["python3", "-c", "'; touch pwned2; '"])
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert run(session, "ls").output == ""


# -- output fidelity --------------------------------------------------------------------------


def test_large_output_is_exact_and_fast(session: Session) -> None:
    t = time.monotonic()
    r = run(session, "seq 1 2000000", timeout=30)
    elapsed = time.monotonic() - t
    assert r.status == 0
    assert len(r.output) == 14888896
    assert r.output.startswith("1\n2\n3\n") and r.output.endswith("\n1999999\n2000000\n")
    assert elapsed < 5  # generous for loaded CI; bench/ measures the real number


def test_invalid_utf8_and_nul_round_trip(session: Session) -> None:
    r = run(session, r"printf '\xff\xfe|\xc3\xa9|\xe2\x82|X\0Y\r\n'")
    assert r.output.encode("utf-8", "surrogateescape") == b"\xff\xfe|\xc3\xa9|\xe2\x82|X\0Y\r\n"
    data = bytes(range(256)) * 40
    (Path(session.tmpdir) / "bin").write_bytes(data)
    r = run(session, 'cat "$RUNBOOK_TMPDIR/bin"')
    assert r.output.encode("utf-8", "surrogateescape") == data


def test_sentinel_and_prompt_lookalikes(session: Session) -> None:
    fake = r"\036E0.1:0:himBH:tok\037\036S1.1\037$ \036R0.9:0::\037"
    r = run(session, f"printf '{fake}'; echo; echo '$ '; PS1='$ '; echo done")
    assert r.output == ("\x1eE0.1:0:himBH:tok\x1f\x1eS1.1\x1f$ \x1eR0.9:0::\x1f\n$ \ndone\n")
    assert run(session, "echo next").output == "next\n"


def test_user_functions_shadowing_builtins(session: Session) -> None:
    run(
        session,
        "printf() { :; }; echo() { :; }; source() { :; }; cd() { :; }; trap() { :; }; "
        "builtin() { :; }; unset -f builtin",
    )
    r = run(session, "command echo works; false; command echo never")
    assert (r.output, r.status) == ("works\n", 1)
    assert run(session, "command pwd", cwd="/").output == "/\n"


def test_exec_redirect_and_stty_changes(session: Session) -> None:
    assert run(session, "exec >/dev/null; echo hidden").output == ""
    assert run(session, "echo err >&2; echo hidden").output == "err\n"
    run(session, "exec >/dev/tty")
    r = run(session, "stty opost onlcr; echo crlf")
    assert r.output == "crlf\r\n"  # the cell's own choice shows in its own output ...
    assert run(session, "echo lf").output == "lf\n"  # ... and is undone afterwards


def test_streaming_callback(session: Session) -> None:
    seen: List[str] = []
    r = run(session, "echo one; sleep 0.05; echo two", on_output=seen.append)
    assert "".join(seen) == r.output == "one\ntwo\n"


# -- input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "within"),
    [
        ("read x", 2.5),
        ("cat", 2.5),
        ("head -1", 2.5),
        ("python3 -c 'input()'", 2.5),
        # A select with a timeout may only be passing time: a longer quiet spell first.
        ("read -t 20 x </dev/tty", 5.0),
    ],
)
def test_waiting_for_input_fails_fast(session: Session, cell: str, within: float) -> None:
    run(session, "export KEEP=kept")
    t = time.monotonic()
    r = run(session, f"echo before; {cell}; echo never", timeout=20)
    assert time.monotonic() - t < within
    assert r.waiting_for_input and r.status is None and not r.timed_out
    assert r.output.startswith("before\n") and "never" not in r.output
    assert r.note.startswith("Waiting for input")
    assert run(session, "echo $KEEP").output == "kept\n"


def test_stdin_param(session: Session) -> None:
    r = run(session, 'read a; read b; echo "$b-$a"', stdin="first\nsecond\n")
    assert (r.output, r.status) == ("second-first\n", 0)
    # Unread stdin is discarded: it never runs as a command.
    r = run(session, "read a; echo got $a", stdin="one\ntouch leftover\nrm -rf x")
    assert r.output == "got one\n"
    assert run(session, "ls; echo ok").output == "ok\n"
    # Then end of input, as from a pipe: readers of the whole input finish, and a read
    # past the end fails as it would on a pipe instead of waiting.
    assert run(session, "wc -l", stdin="1\n2\n3\n").output.strip() == "3"
    assert run(session, "cat; echo", stdin="no newline").output == "no newline\n"
    r = run(session, "read a; read b", stdin="only-one\n")
    assert (r.status, r.waiting_for_input) == (1, False)
    assert run(session, "echo still here").output == "still here\n"
    # Every later read sees the end again, as from a pipe; stdin="" is only the end.
    assert run(session, "cat; echo x; wc -l", stdin="a\nb\n").output == "a\nb\nx\n0\n"
    assert run(session, "cat; echo done", stdin="").output == "done\n"
    assert run(session, "echo fine").output == "fine\n"


def test_stdin_is_not_the_terminal(session: Session) -> None:
    """stdin= text arrives as from `printf ... | cmd`: programs see no terminal, so they print
    no prompts; the terminal stays the session's, and the next cell has it again."""
    assert run(session, "test -t 0 && echo tty || echo pipe", stdin="x\n").output == "pipe\n"
    code = "import sys; print(sys.stdin.isatty(), sys.stdin.read())"
    r = run(session, f"python3 -c '{code}'", stdin="data")
    assert (r.output, r.status) == ("False data\n", 0)
    r = run(session, 'read -r -p "prompt? " a; echo "a=$a"', stdin="yes\n")
    assert r.output == "a=yes\n"
    assert run(session, "test -t 0 && echo tty").output == "tty\n"


def test_a_shell_that_died_between_cells_runs_the_next_cell_on_a_fresh_one(
    session: Session,
) -> None:
    assert run(session, "x=1").status == 0
    pid = session._proc.pid
    os.kill(pid, 9)
    time.sleep(0.1)
    r = run(session, "false")
    assert (r.status, r.state_lost) == (1, True)
    assert "A fresh shell was started because the shell ended (status" in r.note
    r = run(session, 'echo "ran ${x-unset}"')
    assert (r.output, r.status) == ("ran unset\n", 0)


def test_answers(session: Session) -> None:
    cell = (
        "read -p 'Continue? [y/N] ' a; echo \"a=$a\"\n"
        'python3 -c \'print("name=" + input("Name: "))\'\n'
    )
    r = run(session, cell, answers=[(r"Continue\? \[y/N\] ", "y"), ("Name: ", "ada")])
    assert (r.output, r.status) == ("Continue? [y/N] a=y\nName: name=ada\n", 0)
    r = run(session, "read -p 'First? ' a; read -p 'Second? ' b", answers=[("First", "1")])
    assert r.waiting_for_input and r.output == "First? Second? "
    assert run(session, "echo fine").output == "fine\n"


# -- timeouts and incomplete input -----------------------------------------------------------


def test_timeout_interrupts_and_keeps_state(session: Session) -> None:
    run(session, "export KEEP=1")
    t = time.monotonic()
    r = run(session, "echo start; sleep 30", timeout=0.4)
    assert time.monotonic() - t < 2
    assert r.timed_out and r.status is None and r.output.startswith("start\n")
    assert "Timed out after 0.4 s" in r.note
    assert run(session, "echo $KEEP").output == "1\n"
    r = run(session, "while :; do :; done", timeout=0.3)  # a builtin loop in the shell itself
    assert r.timed_out
    assert run(session, "echo $KEEP").output == "1\n" and not session.restarted


def test_timeout_with_sigint_ignored(session: Session) -> None:
    run(session, "export KEEP=1")
    t = time.monotonic()
    r = run(session, "trap '' INT; sleep 30", timeout=0.3)
    assert time.monotonic() - t < 4
    assert r.timed_out and "SIGTERM" in r.note
    assert run(session, "echo $KEEP").output == "1\n" and not session.restarted


def test_unterminated_input_is_incomplete(session: Session) -> None:
    for cell in ["echo 'abc", 'echo "abc', "f() {\n echo x\n", "if true; then\n echo x\n"]:
        r = run(session, cell)
        assert r.incomplete and r.status is None, cell
        assert "incomplete" in r.note
    r = run(session, "cat <<EOF\nbody\n")
    assert r.incomplete and r.status is None and "body\n" in r.output
    assert run(session, "echo ok").output == "ok\n"


# -- the shell ending ---------------------------------------------------------------------------


def test_exit_restarts_with_note(session: Session, tmp_path: Path) -> None:
    run(session, "export KEEP=1")
    r = run(session, "echo bye; exit 3")
    assert (r.output, r.status, r.shell_exited) == ("bye\n", 3, 3)
    assert "exited with status 3" in r.note
    assert not session.restarted
    r = run(session, 'echo "[${KEEP-}]"; pwd')
    assert r.output == f"[]\n{tmp_path}\n" and r.status == 0
    assert session.restarted and "state" in r.note and "lost" in r.note
    assert run(session, "true").note == ""  # said once


def test_exec_true_and_errexit_death(session: Session) -> None:
    assert run(session, "exec true").shell_exited == 0
    r = run(session, "set -e; false; echo never", errexit=False)
    assert (r.status, r.shell_exited) == (1, 1)
    assert run(session, "echo back").output == "back\n"


def test_exec_bash_is_detected(session: Session) -> None:
    run(session, "export KEEP=1")
    t = time.monotonic()
    r = run(session, "exec bash --norc", timeout=20)
    assert time.monotonic() - t < 3
    assert r.status is None and "replaced" in r.note
    r = run(session, 'echo "[${KEEP-}]"')
    assert r.output == "[]\n" and session.restarted


# -- background ---------------------------------------------------------------------------------


def test_background_ready_and_log(session: Session) -> None:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    r = background(
        session,
        f"echo booting; python3 -u -m http.server {port} --bind 127.0.0.1",
        ready="Serving HTTP",
        timeout=10,
    )
    assert r.status == 0 and r.output.startswith("booting\nServing HTTP on 127.0.0.1")
    fetch = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').status)"
    r = run(session, f'python3 -c "{fetch}"')
    assert r.output == "200\n"
    time.sleep(0.1)
    assert run(session, "echo clean").output == "clean\n"  # request log stays out
    assert '"GET / HTTP/1.1" 200' in session.background_log()


def test_background_without_ready_and_failures(session: Session) -> None:
    r = background(session, "while :; do echo tick; sleep 0.02; done", timeout=5)
    assert (r.status, r.output) == (0, "")
    assert run(session, "sleep 0.1; echo quiet").output == "quiet\n"
    assert "tick\ntick\n" in session.background_log()
    r = background(session, "echo dying; exit 4", ready="never", timeout=5)
    assert (r.status, r.output, r.timed_out) == (4, "dying\n", False)
    t = time.monotonic()
    r = background(session, "echo slow; sleep 30", ready="never", timeout=0.3)
    assert r.timed_out and r.status is None and r.output == "slow\n"
    assert time.monotonic() - t < 2


# -- cleanup ------------------------------------------------------------------------------------


@needs_proc
def test_close_kills_orphans_and_removes_tmp(tmp_path: Path, spawner: str) -> None:
    s = Session(cwd=str(tmp_path))
    tmp, cells = s.tmpdir, s._celldir
    run(
        s,
        "nohup sleep 101 >/dev/null 2>&1 &\n"
        "setsid sleep 102 &\n"
        "sleep 103 & disown\n"
        "(sleep 104 &)\n"
        "sleep 105 &\n"
        "python3 -c 'import os,time\nif os.fork()==0:\n os.setsid()\n time.sleep(106)' \n",
    )
    background(s, "sleep 107", timeout=5)
    time.sleep(0.1)
    assert len(marked_pids(s)) >= 8
    assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cells).st_mode) == 0o700
    modes = {stat.S_IMODE(os.stat(os.path.join(cells, f)).st_mode) for f in os.listdir(cells)}
    assert modes == {0o600}
    killed = s.close()
    assert marked_pids(s) == []
    assert any("sleep 101" in k for k in killed) and any("sleep 107" in k for k in killed)
    assert not os.path.exists(tmp) and not os.path.exists(cells)
    assert s.close() == []  # idempotent
    with pytest.raises(RuntimeError):
        run(s, "true")


@needs_proc
def test_forgotten_session_is_finalized(tmp_path: Path) -> None:
    s = Session(cwd=str(tmp_path))
    run(s, "sleep 100 & disown")
    tmp = s.tmpdir
    marker_session = s
    pids = marked_pids(marker_session)
    assert pids
    del s, marker_session
    import gc

    gc.collect()
    assert not os.path.exists(tmp)
    assert all(not os.path.exists(f"/proc/{p}/environ") or _zombie(p) for p in pids)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


# -- other shells -------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["zsh", "sh", "dash"])
def test_only_bash_runs_the_session(shell: str) -> None:
    with pytest.raises(ValueError, match=f"unsupported session shell '{shell}'"):
        Session(cwd=".", shell=(shell,))


@pytest.mark.skipif(not os.path.exists("/bin/dash"), reason="needs dash")
def test_frontmatter_sh_runs_each_cell_as_a_fresh_sh_script(
    runbook: Any, pytester: pytest.Pytester
) -> None:
    # Not the session: each shell cell is a script run by dash (`ps` says so), a dash-only
    # behaviour shows (dash's echo expands backslash escapes), and no state carries over.
    (pytester.path / "sub").mkdir()
    runbook(
        """
        ---
        shell: /bin/dash
        ---

        ```sh
        ps -o comm= -p $$
        echo 'a\\tb' | od -c | head -1 | tr -s ' '
        X=set; cd sub; pwd | sed 's,.*/,,'
        ```

        ```output
        dash
        0000000 a \\t b \\n
        sub
        ```

        ```sh
        echo "X=${X-unset} $(basename "$PWD")"
        test -n "${BASH_VERSION-}" && echo bash || echo not-bash
        ```

        ```output
        X=unset test_frontmatter_sh_runs_each_cell_as_a_fresh_sh_script0
        not-bash
        ```
        """
    )
    result = pytester.runpytest("doc.md", "-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_submit_runs_while_the_caller_works_and_collect_waits(session: Session) -> None:
    run(session, "export BEFORE=1")
    ticket = session.submit(request('sleep 0.3; echo "done $BEFORE"', exports={"X": "y"}))
    started = time.monotonic()
    time.sleep(0.3)  # the caller's own work (pytest reporting the previous cell)
    result = session.collect(ticket)
    assert result.status == 0
    assert result.output == "done 1\n"
    assert time.monotonic() - started < 0.55  # the cell ran during the caller's sleep
    with pytest.raises(RuntimeError, match="already collected"):
        session.collect(ticket)


def test_a_second_submit_collects_the_outstanding_cell_first(session: Session) -> None:
    session.submit(request("echo one > one.txt"))
    result = run(session, "cat one.txt")  # never interleaves with the outstanding cell
    assert (result.status, result.output) == (0, "one\n")


def test_snapshot_sees_cd_and_export_and_changes_nothing(session: Session, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    run(session, "cd link; export FROM_CELL='two\nlines'; PLAIN=not-exported")
    # The user's aliases and functions never reach the snapshot's own commands.
    run(session, "alias command=false; env() { echo fake; }; pwd() { echo fake; }; x=1")
    cwd, env = session.snapshot()
    assert cwd == str(real)  # physical, as os.getcwd() would say
    assert env["FROM_CELL"] == "two\nlines" and "PLAIN" not in env and "_" not in env
    assert env["RUNBOOK_TMPDIR"] == session.tmpdir
    r = run(session, 'echo "$x $PLAIN $__"; builtin pwd -P', exports={"__": "last"})
    assert r.output == f"1 not-exported last\n{real}\n"
    assert run(session, "unset -f env; /usr/bin/env | grep -c FROM_CELL").output == "1\n"


def test_snapshot_after_the_shell_exited_says_state_was_lost(
    session: Session, tmp_path: Path
) -> None:
    run(session, "cd /; exit 0")
    cwd, env = session.snapshot()
    assert cwd == str(tmp_path) and "RUNBOOK_SESSION" in env
    r = run(session, "true")  # the restart is told to the next cell
    assert r.state_lost and "state from earlier cells" in r.note


def test_interrupt_stops_the_running_cell_and_keeps_state(session: Session) -> None:
    import threading

    run(session, "export KEEP=1")
    ticket = session.submit(request("echo start; sleep 30; echo never", timeout=20))
    threading.Timer(0.3, session.interrupt).start()
    t = time.monotonic()
    r = session.collect(ticket)
    assert time.monotonic() - t < 3
    assert (r.interrupted, r.timed_out, r.status) == (True, False, None)
    assert r.output.startswith("start\n") and r.note.startswith("Interrupted: ")
    assert run(session, "echo $KEEP").output == "1\n" and not session.restarted
    session.interrupt()  # nothing runs: nothing happens
    assert run(session, "echo still").output == "still\n"
