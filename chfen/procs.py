"""Background servers we start and stop from any process (Label Studio, the Prefect server):
a pid file, a liveness check that recognises our own process, a process-group stop, an
exclusive lock between `chfen` commands, and `ManagedProcess`, the life cycle both servers
share (start and wait for health, stop, status).

Children that must not outlive the command that started them (the embedded Prefect server, a
test's Label Studio) get a parent-death signal (`die_with_parent`, Linux) and a record under
the data root (`record_child`); `sweep_orphans` at the next start stops any such child whose
parent is gone (a SIGKILLed run, or a platform without the signal).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (two `chfen` commands starting a server at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class LockBusy(RuntimeError):
    """Another run holds a lock this one needs (and did not release it in time); says who."""


_SECRET_WORDS = ("token", "password", "secret", "key")


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line for messages: the program's name, and `k=v` arguments
    whose key names a secret shown as `k=***`."""
    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = Path(args[0]).name
    shown = []
    for arg in args:
        key, eq, _ = arg.partition("=")
        secret = eq and any(w in key.lower() for w in _SECRET_WORDS)
        shown.append(f"{key}=***" if secret else arg)
    return " ".join(shown)


def describe_holder(text: str) -> str:
    """A lock file's holder record as `pid P on host H (command, since T)`."""
    try:
        h = json.loads(text)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h["since"])))
        return f"pid {h['pid']} on host {h['host']} ({h['command']}, since {since})"
    except (ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


@contextmanager
def exclusive(
    path: Path,
    what: str,
    *,
    wait_s: float,
    on_wait: Callable[[str], None] | None = None,
    hint: str = "",
) -> Iterator[None]:
    """Hold the exclusive lock `path` (flock) for the block, writing who holds it (pid, host,
    command line, since) into the file; a run waiting for it can name the holder.

    Held by another process: tell `on_wait` once (naming the holder) and wait up to `wait_s`
    seconds, then raise `LockBusy` naming the holder (plus `hint`). The kernel releases the
    lock when its holder dies, even by SIGKILL, so a killed run's lock is taken over at once;
    the stale record in the file is overwritten.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # no truncation: it names the holder
    try:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = describe_holder(Path(path).read_text(errors="replace"))
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"{what} is in use by {holder}; it did not finish within {wait_s:.0f} s. "
                        f"Wait for it, or stop it{hint}"
                    ) from None
                if not told and on_wait is not None:
                    on_wait(f"waiting up to {wait_s:.0f} s: {what} is in use by {holder}")
                    told = True
                time.sleep(0.2)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command_line(),
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released: nobody to name
    finally:
        os.close(fd)  # closing releases the lock


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int, markers: tuple[bytes, ...] = ()) -> bool:
    """True when `pid` is a live (non-zombie) process whose command line holds one of
    `markers` (so a pid reused by another program does not count); no markers: any live
    process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        if not markers:
            return True
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        return any(m in cmdline for m in markers)
    except OSError:
        return True  # no /proc (macOS): trust the signal probe


def terminate(pid: int, markers: tuple[bytes, ...], timeout_s: float = 30.0) -> None:
    """SIGTERM `pid`, its whole process group when it leads one (started with
    start_new_session=True), then SIGKILL what is left after `timeout_s`."""
    try:
        group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                # Reap it when it is our child, so it does not linger as a zombie.
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            # no markers here: an exiting process loses its command line before it is gone
            if not alive(pid):
                return
            time.sleep(0.2)


# ---- children that die with their parent ------------------------------------------------------

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the child gets `sig` when this process dies, even
    by SIGKILL (Linux `PR_SET_PDEATHSIG`). None elsewhere: there the child's record and
    `sweep_orphans` at the next start are the only guard.

    Call it in the thread that starts the child and keeps living: Linux sends the signal when
    the *thread* that forked the child ends (start from the main thread, or a thread that
    lives as long as the process).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat field 22); None when it
    is gone (or there is no /proc). With the pid it names one process: pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def record_child(folder: Path, pid: int, markers: tuple[bytes, ...], title: str) -> Path:
    """Note that this process started `pid` (one JSON file per child in `folder`), so that
    `sweep_orphans` can stop it once this process is gone. `forget_child` when it ends or is
    handed over."""
    folder.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    record = {
        "pid": pid,
        "start": start_time(pid),
        "markers": [m.decode() for m in markers],
        "title": title,
        "parent": me,
        "parent_start": start_time(me),
        "since": time.time(),
    }
    path = folder / f"{pid}.json"
    path.write_text(json.dumps(record))
    return path


def forget_child(folder: Path, pid: int) -> None:
    """Drop the record of a child that ended (or became a service that stays)."""
    (folder / f"{pid}.json").unlink(missing_ok=True)


def _same_process(pid: int, started: int | None) -> bool:
    now = start_time(pid)
    if now is None or started is None:
        return now is not None and alive(pid)
    return now == started


