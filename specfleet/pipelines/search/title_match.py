"""Which search result is the track? The original's title matching.

The original search script (TFM ``main_scrap.py``) did not take the first
result: it scanned the results page (title, channel name, views) and took the
first result whose title *matched*, writing ``NOTFOUND`` when none did.
Its rules, reproduced here as strictness ``original``:

* strings are lower-cased, accents folded, ``, ; & [ ] - '`` turned into
  spaces and split into sets of words: the title's (``T``), the channel's
  (``C``), the query's (``Q`` = track words + artist words), the track's
  (``K``) and the artist's (``A``);
* a result matches when, checked in this order (an ``elif`` chain):

  1. ``T`` holds every word of ``Q``;
  2. else, when ``|C ∩ Q| == |A|`` (the channel carries the artist), it
     matches if ``|T ∩ K| >= |K| - 1`` and rule 3 is *not* tried;
  3. else ``|T ∩ Q| == |Q| - 1`` (exactly one query word missing);
  4. finally, for track names of more than 3 words,
     ``|T ∩ K| >= |Q| - 2``.

  Rules 2 and 4 are reproduced exactly as the original computed them (rule 2
  compares the channel's overlap with the *whole* query against the artist's
  word count; rule 4 compares the title's track words against the *query*
  size minus two), because that is what decided which video was downloaded.

Other strictness levels: ``strict`` (rule 1 only: every query word in the
title) and ``first`` (the first result, unchecked: specfleet's behaviour
before this module).

Accent folding: the original replaced 13 letters (``à á ä é ë è í ï ò ó ö ú
ü``). The default fold, ``unidecode``, transliterates every character to
ASCII (``ñ``, ``ç``, ``â``, the curly apostrophe ``’``, other scripts),
applied the same way to both sides; ``original`` keeps the 13-letter table. They differ
only for text holding other non-ASCII characters.

Deliberate difference: a query with no words at all (only punctuation)
matches nothing here; the original's rule 1 matched its first result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from unidecode import unidecode

Strictness = Literal["original", "strict", "first"]
Fold = Literal["unidecode", "original"]
STRICTNESS: tuple[str, ...] = ("original", "strict", "first")
FOLDS: tuple[str, ...] = ("unidecode", "original")

#: The original's accent table (applied after lower-casing).
ORIGINAL_FOLD = str.maketrans({
    "à": "a", "á": "a", "ä": "a", "é": "e", "ë": "e", "è": "e", "í": "i", "ï": "i",
    "ò": "o", "ó": "o", "ö": "o", "ú": "u", "ü": "u",
})
#: Characters the original turned into spaces.
SEPARATORS = str.maketrans({c: " " for c in ",;&[]-'"})

#: Why a result matched, by rule (shown in the status reason).
RULES = {
    "all_words": "title holds every query word",
    "channel_artist": "channel is the artist and the title holds the track name (one word may miss)",
    "one_missing": "title misses one query word",
    "long_track": "long track name: title misses at most two query words",
    "first": "first result (title not checked)",
}


def words(text: str, *, fold: Fold = "unidecode") -> frozenset[str]:
    """The word set of ``text`` after the original's cleaning."""
    text = text.lower()
    # unidecode first, so that curly quotes and CJK brackets become the
    # ASCII separators the original replaced; lower again (it capitalises
    # some transliterations).
    text = unidecode(text).lower() if fold == "unidecode" else text.translate(ORIGINAL_FOLD)
    return frozenset(text.translate(SEPARATORS).split())


@dataclass(frozen=True)
class TrackQuery:
    """What was searched: the track name and the artist name. Without a
    split (a bare ``query``), the whole text is the track and the artist
    is empty."""

    track: str
    artist: str = ""

    @property
    def text(self) -> str:
        """The search text, as the original built it: track + " " + artist."""
        return f"{self.track} {self.artist}".strip()


def match_rule(
    query: TrackQuery, title: str, channel: str = "", *, strictness: Strictness = "original", fold: Fold = "unidecode"
) -> str | None:
    """The rule under which a result with ``title`` and ``channel`` matches
    ``query`` (a key of ``RULES``), or ``None``."""
    if strictness == "first":
        return "first"
    t = words(title, fold=fold)
    q = words(query.text, fold=fold)
    if not q:
        return None
    if len(t & q) == len(q):
        return "all_words"
    if strictness == "strict":
        return None
    if strictness != "original":
        raise ValueError(f"strictness must be one of {', '.join(STRICTNESS)}, got {strictness!r}")
    k = words(query.track, fold=fold)
    a = words(query.artist, fold=fold)
    c = words(channel, fold=fold)
    if len(c & q) == len(a):
        if len(t & k) >= len(k) - 1:
            return "channel_artist"
    elif len(t & q) == len(q) - 1:
        return "one_missing"
    if len(k) > 3 and len(t & k) >= len(q) - 2:
        return "long_track"
    return None


def title_score(query: TrackQuery, title: str, *, fold: Fold = "unidecode") -> float:
    """How well ``title`` covers the query: the share of the query's words
    it holds (0..1), kept with each ``track_url`` row beside the rule that
    chose it, so a person can sort the weakest matches first."""
    q = words(query.text, fold=fold)
    return round(len(words(title, fold=fold) & q) / len(q), 3) if q else 0.0


class Candidate(Protocol):
    """One result as the matcher sees it (``SearchResult`` is one)."""

    title: str
    channel: str


def first_match(
    query: TrackQuery, results: Sequence[Candidate], *, strictness: Strictness = "original", fold: Fold = "unidecode"
) -> tuple[int, str] | None:
    """``(index, rule)`` of the first result that matches, or ``None``."""
    for i, result in enumerate(results):
        rule = match_rule(query, result.title, result.channel, strictness=strictness, fold=fold)
        if rule is not None:
            return i, rule
    return None
