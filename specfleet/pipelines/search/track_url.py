"""``track_url`` rows derived from ``status_search`` messages.

Search workers hold no database credentials (issue 17): the status writer
upserts ``track_url`` from the status record it already receives
(``instance_id::stat::track_id::yt_url::views::date``), in the same
transaction as the status row. This module is that derivation; it imports
nothing heavier than psycopg2 so the status-writer Lambda stays small.

Columns (migration 040):

* ``href``        the video URL, or ``NOTFOUND`` (the original's value) when no
  result's title matched;
* ``is_found``    false for NOTFOUND (the original's ``is_found = 'f'``);
* ``views``       the result's view count (-1 for NOTFOUND or unknown);
* ``queried``     the query text that was searched, lower-cased, as the
  original's ``results.queried`` column held it (``track_name + " " +
  artist_name``, lowered). It travels as the ``query`` message attribute;
  NULL when a message has none;
* ``searched_at`` the status record's ``date`` (when the worker searched);
* ``match_rule``  the title rule that chose the result (``title_match.RULES``,
  or ``override`` from the overrides CSV), and ``match_score`` the share of
  the query's words its title holds (migration 070; the ``match_rule`` and
  ``match_score`` message attributes). NULL for NOTFOUND and older rows.

Ordering: the newest search wins, by ``searched_at``. A redelivered or late
older message never replaces a newer row, so a found URL is never
overwritten by an older NOTFOUND (nor by an older URL). On equal dates a
found URL beats NOTFOUND. Within one batch the same rule picks one record
per track before the single multi-row upsert. Only answers are derived: stat
1 with a URL (found) and stat 2 with ``NOTFOUND``; failures (0, -1) leave
``track_url`` alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg2.extensions
import psycopg2.extras

from ...status import InboundRecord, Stat, StatusRecord
from .models import SearchStatus

log = logging.getLogger("specfleet.music.track_url")

NOTFOUND = "NOTFOUND"
#: Message attribute carrying the searched query text.
ATTR_QUERY = "query"
#: Message attributes carrying the rule that chose the result and its title score.
ATTR_RULE = "match_rule"
ATTR_SCORE = "match_score"
MAX_QUERY = 500

UPSERT_SQL = """
INSERT INTO track_url AS t (track_id, href, views, is_found, queried, searched_at, match_rule, match_score)
VALUES %s
ON CONFLICT (track_id) DO UPDATE SET
    href = EXCLUDED.href, views = EXCLUDED.views, is_found = EXCLUDED.is_found,
    queried = EXCLUDED.queried, searched_at = EXCLUDED.searched_at,
    match_rule = EXCLUDED.match_rule, match_score = EXCLUDED.match_score, updated_at = now()
WHERE t.searched_at IS NULL
   OR t.searched_at < EXCLUDED.searched_at
   OR (t.searched_at = EXCLUDED.searched_at AND NOT t.is_found AND EXCLUDED.is_found)
"""


def query_attribute(query: str) -> dict[str, str]:
    """The ``query`` message attribute for a search status. Control
    characters are dropped: SQS refuses most of them in attributes."""
    text = "".join(ch for ch in query if ch >= " " or ch in "\t\n\r")[:MAX_QUERY]
    return {ATTR_QUERY: text} if text else {}


def match_attributes(rule: str, score: float) -> dict[str, str]:
    """The ``match_rule`` / ``match_score`` message attributes of an answer."""
    return {ATTR_RULE: rule[:40], ATTR_SCORE: f"{score:.3f}"}


def _score(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _row(status: SearchStatus, attributes: dict[str, str]) -> tuple[Any, ...] | None:
    """The ``track_url`` row a search answer stands for, or None."""
    found = status.stat == Stat.DONE and status.yt_url != NOTFOUND
    if not found and not (status.stat == Stat.SKIPPED and status.yt_url == NOTFOUND):
        return None
    if found and not status.yt_url.startswith(("https://", "http://")):
        # The worker checked the URL against the host policy; anything else
        # is not a search answer (kept in status_search, not derived).
        log.warning("status_search for %s has yt_url %r: no track_url row", status.track_id, status.yt_url[:80])
        return None
    query = attributes.get(ATTR_QUERY, "").replace("\x00", "")[:MAX_QUERY].lower() or None
    views = status.views if found else -1
    rule = attributes.get(ATTR_RULE, "")[:40] or None
    return (status.track_id, status.yt_url, views, found, query, status.date, rule, _score(attributes.get(ATTR_SCORE)))


def upsert_track_urls(
    cur: psycopg2.extensions.cursor, records: Sequence[tuple[InboundRecord, StatusRecord]]
) -> int:
    """Derive and upsert the ``track_url`` rows of newly stored search
    statuses (the status writer's hook). Returns rows offered to the upsert."""
    best: dict[str, tuple[Any, ...]] = {}
    for rec, status in records:
        if not isinstance(status, SearchStatus):
            continue
        row = _row(status, rec.attributes)
        if row is None:
            continue
        held = best.get(row[0])
        # (date, is_found): newer first; on a tie a found URL wins.
        if held is None or (row[5], row[3]) > (held[5], held[3]):
            best[row[0]] = row
    if best:
        psycopg2.extras.execute_values(cur, UPSERT_SQL, sorted(best.values()), page_size=1000)
    return len(best)
