"""A local Label Studio server: installed once into its own venv, started, stopped, queried.

The project's environment only holds `label-studio-sdk`; the server (≈1 GB of dependencies that
conflict with ours) lives in `<data_root>/labelstudio/venv` (or `labelstudio.venv_dir`). Its
state is `<data_root>/labelstudio/data` (always passed as `--data-dir`, else Label Studio writes
to the home folder), its log `<data_root>/labelstudio/server.log`, and its pid
`<data_root>/labelstudio/server.pid`, so `stop` and `status` work from any process.

The admin user and the API token come from `LabelStudioConfig` through environment variables
(never on the command line, where `ps` would show them); the token is never printed or logged.
Videos are served by Label Studio itself ("local files", streamed with range requests). Label
Studio refuses a storage at its document root itself, so the document root is the data root and
the project's storage is `<data_root>/media`: only files below the media folder are served, as
`/data/local-files/?d=media/<video_id>/...`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chfen import procs
from chfen.config import LabelStudioConfig, Settings

PACKAGE = "label-studio"
COMPONENT = "labelstudio"  # not a stage: it only prefixes error messages

# Environment variables Label Studio reads as settings although they are not namespaced
# (seen with label-studio 1.23.2, `labelstudio.version`): a stray one from the user's shell
# would silently change the server.
_STRAY_ENV = ("USERNAME", "PASSWORD", "HOST", "PORT", "DJANGO_DB", "DATABASE_URL")


class LabelStudioError(RuntimeError):
    """The Label Studio server cannot be installed, started, reached or stopped; says why."""


_log = logging.getLogger(__name__)
_warned_defaults = False  # the default-credentials warning is given once per process


def default_credentials(ls: LabelStudioConfig) -> list[str]:
    """Which of the admin password and API token still have their shipped default values."""
    shipped = LabelStudioConfig.model_fields
    return [
        what
        for what, name in (("admin password", "password"), ("API token", "token"))
        if getattr(ls, name).get_secret_value() == shipped[name].default.get_secret_value()
    ]


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_credentials(settings: Settings, warn: Callable[[str], None] | None = None) -> None:
    """Refuse to serve on a non-loopback address while the shipped admin password or API
    token is in use (anyone who can reach it could log in with the values in this repository);
    warn once per process when they are in use at all."""
    global _warned_defaults
    ls = settings.labelstudio
    used = default_credentials(ls)
    if not used:
        return
    what = " and ".join(used)
    if not is_loopback(ls.host):
        raise LabelStudioError(
            f"[{COMPONENT}] refusing to serve on {ls.host}: the default {what} is in use. Set "
            "CHFEN_LABELSTUDIO__PASSWORD and CHFEN_LABELSTUDIO__TOKEN (or labelstudio.password "
            "and labelstudio.token) first, or keep labelstudio.host=127.0.0.1"
        )
    if not _warned_defaults:
        _warned_defaults = True
        message = (
            f"[{COMPONENT}] the default {what} is in use: fine for a local demo on {ls.host}; "
            "set CHFEN_LABELSTUDIO__PASSWORD and CHFEN_LABELSTUDIO__TOKEN for real use"
        )
        (warn or _log.warning)(message)


@dataclass(frozen=True)
class ServerPaths:
    """Where one data root keeps its Label Studio install and state."""

    root: Path
    venv: Path
    data_dir: Path
    log_file: Path
    pid_file: Path
    media_root: Path
    document_root: Path  # Label Studio's LOCAL_FILES_DOCUMENT_ROOT: the media root's parent

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / "label-studio"


@dataclass(frozen=True)
class ServerInfo:
    """A running server as `start` left it."""

    url: str
    pid: int
    version: str
    data_dir: Path
    log_file: Path
    started: bool  # False when it was already running
    seconds: float  # how long start() took


@dataclass(frozen=True)
class ServerStatus:
    """What `status` found: installed version, process, health."""

    url: str
    installed_version: str | None
    pid: int | None
    running: bool
    healthy: bool
    data_dir: Path
    log_file: Path


def server_paths(settings: Settings) -> ServerPaths:
    """The install, data, log and pid locations for these settings."""
    root = settings.data_path / "labelstudio"
    ls = settings.labelstudio
    venv = Path(ls.venv_dir).expanduser().resolve() if ls.venv_dir else root / "venv"
    return ServerPaths(
        root=root,
        venv=venv,
        data_dir=root / "data",
        log_file=root / "server.log",
        pid_file=root / "server.pid",
        media_root=settings.data_path / "media",
        document_root=settings.data_path,
    )


def base_url(settings: Settings) -> str:
    """The server's URL, e.g. http://127.0.0.1:8080."""
    ls = settings.labelstudio
    return f"http://{ls.host}:{ls.port}"


