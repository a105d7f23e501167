"""A local Prefect server (`chfen prefect start|stop|status`): `prefect server start` on
127.0.0.1 (`prefect.server_host` / `prefect.server_port`), its SQLite database, log and pid under
`<data_root>/prefect/`, so the UI shows every flow run of this data root.

While it runs, `flows.runtime.configure` points this data root's `chfen` commands at it (unless
`prefect.api_url` names another server), instead of starting an embedded one on the same
database file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from chfen import procs
from chfen.config import Settings
from warehouse import DataRoot

COMPONENT = "prefect-server"  # not a stage: it only prefixes error messages
_MARKERS = (b"prefect server start",)
_CHILDREN: dict[int, subprocess.Popen] = {}


class PrefectServerError(RuntimeError):
    """The local Prefect server cannot be started, reached or stopped; says why."""


@dataclass(frozen=True)
class ServerState:
    url: str  # the UI; the API is url + "/api"
    pid: int | None
    running: bool
    healthy: bool
    home: Path
    log_file: Path
    started: bool = False
    seconds: float = 0.0

    @property
    def api_url(self) -> str:
        return self.url + "/api"


def home(settings: Settings) -> Path:
    """PREFECT_HOME of this data root: the server's database, log and pid live here."""
    return DataRoot(settings.data_path).prefect_home()


def _pid_file(settings: Settings) -> Path:
    return home(settings) / "server.pid"


def _log_file(settings: Settings) -> Path:
    return home(settings) / "server.log"


def base_url(settings: Settings) -> str:
    return f"http://{settings.prefect.server_host}:{settings.prefect.server_port}"


def healthy(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True when the local server's /api/health answers true."""
    try:
        resp = httpx.get(base_url(settings) + "/api/health", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def running_pid(settings: Settings) -> int | None:
    """The pid of this data root's server when its process lives."""
    pid = procs.read_pid(_pid_file(settings))
    return pid if pid is not None and procs.alive(pid, _MARKERS) else None


def status(settings: Settings) -> ServerState:
    pid = running_pid(settings)
    return ServerState(
        url=base_url(settings),
        pid=pid,
        running=pid is not None,
        healthy=pid is not None and healthy(settings),
        home=home(settings),
        log_file=_log_file(settings),
    )


def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home(settings)),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="WARNING",
        # The UI (served by the same process) calls the API at this address.
        PREFECT_UI_API_URL=base_url(settings) + "/api",
    )
    return env


def server_command(settings: Settings) -> list[str]:
    p = settings.prefect
    return [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        p.server_host,
        "--port",
        str(p.server_port),
        "--analytics-off",
    ]


def start(
    settings: Settings, *, timeout_s: float = 180.0, log: Callable[[str], None] | None = None
) -> ServerState:
    """Start the server in the background and wait for /api/health (returns at once when it
    already runs). Raises PrefectServerError with the log's tail when it does not come up."""
    t0 = time.perf_counter()
    say = log or (lambda _msg: None)
    h = home(settings)
    h.mkdir(parents=True, exist_ok=True)
    with procs.file_lock(h / ".server.lock"):
        pid = running_pid(settings)
        if pid is None and healthy(settings):
            raise PrefectServerError(
                f"[{COMPONENT}] something else already answers on {base_url(settings)}; stop it "
                "or set prefect.server_port to a free port"
            )
        if pid is None:
            say(f"starting the Prefect server on {base_url(settings)} (data {h})")
            with open(_log_file(settings), "ab") as fh:
                fh.write(f"\n==== chfen: starting prefect server {time.ctime()} ====\n".encode())
                fh.flush()
                proc = subprocess.Popen(
                    server_command(settings),
                    env=server_env(settings),
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    cwd=h,
                    start_new_session=True,  # stop() ends the whole group
                )
            _pid_file(settings).write_text(str(proc.pid))
            _CHILDREN[proc.pid] = proc
            pid, started = proc.pid, True
        else:
            proc, started = None, False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if healthy(settings):
                seconds = time.perf_counter() - t0
                if started:
                    say(f"Prefect server up on {base_url(settings)} after {seconds:.0f} s")
                return ServerState(
                    base_url(settings), pid, True, True, h, _log_file(settings), started, seconds
                )
            if (proc is not None and proc.poll() is not None) or not procs.alive(pid, _MARKERS):
                break
            time.sleep(0.5)
        code = proc.poll() if proc is not None else None
        if started and code is None:
            procs.terminate(pid, _MARKERS)
        if started:
            _pid_file(settings).unlink(missing_ok=True)
        why = (
            f"exited with code {code}"
            if code is not None
            else f"did not answer {base_url(settings)}/api/health within {timeout_s:.0f} s"
        )
        raise PrefectServerError(
            f"[{COMPONENT}] the Prefect server {why}. Last lines of {_log_file(settings)}:\n"
            f"{procs.log_tail(_log_file(settings))}"
        )


def stop(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop this data root's server (from any process). True when one was running."""
    pid = running_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return False
    procs.terminate(pid, _MARKERS, timeout_s)
    if procs.alive(pid, _MARKERS):
        raise PrefectServerError(f"[{COMPONENT}] the server (pid {pid}) did not stop; kill {pid}")
    _pid_file(settings).unlink(missing_ok=True)
    _CHILDREN.pop(pid, None)
    return True
