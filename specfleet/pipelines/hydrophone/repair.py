"""Repair of an OOI broadband file by its sample count, the way OOI's own
processing code decides it (ooi-data/ooi-hyd-tools, README.md "How the
repair works"; same rules, specfleet's code).

What the archive holds: a 5-minute file arrives in 1 to 1,200+ pieces
(one per 2,560-sample packet, 40 ms). The recording system mislabels when
each piece arrived, by a fraction of a millisecond up to a quarter second,
but it never drops or duplicates a sample. So:

- the **number of samples**, not the timestamps, says whether anything is
  missing;
- an overlap between two pieces cannot be real (one ADC cannot record an
  instant twice), so the largest overlap measures the file's label noise.

Three cases (``repair``):

- **complete** (as many samples as the file's length holds): every piece is
  rejoined in file order, whatever the labels say;
- **short**: split only at gaps longer than both ``gap_threshold_s`` (the
  hydrophone's ``TrHld2`` setting, 0.023 s) and the file's own label noise,
  the gap measured between the stretches on either side (medians of their
  pieces' label errors, so one mislabelled piece cannot fake a break); each
  stretch is placed from its own labels;
- **too long**: rejoined and kept in full, flagged (``too_long``).

Nothing here fills a gap: a break is a boundary between ``Stretch``es.
Placement: a first label within the file's tolerance of the nominal start
(the file name's) snaps to it; only a label further off wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from obspy import UTCDateTime

from .settings import GAP_THRESHOLD_S
from .timerange import FILE_SECONDS


@dataclass(frozen=True)
class Stretch:
    """One contiguous run of real samples, never zero-filled."""

    start: UTCDateTime
    samples: np.ndarray
    sample_rate: float

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def end(self) -> UTCDateTime:
        """The instant just after the last sample."""
        return self.start + self.seconds


@dataclass(frozen=True)
class Break:
    """A real break: recording missing between two stretches."""

    start: UTCDateTime
    seconds: float


@dataclass(frozen=True)
class RepairedFile:
    stretches: tuple[Stretch, ...]
    pieces: int
    expected_samples: int
    total_samples: int
    #: Largest overlap between consecutive pieces (s): how far this file's labels lie.
    label_noise_s: float
    breaks: tuple[Break, ...]
    #: Recording missing by the sample count (s); 0 for a complete or long file.
    missing_s: float
    too_long: bool

    @property
    def sample_rate(self) -> float:
        return self.stretches[0].sample_rate

    @property
    def complete(self) -> bool:
        return self.total_samples == self.expected_samples

    @property
    def unaccounted_s(self) -> float:
        """Missing recording the breaks do not account for (e.g. a file that
        stops early: OOI logs it as an issue for review)."""
        return max(0.0, self.missing_s - sum(b.seconds for b in self.breaks))

    def notes(self) -> list[str]:
        """What a status reason says about the repair (empty for a plain one-piece file)."""
        out: list[str] = []
        if self.pieces > 1:
            how = "rejoined" if len(self.stretches) == 1 else f"rejoined into {len(self.stretches)} stretches"
            out.append(f"{self.pieces} pieces {how} (label noise {self.label_noise_s * 1e3:.0f} ms)")
        if self.too_long:
            extra = (self.total_samples - self.expected_samples) / self.sample_rate
            out.append(f"too long: {extra:.3f} s more than the file holds, kept in full (flagged)")
        if self.missing_s > 0:
            text = f"missing {self.missing_s:.3f} s of recording"
            if self.breaks:
                text += f", {len(self.breaks)} break(s) of {sum(b.seconds for b in self.breaks):.3f} s"
            if self.unaccounted_s > 1.0 / self.sample_rate:
                text += f" ({self.unaccounted_s:.3f} s not at a break: before the first or after the last sample)"
            out.append(text)
        return out


#: Pieces on each side of a candidate break whose label errors are compared
#: (medians): more than one mislabelled piece in a row is needed to fake a step.
STEP_WINDOW = 8


def _piece_gaps(starts: np.ndarray, counts: np.ndarray, rate: float) -> np.ndarray:
    """Seconds between the end of each piece and the label of the next (file order)."""
    ends = starts[:-1] + counts[:-1] / rate
    return starts[1:] - ends


def repair(
    stream: Any,
    *,
    file_seconds: float = float(FILE_SECONDS),
    gap_threshold_s: float = GAP_THRESHOLD_S,
    nominal_start: UTCDateTime | None = None,
) -> RepairedFile:
    """Repair one channel's pieces (an obspy ``Stream`` or a sequence of
    ``Trace``s, in the order the file holds them) by their sample count.

    ``nominal_start``: the file's start from its name, if known (see the
    module doc for when it wins over the first label). Pieces must share
    one sampling rate (``ValueError`` otherwise).
    """
    traces: Sequence[Any] = list(stream)
    if not traces:
        raise ValueError("no pieces to repair")
    rates = {float(tr.stats.sampling_rate) for tr in traces}
    if len(rates) != 1:
        raise ValueError(f"pieces have different sampling rates: {sorted(rates)} Hz")
    rate = rates.pop()
    if rate <= 0:
        raise ValueError(f"sampling rate {rate} Hz is not positive")
    counts = np.fromiter((tr.stats.npts for tr in traces), dtype=np.int64, count=len(traces))
    # Labels relative to the first, in float64 seconds: exact to ~1e-10 s over a file.
    t0 = traces[0].stats.starttime
    starts = np.fromiter((tr.stats.starttime - t0 for tr in traces), dtype=np.float64, count=len(traces))
    gaps = _piece_gaps(starts, counts, rate)
    label_noise = float(max(0.0, -gaps.min())) if len(gaps) else 0.0
    total = int(counts.sum())
    expected = int(round(file_seconds * rate))
    tolerance = max(gap_threshold_s, label_noise)

    first = t0
    if nominal_start is not None and abs(t0 - nominal_start) <= tolerance:
        first = nominal_start

    def joined(a: int, b: int) -> np.ndarray:
        parts = [np.asarray(tr.data) for tr in traces[a:b]]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    if total >= expected:  # complete or too long: every apparent gap is a bad label
        stretch = Stretch(first, joined(0, len(traces)), rate)
        return RepairedFile((stretch,), len(traces), expected, total, label_noise, (), 0.0, total > expected)

    # Short: real breaks are gaps longer than the threshold AND the label noise.
    # The gap is measured between the stretches on either side, not between
    # two single labels: each piece's label error (its label less where the
    # samples before it put it) stays within the noise along a continuous
    # stretch and steps up by the missing time at a real break. One piece
    # labelled late makes a gap next to it but no lasting step; compared
    # label to label it could exceed the largest overlap by chance (about one
    # short file in two with uniform noise) and split a continuous recording.
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1])) / rate
    error = starts - offsets
    candidates = (np.flatnonzero(gaps > tolerance) + 1).tolist()
    cuts: list[int] = []
    for i, c in enumerate(candidates):
        lo = max(cuts[-1] if cuts else 0, c - STEP_WINDOW)
        hi = min(candidates[i + 1] if i + 1 < len(candidates) else len(traces), c + STEP_WINDOW)
        if float(np.median(error[c:hi]) - np.median(error[lo:c])) > tolerance:
            cuts.append(c)
    bounds = [0, *cuts, len(traces)]
    stretches: list[Stretch] = []
    breaks: list[Break] = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if a == 0:
            start = first
        else:  # from its own labels: the median over its first pieces of where each puts the start
            window = slice(a, min(b, a + STEP_WINDOW))
            start = t0 + float(np.median(starts[window] - (offsets[window] - offsets[a])))
        stretch = Stretch(start, joined(a, b), rate)
        if stretches:
            breaks.append(Break(stretches[-1].end, float(stretch.start - stretches[-1].end)))
        stretches.append(stretch)
    missing = (expected - total) / rate
    return RepairedFile(tuple(stretches), len(traces), expected, total, label_noise, tuple(breaks), missing, False)


@dataclass(frozen=True)
class Timeline:
    """A repaired file laid out on one sample grid from its first stretch's
    start: the stretches' samples at their places, ``missing`` True (and the
    samples 0) at real breaks. What the clip grid of the whaledr profile
    (the original's clips over the file's clock) is cut from."""

    data: np.ndarray
    missing: np.ndarray | None
    start: UTCDateTime
    #: ``(first sample, samples)`` of each stretch on the grid.
    spans: tuple[tuple[int, int], ...]


def timeline(repaired: RepairedFile) -> Timeline:
    """``repaired`` on one grid. One stretch: its samples as they are (no copy)."""
    rate = repaired.sample_rate
    first = repaired.stretches[0]
    if len(repaired.stretches) == 1:
        return Timeline(first.samples, None, first.start, ((0, len(first.samples)),))
    offsets: list[int] = []
    cursor = 0
    for s in repaired.stretches:
        # A break is longer than the label noise, so rounding never makes stretches collide.
        at = max(cursor, int(round((s.start - first.start) * rate)))
        offsets.append(at)
        cursor = at + len(s.samples)
    data = np.zeros(cursor, dtype=np.result_type(*(s.samples.dtype for s in repaired.stretches)))
    missing = np.ones(cursor, dtype=bool)
    for at, s in zip(offsets, repaired.stretches, strict=True):
        data[at : at + len(s.samples)] = s.samples
        missing[at : at + len(s.samples)] = False
    spans = tuple((at, len(s.samples)) for at, s in zip(offsets, repaired.stretches, strict=True))
    return Timeline(data, missing, first.start, spans)
