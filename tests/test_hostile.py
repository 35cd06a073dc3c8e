"""Hostile cells through the whole plugin (pytester, real bash, real PTYs).

Every case is bounded in time (the run's duration is asserted) and asserts the exact verdict
and message a user gets. Every process a runbook starts carries a marker: the environment
variable ``HOSTILE_MARK=<uuid>`` (``--runbook-env``) and, for the long sleeps, a unique argv
(``sleep 3117.<digits>``) that survives even a cleared environment. After each test no such
process may be alive: /proc is scanned for survivors.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from typing import Iterator, List, Optional, Sequence, Tuple

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="scans /proc for surviving processes"
)

MARK = uuid.uuid4().hex
# A sleep nobody else runs: unique per test module import (so per xdist worker too).
SLEEP = f"3117.{random.randrange(10**8, 10**9)}"
ENV_ARGS = ("-p", "no:cacheprovider", "--runbook-env", f"HOSTILE_MARK={MARK}")


def survivors() -> List[str]:
    """Live processes (not zombies) that carry our marker in their environment or argv."""
    env_needle = f"\0HOSTILE_MARK={MARK}\0".encode()
    argv_needle = SLEEP.encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    environ = b"\0" + f.read() + b"\0"
            except PermissionError:
                environ = b""
        except (OSError, IndexError):
            continue
        if state in (b"Z", b"X"):
            continue
        if env_needle in environ or argv_needle in cmdline:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{name}: {shown}")
    return found


@pytest.fixture(autouse=True)
def nothing_survives() -> Iterator[None]:
    assert survivors() == [], "a marked process was alive before the test"
    yield
    left = survivors()
    deadline = time.monotonic() + 2.0
    while left and time.monotonic() < deadline:  # killed processes may take a moment to go
        time.sleep(0.05)
        left = survivors()
    for entry in left:  # do not leak into the next test, whatever happened
        pid = int(entry.split(":", 1)[0])
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "processes outlived the runbook run"


def run(
    pytester: pytest.Pytester, text: str, *args: str, limit: float, name: str = "doc.md"
) -> Tuple[pytest.RunResult, float]:
    """Write ``text`` (dedented, ``@SLEEP@`` filled in) and run pytest on it in-process."""
    path = pytester.path / name
    path.write_text(textwrap.dedent(text).lstrip("\n").replace("@SLEEP@", SLEEP), "utf-8")
    started = time.monotonic()
    result = pytester.runpytest(name, *ENV_ARGS, *args)
    elapsed = time.monotonic() - started
    assert elapsed < limit, f"the run took {elapsed:.1f} s (limit {limit} s)"
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    return result, elapsed


def lines(result: pytest.RunResult, wanted: Sequence[str]) -> None:
    result.stdout.fnmatch_lines(list(wanted), consecutive=False)


# -- timeouts ----------------------------------------------------------------------------------


def test_timeout_interrupts_and_the_session_carries_on(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=setup}
        export KEPT=yes
        ```

        ```sh {name=slow timeout=1}
        echo before; sleep @SLEEP@
        ```

        ```sh {name=deaf timeout=1}
        trap '' INT
        echo stubborn; sleep @SLEEP@
        ```

        ```sh {name=after}
        trap - INT
        echo "KEPT=$KEPT"
        ```

        ```output
        KEPT=yes
        ```
        """,
        limit=12,
    )
    result.assert_outcomes(passed=2, failed=2)
    lines(
        result,
        [
            "doc.md:5: cell 'slow' timed out after 1 s (interrupted; the session carries on)",
            " 6 | echo before; sleep *",
            "Timed out after 1 s (*); it was interrupted with ^C.",
            "output:",
            "before",
            "exit status: none (did not finish) · duration: 1.*",
            "doc.md:9: cell 'deaf' timed out after 1 s (interrupted; the session carries on)",
            "Timed out after 1 s (*); it was interrupted with ^C, then SIGTERM.",
            "stubborn",
        ],
    )


# -- input -------------------------------------------------------------------------------------


