"""Pictures of sound levels: a long-term spectrogram (time x frequency, dB
colour bar in the levels' units) above percentile spectra (1/5/50/95/99 %),
for a day or a run of days (``levels_day.concat_days``).

``ltsa_grid`` and ``percentile_spectra`` are pure (arrays in, arrays out);
``render_summary`` draws them. Missing minutes stay blank: a column whose
minutes all lack audio is NaN and is drawn in the background colour, never
as a level.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .levels_day import DayLevels

PERCENTILES = (1.0, 5.0, 50.0, 95.0, 99.0)


def ltsa_grid(
    psd_db: np.ndarray, frequency: np.ndarray, *, columns: int = 1200, rows: int = 400, fmin: float = 10.0
) -> tuple[np.ndarray, tuple[float, float]]:
    """(rows, columns) dB image, row 0 at the lowest frequency, rows evenly
    spaced in log10(frequency) from ``fmin`` to the top band; columns are
    runs of consecutive minutes averaged in power (missing minutes left
    out, a column of only missing minutes NaN). Returns the image and the
    log10 frequency span."""
    psd_db = np.asarray(psd_db, dtype=np.float64)
    n = psd_db.shape[0]
    cols = max(1, min(columns, n))
    edges = np.linspace(0, n, cols + 1).round().astype(int)
    power = 10.0 ** (psd_db / 10.0)
    binned = np.full((cols, psd_db.shape[1]), np.nan)
    for c in range(cols):
        block = power[edges[c] : edges[c + 1]]
        ok = np.isfinite(block).all(axis=1) if block.size else np.zeros(0, bool)
        if ok.any():
            binned[c] = block[ok].mean(axis=0)
    f = np.asarray(frequency, dtype=np.float64)
    lo, hi = np.log10(max(fmin, float(f[f > 0].min()))), np.log10(float(f.max()))
    centres = np.linspace(lo, hi, rows + 1)
    centres = (centres[:-1] + centres[1:]) / 2
    # Each row shows the band whose centre is nearest (in log frequency) to the row's.
    logf = np.log10(np.maximum(f, 1e-9))
    idx = np.clip(np.searchsorted(logf, centres), 1, len(f) - 1)
    idx -= (centres - logf[idx - 1]) < (logf[idx] - centres)
    with np.errstate(divide="ignore"):
        img = 10.0 * np.log10(binned[:, idx].T)
    return img.astype(np.float32), (float(lo), float(hi))


def percentile_spectra(psd_db: np.ndarray, q: tuple[float, ...] = PERCENTILES) -> np.ndarray:
    """(len(q), bands) percentiles over the minutes that have audio (in dB;
    percentiles commute with the monotonic dB scale). All NaN when none has."""
    psd_db = np.asarray(psd_db, dtype=np.float64)
    ok = np.isfinite(psd_db).all(axis=1)
    if not ok.any():
        return np.full((len(q), psd_db.shape[1]), np.nan)
    return np.percentile(psd_db[ok], q, axis=0)


@dataclass
class Rendered:
    path: Path
    #: The spectrogram's data area in the PNG's pixels: (left, top, right, bottom), top-left origin.
    ltsa_box: tuple[int, int, int, int]
    #: Time (epoch seconds) at the left and right edge of that area.
    t_span: tuple[float, float]
    db_range: tuple[float, float]
    minutes_with_audio: int
    minutes_missing: int


def render_summary(
    levels: DayLevels,
    out: str | Path,
    *,
    title: str = "",
    db_range: tuple[float, float] | None = None,
    cmap: str = "viridis",
    width_px: int = 1400,
    dpi: int = 100,
) -> Rendered:
    """The long-term spectrogram over percentile spectra, as one PNG. The
    colour range defaults to the 5th-99.9th percentile of the levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib import colors

    out = Path(out)
    ok = ~levels.missing
    finite = levels.psd_db[ok][np.isfinite(levels.psd_db[ok])]
    if db_range is None:
        # From the 5th percentile: the bottom few percent of bands is the recorder's
        # anti-alias roll-off near Nyquist, which would squeeze every other colour.
        db_range = ((float(np.percentile(finite, 5)), float(np.percentile(finite, 99.9))) if finite.size else (0.0, 1.0))
    fig = plt.figure(figsize=(width_px / dpi, 0.62 * width_px / dpi), dpi=dpi)
    grid = fig.add_gridspec(2, 2, height_ratios=(1.25, 1.0), width_ratios=(1.0, 0.018), hspace=0.32, wspace=0.02,
                            left=0.07, right=0.93, top=0.93, bottom=0.08)
    ax, cax, bx = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, 0])
    img, (lo, hi) = ltsa_grid(levels.psd_db, levels.frequency, columns=int(width_px * 0.86))
    seg = levels.params.segment_s
    t0, t1 = float(levels.times[0]), float(levels.times[-1]) + seg
    d0 = mdates.date2num(dt.datetime.fromtimestamp(t0, dt.UTC))
    d1 = mdates.date2num(dt.datetime.fromtimestamp(t1, dt.UTC))
    # Missing audio: nothing drawn, the white background shows.
    cm = plt.get_cmap(cmap).with_extremes(bad=(1.0, 1.0, 1.0, 0.0))
    norm = colors.Normalize(*db_range)
    ax.imshow(np.ma.masked_invalid(img), origin="lower", aspect="auto", extent=(d0, d1, lo, hi), cmap=cm, norm=norm,
              interpolation="nearest")
    ax.set_facecolor("white")
    ticks = [t for t in (10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4) if lo <= np.log10(t) <= hi]
    ax.set_yticks(np.log10(ticks), [f"{t / 1e3:g}k" if t >= 1e3 else f"{t:g}" for t in ticks])
    ax.set_ylabel("Frequency (Hz)")
    days = (t1 - t0) / 86_400
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M" if days <= 1.01 else "%m-%d %H:%M"))
    first = dt.datetime.fromtimestamp(t0, dt.UTC)
    last = dt.datetime.fromtimestamp(t1 - seg, dt.UTC)
    ax.set_xlabel(f"Time (UTC), {first:%Y-%m-%d}" + (f" to {last:%Y-%m-%d}" if last.date() != first.date() else ""))
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cm), cax=cax)
    bar.set_label(f"PSD ({levels.units})")
    n_ok, n_missing = int(ok.sum()), int((~ok).sum())
    head = title or "Long-term spectrogram, hybrid millidecade bands, 1 min"
    ax.set_title(f"{head}   ({n_ok} min with audio, {n_missing} missing; coverage {levels.coverage:.0%})", fontsize=10)

    pct = percentile_spectra(levels.psd_db)
    styles = {1.0: (":", "tab:blue"), 5.0: ("--", "tab:blue"), 50.0: ("-", "k"), 95.0: ("--", "tab:red"),
              99.0: (":", "tab:red")}
    for q, row in zip(PERCENTILES, pct, strict=True):
        style, colour = styles.get(q, ("-", "tab:gray"))
        bx.semilogx(levels.frequency[1:], row[1:], style, color=colour, lw=1.5 if q == 50 else 1.1, label=f"{q:g} %")
    bx.set_xlim(10 ** lo, 10**hi)
    bx.set_xlabel("Frequency (Hz)")
    bx.set_ylabel(f"PSD ({levels.units})")
    bx.grid(True, which="both", alpha=0.3)
    bx.legend(title="percentile", fontsize=8, ncols=5, loc="upper right")
    bx.set_title(f"Percentile spectra over the {n_ok} minutes with audio", fontsize=10)
    fig.savefig(out, dpi=dpi)
    fig.canvas.draw()
    box = ax.get_window_extent()
    height = fig.canvas.get_width_height()[1]
    ltsa_box = (int(np.ceil(box.x0)), int(np.ceil(height - box.y1)), int(np.floor(box.x1)), int(np.floor(height - box.y0)))
    plt.close(fig)
    return Rendered(out, ltsa_box, (t0, t1), (float(db_range[0]), float(db_range[1])), n_ok, n_missing)
