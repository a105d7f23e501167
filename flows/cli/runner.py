"""The one runner behind every `chfen` command: the root Typer app and its global options, the
settings (resolved once per invocation), the Prefect runtime (set up once, for commands that
run flows), and one mapping from errors to exit codes (`EXIT_CODES`, also in `chfen --help`
and the README).

A command module registers its commands with `command(group, name, flows=...)`; the body
then finds the resolved settings in `state.settings` and raises what goes wrong: a
`ConfigError` or `UsageError` (exit 2), a known failure of the work (exit 1), anything else
(exit 3, with the traceback).

An expected error (exit 1 or 2) prints its message only: one or two lines, also when it ended
a Prefect flow (the engine's "Encountered exception" record with its traceback is dropped, see
`ExpectedErrorFilter`). The global `--debug` prints the tracebacks too. (Not an environment
variable: CHFEN_* variables are settings.)
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from chfen.config import ConfigError, Provenance, Settings, load_settings
from flows.cli.show import err_console
from flows.runtime import UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# code -> what it means; printed by `chfen --help` and listed in the README.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done",
    EXIT_FAILED: "the work failed; the message says what and what to do",
    EXIT_USAGE: "bad command line or settings (unknown option, table or source; invalid config)",
    EXIT_UNEXPECTED: "unexpected error (a bug): the traceback is printed; please report it",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


def _failures() -> tuple[type[BaseException], ...]:
    """Errors that mean "the work failed" (exit 1): each says what failed and what to do."""
    from chfen.procs import LockBusy
    from chfen.stages import StageError
    from flows.server import PrefectServerError
    from labeling.server import LabelStudioError
    from warehouse import WarehouseError

    # ValueError last in spirit: ConfigError and UsageError (also ValueErrors) are mapped first.
    return (
        WarehouseError, LabelStudioError, PrefectServerError, StageError, LockBusy, ValueError,
    )  # fmt: skip


def exit_code_for(exc: BaseException) -> int:
    """The exit code of an error a command raised (`EXIT_CODES`)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigError | UsageError):
        return EXIT_USAGE
    if isinstance(exc, _failures()):
        return EXIT_FAILED
    return EXIT_UNEXPECTED


def epilog() -> str:
    rows = "\n\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return f"Exit codes:\n\n{rows}"


app = typer.Typer(
    name="chfen",
    help="Short-video affective computing: crawl, process, label, embed, train.",
    epilog=epilog(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def is_expected(exc: BaseException) -> bool:
    """An error whose message is all the user needs (exit 1 or 2): no traceback without
    --debug."""
    return exit_code_for(exc) in (EXIT_FAILED, EXIT_USAGE)


class ExpectedErrorFilter(logging.Filter):
    """Drops a console record of Prefect's run engines that carries an expected error
    (`is_expected`) with its traceback: the engine logs every exception that ends a flow or
    task run that way, and the runner then prints the same message once. Other records, and
    unexpected errors, pass; the records still reach the Prefect API (its own handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_RUN_LOGGERS):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not is_expected(exc)


# The loggers Prefect's flow and task engines report a run's exception on.
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_filter = ExpectedErrorFilter()


def quiet_expected_errors() -> None:
    """Put `ExpectedErrorFilter` on the console handlers (the root logger's, where Prefect's
    run loggers propagate to), once Prefect has set up its logging."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    for handler in logging.getLogger().handlers:
        if _filter not in handler.filters:
            handler.addFilter(_filter)


class State:
    """The invocation's settings file, overrides, and the settings resolved from them once."""

    def __init__(self) -> None:
        self.reset()

    def reset(
        self,
        config: Path | None = None,
        overrides: list[str] | None = None,
        debug: bool = False,
    ) -> None:
        self.debug = debug
        self.config = config
        self.overrides = list(overrides or [])
        self._loaded: tuple[Settings, Provenance] | None = None
        self._runtime = False

    def add_local(self, config: Path | None, overrides: list[str] | None) -> None:
        """Options given after a command name (`chfen train --config X --set k=v`)."""
        if config is not None:
            self.config = config
            self._loaded = None
        if overrides:
            self.overrides = [*self.overrides, *overrides]
            self._loaded = None

    def load(self) -> tuple[Settings, Provenance]:
        """The resolved settings and where each value came from (resolved on first use)."""
        if self._loaded is None:
            self._loaded = load_settings(self.config, self.overrides)
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.load()[0]

    def configure_runtime(self) -> None:
        """Prefect's home and offline defaults for these settings (before Prefect loads)."""
        if not self._runtime:
            from flows import runtime

            runtime.configure(self.settings)
            self._runtime = True


state = State()


def run(body: Callable[[], Any], *, flows: bool) -> Any:
    """Run a command's body: resolve the settings, set up the runtime when it runs flows, and
    turn what it raises into an exit code (`exit_code_for`) with a message on stderr."""
    try:
        state.load()
        if flows:
            state.configure_runtime()
            if not state.debug:
                quiet_expected_errors()
        return body()
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # Typer's own exits and usage errors keep their codes
    except BaseException as exc:  # noqa: BLE001 - every error leaves through one mapping
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        code = exit_code_for(exc)
        if code == EXIT_UNEXPECTED or (state.debug and code != EXIT_INTERRUPTED):
            traceback.print_exc()
        if code == EXIT_UNEXPECTED:
            err_console.print(f"[red]unexpected error:[/red] {type(exc).__name__}: {exc}")
        elif code == EXIT_INTERRUPTED:
            err_console.print("[yellow]interrupted[/yellow]")
        elif isinstance(exc, ConfigError):
            err_console.print(f"[red]config error:[/red] {escape(str(exc))}")
        else:
            err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(code) from None


def command(group: typer.Typer, name: str, *, flows: bool = False) -> Callable[[F], F]:
    """Register a function as the command `name` of `group`, run through `run`. `flows`: it
    runs Prefect flows (the runtime is set up first)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run(lambda: fn(*args, **kwargs), flows=flows)

        group.command(name)(wrapper)
        return fn

    return decorate


def flow_args() -> dict[str, Any]:
    """What every flow gets from the CLI: the settings resolved once."""
    return {"settings": state.settings}


@app.callback()
def main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML config file (default: $CHFEN_CONFIG, ./chfen.yaml, or the shipped one).",
            dir_okay=False,
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override one setting: section.key=value (repeatable)."),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Print the traceback of every error, also of expected ones.",
        ),
    ] = False,
) -> None:
    state.reset(config, set_, debug=debug)
