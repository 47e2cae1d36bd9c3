"""Each hydrophone clip parameter is declared once (``pipelines/hydrophone/params.py``).

Read by introspection, so a copy that drifts fails here: the DSP functions'
keyword defaults, the settings (names, types, bounds, defaults), the clip
options built from settings, the CLI's choices and help, and the keys each
image's metadata carries."""

from __future__ import annotations

import inspect
from typing import Any, get_args, get_type_hints

import numpy as np
import pytest

from helpers import keyword_defaults, whole_parameter_defaults
from specfleet.imagemeta import image_keys, text
from specfleet.pipelines.hydrophone import clipper, dsp, imagemeta, params, preview
from specfleet.pipelines.hydrophone.settings import HydroSettings

MODELS = (params.SpectrogramParams, params.ClipParams)
DECLARED = {name: field for model in MODELS for name, field in model.model_fields.items()}
#: Keyword names that stand for a declared parameter under another (shorter) name.
ALIASES = {"lo": "color_lo", "hi": "color_hi", "name": "cmap", "search_s": "ping_search_s",
           "quality": "jpeg_quality", "compress_level": "png_compress_level", "method": "span"}
#: Keyword defaults that differ from the declaration on purpose, and why.
ON_PURPOSE = {
    ("clip_starts", "align"): "specfleet's whole-clip plans only; 'ping' goes through clip_plan",
}


def test_dsp_keyword_defaults_are_the_declared_ones():
    found = keyword_defaults((dsp, imagemeta, preview), DECLARED, ALIASES)
    # not vacuous: the window, overlap, colour range, clip plan, cmap, PNG/JPEG knobs
    assert {d for _f, _k, d, _v in found} >= {
        "window_s", "overlap", "color_lo", "color_hi", "clip_s", "align", "ping_search_s", "cmap",
        "png_compress_level", "jpeg_quality", "span", "exact_rows", "max_extra_frames", "width", "height", "fmax_hz",
    }
    drift = [(f, k, v, DECLARED[d].default) for f, k, d, v in found
             if (f, k) not in ON_PURPOSE and v != DECLARED[d].default]
    assert drift == []
    # a whole parameter set as a default is the declared one
    wholes = whole_parameter_defaults((dsp, imagemeta, preview))
    assert len(wholes) >= 5
    assert all(d == params.SpectrogramParams() for d in wholes)


def test_the_drift_that_was_resolved():
    """frames_per_column was 2 in settings and 4 in dsp: one value now (4, the
    one the comparison with the original's every-frame spectrogram runs at)."""
    assert HydroSettings.model_fields["frames_per_column"].default == dsp.SpectrogramParams().frames_per_column == 4
    assert dsp.RENDERS == get_args(params.Render) and dsp.SPANS == get_args(params.SpanMethod)
    assert dsp.ALIGNS == get_args(params.Align)


def test_settings_are_the_declaration(monkeypatch):
    for name, field in DECLARED.items():
        mine = HydroSettings.model_fields[name]
        assert (mine.annotation, mine.default, mine.metadata, mine.description) == (
            field.annotation, field.default, field.metadata, field.description), name
    # an environment variable per knob, by its declared name, validated as declared
    monkeypatch.setenv("SPECFLEET_HYDRO_FRAMES_PER_COLUMN", "3")
    monkeypatch.setenv("SPECFLEET_HYDRO_RENDER", "mean")
    assert (HydroSettings().frames_per_column, HydroSettings().render) == (3, "mean")
    monkeypatch.setenv("SPECFLEET_HYDRO_RENDER", "blurry")
    with pytest.raises(ValueError, match="render"):
        HydroSettings()
    monkeypatch.setenv("SPECFLEET_HYDRO_RENDER", "mean")
    monkeypatch.setenv("SPECFLEET_HYDRO_COLOR_LO", "0.99")
    with pytest.raises(ValueError, match="color_lo < color_hi"):
        HydroSettings()
    monkeypatch.delenv("SPECFLEET_HYDRO_COLOR_LO")
    # the renamed size variables stop a worker instead of being ignored
    monkeypatch.setenv("SPECFLEET_HYDRO_IMAGE_WIDTH", "1024")
    with pytest.raises(ValueError, match="SPECFLEET_HYDRO_IMAGE_WIDTH is now SPECFLEET_HYDRO_WIDTH"):
        HydroSettings()


def test_clip_options_take_every_knob_from_settings_by_name():
    """No hand mapping: every declared knob set to a non-default value in
    settings arrives in the clip options (or their image parameters)."""
    changed: dict[str, Any] = {}
    for name, field in DECLARED.items():
        choices = get_args(field.annotation)
        default = field.default
        if choices:
            changed[name] = next(c for c in choices if c != default)
        elif isinstance(default, bool):
            changed[name] = not default
        elif isinstance(default, (int, float)):
            changed[name] = default * 0.5 if isinstance(default, float) and default <= 1 else default + 1
        else:
            changed[name] = "magma"
    changed["color_lo"], changed["color_hi"] = 0.25, 0.5
    changed["overlap"] = 0.5
    s = HydroSettings(**changed)
    opts = clipper.ClipOptions.from_settings(s)
    got = {n: getattr(opts.params if n in params.SpectrogramParams.model_fields else opts, n) for n in DECLARED}
    assert got == changed


def test_cli_choices_and_help_come_from_the_declaration():
    """``hydrophone clip --render/--span/--align``: the declared Literal's
    values, the declared description and default; a value outside them is
    refused before anything runs."""
    from typer.testing import CliRunner

    from specfleet.cli.hydrophone import clip, hydrophone_app

    hints = get_type_hints(clip)
    runner = CliRunner()
    page = runner.invoke(hydrophone_app, ["clip", "--help"], env={"COLUMNS": "400"}).output
    # the Python parameter of --render is render_mode: render is the CLI's renderer
    for name, param in (("render", "render_mode"), ("span", "span"), ("align", "align")):
        assert hints[param] == DECLARED[name].annotation | None
        assert typer_default(clip, param) is None  # unset: the settings (environment, then the declaration) decide
        assert "<" + "|".join(get_args(DECLARED[name].annotation)) + ">" in page
        assert f"Default: {DECLARED[name].default}." in params.describe(name)
        assert params.describe(name).split(" Default:")[0][:40] in page
        refused = runner.invoke(hydrophone_app, ["clip", "x.mseed", "--out", "o", f"--{name}", "nope"])
        assert refused.exit_code == 2 and "nope" in refused.output


def typer_default(fn: Any, name: str) -> Any:
    return inspect.signature(fn).parameters[name].default.default


@pytest.mark.parametrize("render", get_args(params.Render))
def test_image_metadata_carries_the_declared_parameters(render):
    p = params.SpectrogramParams(render=render)
    rendered = dsp.RenderedClip(np.zeros((p.height, p.width), np.uint8), None, -10.0, 10.0, -20.0, 20.0)
    meta = imagemeta.clip_metadata(rendered, p, sample_rate=64_000.0, n_samples=320_001,
                                   clip_start="2017-10-09T00:00:00.000000Z")
    keys = {**image_keys(params.SpectrogramParams), **image_keys(params.ClipParams)}
    assert set(keys) >= {"overlap", "width", "height", "fmax_hz", "color_lo", "color_hi", "render", "span", "cmap"}
    expected = {key: text(getattr(p, name) if name in p.model_fields else params.CLIP.cmap) for name, key in keys.items()}
    if render == "mean":  # the span is then over the computed frames, and says how many
        expected["span"] = "frames"
        assert meta["frames_per_column"] == str(p.frames_per_column)
    assert {k: meta[k] for k in expected} == expected
