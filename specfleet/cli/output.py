"""What the terminal shows, and where the rest goes.

* **Logs** go to a file (``~/.specfleet/logs/specfleet.log``, ``SPECFLEET_HOME``; or the run's own
  folder, e.g. the demo's); the terminal gets warnings and errors as one
  short line each (``-v``: info too; ``-q``: errors only). Library chatter
  (botocore, werkzeug, the status writer's structured records) stays in the
  file.
* **Data** (a command's result) goes to stdout once, in one form: a table
  by default, one JSON document with ``--output json`` (``--json`` is the
  same), never both (the AWS CLI's ``--output``). A command's result is a
  pydantic model; the JSON is its ``model_dump(mode="json")``, the table its
  view. Progress, notes and hints go to stderr. Streams and servers are no
  data commands and take no ``--output``: ``work``, ``logs``, ``local up``,
  ``local env`` and ``catalog fake-sources`` (shell exports), ``local poll``,
  ``local ooi-archive``, ``fleet emulate``, ``dashboard``.
* **Help** is made readable once for the whole command tree: paragraphs are
  reflowed (docstrings are hard-wrapped), reST literals become plain quotes,
  and metavars say what a value is (``N``, ``SECONDS``, ``PATH``...) instead
  of ``<int>`` / ``<bool>``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType


def default_log() -> Path:
    """Where logs go when a command has no run folder of its own: one file
    per user, whichever folder the command ran in."""
    from ..settings import specfleet_home

    return specfleet_home() / "logs" / "specfleet.log"

_console_handler: logging.Handler | None = None
_file_handler: logging.Handler | None = None
_verbosity = 0


class _ShortFormatter(logging.Formatter):
    """``warning: message`` for the terminal (the file keeps times and names)."""

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname.lower()
        text = record.getMessage()
        return text if level == "info" else f"{level}: {text}"


def setup_logging(verbosity: int = 0, log_file: Path | None = None) -> Path:
    """Route every logger to ``log_file`` (INFO and up) and the terminal
    (WARNING and up; ``verbosity`` 1: INFO, -1: ERROR only). Idempotent:
    calling it again moves the file (the demo's own run folder)."""
    global _console_handler, _file_handler, _verbosity
    _verbosity = verbosity
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    path = Path(log_file or default_log())
    path.parent.mkdir(parents=True, exist_ok=True)
    if _file_handler is not None:
        root.removeHandler(_file_handler)
        _file_handler.close()
    _file_handler = logging.FileHandler(path, encoding="utf-8")
    _file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(_file_handler)
    if _console_handler is None:
        _console_handler = logging.StreamHandler(sys.stderr)
        _console_handler.setFormatter(_ShortFormatter())
        root.addHandler(_console_handler)
    _console_handler.setLevel({1: logging.INFO, -1: logging.ERROR}.get(verbosity, logging.WARNING))
    # Third-party libraries: their details belong in the file, not on the terminal.
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "httpx", "httpcore", "numba", "matplotlib",
                  "specfleet-status-writer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _console_handler.addFilter(lambda r: r.name.startswith("specfleet") or r.levelno >= logging.ERROR)
    return path


def verbosity() -> int:
    """-1 (``-q``), 0, or 1 (``-v``): how much the terminal should show."""
    return _verbosity


def quiet_console(level: int = logging.ERROR) -> None:
    """Raise the terminal's threshold (the demo shows its own progress)."""
    if _console_handler is not None:
        _console_handler.setLevel(level)


def log_file() -> Path | None:
    return Path(_file_handler.baseFilename) if isinstance(_file_handler, logging.FileHandler) else None


# --- data --------------------------------------------------------------------------
class OutputFormat(StrEnum):
    table = "table"
    json = "json"


#: Every data command's two options (reused as defaults: typer reads them per command).
OUTPUT = typer.Option(OutputFormat.table, "--output", help="table (for people) or json (one JSON document).",
                      case_sensitive=False)
JSON = typer.Option(False, "--json", help="Same as --output json.")

M = TypeVar("M", bound=BaseModel)


def wants_json(output: OutputFormat, as_json: bool = False) -> bool:
    return as_json or output == OutputFormat.json


def render(result: M, view: Callable[[M], Iterable[RenderableType]], output: OutputFormat = OutputFormat.table,
           as_json: bool = False) -> None:
    """Print a command's result on stdout: its JSON (one document, one
    line) or its view's tables and lines, never both."""
    if wants_json(output, as_json):
        print(json.dumps(result.model_dump(mode="json")), flush=True)
        return
    out = Console()
    for part in view(result):
        out.print(part, highlight=False, soft_wrap=isinstance(part, str))


# --- help -------------------------------------------------------------------------
_RST_LITERAL = re.compile(r"``([^`]+)``")


def reflow(text: str | None) -> str | None:
    """Join hard-wrapped lines into paragraphs; reST ``x`` -> 'x'."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", text.strip())
    joined = [" ".join(line.strip() for line in p.splitlines()) for p in paragraphs]
    return _RST_LITERAL.sub(r"'\1'", "\n\n".join(joined))


def _metavar(param: Any) -> str:
    name = (param.name or "value").lower()
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice and desc.choices:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
    kind = param.bare_type() if hasattr(param, "bare_type") else ""
    if kind in ("Path", "PosixPath") or name in ("dir", "out", "path", "csv", "queries", "source", "file"):
        return "PATH"
    if name.endswith("_s") or name in ("interval", "idle_exit", "sleep", "deadline"):
        return "SECONDS"
    if kind == "int":
        return "N"
    if kind == "float":
        return "NUMBER"
    return name.upper()


def polish(command: Any) -> None:
    """Reflow help texts and set readable metavars on the whole command tree
    (a click command tree as typer builds it; duck-typed, as typer vendors click)."""
    command.help = reflow(command.help)
    if getattr(command, "short_help", None):
        command.short_help = reflow(command.short_help)
    for param in command.params:
        if param.param_type_name == "option":
            param.help = reflow(param.help)
            if param.is_flag or param.count:
                param.metavar = ""
            elif param.metavar is None:
                param.metavar = _metavar(param)
        elif param.param_type_name == "argument" and param.metavar is None:
            param.metavar = (param.name or "arg").upper()
            param.display_type_rich = lambda ctx: None  # the name says it; no "<str>" column
    original = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        polish(sub)
