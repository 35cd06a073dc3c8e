"""Framing between Python and the session's bash: setup script, per-cell line, sentinels.

* Cells are never typed into the PTY (4095-byte line limit, TAB completion, history expansion,
  ``read`` eating the next line). Each cell is written to a 0600 file in a private 0700
  directory (on ``/dev/shm`` when possible) and one short line is sent: it prints a START
  sentinel to ``/dev/tty``, sources the file (or runs it through an interpreter argv) and
  prints an END sentinel with ``$?``, ``$-`` and a token held in a non-exported variable.
* The sentinels carry a random nonce that never appears in the environment, so no output of
  a cell can fake them; writing them to ``/dev/tty`` (a descriptor kept open as 243) keeps
  them working after ``exec >/dev/null``. A missing token in END means the shell was replaced
  (``exec bash``).
* Nothing a cell defines can make a later cell pass without running. Every command word of
  the line (and of trap texts, parsed late) is backslash-quoted, so no alias applies; our
  helpers and variables are readonly; every helper first removes functions named ``builtin``
  or ``enable`` (special builtins beat functions in POSIX mode) and re-enables the builtins it
  uses (``enable -n``); status and flags reach END as arguments, not variables a cell could
  freeze; ``set -t`` is undone. The cell runs only after START was printed, so a shell the
  cell did break (``enable -n enable builtin``, a readonly ``__rb_on``) shows as a shell back
  at its prompt with no START or END, which the session reports and replaces.
* Once a cell mentioned ``DEBUG`` or ``RETURN``, those traps are saved and cleared around our
  own commands (their output would land in the cell's): DEBUG comes back as the first command
  of the cell file (``TRAP_PREFIX``, on line 1 so line numbers hold), RETURN after END. Known
  residue: a failing errexit cell's DEBUG trap also runs for the ERR trap's first commands.
* Per-cell errexit (Runme's ``set -e -o pipefail``) is an ERR trap that ``return``s out of
  the sourced cell, plus ``errtrace`` and ``pipefail``; ``set -e`` itself would kill the
  session. They are put back as they were after the cell (a user's ERR trap is saved to a
  file first, only once a cell mentioned ``ERR``). The trap records the failing command and
  its ``PIPESTATUS``.
* ``stdin=`` text is a file the cell reads as its standard input (not a terminal, as from a
  pipe). With ``answers=``, the END helper reads the terminal up to an ack line Python sends,
  so unread input is discarded and can never run as a command.
* A resync line (``R`` sentinel) proves the shell is back at its prompt after an interrupt.
* ``__rb_snap`` writes the shell's physical directory and exported environment (``pwd -P``
  and ``env -0``, NUL-separated) to a private file, for a Python cell to adopt.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import select
import shlex
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

SEP = b"\x1e"
EOS = b"\x1f"
MAX_LINE = 900  # stay below macOS's 1024-byte canonical line (Linux: 4095)
_STRAY_CAP = 65536
_ANSWER_WINDOW = 8192  # characters of output kept for matching answer prompts
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_INTERPRETER_EXT = {
    "python": ".py",
    "python3": ".py",
    "pypy3": ".py",
    "node": ".js",
    "deno": ".ts",
    "bun": ".ts",
    "ts-node": ".ts",
    "tsx": ".ts",
    "ruby": ".rb",
    "perl": ".pl",
    "php": ".php",
    "lua": ".lua",
    "Rscript": ".R",
    "go": ".go",
    "bash": ".sh",
    "sh": ".sh",
    "zsh": ".sh",
    "dash": ".sh",
}

# -- shell-side helpers, defined once per shell ------------------------------------------------
# __rb_a SEQ ERREXIT CWD SAVETRAP: remember what the cell may change, print START (only once
# all of that worked: no START, no cell).
# __rb_z KIND SEQ STATUS FLAGS [ACK]: undo our per-cell settings, print END (or Resync) with the
# cell's $? and $- (arguments: a cell can make any variable of ours readonly) and the token; with
# ACK, discard terminal input up to the ack line Python sends, so unread stdin= text can
# never run as a command.
# __rb_snap: the physical directory and the exported environment into "$__rb_d/snapshot"
# (`command -p`: neither a function nor the user's PATH decides which `env` runs).
_BASH_INIT = r"""
builtin set +o history +H
builtin unset PROMPT_COMMAND
PS1= PS2= PS0=
PS4=$'+\016 '
__rb_n=@NONCE@ __rb_tok=@TOK@ __rb_d=@DIR@ __rb_e=0 __rb_c=0 __rb_r=0 __rb_on=
exec 243>/dev/tty
__rb_fmt='\036%s%s.%s:%s:%s:%s\037'
# Subshells (pipeline parts, $(...)) cannot `return`: they exit, as under `set -e`.
# A trap's text is parsed when it runs, after the cell's aliases: hence the backslashes.
# __rb_s is "STATUS PIPESTATUS...", taken in one word before any command resets them
# (`[@]` in an assignment joins with spaces whatever IFS is); the record says which
# command of a pipeline failed, so a report blames pipefail only when it was the reason.
__rb_trapb='if [[ -n ${__rb_on-} ]]; then
  if [[ ${BASHPID:-$$} != "$$" ]]; then \builtin exit "${__rb_s%% *}"
  elif [[ -n ${FUNCNAME-}${BASH_SOURCE-} ]]; then
    \builtin printf "%s\n%s\n%s" "$__rb_q" "${__rb_s#* }" "$BASH_COMMAND" \
      >|"$__rb_d/failed" 2>/dev/null
    \builtin return "${__rb_s%% *}"
  fi
