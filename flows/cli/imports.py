"""`chfen import DIR`: a folder of media files (and its labels) as a source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.runner import app, command, state
from flows.cli.show import console, print_dict


@command(app, "import")
def import_(
    folder: Annotated[Path, typer.Argument(help="The folder of media files (video or audio).")],
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labels CSV: file,label[,uploader,title,text] (one label per file) or "
            "file,rater,label[,intensity] (one row per rating).",
            dir_okay=False,
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Source name (default: the folder's name).")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="Labels from the file names: ravdess or crema-d (instead of --labels)."),
    ] = None,
    label_map: Annotated[
        Path | None,
        typer.Option(
            help="CSV (their,ours) or YAML (their: ours) mapping the dataset's words onto ours.",
            dir_okay=False,
        ),
    ] = None,
    file_column: Annotated[str, typer.Option(help="Labels CSV column of the file path.")] = "file",
    label_column: Annotated[str, typer.Option(help="Labels CSV column of the label.")] = "label",
    rater_column: Annotated[str, typer.Option(help="Labels CSV column of the rater.")] = "rater",
    uploader_column: Annotated[
        str,
        typer.Option(help="Labels CSV column of the speaker/actor/channel (the split's group)."),
    ] = "uploader",
    title_column: Annotated[str, typer.Option(help="Labels CSV column of the title.")] = "title",
    text_column: Annotated[
        str, typer.Option(help="Labels CSV column of a description or text.")
    ] = "text",
    intensity_column: Annotated[
        str, typer.Option(help="Labels CSV column of the intensity (1-3 or low/normal/strong).")
    ] = "intensity",
    link: Annotated[
        bool, typer.Option(help="Hard-link the files into the data root instead of copying.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Check everything, write nothing.")] = False,
) -> None:
    """Import a folder of media files and their labels; re-run it to add new files."""
    from chfen.domain.stages import CRAWL
    from chfen.ingest import Columns
    from flows.runtime import stage_locks

    settings = state.settings
    columns = Columns(
        file=file_column,
        label=label_column,
        rater=rater_column,
        intensity=intensity_column,
        uploader=uploader_column,
        title=title_column,
        text=text_column,
    )
    # the crawl's lock: an import writes `videos` and crawl ledger rows as a crawl does
    with stage_locks(settings, CRAWL, on_wait=console.print):
        report = _import(settings, folder, name, labels, preset, label_map, columns, link, dry_run)
    _show(report, dry_run)


def _import(
    settings: Any,
    folder: Path,
    name: str | None,
    labels: Path | None,
    preset: str | None,
    label_map: Path | None,
    columns: Any,
    link: bool,
    dry_run: bool,
) -> Any:
    from chfen.ingest import import_folder
    from warehouse import Warehouse

    return import_folder(
        Warehouse(settings.data_path),
        folder,
        source=name,
        labels=labels,
        preset=preset,
        label_map=label_map,
        columns=columns,
        crawl=settings.crawl,
        link=link,
        dry_run=dry_run,
        say=lambda line: console.print(line, markup=False, highlight=False),
    )


def _show(report: Any, dry_run: bool) -> None:
    print_dict(
        "Import" + (" (dry run: nothing written)" if dry_run else ""),
        {
            "source": report.source,
            "labels": report.shape or "none",
            "new": len(report.new),
            "changed": len(report.changed),
            "unchanged": len(report.unchanged),
            "removed from the folder (kept)": len(report.removed),
            "audio only": report.audio_only,
            "labelled files": report.labelled,
            "votes": report.votes,
            "seconds": round(report.seconds, 2),
        },
    )
    if report.votes and not dry_run:
        console.print(
            "next: `chfen process`, then `chfen label push` submits the labels to Label Studio "
            "and `chfen label pull` brings them into `annotations` (or `chfen run`)"
        )
