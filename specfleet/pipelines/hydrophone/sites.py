"""OOI broadband hydrophone sites by the names ooipy users know them.

ooipy (https://github.com/Ocean-Data-Lab/ooipy) takes a node either as its
id (``LJ01D``) or as a name (``Oregon_Shelf_Base_Seafloor``) and builds the
raw-data archive folder ``{array}/{node}/{instrument}/YYYY/MM/DD/`` from a
fixed table in ``src/ooipy/request/hydrophone_request.py``
(``__get_mseed_urls``). ``SITES`` is that table, copied from ooipy at
commit ff1c5f8 (2024-10-30), whose instrument folders (``11-HYDBBA106``)
match the archive SPEC.md section 1 and the original tool use.

In March 2025 (ooipy commit 21ef493, "updated rest of bb hydrophone urls")
ooipy dropped the numeric prefix (``CE02SHBP/LJ01D/HYDBBA106``) after the
archive renamed its folders; ``Site.path_2025`` holds that spelling. A day
that 404s under a site's classic path is hinted to try it
(``ListingError``'s message names it).

Only the broadband (64 kHz) nodes are here: ooipy's low-frequency names
(``Axial_Base``, ``Central_Caldera``, ``Eastern_Caldera``...) come from
IRIS, not from this archive.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    #: ooipy's name, lower-cased (ooipy spells it ``Oregon_Shelf_Base_Seafloor``).
    name: str
    #: ooipy's node id, e.g. ``LJ01D``.
    node: str
    #: Archive folder of the array, e.g. ``CE02SHBP``.
    array: str
    #: Instrument folder as ooipy had it until 2025, e.g. ``11-HYDBBA106``.
    instrument: str

    @property
    def path(self) -> str:
        """``CE02SHBP/LJ01D/11-HYDBBA106``: the hydrophone path below the archive root."""
        return f"{self.array}/{self.node}/{self.instrument}"

    @property
    def path_2025(self) -> str:
        """The archive's spelling since 2025: no numeric prefix (``CE02SHBP/LJ01D/HYDBBA106``)."""
        return f"{self.array}/{self.node}/{self.instrument.split('-', 1)[-1]}"


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
    """The site whose archive path (classic or 2025 spelling) is ``path``."""
    clean = path.strip().strip("/")
    return next((s for s in SITES if clean in (s.path, s.path_2025)), None)


def resolve_hydrophone(value: str) -> str:
    """A hydrophone path from ``--hydrophone``/``--site``: a path with ``/``
    is taken as it is; anything else must name a site (``UnknownSite``)."""
    if "/" in value:
        return value
    return find_site(value).path
