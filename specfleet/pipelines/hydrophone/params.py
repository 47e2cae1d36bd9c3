"""Every knob of a hydrophone clip, declared once: its type (a ``Literal``
for each choice), default, bounds and description.

Everything else reads these declarations instead of repeating them, as
librosa keeps one keyword default per parameter:

* ``HydroSettings`` (``SPECFLEET_HYDRO_*``) inherits both models, so each
  knob is an environment variable with the same name, type, bounds and
  default (``settings.py`` adds only what is not a clip parameter);
* ``dsp``'s functions take ``SpectrogramParams`` or keyword defaults read
  from ``SPECTROGRAM``/``CLIP`` below;
* ``clipper.ClipOptions`` is a ``ClipParams`` (plus what is not a knob);
* the CLI's ``--render``/``--span``/``--align`` take their choices (the
  Literal types) and help (``describe``) from here;
* each image's metadata carries the parameters marked ``image(key)`` here
  under that key (``imagemeta``).

Adding a knob: one field here; use it where it acts (``dsp``). The
settings, the CLI's help and, if marked, the image metadata follow.
``tests/test_hydrophone_params.py`` fails if any of them drifts.

Defaults are the original tool's reference parameters (window 0.056 s ->
4096 samples at 64 kHz, 99.5 % overlap, 512x512 px, 0-11 kHz, colours over
50-95 % of the clip's dB span, ping-aligned 5 s clips, JPEG quality 95).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: How a clip's image is computed: ``"original"`` one spectrogram cell per
#: pixel, the cell the original's ``imshow(interpolation="nearest")`` shows;
#: ``"mean"`` dB averaged per pixel over ``frames_per_column`` frames.
Render = Literal["original", "mean"]
#: How ``render="original"`` finds the colour span over every cell (see ``SpectrogramParams.span``).
SpanMethod = Literal["pruned", "full", "frames"]
#: Where clips start: ``"ping"`` the original's (signed argmax of each second
#: 0, 5, 10, ...; 5 s + 1 sample), ``"ping_abs"`` the largest |x| of each
#: slot's first second, whole clips only, ``"grid"`` a plain 5 s grid.
Align = Literal["ping", "ping_abs", "grid"]
#: ``render="mean"``: average per pixel in dB (like the reference grid) or in power (cheaper).
Average = Literal["db", "power"]
#: Image files: PNG (specfleet's layout) or JPEG (the original's, whaledr profile).
ImageFormat = Literal["png", "jpg"]
#: Output layout of the worker (``HydroSettings.output``).
Output = Literal["specfleet", "whaledr", "levels"]
#: dB re 1 V/uPa (OOI's metadata/cals) or dB re 1 count/uPa (rca_correction_cals).
CalibrationReference = Literal["volt", "count"]



def image(key: str) -> dict[str, Any]:
    """``json_schema_extra`` of a parameter each image's metadata carries under ``key``."""
    return {"image": key}


