"""Settings of the hydrophone pipeline: environment variables
``SPECFLEET_HYDRO_*``. Resolved once per worker by the runtime
(``spec.settings``) and handed to the handler as ``ctx.config``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .timerange import FILE_SECONDS

#: OEK's ``TrHld2`` (OOI's hydrophone setting): a gap between pieces up to
#: this long is never a real break (``repair.repair``'s default too).
GAP_THRESHOLD_S = 0.023


class HydroSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPECFLEET_HYDRO_", extra="ignore")

    #: OOI raw-data archive root and the default hydrophone folder below it.
    base_url: str = "https://rawdata.oceanobservatories.org/files/"
    #: Hosts (``host`` or ``host:port``) hydrophone files and listings may come
    #: from, redirects included. Non-public addresses only when named literally
    #: (the local stand-in: ``127.0.0.1:8123``). See ``specfleet.outbound``.
    allowed_hosts: list[str] = Field(default_factory=lambda: ["rawdata.oceanobservatories.org"])
    hydrophone: str = "CE02SHBP/LJ01D/11-HYDBBA106"
    #: Output layout. "specfleet": ``{prefix}/{hydrophone path}/{YYYY_MM_DD}/{name}.wav|.png``.
    #: "whaledr": the original's ``{whaledr_prefix}/{hydrophone}/{YYYY_MM_DD}/{name}.wav|.jpg``
    #: ({hydrophone} = 6th '/'-segment of the file URL, the day from the file name)
    #: plus ``{whaledr_prefix}/whalemanifest.json``, which the whaledr app reads.
    output: str = Field(default="specfleet", pattern="^(specfleet|whaledr)$")
    #: S3 key prefix of clips: ``{prefix}/{hydrophone}/{YYYY_MM_DD}/{name}.wav|.png``.
    prefix: str = "hydrophone"
    whaledr_prefix: str = "megaptera"
    #: whaledr profile: upload clips and manifest with the ``public-read`` ACL (the
    #: app fetches them anonymously; the original set it on the manifest).
    public_read: bool = False
    #: JPEG quality of the whaledr profile (the original's matplotlib saved at 95).
    jpeg_quality: int = Field(default=95, ge=1, le=100)
    #: Also write the archive-grade copy beside the clips (archive.py): each
    #: stretch as a 24-bit FLAC of the true counts, per-file records, and the
    #: day's manifest, written last, under ``{archive_prefix}/{YYYY}/{instrument}/{YYYY_MM_DD}/``.
    archive: bool = False
    archive_prefix: str = "archive"
    #: Per-file "all clips written" markers, read by the producer to skip done files.
    manifest_prefix: str = "hydrophone-manifests"
    #: Files at another rate are rejected (0 accepts any rate).
    expected_sample_rate: float = 64_000.0
    #: What one archive file holds when complete (OOI bins on 5 minutes): its
    #: sample count against this decides whether recording is missing (repair.py).
    file_seconds: float = Field(default=float(FILE_SECONDS), gt=0)
    #: A gap between pieces is a real break only when longer than this AND the
    #: file's own label noise (OOI's hydrophone setting ``TrHld2``).
    gap_threshold_s: float = Field(default=GAP_THRESHOLD_S, ge=0)
    clip_s: float = 5.0
    #: "ping": the original's clips: at the signed-argmax sample of seconds 0, 5,
    #: 10, ..., 5 s + 1 sample each, the last cut short by the file's end.
    #: "ping_abs": largest |x| of each 5 s slot's first second, whole clips only.
    #: "grid": plain 5 s grid. See dsp.ping_clip_plan / dsp.clip_starts.
    align: str = Field(default="ping", pattern="^(ping|ping_abs|grid)$")
    ping_search_s: float = 1.0
    window_s: float = 0.056
    overlap: float = 0.995
    image_width: int = 512
    image_height: int = 512
    fmax_hz: float = 11_000.0
    color_lo: float = 0.50
    color_hi: float = 0.95
    #: "original": each pixel shows the one cell the original's imshow shows,
    #: colour span over every cell of the clip; "mean": averaged pixels (see
    #: dsp.SpectrogramParams.render for the trade-offs).
    render: str = Field(default="original", pattern="^(original|mean)$")
    #: How render="original" finds the span: "pruned" | "full" | "frames"
    #: (dsp.SpectrogramParams.span).
    span: str = Field(default="pruned", pattern="^(pruned|full|frames)$")
    #: render="mean" only: FFT frames per pixel column.
    frames_per_column: int = 2
    cmap: str = "viridis"
    png_compress_level: int = 1
    #: Clips with more than this fraction of gap-filled samples are skipped.
    max_gap_fraction: float = 0.5
    #: Source files larger than this are rejected without reading them whole.
    max_file_bytes: int = 256 * 1024 * 1024
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    download_attempts: int = 4
    #: Longest one source file download may take in all (a trickling source
    #: would otherwise hold a worker slot for as long as it keeps sending).
    fetch_budget_s: float = 600.0
    #: Processes rendering clips (0 = one per CPU) and clips per pool task.
    processes: int = 0
    clips_per_task: int = 10
