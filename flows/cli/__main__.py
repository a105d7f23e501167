"""`python -m flows.cli` runs the `chfen` command line."""

from flows.cli import app

app()