class SpectrogramParams(BaseModel):
    """How one clip's spectrogram image is computed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_s: float = Field(
        default=0.056, gt=0,
        description="Analysis window in seconds, rounded to the nearest power of two of samples "
        "(0.056 s -> 4096 at 64 kHz).",
    )
    overlap: float = Field(
        default=0.995, ge=0, lt=1,
        description="Fraction of a window shared with the next (0.995 -> a hop of 21 samples at 4096).",
        json_schema_extra=image("overlap"),
    )
    width: int = Field(default=512, gt=0, description="Image width in pixels.", json_schema_extra=image("width"))
    height: int = Field(default=512, gt=0, description="Image height in pixels.", json_schema_extra=image("height"))
    fmax_hz: float = Field(default=11_000.0, gt=0, description="Top of the image's frequency axis (Hz).",
                           json_schema_extra=image("freq_max_hz"))
    color_lo: float = Field(
        default=0.50, ge=0, le=1, description="First colour at this fraction of the clip's min..max dB span.",
        json_schema_extra=image("color_lo"),
    )
    color_hi: float = Field(
        default=0.95, ge=0, le=1, description="Last colour at this fraction of the clip's min..max dB span.",
        json_schema_extra=image("color_hi"),
    )
    render: Render = Field(
        default="original",
        description="original: each pixel the one cell the original's imshow shows, colours over every cell "
        "of the clip; mean: dB averaged per pixel over frames_per_column frames (smoother, darker).",
        json_schema_extra=image("render"),
    )
    span: SpanMethod = Field(
        default="pruned",
        description="render=original: how the min..max dB over every cell is found. pruned: exact max "
        "(proven unless more than max_extra_frames frames could hold it), min from the Nyquist row; "
        "full: every cell, ~7x the cost; frames: the image's frames only, ~40 dB too narrow, darker images.",
        json_schema_extra=image("span"),
    )
    exact_rows: int = Field(
        default=2, ge=0, description="span=pruned: low rows computed for every frame (they hold the max of "
        "most recordings: DC leakage, 1/f noise).",
    )
    max_extra_frames: int = Field(
        default=256, ge=0, description="span=pruned: most frames transformed whole to prove the max.",
    )
    # 4, not 2: the value the comparison with the original's every-frame
    # spectrogram is tested at (tests/test_hydrophone_dsp.py); see that test.
    frames_per_column: int = Field(
        default=4, ge=1, description="render=mean: FFT frames per pixel column (the original computes ~29).",
    )
    floor_rel: float = Field(
        default=1e-16, gt=0, description="render=mean: power below max * floor_rel (160 dB down) counts as "
        "the floor (keeps the zeros of gap-filled samples finite in dB).",
    )
    average: Average = Field(default="db", description="render=mean: average per pixel in dB or in power.")

    @model_validator(mode="after")
    def _colour_range(self) -> SpectrogramParams:
        if not self.color_lo < self.color_hi:
            raise ValueError(f"need color_lo < color_hi, got {self.color_lo}, {self.color_hi}")
        return self


class ClipParams(BaseModel):
    """How a file is cut into clips and how each clip's files are written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clip_s: float = Field(default=5.0, gt=0, description="Clip length in seconds.")
    align: Align = Field(
        default="ping",
        description="ping: the original's clips (signed argmax of seconds 0, 5, 10, ..., 5 s + 1 sample each, "
        "the last cut short by the file's end); ping_abs: largest |x| of each 5 s slot's first second, whole "
        "clips only; grid: a plain 5 s grid.",
    )
    ping_search_s: float = Field(default=1.0, gt=0, description="align=ping_abs: seconds searched for the ping.")
    max_gap_fraction: float = Field(
        default=0.5, ge=0, le=1, description="Clips with more than this fraction of gap-filled samples are skipped.",
    )
    cmap: str = Field(default="viridis", min_length=1, description="matplotlib colour map of the images.",
                      json_schema_extra=image("cmap"))
    png_compress_level: int = Field(default=1, ge=0, le=9, description="zlib level of the PNGs.")
    jpeg_quality: int = Field(
        default=95, ge=1, le=100, description="JPEG quality of the whaledr profile (the original's matplotlib "
        "saved at 95).",
    )
    clips_per_task: int = Field(default=10, ge=1, description="Clips per process-pool task.")


#: The declared defaults, for keyword defaults of plain functions (``dsp``).
SPECTROGRAM = SpectrogramParams()
CLIP = ClipParams()


def describe(name: str) -> str:
    """A parameter's description with its default (CLI help)."""
    field = {**SpectrogramParams.model_fields, **ClipParams.model_fields}[name]
    return f"{field.description} Default: {field.default}."


def pick(model: type[Any], source: BaseModel) -> Any:
    """``model`` from the same-named fields of ``source`` (settings): no hand mapping."""
    return model(**{n: getattr(source, n) for n in model.model_fields})
