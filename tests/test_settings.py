"""Settings come from the environment; the DB DSN from the environment or
from a Secrets Manager secret (real moto Secrets Manager)."""

from __future__ import annotations

import json

import psycopg2
import pytest

from specfleet.aws import client
from specfleet.db import DatabaseNotConfigured, resolve_dsn
from specfleet.pipelines import get_spec, job_queue, pipeline_for_queue, status_queue
from specfleet.pipelines.melwindows.settings import SpectroSettings
from specfleet.settings import Settings


def test_environment_prefix_and_aws_variables(monkeypatch):
    monkeypatch.setenv("SPECFLEET_QUEUE_PREFIX", "dev_")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("SPECFLEET_VISIBILITY_TIMEOUT_S", "300")
    s = Settings()
    assert s.region == "eu-west-1"
    assert job_queue(s, "download").name == "dev_jobs_download"
    assert status_queue(s, "download").name == "dev_status"
    assert s.visibility_timeout_s == 300
    spec, kind = pipeline_for_queue("dev_status_specto", "dev_")
    assert (spec.name, kind) == ("spectrogram", "status")
    with pytest.raises(KeyError):
        pipeline_for_queue("dev_other", "dev_")


#: Every spectrogram variable as it was named when it lived in the core
#: Settings (``spectro_*`` there), with a value that is not its default.
SPECTRO_ENV = {
    "SPECFLEET_SPECTRO_SAMPLE_RATE": ("sample_rate", "22050", 22050),
    "SPECFLEET_SPECTRO_N_FFT": ("n_fft", "2048", 2048),
    "SPECFLEET_SPECTRO_HOP_LENGTH": ("hop_length", "256", 256),
    "SPECFLEET_SPECTRO_N_MELS": ("n_mels", "128", 128),
    "SPECFLEET_SPECTRO_FMIN": ("fmin", "20", 20.0),
    "SPECFLEET_SPECTRO_FMAX": ("fmax", "7000", 7000.0),
    "SPECFLEET_SPECTRO_AMIN": ("amin", "1e-8", 1e-8),
    "SPECFLEET_SPECTRO_TOP_DB": ("top_db", "60", 60.0),
    "SPECFLEET_SPECTRO_WINDOW_S": ("window_s", "10", 10),
    "SPECFLEET_SPECTRO_STEP_S": ("step_s", "5", 5),
    "SPECFLEET_SPECTRO_MIN_DURATION_S": ("min_duration_s", "3", 3),
    "SPECFLEET_SPECTRO_JPEG_QUALITY": ("jpeg_quality", "90", 90),
    "SPECFLEET_SPECTRO_MAX_MP3_BYTES": ("max_mp3_bytes", "123456", 123456),
    "SPECFLEET_SPECTRO_MAX_DURATION_S": ("max_duration_s", "600", 600.0),
    "SPECFLEET_SPECTRO_PROCESSES": ("processes", "1", 1),
    "SPECFLEET_SPECTRO_AUDIO_PREFIX": ("audio_prefix", "mp3s/", "mp3s/"),
    "SPECFLEET_SPECTRO_OUTPUT_PREFIX": ("output_prefix", "windows/", "windows/"),
    # where ``spectrogram preview URL`` may fetch from (named so since the preview came)
    "SPECFLEET_SPECTRO_ALLOWED_HOSTS": ("allowed_hosts", '["127.0.0.1:9"]', ["127.0.0.1:9"]),
    "SPECFLEET_SPECTRO_CONNECT_TIMEOUT_S": ("connect_timeout_s", "3", 3.0),
    "SPECFLEET_SPECTRO_READ_TIMEOUT_S": ("read_timeout_s", "7", 7.0),
    "SPECFLEET_SPECTRO_FETCH_BUDGET_S": ("fetch_budget_s", "42", 42.0),
}


