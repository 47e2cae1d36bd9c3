"""The original's title rules (SPEC.md "Music search"), case by case.

Each expected outcome is worked out by hand from the rules as the original
script evaluated them (word sets T title, C channel, Q query, K track,
A artist; rule 1 all of Q in T; elif |C∩Q| == |A|: |T∩K| >= |K|-1; elif
|T∩Q| == |Q|-1; then |K| > 3 and |T∩K| >= |Q|-2), written next to each case.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specfleet.pipelines.search.backends import SearchResult
from specfleet.pipelines.search.title_match import RULES, TrackQuery, first_match, match_rule, words

ATW = TrackQuery("Around the World", "Daft Punk")  # Q 5 words, K 3, A 2


def test_words_cleaning_like_the_original():
    # lower-case, accents folded, , ; & [ ] - ' become spaces; parentheses stay
    assert words("Beyoncé, JAY-Z & [Live]; Don't (Remix)") == {"beyonce", "jay", "z", "live", "don", "t", "(remix)"}
    assert words("Canción  ÉXITO", fold="original") == {"cancion", "exito"}
    # the original's table has no ñ; unidecode folds it (and any script)
    assert words("Niño", fold="original") == {"niño"}
    assert words("Niño") == {"nino"}
    assert words("Don’t Stop") == {"don", "t", "stop"}  # the curly apostrophe folds to the separator '
    assert words("紅蓮華 LiSA") == {"hong", "lian", "hua", "lisa"}  # transliterated, same on both sides


@pytest.mark.parametrize(
    ("title", "channel", "rule"),
    [
        # rule 1: T holds all 5 query words
        ("Daft Punk - Around The World (Official Music Video)", "Daft Punk", "all_words"),
        # rule 2: C∩Q = {daft, punk} = |A| = 2, T∩K = 3 >= 2
        ("Around the World (Official Audio)", "Daft Punk - Topic", "channel_artist"),
        # rule 2 with one track word missing: T∩K = {around, world} = 2 >= 2
        ("Around World", "Daft Punk", "channel_artist"),
        # rule 3: C∩Q = 0 != 2; T∩Q = {daft, punk, around, world} = 4 = 5-1
        ("Daft Punk Around World live 1997", "Concert Archive", "one_missing"),
        # a cover: T∩Q = 3 (two missing), C∩Q = 0 != 2, |K| = 3 is not > 3
        ("Around the World - Cover by Jane Doe", "Jane Doe", None),
        # another song of the artist: rule 2 branch (C∩Q = 2) fails, T∩K = 0 < 2
        ("Daft Punk - One More Time", "Daft Punk", None),
        # a reaction video without the artist's name: T∩Q = 3
        ("FIRST TIME reacting to Around the World!!", "ReactTV", None),
        # ... but with it every query word is in the title: the original took it
        ("REACTION: Daft Punk - Around the World", "ReactTV", "all_words"),
    ],
)
def test_original_rules(title, channel, rule):
    assert match_rule(ATW, title, channel) == rule
    if rule is not None:
        assert rule in RULES


def test_long_track_rule_as_the_original_computed_it():
    q = TrackQuery("Nothing Else Matters Remastered Version", "Metallica")  # K 5 > 3, Q 6
    # T∩Q = 4 != 5, C∩Q = 0 != 1; rule 4: T∩K = 4 >= Q-2 = 4
    assert match_rule(q, "Nothing Else Matters Remastered", "Rock Hits") == "long_track"
    # "(Remastered)" keeps its parentheses (not a separator): T∩K = 3 < 4
    assert match_rule(q, "Nothing Else Matters (Remastered)", "Rock Hits") is None
    # a 2-word artist raises the bar to Q-2 = 5 = every track word
    q2 = TrackQuery("Nothing Else Matters Remastered Version", "Metallica Band")
    assert match_rule(q2, "Nothing Else Matters Remastered", "Rock Hits") is None
    assert match_rule(q2, "Nothing Else Matters Remastered Version", "Rock Hits") == "long_track"


def test_fold_changes_the_outcome_only_beyond_the_original_table():
    q = TrackQuery("Niño Mañana", "Xavi Yáñez")
    title = "Xavi Yanez - Nino Manana"
    assert match_rule(q, title, "Other", fold="unidecode") == "all_words"
    # original table: ñ stays, so T∩Q = {xavi} = 1; C∩Q = 0 != 2; |K| = 2
    assert match_rule(q, title, "Other", fold="original") is None
    q_table = TrackQuery("Canción Última", "José Gómez")  # only letters of the table
    t_table = "Jose Gomez - Cancion Ultima"
    assert match_rule(q_table, t_table, fold="original") == match_rule(q_table, t_table) == "all_words"


def test_strictness_levels():
    one_missing = ("Daft Punk Around World live 1997", "Concert Archive")
    assert match_rule(ATW, *one_missing, strictness="strict") is None
    assert match_rule(ATW, "Daft Punk - Around the World", "x", strictness="strict") == "all_words"
    assert match_rule(ATW, "Completely unrelated", "x", strictness="first") == "first"
    with pytest.raises(ValueError, match="strictness must be one of"):
        match_rule(ATW, *one_missing, strictness="loose")  # type: ignore[arg-type]


def test_query_without_split_and_empty_query():
    bare = TrackQuery("around the world daft punk")  # the whole query is the track, A empty
    # |C∩Q| = 0 = |A| -> rule 2 branch: T∩K = 4 >= 5-1
    assert match_rule(bare, "Daft Punk Around World", "Someone") == "channel_artist"
    # The split matters: without it K is the whole 5-word query, so the
    # long-track rule (|K| > 3, T∩K = 3 >= Q-2 = 3) takes a cover that the
    # split query refuses (see test_original_rules).
    assert match_rule(bare, "Around the World - Cover", "Jane Doe") == "long_track"
    assert match_rule(ATW, "Around the World - Cover", "Jane Doe") is None
    assert match_rule(TrackQuery("--- ;;;"), "anything", "anyone") is None


def test_first_match_skips_non_matching_results():
    results = [
        SearchResult(href="https://x/1", title="Around the World - Cover by Jane Doe", channel="Jane Doe"),
        SearchResult(href="https://x/2", title="Daft Punk - One More Time", channel="Daft Punk"),
        SearchResult(href="https://x/3", title="Daft Punk - Around the World", channel="Daft Punk"),
        SearchResult(href="https://x/4", title="Around the World (Daft Punk)", channel="Daft Punk"),
    ]
    assert first_match(ATW, results) == (2, "all_words")
    assert first_match(ATW, results[:2]) is None
    assert first_match(ATW, results[:2], strictness="first") == (0, "first")
    assert first_match(ATW, []) is None


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéñü", min_size=1, max_size=8)


@given(track=st.lists(WORD, min_size=1, max_size=6), artist=st.lists(WORD, min_size=1, max_size=3),
       noise=st.lists(WORD, max_size=4))
def test_official_title_always_matches_and_case_punctuation_do_not_matter(track, artist, noise):
    q = TrackQuery(" ".join(track), " ".join(artist))
    title = f"{' & '.join(artist).upper()} - [{' '.join(track).title()}] {' '.join(noise)}"
    assert match_rule(q, title, "") == "all_words"
    assert match_rule(q, title, "", strictness="strict") == "all_words"
