"""`specfleet work hydrophone` in a real pseudo-terminal, read as a person
reads it (pyte renders the screen), Ctrl-C typed on the keyboard (issue 26):
each job's line names its file and what it wrote; Ctrl-C mid-run stops
taking jobs, hands the rest back and ends with one summary whose counts are
the status table's, with nothing printed after it."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pyte
import pytest

from helpers import query, wait_for
from specfleet.local.stack import Namespace
from specfleet.pipelines import job_queue, status_queue
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.standins.ooi_archive import OOIServer, write_day

DAY = dt.date(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
COLUMNS, ROWS = 120, 60

#: Starts the command as a terminal's job: a session of its own with the
#: pseudo-terminal as its controlling terminal, so typing Ctrl-C there sends
#: SIGINT to its whole process group (the worker and its pool's processes).
SESSION = "import os, sys, fcntl, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])"


class Terminal:
    """A pseudo-terminal running one command; ``screen()`` is what it shows."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.proc = subprocess.Popen([sys.executable, "-c", SESSION, *argv], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd, close_fds=True)
        os.close(slave)
        self.raw = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal has exited
                return
            if not chunk:
                return
            with self._lock:
                self.raw.extend(chunk)

    def screen(self) -> list[str]:
        screen = pyte.Screen(COLUMNS, ROWS)
        stream = pyte.ByteStream(screen)
        with self._lock:
            stream.feed(bytes(self.raw))  # the terminal turned each \n into \r\n (onlcr)
        return [line.rstrip() for line in screen.display if line.strip()]

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(timeout=10)
        os.close(self.master)
        return code


JOB_LINE = re.compile(r"^\s*done (?P<name>OO-\S+\.mseed)  (?P<clips>\d+) clips, (?P<mb>[\d.]+) MB  (?P<s>[\d.]+)s$")
SUMMARY = re.compile(r"^worker stopped \(Ctrl-C\): (?P<done>\d+) done(, (?P<back>\d+) handed back to the queue)?$")


@pytest.mark.slow
def test_ctrl_c_mid_run_in_a_terminal(namespace: Namespace, tmp_path: Path) -> None:
    s = namespace.settings
    write_day(tmp_path / "ooi", HYDRO, DAY, clean_files=5, clean_seconds=40.0, gap_file=False, bad_file=False)
    with OOIServer(tmp_path / "ooi") as archive:
        config = HydroSettings(allowed_hosts=[archive.netloc], base_url=archive.base_url)
        enqueued = produce_day(s, DAY, base_url=archive.base_url, hydrophone=HYDRO, config=config).enqueued
        names = {url.rsplit("/", 1)[-1] for url in enqueued}
        assert len(names) == 5
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPECFLEET_", "AWS_", "COLUMNS", "LINES"))}
        env.update(namespace.env(), TERM="xterm-256color", SPECFLEET_WAIT_TIME_S="1",
                   SPECFLEET_HYDRO_BASE_URL=archive.base_url,
                   SPECFLEET_HYDRO_ALLOWED_HOSTS=f'["{archive.netloc}"]', SPECFLEET_HYDRO_PROCESSES="1")
        term = Terminal([sys.executable, "-m", "specfleet.cli.main", "work", "hydrophone", "--concurrency", "1"],
                        env, tmp_path)
        try:
            wait_for(lambda: sum(bool(JOB_LINE.match(line)) for line in term.screen()) >= 2 or term.proc.poll() is not None,
                     timeout=240, interval=0.05, what="two job lines")
            assert term.proc.poll() is None, term.screen()
            term.type(b"\x03")  # Ctrl-C
        finally:
            code = term.wait(timeout=120)
    lines = term.screen()
    text = "\n".join(lines)
    assert code == 0, text
    assert lines[0].startswith("hydrophone worker "), text
    for word in ("Traceback", "unexpectedly", "CancelledError", "retry", "error"):
        assert word not in text, text

    # One summary, the last line; the job lines are everything between it and the banner.
    summary = SUMMARY.match(lines[-1])
    assert summary, text
    assert sum("worker stopped" in line for line in lines) == 1, text
    assert lines[-2] == "^C", text  # the terminal's echo of the key, on a line of its own
    job_lines = [JOB_LINE.match(line) for line in lines[1:-2]]
    assert all(job_lines), text
    shown = {m["name"]: int(m["clips"]) for m in job_lines if m}
    assert len(shown) == len(job_lines) == int(summary["done"]) >= 2, text
    assert set(shown) <= names
    assert 0 < 5 - len(shown) and int(summary["back"] or 0) <= 5 - len(shown), text  # mid-run: some never finished
    # Nothing after the summary: the raw output ends with its line.
    tail = bytes(term.raw).rsplit(b"worker stopped", 1)[1]
    assert re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", tail).decode().strip() == lines[-1][len("worker stopped "):], tail

    # The status table says the same: a row per done line, its clip count, and no other row.
    wait_for(lambda: status_queue(s, "hydrophone").depth() == {"visible": 0, "in_flight": 0, "delayed": 0},
             what="the status queue drained")
    wait_for(lambda: len(query(s, "SELECT 1 FROM status_hydro")) >= len(shown), what="the status rows")
    rows = {url.rsplit("/", 1)[-1]: (stat, clips) for url, stat, clips in
            query(s, "SELECT file_url, stat, clips FROM status_hydro")}
    assert rows == {name: (1, clips) for name, clips in shown.items()}, (rows, shown)
    # and every other job is back on the queue for the next worker, none lost
    jobs = job_queue(s, "hydrophone")
    wait_for(lambda: jobs.depth()["visible"] == 5 - len(shown), timeout=30, what="the rest back on the queue")


def test_job_lines_say_each_outcome_once_in_plain_words() -> None:
    import io

    from rich.console import Console

    from specfleet.cli.work import JobLines, worker_summary
    from specfleet.runtime.outcome import Outcome

    out = io.StringIO()
    lines = JobLines(Console(file=out, width=120))
    url = "http://127.0.0.1:8123/files/x/2017/10/09/OO-HYVM1--YDH-2017-10-09T00:05:00.000000.mseed"
    lines.after_process(None, None, Outcome("rejected", "truncated miniSEED: [not] a whole record", 0.3, key=url))
    lines.after_process(None, None, Outcome("misconfigured", "host 'a.example' is not allowed", 0.0, key=url))
    lines.after_process(None, None, Outcome("released", "handed back to the queue", 2.0, key=url))  # no line
    lines.after_process(None, None, Outcome("done", "", 31.0, key="3Vx8XOIzZKU", wrote="9 windows"))
    lines.after_worker_stop(None)
    lines.after_process(None, None, Outcome("done", "", 1.0, key="late"))  # after the summary: never printed
    assert out.getvalue().splitlines() == [
        "    failed OO-HYVM1--YDH-2017-10-09T00:05:00.000000.mseed  0.3s  truncated miniSEED: [not] a whole record",
        "      kept OO-HYVM1--YDH-2017-10-09T00:05:00.000000.mseed  0.0s  in the dead-letter queue, not failed: "
        "host 'a.example' is not allowed",
        "      done 3Vx8XOIzZKU  9 windows  31.0s",
    ]
    assert worker_summary({"done": 3, "rejected": 1, "released": 2, "busy_s": 9.5}, 2) == \
        "3 done, 1 failed, 2 handed back to the queue"
    assert worker_summary({"busy_s": 0.0}, 0) == "no jobs"
