-- Match quality (issue 24): each track_url row keeps the rule that chose its
-- result (title_match.RULES, or 'override' from the overrides CSV) and the
-- share of the query's words the result's title holds, so the weakest
-- matches can be reviewed first. NULL for NOTFOUND answers without an
-- override and for rows written before this migration.
ALTER TABLE track_url
    ADD COLUMN match_rule  text,
    ADD COLUMN match_score real CHECK (match_score BETWEEN 0 AND 1);
