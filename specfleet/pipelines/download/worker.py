"""Download worker: ``{track_id, yt_url}`` -> ``audio/{track_id}.mp3`` on S3
(and, fused, the track's spectrogram windows: see ``fused.py``).

Per job: check the URL against the host policy, skip the track if its mp3 is
already in S3 (stat 2), ask yt-dlp for the video's metadata and refuse it
*before downloading* if it is too long or too large, download the
lowest-quality audio into a private temp folder, convert it to mp3 with
ffmpeg, refuse mp3s at or over the size limit, upload, report stat 1. The temp
folder is removed whatever happens; no path is ever built from job input.

yt-dlp's failures are classified by ``errors.classify`` (its table of what
YouTube answers today): a session rate limit pauses the worker (``Paused``:
no job failed), ban-class (-> ``Banned``: counts toward the ban threshold),
geo-restricted (-> ``Elsewhere`` for another fleet region, else
``Rejected``), age-restricted/private/gone (-> ``Rejected``), missing
formats (gone only when yt-dlp sees a JS runtime) and transient
(-> ``Transient``: retried with backoff). The worker refuses to start when
yt-dlp sees no JS runtime (its pre-flight check, ``jsruntime.py``).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...ffmpeg import ffmpeg_path
from ...outbound import Budget, OutboundRefused, guard_connections
from ...runtime import JobContext, JobError, Rejected, Skipped, Transient
from ...settings import Settings
from ...status import Stat
from ...storage import Storage
from ..music.cookies import REFUSED_TEXT, Cookies, load_cookies
from ..music.errors import Reaction, classify
from ..music.jsruntime import JsRuntime, js_runtimes_option, seen_runtime
from ..music.pacing import pace
from ..music.settings import MusicSettings
from ..music.urls import UrlPolicyError, check_video_url, video_policy
from .models import DownloadJob, DownloadStatus

if TYPE_CHECKING:  # the spectrogram libraries load only in a fused worker
    from .fused import FusedSpectrogram

log = logging.getLogger("specfleet.music.download")


def audio_key(track_id: str) -> str:
    """S3 key of a track's mp3 (SPEC.md layout)."""
    return f"audio/{track_id}.mp3"


