"""Settings of the spectrogram pipeline: environment variables
``SPECFLEET_SPECTRO_*``. Resolved once per worker by the runtime
(``spec.settings``) and handed to the handler as ``ctx.config``; a fused
download worker (``MusicSettings.fused``) reads the same variables, so both
paths write the same windows."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SpectroSettings(BaseSettings):
    """Music spectrograms (SPEC.md section 2); defaults are the original's."""

    model_config = SettingsConfigDict(env_prefix="SPECFLEET_SPECTRO_", extra="ignore")

    sample_rate: int = Field(default=16000, ge=1000, le=192000)
    n_fft: int = Field(default=1024, ge=64)
    hop: int = Field(default=512, ge=16)
    n_mels: int = Field(default=256, ge=8, le=1024)
    fmax: float = Field(default=8000.0, gt=0)
    top_db: float = Field(default=80.0, gt=0)
    window_s: int = Field(default=30, ge=1)
    step_s: int = Field(default=20, ge=1)
    #: Tracks shorter than this (whole seconds) are rejected.
    min_duration_s: int = Field(default=1, ge=1)
    jpeg_quality: int = Field(default=75, ge=1, le=100)
    #: mp3s larger than this are skipped (the original's 10 MB rule).
    max_mp3_bytes: int = Field(default=10_000_000, ge=1)
    #: Tracks longer than this are skipped (stat 2): by their header before
    #: decoding, or once decoding passes it (a header may lie; memory follows this).
    max_duration_s: float = Field(default=3600.0, gt=0)
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