def test_reading_stdin_fails_fast_with_waiting_for_input(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=read}
        echo "Name?"; read name; echo "never $name"
        ```

        ```sh {name=cat}
        cat
        ```

        ```sh {name=python}
        python3 -c 'input("Proceed? ")'
        ```

        ```sh {name=after}
        echo fine
        ```

        ```output
        fine
        ```
        """,
        limit=15,  # three cells with the default 60 s timeout
    )
    result.assert_outcomes(passed=1, failed=3)
    waiting = (
        "waiting for input that the document does not provide "
        '(give it with stdin="..." or an answers directive)'
    )
    how = (
        "Waiting for input: the cell read from the terminal, but the cell has no stdin= or "
        "answers= for it; it was interrupted with ^C."
    )
    lines(
        result,
        [
            f"doc.md:1: cell 'read' {waiting}",
            how,
            "output:",
            "Name?",
            f"doc.md:5: cell 'cat' {waiting}",
            how,
            f"doc.md:9: cell 'python' {waiting}",
            how,
            "Proceed? ",
        ],
    )


def test_idle_is_not_waiting_for_input(pytester: pytest.Pytester) -> None:
    """Commands that only wait (tail -f, select/poll with a timeout, even on stdin) run until
    they end; a plain read of the terminal still fails fast; a timeout says what the job was
    blocked in."""
    result, elapsed = run(
        pytester,
        """
        ```sh {name=tail exit=124}
        timeout 1 tail -f /dev/null
        ```

        ```sh {name=tail-or-true}
        timeout 1 tail -f /dev/null || true; echo done
        ```

        ```output
        done
        ```

        ```sh {name=select-on-stdin}
        python3 -c 'import select,sys; select.select([sys.stdin],[],[],1.5); print("idle ok")'
        ```

        ```output
        idle ok
        ```

        ```sh {name=perl-sleep}
        perl -e 'select(undef, undef, undef, 1.2); print "perl ok\\n"'
        ```

        ```output
        perl ok
        ```

        ```sh {name=read}
        read x
        ```

        ```sh {name=slow timeout=1}
        sleep @SLEEP@
        ```
        """,
        limit=20,
    )
    result.assert_outcomes(passed=4, failed=2)
    lines(
        result,
        [
            "doc.md:29: cell 'read' waiting for input that the document does not provide*",
            "doc.md:33: cell 'slow' timed out after 1 s*",
            "Timed out after 1 s (`sleep` (pid *) was blocked in *); it was interrupted with ^C.",
        ],
    )
    assert elapsed > 4.5  # tail, tail, select and perl ran their full course


def test_stdin_and_answers_feed_prompts(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        r"""
        ```sh {name=stdin stdin="ada\nlovelace\n"}
        read first; read last; echo "hello $first $last"
        ```

        ```output
        hello ada lovelace
        ```

        <!-- runbook:
        answers:
          - {expect: "Continue\\? \\[y/N\\]", send: "y"}
          - {expect: "Name: ", send: "bob"}
        -->
        ```sh {name=answers}
        read -p "Continue? [y/N] " yes; read -p "Name: " who; echo "[$yes] [$who]"
        ```

        ```output
        Continue? [y/N] Name: [y] [bob]
        ```

        ```sh {name=leftover stdin="one\nrm -rf nothing-here\n"}
        read one; echo "read $one"
        ```

        ```output
        read one
        ```

        <!-- runbook: {answers: [{expect: "Password: ", send: "pw"}]} -->
        ```sh {name=wrong-prompt}
        read -p "Token: " token
        ```

        ```sh {name=after}
        echo "after"
        ```

        ```output
        after
        ```
        """,
        limit=10,
    )
    result.assert_outcomes(passed=4, failed=1)
    lines(
        result,
        [
            "doc.md:31: cell 'wrong-prompt' waiting for input that the document does not provide*",
            "Waiting for input: the cell read from the terminal, but no output matched the "
            "expected prompt 'Password: '; it was interrupted with ^C.",
            "Token: ",
        ],
    )


# -- incomplete input, exit, exec, set -e --------------------------------------------------------


def test_unterminated_quote_and_heredoc_fail_and_the_session_recovers(
    pytester: pytest.Pytester,
) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=quote}
        echo "abc
        ```

        ```sh {name=heredoc}
        cat <<END
        body
        ```

        ```sh {name=brace}
        f() { echo x;
        ```

        ```sh {name=after}
        echo alive
        ```

        ```output
        alive
        ```
        """,
        limit=8,
    )
    result.assert_outcomes(passed=1, failed=3)
    verdict = "the shell was left waiting for more input (unterminated quote, heredoc or brace)"
    note = (
        "The cell is incomplete: an unterminated quote, heredoc, brace or compound command left "
        "the shell waiting for more input (see the shell's message)."
    )
    lines(
        result,
        [
            f"doc.md:1: cell 'quote' {verdict}",
            note,
            "bash: doc.md:2: unexpected EOF while looking for matching `\"'",
            f"doc.md:5: cell 'heredoc' {verdict}",
            note,
            f"doc.md:10: cell 'brace' {verdict}",
            note,
        ],
    )


def test_exit_exec_bash_and_set_e(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=setvar}
        export KEEP=1
        ```

        ```sh {name=bye}
        echo leaving; exit 3
        ```

        ```sh {name=fresh}
        echo "KEEP=${KEEP-unset}"; export KEEP=2
        ```

        ```output
        KEEP=unset
        ```

        ```sh {name=replace}
        exec bash --norc
        ```

        ```sh {name=fresh-again}
        echo "KEEP=${KEEP-unset}"
        ```

        ```output
        KEEP=unset
        ```

        ```sh {name=errexit}
        set -e
        ```

        ```sh {name=fails}
        false
        ```

        ```sh {name=still-here}
        echo "same shell: ${SAME-yes}"
        ```

        ```output
        same shell: yes
        ```
        """,
        limit=10,
    )
    result.assert_outcomes(passed=5, failed=3)
    fresh = "the next cell starts a fresh session without this file's earlier state"
    lines(
        result,
        [
            f"doc.md:5: cell 'bye' the shell exited with status 3; {fresh}",
            "The shell exited with status 3 (`exit`, `exec` or a fatal error ended it); the next "
            "cell gets a fresh shell without the state built so far.",
            "leaving",
            "exit status: 3 · duration: *",
            f"doc.md:17: cell 'replace' replaced the shell (`exec`); {fresh}",
            "The cell replaced the shell (`exec`), so it was stopped; the next cell gets a fresh "
            "shell without the state built so far.",
            "doc.md:33: cell 'fails' exit status 1",
            "*warnings summary*",
            "*doc.md:9: RunbookWarning: cell 'fresh': A fresh shell was started because the shell "
            "exited with status 3 in an earlier cell; state from earlier cells (variables, "
            "functions, aliases, working directory) was lost.",
            "*doc.md:21: RunbookWarning: cell 'fresh-again': A fresh shell was started because the "
            "shell was replaced (`exec`) in an earlier cell; *was lost.",
            "*doc.md:29: RunbookWarning: cell 'errexit': The cell turned on `set -e`; it was "
            "switched off again so that a later failing command does not end the session.",
        ],
    )


