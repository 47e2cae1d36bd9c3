"""The music workers' optional settings on a deployed stack -- the YouTube
cookies secret and the search overrides CSV -- under exactly the template's
worker policy, on a moto server that enforces IAM (tests/iam_moto_server.py;
the helpers are test_fleet_iam.py's).

* ``YouTubeCookiesSecretArn`` set: the worker role may read that secret and
  no other, and the download and search launch templates hand its ARN to
  the worker, which gets past pre-flight and downloads (searches) signed in. Empty: no Secrets
  Manager statement for it at all, and a worker told to use the secret
  anyway refuses to start with one line, its job left on the queue.
* ``SearchOverridesCsv``: the role may read ``music-config/`` and write none
  of it; a search worker answers from the overrides file there, and refuses
  to start on one anywhere else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from cfnlint.decode import cfn_yaml

from specfleet.fleet import userdata
from specfleet.fleet.cfn import resolve
from specfleet.fleet.deploy import TEMPLATE
from specfleet.fleet.settings import FleetSettings
from specfleet.fleet.template_shared import WORKER_POLICY
from specfleet.pipelines import ensure_all_queues, job_queue, specs, status_queue
from specfleet.pipelines.download.models import DownloadJob
from specfleet.pipelines.music.settings import COOKIES_STACK_SETTING, OVERRIDES_STACK_SETTING
from specfleet.pipelines.search.models import SearchJob
from specfleet.runtime.preflight import EXIT_CONFIG
from specfleet.standins.video_site import VideoSite
from specfleet.storage import Storage
from test_fleet_iam import (
    ACCOUNT,
    BUCKET,
    PREFIX,
    REGION,
    STACK,
    _as_env,
    _client,
    _denied,
    _work,
    assume_role_with,
    make_operator,
    role_policies,
)

COOKIES = ("# Netscape HTTP Cookie File\n"
           "127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tLOGIN_INFO\taccount-login\n"
           "127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tSAPISID\tsapisid-value\n")
COOKIES_PARAM = COOKIES_STACK_SETTING.parameter
OVERRIDES_PARAM = OVERRIDES_STACK_SETTING.parameter
A_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:youtube-cookies-AbC123"


def _template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def _worker_statements(template: dict[str, Any], parameters: dict[str, str]) -> list[dict[str, Any]]:
    policies = role_policies(template, "WorkerRole", topic_arn="arn:aws:sns:x", secret_arn="arn:db",
                             parameters=parameters)
    return list(policies["inline"][WORKER_POLICY]["Statement"])


def _user_data_env(template: dict[str, Any], pipeline: str, parameters: dict[str, str]) -> dict[str, str]:
    """The env block of ``pipeline``'s launch template as the stack fills it in."""
    [data] = [r["Properties"]["LaunchTemplateData"] for r in template["Resources"].values()
              if r["Type"] == "AWS::EC2::LaunchTemplate"
              and {"Key": "specfleet:pipeline", "Value": pipeline} in r["Properties"]["LaunchTemplateData"][
                  "TagSpecifications"][0]["Tags"]]
    names = {"AWS::Region": REGION, "QueuePrefix": PREFIX, "DataBucket": BUCKET, "AWS::StackName": STACK,
             COOKIES_PARAM: "", OVERRIDES_PARAM: "", **parameters}
    script = resolve(data["UserData"]["Fn::Base64"], names.__getitem__, lambda r, a: f"{r}.{a}")
    return userdata.parse(script, "i-0").env


