"""Genre inference for artists Spotify gives no genre: a majority vote over
their related artists' genres.

Each related artist votes once for each of its genres. The genre with the
most votes wins; a tie is broken by a choice seeded with ``(seed, artist)``,
so the same inputs always give the same genre, whatever the order they
came in. No votes at all gives ``UNDEFINED``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

UNDEFINED = "undefined"


def vote(related_genres: Iterable[Iterable[str]], *, seed: int = 42, key: str = "") -> str:
    """The majority genre of one artist's related artists.

    ``related_genres``: one genre list per related artist (repeats within a
    list count once; empty lists abstain). ``key`` (the artist id) makes
    tie-breaks differ between artists while staying reproducible.
    """
    counts: Counter[str] = Counter()
    for genres in related_genres:
        counts.update({g for g in genres if g})
    if not counts:
        return UNDEFINED
    top = max(counts.values())
    tied = sorted(g for g, n in counts.items() if n == top)
    if len(tied) == 1:
        return tied[0]
    # str seeds are hashed with SHA-512 by random.Random: stable across runs
    return random.Random(f"{seed}:{key}").choice(tied)


def infer_genres(artists: Mapping[str, Sequence[Sequence[str]]], *, seed: int = 42) -> dict[str, str]:
    """``vote`` for each artist id -> its related artists' genre lists."""
    return {artist_id: vote(related, seed=seed, key=artist_id) for artist_id, related in artists.items()}
