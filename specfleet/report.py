"""``specfleet report OUT.html``: one self-contained HTML page.

Everything is inlined (plots as PNG data URIs, images and audio as data
URIs, CSS in the page), so the file opens anywhere without a network:

* totals and queue depths per pipeline (``monitoring.summary``);
* jobs finished per minute per pipeline, in bins sized to the run (a
  two-minute demo is a curve, not a dot; thirty instances are not thirty lines);
* queue backlog over time (``queue_depth_history``);
* failures by reason (``v_failure_reasons``) and banned instances;
* hydrophone day coverage from the archive copy's day manifests
  (``{archive_prefix}/{YYYY}/{instrument}/{YYYY_MM_DD}/*_manifest.json``):
  seconds written, coverage %, breaks, pieces, and a timeline of each day;
* hydrophone level products: per day audio-hours, CPU seconds, cost and
  cost per audio-hour beside the fleet plan's estimate, and their total
  (``v_hydro_levels_cost``);
* a gallery of the most recent hydrophone spectrograms, each with its WAV
  playable in the page (keys ``{prefix}/{hydrophone}/{YYYY_MM_DD}/{name}.png|.wav``);
* music spectrogram windows per track (``spec/{track_id}__{win}__{ini}__{fin}.jpg``).

Counts and sizes are bounded by ``ReportSettings`` (``SPECFLEET_REPORT_*``) so the page stays small.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from .monitoring import fetch, fmt_duration, summary
from .pipelines.hydrophone.days import levels_costs, usd
from .pipelines.hydrophone.settings import HydroSettings
from .pipelines.melwindows.settings import SpectroSettings
from .settings import Settings
from .storage import Storage

log = logging.getLogger("specfleet.report")

#: ``{hydrophone}/{YYYY_MM_DD}/{name}.png`` below the hydrophone prefix.
HYDRO_KEY = re.compile(r"^(?P<hydrophone>.+)/(?P<day>\d{4}_\d{2}_\d{2})/(?P<name>[^/]+)\.png$")
#: ``{track_id}__{win}__{ini}__{fin}.jpg`` below the spectrogram prefix.
SPEC_KEY = re.compile(r"^(?P<track_id>.+)__(?P<win>\d+)__(?P<ini>\d+)__(?P<fin>\d+)\.jpg$")
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".wav": "audio/wav", ".svg": "image/svg+xml"}


@dataclass
class Clip:
    hydrophone: str
    day: str
    name: str
    png_key: str
    wav_key: str | None
    wav_size: int = 0
    png_uri: str = ""
    wav_uri: str | None = None


@dataclass
class TrackWindows:
    track_id: str
    windows: list[tuple[int, int, int, str]] = field(default_factory=list)  # (win, ini, fin, key)
    total: int = 0
    uris: dict[str, str] = field(default_factory=dict)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _mime(key: str) -> str:
    return MIME.get(Path(key).suffix.lower(), "application/octet-stream")


# --- S3 discovery ------------------------------------------------------------------------
def find_clips(storage: Storage, prefix: str, limit: int) -> list[Clip]:
    """The ``limit`` most recent hydrophone clips (by day, then clip-start
    name, which sorts by time) that have a spectrogram PNG."""
    prefix = prefix.strip("/") + "/"
    sizes = dict(storage.list(prefix))
    clips = []
    for key in sizes:
        m = HYDRO_KEY.match(key[len(prefix):])
        if not m:
            continue
        wav = key[: -len(".png")] + ".wav"
        clips.append(Clip(m["hydrophone"], m["day"], m["name"], key, wav if wav in sizes else None, sizes.get(wav, 0)))
    clips.sort(key=lambda c: (c.day, c.name, c.hydrophone), reverse=True)
    return clips[:limit]


def find_track_windows(
    storage: Storage, prefix: str, max_tracks: int, max_windows: int, recent_tracks: list[str]
) -> list[TrackWindows]:
    """Windows per track; tracks most recently reported in ``status_specto`` first."""
    prefix = prefix.strip("/") + "/"
    tracks: dict[str, TrackWindows] = {}
    for key, _size in storage.list(prefix):
        m = SPEC_KEY.match(key[len(prefix):])
        if not m or "/" in m["track_id"]:
            continue
        t = tracks.setdefault(m["track_id"], TrackWindows(m["track_id"]))
        t.windows.append((int(m["win"]), int(m["ini"]), int(m["fin"]), key))
    rank = {t: i for i, t in enumerate(recent_tracks)}
    chosen = sorted(tracks.values(), key=lambda t: (rank.get(t.track_id, len(rank)), t.track_id))[:max_tracks]
    for t in chosen:
        t.windows.sort()
        t.total = len(t.windows)
        t.windows = t.windows[:max_windows]
    return chosen


def _load_media(storage: Storage, clips: list[Clip], tracks: list[TrackWindows], max_audio_bytes: int) -> None:
    """Fetch every object the page embeds (in parallel: many small GETs)."""
    jobs: list[tuple[Any, str, str]] = []  # (target, attribute or key, s3 key)
    clip_images = {c.png_key for c in clips}
    for c in clips:
        jobs.append((c, "png_uri", c.png_key))
        if c.wav_key and c.wav_size <= max_audio_bytes:
            jobs.append((c, "wav_uri", c.wav_key))
    for t in tracks:
        for _w, _i, _f, key in t.windows:
            jobs.append((t, key, key))

    def get(key: str) -> str:
        data, mime = storage.get_bytes(key), _mime(key)
        if mime == "audio/wav":
            return data_uri(audio_preview(data), "audio/ogg")
        if key in clip_images:
            return data_uri(*image_preview(data, mime))
        return data_uri(data, mime)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for (target, attr, _key), uri in zip(jobs, pool.map(get, [j[2] for j in jobs]), strict=True):
            if isinstance(target, TrackWindows):
                target.uris[attr] = uri
            else:
                setattr(target, attr, uri)


# --- small previews (the page stays a few MB whatever the run wrote) -------------------------
#: Widest gallery image embedded; larger spectrograms are shrunk to this.
THUMBNAIL_WIDTH = 256
#: Audio previews: mono Ogg Vorbis at this rate at most (the clips' spectrograms stop at 11 kHz).
PREVIEW_RATE = 24_000


def audio_preview(wav: bytes, *, max_rate: int = PREVIEW_RATE, quality: float = 0.3) -> bytes:
    """A WAV as a small mono Ogg Vorbis (a 5 s, 64 kHz int32 clip: 1.3 MB -> ~30 kB)."""
    import math

    import numpy as np
    import scipy.signal
    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate > max_rate:
        g = math.gcd(int(rate), max_rate)
        mono = scipy.signal.resample_poly(mono, max_rate // g, int(rate) // g).astype(np.float32)
        rate = max_rate
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak > 1.0:
        mono /= peak
    out = io.BytesIO()
    sf.write(out, mono, int(rate), format="OGG", subtype="VORBIS", compression_level=1.0 - quality)
    return out.getvalue()


def image_preview(data: bytes, mime: str, width: int = THUMBNAIL_WIDTH) -> tuple[bytes, str]:
    """An image no wider than ``width`` (as JPEG when it had to shrink)."""
    from PIL import Image

    original = Image.open(io.BytesIO(data))
    if original.width <= width:
        return data, mime
    size = (width, round(original.height * width / original.width))
    small = original.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    return out.getvalue(), "image/jpeg"


# --- plots -----------------------------------------------------------------------------------
def _figure_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return data_uri(buf.getvalue(), "image/png")


#: Bin widths the throughput chart may use (seconds): the smallest that
#: still gives at most ``MAX_BINS`` bins over the history shown.
BIN_CHOICES_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
MAX_BINS = 60


def bin_seconds(first: dt.datetime, last: dt.datetime) -> int:
    """A bin width that shows a two-minute run as a curve, not one dot, and
    a day as an hour-by-hour line."""
    span = max(1.0, (last - first).total_seconds())
    return next((b for b in BIN_CHOICES_S if span / b <= MAX_BINS), BIN_CHOICES_S[-1])


def _time_axis(ax: Any, first: dt.datetime, last: dt.datetime) -> None:
    import matplotlib.dates

    pad = max(dt.timedelta(seconds=5), (last - first) * 0.03)
    ax.set_xlim(first - pad, last + pad)
    ax.xaxis.set_major_locator(matplotlib.dates.AutoDateLocator(minticks=3, maxticks=8))
    fmt = "%H:%M:%S" if last - first < dt.timedelta(minutes=10) else "%m-%d %H:%M"
    ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter(fmt))
    ax.set_xlabel("UTC")


def throughput_plot(rows: list[dict[str, Any]], bin_s: int) -> str | None:
    """Jobs finished per minute, one line per pipeline: ``rows`` are
    ``{pipeline, t (bin start), jobs}`` in bins of ``bin_s`` seconds; a bin
    without a job is a zero, not a line drawn across it."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[dt.datetime, int]] = {}
    for r in rows:
        series.setdefault(r["pipeline"], {})[r["t"]] = r["jobs"]
    first, last = min(r["t"] for r in rows), max(r["t"] for r in rows)
    bins = [first + dt.timedelta(seconds=bin_s * i) for i in range(int((last - first).total_seconds() // bin_s) + 1)]
    fig, ax = plt.subplots(figsize=(9, 3.4))
    per_min = 60.0 / bin_s
    for pipeline, counts in sorted(series.items()):
        ax.step(bins, [counts.get(b, 0) * per_min for b in bins], where="post", label=pipeline)
    ax.set_ylabel(f"jobs / minute ({bin_s:g} s bins)")
    _time_axis(ax, first, last + dt.timedelta(seconds=bin_s))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    return _figure_uri(fig)


def backlog_points(samples: list[dict[str, Any]], last_done: dt.datetime | None) -> list[tuple[dt.datetime, int]]:
    """A pipeline's backlog over time from its queue samples. Samples are
    taken only when someone looks (``specfleet status``), so the queue may
    have drained long before the first empty sample: the backlog is drawn
    falling to zero at the pipeline's last finished job (``last_done``)
    when that lies between the last non-empty sample and the empty one."""
    points = [(s["sampled_at"], s["visible"] + s["in_flight"]) for s in samples]
    out: list[tuple[dt.datetime, int]] = []
    for i, (when, backlog) in enumerate(points):
        if (backlog == 0 and i > 0 and points[i - 1][1] > 0 and last_done is not None
                and points[i - 1][0] < last_done < when):
            out.append((last_done, 0))
        out.append((when, backlog))
    return out


def backlog_plot(rows: list[dict[str, Any]], last_done: dict[str, dt.datetime] | None = None) -> str | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates
    import matplotlib.pyplot as plt

    by_pipeline: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        r = {**r, "sampled_at": _naive_utc(r["sampled_at"])}
        by_pipeline.setdefault(r["pipeline"], []).append(r)
    by_pipeline = {k: v for k, v in by_pipeline.items() if len(v) >= 2}  # one sample is not a history
    if not by_pipeline:
        return None
    busy = {k: v for k, v in by_pipeline.items() if any(p["visible"] or p["in_flight"] or p["dlq"] for p in v)}
    fig, ax = plt.subplots(figsize=(9, 3.0))
    shown = busy or by_pipeline
    for pipeline, samples in sorted(shown.items()):
        points = backlog_points(samples, (last_done or {}).get(pipeline))
        # between two samples the queue moved as it did: a line, not a step held until the next look
        ax.plot(matplotlib.dates.date2num([p[0] for p in points]), [p[1] for p in points], marker="o",
                markersize=3, label=f"{pipeline} backlog")
        if any(p["dlq"] for p in samples):
            ax.step([p["sampled_at"] for p in samples], [p["dlq"] for p in samples],
                    where="post", linestyle="--", label=f"{pipeline} DLQ")
    stamps = [r["sampled_at"] for v in shown.values() for r in v]
    _time_axis(ax, min(stamps), max(stamps))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("messages")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return _figure_uri(fig)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def failures_plot(rows: list[dict[str, Any]]) -> str | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    top = rows[:12]
    # Short labels, visibly shortened: the table under the chart has each reason whole.
    labels = [_shorten(f"{r['pipeline']}: {r['reason']}", 48) for r in top][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(top) + 1))
    ax.barh(labels, [r["rows"] for r in top][::-1], color=["#b22" if r["stat"] == -1 else "#d80" for r in top][::-1])
    ax.set_xlabel("rows")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rows are counts
    ax.tick_params(axis="y", labelsize=9)
    fig.tight_layout()
    return _figure_uri(fig)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# --- HTML ----------------------------------------------------------------------------------
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{margin-top:0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}.muted{color:#777}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.clip{width:260px}.clip img{width:256px;height:256px;display:block}
.clip audio{width:256px}.clip .name{font-size:11px;word-break:break-all}
.track{margin:.6em 0}.windows{display:flex;flex-wrap:wrap;gap:4px}.windows figure{margin:0}
.windows img{height:128px;display:block}.windows figcaption{font-size:10px;text-align:center}
img.plot{max-width:100%}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def find_day_manifests(storage: Storage, prefix: str, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest day manifests of the archive copy (by date), parsed."""
    import json

    keys = [k for k, _ in storage.list(prefix.strip("/") + "/") if k.endswith("_manifest.json")]
    keys.sort(key=lambda k: k.rsplit("/", 2)[-2], reverse=True)  # the YYYY_MM_DD folder
    out = []
    for key in keys[:limit]:
        try:
            manifest = json.loads(storage.get_bytes(key))
        except ValueError:
            continue  # a damaged manifest is left out, not the page
        manifest["key"] = key
        out.append(manifest)
    return out


def _seconds_of_day(iso: str) -> float:
    t = dt.datetime.strptime(iso.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def coverage_svg(manifest: dict[str, Any], *, start_s: float = 0.0, end_s: float = 86_400.0, width: int = 960) -> str:
    """One day's recording as an inline SVG strip over ``start_s..end_s`` of the
    day: a green bar per file written, a red one per real break."""
    span = max(end_s - start_s, 1.0)
    rate = manifest.get("sampling_rate") or 64_000
    rate = float(rate if not isinstance(rate, list) else rate[0])

    def x(t: float) -> float:
        return (t - start_s) / span * width

    bars = []
    for f in manifest.get("files", []):
        a = _seconds_of_day(f["start"])
        bars.append(f'<rect x="{x(a):.2f}" y="4" width="{max(x(a + f["npts"] / rate) - x(a), 1.0):.2f}" height="16" '
                    f'fill="#2a9d4b"><title>{_e(f["name"])}: {f["npts"] / rate:.3f} s from {_e(f["start"])}</title></rect>')
    for b in manifest.get("breaks", []):
        a = _seconds_of_day(b["start"])
        bars.append(f'<rect x="{x(a):.2f}" y="2" width="{max(x(a + b["seconds"]) - x(a), 2.0):.2f}" height="20" '
                    f'fill="#d62728"><title>break: {b["seconds"]:.3f} s from {_e(b["start"])}</title></rect>')
    ticks = []
    step = 3600.0 if span > 6 * 3600 else 300.0 if span > 1800 else 60.0
    t = (start_s // step) * step
    while t <= end_s:
        if t >= start_s:
            label = f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"
            ticks.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="22" y2="26" stroke="#888"/>'
                         f'<text x="{x(t) + 2:.1f}" y="36" font-size="10" fill="#555">{label}</text>')
        t += step
    return (f'<svg class="coverage" width="{width}" height="40" viewBox="0 0 {width} 40" role="img">'
            f'<rect x="0" y="4" width="{width}" height="16" fill="#eee"/>{"".join(bars)}{"".join(ticks)}</svg>')


def coverage_section(manifests: list[dict[str, Any]], prefix: str) -> list[str]:
    parts = [f"<h2 id=\"coverage\">Hydrophone day coverage ({len(manifests)} finished day{'s' if len(manifests) != 1 else ''})</h2>"]
    if not manifests:
        parts.append(f'<p class="muted">no day manifests under {_e(prefix)}/ (the archive copy writes one '
                     "when a day finishes: <code>SPECFLEET_HYDRO_ARCHIVE=1</code>)</p>")
        return parts
    parts.append(_table(
        ["day", "hydrophone", "coverage", "seconds written", "files written", "source files", "breaks",
         "missing s", "pieces", "label noise max", "rejected", "too long"],
        [[m["date"], m["refdes"], f'{m["day_coverage_pct"]:.2f} %', f'{m["seconds_written"]:,.3f}',
          m["files_written"], m["source_mseed_files"], len(m.get("breaks", [])), f'{m.get("missing_s", 0):,.3f}',
          m.get("pieces", 0), f'{1e3 * m.get("label_noise_s_max", 0):.0f} ms', len(m.get("rejected", [])),
          len(m.get("too_long", []))] for m in manifests],
    ))
    for m in manifests:
        starts = [_seconds_of_day(f["start"]) for f in m.get("files", [])]
        parts.append(f'<h3>{_e(m["date"])} {_e(m["refdes"])}: {m["day_coverage_pct"]:.2f} % of the day</h3>')
        parts.append('<div class="muted">whole day (green: recording written, red: real breaks)</div>')
        parts.append(coverage_svg(m))
        if starts:
            rate = m.get("sampling_rate") or 64_000
            rate = float(rate if not isinstance(rate, list) else rate[0])
            ends = [a + f["npts"] / rate for a, f in zip(starts, m["files"], strict=True)]
            lo, hi = (min(starts) // 300) * 300, -(-max(ends) // 300) * 300
            parts.append(f'<div class="muted">zoom: {int(lo // 3600):02d}:{int(lo % 3600 // 60):02d}'
                         f'–{int(hi // 3600):02d}:{int(hi % 3600 // 60):02d}</div>')
            parts.append(coverage_svg(m, start_s=lo, end_s=hi))
        if m.get("rejected"):
            parts.append("<ul>" + "".join(f"<li class=muted>{_e(r['source'].rsplit('/', 1)[-1])}: {_e(r['reason'])}</li>"
                                          for r in m["rejected"]) + "</ul>")
    return parts


def levels_cost_section(costs: dict[str, Any]) -> list[str]:
    """The level products' cost per audio-hour per day, the fleet plan's
    estimate beside it, and the total line (``days.levels_costs``)."""
    days = costs.get("days", [])
    parts = [f'<h2 id="levels-cost">Hydrophone levels: cost per audio-hour ({len(days)} '
             f"day{'s' if len(days) != 1 else ''})</h2>"]
    if not days:
        parts.append('<p class="muted">no level products recorded yet (<code>specfleet hydrophone levels-day</code>'
                     " records each day it reduces)</p>")
        return parts

    def row(c: dict[str, Any]) -> list[Any]:
        return [c["day"] or "total", c["hydrophone"], c["files"], f'{c["audio_hours"]:,.2f}', f'{c["cpu_s"]:,.1f}',
                usd(c["cost_usd"]), usd(c["estimate_usd"]), usd(c["cost_per_audio_hour_usd"]),
                usd(c["estimate_per_audio_hour_usd"])]

    parts.append(_table(["day", "hydrophone", "files", "audio h", "CPU s", "cost", "estimate", "cost/audio h",
                         "estimate/audio h"], [row(c) for c in [*days, costs["total"]]]))
    bases = sorted({c["cost_basis"] for c in days if c["cost_basis"]} | {c["estimate_basis"] for c in days
                                                                          if c["estimate_basis"]})
    parts.append("<ul>" + "".join(f"<li class=muted>{_e(b)}</li>" for b in bases) + "</ul>")
    return parts


def _img(uri: str | None, alt: str, cls: str = "plot") -> str:
    return f'<img class="{cls}" alt="{_e(alt)}" src="{uri}">' if uri else f'<p class="muted">{_e(alt)}: no data yet</p>'


def render_html(ctx: dict[str, Any]) -> str:
    snap = ctx["summary"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>specfleet report {_e(snap['generated_at'])}</title><style>{CSS}</style></head><body>",
        f"<h1>specfleet report</h1><p class=muted>generated {_e(snap['generated_at'])} UTC; "
        f"rate over the last {snap['rate_window_min']:g} min; {snap['rejects']} malformed status messages.</p>",
        "<h2>Pipelines</h2>",
        _table(
            ["pipeline", "visible", "in flight", "DLQ", "done", "failed", "skipped", "banned",
             "jobs/min", "ETA", "instances alive", "instances banned"],
            [
                [name, (p["queue"] or {}).get("visible", "-"), (p["queue"] or {}).get("in_flight", "-"),
                 "-" if p["dlq"] is None else p["dlq"], p["done"], p["failed"], p["skipped"], p["banned"],
                 f"{p['jobs_per_min']:.1f}", fmt_duration(p["eta_s"]), len(p["instances_alive"]),
                 len(p["instances_banned"])]
                for name, p in snap["pipelines"].items()
            ],
        ),
        f"<h2>Jobs finished per minute (last {ctx['history_hours']:g} h)</h2>",
        _img(ctx["throughput_png"], "jobs per minute per pipeline"),
        "<h2>Queue backlog</h2>",
        _img(ctx["backlog_png"], "queue backlog history")
        if ctx["backlog_png"] else
        '<p class="muted">no queue history yet: <code>specfleet status --watch</code> samples the queues'
        " into queue_depth_history while it runs</p>",
        "<h2>Failures by reason</h2>",
    ]
    failures = ctx["failures"]
    if failures:
        parts.append(_img(ctx["failures_png"], "failures by reason"))
        parts.append(_table(
            ["pipeline", "stat", "reason", "rows", "instances", "last seen"],
            [[r["pipeline"], r["stat"], r["reason"], r["rows"], r["instances"], r["last_seen"]] for r in failures],
        ))
    else:
        parts.append('<p class="muted">no failures</p>')
    parts.append("<h2>Banned instances</h2>")
    banned = ctx["banned"]
    parts.append(
        _table(["pipeline", "instance", "bans", "first banned", "last banned", "rows after ban"],
               [[r["pipeline"], r["instance_id"], r["bans"], r["first_banned_at"], r["last_banned_at"], r["after_ban"]]
                for r in banned])
        if banned else '<p class="muted">none</p>'
    )

    parts.extend(coverage_section(ctx.get("day_manifests", []), ctx.get("archive_prefix", "archive")))
    parts.extend(levels_cost_section(ctx.get("levels_cost", {})))
    clips: list[Clip] = ctx["clips"]
    parts.append(f"<h2>Recent hydrophone spectrograms ({len(clips)})</h2>")
    if clips:
        parts.append('<div class="gallery" id="hydro-gallery">')
        for c in clips:
            if c.wav_uri:
                audio = f'<audio controls preload="metadata" src="{c.wav_uri}"></audio>'
            elif c.wav_key:
                audio = f'<p class="muted">WAV too large to preview ({c.wav_size} bytes): {_e(c.wav_key)}</p>'
            else:
                audio = '<p class="muted">no WAV</p>'
            parts.append(
                f'<div class="clip"><img class="spectrogram" alt="{_e(c.name)}" src="{c.png_uri}">'
                f'{audio}<div class="name">{_e(c.hydrophone)} {_e(c.day)}<br>{_e(c.name)}</div></div>'
            )
        parts.append("</div>")
    else:
        parts.append(f'<p class="muted">no clips under {_e(ctx["hydro_prefix"])}/</p>')

    tracks: list[TrackWindows] = ctx["tracks"]
    parts.append(f"<h2>Music spectrogram windows ({len(tracks)} tracks)</h2>")
    if not tracks:
        parts.append(f'<p class="muted">no windows under {_e(ctx["spec_prefix"])}/</p>')
    for t in tracks:
        more = f" (showing {len(t.windows)} of {t.total})" if t.total > len(t.windows) else ""
        parts.append(f'<div class="track"><h3>{_e(t.track_id)}{more}</h3><div class="windows">')
        for win, ini, fin, key in t.windows:
            parts.append(
                f'<figure><img class="window" alt="{_e(t.track_id)} window {win}" src="{t.uris.get(key, "")}">'
                f"<figcaption>#{win}: {ini}-{fin} s</figcaption></figure>"
            )
        parts.append("</div></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


class ReportSettings(BaseSettings):
    """``SPECFLEET_REPORT_*``: bounds that keep the self-contained HTML small."""

    model_config = SettingsConfigDict(env_prefix="SPECFLEET_REPORT_", extra="ignore")

    gallery_max: int = 12
    #: Newest day manifests of the archive copy shown in the coverage view.
    coverage_days: int = 31
    #: Newest days of hydrophone level products in the cost view.
    cost_days: int = 31
    max_audio_bytes: int = 4_000_000
    max_tracks: int = 8
    max_windows_per_track: int = 12
    history_hours: float = 24.0


def collect(settings: Settings, config: ReportSettings | None = None) -> dict[str, Any]:
    """Everything the page shows, with media fetched and plots drawn."""
    config = config or ReportSettings()
    hydro, spectro = HydroSettings(), SpectroSettings()
    snap = summary(settings, record=True)
    # The history window ends at the newest data, not at "now", so a report
    # written after a run finished still shows that run.
    hours = dt.timedelta(hours=config.history_hours)
    # this deployment's rows (and those stored before deployments were recorded)
    mine, prefix = "deployment IN (%s, '')", settings.queue_prefix
    [span] = fetch(settings, f"SELECT max(date) AS last, min(date) AS first FROM status_jobs WHERE {mine}"
                             f" AND date >= (SELECT max(date) FROM status_jobs WHERE {mine}) - %s",
                   (prefix, prefix, hours))
    bin_s = bin_seconds(span["first"], span["last"]) if span["last"] is not None else 60
    # jobs (a file, a track) finished per bin: a spectrogram track is one job, not its windows
    throughput = fetch(
        settings,
        "SELECT pipeline, to_timestamp(floor(extract(epoch FROM date) / %s) * %s) AT TIME ZONE 'UTC' AS t,"
        f" count(DISTINCT job_key) AS jobs FROM status_jobs WHERE date >= %s AND {mine} GROUP BY 1, 2 ORDER BY 2",
        (bin_s, bin_s, span["first"] or dt.datetime(1970, 1, 1), prefix),
    )
    last_done = {r["pipeline"]: r["last"] for r in fetch(
        settings, f"SELECT pipeline, max(date) AS last FROM status_jobs WHERE {mine} GROUP BY pipeline", (prefix,))}
    backlog = fetch(
        settings,
        "SELECT pipeline, sampled_at, visible, in_flight, dlq FROM queue_depth_history"
        " WHERE sampled_at >= (SELECT max(sampled_at) FROM queue_depth_history) - %s ORDER BY sampled_at",
        (hours,),
    )
    failures = fetch(settings, "SELECT * FROM v_failure_reasons ORDER BY rows DESC, pipeline, reason")
    banned = fetch(settings, "SELECT * FROM v_banned_instances ORDER BY last_banned_at DESC")
    recent_tracks = [
        r["track_id"]
        for r in fetch(settings, "SELECT track_id FROM status_specto WHERE stat = 1 GROUP BY track_id"
                                 " ORDER BY max(date) DESC LIMIT 1000")
    ]
    storage = Storage(settings)
    clips = find_clips(storage, hydro.prefix, config.gallery_max)
    tracks = find_track_windows(
        storage, spectro.output_prefix, config.max_tracks,
        config.max_windows_per_track, recent_tracks,
    )
    _load_media(storage, clips, tracks, config.max_audio_bytes)
    day_manifests = find_day_manifests(storage, hydro.archive_prefix, config.coverage_days)
    levels_cost = levels_costs(settings, limit=config.cost_days)
    return {
        "summary": snap,
        "history_hours": config.history_hours,
        "throughput_png": throughput_plot(throughput, bin_s),
        "backlog_png": backlog_plot(backlog, last_done),
        "failures": failures,
        "failures_png": failures_plot(failures),
        "banned": banned,
        "clips": clips,
        "tracks": tracks,
        "hydro_prefix": hydro.prefix.strip("/"),
        "day_manifests": day_manifests,
        "archive_prefix": hydro.archive_prefix.strip("/"),
        "levels_cost": levels_cost,
        "spec_prefix": spectro.output_prefix.strip("/"),
    }


def write_report(settings: Settings, path: str | Path, config: ReportSettings | None = None) -> Path:
    """Write the self-contained HTML report to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render_html(collect(settings, config))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    log.info("report written to %s (%d bytes)", path, path.stat().st_size)
    return path
