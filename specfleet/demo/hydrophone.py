"""The hydrophone step of ``specfleet demo``: a local OOI stand-in day as the
real archive holds them (``write_day``): a complete 5-minute file in ~1,200
mislabelled pieces, a file with a real break, a short file, a truncated
file and an ``addendum/`` folder; produce the day, run the worker (clips and
the archive-grade copy, whose day manifest the report's coverage view
reads), count objects and status rows."""

from __future__ import annotations

import datetime as dt

from ..pipelines.hydrophone.producer import produce_day
from ..pipelines.hydrophone.settings import HydroSettings
from ..standins.ooi_archive import OOIServer, write_day
from ..storage import Storage
from . import DemoContext, PipelineSummary, count_status, keys_with_status, run_worker, wait_for_status_drain

DEMO_DAY = dt.date(2017, 10, 9)
DEMO_HYDROPHONE = "CE02SHBP/LJ01D/11-HYDBBA106"


def demo_step(ctx: DemoContext) -> PipelineSummary:
    root = ctx.workdir / "ooi"
    write_day(root, DEMO_HYDROPHONE, DEMO_DAY, clean_files=1, short_file=True, addendum=True)
    server = OOIServer(root).start()
    ctx.cleanup.append(server)
    ctx.shared["ooi_base_url"] = server.base_url
    config = HydroSettings(allowed_hosts=[server.netloc], base_url=server.base_url, archive=True)
    result = produce_day(ctx.settings, DEMO_DAY, base_url=server.base_url, hydrophone=DEMO_HYDROPHONE, config=config)
    run_worker(ctx, "hydrophone", idle_exit_s=2, config=config)
    wait_for_status_drain(ctx, "hydrophone")
    counts = count_status(ctx, "hydrophone")
    storage = Storage(ctx.settings)
    objects = storage.count(f"{config.prefix}/{DEMO_HYDROPHONE}/") + storage.count(f"{config.archive_prefix}/")
    seen = keys_with_status(ctx, "hydrophone", "file_url")
    lost = len(set(result.enqueued) - seen)
    return PipelineSummary(jobs=len(result.enqueued), objects=objects, lost=lost, **counts)