class _YdlLogger:
    """Routes yt-dlp's console output to logging and remembers its errors
    (yt-dlp reports some refusals, like max-filesize, only as messages)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        #: yt-dlp's warning that YouTube refused (rotated) the account cookies.
        self.cookies_refused = ""

    def debug(self, msg: str) -> None:
        if "max-filesize" in msg:
            self.messages.append(msg)
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        self.debug(msg)

    def warning(self, msg: str) -> None:
        if REFUSED_TEXT in msg:
            self.cookies_refused = msg
        log.debug("yt-dlp warning: %s", msg)

    def error(self, msg: str) -> None:
        self.messages.append(msg)
        log.debug("yt-dlp error: %s", msg)


class _Cancelled(Exception):
    pass


def ydl_options(
    config: MusicSettings, workdir: Path, logger: _YdlLogger, cancelled: threading.Event | None, *,
    to_mp3: bool = True, keep_source: bool = False, cookiefile: str | None = None,
) -> dict[str, Any]:
    """yt-dlp's options: the lowest-quality audio, converted to mp3 by its
    ffmpeg post-processor when ``to_mp3``; the downloaded file is kept when
    not converted or when ``keep_source``."""
    def abort_if_cancelled(_progress: dict[str, Any]) -> None:
        if cancelled is not None and cancelled.is_set():
            raise _Cancelled("worker shutting down")

    return {
        "format": "worstaudio/worst",
        # A fixed name inside our own temp folder: nothing from the job or the
        # site ends up in a path.
        "outtmpl": str(workdir / "source.%(ext)s"),
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "socket_timeout": config.socket_timeout_s,
        "retries": config.ytdlp_retries,
        "fragment_retries": config.ytdlp_retries,
        "extractor_retries": 0,
        "max_filesize": config.max_source_bytes,
        "ffmpeg_location": ffmpeg_path(config.ffmpeg),
        "postprocessors": [
            {"key": "FFmpegExtractAudio", "preferredcodec": "mp3", "preferredquality": config.mp3_quality}
        ] if to_mp3 else [],
        "keepvideo": keep_source,
        "progress_hooks": [abort_if_cancelled],
        "cachedir": False,
        "color": "never",
        # yt-dlp's --js-runtimes: YouTube's challenges need one (jsruntime.py).
        "js_runtimes": js_runtimes_option(config.js_runtimes),
        # account cookies (cookies.py): this download's own copy; None = guest
        "cookiefile": cookiefile,
    }


@dataclass(frozen=True)
class Fetched:
    #: The mp3 (``to_mp3``), else the downloaded file.
    path: Path
    duration_s: float | None
    title: str
    #: The downloaded file as the site served it (m4a, webm...), when kept.
    source: Path | None = None


def fetch_mp3(url: str, workdir: Path, config: MusicSettings, cancelled: threading.Event | None = None) -> Fetched:
    """Download ``url``'s audio as an mp3 inside ``workdir``.

    Raises ``Rejected`` (too long, too large, gone), ``Banned`` or ``Transient``.
    """
    return fetch_audio(url, workdir, config, cancelled, to_mp3=True)


def fetch_audio(
    url: str, workdir: Path, config: MusicSettings, cancelled: threading.Event | None = None, *,
    to_mp3: bool = True, keep_source: bool = False, reaction: Reaction | None = None,
    cookies: Cookies | None = None,
) -> Fetched:
    """Download ``url``'s audio inside ``workdir``: as an mp3 (``to_mp3``),
    and/or the source file as the site serves it (m4a, webm...): without
    ``to_mp3`` or with ``keep_source``.

    Raises ``Rejected`` (too long, too large, gone), ``Banned``, ``Paused``,
    ``Elsewhere`` or ``Transient`` (``reaction``: what this worker can do
    about a failure, see ``errors.classify``; ``cookies``: YouTube account
    cookies, dropped for good once YouTube refuses them).
    """
    logger = _YdlLogger()
    try:
        return _fetch(url, workdir, config, cancelled, logger, to_mp3=to_mp3, keep_source=keep_source,
                      reaction=reaction, cookiefile=cookies.copy_into(workdir) if cookies is not None else None)
    finally:
        if cookies is not None and logger.cookies_refused:
            cookies.refuse(logger.cookies_refused)


def _fetch(
    url: str, workdir: Path, config: MusicSettings, cancelled: threading.Event | None, logger: _YdlLogger, *,
    to_mp3: bool, keep_source: bool, reaction: Reaction | None, cookiefile: str | None,
) -> Fetched:
    import yt_dlp

    # Every connection yt-dlp opens (page, API, media host, redirects) is
    # checked against the video host policy's address rules, and all of them
    # end when the fetch budget does (a trickling source cannot hold the worker).
    with yt_dlp.YoutubeDL(ydl_options(config, workdir, logger, cancelled, to_mp3=to_mp3, keep_source=keep_source,
                                      cookiefile=cookiefile)) as ydl, \
            guard_connections(video_policy(config), budget_s=config.fetch_budget_s) as budget:
        # The instance's videos-per-hour budget (YouTube's session limit),
        # shared by every slot and by search: taken right before the request.
        pace(url, config, cancelled)
        if cancelled is not None and cancelled.is_set():
            raise Transient("worker shutting down while pacing")
        try:
            info = ydl.extract_info(url, download=False)
        except Exception as err:  # yt-dlp wraps everything in DownloadError
            raise _failure(err, "reading video metadata", budget, reaction) from None
        if not isinstance(info, dict):
            raise Rejected("video page has no media")
        _check_before_download(info, config)
        try:
            ydl.process_ie_result(info, download=True)
        except Exception as err:
            if cancelled is not None and cancelled.is_set():
                raise Transient("worker shutting down mid-download") from None
            raise _failure(err, "downloading audio", budget, reaction) from None
    mp3 = workdir / "source.mp3" if to_mp3 else None
    # The downloaded file: "source.<ext>" once complete (yt-dlp's partial
    # files end in .part / .ytdl; one that was an mp3 already is kept as
    # "source.orig.mp3").
    sources = sorted(p for p in workdir.glob("source.*") if p != mp3 and p.suffix not in (".part", ".ytdl"))
    wanted = mp3 if mp3 is not None else (sources[0] if sources else None)
    if wanted is None or not wanted.is_file() or (keep_source and not sources):
        if any("max-filesize" in m for m in logger.messages):
            raise Rejected(f"source file larger than {config.max_source_bytes} bytes: not downloaded")
        what = "mp3" if to_mp3 else "audio file"
        raise Transient(f"yt-dlp produced no {what} ({'; '.join(logger.messages)[-300:] or 'no message'})")
    source = sources[0] if sources and (keep_source or not to_mp3) else None
    return Fetched(wanted, info.get("duration"), str(info.get("title") or ""), source)


def _failure(err: BaseException, what: str, budget: Budget, reaction: Reaction | None = None) -> JobError:
    """The runtime error for a yt-dlp failure: a spent budget or a refused
    address by their own kind (yt-dlp wraps both), the rest classified."""
    if budget.expired.is_set():
        return Transient(f"{what}: took longer than its {budget.seconds:g} s budget")
    cause: BaseException | None = err
    for _ in range(10):  # the chain yt-dlp built around our exception
        if cause is None:
            break
        if isinstance(cause, OutboundRefused):
            return Rejected(f"{what}: {cause}")
        cause = cause.__cause__ or cause.__context__ or getattr(cause, "exc_info", (None, None))[1]
    return classify(err, what=what, reaction=reaction)


def _check_before_download(info: dict[str, Any], config: MusicSettings) -> None:
    """Refuse from metadata alone, before a byte of media is fetched."""
    if info.get("_type") in ("playlist", "multi_video"):
        raise Rejected("URL is a playlist, not one video")
    if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming"):
        raise Rejected("video is a live stream")
    duration = info.get("duration")
    if isinstance(duration, (int, float)) and duration > config.max_duration_s:
        raise Rejected(
            f"video is {int(duration)} s long, over the {config.max_duration_s} s limit: not downloaded"
        )
    size = info.get("filesize") or info.get("filesize_approx")
    if isinstance(size, (int, float)) and size > config.max_source_bytes:
        raise Rejected(f"source file is {int(size)} bytes, over the {config.max_source_bytes} byte limit")


# --- worker -------------------------------------------------------------------
@dataclass
class DownloadResources:
    #: Limits transfers running at once (``MusicSettings.concurrent_downloads``).
    slots: threading.BoundedSemaphore
    #: The spectrogram part of a fused worker (``MusicSettings.fused``).
    fused: FusedSpectrogram | None = None
    #: The JS runtime yt-dlp sees (checked at start), None when not required and missing.
    js_runtime: JsRuntime | None = None
    #: YouTube account cookies (``SPECFLEET_MUSIC_COOKIES_SECRET_ID``), None: guest.
    cookies: Cookies | None = None

    def close(self) -> None:
        if self.cookies is not None:
            self.cookies.close()


def make_resources(settings: Settings, config: MusicSettings) -> DownloadResources:
    # The pre-flight check refused to start without one (unless not required):
    # what yt-dlp sees decides whether missing formats can mean "gone".
    runtime = seen_runtime(config)
    if runtime is not None:
        log.info("yt-dlp's JS runtime: %s", runtime.describe())
    return DownloadResources(
        threading.BoundedSemaphore(max(1, config.concurrent_downloads)),
        fused=_make_fused(settings, warm=True) if config.fused else None,
        js_runtime=runtime,
        cookies=load_cookies(settings, config),
    )


def reaction(settings: Settings, config: MusicSettings, js_runtime: bool) -> Reaction:
    """What this worker can do about a failure (see ``errors.classify``)."""
    return Reaction(
        pause_s=config.rate_limit_pause_s, pause_jitter=config.rate_limit_pause_jitter,
        other_regions=bool(set(config.geo_regions) - {settings.region}), js_runtime=js_runtime,
    )


def _make_fused(settings: Settings, *, warm: bool) -> FusedSpectrogram:
    try:
        from .fused import make_fused
    except ImportError as err:  # numpy, scipy, numba... come with the spectrogram extra
        raise RuntimeError(
            f"SPECFLEET_MUSIC_FUSED=true needs the spectrogram libraries: install specfleet[spectrogram] ({err})"
        ) from None
    return make_fused(settings, warm=warm)


def handle(job: DownloadJob, ctx: JobContext) -> None:
    settings, config = ctx.settings, ctx.config
    try:
        url = check_video_url(job.yt_url, config)
    except UrlPolicyError as err:
        raise Rejected(str(err)) from None
    storage = Storage(settings)
    key = audio_key(job.track_id)
    resources = ctx.resources if isinstance(ctx.resources, DownloadResources) else None
    fused = None
    if config.fused:
        fused = resources.fused if resources is not None and resources.fused is not None else _make_fused(settings, warm=False)
    # Done when what this worker writes is there: the mp3 (written last, so
    # fused windows are there too), or without an mp3 the windows.
    if config.write_mp3 and storage.exists(key):
        raise Skipped(f"{key} already in S3")
    if not config.write_mp3 and fused is not None:
        from .fused import windows_done

        if windows_done(storage, job.track_id, fused.config.output_prefix):
            raise Skipped(f"the windows of {job.track_id} are already in S3")
    slots = resources.slots if resources is not None else None
    with tempfile.TemporaryDirectory(prefix="specfleet-dl-", dir=config.tmp_dir or None) as tmp:
        # The mp3 is made when it is written or when the windows show it.
        from_mp3 = fused is not None and config.fused_source == "mp3"
        to_mp3 = config.write_mp3 or from_mp3
        if slots is not None:
            slots.acquire()
        try:
            cookies = resources.cookies if resources is not None else None
            js_runtime = resources.js_runtime is not None if resources is not None else seen_runtime(config) is not None
            fetched = fetch_audio(url, Path(tmp), config, ctx.cancelled, to_mp3=to_mp3,
                                  keep_source=fused is not None and not from_mp3 and to_mp3,
                                  reaction=reaction(settings, config, js_runtime), cookies=cookies)
        finally:
            if slots is not None:
                slots.release()
        if config.write_mp3:
            size = fetched.path.stat().st_size
            if size >= config.max_mp3_bytes:
                raise Rejected(f"mp3 is {size} bytes, at or over the {config.max_mp3_bytes} byte limit")
        if ctx.cancelled.is_set():
            raise Transient("worker shutting down before upload")
        if fused is not None:
            from .fused import spectrogram_stage

            audio = fetched.path if from_mp3 else fetched.source
            assert audio is not None  # fetch_audio kept the source: keep_source, or no mp3
            spectrogram_stage(fused, storage, ctx, job.track_id, audio, is_mp3=from_mp3, ffmpeg=config.ffmpeg)
        if config.write_mp3:
            storage.put_file(key, fetched.path, content_type="audio/mpeg")
            ctx.wrote = f"mp3 {fetched.path.stat().st_size / 1e6:.1f} MB"
    if cookies is not None:
        cookies.succeeded()
    ctx.report(DownloadStatus(instance_id=ctx.instance_id, stat=Stat.DONE, track_id=job.track_id, yt_url=url),
               key="done", reason=cookies.describe() if cookies is not None else "")


