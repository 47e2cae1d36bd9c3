"""Names and S3 keys of the hydrophone pipeline (SPEC.md section 1).

Clip name ``{net}_{sta}_{loc}_{cha}_{YYYY_MM_DDTHH_MM_SS}`` of the clip
start, e.g. ``OO_HYVM1__YDH_2017_10_06T20_35_50``; keys
``{prefix}/{hydrophone}/{YYYY_MM_DD}/{name}.wav|.png`` (specfleet layout) or
the original whaledr tool's ``megaptera/{hydrophone}/{YYYY_MM_DD}/{name}.wav|.jpg``
with ``megaptera/whalemanifest.json`` listing the JPEGs.
"""

from __future__ import annotations

import datetime as dt
import re
from posixpath import basename
from urllib.parse import unquote, urlsplit

#: SEED codes are short alphanumerics; anything else would leak into keys.
SEED_CODE_RE = re.compile(r"^[A-Za-z0-9]{0,8}$")
#: The timestamp OOI puts after ``--`` in a file name, e.g.
#: ``OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed``.
FILE_TIME_RE = re.compile(r"--.*?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?\.mseed$")
HYDROPHONE_RE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
#: One folder name of a hydrophone path, e.g. ``LJ01D``.
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
#: What the whaledr app splits manifest entries on (the original's ``manifest_delimiter``).
MANIFEST_DELIMITER = "___"
WHALE_MANIFEST = "whalemanifest.json"


def check_seed_code(kind: str, value: str) -> str:
    if not SEED_CODE_RE.fullmatch(value):
        raise ValueError(f"{kind} code {value!r} is not 0-8 letters/digits")
    return value


def clip_name(network: str, station: str, location: str, channel: str, start: dt.datetime) -> str:
    for kind, value in (("network", network), ("station", station), ("location", location), ("channel", channel)):
        check_seed_code(kind, value)
    return f"{network}_{station}_{location}_{channel}_{start:%Y_%m_%dT%H_%M_%S}"


def day_folder(day: dt.date | dt.datetime) -> str:
    return f"{day:%Y_%m_%d}"


def normalize_hydrophone(path: str) -> str:
    """``CE02SHBP/LJ01D/11-HYDBBA106`` without surrounding slashes; refuses
    ``..``, empty parts and characters that do not belong in a key."""
    clean = path.strip().strip("/")
    if not HYDROPHONE_RE.fullmatch(clean):
        raise ValueError(
            f"hydrophone path {path!r} must be folder names of letters, digits, '_' or '-' separated by '/'"
        )
    return clean


def clip_key(prefix: str, hydrophone: str, start: dt.datetime, name: str, ext: str) -> str:
    return f"{prefix.strip('/')}/{hydrophone}/{day_folder(start)}/{name}.{ext}"


def file_name(url: str) -> str:
    """Last path segment of a file URL (percent-decoded)."""
    return unquote(basename(urlsplit(url).path))


def file_time(name: str) -> dt.datetime | None:
    """Start time encoded in an OOI file name, or ``None``."""
    m = FILE_TIME_RE.search(name)
    if not m:
        return None
    try:
        return dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


def manifest_key(manifest_prefix: str, hydrophone: str, day: dt.date | dt.datetime, name: str) -> str:
    """Marker written after all clips of a file are uploaded (producer skips it)."""
    return f"{manifest_prefix.strip('/')}/{hydrophone}/{day_folder(day)}/{name}.json"


def day_url(base_url: str, hydrophone: str, day: dt.date) -> str:
    """Listing URL of one day: ``{base}/{hydrophone}/{YYYY}/{MM}/{DD}/``."""
    return f"{base_url.rstrip('/')}/{hydrophone}/{day:%Y/%m/%d}/"


# --- the original whaledr layout (HydroSettings.output = "whaledr") -----------------------
def whaledr_hydrophone(file_url: str) -> str:
    """The original's ``data_url.split('/')[5]``: ``LJ01D`` of
    ``https://rawdata.oceanobservatories.org/files/CE02SHBP/LJ01D/11-HYDBBA106/...``."""
    parts = file_url.split("/")
    if len(parts) < 7 or not SEGMENT_RE.fullmatch(parts[5]):
        raise ValueError(
            f"file URL {file_url!r} has no hydrophone folder as its 6th '/'-segment "
            "(expected like https://host/files/CE02SHBP/LJ01D/11-HYDBBA106/YYYY/MM/DD/file.mseed)"
        )
    return parts[5]


def whaledr_day(file_url: str) -> str:
    """The original's ``data_url.split('--')[1][4:14].replace('-', '_')``: the
    ``YYYY_MM_DD`` after ``--`` in the file name (``OO-HYVM1--YDH-2017-10-09T...``)."""
    name = file_name(file_url)
    if "--" not in name:
        raise ValueError(f"file name {name!r} has no '--' before its channel and date")
    day = name.split("--", 1)[1][4:14]
    try:
        dt.datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"file name {name!r} has no YYYY-MM-DD date 4 characters after '--'") from None
    return day.replace("-", "_")


def whaledr_key(prefix: str, hydrophone: str, day: str, name: str, ext: str) -> str:
    return f"{prefix.strip('/')}/{hydrophone}/{day}/{name}.{ext}"


def whale_manifest_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/{WHALE_MANIFEST}"


def manifest_entry(prefix: str, key: str) -> str:
    """The original's entry for a JPEG key: the key below ``{prefix}/``, '/'
    replaced by ``___``, extension dropped (``.split('.')[0]``)."""
    head = prefix.strip("/") + "/"
    if not key.startswith(head):
        raise ValueError(f"key {key!r} is not below {head!r}")
    return key[len(head) :].replace("/", MANIFEST_DELIMITER).split(".")[0]
