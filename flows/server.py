"""A local Prefect server (`chfen prefect start|stop|status`): `prefect server start` on
127.0.0.1 (`prefect.server_host` / `prefect.server_port`), its SQLite database, log and pid under
`<data_root>/prefect/`, so the UI shows every flow run of this data root.

While it runs, `flows.runtime.configure` points this data root's `chfen` commands at it (unless
`prefect.api_url` names another server), instead of starting an embedded one on the same
database file.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chfen import procs
from chfen.config import Settings
from warehouse import DataRoot

COMPONENT = "prefect-server"  # not a stage: it only prefixes error messages
_MARKERS = (b"prefect server start",)


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


def base_url(settings: Settings) -> str:
    return f"http://{settings.prefect.server_host}:{settings.prefect.server_port}"


def managed(settings: Settings) -> procs.ManagedProcess:
    """This data root's server as a managed process (pid, log and lock in `home`)."""
    return procs.ManagedProcess(
        title="the Prefect server",
        program="prefect server",
        stage=COMPONENT,
        markers=_MARKERS,
        folder=home(settings),
        url=base_url(settings),
        health_path="/api/health",
        port_setting="prefect.server_port",
        stop_command="chfen prefect stop",
        error=PrefectServerError,
    )


def healthy(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True when the local server's /api/health answers true."""
    return managed(settings).healthy(timeout_s)


def running_pid(settings: Settings) -> int | None:
    """The pid of this data root's server when its process lives."""
    return managed(settings).running_pid()


def status(settings: Settings) -> ServerState:
    server = managed(settings)
    pid = server.running_pid()
    return ServerState(
        url=server.url,
        pid=pid,
        running=pid is not None,
        healthy=pid is not None and server.healthy(),
        home=server.folder,
        log_file=server.log_path,
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
    server = managed(settings)
    pid, started = server.start(
        server_command(settings),
        server_env(settings),
        cwd=server.folder,
        timeout_s=timeout_s,
        before_spawn=lambda: say(
            f"starting the Prefect server on {server.url} (data {server.folder})"
        ),
    )
    seconds = time.perf_counter() - t0
    if started:
        say(f"Prefect server up on {server.url} after {seconds:.0f} s")
    return ServerState(
        server.url, pid, True, True, server.folder, server.log_path, started, seconds
    )


def stop(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop this data root's server (from any process). True when one was running."""
    return managed(settings).stop(timeout_s)
