"""`chfen train` (one run), `chfen train ablations` and `chfen predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.runner import app, command, flow_args, run, state
from flows.cli.show import console, print_train_summary

train_app = typer.Typer(
    help="Train CHFEN on cached embeddings (no subcommand: one run).",
    invoke_without_command=True,
)
app.add_typer(train_app, name="train")


@command(app, "predict", flows=True)
def predict(
    run_id: Annotated[str | None, typer.Option(help="Training run (default: latest).")] = None,
) -> None:
    """Predict emotions for unlabeled videos (stored in `predictions`; used as pre-annotations)."""
    from flows.train import predict_flow

    preds = predict_flow(**flow_args(), run_id=run_id)
    table = Table(title=f"Predictions for {len(preds)} unlabeled video(s)")
    for col in ("video", "label", "score", "model"):
        table.add_column(col)
    for video_id, (label, score, version) in sorted(preds.items()):
        table.add_row(video_id, label, f"{score:.2f}", version)
    console.print(table)


@train_app.callback()
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config file.", dir_okay=False)
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a setting (repeatable).")
    ] = None,
) -> None:
    """Train CHFEN once with the resolved `train` settings; see also `train ablations`."""
    state.add_local(config, set_)  # `chfen train --config X --set k=v` also works
    if ctx.invoked_subcommand is not None:
        return

    def once() -> None:
        from flows.train import train_flow

        print_train_summary(train_flow(**flow_args()))

    run(once, flows=True)


@command(train_app, "ablations", flows=True)
def train_ablations() -> None:
    """Run the CHFEN paper's ablation list (docs/chfen-paper.md) on one dataset and split;
    print and save one table."""
    from flows.train import ablations_flow

    result = ablations_flow(**flow_args())
    console.print(result["markdown"])
    console.print(f"table: [bold]{result['path']}[/bold]")