def sweep_orphans(folder: Path, timeout_s: float = 10.0) -> list[str]:
    """Stop the recorded children whose parent is gone (it was killed before it could stop
    them) and drop records of children that ended; one line per child stopped.

    A child is stopped only when it is the very process recorded (same pid and start time)
    and its command line still holds one of the recorded markers: a reused pid is never
    signalled. Children of live parents are left alone (another `chfen` command runs).
    """
    stopped: list[str] = []
    if not folder.is_dir():
        return stopped
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
            pid, parent = int(rec["pid"]), int(rec["parent"])
            markers = tuple(m.encode() for m in rec["markers"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: written by a process killed mid-write
            continue
        child_lives = _same_process(pid, rec.get("start")) and alive(pid, markers)
        if not child_lives:
            path.unlink(missing_ok=True)
            continue
        if _same_process(parent, rec.get("parent_start")):
            continue  # its parent still runs and will stop it
        terminate(pid, markers, timeout_s)
        path.unlink(missing_ok=True)
        stopped.append(
            f"{rec.get('title', 'a child')} (pid {pid}) left by a killed run (pid {parent})"
        )
    return stopped


def log_tail(log_file: Path, lines: int = 30) -> str:
    """The last lines of a server log (for error messages)."""
    try:
        text = log_file.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {log_file})"
    return "\n".join(text.rstrip().splitlines()[-lines:])


# Servers this process started, kept referenced so Popen does not warn about them at exit.
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class ManagedProcess:
    """The life cycle of one background server of a data root (the Prefect server, Label
    Studio): a pid file and a log file in its folder, a lock between `chfen` commands, a
    health URL to wait for, start/stop/status from any process.

    The caller says what to run (command, environment, folder); errors are raised as `error`
    with `[stage]` in front and the log's tail where it helps.
    """

    title: str  # in messages: "the Prefect server", "Label Studio"
    program: str  # in the log's start banner: "prefect server", "label-studio"
    stage: str  # the prefix of error messages
    markers: tuple[bytes, ...]  # one of these is in the server's command line
    folder: Path  # holds server.pid, .server.lock (and by default server.log)
    url: str  # the base URL, e.g. http://127.0.0.1:8080
    health_path: str  # answers 200 when the server is up, e.g. "/health"
    port_setting: str  # the setting that moves it to another port (for messages)
    stop_command: str  # the command that stops it (for messages)
    error: type[Exception] = RuntimeError
    log_file: Path | None = None  # default: folder / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "server.pid"

    @property
    def log_path(self) -> Path:
        return self.log_file or self.folder / "server.log"

    @property
    def health_url(self) -> str:
        return self.url + self.health_path

    def running_pid(self) -> int | None:
        """The pid in the pid file when that process lives and is our server."""
        pid = read_pid(self.pid_file)
        return pid if pid is not None and alive(pid, self.markers) else None

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """True when the health URL answers 200 (whoever answers)."""
        import httpx

        try:
            return httpx.get(self.health_url, timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log (for error messages)."""
        return log_tail(self.log_path, lines)

    def wait_healthy(
        self, pid: int, timeout_s: float, proc: subprocess.Popen | None = None
    ) -> bool:
        """Wait until the health URL answers; False when the process ends first (`proc`: our
        child; else `pid` checked by its markers) or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return False
            if proc is None and not alive(pid, self.markers):
                return False
            if self.healthy():
                return True
            time.sleep(0.5)
        return False

    def start(
        self,
        command: list[str],
        env: dict[str, str],
        *,
        cwd: Path,
        timeout_s: float,
        before_spawn: Callable[[], None] | None = None,
        with_parent: bool = False,
    ) -> tuple[int, bool]:
        """Start the server in the background (its own process group, output to the log) and
        wait for its health URL; `(pid, started)`, started False when it already ran.

        `before_spawn` runs under the lock just before a new process starts (make folders,
        tell the user). `with_parent`: the server ends when this process ends, even killed
        (`die_with_parent`; a test's server), instead of staying as a service. Raises `error`
        when another program answers on the URL, or with the log's tail when the server exits
        or does not answer within `timeout_s`.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        with file_lock(self.folder / ".server.lock"):
            pid = self.running_pid()
            if pid is not None:
                if self.wait_healthy(pid, timeout_s):
                    return pid, False
                raise self.error(
                    f"[{self.stage}] {self.title} (pid {pid}) runs but {self.health_url} does "
                    f"not answer after {timeout_s:.0f} s; `{self.stop_command}` and start again. "
                    f"Log {self.log_path}:\n{self.log_tail()}"
                )
            if self.healthy():
                raise self.error(
                    f"[{self.stage}] something else already answers on {self.url}; stop it or "
                    f"set {self.port_setting} to a free port"
                )
            if before_spawn is not None:
                before_spawn()
            with open(self.log_path, "ab") as log_fh:
                banner = f"\n==== chfen: starting {self.program} {time.ctime()} ====\n"
                log_fh.write(banner.encode())
                log_fh.flush()
                proc = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    start_new_session=True,  # its own process group: stop() ends its children
                    preexec_fn=die_with_parent() if with_parent else None,
                )
            self.pid_file.write_text(str(proc.pid))
            _CHILDREN[proc.pid] = proc
            if self.wait_healthy(proc.pid, timeout_s, proc):
                return proc.pid, True
            code = proc.poll()
            if code is None:
                terminate(proc.pid, self.markers)
            self.pid_file.unlink(missing_ok=True)
            why = (
                f"exited with code {code}"
                if code is not None
                else f"did not answer {self.health_url} within {timeout_s:.0f} s"
            )
            raise self.error(
                f"[{self.stage}] {self.title} {why}. Last lines of {self.log_path}:\n"
                f"{self.log_tail()}"
            )

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the server (from any process): SIGTERM to its group, SIGKILL after
        `timeout_s`. True when one was running; raises `error` when it does not end."""
        pid = read_pid(self.pid_file)
        was_alive = pid is not None and alive(pid, self.markers)
        if pid is not None and was_alive:
            terminate(pid, self.markers, timeout_s)
            if alive(pid, self.markers):
                raise self.error(
                    f"[{self.stage}] {self.title} (pid {pid}) did not stop; end it by hand "
                    f"(kill {pid})"
                )
        self.pid_file.unlink(missing_ok=True)
        if pid is not None:
            _CHILDREN.pop(pid, None)
        return was_alive
