"""`chfen config show`: the resolved settings and where each value came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chfen.config import flatten, origin_of
from flows.cli.runner import app, command, state
from flows.cli.show import console

config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@command(config_app, "show")
def config_show(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the resolved config as JSON.")
    ] = False,
) -> None:
    """Print the resolved config and where each value came from (secrets masked)."""
    settings, prov = state.load()
    if as_json:
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
        return
    table = Table(title="Resolved configuration", show_lines=False)
    table.add_column("setting", style="cyan", no_wrap=True)
    table.add_column("value")
    table.add_column("from", style="dim")
    for key, value in flatten(settings).items():
        origin = _short(origin_of(key, prov))
        style = "" if origin == "default" else "bold"
        table.add_row(key, f"[{style}]{value!s}[/{style}]" if style else str(value), origin)
    if not settings.sources:
        table.add_row("sources", "[] (the local demo site)", origin_of("sources", prov))
    console.print(table)


def _short(origin: str) -> str:
    """'file:/abs/path/x.yaml' -> 'file:x.yaml' relative to the working dir when possible."""
    if not origin.startswith("file:"):
        return origin
    path = Path(origin[len("file:") :])
    try:
        return f"file:{path.relative_to(Path.cwd())}"
    except ValueError:
        return f"file:{path.name}" if path.parent.name == "configs" else origin
