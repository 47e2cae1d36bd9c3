"""Each mel-window parameter is declared once (``pipelines/melwindows/params.py``).

Read by introspection, so a copy that drifts fails here: the DSP functions'
keyword defaults, the settings (names, types, bounds, defaults), the
parameters built from settings, and the keys each window's metadata carries."""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers import keyword_defaults, whole_parameter_defaults
from specfleet.imagemeta import image_keys, text
from specfleet.pipelines.melwindows import compute, dsp, imagemeta, params
from specfleet.pipelines.melwindows.settings import SpectroSettings

DECLARED = params.SpectroParams.model_fields
#: Keyword names that stand for a declared parameter under another name.
ALIASES = {"quality": "jpeg_quality"}
#: Keyword defaults that differ from the declaration on purpose, and why.
ON_PURPOSE = {
    # plain decoders: no limit unless asked (the pipeline passes params.max_duration_s)
    ("decode", "max_duration_s"): "a plain decode reads the whole file",
    ("decode_native", "max_duration_s"): "a plain decode reads the whole file",
}


def test_dsp_keyword_defaults_are_the_declared_ones():
    found = keyword_defaults((dsp, imagemeta, compute), DECLARED, ALIASES)
    assert {d for _f, _k, d, _v in found} >= {
        "sample_rate", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "amin", "top_db",
        "window_s", "step_s", "min_duration_s", "jpeg_quality",
    }
    drift = [(f, k, v, DECLARED[d].default) for f, k, d, v in found
             if (f, k) not in ON_PURPOSE and v != DECLARED[d].default]
    assert drift == []
    wholes = whole_parameter_defaults((dsp, imagemeta))
    assert len(wholes) >= 8
    assert all(d == params.SpectroParams() for d in wholes)


def test_settings_are_the_declaration_and_reach_the_params():
    for name, field in DECLARED.items():
        mine = SpectroSettings.model_fields[name]
        assert (mine.annotation, mine.default, mine.metadata, mine.description) == (
            field.annotation, field.default, field.metadata, field.description), name
    changed: dict[str, Any] = {}
    for name, field in DECLARED.items():
        default = field.default
        changed[name] = default * 2 if isinstance(default, float) and default else (default or 0) + 1
    changed["fmin"] = 20.0
    got = compute.params_from_settings(SpectroSettings(**changed))
    assert got.model_dump() == changed  # every knob, by name, none dropped


def test_window_metadata_carries_the_declared_parameters():
    p = params.SpectroParams()
    render = imagemeta.render_path(44_100, p)
    track = imagemeta.track_metadata(p, render, source="audio/t.mp3", track_id="t")
    window = dsp.WindowImage(dsp.Window(0, 0, 30), np.zeros((p.n_mels, 938), np.float32),
                             np.zeros((p.n_mels, 938), np.uint8))
    meta = imagemeta.window_metadata(track, window, p)
    keys = image_keys(params.SpectroParams)
    assert set(keys) >= {"sample_rate", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "amin", "top_db",
                         "jpeg_quality"}
    assert {key: meta[key] for key in keys.values()} == {key: text(getattr(p, n)) for n, key in keys.items()}
    # the values the images carried before the declaration, unchanged
    assert {k: meta[k] for k in ("sample_rate_hz", "hop_length", "fmax_hz", "amin", "top_db")} == {
        "sample_rate_hz": "16000", "hop_length": "512", "fmax_hz": "8000", "amin": "1e-10", "top_db": "80"}
