"""Hydrophone pipeline: OOI day listing -> 5-second WAV + spectrogram clips on S3."""

from ...runtime.spec import FleetProfile, PipelineSpec, Ref, StatusView
from .models import HydroJob, HydroStatus, failure_status
from .settings import HydroSettings

SPEC: PipelineSpec[HydroJob] = PipelineSpec(
    name="hydrophone",
    job_queue="jobs_hydro",
    status_queue="status_hydro",
    job_model=HydroJob,
    status_model=HydroStatus,
    handler=Ref("specfleet.pipelines.hydrophone.worker:handle"),
    failure_status=failure_status,
    settings=HydroSettings,
    resources=Ref("specfleet.pipelines.hydrophone.worker:make_resources"),
    overlaps_io=True,  # downloads and uploads while other files render (runtime/stages.py)
    status_view=StatusView(item="file_url", job_key="file_url"),
    status_section=Ref("specfleet.pipelines.hydrophone.days:status_part"),
    cli=Ref("specfleet.cli.hydrophone:register"),
    # the archive it serves is an allowed host (else every job would be refused)
    preflight=(Ref("specfleet.pipelines.hydrophone.preflight:check_archive_allowed"),),
    demo=Ref("specfleet.demo.hydrophone:demo_step"),
    fleet=FleetProfile(extras=("hydrophone",),
                       # the default layout, its done-markers, the whaledr layout, the levels
                       # profile, the archive copy
                       bucket_prefixes=("hydrophone/", "hydrophone-manifests/", "megaptera/", "hydrophone-levels/",
                                        "archive/"),
                       # the whaledr app fetches clips and whalemanifest.json anonymously
                       public_read_prefixes=("megaptera/",)),
)