def test_spectrogram_settings_keep_their_environment_names(monkeypatch):
    """The spectrogram's settings moved out of the core (issue 15); a
    deployment's SPECFLEET_SPECTRO_* variables must still reach them, through
    the pipeline's spec, and no longer be core fields."""
    for name, (_field, raw, _value) in SPECTRO_ENV.items():
        monkeypatch.setenv(name, raw)
    config = get_spec("spectrogram").config()
    assert isinstance(config, SpectroSettings)
    assert {f: getattr(config, f) for f, _raw, _v in SPECTRO_ENV.values()} == {
        f: v for f, _raw, v in SPECTRO_ENV.values()
    }
    assert set(SpectroSettings.model_fields) == {f for f, _raw, _v in SPECTRO_ENV.values()}
    assert not [f for f in Settings.model_fields if f.startswith("spectro")]
    monkeypatch.setenv("SPECFLEET_SPECTRO_JPEG_QUALITY", "101")
    with pytest.raises(ValueError, match="jpeg_quality"):
        SpectroSettings()
    # renamed to librosa's name when the parameters got one declaration:
    # the old name stops the worker instead of being ignored
    monkeypatch.setenv("SPECFLEET_SPECTRO_JPEG_QUALITY", "90")
    monkeypatch.setenv("SPECFLEET_SPECTRO_HOP", "256")
    with pytest.raises(ValueError, match="SPECFLEET_SPECTRO_HOP is now SPECFLEET_SPECTRO_HOP_LENGTH"):
        SpectroSettings()


def test_dsn_from_secrets_manager(settings):
    real_dsn = settings.db_dsn.get_secret_value()
    user_host = real_dsn.split("://", 1)[1]
    user, rest = user_host.split("@", 1)
    hostport, dbname = rest.split("/", 1)
    host, port = hostport.split(":")
    sm = client("secretsmanager", settings)
    name = f"{settings.queue_prefix}db"
    sm.create_secret(Name=name, SecretString=json.dumps(
        {"username": user, "password": "", "host": host, "port": int(port), "dbname": dbname, "sslmode": "disable"}))
    from_secret = settings.model_copy(update={"db_dsn": None, "db_secret_id": name})
    dsn = resolve_dsn(from_secret)
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        assert cur.fetchone() == (dbname,)
    conn.close()


def test_missing_database_configuration_is_a_clear_error():
    with pytest.raises(DatabaseNotConfigured, match="SPECFLEET_DB_DSN"):
        resolve_dsn(Settings(db_dsn=None, db_secret_id=None))


def test_each_area_reads_its_own_environment_names(monkeypatch):
    """Settings split by area keep the environment variable names people
    already use; the core holds none of an area's fields."""
    from specfleet.catalog.settings import CatalogSettings
    from specfleet.fleet.settings import FleetSettings
    from specfleet.pipelines.hydrophone.settings import HydroSettings
    from specfleet.pipelines.music.settings import MusicSettings

    monkeypatch.setenv("SPECFLEET_FLEET_MAX_SIZE", "7")
    monkeypatch.setenv("SPECFLEET_FLEET_REGIONS", '["eu-west-1"]')
    monkeypatch.setenv("SPECFLEET_HYDRO_HYDROPHONE", "AXBA1")
    monkeypatch.setenv("SPECFLEET_MUSIC_SEARCH_RESULTS", "5")
    monkeypatch.setenv("SPECFLEET_CATALOG_CHART_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("SPECFLEET_QUEUE_PREFIX", "dev_")
    fleet = FleetSettings()
    assert (fleet.fleet_max_size, fleet.fleet_regions, fleet.queue_prefix) == (7, ["eu-west-1"], "dev_")
    assert HydroSettings().hydrophone == "AXBA1"
    assert MusicSettings().search_results == 5
    assert CatalogSettings().chart_url == "http://127.0.0.1:1/"
    # the fleet's view of a resolved core (e.g. the local stack's) keeps the core's values
    core = Settings(queue_prefix="stack_", endpoint_url="http://127.0.0.1:2")
    over = FleetSettings.over(core, fleet_spot=False)
    assert (over.queue_prefix, over.endpoint_url, over.fleet_max_size, over.fleet_spot) == (
        "stack_", "http://127.0.0.1:2", 7, False)
    areas = ("fleet_", "hydro_", "music_", "catalog_", "spectro_")
    assert [f for f in Settings.model_fields if f.startswith(areas)] == []
