"""Download pipeline: ``{track_id, yt_url}`` -> lowest-quality audio with
yt-dlp -> ``audio/{track_id}.mp3`` on S3, with ban detection; fused
(``SPECFLEET_MUSIC_FUSED=true``) also the spectrogram windows under ``spec/``."""

from ...runtime.spec import FleetProfile, PipelineSpec, Ref, StatusView
from ..music.settings import COOKIES_STACK_SETTING, MusicSettings
from .models import DownloadJob, DownloadStatus, failure_status, legacy_body

SPEC: PipelineSpec[DownloadJob] = PipelineSpec(
    name="download",
    job_queue="jobs_download",
    status_queue="status",
    job_model=DownloadJob,
    status_model=DownloadStatus,
    handler=Ref("specfleet.pipelines.download.worker:handle"),
    failure_status=failure_status,
    settings=MusicSettings,
    resources=Ref("specfleet.pipelines.download.worker:make_resources"),
    status_view=StatusView(item="track_id", job_key="track_id", track_id="track_id"),
    default_concurrency=4,
    cli=Ref("specfleet.cli.music:register_download"),
    demo=Ref("specfleet.demo.music:download_step"),
    # ffmpeg comes with the imageio-ffmpeg wheel: no Debian package needed.
    # A fused worker also writes spec/ and needs the spectrogram extra: an image
    # for it serves both pipelines (SPECFLEET_PIPELINES="download spectrogram").
    # A stack may give it YouTube cookies: the secret's ARN, which the role may read (and no other secret).
    fleet=FleetProfile(extras=("music",), bucket_prefixes=("audio/", "spec/"),
                       stack_settings=(COOKIES_STACK_SETTING,)),
    legacy_body=legacy_body,
    # yt-dlp must see a JS runtime (YouTube's challenges), or the worker does not start.
    preflight=(Ref("specfleet.pipelines.music.jsruntime:preflight_js_runtime"),
               Ref("specfleet.pipelines.music.cookies:preflight_cookies")),
)
