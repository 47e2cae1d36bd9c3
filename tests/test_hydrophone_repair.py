"""Repair by sample count (issue 23), the rules of OOI's own code
(ooi-data/ooi-hyd-tools README "How the repair works"): a complete file in
many mislabelled pieces gives exactly the clips of the same samples in one
piece; a short file splits only at real breaks; a real break inside a clip
is masked in its image and counted, never zero-filled silently."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import numpy as np
import pytest
from obspy import Stream, Trace, UTCDateTime, read
from PIL import Image

from specfleet.pipelines.hydrophone import dsp
from specfleet.pipelines.hydrophone.repair import repair, timeline
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.worker import cut_source
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import file_name_for

SR = 64_000.0
T0 = dt.datetime(2017, 10, 9, 3, 0)


def pieces(labels_s: list[float], counts: list[int], *, seed: int = 0) -> tuple[Stream, np.ndarray]:
    """A hand-made file: piece i holds ``counts[i]`` samples labelled ``T0 + labels_s[i]``."""
    data = np.random.default_rng(seed).integers(-2**23, 2**23, sum(counts), dtype=np.int32)
    head = {"network": "OO", "station": "HYVM1", "location": "", "channel": "YDH", "sampling_rate": SR}
    traces, at = [], 0
    for label, n in zip(labels_s, counts, strict=True):
        traces.append(Trace(data[at : at + n].copy(), header={**head, "starttime": UTCDateTime(T0) + label}))
        at += n
    return Stream(traces), data


def test_complete_file_is_rejoined_in_file_order_whatever_the_labels_say():
    # 4 pieces of 1 s in a 4 s file; labels off by up to 0.2 s, one even earlier than its predecessor's.
    stream, data = pieces([0.05, 0.8, 2.2, 2.9], [64_000] * 4)
    got = repair(stream, file_seconds=4.0, nominal_start=UTCDateTime(T0))
    assert (got.pieces, got.total_samples, got.expected_samples, got.too_long) == (4, 256_000, 256_000, False)
    assert len(got.stretches) == 1 and got.breaks == () and got.missing_s == 0.0
    assert np.array_equal(got.stretches[0].samples, data)
    assert got.label_noise_s == pytest.approx(0.3)  # piece 4 labelled 2.9 s, piece 3 ends at 3.2 s
    assert got.stretches[0].start == UTCDateTime(T0)  # first label within the noise: snapped to the name's start


def test_short_file_splits_only_at_gaps_longer_than_threshold_and_label_noise():
    # Labels: a 0.06 s overlap (noise), a 0.05 s gap (less than the noise: not a break), a 2.5 s real break.
    stream, data = pieces([0.0, 0.94, 2.0, 5.5], [64_000] * 4)
    got = repair(stream, file_seconds=10.0, nominal_start=UTCDateTime(T0))
    assert got.label_noise_s == pytest.approx(0.06)
    assert len(got.stretches) == 2
    assert np.array_equal(got.stretches[0].samples, data[: 3 * 64_000])
    assert np.array_equal(got.stretches[1].samples, data[3 * 64_000 :])
    assert got.stretches[1].start == UTCDateTime(T0) + 5.5  # placed from its own label
    [brk] = got.breaks
    assert brk.start == UTCDateTime(T0) + 3.0 and brk.seconds == pytest.approx(2.5)
    assert got.missing_s == pytest.approx(6.0)  # by the sample count: 4 s of a 10 s file
    assert got.unaccounted_s == pytest.approx(3.5)


def test_one_late_label_next_to_a_gap_is_not_a_break():
    # Piece 4 labelled 60 ms late, piece 5 20 ms late: a 60 ms gap, overlaps of only 40 and 20 ms.
    # Label to label the gap beats the largest overlap; the stretches either side do not move.
    labels = [0.1 * i for i in range(12)]
    labels[4] += 0.06
    labels[5] += 0.02
    labels[9:] = [x + 1.0 for x in labels[9:]]  # and one real 1 s break before piece 9
    stream, data = pieces(labels, [6400] * 12)
    got = repair(stream, file_seconds=5.0)
    assert got.label_noise_s == pytest.approx(0.04)
    assert len(got.stretches) == 2 and [len(s.samples) for s in got.stretches] == [9 * 6400, 3 * 6400]
    assert got.breaks[0].seconds == pytest.approx(1.0)


def test_short_files_with_random_label_noise_split_only_at_their_real_break():
    for seed in range(20):
        data = synth.synthetic_signal(20.0, seed=seed)
        stream = synth.pieces_stream(data, T0, piece_samples=16_000, label_noise_s=0.1, breaks=((8.0, 3.0),), seed=seed)
        got = repair(stream, file_seconds=30.0, nominal_start=UTCDateTime(T0))
        assert len(got.stretches) == 2, (seed, got.breaks)
        assert got.breaks[0].seconds == pytest.approx(3.0, abs=0.1) and got.missing_s == pytest.approx(13.0)
        assert np.array_equal(np.concatenate([s.samples for s in got.stretches]),
                              np.concatenate([data[: 8 * 64_000], data[11 * 64_000 :]]))


def test_threshold_alone_decides_in_a_file_without_overlaps():
    stream, _ = pieces([0.0, 1.02, 2.07], [64_000] * 3)  # gaps of 0.02 s (< 0.023) and 0.05 s
    got = repair(stream, file_seconds=5.0)
    assert len(got.stretches) == 2 and got.label_noise_s == 0.0
    assert repair(stream, file_seconds=5.0, gap_threshold_s=0.06).breaks == ()


def test_too_long_file_is_kept_in_full_and_flagged():
    stream, data = pieces([0.0, 1.0, 2.0], [64_000, 64_000, 64_100])
    got = repair(stream, file_seconds=3.0)
    assert got.too_long and len(got.stretches) == 1 and np.array_equal(got.stretches[0].samples, data)
    assert any("too long" in n for n in got.notes())


def test_timeline_places_stretches_and_marks_only_the_break():
    stream, data = pieces([0.0, 1.0, 3.5], [64_000, 64_000, 64_000])
    line = timeline(repair(stream, file_seconds=5.0))
    assert len(line.data) == int(4.5 * SR) and line.missing is not None
    assert line.missing.sum() == int(1.5 * SR) and not line.data[line.missing].any()
    assert np.array_equal(line.data[~line.missing], data)


@pytest.mark.slow
def test_complete_file_in_1200_pieces_with_labels_off_by_a_tenth_gives_the_one_piece_clips(tmp_path):
    """Must show (issue 23): >= 1,000 pieces, labels off by up to +-0.1 s:
    every clip's WAV and image identical to those of the same samples in
    one piece (read by obspy as a single trace)."""
    data = synth.synthetic_signal(300.0, seed=11)
    one, many = tmp_path / "one" / file_name_for(T0), tmp_path / "many" / file_name_for(T0)
    one.parent.mkdir()
    many.parent.mkdir()
    one.write_bytes(synth.mseed_bytes(data, T0))
    many.write_bytes(synth.pieces_mseed_bytes(data, T0, piece_samples=16_000, label_noise_s=0.1, seed=4))
    assert len(read(str(one))) == 1
    pieces_read = read(str(many))
    assert len(pieces_read) == 1200
    starts = np.array([tr.stats.starttime - UTCDateTime(T0) for tr in pieces_read])
    offsets = starts - np.arange(1200) * 0.25
    assert 0.09 < np.abs(offsets).max() <= 0.1  # really mislabelled by up to a tenth

    config = HydroSettings()
    a = cut_source(one, config, tmp_path / "out-one", None, source=str(one))
    b = cut_source(many, config, tmp_path / "out-many", None, source=str(many))
    assert [c.name for c in a.clips] == [c.name for c in b.clips] and len(a.clips) == 60
    assert any("1200 pieces rejoined" in n for n in b.notes) and not any("missing" in n for n in b.notes)
    for c in a.clips:
        wav_one, wav_many = ((tmp_path / d / f"{c.name}.wav").read_bytes() for d in ("out-one", "out-many"))
        assert wav_one == wav_many, c.name
        img_one, img_many = (Image.open(tmp_path / d / f"{c.name}.png") for d in ("out-one", "out-many"))
        assert np.array_equal(np.asarray(img_one), np.asarray(img_many)), c.name
        # The images' parameters agree too, all but the source path they name.
        assert {k: v for k, v in img_one.text.items() if k != "source"} == {
            k: v for k, v in img_many.text.items() if k != "source"
        }


@pytest.mark.slow
def test_a_real_break_is_masked_in_the_clip_image_and_counted_never_silent(tmp_path):
    """A 5 s break inside a 60 s file: the clips it crosses say how much
    is missing (status notes, image metadata), their images mask the
    break's columns, and the colour range comes from real samples only."""
    data = synth.synthetic_signal(60.0, seed=2)
    path = tmp_path / file_name_for(T0)
    path.write_bytes(synth.pieces_mseed_bytes(data, T0, label_noise_s=0.02, breaks=((23.6, 5.0),), seed=3))
    config = HydroSettings(file_seconds=60.0, output="whaledr")
    out = tmp_path / "out"
    result = cut_source(path, config, out, None, source=str(path))
    crossing = [c for c in result.clips if c.missing_samples]
    assert crossing, "the grid crosses the break"
    # Every clip's zero samples are exactly the ones the break left: none anywhere else.
    assert result.masked_s == pytest.approx(sum(c.missing_samples for c in result.clips) / SR)
    assert 0 < result.masked_s <= 5.0 + 0.1
    notes = "; ".join(result.notes)
    assert re.search(r"missing 5\.000 s of recording, 1 break\(s\) of (4\.9|5\.0)\d\d s", notes), notes
    assert f"{result.masked_s:.3f} s masked in their images" in notes
    for c in crossing:
        raw = (out / f"{c.name}.jpg").read_bytes()
        img = Image.open(io.BytesIO(raw))
        meta = json.loads(img.info["comment"])
        assert float(meta["missing_seconds"]) == pytest.approx(c.missing_samples / SR, abs=1e-4)
        rgb = np.asarray(img.convert("RGB")).astype(int)
        white_cols = (rgb.min(axis=(0, 2)) > 240).sum()
        assert white_cols >= 512 * (c.missing_samples / c.n_samples) * 0.8  # the break's share of columns
        # Colour range from real samples: the same clip rendered with its zeros taken as sound
        # would span ~300 dB (the floor); masked it spans what the recording does.
        assert float(meta["db_hi"]) - float(meta["db_lo"]) < 250
    clip = crossing[0]
    from specfleet.pipelines.hydrophone.worker import read_source

    decoded = read_source(str(path), config)
    x = decoded.data[clip.start_sample : clip.start_sample + clip.n_samples]
    unmasked = dsp.render_clip(x, SR, dsp.SpectrogramParams(span="full"))
    assert unmasked.db_hi - unmasked.db_lo > 290  # what masking prevents
    assert decoded.gap_mask is not None and not x[decoded.gap_mask[clip.start_sample : clip.start_sample + clip.n_samples]].any()
