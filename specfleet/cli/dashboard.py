"""``specfleet dashboard``: a live page of the fleet, served on loopback.

The page, its JSON snapshots and the media route are the dashboard service
(``specfleet.dashboard``); this command starts it on ``--port``, prints its
address and waits for Ctrl-C. A server, not a result: it prints the address
once (stdout) and has no ``--output``.
"""

from __future__ import annotations

import typer

from .context import settings


def dashboard(
    port: int = typer.Option(8765, help="Port on 127.0.0.1 (0: any free one)."),
    refresh: float = typer.Option(2.0, min=0.5, help="Seconds between the page's updates."),
) -> None:
    """A live page of the fleet on 127.0.0.1: queues, rates, ETAs, instances, failures, newest clips.

    Open the printed address in a browser; the page updates itself. Ctrl-C stops the server.

    Example: specfleet dashboard --port 8765
    """
    from rich.console import Console

    from ..dashboard import Dashboard
    from ..local.stack import stop_on_signals, wait_until

    stop = stop_on_signals()
    board = Dashboard(settings(), port=port, refresh_s=refresh).start()
    Console(stderr=True).print(f"dashboard on {board.url} (Ctrl-C stops)", highlight=False, soft_wrap=True)
    print(board.url, flush=True)
    try:
        wait_until(stop)
    finally:
        board.close()


def register(app: typer.Typer, produce: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
