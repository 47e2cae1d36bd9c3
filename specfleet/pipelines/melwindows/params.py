"""Every knob of a track's mel windows, declared once: type, default,
bounds, description, and the key each window image's metadata carries it
under (``image(key)``).

Everything else reads this declaration instead of repeating it, as librosa
keeps one keyword default per parameter:

* ``SpectroSettings`` (``SPECFLEET_SPECTRO_*``) inherits it, so each knob
  is an environment variable with the same name, type, bounds and default;
* ``dsp``'s functions take ``SpectroParams`` or keyword defaults read from
  ``SPECTRO`` below (``n_fft``, ``hop_length``, ``top_db``...);
* ``compute.params_from_settings`` picks the fields by name (no hand mapping);
* ``imagemeta.track_metadata`` writes the marked parameters under their keys.

Adding a knob: one field here; use it where it acts (``dsp``).
``tests/test_spectrogram_params.py`` fails if any reader drifts.

Defaults are the original worker's (librosa 0.7 era)::

    librosa.load(..., sr=16000)
    librosa.feature.melspectrogram(y=y, sr=sr, n_mels=256, fmax=8000, n_fft=1024, hop_length=512)
    librosa.power_to_db(S, ref=np.max)       # amin=1e-10, top_db=80
    windows of 30 s every 20 s, plt.imsave(..., cmap="gray_r")  # JPEG quality 75 (Pillow's default)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def image(key: str) -> dict[str, Any]:
    """``json_schema_extra`` of a parameter each window image's metadata carries under ``key``."""
    return {"image": key}


class SpectroParams(BaseModel):
    """Every knob of the computation, with the original's values as defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate: int = Field(default=16000, ge=1000, le=192000, json_schema_extra=image("sample_rate_hz"),
                             description="Analysis rate (Hz): decode, downmix and resample to this (librosa.load's sr).")
    n_fft: int = Field(default=1024, ge=64, json_schema_extra=image("n_fft"), description="FFT length (samples).")
    hop_length: int = Field(default=512, ge=16, json_schema_extra=image("hop_length"),
                            description="Samples between frames.")
    n_mels: int = Field(default=256, ge=8, le=1024, json_schema_extra=image("n_mels"), description="Mel bands.")
    fmin: float = Field(default=0.0, ge=0, json_schema_extra=image("fmin_hz"),
                        description="Lower edge of the mel filterbank (Hz).")
    fmax: float = Field(default=8000.0, gt=0, json_schema_extra=image("fmax_hz"),
                        description="Upper edge of the mel filterbank (Hz); the original used 8 kHz.")
    amin: float = Field(default=1e-10, gt=0, json_schema_extra=image("amin"),
                        description="power_to_db's amin (power floor before the log).")
    top_db: float = Field(default=80.0, gt=0, json_schema_extra=image("top_db"),
                          description="power_to_db's top_db: dB below the track's max clipped to the floor.")
    window_s: int = Field(default=30, ge=1, description="Window length (whole seconds).")
    step_s: int = Field(default=20, ge=1, description="Seconds between window starts.")
    min_duration_s: int = Field(default=1, ge=1,
                                description="Tracks shorter than this many whole seconds give no windows.")
    #: Decoding stops, with ``TooLongError``, once a track proves longer than
    #: this: memory is bounded by the limit, not by the header (a Xing/Info
    #: header can claim minutes for hours of frames).
    max_duration_s: float = Field(
        default=3600.0, gt=0,
        description="Tracks longer than this (seconds) are skipped: by their header before decoding, or once "
        "decoding passes it.",
    )
    jpeg_quality: int = Field(default=75, ge=1, le=100, json_schema_extra=image("jpeg_quality"),
                              description="JPEG quality of the window images (the original's Pillow default).")


#: The declared defaults, for keyword defaults of plain functions (``dsp``).
SPECTRO = SpectroParams()


def pick(source: BaseModel) -> SpectroParams:
    """``SpectroParams`` from the same-named fields of ``source`` (settings): no hand mapping."""
    return SpectroParams(**{n: getattr(source, n) for n in SpectroParams.model_fields})