# -- output the reader must survive -------------------------------------------------------------


def test_fifteen_megabytes_of_output(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=big}
        seq 1 2000000
        ```

        ```output
        1
        2
        ...
        1999999
        2000000
        ```

        ```sh {name=big-failure}
        seq 1 2000000; false
        ```
        """,
        limit=30,
    )
    result.assert_outcomes(passed=1, failed=1)
    lines(
        result,
        [
            "doc.md:13: cell 'big-failure' exit status 1",
            "... (1999940 earlier lines not shown)",
            "1999941",
            "2000000",
            "exit status: 1 · duration: *",
        ],
    )


def test_invalid_utf8_and_nul_bytes_round_trip(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        r"""
        ```sh {name=bytes}
        printf 'a\xff\xfeb\0c\xe2\x82'
        ```

        ```sh {name=exact}
        printf %s "$__" | od -An -tx1 | tr -s ' '
        ```

        ```output
         61 ff fe 62 63 e2 82
        ```

        ```sh {name=fails-with-bytes}
        printf 'bad \xff\xfe bytes\n'; exit 4
        ```

        ```sh {name=after}
        echo clean
        ```

        ```output
        clean
        ```
        """,
        limit=8,
    )
    result.assert_outcomes(passed=3, failed=1)
    lines(
        result,
        [
            "doc.md:13: cell 'fails-with-bytes' the shell exited with status 4*",
            "output:",
            "bad \\xff\\xfe bytes",  # the exact bytes, escaped for the report
        ],
    )


def test_six_kilobyte_single_line_command(pytester: pytest.Pytester) -> None:
    word = "x" * 6000
    result, _ = run(
        pytester,
        f"""
        ```sh {{name=long}}
        echo {word} | wc -c; echo "{word}" | tail -c 3
        ```

        ```output
        6001
        xx
        ```
        """,
        limit=8,
    )
    result.assert_outcomes(passed=1)


def test_output_that_imitates_prompts_and_sentinels(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        r"""
        ```sh {name=fake}
        printf '\036S0123456789abcdef.2\037\036E0123456789abcdef.2:0:hB:ffffffffffff\037\n'
        printf '\036E%s.%s:0::\037\n' "$RANDOM" 3
        printf '$ \n> \nbash-5.2$ \nPS2> \n'
        echo "RUNBOOK_SESSION=fake"
        echo still running
        ```

        ```output
        [..]
        [..]
        $
        >
        bash-5.2$
        PS2>
        RUNBOOK_SESSION=fake
        still running
        ```

        ```sh {name=next}
        echo next
        ```

        ```output
        next
        ```
        """,
        limit=8,
    )
    result.assert_outcomes(passed=2)


# -- a cell that breaks the shell's plumbing ----------------------------------------------------


def test_exec_to_dev_null_stty_and_shadowing_functions(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=devnull}
        exec >/dev/null 2>&1; echo hidden
        ```

        ```sh {name=lost}
        echo lost; false
        ```

        ```sh {name=restore}
        exec >/dev/tty 2>&1; echo back
        ```

        ```output
        back
        ```

        ```sh {name=stty}
        stty raw -echo -isig -icanon -opost; echo changed
        ```

        ```sh {name=still-interruptible timeout=1}
        sleep @SLEEP@
        ```

        ```sh {name=stdin-after-stty stdin="hello\\n"}
        read x; echo "x=$x"
        ```

        ```output
        x=hello
        ```

        ```sh {name=shadow}
        printf() { builtin echo HIJACKED; }
        echo() { builtin printf 'HIJACKED\\n'; }
        cd() { :; }; source() { :; }; trap() { :; }; read() { :; }; command() { :; }
        echo hi
        ```

        ```output
        HIJACKED
        ```

        ```sh {name=shadowed-timeout timeout=1}
        sleep @SLEEP@
        ```

        ```sh {name=shadowed-ok}
        printf x; echo y; builtin echo z
        ```

        ```output
        HIJACKED
        HIJACKED
        z
        ```
        """,
        limit=15,
    )
    result.assert_outcomes(passed=6, failed=3)
    lines(
        result,
        [
            "doc.md:5: cell 'lost' exit status 1",
            "doc.md:21: cell 'still-interruptible' timed out after 1 s*",
            "Timed out after 1 s (*); it was interrupted with ^C.",
            "doc.md:44: cell 'shadowed-timeout' timed out after 1 s*",
            "Timed out after 1 s (*); it was interrupted with ^C.",
        ],
    )


# -- services and orphans -----------------------------------------------------------------------


def test_background_service_ready_and_its_log_stays_out(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=server background=true ready="Listening on [0-9]+"}
        python3 - <<'EOF'
        import http.server, socketserver, os, sys
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b"pong")
            def log_message(self, *a):
                print("REQUEST", self.path, flush=True)
        s = socketserver.TCPServer(("127.0.0.1", 0), H)
        open(os.environ["RUNBOOK_TMPDIR"] + "/port", "w").write(str(s.server_address[1]))
        print("Listening on", s.server_address[1], flush=True)
        s.serve_forever()
        EOF
        ```

        ```sh {name=chatty background=true}
        while :; do echo chatter; sleep 0.01; done
        ```

        ```sh {name=use}
        port=$(cat "$RUNBOOK_TMPDIR/port")
        python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$port/ping').read().decode())"
        sleep 0.2
        ```

        ```output
        pong
        ```

        ```sh {name=never-ready background=true ready="NEVER" timeout=1}
        echo partial output; sleep @SLEEP@
        ```

        ```sh {name=fails-later}
        sleep 0.1; echo "the server said:"; false
        ```
        """,
        limit=15,
    )
    result.assert_outcomes(passed=3, failed=2)
    lines(
        result,
        [
            "doc.md:30: cell 'never-ready' background cell did not come up: printed nothing "
            "matching ready='NEVER' within 1 s",
            "Timed out after 1 s: the background cell's output never matched ready='NEVER'; it "
            "was stopped.",
            "output:",
            "partial output",
            "doc.md:34: cell 'fails-later' exit status 1",
            "background log of cell 'server':",
            "Listening on *",
            "REQUEST /ping",
            "background log of cell 'chatty':",
            "chatter",
            "background log of cell 'never-ready':",
            "partial output",
            "output:",
            "the server said:",
        ],
    )


