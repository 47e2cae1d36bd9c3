"""Spectrogram jobs: one per mp3 under ``audio/`` that is small enough and
has no windows yet."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

from ...jobs import TRACK_ID_RE
from ...settings import Settings
from ...storage import Storage
from ..melwindows.models import SpectoJob
from ..melwindows.settings import SpectroSettings
from . import SPEC


@dataclass
class ProduceReport:
    listed: int = 0
    enqueued: int = 0
    #: Already has at least one window under ``spec/``.
    skipped_done: int = 0
    skipped_too_large: int = 0
    skipped_empty: int = 0
    #: Not ``<track_id>.mp3`` with a valid track id.
    skipped_not_mp3: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def tracks_with_windows(storage: Storage, prefix: str = "spec/") -> set[str]:
    """Track ids that already have windows (one paginated listing)."""
    done = set()
    for key, _size in storage.list(prefix):
        name = key[len(prefix):]
        if "__" in name:
            done.add(name.split("__", 1)[0])
    return done


def plan_jobs(
    settings: Settings, config: SpectroSettings | None = None, report: ProduceReport | None = None
) -> list[SpectoJob]:
    """The jobs still to do; ``config``: the spectrogram settings (default: environment)."""
    config = config or SpectroSettings()
    report = report if report is not None else ProduceReport()
    storage = Storage(settings)
    done = tracks_with_windows(storage, config.output_prefix)
    jobs: list[SpectoJob] = []
    for key, size in storage.list(config.audio_prefix):
        report.listed += 1
        path = PurePosixPath(key)
        if path.suffix.lower() != ".mp3" or not TRACK_ID_RE.fullmatch(path.stem):
            report.skipped_not_mp3 += 1
        elif size == 0:
            report.skipped_empty += 1
        elif size > config.max_mp3_bytes:
            report.skipped_too_large += 1
        elif path.stem in done:
            report.skipped_done += 1
        else:
            jobs.append(SpectoJob(track_id=path.stem, audio_key=key))
    return jobs


def produce(settings: Settings, config: SpectroSettings | None = None) -> ProduceReport:
    """List ``audio/`` and enqueue a job for every track still to do."""
    report = ProduceReport()
    jobs = plan_jobs(settings, config, report)
    report.enqueued = SPEC.jobs(settings).send(j.body() for j in jobs)
    return report
