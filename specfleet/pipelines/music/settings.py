"""Settings of the music pipelines (search, download): environment
variables ``SPECFLEET_MUSIC_*``. Resolved once per worker by the runtime
(``spec.settings``) and handed to handlers as ``ctx.config``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ...runtime.spec import StackSetting

#: Where a fleet's search overrides CSV lives: under this prefix of the data
#: bucket (``s3://<SPECFLEET_BUCKET>/music-config/...``). The worker role may
#: read objects there and write none (``FleetProfile.read_prefixes``); any
#: other bucket or prefix is out of its reach, so the search worker's
#: pre-flight refuses it (``search/overrides.py``).
CONFIG_PREFIX = "music-config/"

#: What a deployed stack hands the download and search workers: the cookies secret's ARN
#: (template parameter ``YouTubeCookiesSecretArn``; the role may read exactly it).
COOKIES_STACK_SETTING = StackSetting(
    env="SPECFLEET_MUSIC_COOKIES_SECRET_ID",
    parameter="YouTubeCookiesSecretArn",
    description="Optional: full ARN (with its 6-character suffix) of a Secrets Manager secret holding a YouTube "
                "cookies.txt; download and search workers read it at start, the worker role may read exactly this secret. "
                "Empty: guests, no secret access.",
    allowed_pattern=r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6})?$",
    secret=True,
)
#: ... and the search workers: the overrides CSV, under ``music-config/`` of the data bucket.
OVERRIDES_STACK_SETTING = StackSetting(
    env="SPECFLEET_MUSIC_OVERRIDES_CSV",
    parameter="SearchOverridesCsv",
    description=f"Optional: s3://<DataBucketName>/{CONFIG_PREFIX}<name>.csv, the search overrides (track_id,url or "
                "NOTFOUND); workers may read that prefix only. Empty: no overrides.",
    allowed_pattern=rf"^(s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/{CONFIG_PREFIX}[A-Za-z0-9._/-]+)?$",
)


class MusicSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPECFLEET_MUSIC_", extra="ignore")

    #: Hosts a video URL may point at (search results and download jobs).
    #: Production accepts YouTube only.
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["www.youtube.com", "youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be"]
    )
    #: Extra allowed ``host`` or ``host:port`` entries (the local video site
    #: in tests and the demo), e.g. ``SPECFLEET_MUSIC_EXTRA_HOSTS='["127.0.0.1:8123"]'``.
    extra_hosts: list[str] = Field(default_factory=list)
    #: Longest video URL accepted (YouTube watch URLs are ~43 characters).
    max_url_len: int = 200
    #: ``ytdlp`` (yt-dlp's search) or ``selenium`` (headless Chromium scraper).
    search_backend: str = "ytdlp"
    #: yt-dlp backend: empty = ``ytsearch1:``; else a JSON search API URL with
    #: ``{query}`` (the local video site), read by a small yt-dlp extractor.
    search_url: str = ""
    #: Selenium backend: the results page to scrape, with ``{query}`` (the
    #: original's: Spanish interface, so views read "N visualizaciones").
    results_page_url: str = "https://www.youtube.com/results?hl=es&gl=ES&search_query={query}"
    #: Results scanned per search by the yt-dlp backend (``ytsearchN:``); the
    #: Selenium backend scans every result of the page, as the original did.
    search_results: int = Field(default=20, ge=1, le=100)
    #: Which result is the track (``title_match.py``): ``original`` (the
    #: original's title rules; NOTFOUND when none matches), ``strict`` (the
    #: title holds every query word) or ``first`` (first result, unchecked).
    title_match: Literal["original", "strict", "first"] = "original"
    #: Accent folding before matching: ``unidecode`` (any character to ASCII)
    #: or ``original`` (the original's 13-letter table).
    title_fold: Literal["unidecode", "original"] = "unidecode"
    chromium_path: str = "/usr/bin/chromium"
    chromedriver_path: str = "/usr/bin/chromedriver"
    page_timeout_s: float = 20.0
    #: Videos longer than this are refused before anything is downloaded.
    max_duration_s: int = 1800
    #: Source files larger than this are not downloaded (yt-dlp max_filesize).
    max_source_bytes: int = 60_000_000
    #: mp3s this size or larger are refused (the original later dropped >= 10 MB).
    max_mp3_bytes: int = 10_000_000
    #: Downloads running at once in one worker (the rest of its jobs wait).
    concurrent_downloads: int = 4
    #: mp3 VBR quality for ffmpeg (0 best .. 9 smallest).
    mp3_quality: str = "5"
    socket_timeout_s: float = 20.0
    #: Longest one video download may take in all (metadata, media, redirects).
    fetch_budget_s: float = 900.0
    #: yt-dlp's own retries of a failed HTTP transfer before the job fails.
    ytdlp_retries: int = 2
    #: ffmpeg binary; empty = imageio-ffmpeg's (installs with the project), else ``ffmpeg`` on PATH.
    ffmpeg: str = ""
    #: Parent folder for per-job temp folders (empty = the system temp dir).
    tmp_dir: str = ""
    #: Download workers also compute the track's spectrogram windows
    #: ("fused"): the same ``spec/`` JPEGs and ``status_specto`` rows as the
    #: spectrogram pipeline, from the audio on hand, with no mp3 round trip
    #: through S3 and no spectrogram job. Its parameters are the spectrogram
    #: pipeline's (``SPECFLEET_SPECTRO_*``); needs ``specfleet[spectrogram]``.
    #: See ``pipelines/download/fused.py``.
    fused: bool = False
    #: Upload the mp3 to ``audio/``. False needs ``fused`` (windows only).
    write_mp3: bool = True
    #: Which audio a fused worker's windows show. ``mp3``: the mp3 as encoded
    #: (even when not uploaded), decoded locally: what the two-stage path and
    #: the original analyse, the same images. ``source``: the downloaded
    #: audio decoded once, no mp3 needed: with ``write_mp3=false`` the
    #: cheapest path (no mp3 encode), but the images lack the mp3's coding
    #: loss and differ from the two-stage ones (see ``fused.py``).
    fused_source: Literal["mp3", "source"] = "mp3"

    #: JS runtimes yt-dlp may use, ``RUNTIME[:PATH]`` (yt-dlp's
    #: ``--js-runtimes``): YouTube needs one since yt-dlp 2025.11.12. The
    #: default is yt-dlp's own: Deno, found in the venv (the ``deno`` wheel)
    #: or on PATH.
    js_runtimes: list[str] = Field(default_factory=lambda: ["deno"])
    #: A download or search worker refuses to start when yt-dlp sees none.
    require_js_runtime: bool = True
    #: How long a worker whose session YouTube rate-limited takes no job
    #: (yt-dlp: "rate-limited by YouTube for up to an hour").
    rate_limit_pause_s: float = Field(default=3600.0, gt=0)
    #: Up to this fraction of the pause is added at random (a fleet limited
    #: at once does not come back at once).
    rate_limit_pause_jitter: float = Field(default=0.1, ge=0, le=1)
    #: The fleet's other regions, whose workers may fetch a video that is
    #: geo-restricted in this one (empty: such a video is rejected at once).
    geo_regions: list[str] = Field(default_factory=list)

    #: Per-instance budget of videos (watch pages, searches) per hour, shared
    #: by every slot of every music worker on the instance, with jittered
    #: gaps: YouTube rate-limits a guest session at ~300 videos an hour
    #: (yt-dlp wiki, "Common YouTube Errors"; yt-dlp #11426). 0: unpaced.
    #: ``fleet plan`` and the autoscaling targets plan at this rate when it
    #: is below the measured throughput.
    videos_per_hour: float = Field(default=300.0, ge=0)
    #: Each gap is the budget's (3600 / videos_per_hour s) plus up to this
    #: fraction at random: never shorter, so the budget is never exceeded.
    pace_jitter: float = Field(default=0.5, ge=0, le=5)
    #: The file through which the instance's music workers share the budget
    #: (empty: ``specfleet-video-pace`` in the system temp folder).
    pace_state_file: str = ""
    #: The budget paces YouTube hosts; also pace ``extra_hosts`` (the local
    #: video site: tests and benchmarks of the budget).
    pace_local_sites: bool = False

    #: Secrets Manager secret holding a Netscape cookies.txt for YouTube
    #: (``cookies.py``; never user-data or the image); empty: guest. On a
    #: stack: the template parameter ``YouTubeCookiesSecretArn`` (its full
    #: ARN), which also lets the worker role read exactly that secret.
    cookies_secret_id: str = ""
    #: Search overrides (``search/overrides.py``): a CSV ``track_id,url``
    #: (URL or NOTFOUND), a local path or ``s3://bucket/key``; empty: none.
    #: In S3 it must be under ``music-config/`` of the data bucket
    #: (``s3://<SPECFLEET_BUCKET>/music-config/overrides.csv``): the only
    #: place the worker role may read it (read-only); the search worker's
    #: pre-flight refuses any other bucket or prefix. On a stack: the
    #: template parameter ``SearchOverridesCsv``.
    overrides_csv: str = ""

    @property
    def jobs_per_hour_cap(self) -> float | None:
        """The per-instance job budget ``fleet plan`` and scaling honour."""
        return self.videos_per_hour or None

    @model_validator(mode="after")
    def _something_to_write(self) -> MusicSettings:
        if not self.write_mp3 and not self.fused:
            raise ValueError(
                "write_mp3=false needs fused=true: a download worker that writes neither the mp3 nor "
                "the spectrogram windows would do nothing (set SPECFLEET_MUSIC_FUSED=true)"
            )
        return self
