"""Files whose samples or dates no clip can hold, through the worker on the
embedded stack: a FLOAT32 miniSEED holding NaN or infinity, and a file
whose clips run past year 9999. Each is rejected at once with a reason
(a status row with stat 0, no objects), never rendered as INT32_MIN audio
and never retried until the dead-letter queue."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from obspy import Stream, Trace, UTCDateTime

from helpers import count, query, wait_for
from specfleet.pipelines import get_spec, job_queue
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.queues import dead_letter_queue
from specfleet.runtime import Worker
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for
from specfleet.storage import Storage

DAY = dt.date(2017, 10, 9)
T0 = dt.datetime(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"


def float32_mseed(data: np.ndarray, start: dt.datetime) -> bytes:
    """A FLOAT32-encoded miniSEED (obspy's writer), as some recorders write them."""
    trace = Trace(np.ascontiguousarray(data, dtype=np.float32),
                  header={"network": "OO", "station": "HYVM1", "location": "", "channel": "YDH",
                          "sampling_rate": 64_000.0, "starttime": UTCDateTime(start)})
    buf = io.BytesIO()
    Stream([trace]).write(buf, format="MSEED", encoding="FLOAT32", reclen=4096)
    return buf.getvalue()


@pytest.mark.slow
def test_nan_inf_samples_and_dates_past_9999_are_rejected_with_a_reason_not_retried(settings, tmp_path):
    signal = synth.synthetic_signal(12.0, seed=1).astype(np.float32)
    nan = signal.copy()
    nan[70_000] = np.nan
    inf = signal.copy()
    inf[[5, 400_000]] = [np.inf, -np.inf]
    late = dt.datetime(9999, 12, 31, 23, 59, 55)  # 12 s of samples: clips run into year 10000
    files = {
        "finite": (float32_mseed(signal, T0), T0),
        "nan": (float32_mseed(nan, T0 + dt.timedelta(minutes=5)), T0 + dt.timedelta(minutes=5)),
        "inf": (float32_mseed(inf, T0 + dt.timedelta(minutes=10)), T0 + dt.timedelta(minutes=10)),
        "late": (synth.mseed_bytes(synth.synthetic_signal(12.0, seed=2), late), late),
    }
    with OOIServer(tmp_path) as server:
        folder = day_dir(tmp_path, HYDRO, DAY)
        names = {}
        for kind, (body, start) in files.items():
            names[kind] = file_name_for(start)
            (folder / names[kind]).write_bytes(body)
        config = HydroSettings(allowed_hosts=[server.netloc], base_url=server.base_url, processes=1)
        produced = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
        assert len(produced.enqueued) == 4
        worker = Worker(settings, get_spec("hydrophone"), idle_exit_s=1, config=config)
        assert worker.run() == 0
    metrics = worker.metrics()
    assert metrics.get("done") == 1 and metrics.get("rejected") == 3, metrics  # rejected at once: no retries
    wait_for(lambda: count(settings, "status_hydro") == 4, what="a status row per file")
    rows = {url.rsplit("/", 1)[-1]: (stat, clips, reason)
            for url, stat, clips, reason in query(settings, "SELECT file_url, stat, clips, reason FROM status_hydro")}
    assert rows[names["finite"]][:2] == (1, 2)
    assert rows[names["nan"]][:2] == (0, 0) and "1 of 768000 sample(s) are NaN or infinite" in rows[names["nan"]][2]
    assert "(the first is sample 70000)" in rows[names["nan"]][2]
    assert rows[names["inf"]][:2] == (0, 0) and "2 of 768000 sample(s) are NaN or infinite" in rows[names["inf"]][2]
    assert rows[names["late"]][:2] == (0, 0) and "years 1-9999" in rows[names["late"]][2]
    # Nothing of the rejected files was written, nothing waits for a retry, nothing went to the DLQ.
    storage = Storage(settings)
    assert storage.count(f"{config.prefix}/{HYDRO}/") == 2 * 2
    jobs = job_queue(settings, "hydrophone")
    assert jobs.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert dead_letter_queue(jobs).depth()["visible"] == 0
