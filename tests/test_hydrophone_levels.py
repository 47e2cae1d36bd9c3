"""Calibrated sound levels (pipelines/hydrophone/levels.py) against MBARI's
pbp, scipy's Welch, and signals of known level."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pbp_reference
import pytest
import scipy.signal
from obspy import UTCDateTime

from specfleet.pipelines.hydrophone import levels as L
from specfleet.standins import mseed_synth as synth

SR = 64_000.0
T0 = UTCDateTime(2017, 10, 9, 0, 0, 0)


@dataclass
class Stretch:
    """The sample-count repair's Stretch (start, int32 counts, rate)."""

    start: UTCDateTime
    samples: np.ndarray
    sample_rate: float


def test_welch_psd_is_scipy_welch_as_pypam_calls_it():
    x = synth.realistic_signal(8.0, seed=3)
    nfft = 8_000  # 8 Hz bins keep this quick; the code path is the 1 Hz one
    ours = L.welch_psd(x, SR, nfft=nfft)
    window = scipy.signal.get_window("hann", nfft)  # PyPAM's window: periodic Hann
    f, ref = scipy.signal.welch(x, fs=SR, window=window, nfft=nfft, noverlap=nfft * 0.5, detrend=False,
                                scaling="density")
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-6)  # float64 rounding at ~200 dB dynamic range
    with pytest.raises(ValueError):
        L.welch_psd(x[:100], SR, nfft=nfft)


@pytest.mark.slow
def test_levels_match_pbp_on_the_realistic_fixture_with_a_missing_minute():
    """Same minutes through pbp's PypamSupport (its own Welch, bands and
    calibration) and through ours: the same band centres, NaN for the same
    missing minute, and the same calibrated levels."""
    x = synth.realistic_signal(180.0, seed=5)
    per_min = int(60 * SR)
    # Minutes 0 and 1 in one stretch, minute 2 lost (a 20 s gap), minute 3 in another stretch.
    stretches = [
        Stretch(T0, x[: 2 * per_min], SR),
        Stretch(T0 + 140.0, x[2 * per_min : 3 * per_min], SR),
        Stretch(T0 + 180.0, synth.realistic_signal(60.0, seed=6), SR),
    ]
    spectra = L.minute_psd(stretches)
    assert spectra.missing.tolist() == [False, False, True, False]
    assert np.isnan(spectra.psd[2]).all() and spectra.effort_s.tolist() == [60, 60, 0, 60]
    freq, bands = L.hmb_bands(spectra.psd, SR, L.LevelParams().nfft(SR))
    cal = L.Calibration(np.array([0.0, 10_000.0, 20_100.0, 40_200.0]), np.array([-170.6, -170.6, -172.6, -171.0]),
                        source="test")
    ours = L.to_db(bands, freq, cal)
    minutes = np.full((4, per_min), np.nan)
    minutes[0], minutes[1], minutes[3] = x[:per_min], x[per_min : 2 * per_min], stretches[2].samples
    ref = pbp_reference.run_pbp(minutes, SR, sens_frequency=cal.frequency,
                                sens_counts_db=cal.sensitivity_db + L.COUNTS_PER_VOLT_DB)
    np.testing.assert_allclose(freq, ref["frequency"], rtol=1e-6)
    assert np.isnan(ref["psd"][2]).all() and np.isnan(ours.db[2]).all()
    ok = [0, 1, 3]
    assert np.isfinite(ours.db[ok]).all()
    assert float(np.max(np.abs(ours.db[ok] - ref["psd"][ok]))) <= 0.01
    assert ours.units == L.UNITS_CALIBRATED and ours.calibrated


def test_hybrid_millidecade_edges_follow_iso_18405_centres():
    limits, centres = L.hmb_limits(SR, 64_000)
    assert len(limits) == len(centres) + 1
    linear = centres[centres < 434.5]
    assert np.array_equal(linear, np.arange(435.0))  # 1 Hz bands up to 434 Hz
    log = centres[435:-1]
    # ISO 18405 millidecade centres: 10^(n/1000 + 0.0005) * 10 Hz, one per millidecade.
    k = np.log10(log / 10.0) * 1000 - 0.5
    assert np.allclose(k, np.round(k), atol=1e-6)
    assert np.all(np.diff(np.round(k)) == 1)
    assert limits[-1] == SR / 2 and centres[-1] < SR / 2 + 1e-9


