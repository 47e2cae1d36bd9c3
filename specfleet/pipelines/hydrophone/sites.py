"""OOI broadband hydrophone sites by the names ooipy users know them, and
the archive folder each one uses at each date.

ooipy (https://github.com/Ocean-Data-Lab/ooipy) takes a node either as its
id (``LJ01D``) or as a name (``Oregon_Shelf_Base_Seafloor``) and builds the
raw-data archive folder ``{array}/{node}/{instrument}/YYYY/MM/DD/`` from a
fixed table in ``src/ooipy/request/hydrophone_request.py``
(``__get_mseed_urls``). ``SITES`` is that table, copied from ooipy at
commit ff1c5f8 (2024-10-30), whose instrument folders (``11-HYDBBA106``)
are the ones the original whaledr tool reads.

What the sources say about the folder names changing:

- ooipy issue #159 (2023-08-23), citing OOI's notice "Update on RCA
  broadband hydrophone data availability, file formats and directory
  structure" (May 2023): the raw-data server's way of storing data changed
  on 2023-06-07, and OOI would convert the older data to match
  "retroactively ... at a currently unknown timeline".
- ooipy issue #201 (2025-02-28): a 2016 day of ``LJ03A`` answered nothing
  under ``RS03AXBS/LJ03A/09-HYDBBA302/`` and was found under
  ``RS03AXBS/LJ03A/HYDBBA302/``: by then old days had been moved too.
- ooipy commits 4bc04e7 (2025-02-28) and 21ef493 (2025-03-03) then dropped
  the numeric prefix for every node and every date; ooipy asks one folder
  per node, whatever the date (its JupyterHub copy keeps numbered names
  for most nodes).

So no source gives a date per folder beyond 2023-06-07, and the move of old
days is documented only as under way. ``ARCHIVE_LAYOUT`` is the one dated
table: the numbered folder (``11-HYDBBA106``) first for days before
2023-06-07, the plain one (``HYDBBA106``) first from that day on, and the
other spelling always second. The producer asks the first and, when the
archive has no such day there, the second (``archive_paths``), so a day
already moved (as in #201) or not yet moved is found either way.

A site's outputs are keyed by ``Site.path`` (the numbered spelling) whatever
folder a day came from, so one site's clips stay under one prefix.

Only the broadband (64 kHz) nodes are here: ooipy's low-frequency names
(``Axial_Base``, ``Central_Caldera``, ``Eastern_Caldera``...) come from
IRIS, not from this archive.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from typing import Literal

Spelling = Literal["numbered", "plain"]

#: The day OOI changed how the raw-data server stores the broadband data
#: (ooipy issue #159; see the module docstring).
LAYOUT_CHANGED = dt.date(2023, 6, 7)

#: The archive's spelling of a site's folder by date, ``(first day, spelling)``
#: in date order: the one table the producer, ``hydrophone sites`` and the
#: local archive read. The spelling of a day is the last row whose first day
#: is on or before it; the other spelling is asked second.
ARCHIVE_LAYOUT: tuple[tuple[dt.date, Spelling], ...] = (
    (dt.date.min, "numbered"),  # CE02SHBP/LJ01D/11-HYDBBA106, as published until the change
    (LAYOUT_CHANGED, "plain"),  # CE02SHBP/LJ01D/HYDBBA106, as ooipy has asked since March 2025
)


def spelling_on(day: dt.date) -> Spelling:
    """The spelling ``ARCHIVE_LAYOUT`` gives ``day``."""
    return [spelling for first, spelling in ARCHIVE_LAYOUT if first <= day][-1]


@dataclass(frozen=True)
class Site:
    #: ooipy's name, lower-cased (ooipy spells it ``Oregon_Shelf_Base_Seafloor``).
    name: str
    #: ooipy's node id, e.g. ``LJ01D``.
    node: str
    #: Archive folder of the array, e.g. ``CE02SHBP``.
    array: str
    #: Instrument folder as published until 2023-06-07, e.g. ``11-HYDBBA106`` (the plain spelling drops ``11-``).
    instrument: str

    @property
    def path(self) -> str:
        """``CE02SHBP/LJ01D/11-HYDBBA106``: the numbered folder, and the key of the site's outputs."""
        return self.folder("numbered")

    def folder(self, spelling: Spelling) -> str:
        """The site's path below the archive root in ``spelling``: ``numbered``
        (``CE02SHBP/LJ01D/11-HYDBBA106``) or ``plain`` (``CE02SHBP/LJ01D/HYDBBA106``)."""
        instrument = self.instrument if spelling == "numbered" else self.instrument.split("-", 1)[-1]
        return f"{self.array}/{self.node}/{instrument}"

    @property
    def paths(self) -> tuple[str, ...]:
        """Every spelling of the site's folder, in ``ARCHIVE_LAYOUT``'s order."""
        return tuple(dict.fromkeys(self.folder(spelling) for _, spelling in ARCHIVE_LAYOUT))

    def archive_paths(self, day: dt.date) -> tuple[str, ...]:
        """The folders to ask for ``day``: the one in use at that date first, then the other."""
        first = self.folder(spelling_on(day))
        return (first, *(p for p in self.paths if p != first))


