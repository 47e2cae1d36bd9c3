"""Settings come from the environment; the DB DSN from the environment or
from a Secrets Manager secret (real moto Secrets Manager)."""

from __future__ import annotations

import json

import psycopg2
import pytest

from specfleet.aws import client
from specfleet.db import DatabaseNotConfigured, resolve_dsn
from specfleet.pipelines import job_queue, pipeline_for_queue, status_queue
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
    areas = ("fleet_", "hydro_", "music_", "catalog_")
    assert [f for f in Settings.model_fields if f.startswith(areas)] == []
