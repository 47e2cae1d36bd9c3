"""Settings of the music catalog builder: environment variables
``SPECFLEET_CATALOG_*`` (and ``SPECFLEET_SPOTIFY_API_URL`` /
``SPECFLEET_SPOTIFY_AUTH_URL``). The Spotify client id and secret are never
settings: they come only from ``SPOTIFY_CLIENT_ID`` / ``SPOTIFY_CLIENT_SECRET``."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CatalogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPECFLEET_CATALOG_", extra="ignore", populate_by_name=True)

    #: Public chart pages (kworb-style): the top-artists list and one songs
    #: page per artist. Tests point these at a local stand-in.
    chart_url: str = "https://kworb.net/spotify/"
    artists_page: str = "artists.html"
    artist_page: str = "artist/{artist_id}_songs.html"
    #: Spotify Web API; the client id/secret come only from the environment
    #: (SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET), never from settings.
    spotify_api_url: str = Field(
        default="https://api.spotify.com/v1",
        validation_alias=AliasChoices("SPECFLEET_SPOTIFY_API_URL", "spotify_api_url"),
    )
    spotify_auth_url: str = Field(
        default="https://accounts.spotify.com/api/token",
        validation_alias=AliasChoices("SPECFLEET_SPOTIFY_AUTH_URL", "spotify_auth_url"),
    )
    market: str = "US"
    #: GET /artists takes at most 50 ids per call.
    artists_per_call: int = 50
    #: Main artists whose rows are written (and marked done) per transaction.
    artists_per_commit: int = 10
    #: Seed for the deterministic tie-break in genre inference.
    seed: int = 42
    http_timeout_s: float = 20.0
    max_attempts: int = 5
    #: First back-off between retries of a failed call (doubles, with jitter).
    retry_wait_s: float = 1.0
    #: A 429 asking to wait longer than this fails instead of sleeping.
    max_retry_after_s: float = 300.0
