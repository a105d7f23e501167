"""Process-wide set-up shared by every flow: the settings a flow runs with, Prefect's home
under the data root, quiet and offline defaults, and a progress hook the CLI can attach a
progress bar to.

`configure(settings)` must run before Prefect is imported for its environment to apply.

Every flow takes the same three settings parameters: `settings_file` (a YAML file; None: the
default one, see `chfen.config.default_config_path`), `overrides` (`section.key=value`) and
`settings`, the already resolved `Settings` its caller passes (the CLI resolves them once, the
pipeline hands its own to every subflow). `resolve_settings` picks: `settings` when given, else
the file and overrides, resolved then (a served deployment's run). `settings` is not a field of
the deployments' forms in the Prefect UI.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import subprocess
import threading
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic.json_schema import SkipJsonSchema

from chfen import procs
from chfen.config import Settings, load_settings

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "PYANNOTE_METRICS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # The embedded (ephemeral) API server starts in 10-20 s; give a busy 2-core machine room.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


class UsageError(ValueError):
    """A request that names something that is not there (a source, a table): the caller's
    mistake, not a failure of the work (`chfen` exits 2)."""


F = TypeVar("F", bound=Callable[..., Any])

# The type of every flow's `settings` parameter: passed in-process, left out of the UI's forms.
ResolvedSettings = SkipJsonSchema[Settings | None]


def resolve_settings(
    settings: Settings | None, settings_file: str | None, overrides: list[str] | None
) -> Settings:
    """The settings a flow runs with: the resolved ones its caller passed, else the settings
    file and overrides resolved now (a run started from a deployment)."""
    if settings is not None:
        return settings
    return load_settings(settings_file, overrides or [])[0]


def configure(settings: Settings) -> None:
    """Point Prefect at <data_root>/prefect (or the configured server, or this data root's
    running local server) and go offline."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    # Task-level INFO lines drown the progress bar; flows still log warnings and errors.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from warehouse import DataRoot

    home = DataRoot(settings.data_path).prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    if settings.prefect.api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect.api_url
    elif "PREFECT_API_URL" not in os.environ:
        # `chfen prefect start` runs this data root's server: use it (the UI then shows the
        # run) rather than an embedded server on the same database file.
        from flows import server

        if server.running_pid(settings) is not None and server.healthy(settings, 1.0):
            os.environ["PREFECT_API_URL"] = server.base_url(settings) + "/api"
    children = DataRoot(settings.data_path).run_dir("children")
    for line in procs.sweep_orphans(children):
        _log.warning("stopped %s", line)
    if "PREFECT_API_URL" not in os.environ:
        guard_embedded_server(children, DataRoot(settings.data_path).run_dir("locks"))


# Markers of the embedded server's command line (Prefect's SubprocessASGIServer).
EMBEDDED_MARKERS = (b"prefect.server.api.server:create_app",)
_log = logging.getLogger("chfen")
_guard: dict[str, Any] = {}  # "folder": where the child records go; "cls": the subclass


class _SubprocessWithParent:
    """`subprocess` as Prefect's server module sees it while it starts the embedded server:
    the same, but `Popen` gets `preexec_fn` (the parent-death signal)."""

    def __init__(self, preexec: Callable[[], None] | None) -> None:
        self._preexec = preexec

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen:  # noqa: N802 - its name
        kwargs.setdefault("preexec_fn", self._preexec)
        return subprocess.Popen(*args, **kwargs)