#: ooipy's broadband table (see the module docstring for where it comes from).
SITES: tuple[Site, ...] = (
    Site("oregon_shelf_base_seafloor", "LJ01D", "CE02SHBP", "11-HYDBBA106"),
    Site("oregon_slope_base_seafloor", "LJ01A", "RS01SLBS", "09-HYDBBA102"),
    Site("oregon_slope_base_shallow", "PC01A", "RS01SBPS", "08-HYDBBA103"),
    Site("axial_base_shallow", "PC03A", "RS03AXPS", "08-HYDBBA303"),
    Site("oregon_offshore_base_seafloor", "LJ01C", "CE04OSBP", "11-HYDBBA105"),
    Site("axial_base_seafloor", "LJ03A", "RS03AXBS", "09-HYDBBA302"),
)


class UnknownSite(ValueError):
    """A site name that is not in ``SITES`` (the message lists them)."""


def _key(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def _by_key() -> dict[str, Site]:
    table: dict[str, Site] = {}
    for site in SITES:
        table[site.name] = site
        table[site.node.lower()] = site
    return table


def find_site(name: str) -> Site:
    """The site called ``name`` (ooipy's name in any case, ``-``/``_``/space
    alike, or its node id); ``UnknownSite`` with close matches otherwise."""
    table = _by_key()
    key = _key(name)
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.6)
    names = list(dict.fromkeys(table[c].name for c in close))  # a name and its node id are one site
    hint = f"did you mean {names[0]!r}? " if names else ""
    raise UnknownSite(
        f"unknown hydrophone site {name!r}; {hint}known sites: "
        + ", ".join(f"{s.name} ({s.node})" for s in SITES)
    )


def site_of_path(path: str) -> Site | None:
    """The site one of whose spellings (numbered or plain) is ``path``."""
    clean = path.strip().strip("/")
    return next((s for s in SITES if clean in s.paths), None)


def archive_paths(hydrophone: str, day: dt.date) -> tuple[str, ...]:
    """The archive folders to ask for ``day`` of ``hydrophone``, first choice
    first: a path that is either spelling of a site resolves by date like the
    site (``Site.archive_paths``); any other path is asked as it is."""
    site = site_of_path(hydrophone)
    return site.archive_paths(day) if site else (hydrophone.strip().strip("/"),)


def resolve_hydrophone(value: str) -> str:
    """A hydrophone path from ``--hydrophone``/``--site``: a path with ``/``
    is taken as it is; anything else must name a site (``UnknownSite``)."""
    if "/" in value:
        return value
    return find_site(value).path
