-- The cluster's strategy and its epoch, kept where every booking writes.
--
-- One row. Every strategy switch and every reset bumps `version` (the epoch).
-- A booking's write takes a share lock on this row and checks that the epoch
-- it started in is still the current one, in the same transaction as the
-- write; a switch's UPDATE of this row waits for those writes to commit and
-- then makes every older epoch stale. So a booking that started under the old
-- strategy either commits before the switch or not at all.
CREATE TABLE strategy_epoch (
    id         BOOLEAN     PRIMARY KEY DEFAULT TRUE CHECK (id),
    name       TEXT        NOT NULL,
    version    BIGINT      NOT NULL CHECK (version > 0),
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
