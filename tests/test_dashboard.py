"""`specfleet dashboard` in headless Chromium during a demo-sized run
(issue 26): the page, opened once, updates itself as jobs finish -- the
done counts rise, the backlog drains, failures show their reason and an
example, the newest clips load from the bucket -- and its numbers are the
status tables' and the queues'. Screenshots at the start and the end are
kept in test-artifacts/."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import query, wait_for
from specfleet.dashboard import Dashboard
from specfleet.local.stack import Namespace
from specfleet.pipelines import get_spec, job_queue
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.runtime import Worker
from specfleet.standins.ooi_archive import OOIServer, write_day
from test_monitoring_report import chrome  # noqa: F401 - the headless Chromium fixture

DAY = dt.date(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
ECHO_JOBS = 12

ROW = """return Object.fromEntries([...document.querySelectorAll('#pipelines tbody tr')].map(r =>
    [r.dataset.pipeline, Object.fromEntries([...r.cells].map((c, i) =>
        [document.querySelectorAll('#pipelines thead th')[i].textContent, c.textContent]))]));"""


def _shot(chrome, path: Path) -> None:  # noqa: F811
    chrome.save_screenshot(str(path))
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.std() > 10 and len(np.unique(img)) > 20  # a page, not a blank


@pytest.mark.slow
def test_dashboard_follows_a_run(namespace: Namespace, tmp_path: Path, chrome, artifacts_dir: Path) -> None:  # noqa: F811
    s = namespace.settings
    write_day(tmp_path / "ooi", HYDRO, DAY, clean_files=4, clean_seconds=12.0)  # + a gap file and a cut-off one
    with OOIServer(tmp_path / "ooi") as archive:
        config = HydroSettings(allowed_hosts=[archive.netloc], base_url=archive.base_url, processes=1)
        files = produce_day(s, DAY, base_url=archive.base_url, hydrophone=HYDRO, config=config).enqueued
        job_queue(s, "echo").send_json({"job_id": f"e{i}", "sleep_s": 0.2} for i in range(ECHO_JOBS))
        board = Dashboard(s, refresh_s=1.0, media_interval_s=1.0).start()
        try:
            chrome.set_window_size(1280, 1500)
            chrome.get(board.url)
            start = wait_for(lambda: (lambda t: t if t.get("hydrophone", {}).get("backlog") == str(len(files))
                                      and t.get("echo", {}).get("backlog") == str(ECHO_JOBS) else None)(
                chrome.execute_script(ROW)), timeout=60, what="the page's first state")
            assert start["hydrophone"]["done"] == start["echo"]["done"] == "0"
            chrome.execute_script("window.openedOnce = true")  # gone if the page were reloaded
            _shot(chrome, artifacts_dir / "dashboard_start.png")

            workers = [Worker(s, get_spec("hydrophone"), idle_exit_s=2, config=config),
                       Worker(s, get_spec("echo"), idle_exit_s=2, concurrency=2)]
            threads = [threading.Thread(target=w.run) for w in workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            assert not any(t.is_alive() for t in threads)

            # the status tables as they end up: jobs by outcome, and the clips of the done files
            wait_for(lambda: query(s, "SELECT count(*) FROM status_hydro")[0][0] == len(files)
                     and query(s, "SELECT count(*) FROM status_echo")[0][0] == ECHO_JOBS, timeout=60,
                     what="every status row")
            [(done, failed, clips)] = query(s, "SELECT count(*) FILTER (WHERE stat = 1), count(*) FILTER"
                                               " (WHERE stat = 0), sum(clips) FROM status_hydro")
            end = wait_for(lambda: (lambda t: t if t["hydrophone"]["done"] == str(done)
                                    and t["hydrophone"]["backlog"] == "0" and t["echo"]["done"] == str(ECHO_JOBS)
                                    else None)(chrome.execute_script(ROW)), timeout=60, what="the page's last state")
            assert chrome.execute_script("return window.openedOnce === true")  # it updated itself
            assert (end["hydrophone"]["failed"], end["hydrophone"]["wrote"]) == (str(failed), f"{clips} clips")
            assert int(end["hydrophone"]["done"]) > int(start["hydrophone"]["done"])
            assert int(end["hydrophone"]["backlog"]) < int(start["hydrophone"]["backlog"])
            assert failed >= 1
            # failures by reason, with the failed file as the example
            failures = chrome.find_element("id", "failures").text
            [(bad_url, reason)] = query(s, "SELECT file_url, reason FROM status_hydro WHERE stat = 0")
            assert reason[:40] in failures and bad_url.rsplit("/", 1)[-1] in failures, failures
            instances = chrome.find_element("id", "instances").text
            assert s.instance_id in instances
            # the newest clips load from the bucket through the page's own server
            widths = wait_for(lambda: (lambda w: w if w and all(x > 0 for x in w) else None)(chrome.execute_script(
                "const i = [...document.querySelectorAll('img.clip')];"
                "return i.every(x => x.complete) ? i.map(x => x.naturalWidth) : null;")), timeout=30,
                what="clip images")
            assert len(widths) >= 1
            errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == []
            _shot(chrome, artifacts_dir / "dashboard_end.png")
        finally:
            board.close()


def test_media_serves_results_only(namespace: Namespace) -> None:
    import httpx

    from specfleet.storage import Storage

    Storage(namespace.settings).put_bytes("hydrophone/x/2017_10_09/a.png", b"\x89PNG fake", "image/png")
    Storage(namespace.settings).put_bytes("secrets/a.png", b"no", "image/png")
    board = Dashboard(namespace.settings).start()
    try:
        with httpx.Client(base_url=board.url) as http:
            ok = http.get("/media", params={"key": "hydrophone/x/2017_10_09/a.png"})
            assert ok.status_code == 200 and ok.content == b"\x89PNG fake"
            assert ok.headers["content-type"] == "image/png"
            for key in ("secrets/a.png", "hydrophone/../secrets/a.png", "hydrophone/x/a.txt"):
                assert http.get("/media", params={"key": key}).status_code == 403, key
            assert http.get("/media", params={"key": "hydrophone/none.png"}).status_code == 404
            state = http.get("/api/state").json()
            assert set(state["pipelines"]) >= {"hydrophone", "echo"}
        assert board.url.startswith("http://127.0.0.1:")
    finally:
        board.close()
