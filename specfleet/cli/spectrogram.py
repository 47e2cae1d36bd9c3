"""CLI of the spectrogram pipeline: ``produce spectrogram``,
``spectrogram AUDIO --track-id ID --out DIR`` (also ``spectrogram run ...``)
and ``spectrogram preview MP3 --out PNG``. Heavy imports happen inside the
commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from .context import settings
from .errors import fail
from .output import JSON, OUTPUT, OutputFormat, render

if TYPE_CHECKING:
    from typer._click import Context  # typer vendors click; its groups take this Context

console = Console(stderr=True)


class RunByDefault(TyperGroup):
    """``spectrogram AUDIO ...`` (the CLI contract) runs ``spectrogram run``;
    a subcommand name (``preview``) or ``--help`` first goes to the group."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


spectrogram_app = typer.Typer(
    cls=RunByDefault,
    help="Mel-spectrogram windows of one track: write them (AUDIO --track-id ID --out DIR) or preview one.",
)


def produce_spectrogram(
    max_bytes: int | None = typer.Option(None, "--max-bytes", help="Skip mp3s larger than this (default: settings, 10 MB)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be enqueued."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Enqueue one job per mp3 under audio/ that is small enough and has no windows yet.

    Example: specfleet produce spectrogram --dry-run
    """
    from ..pipelines.melwindows.settings import SpectroSettings
    from ..pipelines.spectrogram.producer import ProduceReport, plan_jobs, produce

    s, config = settings(), SpectroSettings()
    if max_bytes is not None:
        config = config.model_copy(update={"max_mp3_bytes": max_bytes})
    if dry_run:
        report = ProduceReport()
        report.enqueued = len(plan_jobs(s, config, report))
    else:
        report = produce(s, config)
    render(Produced(**report.as_dict()), lambda r: [
        f"listed {r.listed} objects: {'would enqueue' if dry_run else 'enqueued'} {r.enqueued}, "
        f"{r.skipped_done} already done, {r.skipped_too_large} too large, "
        f"{r.skipped_empty} empty, {r.skipped_not_mp3} not <track_id>.mp3"], output, as_json)


class Produced(BaseModel):
    """``produce spectrogram``: what the listing held and what was (or would be) enqueued."""

    listed: int
    enqueued: int
    skipped_done: int
    skipped_too_large: int
    skipped_empty: int
    skipped_not_mp3: int


@spectrogram_app.command("run")
def spectrogram(
    audio: Path = typer.Argument(..., help="An mp3 file."),
    track_id: str = typer.Option(..., "--track-id", help="Track id used in the window file names."),
    out: Path = typer.Option(..., "--out", help="Folder for the window JPEGs."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Run one track's spectrogram windows locally (no queues); print what was written.

    Example: specfleet spectrogram song.mp3 --track-id 4uLU6hMCjMI75M1A2tKUQC --out windows/
    """
    from ..pipelines.melwindows.settings import SpectroSettings
    from ..pipelines.spectrogram.worker import spectrogram_file
    from ..runtime import Rejected, Skipped

    try:
        summary = spectrogram_file(audio, track_id, out, SpectroSettings())
    except Skipped as err:
        console.print(f"[yellow]skipped[/]: {err}")
        raise typer.Exit(3) from None
    except Rejected as err:
        console.print(f"[red]rejected[/]: {err}")
        raise typer.Exit(2) from None
    render(Windows.model_validate(summary), _windows_view, output, as_json)


class Window(BaseModel):
    win: int
    ini: float
    fin: float
    rows: int
    cols: int
    path: str


class Windows(BaseModel):
    """``spectrogram AUDIO``: the track's window images written."""

    track_id: str
    duration_s: float
    source_sample_rate: int
    source_channels: int
    windows: list[Window]


def _windows_view(w: Windows) -> Iterator[Table | str]:
    table = Table(title=f"{w.track_id}: {len(w.windows)} windows ({w.duration_s:.1f} s of audio)", title_justify="left")
    for col in ("window", "from (s)", "to (s)", "rows x cols", "file"):
        table.add_column(col, justify="left" if col == "file" else "right", overflow="fold")
    for x in w.windows:
        table.add_row(str(x.win), f"{x.ini:g}", f"{x.fin:g}", f"{x.rows} x {x.cols}", escape(x.path))
    yield table


@spectrogram_app.command("preview")
def preview(
    source: str = typer.Argument(..., help="An mp3 file, or an http(s) URL on SPECFLEET_SPECTRO_ALLOWED_HOSTS.", metavar="MP3"),
    out: Path = typer.Option(..., "--out", help="PNG file to write.", metavar="PNG"),
    window: int | None = typer.Option(
        None, "--window", min=0, help="Which window: 0 is 0-30 s, 1 is 20-50 s, ... (default: 0).", metavar="N"
    ),
    start: float | None = typer.Option(
        None, "--start", min=0, help="Draw the window that starts nearest this second instead.", metavar="SECONDS"
    ),
    cmap: str = typer.Option("gray_r", "--cmap", help="matplotlib colour map (the pipeline's images use gray_r).", metavar="NAME"),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Draw one window as the pipeline computes it: time (s), mel frequency (Hz), dB colourbar.

    One window, not the whole track: each window image has its own dB range
    and median floor, and the figure uses that window's range.

    Example: specfleet spectrogram preview song.mp3 --start 60 --out song-60s.png
    """
    from ..pipelines.melwindows.compute import params_from_settings
    from ..pipelines.melwindows.dsp import AudioError
    from ..pipelines.melwindows.settings import SpectroSettings
    from ..pipelines.spectrogram.preview import PreviewError, WindowChoiceError, db_text
    from ..pipelines.spectrogram.preview import preview as draw_preview

    if out.suffix.lower() != ".png":
        fail(f"--out must name a .png file, got {str(out)!r}", code=2)
    config = SpectroSettings()
    with console.status(f"drawing {source}"):
        try:
            result = draw_preview(source, out, params=params_from_settings(config), window=window, start_s=start,
                                  cmap=cmap, max_url_bytes=config.max_mp3_bytes, config=config)
        except WindowChoiceError as err:
            fail(str(err), code=2)
        except (PreviewError, AudioError) as err:
            fail(str(err))
    w = result.window
    drawn = Drawn(out=str(out), win=w.win, ini=w.ini, fin=w.fin, windows=result.windows, duration_s=result.duration_s,
                  size=list(result.size), db_lo=result.vmin, db_hi=result.vmax, render=result.render.name)
    render(drawn, lambda d: [f"[green]{escape(d.out)}[/]: window {d.win} of {d.windows} ({d.ini}-{d.fin} s), "
                             f"colour {db_text(d.db_lo)} to {db_text(d.db_hi)} dB"], output, as_json)


class Drawn(BaseModel):
    """``spectrogram preview``: the window drawn and its colour range."""

    out: str
    win: int
    ini: float
    fin: float
    windows: int
    duration_s: float
    size: list[int]
    db_lo: float
    db_hi: float
    render: str


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    produce_app.command("spectrogram")(produce_spectrogram)
    app.add_typer(spectrogram_app, name="spectrogram")
