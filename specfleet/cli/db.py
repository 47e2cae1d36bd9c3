"""``specfleet db tunnel``: the private database on this machine's
``127.0.0.1`` through Session Manager port forwarding (see
``specfleet/fleet/tunnel.py`` for the AWS calls). With
``SPECFLEET_FLEET_DB_TUNNEL=true`` status, report and the producers open
such a tunnel themselves."""

from __future__ import annotations

import typer
from pydantic import BaseModel
from rich.console import Console

from .context import fleet_settings
from .errors import fail
from .output import JSON, OUTPUT, OutputFormat, render

console = Console(stderr=True)
db_app = typer.Typer(help="The private database from a laptop (SSM port forwarding through a fleet instance).")


@db_app.command("tunnel")
def tunnel(
    instance: str | None = typer.Option(None, help="Fleet instance to forward through (default: any running one)."),
    local_port: int = typer.Option(15432, min=0, max=65535, help="Local port (0: any free one)."),
    hold_for: float | None = typer.Option(None, "--for", min=0, help="Close after this many seconds (default: Ctrl-C)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Forward 127.0.0.1:LOCAL_PORT to the database until Ctrl-C. Calls
    secretsmanager:GetSecretValue, ec2:DescribeInstances, ssm:StartSession
    (AWS-StartPortForwardingSessionToRemoteHost), runs session-manager-plugin,
    and ssm:TerminateSession on exit.

    Example: specfleet db tunnel --local-port 5433
    """
    import threading

    from ..fleet.tunnel import TunnelError, open_tunnel, redacted, tunnel_dsn
    from ..local.stack import stop_on_signals, wait_until

    s = fleet_settings()
    stop = stop_on_signals()
    try:
        opened = open_tunnel(s, instance_id=instance, local_port=local_port)
    except TunnelError as err:
        fail(str(err))
    with opened:
        host, port = opened.remote
        # Printed while the tunnel is open: a script reads the port from it, a person the lines.
        render(Tunnel(instance=opened.instance_id, session_id=opened.session_id, local_port=opened.local_port,
                      remote=f"{host}:{port}", calls=list(opened.calls)), _tunnel_view, output, as_json)
        console.print(f"connect with: {redacted(tunnel_dsn(s, opened))} (password: the secret's); Ctrl-C closes",
                      soft_wrap=True)
        if hold_for is not None:
            threading.Timer(hold_for, stop.set).start()
        wait_until(stop)
    console.print(f"tunnel closed ({', '.join(opened.calls[-1:])})")


class Tunnel(BaseModel):
    """``db tunnel``: the port forwarded, where to, through which instance and session, and the AWS calls made."""

    instance: str
    session_id: str
    local_port: int
    remote: str
    calls: list[str]


def _tunnel_view(t: Tunnel) -> list[str]:
    return [f"forwarding 127.0.0.1:{t.local_port} -> {t.remote} through {t.instance} (session {t.session_id})"]


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
