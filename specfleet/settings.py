"""All configuration in one place.

Values come from the environment (prefix ``SPECFLEET_``) plus the standard AWS
variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``). Credentials never live here:
boto3 uses its default chain (instance profile on EC2) and the database
password comes from ``SPECFLEET_DB_DSN`` or a Secrets Manager secret named by
``SPECFLEET_DB_SECRET_ID``.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Logical queue names from SPEC.md. Real names are ``queue_prefix + name``.
JOB_QUEUES = {
    "echo": "jobs_echo",
    "hydrophone": "jobs_hydro",
    "search": "jobs_search",
    "download": "jobs_download",
    "spectrogram": "jobs_specto",
}
STATUS_QUEUES = {
    "echo": "status_echo",
    "hydrophone": "status_hydro",
    "search": "status_search",
    "download": "status",
    "spectrogram": "status_specto",
}
DLQ_SUFFIX = "_dlq"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPECFLEET_", extra="ignore", populate_by_name=True)

    # --- AWS -------------------------------------------------------------
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("SPECFLEET_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SPECFLEET_ENDPOINT_URL", "AWS_ENDPOINT_URL")
    )
    #: Prepended to every queue, topic and bucket name so several stacks
    #: (or test cases) can share one account or one local server.
    queue_prefix: str = ""
    bucket: str = "specfleet-data"
    topic_name: str = "status_sns"

    # --- database ----------------------------------------------------------
    db_dsn: SecretStr | None = None
    db_secret_id: str | None = None
    db_connect_timeout_s: int = 5

    # --- consumer runtime ----------------------------------------------------
    instance_id: str = Field(default_factory=lambda: os.environ.get("HOSTNAME") or socket.gethostname())
    visibility_timeout_s: int = 120
    wait_time_s: int = 20
    #: Receives before SQS moves a message to its dead-letter queue.
    max_receives: int = 5
    #: Jobs running at once in one worker process (threads, or a process pool
    #: for CPU-bound pipelines). 0 means one per CPU.
    concurrency: int = 0
    #: Seconds a SIGTERM'd worker lets in-flight jobs finish before handing
    #: them back (visibility 0). 0 hands them back at once.
    drain_s: float = 0.0
    #: Consecutive ban-class failures before a worker reports stat -1 and stops.
    ban_threshold: int = 3
    #: Optional cap on jobs started per minute by one worker (0 = no cap).
    rate_limit_per_min: float = 0.0

    # --- status writer ---------------------------------------------------------
    #: At most one SNS alert per subject per this many seconds; the rest are
    #: counted and reported in the next alert (no alert storms).
    alert_min_interval_s: int = 300

    # --- local stack -------------------------------------------------------------
    local_dir: str = ".specfleet/local"

    # Pipeline- and tool-specific settings: each block belongs to one area.
    # --- hydrophone ---------------------------------------------------------------
    #: OOI raw-data archive root and the default hydrophone folder below it.
    hydro_base_url: str = "https://rawdata.oceanobservatories.org/files/"
    hydro_hydrophone: str = "CE02SHBP/LJ01D/11-HYDBBA106"
    #: S3 key prefix of clips: ``{prefix}/{hydrophone}/{YYYY_MM_DD}/{name}.wav|.png``.
    hydro_prefix: str = "hydrophone"
    #: Per-file "all clips written" markers, read by the producer to skip done files.
    hydro_manifest_prefix: str = "hydrophone-manifests"
    #: Files at another rate are rejected (0 accepts any rate).
    hydro_expected_sample_rate: float = 64_000.0
    hydro_clip_s: float = 5.0
    #: "ping": each clip starts at the loudest sample of its first second (the
    #: original's behaviour); "grid": plain 5 s grid.
    hydro_align: str = Field(default="ping", pattern="^(ping|grid)$")
    hydro_ping_search_s: float = 1.0
    hydro_window_s: float = 0.056
    hydro_overlap: float = 0.995
    hydro_image_width: int = 512
    hydro_image_height: int = 512
    hydro_fmax_hz: float = 11_000.0
    hydro_color_lo: float = 0.50
    hydro_color_hi: float = 0.95
    hydro_frames_per_column: int = 2
    hydro_cmap: str = "viridis"
    hydro_png_compress_level: int = 1
    #: Clips with more than this fraction of gap-filled samples are skipped.
    hydro_max_gap_fraction: float = 0.5
    #: Source files larger than this are rejected without reading them whole.
    hydro_max_file_bytes: int = 256 * 1024 * 1024
    hydro_connect_timeout_s: float = 10.0
    hydro_read_timeout_s: float = 60.0
    hydro_download_attempts: int = 4
    #: Processes rendering clips (0 = one per CPU) and clips per pool task.
    hydro_processes: int = 0
    hydro_clips_per_task: int = 10
    # --- music (search, download) -------------------------------------------------
    #: Hosts a video URL may point at (search results and download jobs).
    #: Production accepts YouTube only.
    music_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["www.youtube.com", "youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be"]
    )
    #: Extra allowed ``host`` or ``host:port`` entries (the local video site
    #: in tests and the demo), e.g. ``SPECFLEET_MUSIC_EXTRA_HOSTS='["127.0.0.1:8123"]'``.
    music_extra_hosts: list[str] = Field(default_factory=list)
    #: Longest video URL accepted (YouTube watch URLs are ~43 characters).
    music_max_url_len: int = 200
    #: ``ytdlp`` (yt-dlp's search) or ``selenium`` (headless Chromium scraper).
    music_search_backend: str = "ytdlp"
    #: yt-dlp backend: empty = ``ytsearch1:``; else a JSON search API URL with
    #: ``{query}`` (the local video site), read by a small yt-dlp extractor.
    music_search_url: str = ""
    #: Selenium backend: the results page to scrape, with ``{query}``.
    music_results_page_url: str = "https://www.youtube.com/results?search_query={query}"
    music_chromium_path: str = "/usr/bin/chromium"
    music_chromedriver_path: str = "/usr/bin/chromedriver"
    music_page_timeout_s: float = 20.0
    #: Videos longer than this are refused before anything is downloaded.
    music_max_duration_s: int = 1800
    #: Source files larger than this are not downloaded (yt-dlp max_filesize).
    music_max_source_bytes: int = 60_000_000
    #: mp3s this size or larger are refused (the original later dropped >= 10 MB).
    music_max_mp3_bytes: int = 10_000_000
    #: Downloads running at once in one worker (the rest of its jobs wait).
    music_concurrent_downloads: int = 4
    #: mp3 VBR quality for ffmpeg (0 best .. 9 smallest).
    music_mp3_quality: str = "5"
    music_socket_timeout_s: float = 20.0
    #: yt-dlp's own retries of a failed HTTP transfer before the job fails.
    music_ytdlp_retries: int = 2
    #: ffmpeg binary; empty = imageio-ffmpeg's (installs with the project), else ``ffmpeg`` on PATH.
    music_ffmpeg: str = ""
    #: Parent folder for per-job temp folders (empty = the system temp dir).
    music_tmp_dir: str = ""
    # --- spectrogram -----------------------------------------------------------------
    #: Music spectrograms (SPEC.md section 2); defaults are the original's.
    spectro_sample_rate: int = Field(default=16000, ge=1000, le=192000)
    spectro_n_fft: int = Field(default=1024, ge=64)
    spectro_hop: int = Field(default=512, ge=16)
    spectro_n_mels: int = Field(default=256, ge=8, le=1024)
    spectro_fmax: float = Field(default=8000.0, gt=0)
    spectro_top_db: float = Field(default=80.0, gt=0)
    spectro_window_s: int = Field(default=30, ge=1)
    spectro_step_s: int = Field(default=20, ge=1)
    #: Tracks shorter than this (whole seconds) are rejected.
    spectro_min_duration_s: int = Field(default=1, ge=1)
    spectro_jpeg_quality: int = Field(default=75, ge=1, le=100)
    #: mp3s larger than this are skipped (the original's 10 MB rule).
    spectro_max_mp3_bytes: int = Field(default=10_000_000, ge=1)
    #: Tracks longer than this are skipped (stat 2): by their header before
    #: decoding, or once decoding passes it (a header may lie; memory follows this).
    spectro_max_duration_s: float = Field(default=3600.0, gt=0)
    #: Processes computing spectrograms in one worker (0 = one per CPU).
    spectro_processes: int = Field(default=0, ge=0)
    spectro_audio_prefix: str = "audio/"
    spectro_output_prefix: str = "spec/"
    # --- fleet / infra -------------------------------------------------------------------
    #: Regions the fleet may use, in failover order (a banned instance's
    #: capacity moves to the next one). JSON list in the environment.
    fleet_regions: list[str] = Field(default_factory=lambda: ["us-east-1", "us-west-2", "eu-west-1"])
    #: Worker AMI (in ``region``); other regions get a copy tagged with this id.
    fleet_ami_id: str = ""
    fleet_instance_type: str = "c6i.large"
    #: Buy spot capacity for ``fleet launch`` (the ASGs mix spot and on-demand).
    fleet_spot: bool = True
    fleet_instance_profile: str = ""
    fleet_security_group_ids: list[str] = Field(default_factory=list)
    fleet_subnet_id: str = ""
    fleet_stack_name: str = "specfleet"
    #: Bucket for deploy artifacts (the status-writer Lambda zip).
    fleet_artifact_bucket: str = ""
    #: JSON price table for ``fleet plan`` (empty: the packaged one).
    fleet_price_table: str = ""
    #: JSON throughput figures for ``fleet plan`` / autoscale (empty: packaged).
    fleet_throughput_file: str = ""
    #: Autoscaling: seconds per decision and per-pipeline bounds.
    fleet_scale_interval_s: float = 300.0
    fleet_min_size: int = 0
    fleet_max_size: int = 30
    #: Instance metadata endpoint. Set (``http://169.254.169.254`` on EC2) to
    #: make workers watch for spot interruptions / ASG termination and drain.
    imds_url: str = ""
    imds_poll_s: float = 5.0
    # --- monitoring -------------------------------------------------------------------
    #: Minutes of status history behind the "rate" and ETA in ``specfleet status``.
    monitor_rate_window_min: float = 10.0
    #: An instance counts as alive if it sent a status in this many minutes.
    monitor_alive_window_min: float = 5.0
    #: Seconds between refreshes of ``specfleet status --watch``.
    monitor_refresh_s: float = 5.0
    #: Report: bounds that keep the self-contained HTML small.
    report_gallery_max: int = 12
    report_max_audio_bytes: int = 4_000_000
    report_max_tracks: int = 8
    report_max_windows_per_track: int = 12
    report_history_hours: float = 24.0
    # --- catalog -----------------------------------------------------------------------
    #: Public chart pages (kworb-style): the top-artists list and one songs
    #: page per artist. Tests point these at a local stand-in.
    catalog_chart_url: str = "https://kworb.net/spotify/"
    catalog_artists_page: str = "artists.html"
    catalog_artist_page: str = "artist/{artist_id}_songs.html"
    #: Spotify Web API; the client id/secret come only from the environment
    #: (SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET), never from settings.
    spotify_api_url: str = "https://api.spotify.com/v1"
    spotify_auth_url: str = "https://accounts.spotify.com/api/token"
    catalog_market: str = "US"
    #: GET /artists takes at most 50 ids per call.
    catalog_artists_per_call: int = 50
    #: Main artists whose rows are written (and marked done) per transaction.
    catalog_artists_per_commit: int = 10
    #: Seed for the deterministic tie-break in genre inference.
    catalog_seed: int = 42
    catalog_http_timeout_s: float = 20.0
    catalog_max_attempts: int = 5
    #: First back-off between retries of a failed call (doubles, with jitter).
    catalog_retry_wait_s: float = 1.0
    #: A 429 asking to wait longer than this fails instead of sleeping.
    catalog_max_retry_after_s: float = 300.0

    def job_queue(self, pipeline: str) -> str:
        return self.queue_prefix + JOB_QUEUES[pipeline]

    def status_queue(self, pipeline: str) -> str:
        return self.queue_prefix + STATUS_QUEUES[pipeline]

    def topic(self) -> str:
        return self.queue_prefix + self.topic_name

    def effective_concurrency(self) -> int:
        return self.concurrency if self.concurrency > 0 else (os.cpu_count() or 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings. Tests and the CLI build their own ``Settings``."""
    return Settings()


def pipeline_for_queue(queue_name: str, prefix: str = "") -> tuple[str, str]:
    """Map a real queue name back to ``(pipeline, "jobs"|"status")``.

    Raises ``KeyError`` for a queue that is not ours.
    """
    name = queue_name[len(prefix):] if prefix and queue_name.startswith(prefix) else queue_name
    for pipeline, q in STATUS_QUEUES.items():
        if q == name:
            return pipeline, "status"
    for pipeline, q in JOB_QUEUES.items():
        if q == name:
            return pipeline, "jobs"
    raise KeyError(f"unknown queue {queue_name!r}")