def _guarded_server_class() -> type:
    import prefect.server.api.server as server_module
    from prefect.server.api.server import SubprocessASGIServer

    swap = threading.Lock()

    class GuardedServer(SubprocessASGIServer):
        """Prefect's embedded server, started with the parent-death signal and recorded."""

        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            # Linux signals the child when the *thread* that forked it ends: only the main
            # thread lives as long as the process. Other threads: the record alone.
            main = threading.current_thread() is threading.main_thread()
            preexec = procs.die_with_parent() if main else None
            with swap:
                server_module.subprocess = _SubprocessWithParent(preexec)  # type: ignore[assignment]
                try:
                    proc = super()._run_uvicorn_command()
                finally:
                    server_module.subprocess = subprocess
            self._chfen_record = (_guard["folder"], proc.pid)
            procs.record_child(
                _guard["folder"], proc.pid, EMBEDDED_MARKERS, "the embedded Prefect server"
            )
            return proc

        def start(self, timeout: int | None = None) -> None:
            # Each command's server migrates the data root's one SQLite database when it
            # starts; two at once on a fresh root race (alembic "expected to match one row",
            # a traceback of ~80 lines from the loser, which then restarts). One at a time.
            lock = _guard.get("start_lock")
            if self.running or lock is None:
                return super().start(timeout)
            with procs.file_lock(lock):
                return super().start(timeout)

        def stop(self) -> None:
            record = getattr(self, "_chfen_record", None)
            super().stop()
            if record is not None:
                procs.forget_child(*record)

    return GuardedServer


def guard_embedded_server(children: Path, locks: Path | None = None) -> None:
    """Make the embedded Prefect server that Prefect starts on first use (no PREFECT_API_URL)
    die with this process, also when it is SIGKILLed: a parent-death signal (when started from
    the main thread, as the CLI does) and always a record in `children` for
    `procs.sweep_orphans` at the next start. Without this, every killed run leaves an orphan
    uvicorn of ~250 MB behind. With `locks` (the data root's lock folder), the servers of two
    commands on one data root start one at a time (they share its database; see `start`).

    Prefect keeps one `SubprocessASGIServer` per port (None: any free one) and returns that
    instance from `SubprocessASGIServer()`; registering our subclass first makes Prefect start
    ours. The command and environment stay Prefect's own: only `subprocess.Popen` as its server
    module sees it gets a `preexec_fn`, for the duration of the start.
    """
    from prefect.server.api.server import SubprocessASGIServer

    _guard["folder"] = children
    _guard["start_lock"] = None if locks is None else locks / "prefect-server-start.lock"
    if "cls" not in _guard:
        _guard["cls"] = _guarded_server_class()
    if SubprocessASGIServer._instances.get(None) is None:
        _guard["cls"]()  # registers itself as the instance for "any free port"


# ---- one writer per stage per data root -------------------------------------------------------

_held: dict[str, int] = {}  # lock files this process holds -> depth (a flow inside a flow)
_held_lock = threading.Lock()