# ---- install --------------------------------------------------------------------------------


def installed_version(settings: Settings) -> str | None:
    """The label-studio version in the server venv, or None when it is not installed."""
    python = server_paths(settings).python
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('label-studio'))"
    try:
        out = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def ensure_installed(settings: Settings, log: Callable[[str], None] | None = None) -> Path:
    """Install label-studio==<labelstudio.version> into its own venv unless it is there.

    Idempotent and safe to call from several processes at once; returns the venv. The first
    install takes about 1.5 minutes (about 1 GB) and needs the package registry.
    """
    paths = server_paths(settings)
    wanted = settings.labelstudio.version
    say = log or (lambda _msg: None)
    with procs.file_lock(paths.venv.parent / f".{paths.venv.name}.install.lock"):
        found = installed_version(settings)
        if found == wanted:
            return paths.venv
        t0 = time.perf_counter()
        if not paths.python.exists():
            say(f"creating the Label Studio venv at {paths.venv}")
            _run_install_step([sys.executable, "-m", "venv", str(paths.venv)], paths.venv)
        say(
            f"installing {PACKAGE}=={wanted} into {paths.venv}"
            + (f" (found {found})" if found else "")
            + "; the first install takes about 1.5 minutes"
        )
        _run_install_step(
            [
                str(paths.python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"{PACKAGE}=={wanted}",
            ],
            paths.venv,
        )
        found = installed_version(settings)
        if found != wanted:
            raise LabelStudioError(
                f"[{COMPONENT}] installed {PACKAGE} into {paths.venv} but it reports version "
                f"{found!r}, not {wanted!r}; delete that folder and try again"
            )
        say(f"installed {PACKAGE} {wanted} in {time.perf_counter() - t0:.0f} s")
        return paths.venv


def _run_install_step(cmd: list[str], venv: Path) -> None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabelStudioError(
            f"[{COMPONENT}] installing {PACKAGE} into {venv} took over 30 minutes; check the "
            "connection to the package registry"
        ) from exc
    if out.returncode != 0:
        tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-15:])
        raise LabelStudioError(
            f"[{COMPONENT}] installing {PACKAGE} into {venv} failed ({' '.join(cmd[1:4])}):\n{tail}"
        )


# ---- environment ----------------------------------------------------------------------------


