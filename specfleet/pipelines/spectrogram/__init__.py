"""Spectrogram pipeline: ``audio/{track_id}.mp3`` -> 30 s mel windows every
20 s as greyscale JPEGs under ``spec/``, one status row per window."""

from ...runtime.spec import FleetProfile, PipelineSpec, Ref, StatusView
from ..melwindows.models import JOB_QUEUE, SPECTO_STATUS, SpectoJob, SpectoStatus, failure_status, legacy_body
from ..melwindows.settings import SpectroSettings

SPEC: PipelineSpec[SpectoJob] = PipelineSpec(
    name=SPECTO_STATUS.name,
    job_queue=JOB_QUEUE,
    status_queue=SPECTO_STATUS.status_queue,
    job_model=SpectoJob,
    status_model=SpectoStatus,
    handler=Ref("specfleet.pipelines.spectrogram.worker:handle"),
    failure_status=failure_status,
    settings=SpectroSettings,
    resources=Ref("specfleet.pipelines.spectrogram.worker:make_resources"),
    # one row per window (item = track#win), one job per track
    status_view=StatusView(item="track_id || '#' || win", job_key="track_id", track_id="track_id"),
    # Downloads and uploads while other tracks compute (runtime/stages.py).
    overlaps_io=True,
    cli=Ref("specfleet.cli.spectrogram:register"),
    demo=Ref("specfleet.demo.spectrogram:demo_step"),
    fleet=FleetProfile(extras=("spectrogram",), apt_packages=("libmpg123-0",), bucket_prefixes=("audio/", "spec/")),
    legacy_body=legacy_body,
)
