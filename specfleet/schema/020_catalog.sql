-- The music catalog (issue 9): chart artists and tracks + Spotify details,
-- the source of queries.csv for the search pipeline.
--
-- No FOREIGN KEY clauses on the relation tables: a per-row RI trigger more
-- than doubled the cost of every bulk insert. The build writes artists and
-- tracks before relations in the same transaction and checks for dangling
-- references with one set-based query at the end (store.dangling_references).

-- Every artist seen: chart ("main") artists, featuring artists, related artists.
CREATE TABLE master_artist (
    artist_id   text PRIMARY KEY,
    artist_name text NOT NULL,
    is_main     boolean NOT NULL DEFAULT false
);

-- streams = -1 and peak_date = album release date for tracks that come from
-- the API (top tracks of non-chart artists) rather than from a chart page.
CREATE TABLE master_track (
    track_id   text PRIMARY KEY,
    track_name text NOT NULL,
    peak_date  date,
    streams    bigint NOT NULL DEFAULT -1
);

-- Who plays on which track: role 'main' (the track is theirs) or 'featured'.
CREATE TABLE rel_artist_track (
    artist_id text NOT NULL,
    track_id  text NOT NULL,
    role      text NOT NULL CHECK (role IN ('main', 'featured')),
    PRIMARY KEY (artist_id, track_id)
);

-- Spotify's related artists of each catalog artist, one row per related
-- artist and genre of theirs; genre '' when Spotify lists none for them.
CREATE TABLE rel_artist_artist (
    query      text NOT NULL,
    rel_art    text NOT NULL,
    genre      text NOT NULL DEFAULT '',
    popularity integer NOT NULL,
    PRIMARY KEY (query, rel_art, genre)
);

-- Genres of catalog artists (those with tracks): from Spotify, or inferred
-- from related artists by majority vote, or 'undefined'.
CREATE TABLE master_genre (
    artist_id text NOT NULL,
    genre     text NOT NULL,
    source    text NOT NULL CHECK (source IN ('spotify', 'inferred', 'undefined')),
    PRIMARY KEY (artist_id, genre)
);

-- Build progress: a main artist is listed once all its rows are committed,
-- so a crashed build resumes after the last committed batch.
CREATE TABLE catalog_progress (
    artist_id text PRIMARY KEY,
    tracks    integer NOT NULL,
    done_at   timestamptz NOT NULL DEFAULT now()
);