fi'
__rb_trap='__rb_s="$? ${PIPESTATUS[@]}"
'$__rb_trapb
# With a DEBUG trap about, the first thing the ERR trap does is turn it off (its own commands
# are not the cell's); the line puts it back after END (see _RESTORE_RETURN).
__rb_trapg='__rb_s="$? ${PIPESTATUS[@]}"
\builtin trap - DEBUG
\builtin printf 1 >|"$__rb_d/dbgoff"
'$__rb_trapb
# Special builtins come before functions in POSIX mode: functions named `builtin` or `enable`
# go, and the builtins we use are enabled again (`enable -n`).
__rb_u() {
  if [[ -o posix ]]; then
    unset -f builtin enable
    enable builtin enable unset source printf read trap set cd exec return exit pwd :
  else
    POSIXLY_CORRECT=y
    unset -f builtin enable
    enable builtin enable unset source printf read trap set cd exec return exit pwd :
    unset POSIXLY_CORRECT
  fi
}
__rb_a() {
  __rb_u
  [[ -t 243 ]] || exec 243>/dev/tty
  __rb_e=$2 __rb_c=$3 __rb_r=$4 __rb_q=$1
  if [[ $3 == 1 ]]; then __rb_pwd=$PWD __rb_opwd=${OLDPWD-}; fi
  if [[ $2 == 1 ]]; then
    __rb_m=$- __rb_p=:$SHELLOPTS:
    if [[ ${5-} == 1 ]]; then
      builtin trap -- "$__rb_trapg" ERR || builtin return 1
    else
      builtin trap -- "$__rb_trap" ERR || builtin return 1
    fi
    builtin set -E -o pipefail || builtin return 1
    __rb_on=1
  fi
  builtin printf '\036S%s.%s\037' "$__rb_n" "$1" >&243 ||
    builtin printf '\036S%s.%s\037' "$__rb_n" "$1" >/dev/tty
}
__rb_z() {
  __rb_on=  # our ERR trap must not end this function early
  __rb_u
  builtin set +et  # -t (onecmd) would end the shell after this line
  if [[ $__rb_e == 1 ]]; then
    __rb_on= __rb_e=0
    builtin trap - ERR
    if [[ $__rb_r == 1 ]]; then builtin source "$__rb_d/trap"; fi
    [[ $__rb_m == *E* ]] || builtin set +E
    [[ $__rb_p == *:pipefail:* ]] || builtin set +o pipefail
  fi
  if [[ $__rb_c == 1 ]]; then
    __rb_c=0
    builtin cd -- "$__rb_pwd" && OLDPWD=$__rb_opwd
  fi
  [[ -t 243 ]] || exec 243>/dev/tty
  builtin printf "$__rb_fmt" "$1" "$__rb_n" "$2" "$3" "$4" "${__rb_tok-}" >&243 ||
    builtin printf "$__rb_fmt" "$1" "$__rb_n" "$2" "$3" "$4" "${__rb_tok-}" >/dev/tty
  if [[ ${5-} ]]; then
    until builtin read -r __rb_k </dev/tty; [[ $__rb_k == "$5" ]]; do builtin :; done
  fi
}
__rb_snap() {
  { builtin pwd -P; builtin printf '\0'; builtin command -p env -0; } >|"$__rb_d/snapshot"
}
# A cell can neither redefine the helpers nor change what they print.
builtin readonly -f __rb_u __rb_a __rb_z __rb_snap
builtin readonly __rb_n __rb_tok __rb_d __rb_fmt __rb_trapb __rb_trap __rb_trapg
"""

# The shell moves to its directory itself (posix_spawn cannot), leaving OLDPWD as it was.
_CD_FIRST = r"""
__rb_o=${OLDPWD-} __rb_os=${OLDPWD+x}
cd -P -- @CWD@ || exit 97
case $__rb_os in x) OLDPWD=$__rb_o ;; *) unset OLDPWD ;; esac
"""


def q(text: str) -> str:
    return shlex.quote(text)


def init_script(cwd: str, nonce: bytes, token: str, cell_dir: str) -> str:
    """What the shell runs before any cell: move to ``cwd``, define the helpers."""
    init = _CD_FIRST.replace("@CWD@", q(cwd)) + _BASH_INIT
    return (
        init.replace("@NONCE@", nonce.decode())
        .replace("@TOK@", token)
        .replace("@DIR@", q(cell_dir))
    )


def ready_line(seq: int) -> str:
    """The empty exchange whose END says the setup has run."""
    return f'{{ \\__rb_a {seq} 0 0 0; \\__rb_z E {seq} "$?" "$-"; }} 2>/dev/null\n'


def snapshot_line(seq: int) -> bytes:
    """One exchange that writes the snapshot file; the cell reader sees START and END."""
    calls = f'\\__rb_a {seq} 0 0 0 && \\__rb_snap; \\__rb_z E {seq} "$?" "$-"'
    line = f"{{ {calls}; }} >/dev/null 2>&1\n"
    return line.encode()


def resync_line(nonce: bytes, seq: int) -> Tuple[bytes, bytes]:
    """(the R sentinel's prefix, the line that prints it once the shell reads again)."""
    marker = SEP + b"R" + nonce + b"." + str(seq).encode() + b":"
    fallback = f"\\036R{nonce.decode()}.{seq}:127::\\037"
    calls = f'\\__rb_z R {seq} "$?" "$-" || \\builtin printf \'{fallback}\' >/dev/tty'
    line = f"\x15{{ {calls}; }} >/dev/null 2>&1\n"
    return marker, line.encode()


def skips_rcfile(args: Sequence[str]) -> bool:
    """Flags under which bash does not read our ``--rcfile``: a login shell (``-l``,
    ``--login``, ``-il``), ``--norc``, ``--posix``, or an rc file of the user's own."""
    return any(
        a in ("--login", "--norc", "--posix", "--rcfile", "--init-file")
        or (a.startswith("-") and not a.startswith("--") and "l" in a)
        for a in args
    )


def private_cell_root() -> Optional[str]:
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return None


def write_file(path: str, data: bytes, *, reuse: bool = False) -> None:
    # Reusing a name (in our private 0700 directory) saves an unlink per cell; O_NOFOLLOW and
    # O_EXCL for fresh names keep us from writing through anything planted there anyway.
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_TRUNC if reuse else os.O_EXCL
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def interpreter_ext(interpreter: Optional[Sequence[str]]) -> str:
    """The file name extension a script for ``interpreter`` gets (some insist on one)."""
    if interpreter is None:
        return ".sh"
    if not interpreter:
        raise ValueError("interpreter must be a non-empty argv sequence")
    name = os.path.basename(interpreter[0])
    return _INTERPRETER_EXT.get(name) or _INTERPRETER_EXT.get(re.sub(r"[0-9.]+$", "", name), "")


def cell_bytes(source: str) -> bytes:
    if source and not source.endswith("\n"):
        source += "\n"
    return source.encode("utf-8", "surrogateescape")


# With DEBUG/RETURN traps about, our own commands must not run them (their output would be the
# cell's): they are saved and cleared before START, DEBUG comes back as the cell file's first
# command (see ``TRAP_PREFIX``), RETURN after END unless the cell set one of its own.
_SAVE_TRAPS = (
    '\\builtin trap -p DEBUG >|"$__rb_d/dbg"; \\builtin trap -p RETURN >|"$__rb_d/ret"; '
    "\\builtin trap - DEBUG RETURN; "
)
_RESTORE_RETURN = (
    '; \\builtin trap -p RETURN >|"$__rb_d/ret2"; '
    '[[ -s $__rb_d/ret2 ]] || \\builtin source "$__rb_d/ret"'
    '; [[ ! -s $__rb_d/dbgoff ]] || { \\builtin source "$__rb_d/dbg"; >|"$__rb_d/dbgoff"; }'
)
# On the cell's first line, so line numbers stay the cell's own.
TRAP_PREFIX = b'{ \\builtin source "$__rb_d/dbg"; } >/dev/null 2>&1; '


def _unaliased(word: str) -> str:
    """A command word no alias can replace (a quoted word is never alias-expanded)."""
    return word if word.startswith(("'", '"', "\\")) else "\\" + word


def cell_line(
    seq: int,
    path: str,
    cwd: Optional[str],
    interpreter: Optional[Sequence[str]],
    errexit: bool,
    save_trap: bool,
    exports: Optional[Mapping[str, str]],
    cell_dir: str,
    ack: str,
    quiet: bool,
    guard_traps: bool = False,
    stdin_path: str = "",
) -> bytes:
    """The one line that runs the cell file ``path``; ``cwd`` is already absolute.

    Every command word is backslash-quoted (no alias applies), our helpers are readonly
    functions and the cell runs only once ``__rb_a`` printed START, so nothing a cell defines
    can make a later cell pass without running: at worst START never comes and the session
    notices a broken shell. ``quiet``: xtrace is known to be off, so the START call needs no
    ``2>/dev/null`` (which costs bash an open and nine more system calls). ``guard_traps``:
    a DEBUG or RETURN trap may be set (``TRAP_PREFIX`` then starts the cell file).
    ``stdin_path``: the file the cell's commands read as standard input, not the terminal.
    """
    pre = ""
    if exports:
        lines = []
        for name, value in exports.items():
            if not _NAME_RE.match(name):
                raise ValueError(f"cannot export {name!r}: not a valid variable name")
            lines.append(f"\\builtin export {name}={q(value.replace(chr(0), ''))}")
        snippet = "; ".join(lines)
        if len(snippet) < 400 and snippet.isprintable():
            pre += snippet + "; "
        else:
            env_path = os.path.join(cell_dir, "exports.sh")
            data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
            write_file(env_path, data, reuse=True)
            pre += f"\\builtin source {q(env_path)}; "
    if save_trap:
        # Not inside __rb_a: a function without errtrace does not see the ERR trap.
        pre += '\\builtin trap -p ERR >|"$__rb_d/trap"; '
    pre += f"\\__rb_a {seq} {int(errexit)} {int(cwd is not None)} {int(save_trap)}"
    if guard_traps:
        pre = _SAVE_TRAPS + pre + " 1"
    if interpreter is not None:
        words = [q(a) for a in interpreter]
        cmd = " ".join([_unaliased(words[0]), *words[1:], q(path)])
    else:
        cmd = f"\\builtin source {q(path)}"
    if stdin_path:
        cmd += f" <{q(stdin_path)}"
    if cwd is not None:
        cmd = f"\\builtin cd -P -- {q(cwd)} && {cmd}"
    post = f'\\__rb_z E {seq} "$?" "$-"' + (f" {ack}" if ack else "")
    if guard_traps:
        post += _RESTORE_RETURN
        if interpreter is not None:  # no cell file of ours to put DEBUG back
            post += '; \\builtin source "$__rb_d/dbg"'
    # The cell may turn xtrace on (or functrace, with a DEBUG trap): the call after it always
    # hides what that prints.
    start = f"{pre} && " if quiet and not guard_traps else f"{{ {pre}; }} 2>/dev/null && "
    hush = ">/dev/null 2>&1" if guard_traps else "2>/dev/null"
    line = f"{start}{cmd}; {{ {post}; }} {hush}\n"
    data = line.encode("utf-8", "surrogateescape")
    if len(data) > MAX_LINE:
        raise ValueError(
            "the cell's cwd or interpreter is too long for one terminal line "
            f"({len(data)} bytes; the limit is {MAX_LINE})"
        )
    return data


class CellReader:
    """Reader state for one command line: START, output, END (or a resync sentinel)."""

    def __init__(
        self,
        nonce: bytes,
        seq: int,
        on_output: Optional[Callable[[str], None]],
        answers: Sequence[Tuple[str, str]],
    ) -> None:
        tag = nonce + b"." + str(seq).encode()
        self.start = SEP + b"S" + tag + EOS
        self.end = SEP + b"E" + tag + b":"
        self.started = False
        self.fields: Optional[List[bytes]] = None  # END's status, flags ($-), token
        self.chunks: List[bytes] = []
        self.seq = seq
        self.errexit = False  # run under our per-cell errexit (the ERR trap names what failed)
        self.sourced = False  # the cell ran in the session shell itself (not interpreter=)
        self.source = b""  # its text, when sourced
        self.on_output = on_output
        self.answers = [
            (re.compile(p), (t + "\n").encode("utf-8", "surrogateescape")) for p, t in answers
        ]
        self.window = ""
        self.decoder = (
            codecs.getincrementaldecoder("utf-8")("surrogateescape")
            if on_output is not None or answers
            else None
        )
        self.callback_error: Optional[BaseException] = None
        self.to_send: List[bytes] = []

    def emit(self, data: bytes) -> None:
        if not data:
            return
        self.chunks.append(data)
        if self.decoder is None:
            return
        text = self.decoder.decode(data)
        if self.on_output is not None and text and self.callback_error is None:
            try:
                self.on_output(text)
            except Exception as exc:  # a broken reporter must not wedge the shell
                self.callback_error = exc
        if self.answers:
            self.window = (self.window + text)[-_ANSWER_WINDOW:]
            while self.answers:
                m = self.answers[0][0].search(self.window)
                if m is None:
                    break
                self.to_send.append(self.answers.pop(0)[1])
                self.window = self.window[m.end() :]


class Channel:
    """The PTY master of one shell: non-blocking writes and reads, sentinels found in between.

    Output outside any cell (late job output, a prompt a cell set) is kept as ``stray``.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.stray = bytearray()
        self._poller: Any = None
        if fd >= 0:
            os.set_blocking(fd, False)
            if sys.platform.startswith("linux"):
                self._poller = select.poll()
                self._poller.register(fd, select.POLLIN)

    def send(self, data: bytes) -> None:
        """Write everything, draining output meanwhile so a full PTY cannot deadlock us."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                chunk = self.read(0.01)
                if chunk:
                    self.buf += chunk
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return  # the shell is gone; the reader will notice
                raise

    def read(self, wait: float) -> Optional[bytes]:
        """Up to 64 KiB of output within ``wait`` seconds; b"" if none; None at end of file."""
        if wait > 0:
            if self._poller is not None:
                ready = self._poller.poll(wait * 1000.0)
            else:
                ready = select.select([self.fd], [], [], wait)[0]
            if not ready:
                return b""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return None
            raise
        return data if data else None

    def keep_stray(self, data: bytes) -> None:
        self.stray += data
        if len(self.stray) > _STRAY_CAP:
            del self.stray[: len(self.stray) - _STRAY_CAP]

    def flush_writes(self, cell: CellReader) -> None:
        while cell.to_send:
            self.send(cell.to_send.pop(0))

    @staticmethod
    def _holdback(buf: bytearray, markers: Sequence[bytes]) -> int:
        """Index from which ``buf`` might be the start of a marker split across reads."""
        longest = max(len(m) for m in markers)
        k = buf.rfind(SEP, max(0, len(buf) - longest))
        while k >= 0:
            tail = bytes(buf[k:])
            if any(m.startswith(tail) for m in markers):
                return k
            k = buf.rfind(SEP, max(0, len(buf) - longest), k)
        return len(buf)

    def parse(self, cell: CellReader, resync: Optional[bytes]) -> Optional[List[bytes]]:
        """Consume buffered output; returns the resync fields once ``resync`` was seen."""
        buf = self.buf
        while True:
            if not cell.started:
                markers = [cell.start] + ([resync] if resync else [])
                i = buf.find(cell.start)
                j = buf.find(resync) if resync else -1
                if j >= 0 and (i < 0 or j < i):
                    self.keep_stray(bytes(buf[:j]))
                    del buf[:j]
                    return self._fields(resync or b"")
                if i < 0:
                    cut = self._holdback(buf, markers)
                    self.keep_stray(bytes(buf[:cut]))
                    del buf[:cut]
                    return None
                self.keep_stray(bytes(buf[:i]))
                del buf[: i + len(cell.start)]
                cell.started = True
                continue
            if cell.fields is None:
                markers = [cell.end] + ([resync] if resync else [])
                i = buf.find(cell.end)
                j = buf.find(resync) if resync else -1
                if j >= 0 and (i < 0 or j < i):
                    cell.emit(bytes(buf[:j]))
                    del buf[:j]
                    return self._fields(resync or b"")
                if i < 0:
                    cut = self._holdback(buf, markers)
                    cell.emit(bytes(buf[:cut]))
                    del buf[:cut]
                    return None
                cell.emit(bytes(buf[:i]))
                del buf[:i]
                fields = self._fields(cell.end)
                if fields is None:
                    return None
                cell.fields = fields
                continue
            if resync is None:
                return None
            j = buf.find(resync)
            if j < 0:
                cut = self._holdback(buf, [resync])
                self.keep_stray(bytes(buf[:cut]))
                del buf[:cut]
                return None
            self.keep_stray(bytes(buf[:j]))
            del buf[:j]
            return self._fields(resync)

    def _fields(self, prefix: bytes) -> Optional[List[bytes]]:
        """Split ``prefix rc:flags:tok EOS`` at the start of the buffer, consuming it."""
        buf = self.buf
        j = buf.find(EOS, len(prefix))
        if j < 0:
            return None
        fields = bytes(buf[len(prefix) : j]).split(b":")
        del buf[: j + 1]
        while len(fields) < 3:
            fields.append(b"")
        return fields


def parse_snapshot(data: bytes) -> Tuple[str, Dict[str, str]]:
    """The working directory and environment a snapshot line's helper wrote (NUL-separated)."""
    where, _, rest = data.partition(b"\0")
    cwd = where[:-1] if where.endswith(b"\n") else where
    env: Dict[str, str] = {}
    for item in rest.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name != b"_":  # `_` is the path of `env` itself
            env[name.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return cwd.decode("utf-8", "surrogateescape"), env
