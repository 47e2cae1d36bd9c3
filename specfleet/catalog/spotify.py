"""A small Spotify Web API client for the catalog build.

* Client-credentials token from ``SPOTIFY_CLIENT_ID`` / ``SPOTIFY_CLIENT_SECRET``
  (environment only), refreshed before it expires and once on a 401.
* Retries (tenacity) on transport errors, 5xx and 429; a 429 waits exactly
  its ``Retry-After`` seconds (capped by ``catalog_max_retry_after_s``).
* ``GET /artists?ids=`` is batched (``catalog_artists_per_call`` ids per call).
* Every answer is validated by a pydantic model; a bad answer raises
  ``SpotifyError`` naming the artist it was about.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import date
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, Field, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from ..outbound import HostPolicy, OutboundRefused, guarded_client
from .errors import MissingCredentials, SpotifyError
from .settings import CatalogSettings

ID_PATTERN = r"^[0-9A-Za-z]{22}$"
M = TypeVar("M", bound=BaseModel)


# --- answer models -------------------------------------------------------------
class Token(BaseModel):
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int = Field(gt=0)


class Artist(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    genres: list[str] = []
    popularity: int = Field(ge=0, le=100)


class SeveralArtists(BaseModel):
    #: Spotify answers ``null`` in place of an unknown id.
    artists: list[Artist | None]


class SimpleArtist(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)


class Album(BaseModel):
    release_date: str = Field(min_length=4)
    release_date_precision: Literal["year", "month", "day"] = "day"

    def release(self) -> date:
        """The release date; a year or month precision maps to its first day."""
        parts = self.release_date.split("-")
        year, month, day = int(parts[0]), 1, 1
        if self.release_date_precision in ("month", "day") and len(parts) > 1:
            month = int(parts[1])
        if self.release_date_precision == "day" and len(parts) > 2:
            day = int(parts[2])
        return date(year, month, day)


class Track(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    artists: list[SimpleArtist] = Field(min_length=1)
    album: Album


class TopTracks(BaseModel):
    tracks: list[Track]


class RelatedArtists(BaseModel):
    artists: list[Artist]


# --- retry plumbing --------------------------------------------------------------
class _Retryable(Exception):
    def __init__(self, problem: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after
        self.status = status


class _Unauthorized(Exception):
    pass


def credentials_from_env() -> tuple[str, str]:
    cid, secret = os.environ.get("SPOTIFY_CLIENT_ID"), os.environ.get("SPOTIFY_CLIENT_SECRET")
    if not cid or not secret:
        raise MissingCredentials("set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (a Spotify app's client credentials)")
    return cid, secret


class SpotifyClient:
    def __init__(self, settings: CatalogSettings, credentials: tuple[str, str] | None = None):
        self.settings = settings
        self.api = settings.spotify_api_url.rstrip("/")
        self._credentials = credentials or credentials_from_env()
        # Only the configured API and token hosts, redirects included (specfleet.outbound).
        self._http = guarded_client(
            HostPolicy.for_urls([settings.spotify_api_url, settings.spotify_auth_url], what="Spotify API"),
            connect_timeout_s=settings.http_timeout_s,
            read_timeout_s=settings.http_timeout_s,
        )
        self._token: str | None = None
        self._token_expires = 0.0
        #: Calls made and 429s honoured (for logs and tests).
        self.calls = 0
        self.throttled = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SpotifyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, _Retryable) and err.retry_after is not None:
            return err.retry_after
        backoff = wait_exponential_jitter(initial=self.settings.retry_wait_s, max=30)
        return float(backoff(state))

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=stop_after_attempt(self.settings.max_attempts),
            reraise=True,
        )

    def _classify(self, resp: httpx.Response, what: str) -> None:
        """Raise for a non-200 answer: retryable, auth, or final."""
        if resp.status_code == 200:
            return
        if resp.status_code == 429:
            raw = resp.headers.get("Retry-After", "1")
            try:
                retry_after = float(raw)
            except ValueError:
                raise SpotifyError(what, f"429 with unreadable Retry-After {raw!r}", 429) from None
            if retry_after > self.settings.max_retry_after_s:
                raise SpotifyError(what, f"rate limited for {retry_after:.0f}s (more than we wait)", 429)
            self.throttled += 1
            raise _Retryable("HTTP 429", retry_after=retry_after, status=429)
        if resp.status_code >= 500:
            raise _Retryable(f"HTTP {resp.status_code}", status=resp.status_code)
        if resp.status_code == 401:
            raise _Unauthorized()
        raise SpotifyError(what, f"HTTP {resp.status_code}: {resp.text[:200]}", resp.status_code)

    def _send(self, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        try:
            for attempt in self._retrying():
                with attempt:
                    self.calls += 1
                    try:
                        resp = self._http.request(method, url, **kw)
                    except httpx.TransportError as err:
                        raise _Retryable(f"network error: {err}") from err
                    except OutboundRefused as err:  # a redirect off the API host: never retried
                        raise SpotifyError(what, str(err)) from None
                    self._classify(resp, what)
                    return resp
        except _Retryable as err:
            raise SpotifyError(
                what, f"{err.problem} after {self.settings.max_attempts} attempts", err.status
            ) from err
        raise AssertionError("unreachable")

    def _token_header(self, force: bool = False) -> dict[str, str]:
        if force or self._token is None or time.monotonic() > self._token_expires:
            try:
                resp = self._send(
                    "POST", self.settings.spotify_auth_url, "token", data={"grant_type": "client_credentials"},
                    auth=self._credentials,
                )
            except _Unauthorized:
                raise SpotifyError("token", "client credentials refused (check SPOTIFY_CLIENT_ID/SECRET)", 401) from None
            token = self._parse(resp, Token, "token")
            self._token = token.access_token
            # renew a minute early so a long build never sends an expired token
            self._token_expires = time.monotonic() + max(token.expires_in - 60, 1)
        return {"Authorization": f"Bearer {self._token}"}

    def _parse(self, resp: httpx.Response, model: type[M], what: str) -> M:
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise SpotifyError(what, f"invalid answer at {loc or 'top level'}: {first['msg']}") from None

    def get(self, path: str, model: type[M], what: str, params: dict[str, str] | None = None) -> M:
        url = f"{self.api}/{path.lstrip('/')}"
        try:
            resp = self._send("GET", url, what, params=params, headers=self._token_header())
        except _Unauthorized:
            # the token may have been revoked or expired early: renew once
            try:
                resp = self._send("GET", url, what, params=params, headers=self._token_header(force=True))
            except _Unauthorized:
                raise SpotifyError(what, "HTTP 401 with a fresh token", 401) from None
        return self._parse(resp, model, what)

    # --- endpoints ---------------------------------------------------------------
    def artists(self, ids: Iterable[str], names: dict[str, str] | None = None) -> dict[str, Artist]:
        """Details of many artists, ``catalog_artists_per_call`` per call."""
        ids = list(dict.fromkeys(ids))
        names = names or {}
        size = self.settings.artists_per_call
        found: dict[str, Artist] = {}
        for start in range(0, len(ids), size):
            chunk = ids[start:start + size]
            what = f"artists {chunk[0]}..{chunk[-1]} ({len(chunk)} ids)"
            answer = self.get("artists", SeveralArtists, what, params={"ids": ",".join(chunk)})
            if len(answer.artists) != len(chunk):
                raise SpotifyError(what, f"asked for {len(chunk)} artists, got {len(answer.artists)}")
            for artist_id, artist in zip(chunk, answer.artists, strict=True):
                label = f"artist {artist_id}" + (f" ({names[artist_id]})" if artist_id in names else "")
                if artist is None:
                    raise SpotifyError(label, "unknown artist id")
                if artist.id != artist_id:
                    raise SpotifyError(label, f"answer is about artist {artist.id} instead")
                found[artist_id] = artist
        return found

    def top_tracks(self, artist_id: str, name: str = "") -> list[Track]:
        what = f"top tracks of artist {artist_id}" + (f" ({name})" if name else "")
        return self.get(
            f"artists/{artist_id}/top-tracks", TopTracks, what, params={"market": self.settings.market}
        ).tracks

    def related_artists(self, artist_id: str, name: str = "") -> list[Artist]:
        what = f"related artists of artist {artist_id}" + (f" ({name})" if name else "")
        return self.get(f"artists/{artist_id}/related-artists", RelatedArtists, what).artists
