"""The long-running parts: `chfen serve` (the Prefect deployments), the local servers
(`chfen prefect|labelstudio start|stop|status`) and `chfen demo-site`."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.runner import EXIT_FAILED, app, command, state
from flows.cli.show import console

labelstudio_app = typer.Typer(help="The local Label Studio server.", no_args_is_help=True)
prefect_app = typer.Typer(
    help="The local Prefect server (UI and API) for this data root.", no_args_is_help=True
)
app.add_typer(labelstudio_app, name="labelstudio")
app.add_typer(prefect_app, name="prefect")


@command(app, "serve", flows=True)
def serve(
    limit: Annotated[
        int | None, typer.Option(min=1, help="Flow runs at once (default: no limit).")
    ] = None,
) -> None:
    """Register and serve the deployments (ingest on a cron, label sync, embed, train with its
    TrainConfig form, retraining on new agreed labels) until Ctrl-C.

    Uses prefect.api_url or $PREFECT_API_URL; otherwise starts this data root's local server.
    """
    from chfen.config import default_config_path
    from flows import runtime, server
    from flows.deployments import serve as serve_deployments

    settings = state.settings
    if runtime.api_url() is None:
        st = server.start(settings, log=console.print)
        os.environ["PREFECT_API_URL"] = st.api_url
    api = runtime.api_url() or ""
    # Pinned as an absolute path: served runs may start in another working folder.
    settings_file = str((state.config or default_config_path()).resolve())
    ui = api.removesuffix("/api")
    table = Table(title=f"Serving deployments against {api}")
    for col in ("deployment", "schedule / trigger"):
        table.add_column(col)
    p = settings.prefect
    table.add_row("ingest/ingest", f"cron {p.crawl_cron}")
    table.add_row("label_sync/label-sync", f"every {p.label_sync_minutes} min")
    table.add_row("embed/embed", "on demand")
    table.add_row(
        "train/train",
        "on demand (TrainConfig form); automation: "
        f">= {p.retrain_min_new_labels} new agreed labels",
    )
    console.print(table)
    console.print(f"Prefect UI: [bold]{ui}[/bold]  (Ctrl-C stops serving)")
    serve_deployments(settings, settings_file, list(state.overrides), limit=limit)


# ---- the local Prefect server -------------------------------------------------------------


@command(prefect_app, "start")
def prefect_start() -> None:
    """Start the local Prefect server on 127.0.0.1 (data under <data_root>/prefect)."""
    from flows import server

    st = server.start(state.settings, log=console.print)
    what = "started" if st.started else "already running"
    console.print(f"Prefect server {what}: UI {st.url}  API {st.api_url} (pid {st.pid})")
    console.print(f"  data {st.home}\n  log  {st.log_file}")


@command(prefect_app, "stop")
def prefect_stop() -> None:
    """Stop the local Prefect server."""
    from flows import server

    stopped = server.stop(state.settings)
    console.print("Prefect server stopped" if stopped else "Prefect server was not running")


@command(prefect_app, "status")
def prefect_status() -> None:
    """Is the local Prefect server running and healthy?"""
    from flows import server

    st = server.status(state.settings)
    word = "healthy" if st.healthy else "running, not answering" if st.running else "stopped"
    console.print(f"Prefect server: {word} at {st.url}" + (f" (pid {st.pid})" if st.pid else ""))
    console.print(f"  data {st.home}\n  log  {st.log_file}")
    if st.running and not st.healthy:
        raise typer.Exit(EXIT_FAILED)


# ---- the local Label Studio server ----------------------------------------------------------


def _labelstudio(action: str) -> None:
    from labeling.server import cli as server_cli

    # server_cli prints its own report and maps LabelStudioError to 1, as the runner does
    raise typer.Exit(server_cli(action, state.settings, print_fn=console.print))


@command(labelstudio_app, "start")
def labelstudio_start() -> None:
    """Install (once, into its own venv) and start Label Studio on 127.0.0.1."""
    _labelstudio("start")


@command(labelstudio_app, "stop")
def labelstudio_stop() -> None:
    """Stop the local Label Studio server."""
    _labelstudio("stop")


@command(labelstudio_app, "status")
def labelstudio_status() -> None:
    """Is the local Label Studio server running and healthy?"""
    _labelstudio("status")


# ---- the demo site --------------------------------------------------------------------------


@command(app, "demo-site")
def demo_site(
    port: Annotated[int | None, typer.Option(help="Port (default: demo_site.port).")] = None,
) -> None:
    """Generate the local demo short-video site and serve it until Ctrl-C."""
    from chfen.demo import resolve_cache_dir, run_demo_site

    settings = state.settings
    cfg = (
        settings.demo_site if port is None else settings.demo_site.model_copy(update={"port": port})
    )
    run_demo_site(cfg, resolve_cache_dir(cfg, settings.data_path))