def server_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The server process's environment: admin, token, local files, quiet and offline."""
    ls: LabelStudioConfig = settings.labelstudio
    paths = server_paths(settings)
    env = dict(os.environ if base is None else base)
    for name in _STRAY_ENV:
        env.pop(name, None)
    env.update(
        {
            "LABEL_STUDIO_USERNAME": ls.username,
            "LABEL_STUDIO_PASSWORD": ls.password.get_secret_value(),
            "LABEL_STUDIO_USER_TOKEN": ls.token.get_secret_value(),
            # A preset token is only accepted as a legacy token (else 401).
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(paths.document_root),
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "LABEL_STUDIO_BASE_DATA_DIR": str(paths.data_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def server_command(settings: Settings) -> list[str]:
    """The command line (no secrets in it: `ps` shows command lines to every user)."""
    ls = settings.labelstudio
    paths = server_paths(settings)
    return [
        str(paths.executable),
        "start",
        "--no-browser",
        "--data-dir",
        str(paths.data_dir),
        "--internal-host",
        ls.host,
        "--port",
        str(ls.port),
    ]


# ---- process ------------------------------------------------------------------------------

_MARKERS = (b"label-studio", b"label_studio")


def managed(settings: Settings) -> procs.ManagedProcess:
    """This data root's server as a managed process (pid, log and lock in `labelstudio/`)."""
    paths = server_paths(settings)
    return procs.ManagedProcess(
        title="Label Studio",
        program="label-studio",
        stage=COMPONENT,
        markers=_MARKERS,
        folder=paths.root,
        url=base_url(settings),
        health_path="/health",
        port_setting="labelstudio.port",
        stop_command="chfen labelstudio stop",
        error=LabelStudioError,
        log_file=paths.log_file,
    )


def healthy(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True when /health answers 200."""
    return managed(settings).healthy(timeout_s)


def log_tail(settings: Settings, lines: int = 30) -> str:
    """The last lines of the server log (for error messages)."""
    return procs.log_tail(server_paths(settings).log_file, lines)


def status(settings: Settings) -> ServerStatus:
    """Installed version, pid, whether the process lives and /health answers."""
    paths = server_paths(settings)
    server = managed(settings)
    pid = server.running_pid()
    return ServerStatus(
        url=server.url,
        installed_version=installed_version(settings),
        pid=pid,
        running=pid is not None,
        healthy=pid is not None and server.healthy(),
        data_dir=paths.data_dir,
        log_file=paths.log_file,
    )


def start(
    settings: Settings,
    *,
    timeout_s: float | None = None,
    log: Callable[[str], None] | None = None,
    with_parent: bool = False,
) -> ServerInfo:
    """Install if needed, start the server in the background and wait for /health.

    Returns at once when our server already runs. Raises `LabelStudioError` with the tail of the
    log when the process dies or /health does not answer within `labelstudio.start_timeout_s`
    (the first start of a data dir runs migrations: 1–2 minutes). `with_parent`: the server
    ends with this process, even when it is killed (tests); by default it stays, a service.
    """
    t0 = time.perf_counter()
    ls = settings.labelstudio
    paths = server_paths(settings)
    server = managed(settings)
    say = log or (lambda _msg: None)
    timeout_s = ls.start_timeout_s if timeout_s is None else timeout_s
    check_credentials(settings, warn=log)
    ensure_installed(settings, log=say)

    def before_spawn() -> None:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        paths.media_root.mkdir(parents=True, exist_ok=True)
        first = not (paths.data_dir / "label_studio.sqlite3").exists()
        say(
            f"starting Label Studio {ls.version} on {server.url}"
            + (" (first start: database migrations take 1–2 minutes)" if first else "")
        )

    pid, started = server.start(
        server_command(settings),
        server_env(settings),
        cwd=paths.root,
        timeout_s=timeout_s,
        before_spawn=before_spawn,
        with_parent=with_parent,
    )
    seconds = time.perf_counter() - t0
    if started:
        say(f"Label Studio is up on {server.url} after {seconds:.0f} s (pid {pid})")
    return ServerInfo(server.url, pid, ls.version, paths.data_dir, paths.log_file, started, seconds)


def stop(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop the server started by `start` (from any process). True when one was stopped."""
    return managed(settings).stop(timeout_s)


# ---- command line ---------------------------------------------------------------------------


def cli(action: str, settings: Settings, print_fn: Callable[[str], None] = print) -> int:
    """`chfen labelstudio start|stop|status`: do it, print a short report, return an exit code.

    The token is never printed; the report says where it comes from instead.
    """
    try:
        if action == "start":
            info = start(settings, log=print_fn)
            what = "started" if info.started else "already running"
            print_fn(f"Label Studio {info.version} {what}: {info.url} (pid {info.pid})")
            print_fn(
                f"  user {settings.labelstudio.username}; API token from the config "
                "(labelstudio.token / CHFEN_LABELSTUDIO__TOKEN)"
            )
            print_fn(f"  data {info.data_dir}\n  log  {info.log_file}")
            return 0
        if action == "stop":
            stopped = stop(settings)
            print_fn("Label Studio stopped" if stopped else "Label Studio was not running")
            return 0
        if action == "status":
            st = status(settings)
            state = (
                "healthy" if st.healthy else "running, not answering" if st.running else "stopped"
            )
            print_fn(f"Label Studio: {state} at {st.url}" + (f" (pid {st.pid})" if st.pid else ""))
            print_fn(f"  installed version: {st.installed_version or 'not installed'}")
            print_fn(f"  data {st.data_dir}\n  log  {st.log_file}")
            return 0 if st.healthy or not st.running else 1
        print_fn(f"unknown action {action!r}; use start, stop or status")
        return 2
    except LabelStudioError as exc:
        print_fn(str(exc))
        return 1
