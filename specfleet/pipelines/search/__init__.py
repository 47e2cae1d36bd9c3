"""Search pipeline: a track query -> the first YouTube result whose title
matches (yt-dlp or headless Chromium) -> a status row, from which the
status writer derives ``track_url``."""

from ...runtime.spec import FleetProfile, PipelineSpec, Ref, StatusView
from ..music.settings import CONFIG_PREFIX, COOKIES_STACK_SETTING, OVERRIDES_STACK_SETTING, MusicSettings
from .models import SearchJob, SearchStatus, failure_status

SPEC: PipelineSpec[SearchJob] = PipelineSpec(
    name="search",
    job_queue="jobs_search",
    status_queue="status_search",
    job_model=SearchJob,
    status_model=SearchStatus,
    handler=Ref("specfleet.pipelines.search.worker:handle"),
    failure_status=failure_status,
    settings=MusicSettings,
    resources=Ref("specfleet.pipelines.search.backends:make_backend"),
    status_view=StatusView(item="track_id", job_key="track_id", track_id="track_id"),
    default_concurrency=2,
    cli=Ref("specfleet.cli.music:register_search"),
    demo=Ref("specfleet.demo.music:search_step"),
    # It reads the overrides CSV a person keeps under music-config/ (read-only), named by the stack,
    # and searches with the download workers' YouTube cookies when the stack names that secret.
    fleet=FleetProfile(extras=("music",), apt_packages=("chromium", "chromium-driver"),
                       read_prefixes=(CONFIG_PREFIX,),
                       stack_settings=(OVERRIDES_STACK_SETTING, COOKIES_STACK_SETTING)),
    derived_rows=Ref("specfleet.pipelines.search.track_url:upsert_track_urls"),
    # its yt-dlp backend must see a JS runtime, or the worker does not start
    # and its overrides CSV, when set, must be readable where the role may read it; its cookies secret too
    preflight=(Ref("specfleet.pipelines.music.jsruntime:preflight_search_js_runtime"),
               Ref("specfleet.pipelines.search.overrides:preflight_overrides"),
               Ref("specfleet.pipelines.music.cookies:preflight_cookies")),
)