def test_cookies_parameter_is_the_only_secret_grant_and_reaches_download_and_search_workers_only() -> None:
    template = _template()
    param = template["Parameters"][COOKIES_PARAM]
    assert param["Default"] == "" and template["Parameters"][OVERRIDES_PARAM]["Default"] == ""
    # Empty: no Secrets Manager statement at all (the database secret is the writer's, never the worker's).
    assert "secretsmanager" not in json.dumps(_worker_statements(template, {}))
    # Set: one statement, GetSecretValue on exactly that ARN.
    granted = [st for st in _worker_statements(template, {COOKIES_PARAM: A_SECRET_ARN})
               if "secretsmanager" in json.dumps(st)]
    assert granted == [{"Sid": f"Read{COOKIES_PARAM}", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                        "Resource": A_SECRET_ARN}]
    # The value lands in user-data (a shell heredoc, then systemd's env file): the pattern admits full ARNs only.
    pattern = re.compile(param["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch(A_SECRET_ARN)
    for bad in ("youtube-cookies", A_SECRET_ARN.removesuffix("-AbC123"), A_SECRET_ARN + "$(reboot)",
                A_SECRET_ARN + "`id`", f"{A_SECRET_ARN} x", "arn:aws:secretsmanager:us-east-1:1:secret:*"):
        assert not pattern.fullmatch(bad), bad
    overrides = re.compile(template["Parameters"][OVERRIDES_PARAM]["AllowedPattern"])
    assert overrides.fullmatch("") and overrides.fullmatch(f"s3://{BUCKET}/music-config/overrides.csv")
    for bad in (f"s3://{BUCKET}/private/overrides.csv", f"s3://{BUCKET}/music-config/$(id).csv", "/tmp/o.csv"):
        assert not overrides.fullmatch(bad), bad
    # The launch templates: download and search get the ARN (the secret's value never: it is read at start),
    # search the overrides; no other pipeline either.
    for spec in specs():
        if not spec.fleet.autoscaled:
            continue
        env = _user_data_env(template, spec.name, {COOKIES_PARAM: A_SECRET_ARN,
                                                   OVERRIDES_PARAM: f"s3://{BUCKET}/music-config/o.csv"})
        assert (env.get("SPECFLEET_MUSIC_COOKIES_SECRET_ID") == A_SECRET_ARN) is (
            spec.name in ("download", "search")), spec.name
        assert ("SPECFLEET_MUSIC_OVERRIDES_CSV" in env) is (spec.name == "search"), spec.name
    assert _user_data_env(template, "download", {})["SPECFLEET_MUSIC_COOKIES_SECRET_ID"] == ""  # empty: a guest
    assert "LOGIN_INFO" not in TEMPLATE.read_text()


def _worker_role(url: str, operator: dict[str, str], name: str, template: dict[str, Any],
                 parameters: dict[str, str]) -> dict[str, str]:
    """Credentials of a role holding exactly the template's worker policies for ``parameters``."""
    policies = role_policies(template, "WorkerRole", topic_arn="arn:aws:sns:unused", secret_arn="arn:unused",
                             parameters=parameters)
    return assume_role_with(url, operator, name, policies)


def _stack(url: str, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FleetSettings:
    for k, v in _as_env(operator).items():  # this process's specfleet calls act as the operator
        monkeypatch.setenv(k, v)
    s = FleetSettings(endpoint_url=url, region=REGION, queue_prefix=PREFIX, bucket=BUCKET, fleet_stack_name=STACK)
    ensure_all_queues(s)
    Storage(s).ensure_bucket()
    return s


def _enforce(url: str) -> None:
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()


def _env(creds: dict[str, str], url: str) -> dict[str, str]:
    return {**_as_env(creds), "AWS_ENDPOINT_URL": url, "SPECFLEET_ENDPOINT_URL": url, "SPECFLEET_REGION": REGION,
            "SPECFLEET_QUEUE_PREFIX": PREFIX, "SPECFLEET_BUCKET": BUCKET, "SPECFLEET_WAIT_TIME_S": "1",
            "SPECFLEET_VISIBILITY_TIMEOUT_S": "30"}


@pytest.mark.slow
def test_cookies_secret_readable_by_exactly_the_role_the_parameter_names_and_a_download_worker_uses_it(
    enforcing_moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = enforcing_moto
    operator = make_operator(url)
    s = _stack(url, operator, monkeypatch)
    secrets = _client("secretsmanager", url, operator)
    cookies = secrets.create_secret(Name="youtube-cookies", SecretString=COOKIES)["ARN"]
    other = secrets.create_secret(Name="someone-elses", SecretString="hush")["ARN"]
    template = _template()
    assert re.fullmatch(template["Parameters"][COOKIES_PARAM]["AllowedPattern"], cookies)  # moto's ARN: a real one's
    with_cookies = _worker_role(url, operator, "CookiesWorker", template, {COOKIES_PARAM: cookies})
    guest = _worker_role(url, operator, "GuestWorker", template, {})
    _enforce(url)

    sm = _client("secretsmanager", url, with_cookies)
    assert sm.get_secret_value(SecretId=cookies)["SecretString"] == COOKIES
    assert _denied(sm.get_secret_value, SecretId=other)  # another secret: no
    assert _denied(sm.put_secret_value, SecretId=cookies, SecretString="x")  # that secret, but writing: no
    assert _denied(sm.describe_secret, SecretId=cookies)
    assert _denied(sm.list_secrets)
    assert _denied(_client("secretsmanager", url, guest).get_secret_value, SecretId=cookies)  # parameter empty: none

    site = VideoSite(tmp_path / "site").start()
    try:
        site.add_video("vidA", "Nina Simone - Feeling Good", seconds=30, views=5000)
        (tmp_path / "music-tmp").mkdir()
        music = {"SPECFLEET_MUSIC_EXTRA_HOSTS": json.dumps([site.host]),
                 "SPECFLEET_MUSIC_TMP_DIR": str(tmp_path / "music-tmp")}
        # what the download launch template puts in the worker's env file (the stack's values filled in)
        stack_env = {k: v for k, v in _user_data_env(template, "download", {COOKIES_PARAM: cookies}).items()
                     if k.startswith("SPECFLEET_MUSIC_")}
        assert stack_env == {"SPECFLEET_MUSIC_COOKIES_SECRET_ID": cookies}
        job_queue(s, "download").send([DownloadJob(track_id="t1", yt_url=site.watch_url("vidA")).body()])

        refused = _work("download", _env(guest, url), extra={**music, **stack_env})
        assert refused.returncode == EXIT_CONFIG, refused.stderr[-3000:]
        # one line naming the secret as it is (moto answers the JSON protocol's refusal as a bare 403)
        assert f"cannot read the cookies secret '{cookies}'" in refused.stderr, refused.stderr[-3000:]
        assert site.count("watch") == 0 and job_queue(s, "download").depth()["visible"] == 1  # the job waits

        ran = _work("download", _env(with_cookies, url), extra={**music, **stack_env})
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "AccessDenied" not in ran.stderr, ran.stderr[-3000:]
        assert site.signed_in_pages == 1, "the watch page was asked for with the secret's cookies"
    finally:
        site.close()
    assert Storage(s).exists("audio/t1.mp3")
    [status] = status_queue(s, "download").receive(wait_s=1)
    assert "cookies 0.0 days old, last success 20" in status.body + json.dumps(status.attributes)


@pytest.mark.slow
def test_a_search_worker_searches_with_the_secrets_cookies_where_the_site_refuses_guests(
    enforcing_moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specfleet.pipelines.music.settings import MusicSettings
    from specfleet.pipelines.search.backends import YtDlpBackend
    from specfleet.runtime import JobError

    url = enforcing_moto
    operator = make_operator(url)
    s = _stack(url, operator, monkeypatch)
    cookies = _client("secretsmanager", url, operator).create_secret(Name="youtube-cookies",
                                                                    SecretString=COOKIES)["ARN"]
    template = _template()
    with_cookies = _worker_role(url, operator, "CookiesSearcher", template, {COOKIES_PARAM: cookies})
    guest = _worker_role(url, operator, "GuestSearcher", template, {})
    _enforce(url)

    site = VideoSite(tmp_path / "site").start()
    try:
        site.add_video("vidA", "Nina Simone - Feeling Good", seconds=1, views=5000)
        found = site.watch_url("vidA")
        site.search_needs_sign_in = True  # this session is asked to sign in: a guest cannot search
        with pytest.raises(JobError, match="not a bot"):  # yt-dlp without cookies, as the worker had searched
            YtDlpBackend(MusicSettings(search_url=site.search_api_url, extra_hosts=[site.host])).search(
                "Feeling Good Nina Simone")
        assert site.count("search") == 1 and site.signed_in_searches == 0
        (tmp_path / "music-tmp").mkdir()
        music = {"SPECFLEET_MUSIC_EXTRA_HOSTS": json.dumps([site.host]),
                 "SPECFLEET_MUSIC_SEARCH_URL": site.search_api_url,
                 "SPECFLEET_MUSIC_TMP_DIR": str(tmp_path / "music-tmp")}
        # what the search launch template puts in the worker's env file (the stack's values filled in)
        stack_env = {k: v for k, v in _user_data_env(template, "search", {COOKIES_PARAM: cookies}).items()
                     if k.startswith("SPECFLEET_MUSIC_") and v}
        assert stack_env == {"SPECFLEET_MUSIC_COOKIES_SECRET_ID": cookies}
        job_queue(s, "search").send([SearchJob(track_id="t1", query="Feeling Good Nina Simone").body()])

        refused = _work("search", _env(guest, url), extra={**music, **stack_env})  # a role without the grant
        assert refused.returncode == EXIT_CONFIG, refused.stderr[-3000:]
        assert f"cannot read the cookies secret '{cookies}'" in refused.stderr, refused.stderr[-3000:]
        assert site.count("search") == 1 and job_queue(s, "search").depth()["visible"] == 1  # the job waits

        ran = _work("search", _env(with_cookies, url), extra={**music, **stack_env})
        assert ran.returncode == 0 and "AccessDenied" not in ran.stderr, ran.stderr[-3000:]
        assert site.signed_in_searches == 1 and site.count("search") == 2, "searched once, with the cookies"
    finally:
        site.close()
    [status] = status_queue(s, "search").receive(wait_s=1)
    assert found in status.body, status.body
    assert list((tmp_path / "music-tmp").iterdir()) == []  # the jar's copies are gone with the worker


@pytest.mark.slow
def test_overrides_read_from_music_config_only_and_a_search_worker_refuses_any_other_place(
    enforcing_moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = enforcing_moto
    operator = make_operator(url)
    s = _stack(url, operator, monkeypatch)
    storage = Storage(s)
    csv = b"track_id,url\nt1,https://www.youtube.com/watch?v=4ZH0bRxUn2c\nt2,NOTFOUND\n"
    storage.put_bytes("music-config/overrides.csv", csv)
    storage.put_bytes("private/overrides.csv", csv)
    worker = _worker_role(url, operator, "Worker", _template(), {})
    _enforce(url)

    w_s3 = _client("s3", url, worker)
    assert w_s3.get_object(Bucket=BUCKET, Key="music-config/overrides.csv")["Body"].read() == csv
    assert _denied(w_s3.put_object, Bucket=BUCKET, Key="music-config/overrides.csv", Body=b"t1,NOTFOUND\n")
    assert _denied(w_s3.get_object, Bucket=BUCKET, Key="private/overrides.csv")

    site = VideoSite(tmp_path / "site").start()
    try:
        music = {"SPECFLEET_MUSIC_EXTRA_HOSTS": json.dumps([site.host]),
                 "SPECFLEET_MUSIC_SEARCH_URL": site.search_api_url}
        job_queue(s, "search").send([SearchJob(track_id="t1", query="Feeling Good Nina Simone").body(),
                                     SearchJob(track_id="t2", query="Bohemian Rhapsody Queen").body()])
        for place in (f"s3://{BUCKET}/private/overrides.csv", "s3://another-bucket/music-config/overrides.csv"):
            refused = _work("search", _env(worker, url), extra={**music, "SPECFLEET_MUSIC_OVERRIDES_CSV": place})
            assert refused.returncode == EXIT_CONFIG, refused.stderr[-3000:]
            assert f"outside s3://{BUCKET}/music-config/" in refused.stderr, refused.stderr[-3000:]
        missing = _work("search", _env(worker, url),
                        extra={**music, "SPECFLEET_MUSIC_OVERRIDES_CSV": f"s3://{BUCKET}/music-config/none.csv"})
        assert missing.returncode == EXIT_CONFIG and "do not exist" in missing.stderr, missing.stderr[-3000:]
        assert job_queue(s, "search").depth()["visible"] == 2  # nothing taken

        stack_env = {k: v for k, v in _user_data_env(
            _template(), "search", {OVERRIDES_PARAM: f"s3://{BUCKET}/music-config/overrides.csv"}).items()
            if k.startswith("SPECFLEET_MUSIC_")}
        ran = _work("search", _env(worker, url), extra={**music, **stack_env})
        assert ran.returncode == 0 and "AccessDenied" not in ran.stderr, ran.stderr[-3000:]
        assert site.count("search") == 0  # both answered from the file
    finally:
        site.close()
    bodies = [m.body for m in status_queue(s, "search").receive(wait_s=1)]
    bodies += [m.body for m in status_queue(s, "search").receive(wait_s=1)]
    assert any("https://www.youtube.com/watch?v=4ZH0bRxUn2c" in b for b in bodies), bodies
    assert any("NOTFOUND" in b for b in bodies) and len(bodies) == 2, bodies


def test_overrides_preflight_refuses_each_unusable_source_with_one_line(tmp_path: Path) -> None:
    from specfleet.pipelines.music.settings import MusicSettings
    from specfleet.pipelines.search.overrides import preflight_overrides
    from specfleet.runtime.preflight import ConfigError
    from specfleet.settings import Settings

    s = Settings(bucket=BUCKET, region=REGION)
    good = tmp_path / "good.csv"
    good.write_text("t1,NOTFOUND\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("t1,NOTFOUND\nt2\n")
    preflight_overrides(s, MusicSettings(overrides_csv=""))  # none: nothing to check
    preflight_overrides(s, MusicSettings(overrides_csv=str(good)))
    cases = {  # checked before any request: none of these reach S3
        f"s3://{BUCKET}/music-config/": "outside",
        f"s3://{BUCKET}/music-configs/o.csv": "outside",
        f"s3://{BUCKET}.other/music-config/o.csv": "outside",
        "https://example.org/o.csv": "neither a local path nor an s3:// URL",
        str(tmp_path / "missing.csv"): "cannot be read",
        str(bad): "malformed: overrides line 2",
    }
    for source, said in cases.items():
        with pytest.raises(ConfigError) as refused:
            preflight_overrides(s, MusicSettings(overrides_csv=source))
        assert said in refused.value.line() and "\n" not in refused.value.line(), (source, refused.value.line())


def test_fleet_launch_passes_the_same_settings_from_its_environment() -> None:
    """``specfleet fleet launch`` (instances without the stack's launch
    templates) hands on what the launching shell sets, to the pipelines that
    declare it, as the launch templates do."""
    environ = {"SPECFLEET_MUSIC_COOKIES_SECRET_ID": A_SECRET_ARN,
               "SPECFLEET_MUSIC_OVERRIDES_CSV": f"s3://{BUCKET}/music-config/o.csv", "SPECFLEET_MUSIC_FUSED": "true"}
    assert userdata.stack_setting_env("download", environ) == {"SPECFLEET_MUSIC_COOKIES_SECRET_ID": A_SECRET_ARN}
    assert userdata.stack_setting_env("search", environ) == {
        "SPECFLEET_MUSIC_OVERRIDES_CSV": f"s3://{BUCKET}/music-config/o.csv",
        "SPECFLEET_MUSIC_COOKIES_SECRET_ID": A_SECRET_ARN}
    assert userdata.stack_setting_env("hydrophone", environ) == {}
    assert userdata.stack_setting_env("download", {"SPECFLEET_MUSIC_COOKIES_SECRET_ID": ""}) == {}
    script = userdata.render("download", userdata.stack_setting_env("download", environ), log_group="/specfleet/s/d")
    assert userdata.parse(script, "i-1").env["SPECFLEET_MUSIC_COOKIES_SECRET_ID"] == A_SECRET_ARN
    with pytest.raises(userdata.UserDataError):  # a value unsafe in user-data is refused, as for any setting
        userdata.render("download", userdata.stack_setting_env(
            "download", {"SPECFLEET_MUSIC_COOKIES_SECRET_ID": "x$(reboot)"}), log_group="/specfleet/s/d")
