"""The hydrophone worker's own pre-flight check: the archive it serves is a
host it may fetch from.

A worker cannot know its jobs' hosts before it receives them, but its
settings name the archive the fleet serves (``SPECFLEET_HYDRO_BASE_URL``,
the root the producer lists). If that host is not on
``SPECFLEET_HYDRO_ALLOWED_HOSTS`` every job would be refused, so the worker
refuses to start instead. Whether the archive answers is not checked: an
archive that is down is an outage, not a mistake in the settings. A job
naming some other host is kept in the dead-letter queue when it is met
(``runtime.errors.Misconfigured``).
"""

from __future__ import annotations

import json

from ...outbound import HostNotAllowed, HostPolicy, OutboundRefused
from ...runtime.preflight import ConfigError
from ...settings import Settings
from .settings import HydroSettings


def check_archive_allowed(_settings: Settings, config: HydroSettings) -> None:
    policy = HostPolicy.of(config.allowed_hosts, what="hydrophone archive")
    try:
        policy.check_url(config.base_url)
    except HostNotAllowed as err:
        hosts = sorted({*config.allowed_hosts, _netloc(config.base_url)})
        raise ConfigError(
            f"{err} -- SPECFLEET_HYDRO_BASE_URL is {config.base_url}",
            f"SPECFLEET_HYDRO_ALLOWED_HOSTS='{json.dumps(hosts)}', or point SPECFLEET_HYDRO_BASE_URL at an "
            "allowed archive",
        ) from None
    except OutboundRefused as err:
        raise ConfigError(f"SPECFLEET_HYDRO_BASE_URL {config.base_url!r}: {err}",
                          "set it to the archive root, e.g. https://rawdata.oceanobservatories.org/files/") from None


def _netloc(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.rpartition("@")[2]
