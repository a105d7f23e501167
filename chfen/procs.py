"""Background servers we start and stop from any process (Label Studio, the Prefect server):
a pid file, a liveness check that recognises our own process, a process-group stop, and an
exclusive lock between `chfen` commands."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int, markers: tuple[bytes, ...]) -> bool:
    """True when `pid` is a live (non-zombie) process whose command line holds one of
    `markers` (so a pid reused by another program does not count)."""
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
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        return any(m in cmdline for m in markers)
    except OSError:
        return True  # no /proc (macOS): trust the signal probe


def terminate(pid: int, markers: tuple[bytes, ...], timeout_s: float = 30.0) -> None:
    """SIGTERM the process group of `pid` (started with start_new_session=True), then SIGKILL
    what is left after `timeout_s`."""
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
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
            if not alive(pid, markers):
                return
            time.sleep(0.2)


def log_tail(log_file: Path, lines: int = 30) -> str:
    """The last lines of a server log (for error messages)."""
    try:
        text = log_file.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {log_file})"
    return "\n".join(text.rstrip().splitlines()[-lines:])