@contextlib.contextmanager
def stage_locks(
    settings: Settings, *stages: str, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Be the only run of these stages on this data root for the block: a second `chfen`
    command (or served run) of a stage waits here, up to `prefect.stage_lock_wait_s`, telling
    `on_wait` who holds it, and then sees the first run's work as done (compute what is
    pending inside the block); after the wait it fails naming the holder (`procs.LockBusy`,
    exit 1). A killed holder's lock is free at once (the kernel drops it). Re-entrant within
    a process; locks are taken in name order, so two runs never wait for each other."""
    from warehouse import DataRoot

    folder = DataRoot(settings.data_path).run_dir("locks")
    say = on_wait or (lambda msg: _log.warning("%s", msg))
    wait_s = settings.prefect.stage_lock_wait_s
    hint = "; `prefect.stage_lock_wait_s` sets how long to wait"
    with contextlib.ExitStack() as stack:
        for name in sorted(set(stages)):
            path = folder / f"{name.replace(':', '_')}.lock"
            key = str(path)
            with _held_lock:
                depth = _held.get(key, 0)
                _held[key] = depth + 1
            stack.callback(_release_held, key)
            if depth == 0:
                what = f"the {name} stage of {settings.data_path}"
                lock = procs.exclusive(path, what, wait_s=wait_s, on_wait=say, hint=hint)
                stack.enter_context(lock)
        yield


def locked(*stages: str) -> Callable[[F], F]:
    """Run a flow's body under `stage_locks` for these stages (put it under `@flow`): the
    settings are resolved from the flow's own `settings`, `settings_file` and `overrides`
    parameters, and handed on resolved; the wait message goes to the run's logger."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        # Prefect validates a flow's parameters from its signature, resolving string
        # annotations (`from __future__ import annotations`) in the *wrapper's* module: hand it
        # the annotations resolved in the flow's own module (e.g. train's `TrainConfig`).
        hints = typing.get_type_hints(fn, include_extras=True)
        resolved = signature.replace(
            parameters=[
                p.replace(annotation=hints.get(p.name, p.annotation))
                for p in signature.parameters.values()
            ],
            return_annotation=hints.get("return", signature.return_annotation),
        )

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            params = bound.arguments
            settings = resolve_settings(
                params.get("settings"), params.get("settings_file"), params.get("overrides")
            )
            params["settings"] = settings
            with stage_locks(settings, *stages, on_wait=_run_logger_warning):
                result = fn(*bound.args, **bound.kwargs)
                compact_after(settings, stages)
                return result

        wrapper.__signature__ = resolved  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def compact_after(settings: Settings, stages: tuple[str, ...]) -> list[dict]:
    """Compact the tables these stages write (and the ledger) that passed
    `warehouse.compact_files` Parquet files, so reads do not slow down as runs add files."""
    from chfen import registry
    from warehouse import Warehouse
    from warehouse.schema import TABLES

    by_name = {s.name: s for s in registry.STAGES}
    tables = [t for name in stages if name in by_name for t in by_name[name].writes]
    tables = [t for t in (*tables, "stage_runs", "failures") if t in TABLES]
    wh = Warehouse(settings.data_path)
    done = wh.compact_small_files(tables, settings.warehouse.compact_files)
    for d in done:
        _log.info("compacted %s: %s file(s) into %s", d["table"], d.get("numFilesRemoved"),
                  d.get("numFilesAdded"))  # fmt: skip
    return done


def _run_logger_warning(message: str) -> None:
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        get_run_logger().warning("%s", message)
    except MissingContextError:
        _log.warning("%s", message)


def _release_held(key: str) -> None:
    with _held_lock:
        _held[key] -= 1
        if not _held[key]:
            del _held[key]


def api_url() -> str | None:
    """The Prefect API this process uses (None: an embedded, ephemeral one)."""
    return os.environ.get("PREFECT_API_URL") or None


@contextlib.contextmanager
def without_subflow_heartbeats() -> Iterator[None]:
    """Flows called inside this block (the pipeline's subflows) send no run heartbeats.

    Prefect 3.9 gives every flow run a heartbeat thread (`flows.heartbeat_frequency`, 180 s)
    that sleeps in 1 s steps and is joined when the run ends, so each subflow finishes up to
    a second late: 1.23 s per empty subflow against a local server, 0.27 s without. The
    enclosing flow keeps its own heartbeat. What is lost: a heartbeat-expiry automation, if
    one is set up, would mark only the enclosing run crashed, not its subflows.
    """
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def quiet_lightning() -> None:
    """pyannote's bundled VAD checkpoint makes Lightning announce an upgrade on every load.
    Lightning sets its loggers' level when imported, so import it first, then quiet it."""
    import lightning.pytorch  # noqa: F401

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


# ---- progress ---------------------------------------------------------------------------------

Reporter = Callable[[str, Any], None]
_reporters: list[Reporter] = []
_lock = threading.Lock()


def add_reporter(fn: Reporter) -> None:
    with _lock:
        _reporters.append(fn)


def remove_reporter(fn: Reporter) -> None:
    with _lock:
        if fn in _reporters:
            _reporters.remove(fn)


def report(event: str, payload: Any = None) -> None:
    """Tell attached reporters (e.g. the CLI's progress bar) that something happened.
    Events: '<stage>:total' with a count, '<stage>:done' with an Outcome."""
    with _lock:
        reporters = list(_reporters)
    for fn in reporters:
        fn(event, payload)
