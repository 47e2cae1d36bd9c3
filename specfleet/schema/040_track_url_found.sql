-- Search answers as the original kept them (issue 16): a search that found no
-- result whose title matches the track is stored too, with href 'NOTFOUND'
-- and is_found false, so the catalog knows the track was searched.
--
-- queried:     the query text searched, lower-cased (the original's
--              results.queried: track_name || ' ' || artist_name, lowered);
--              NULL for rows written before this migration.
-- searched_at: the status record's date; the newest search wins (the status
--              writer derives these rows from status_search, see
--              specfleet/pipelines/music/track_url.py).
ALTER TABLE track_url
    ADD COLUMN is_found    boolean NOT NULL DEFAULT true,
    ADD COLUMN queried     text,
    ADD COLUMN searched_at timestamp;

ALTER TABLE track_url
    ADD CONSTRAINT track_url_notfound_is_not_found CHECK ((href = 'NOTFOUND') = (NOT is_found));
