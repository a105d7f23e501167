"""`chfen label push|pull` (Label Studio) and `chfen demo annotate` (the simulated crew)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from flows.cli.runner import app, command, flow_args
from flows.cli.show import console, print_dict

label_app = typer.Typer(
    help="Push tasks to and pull annotations from Label Studio.", no_args_is_help=True
)
demo_app = typer.Typer(help="Demo helpers (clearly marked simulations).", no_args_is_help=True)
app.add_typer(label_app, name="label")
app.add_typer(demo_app, name="demo")


@command(label_app, "push", flows=True)
def label_push() -> None:
    """Push tasks for processed videos that are not in Label Studio yet."""
    from flows.label import label_push_flow

    print_dict("Label push", label_push_flow(**flow_args()))


@command(label_app, "pull", flows=True)
def label_pull() -> None:
    """Pull new, changed and deleted annotations into the warehouse; show agreement."""
    from flows.label import label_pull_flow

    summary = label_pull_flow(**flow_args())
    annotators = summary.pop("annotators")
    print_dict("Label pull", summary)
    if annotators:
        table = Table(title="Annotators (alpha_delta < 0: agreement drops with them)")
        for col in ("annotator", "items", "alpha_delta", "agrees with others"):
            table.add_column(col)
        for a in annotators:
            fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
            table.add_row(
                a["annotator"],
                str(a["items"]),
                fmt(a["alpha_delta"]),
                fmt(a["agreement_with_others"]),
            )
        console.print(table)


@command(demo_app, "annotate", flows=True)
def demo_annotate(
    annotators: Annotated[int, typer.Option(min=1, help="Simulated annotators.")] = 3,
) -> None:
    """SIMULATION: label the demo site's tasks from its ground truth, with noise."""
    from flows.label import demo_annotate_flow

    console.print(
        "[bold yellow]SIMULATION[/bold yellow]: these annotations are generated from "
        "the demo site's ground truth, not made by people."
    )
    print_dict("Simulated annotation", demo_annotate_flow(**flow_args(), annotators=annotators))
