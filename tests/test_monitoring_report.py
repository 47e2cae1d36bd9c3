"""``specfleet report``: one self-contained HTML page, rendered in real
headless Chromium (no network): no console errors, gallery images decode,
audio elements have playable sources, screenshot kept as an artifact."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from typer.testing import CliRunner

from helpers import wait_for
from monitoring_seed import seed_status_history
from specfleet.cli.main import app
from specfleet.monitoring import summary
from specfleet.pipelines import job_queue
from specfleet.report import ReportSettings, write_report
from specfleet.storage import Storage

CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,2400",
]


def _image(fmt: str, size: tuple[int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0])) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").convert("RGB").save(buf, format=fmt)
    return buf.getvalue()


def _wav(seed: int, sr: int = 16000, seconds: float = 0.25) -> bytes:
    t = np.arange(int(sr * seconds)) / sr
    tone = np.sin(2 * np.pi * (300 + 50 * seed) * t)
    buf = io.BytesIO()
    sf.write(buf, (tone * (2**31 - 1) * 0.5).astype(np.int32), sr, format="WAV", subtype="PCM_32")
    return buf.getvalue()


def _seed_s3(settings) -> dict[str, list[str]]:
    storage = Storage(settings)
    clips = []
    for i, (day, hhmmss) in enumerate([
        ("2017_10_09", "00_00_00"), ("2017_10_09", "00_00_05"), ("2017_10_09", "00_00_10"),
        ("2017_10_10", "12_00_00"), ("2017_10_10", "12_00_05"), ("2017_10_08", "23_59_55"),
    ]):
        name = f"OO_HYVM1__YDH_{day}T{hhmmss}"
        base = f"hydrophone/CE02SHBP-LJ01D-11-HYDBBA106/{day}/{name}"
        storage.put_bytes(base + ".png", _image("PNG", (64, 64), i), "image/png")
        storage.put_bytes(base + ".wav", _wav(i), "audio/wav")
        clips.append(name)
    storage.put_bytes("hydrophone/README.txt", b"not a clip")  # ignored: does not fit the layout
    windows = []
    for t, n in (("A", 3), ("B", 2)):
        for win in range(n):
            key = f"spec/{t}__{win}__{20 * win}__{20 * win + 30}.jpg"
            storage.put_bytes(key, _image("JPEG", (94, 64), 100 + win), "image/jpeg")
            windows.append(key)
    storage.put_bytes("spec/broken-name.jpg", _image("JPEG", (8, 8), 1))  # ignored
    return {"clips": clips, "windows": windows}


@pytest.fixture
def chrome():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_chromium(settings, tmp_path, artifacts_dir, chrome):
    seed_status_history(settings)
    seeded = _seed_s3(settings)
    gallery_max = 4
    s = settings
    echo = job_queue(s, "echo")
    for n in (5, 2):  # two queue samples a user's `specfleet status` would have taken
        echo.send_json({"job_id": f"b{n}-{i}"} for i in range(n))
        summary(s, record=True)
    path = write_report(s, tmp_path / "report.html", ReportSettings(gallery_max=gallery_max))

    page = path.read_text()
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r'(src|href)="(https?:|//)', page)
    # the four most recent clips by day then start time
    newest = sorted(seeded["clips"], key=lambda n: n.split("YDH_")[1], reverse=True)[:gallery_max]
    assert [m for m in re.findall(r'class="spectrogram" alt="([^"]+)"', page)] == newest

    chrome.get(path.as_uri())
    wait_for(lambda: chrome.execute_script("return document.readyState") == "complete", what="page load")
    gallery = wait_for(
        lambda: chrome.execute_script(
            "const imgs = [...document.querySelectorAll('#hydro-gallery img.spectrogram')];"
            "return imgs.every(i => i.complete) ? imgs.map(i => i.naturalWidth) : null;"
        ),
        what="gallery images loaded",
    )
    assert gallery == [64] * gallery_max
    windows = chrome.execute_script(
        "return [...document.querySelectorAll('img.window')].map(i => [i.alt, i.naturalWidth]);"
    )
    assert sorted(windows) == sorted([[f"{t} window {w}", 94] for t, n in (("A", 3), ("B", 2)) for w in range(n)])
    plots = chrome.execute_script("return [...document.querySelectorAll('img.plot')].map(i => i.naturalWidth);")
    assert len(plots) == 3 and all(w > 100 for w in plots)  # throughput, backlog, failures
    assert re.findall(r'<img class="plot" alt="([^"]+)"', page) == [
        "jobs per minute per pipeline", "queue backlog history", "failures by reason"]

    audio_sources = chrome.execute_script(
        "return [...document.querySelectorAll('#hydro-gallery audio')].map(a => a.currentSrc.slice(0, 22));"
    )
    assert audio_sources == ["data:audio/ogg;base64,"] * gallery_max  # small previews, not the WAVs
    # Chromium decoded the previews: 0.25 s each, as the WAVs
    durations = wait_for(
        lambda: (lambda d: d if all(x and x > 0 for x in d) else None)(chrome.execute_script(
            "return [...document.querySelectorAll('#hydro-gallery audio')].map(a => a.duration || 0);"
        )),
        what="audio metadata",
    )
    # (Vorbis pads the last block: up to one 1024-sample block at 24 kHz, ~0.04 s)
    assert durations == pytest.approx([0.25] * gallery_max, abs=0.045)

    text = chrome.find_element("tag name", "body").text
    assert "HTTP 403" in text and "i-c" in text  # failures by reason, banned instance

    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

    shot = artifacts_dir / "monitoring_report.png"
    chrome.save_screenshot(str(shot))
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape[0] > 500 and img.std() > 10  # not a blank page
    assert len(np.unique(img)) > 50


def test_report_command_and_empty_stack(namespace, settings, tmp_path):
    """On a fresh namespace the report still renders (no data yet), via the CLI."""
    out = tmp_path / "sub" / "empty.html"
    result = CliRunner().invoke(app, ["report", str(out), "--json"], env=namespace.env())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"path": str(out), "bytes": out.stat().st_size}
    page = out.read_text()
    assert "no clips under hydrophone/" in page and "no failures" in page
    assert "jobs per minute per pipeline: no data yet" in page
    # one queue sample (taken by the report itself) is not a history yet
    assert "no queue history yet" in page and "<img" not in page


def test_failure_chart_labels_are_short_and_say_so():
    """The chart's labels are cut with an ellipsis (the table has each reason
    whole) and its axis counts rows in whole numbers."""
    import base64

    from specfleet.report import _shorten, failures_plot

    reason = "truncated miniSEED: 545768 bytes is not a whole number of 4096-byte records"
    assert _shorten(f"hydrophone: {reason}", 48) == "hydrophone: truncated miniSEED: 545768 bytes is…"
    assert _shorten("spectrogram: short", 48) == "spectrogram: short"
    uri = failures_plot([{"pipeline": "hydrophone", "reason": reason, "rows": 3, "stat": 0}])
    assert uri is not None and uri.startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert png.format == "PNG" and png.width > png.height
