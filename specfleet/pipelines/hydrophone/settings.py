"""Settings of the hydrophone pipeline: environment variables
``SPECFLEET_HYDRO_*``. Resolved once per worker by the runtime
(``spec.settings``) and handed to the handler as ``ctx.config``.

The clip parameters (window, overlap, size, colours, render, span, clip plan,
colour map, compression...) are declared in ``params.py`` and inherited
here, each as ``SPECFLEET_HYDRO_{NAME}``; this class adds the rest."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ...settings import RenamingSettings
from .params import CalibrationReference, ClipParams, Output, SpectrogramParams
from .timerange import FILE_SECONDS

#: Variables renamed when the clip parameters got one declaration (old -> new):
#: a worker still given an old one stops with an error instead of ignoring it.
RENAMED_ENV = {
    "SPECFLEET_HYDRO_IMAGE_WIDTH": "SPECFLEET_HYDRO_WIDTH",
    "SPECFLEET_HYDRO_IMAGE_HEIGHT": "SPECFLEET_HYDRO_HEIGHT",
}

#: OEK's ``TrHld2`` (OOI's hydrophone setting): a gap between pieces up to
#: this long is never a real break (``repair.repair``'s default too).
GAP_THRESHOLD_S = 0.023


class HydroSettings(SpectrogramParams, ClipParams, RenamingSettings):
    model_config = SettingsConfigDict(env_prefix="SPECFLEET_HYDRO_", extra="ignore", frozen=False)

    renamed_env = RENAMED_ENV

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
    #: plus ``{whaledr_prefix}/whalemanifest.json``, which the whaledr app reads
    #: (published per finished day from per-job parts: ``whalemanifest``).
    #: "levels": no clips; each file's per-minute sound levels (1 Hz PSD in
    #: hybrid millidecade bands, ``levels_day.file_minutes``) go to
    #: ``{levels_prefix}/{hydrophone}/{YYYY_MM_DD}/minutes/{file}.npz`` for the
    #: day's reduce (``specfleet hydrophone levels-day``).
    output: Output = "specfleet"
    #: S3 key prefix of clips: ``{prefix}/{hydrophone}/{YYYY_MM_DD}/{name}.wav|.png``.
    prefix: str = "hydrophone"
    #: (The whaledr app fetches clips and manifest anonymously. The original set
    #: the ``public-read`` ACL; the deployed bucket enforces owner-only ACLs, so
    #: objects carry none and the template's bucket policy grants public reads
    #: of ``{whaledr_prefix}/`` alone.)
    whaledr_prefix: str = "megaptera"
    #: Sound levels (pipelines/hydrophone/levels*.py): per-file minutes at
    #: ``{levels_prefix}/{hydrophone}/{YYYY_MM_DD}/minutes/{file}.npz``, the day's
    #: NetCDF beside them (``levels_day.day_key``).
    levels_prefix: str = "hydrophone-levels"
    #: Sensitivity curve applied by the day's reduce (OOI netCDF or CSV); empty: uncalibrated.
    calibration: str = ""
    #: "volt": dB re 1 V/uPa (OOI's metadata/cals); "count": dB re 1 count/uPa (rca_correction_cals).
    calibration_reference: CalibrationReference = "volt"
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
    #: Source files larger than this are rejected without reading them whole.
    max_file_bytes: int = 256 * 1024 * 1024
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    download_attempts: int = 4
    #: Longest one source file download may take in all (a trickling source
    #: would otherwise hold a worker slot for as long as it keeps sending).
    fetch_budget_s: float = 600.0
    #: Largest day listing read (a day's Apache index of 288 files is ~60 kB;
    #: a bigger page is cut here with an error rather than read whole).
    listing_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: Longest reading one day's listing may take in all, its addendum/ and
    #: every retry included (a trickling server would otherwise hold the producer).
    listing_budget_s: float = Field(default=120.0, gt=0)
    #: A day listing linking more .mseed files than this is refused (nothing
    #: of the range is enqueued): a day holds 288 5-minute files plus an
    #: addendum/, so far more is a wrong page or a wrong folder, not a day.
    #: Raise it to enqueue such a day anyway.
    max_day_files: int = Field(default=1_000, ge=1)
    #: Processes rendering clips (0 = one per CPU).
    processes: int = 0
