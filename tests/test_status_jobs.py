"""`specfleet status` counts jobs, not rows (issue 26): a hydrophone file
redone or retried is one file, a spectrogram track one job however many
windows it reported; the clips and windows the done jobs wrote stand beside
them; --pipeline, --since and --day choose the rows (a hydrophone file's
day is its recording day, from its archive folder)."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from specfleet.cli.main import app
from specfleet.db import connect
from specfleet.local.stack import Namespace

URL = "https://rawdata.oceanobservatories.org/files/CE02SHBP/LJ01D/11-HYDBBA106/{day:%Y/%m/%d}/OO-HYVM1--YDH-{day:%Y-%m-%d}T00:{m:02d}:00.000000.mseed"
WORKED = dt.datetime(2026, 12, 6, 12, 0)  # the workers' clock: not the recording day

# (file: recording day and minute, stat, clips, minutes after WORKED)
HYDRO = [
    ((dt.date(2017, 10, 9), 0), 1, 60, 0),
    ((dt.date(2017, 10, 9), 0), 1, 60, 5),    # the same file redone: one file, 60 clips
    ((dt.date(2017, 10, 9), 5), 0, 0, 1),     # failed, then done on its retry
    ((dt.date(2017, 10, 9), 5), 1, 58, 2),
    ((dt.date(2017, 10, 9), 10), 0, 0, 3),    # failed
    ((dt.date(2017, 10, 10), 0), 1, 60, 60),  # another recording day, worked an hour later
]
# (track, stat, window, minutes after WORKED)
SPECTO = [("A", 1, 0, 0), ("A", 1, 1, 0), ("A", 1, 1, 1), ("A", 1, 2, 1), ("B", 1, 0, 2), ("C", 0, 0, 3)]


def _seed(ns: Namespace) -> None:
    conn = connect(ns.settings)
    try:
        with conn, conn.cursor() as cur:
            for i, ((day, minute), stat, clips, after) in enumerate(HYDRO):
                cur.execute("INSERT INTO status_hydro (msg_key, instance_id, stat, file_url, clips, date)"
                            " VALUES (%s, 'i-1', %s, %s, %s, %s)",
                            (f"h{i}", stat, URL.format(day=day, m=minute), clips, WORKED + dt.timedelta(minutes=after)))
            for i, (track, stat, win, after) in enumerate(SPECTO):
                cur.execute("INSERT INTO status_specto (msg_key, instance_id, stat, track_id, win, ini, fin, rows,"
                            " cols, date) VALUES (%s, 'i-2', %s, %s, %s, 0, 30, 128, 1292, %s)",
                            (f"s{i}", stat, track, win, WORKED + dt.timedelta(minutes=after)))
    finally:
        conn.close()


def _status(ns: Namespace, *args: str) -> dict:
    done = CliRunner().invoke(app, ["status", "--json", "--no-record", *args], env={**ns.env(), "COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)["pipelines"]


def test_status_counts_files_and_tracks_with_their_clips_and_windows(namespace: Namespace) -> None:
    _seed(namespace)
    every = _status(namespace)
    hydro, specto = every["hydrophone"], every["spectrogram"]
    # 4 files: three done (one redone, one done on its retry), one failed; 6 rows behind them
    assert (hydro["jobs"], hydro["done"], hydro["failed"], hydro["rows"]) == (4, 3, 1, 6)
    assert (hydro["items"], hydro["items_unit"]) == (60 + 58 + 60, "clips")
    # 3 tracks: A and B done, C failed; windows counted once each (A's window 1 came twice)
    assert (specto["jobs"], specto["done"], specto["failed"], specto["rows"]) == (3, 2, 1, 6)
    assert (specto["items"], specto["items_unit"]) == (3 + 1, "windows")

    # --day: the hydrophone files *recorded* that day (worked on 2026-12-06)
    oct9 = _status(namespace, "--pipeline", "hydrophone", "--day", "2017-10-09")
    assert list(oct9) == ["hydrophone"]
    assert (oct9["hydrophone"]["done"], oct9["hydrophone"]["failed"], oct9["hydrophone"]["items"]) == (2, 1, 118)
    assert _status(namespace, "-p", "hydrophone", "--day", "2026-12-06")["hydrophone"]["jobs"] == 0
    # --day for the music pipelines is the day of the work
    assert _status(namespace, "-p", "spectrogram", "--day", "2026-12-06")["spectrogram"]["done"] == 2

    # --since: rows from then on (the 2017-10-10 file was worked an hour later)
    later = _status(namespace, "-p", "hydrophone", "--since", "2026-12-06T12:30")
    assert (later["hydrophone"]["done"], later["hydrophone"]["items"], later["hydrophone"]["rows"]) == (1, 60, 1)
    recent = _status(namespace, "-p", "hydrophone", "--since", "10m")  # all of it was worked hours before
    assert recent["hydrophone"]["jobs"] == 0


def test_status_filters_refuse_what_they_cannot_read(namespace: Namespace) -> None:
    for args, word in ((["--day", "2017-13-01"], "--day"), (["--since", "yesterday"], "--since"),
                       (["--pipeline", "hydrophon"], "hydrophon")):
        done = CliRunner().invoke(app, ["status", *args], env=namespace.env())
        assert done.exit_code == 2 and word in done.output, done.output


def test_status_keeps_deployments_apart(namespace: Namespace) -> None:
    """One database, two deployments: `status` counts its own queue
    prefix's rows (and rows from before deployments were recorded), and the
    status writer records each row's deployment from its queue."""
    from helpers import query, wait_for
    from specfleet.pipelines import get_spec, job_queue
    from specfleet.runtime import Worker

    s = namespace.settings
    job_queue(s, "echo").send_json({"job_id": f"mine{i}"} for i in range(3))
    Worker(s, get_spec("echo"), idle_exit_s=1).run()
    wait_for(lambda: query(s, "SELECT count(*) FROM status_echo")[0][0] == 3, what="three rows")
    assert query(s, "SELECT DISTINCT deployment FROM status_echo") == [(s.queue_prefix,)]
    conn = connect(s)
    try:
        with conn, conn.cursor() as cur:
            for i, deployment in enumerate(["other_", "other_", ""]):
                cur.execute("INSERT INTO status_echo (msg_key, instance_id, stat, job_id, date, deployment)"
                            " VALUES (%s, 'i-x', 1, %s, now() AT TIME ZONE 'UTC', %s)",
                            (f"x{i}", f"theirs{i}", deployment))
    finally:
        conn.close()
    done = CliRunner().invoke(app, ["status", "--json", "--no-record"], env={**namespace.env(), "COLUMNS": "200"})
    data = json.loads(done.stdout)
    assert data["deployment"] == s.queue_prefix
    assert data["pipelines"]["echo"]["done"] == 3 + 1  # its own three, and the one of unknown deployment
    assert data["pipelines"]["echo"]["instances_alive"] == sorted({s.instance_id, "i-x"})  # i-x via the '' row
