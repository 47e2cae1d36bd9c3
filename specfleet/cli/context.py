"""The settings of one ``specfleet`` invocation, resolved once.

The root callback puts an :class:`Invocation` into click's ``ctx.obj``;
every command reads its settings from there (``settings()``,
``fleet_settings()``), so the project file is read, the local stack found
and the endpoint checked at most once per command line, however many
helpers ask. Resolution is lazy: ``local up`` or ``--help`` never touch
an endpoint.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.console import Console
from typer._click.globals import get_current_context  # typer vendors click: its context, not click's

from ..settings import Settings
from .errors import endpoint_hint, fail
from .output import verbosity

if TYPE_CHECKING:
    from ..fleet.settings import FleetSettings

console = Console(stderr=True)


def stack_dir(dir: Path | None) -> Path:
    """The local stack's folder: ``--dir``, else ``SPECFLEET_LOCAL_DIR``, else ``~/.specfleet/local``."""
    return Path(dir if dir is not None else Settings().local_dir).expanduser().resolve()


def _require_answering(url: str) -> None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "", parts.port or 80), timeout=2).close()
    except OSError:
        fail(f"nothing answers at {url} (AWS_ENDPOINT_URL)", endpoint_hint(url))


def resolve_base(*, check_endpoint: bool = True) -> Settings:
    """Settings from the environment; if nothing points elsewhere and a
    local stack is running, use it (so ``local up`` then any command works),
    saying so once. An emulator endpoint that does not answer is an error
    now, not after a minute of retries (``check_endpoint=False``: a worker,
    which waits out outages instead). A ``specfleet.toml`` (``infra deploy
    --guided``) supplies defaults first; a project deployed to AWS (not the
    emulator) never falls back to the local stack."""
    from ..local.stack import read_state
    from .project import ProjectFileError, apply_env, load, project_path

    try:
        project = load()
    except ProjectFileError as err:
        fail(str(err), "fix it or move it away; `specfleet infra deploy --guided` writes a new one")
    if project is not None and apply_env(project) and verbosity() >= 0:
        where = f"stack {project.deploy.stack_name or '?'} in {project.deploy.region or '?'}"
        console.print(f"[dim]using {project_path()} ({where})[/]", highlight=False)
    on_aws = project is not None and not project.deploy.emulator
    if not on_aws and not os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("SPECFLEET_ENDPOINT_URL"):
        local_dir = stack_dir(None)
        state = read_state(local_dir)
        if state is not None:
            if verbosity() >= 0:
                console.print(f"[dim]using the local stack in {local_dir} ({state.endpoint_url})[/]", highlight=False)
            return state.settings()
    s = Settings()
    if s.endpoint_url and check_endpoint:
        _require_answering(s.endpoint_url)
    return s


@dataclass
class Invocation:
    """What one command line resolved: base settings (the endpoint checked
    or not), the database tunnel, and the fleet's settings, each computed
    on first use and kept."""

    _base: Settings | None = None
    _checked: bool = False
    _tunneled: Settings | None = None
    _fleet: FleetSettings | None = None

    def base_settings(self, *, check_endpoint: bool = True) -> Settings:
        if self._base is None:
            self._base = resolve_base(check_endpoint=check_endpoint)
            self._checked = check_endpoint
        elif check_endpoint and not self._checked and self._base.endpoint_url:
            _require_answering(self._base.endpoint_url)
            self._checked = True
        return self._base

    def settings(self, *, check_endpoint: bool = True) -> Settings:
        """``base_settings``, reaching the database through an SSM tunnel when
        ``SPECFLEET_FLEET_DB_TUNNEL`` asks for one (``specfleet db tunnel``);
        if the tunnel cannot open, one line says why and commands go on without."""
        s = self.base_settings(check_endpoint=check_endpoint)
        if self._tunneled is None:
            from ..fleet.tunnel import TunnelError, maybe_through_tunnel

            try:
                self._tunneled = maybe_through_tunnel(s)
            except TunnelError as err:
                console.print(f"[yellow]no database tunnel[/]: {err}", soft_wrap=True)
                self._tunneled = s
        return self._tunneled

    def fleet_settings(self, *, check_endpoint: bool = True) -> FleetSettings:
        """``base_settings`` plus the fleet's own (``SPECFLEET_FLEET_*``), for
        the commands that manage instances and the stack (no database, so no tunnel)."""
        if self._fleet is None:
            from ..fleet.settings import FleetSettings

            self._fleet = FleetSettings.over(self.base_settings(check_endpoint=check_endpoint))
        return self._fleet


def invocation() -> Invocation:
    """This command line's :class:`Invocation` (the root callback made it);
    outside a click context (a test calling a helper), a fresh one."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return Invocation()
    found = ctx.find_object(Invocation)
    if found is None:
        found = ctx.find_root().ensure_object(Invocation)
    return found


def settings(*, check_endpoint: bool = True) -> Settings:
    return invocation().settings(check_endpoint=check_endpoint)


def base_settings(*, check_endpoint: bool = True) -> Settings:
    return invocation().base_settings(check_endpoint=check_endpoint)


def fleet_settings(*, check_endpoint: bool = True) -> FleetSettings:
    return invocation().fleet_settings(check_endpoint=check_endpoint)