def _white_plus_tone(seconds: float, sigma: float, tone_amp: float, tone_hz: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = rng.standard_normal(n) * sigma + tone_amp * np.sin(2 * np.pi * tone_hz * t)
    return np.round(x).astype(np.int32)


def test_a_known_level_through_a_known_sensitivity(tmp_path):
    """White noise of known pressure PSD plus a tone of known pressure
    amplitude, turned into ADC counts through a sensitivity curve (read back
    from CSV) and OOI's 2^23 counts per 3 V: the levels come out in
    dB re 1 uPa^2/Hz within 0.1 dB."""
    csv = tmp_path / "cal.csv"
    csv.write_text("frequency_hz,sensitivity_db_re_1V_per_uPa\n0,-172\n10000,-170\n40000,-166\n")
    cal = L.load_calibration(csv)
    assert cal.deployment == "" and cal.source == "cal.csv"

    def s_at(f: float) -> float:
        return float(np.interp(f, [0, 10_000, 40_000], [-172, -170, -166]))

    tone_hz = 10_012.0  # a whole bin, 0.5 Hz from the centre of its millidecade band (10011.5 Hz)
    noise_db, tone_db = 60.0, 100.0  # dB re 1 uPa^2/Hz, dB re 1 uPa^2 (rms^2)
    counts_per_upa = 10 ** (s_at(tone_hz) / 20) * L.COUNTS_PER_VOLT  # the hydrophone + ADC at the tone
    sigma_upa = math.sqrt(10 ** (noise_db / 10) * SR / 2)  # one-sided PSD * bandwidth = variance
    amp_upa = math.sqrt(2 * 10 ** (tone_db / 10))
    x = _white_plus_tone(60.0, sigma_upa * counts_per_upa, amp_upa * counts_per_upa, tone_hz, seed=1)
    spectra = L.minute_psd([Stretch(T0, x, SR)])
    freq, bands = L.hmb_bands(spectra.psd, SR, 64_000)
    lv = L.to_db(bands[0], freq, cal)
    assert lv.calibrated and lv.units == L.UNITS_CALIBRATED
    # Noise-only bands near 8 kHz: the same counts read through the curve's value there.
    near = (freq > 7_900) & (freq < 8_100)
    assert abs(float(np.mean(lv.db[near])) - (noise_db + s_at(tone_hz) - s_at(8_000))) < 0.1
    # The tone's band: its power over the band's width, plus the noise in it.
    limits, _ = L.hmb_limits(SR, 64_000)
    b = int(np.searchsorted(limits, tone_hz, side="right") - 1)
    assert abs(freq[b] - 10_011.5) < 0.1
    width = limits[b + 1] - limits[b]
    shift = s_at(tone_hz) - s_at(float(freq[b]))
    expected = 10 * math.log10(10 ** (tone_db / 10) / width + 10 ** (noise_db / 10)) + shift
    assert abs(float(lv.db[b]) - expected) < 0.1
    # Uncalibrated: the same numbers in counts, and labelled so.
    raw = L.to_db(bands[0], freq)
    assert not raw.calibrated and raw.units == L.UNITS_UNCALIBRATED
    assert float(raw.db[b] - lv.db[b]) == pytest.approx(s_at(float(freq[b])) + L.COUNTS_PER_VOLT_DB, abs=1e-3)


def test_a_minute_is_computed_only_from_one_stretch_that_holds_all_of_it():
    per_min = int(60 * SR)
    x = synth.synthetic_signal(140.0, seed=2)
    # 0:00:30-0:02:50 in one stretch: minute 0 and minute 2 are partial, minute 1 whole.
    spectra = L.minute_psd([Stretch(T0 + 30.0, x, SR)])
    assert [str(t) for t in spectra.times] == ["2017-10-09T00:00:00", "2017-10-09T00:01:00", "2017-10-09T00:02:00"]
    assert spectra.missing.tolist() == [True, False, True]
    assert np.isnan(spectra.psd[[0, 2]]).all()
    whole = L.welch_psd(x[30 * int(SR) : 30 * int(SR) + per_min], SR, nfft=64_000)
    np.testing.assert_allclose(spectra.psd[1], whole.astype(np.float32))
    # Labels a little off the grid (the archive's 10-250 ms label noise) still make a minute ...
    late = L.minute_psd([Stretch(T0 + 0.2, x[:per_min], SR)], minutes=np.array([T0.timestamp]))
    assert not late.missing[0]
    # ... but a minute split between two stretches is missing, not averaged over zeros.
    split = [Stretch(T0, x[: per_min // 2], SR), Stretch(T0 + 30.0, x[per_min // 2 : per_min], SR)]
    assert L.minute_psd(split).missing.tolist() == [True]
    with pytest.raises(ValueError, match="different sampling rates"):
        L.minute_psd([Stretch(T0, x[:per_min], SR), Stretch(T0 + 60, x[:per_min], 48_000.0)])


def _ooi_cal_file(path, *, with_counts: bool) -> None:
    """A file laid out as OOI publishes them (ooi-hyd-tools metadata/cals/
    CE02SHBP-LJ01D-11-HYDBBA106_12.nc: ``frequency`` in Hz, ``sensitivity_0``
    and ``sensitivity_90`` in dB re 1 V/uPa, the asset's attributes; the
    rca_correction_cals copy adds ``sensitivity`` = their mean + 128.9 dB).
    The first points are that file's."""
    import h5netcdf

    freq = np.array([0.0, 10_000.0, 20_100.0, 30_100.0, 200_000.0])
    s0 = np.array([-170.8, -170.8, -172.8, -173.2, -175.0])
    s90 = np.array([-170.5, -170.5, -172.5, -172.2, -174.0])
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"frequency": len(freq)}
        f.create_variable("frequency", ("frequency",), data=freq)
        f.create_variable("sensitivity_0", ("frequency",), data=s0)
        f.create_variable("sensitivity_90", ("frequency",), data=s90)
        if with_counts:
            f.create_variable("sensitivity", ("frequency",), data=(s0 + s90) / 2 + 128.9)
        f.attrs.update({"asset_id": "ATOSU-58324-00012", "model": "SB35-ETH", "serial_number": 1411,
                        "calibration_date": "2023-03-01T00:00:00.000000Z"})


def test_ooi_calibration_files_are_read_as_published(tmp_path):
    path = tmp_path / "CE02SHBP-LJ01D-11-HYDBBA106_12.nc"
    _ooi_cal_file(path, with_counts=False)
    cal = L.load_calibration(path)
    assert cal.deployment == "12" and cal.source == path.name
    assert cal.attrs["asset_id"] == "ATOSU-58324-00012" and cal.attrs["serial_number"] == "1411"
    assert cal.sensitivity_db[0] == pytest.approx(-170.65)  # mean of the 0 and 90 degree curves
    assert cal.counts_db(np.array([5_000.0]))[0] == pytest.approx(-170.65 + 128.93, abs=0.01)
    assert np.isnan(cal.counts_db(np.array([250_000.0]))[0])  # outside the calibrated range, as pbp
    # The count-referenced copy: refused as volts with a hint, equal when named so.
    rca = tmp_path / "rca" / path.name
    rca.parent.mkdir()
    _ooi_cal_file(rca, with_counts=True)
    with pytest.raises(ValueError, match="reference='count'"):
        L.load_calibration(rca)
    counted = L.load_calibration(rca, reference="count")
    # their 128.9 dB is 20 log10(2^23/3) = 128.93 rounded
    np.testing.assert_allclose(counted.sensitivity_db, cal.sensitivity_db + 128.9 - L.COUNTS_PER_VOLT_DB, atol=1e-9)
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="netCDF"):
        L.load_calibration(bad)


def test_params_digest_changes_with_any_parameter():
    a, b = L.LevelParams(), L.LevelParams(overlap=0.25)
    assert a.digest() == L.LevelParams().digest() and a.digest() != b.digest()
    assert len(a.digest()) == 16
