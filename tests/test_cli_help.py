"""Help people can read (issue 18): every command has a one-sentence
description and an example that the command's own parser accepts; help
pages show plain metavars and defaults as values."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import click
import pytest
import typer

from specfleet.cli.main import app
from specfleet.cli.output import polish


def _commands() -> Iterator[tuple[str, Any]]:
    root = typer.main.get_command(app)
    polish(root)

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(root, [])


COMMANDS = dict(_commands())


def test_there_are_commands_to_check() -> None:
    assert len(COMMANDS) >= 45 and {"work", "demo", "status", "fleet launch", "hydrophone preview"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_a_description_and_an_example_that_parses(name: str) -> None:
    command = COMMANDS[name]
    text = command.help or ""
    first = re.split(r"(?<=[.:;])\s", text.strip().splitlines()[0])[0]  # the first sentence
    assert first and first[0].isupper() and len(first) <= 120, first
    examples = re.findall(r"Example: (.+)", text)
    assert examples, f"`specfleet {name}` has no example"
    for example in examples:
        line = example.split("&&")[0].strip()
        if line.startswith("eval "):
            line = shlex.split(line)[1].removeprefix("$(").removesuffix(")")
        words = shlex.split(line)
        path = name.split()
        if path[-1] == "run" and words[: len(path)] == ["specfleet", *path[:-1]]:
            words.insert(len(path), "run")  # a group that runs `run` by default (spectrogram AUDIO ...)
        assert words[: 1 + len(path)] == ["specfleet", *path], example
        try:
            command.make_context(f"specfleet {name}", words[1 + len(path):])  # parse only, run nothing
        except click.exceptions.Exit:
            pass
        except click.UsageError as err:
            pytest.fail(f"example `{example}` does not parse: {err.format_message()}")


@pytest.mark.parametrize("name", ["work", "produce hydrophone", "fleet plan", "status"])
def test_help_pages_show_plain_metavars_and_defaults(name: str) -> None:
    shown = subprocess.run([sys.executable, "-m", "specfleet.cli.main", *name.split(), "--help"], text=True,
                           capture_output=True, timeout=60, env={**os.environ, "COLUMNS": "120"})
    assert shown.returncode == 0, shown.stderr
    assert "Example:" in shown.stdout
    for noise in ("<bool>", "INTEGER", "FLOAT", "TEXT", "[default: None]"):
        assert noise not in shown.stdout, (noise, shown.stdout)
