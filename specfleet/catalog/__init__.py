"""The music catalog producer: public chart pages + Spotify Web API ->
Postgres catalog tables -> genre inference -> ``queries.csv`` (input of the
search pipeline) and a Neo4j graph export.

Modules: ``charts`` (scraper), ``spotify`` (API client), ``store`` (tables),
``genre`` (inference), ``build`` (orchestration), ``queries``, ``graph``,
``fake_sources`` (local stand-ins for tests and trying it out).
"""

from .errors import CatalogError, ChartPageError, SpotifyError

__all__ = ["CatalogError", "ChartPageError", "SpotifyError"]
