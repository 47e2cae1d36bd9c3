"""Errors of the catalog producer. Each message names the page, artist or
track it is about, so a failed build says what to look at."""

from __future__ import annotations

import re

#: Spotify ids are 22 base-62 characters.
SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")


class CatalogError(RuntimeError):
    """Base class: the build cannot go on with this input."""


class ChartPageError(CatalogError):
    """A chart page is missing, unreachable or not shaped as expected."""

    def __init__(self, url: str, problem: str, artist: str | None = None):
        self.url = url
        self.problem = problem
        self.artist = artist
        where = f"chart page of artist {artist} ({url})" if artist else f"chart page {url}"
        super().__init__(f"{where}: {problem}")


class SpotifyError(CatalogError):
    """The Spotify API refused, kept failing, or answered something invalid."""

    def __init__(self, what: str, problem: str, status: int | None = None):
        self.what = what
        self.problem = problem
        self.status = status
        super().__init__(f"Spotify {what}: {problem}")


class MissingCredentials(CatalogError):
    pass
