"""The `chfen` command line (Typer). A command here either works or is not listed.

Global options come first: `chfen [--config FILE] [--set key=value ...] [--debug] COMMAND`.

One runner (runner.py) resolves the settings once, sets up the Prefect runtime for commands
that run flows, and maps errors to exit codes (`EXIT_CODES`, shown by `chfen --help`). The
commands, by group:

    stages.py    run, crawl, process, embed, quality
    imports.py   import (a local folder of media files and its labels)
    training.py  predict, train, train ablations
    tables.py    sql, warehouse compact|info|check|repair
    services.py  serve, demo-site, prefect start|stop|status, labelstudio start|stop|status
    labels.py    label push|pull, demo annotate
    settings.py  config show

show.py has the consoles and the tables of the flows' summaries.
"""

from flows.cli import imports, labels, services, settings, stages, tables, training  # noqa: F401
from flows.cli.runner import EXIT_CODES, app, exit_code_for, state

# `chfen --help` lists commands, then groups, in this order (the pipeline first).
HELP_ORDER = ("run", "import", "crawl", "process", "embed", "quality", "train", "predict", "sql",
              "warehouse", "label", "demo", "labelstudio", "prefect", "serve", "demo-site",
              "config")  # fmt: skip
app.registered_commands.sort(key=lambda c: HELP_ORDER.index(c.name))
app.registered_groups.sort(key=lambda g: HELP_ORDER.index(g.name))

__all__ = ["EXIT_CODES", "app", "exit_code_for", "state"]
