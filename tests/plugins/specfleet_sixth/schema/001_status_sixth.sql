-- The sixth pipeline's status table: columns in wire order, plus the three
-- every status table has (msg_key, reason, received_at).
CREATE TABLE status_sixth (
    id          bigserial PRIMARY KEY,
    msg_key     text NOT NULL UNIQUE,
    instance_id text NOT NULL,
    stat        smallint NOT NULL,
    text        text NOT NULL,
    words       integer NOT NULL,
    date        timestamp NOT NULL,
    reason      text,
    received_at timestamptz NOT NULL DEFAULT now()
);