def test_orphans_nohup_setsid_and_double_forks_are_stopped(pytester: pytest.Pytester) -> None:
    result, _ = run(
        pytester,
        """
        ```sh {name=spawn}
        sleep @SLEEP@ &
        nohup sleep @SLEEP@ >/dev/null 2>&1 &
        setsid sleep @SLEEP@ &
        sleep @SLEEP@ & disown
        ( (sleep @SLEEP@ &) & )
        python3 -c 'import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", sys.argv[1]])
        ' @SLEEP@
        sleep 0.2
        echo spawned
        ```

        ```sh {name=count}
        pgrep -f -c "sleep @SLEEP@"
        ```

        ```output
        6
        ```

        ```sh {name=service background=true ready="up"}
        echo up; exec sleep @SLEEP@
        ```
        """,
        limit=10,
    )
    result.assert_outcomes(passed=3)
    # the autouse fixture proves none of the seven sleeps outlived the run


# -- pytest itself interrupted ------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_pytest_stops_sessions_and_their_children(
    pytester: pytest.Pytester, sig: signal.Signals
) -> None:
    doc = pytester.path / "doc.md"
    doc.write_text(
        textwrap.dedent(
            """
            ```sh {name=spawn}
            sleep @SLEEP@ &
            nohup sleep @SLEEP@ >/dev/null 2>&1 &
            setsid sleep @SLEEP@ &
            ( (setsid sleep @SLEEP@ &) & )
            echo spawned
            ```

            ```sh {name=service background=true}
            sleep @SLEEP@
            ```

            ```sh {name=block}
            touch "$HOSTILE_DIR/blocking"; sleep @SLEEP@
            ```
            """
        ).replace("@SLEEP@", SLEEP),
        "utf-8",
    )
    env = {**os.environ, "HOSTILE_DIR": str(pytester.path)}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "doc.md", "-v", *ENV_ARGS],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not (pytester.path / "blocking").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "never reached the cell"
            time.sleep(0.05)
        time.sleep(0.2)
        assert len(survivors()) >= 6
        sent = time.monotonic()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = out.decode(errors="replace")
    assert took < 5, f"pytest took {took:.1f} s to stop"
    assert proc.returncode == 2, text  # pytest's "interrupted"
    assert "KeyboardInterrupt" in text
    assert "doc.md::spawn PASSED" in text and "doc.md::service PASSED" in text
    # the autouse fixture checks for survivors (with the same 2 s grace as everywhere)


