"""The ``specfleet`` typer app and its root callback. Commands are added by
the plugin loader (``plugins.py``); settings are resolved in ``context.py``."""

from __future__ import annotations

import typer

from ..pipelines import UnknownPipeline, get_spec
from .context import Invocation
from .output import setup_logging

app = typer.Typer(help="specfleet: queue-driven audio-processing fleets on AWS.", no_args_is_help=True)
produce_app = typer.Typer(help="Put jobs on a pipeline's queue.")
app.add_typer(produce_app, name="produce")


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show progress messages (they always go to the log file)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show errors only."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
) -> None:
    """Run audio-processing fleets on AWS, or all of it on this machine.

    Logs go to ~/.specfleet/logs/specfleet.log (SPECFLEET_HOME); the terminal shows warnings and errors.
    """
    setup_logging(1 if verbose else -1 if quiet else 0)
    # One resolver per command line: every command takes its settings from here.
    ctx.obj = Invocation()


def pipeline_name(value: str) -> str:
    """A registered pipeline's name, or a usage error naming the choices."""
    try:
        return get_spec(value).name
    except UnknownPipeline as err:
        raise typer.BadParameter(str(err)) from None


def pipeline_names(values: list[str]) -> list[str]:
    """``pipeline_name`` for a repeatable option."""
    return [pipeline_name(v) for v in values]
