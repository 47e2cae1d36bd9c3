"""The plugin loader: each pipeline adds its commands through its spec's
``cli`` reference, and the core commands and tools through ``TOOLS``; each
is a small module exposing ``register(app, produce_app)``. Keep those
modules light: heavy libraries load inside the command functions."""

from __future__ import annotations

from importlib import import_module

import typer

from ..pipelines import specs

#: Core commands and tools (not pipelines), in the order ``--help`` lists them.
TOOLS = [
    "specfleet.cli.local",
    "specfleet.cli.work",
    "specfleet.cli.status",
    "specfleet.cli.dlq",
    "specfleet.cli.demo",
    "specfleet.cli.fleet",
    "specfleet.cli.logs",
    "specfleet.cli.db",
    "specfleet.cli.monitoring",
    "specfleet.cli.catalog",
    "specfleet.cli.results",
    "specfleet.cli.dashboard",
]


def load_plugins(app: typer.Typer, produce_app: typer.Typer) -> None:
    for name in TOOLS:
        import_module(name).register(app, produce_app)
    for spec in specs():
        if spec.cli is not None:
            spec.cli.load()(app, produce_app)