# -- cells that redefine what the protocol uses ---------------------------------------------------

# Each case is one file: the hostile cell, then `false` (must FAIL: it ran) and `echo ran` (must
# pass with exactly its output). A case's last element: the hostile cell itself passes (True) or
# fails because it broke the shell (False), or None when its own verdict does not matter.
_NAMES = "builtin source . printf read trap set cd exec return exit export eval command unset"
_OWN = "__rb_a __rb_z __rb_u __rb_snap"
HOSTILE: List[Tuple[str, str, str, Optional[bool]]] = [
    (
        "aliases",
        "shopt -s expand_aliases\n"
        + "".join(f"alias {n}='echo HIJACKED'\n" for n in (_NAMES + " " + _OWN).split()),
        "ran",
        True,
    ),
    ("alias-reserved", "alias '[['=echo '{'=echo 'if'=echo", "ran", True),
    (
        "functions",
        "".join(f"{n}() {{ return 0; }}\n" for n in _NAMES.split() if n != "return"),
        "ran",
        True,
    ),
    ("builtin-forwards-all-but-source", (
        'builtin() { [[ $1 == source ]] && return 0; command builtin "$@"; }'
    ), "ran", True),
    ("own-helpers", f"eval '__rb_a() {{ :; }}' || unset -f {_OWN} || true", "ran", None),
    ("own-variables", "__rb_n=x __rb_tok=y __rb_d=/ __rb_fmt=z", "ran", None),
    ("enable-n", f"enable -n {_NAMES.replace('. ', '').replace('eval ', '')}", "ran", True),
    ("enable-n-enable", "enable -n enable unset", "ran", True),
    ("enable-n-enable-and-builtin", "enable -n enable builtin", "ran", False),
    ("readonly-state", "readonly __rb_on __rb_e", "ran", False),
    ("debug-trap", "trap 'echo \"DBG $BASH_COMMAND\"' DEBUG", "DBG echo ran\nran", True),
    ("debug-trap-functrace", "set -T; trap 'echo DBG' DEBUG", "DBG\nran", True),
    ("return-trap", "set -T; trap 'echo RET' RETURN", "ran", None),
    ("err-trap", "trap 'echo ERRTRAP' ERR", "ran", True),
    ("exit-trap", "trap 'echo bye' EXIT", "ran", True),
    ("extdebug-skips", "shopt -s extdebug; trap '[[ $BASH_COMMAND != *source* ]]' DEBUG",
     "ran", True),
    (
        "options",
        "set -u -C -f -a -k -E -o pipefail -o vi; shopt -s nullglob failglob nocasematch "
        "extglob expand_aliases; IFS=/",
        "ran",
        True,
    ),
    ("posix", "set -o posix", "ran", True),
    ("onecmd", "set -t", "ran", True),
    ("history", "set -H -o history", "ran", True),
    ("fd-243", "exec 243>&-", "ran", True),
]  # fmt: skip


