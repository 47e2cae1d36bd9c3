"""Settings of the spectrogram pipeline: environment variables
``SPECFLEET_SPECTRO_*``. Resolved once per worker by the runtime
(``spec.settings``) and handed to the handler as ``ctx.config``; a fused
download worker (``MusicSettings.fused``) reads the same variables, so both
paths write the same windows.

The window parameters (rate, FFT, mel bands, dB, window plan, JPEG quality,
duration limit) are declared in ``params.py`` and inherited here, each as
``SPECFLEET_SPECTRO_{NAME}``; this class adds the rest."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ...settings import RenamingSettings
from .params import SpectroParams

#: Variables renamed when the parameters got one declaration (old -> new,
#: librosa's name): a worker still given an old one stops with an error.
RENAMED_ENV = {"SPECFLEET_SPECTRO_HOP": "SPECFLEET_SPECTRO_HOP_LENGTH"}


class SpectroSettings(SpectroParams, RenamingSettings):
    """Music spectrograms (SPEC.md section 2); defaults are the original's."""

    model_config = SettingsConfigDict(env_prefix="SPECFLEET_SPECTRO_", extra="ignore", frozen=False)

    renamed_env = RENAMED_ENV

    #: mp3s larger than this are skipped (the original's 10 MB rule).
    max_mp3_bytes: int = Field(default=10_000_000, ge=1)
    #: Processes computing spectrograms in one worker (0 = one per CPU).
    processes: int = Field(default=0, ge=0)
    audio_prefix: str = "audio/"
    output_prefix: str = "spec/"

    # --- ``spectrogram preview URL``: where an mp3 may be fetched from ---------------
    #: Hosts (``host`` or ``host:port``) an mp3 URL may name; none by default.
    #: Non-public addresses only when named literally (``127.0.0.1:8080``).
    allowed_hosts: list[str] = Field(default_factory=list)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)
    #: A fetch's whole time budget (a source trickling bytes ends here).
    fetch_budget_s: float = Field(default=300.0, gt=0)
