"""The ``specfleet`` command: the app (``app.py``) with every command loaded
(``plugins.py``), readable help, and one line (plus a hint) instead of a
traceback when something fails."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.markup import escape

from .app import app, produce_app
from .errors import explain
from .output import polish
from .plugins import load_plugins

__all__ = ["app", "main"]

console = Console(stderr=True)
load_plugins(app, produce_app)


def main(argv: list[str] | None = None) -> None:
    """The ``specfleet`` command: the typer app with readable help, and one
    line (plus a hint) instead of a traceback or a box when something fails."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    polish(command)
    try:
        code = command.main(args=args, prog_name="specfleet", standalone_mode=False)
    except typer.Abort:
        console.print("aborted")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        console.print("interrupted")
        raise SystemExit(130) from None
    except Exception as err:
        if hasattr(err, "format_message") and hasattr(err, "exit_code"):  # click's usage errors
            ctx = getattr(err, "ctx", None)
            where = f" -- see '{ctx.command_path} --help'" if ctx is not None else ""
            console.print(f"[red]error[/]: {escape(err.format_message() + where)}", highlight=False, soft_wrap=True)
            raise SystemExit(err.exit_code) from None
        logging.getLogger("specfleet.cli").info("command failed", exc_info=err)  # the log file keeps the traceback
        if "--debug" in args:
            raise
        explained = explain(err)
        console.print(f"[red]error[/]: {escape(explained.line())}", highlight=False, soft_wrap=True)
        raise SystemExit(explained.exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