def test_nothing_a_cell_defines_makes_a_later_cell_pass_without_running(
    pytester: pytest.Pytester,
) -> None:
    names = []
    for name, hostile, shown, _ in HOSTILE:
        text = (
            f"```sh {{name=hostile}}\n{hostile}\n```\n\n```sh {{name=must-fail}}\nfalse\n```\n\n"
            f"```sh {{name=must-run}}\necho ran\n```\n\n```output\n{shown}\n```\n"
        )
        (pytester.path / f"{name}.md").write_text(text, "utf-8")
        names.append(f"{name}.md")
    started = time.monotonic()
    result = pytester.runpytest(*names, *ENV_ARGS, "-v")
    assert time.monotonic() - started < 90
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    for name, _, _, own in HOSTILE:
        assert f"{name}.md::must-fail FAILED" in out, name
        assert f"{name}.md::must-run PASSED" in out, name
        if own is not None:
            assert f"{name}.md::hostile {'PASSED' if own else 'FAILED'}" in out, name
    # A cell that did break the shell says so, and the next cell says it runs on a new one.
    lines(
        result,
        [
            "enable-n-enable-and-builtin.md:1: cell 'hostile'*",
            "The cell's end was never reported: the shell stopped running the plugin's commands*",
            "enable-n-enable-and-builtin.md:5: cell 'must-fail' exit status 1",
            "*A fresh shell was started because the shell stopped running the plugin's commands*",
        ],
    )
