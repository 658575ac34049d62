-- Holds: a seat kept for one customer while they pay, until it expires.
--
-- A hold is a lease. Taking one is the contended step, run under the
-- cluster's strategy like a booking, and it writes both the hold row and the
-- seat's `held_*` columns in one statement. Whether a hold is still live is
-- decided by Postgres' clock only (`expires_at > now()`): on the seat when a
-- strategy reads it, and in the confirm's own transaction, which locks the
-- hold and its seat before it asks. A seat whose hold expired is free at
-- once; the sweep (src/holds/sweep.rs) only tidies the rows and tells the
-- seat map.
CREATE TABLE holds (
    id               BIGSERIAL PRIMARY KEY,
    event_id         BIGINT      NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seat_id          BIGINT      NOT NULL REFERENCES seats (id) ON DELETE CASCADE,
    customer_id      TEXT        NOT NULL,
    -- held | confirmed | released | expired
    status           TEXT        NOT NULL DEFAULT 'held',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ NOT NULL,
    -- When the hold stopped being `held`: confirmed, released or swept.
    ended_at         TIMESTAMPTZ,
    -- The booking a confirm made from this hold.
    booking_id       BIGINT      REFERENCES bookings (id) ON DELETE SET NULL,
    locking_strategy TEXT        NOT NULL,
    instance_id      TEXT        NOT NULL,
    fencing_token    BIGINT
);

-- The sweep's work list and the per-customer cap both read live holds only.
CREATE INDEX holds_live_expiry ON holds (expires_at) WHERE status = 'held';
CREATE INDEX holds_live_customer ON holds (customer_id) WHERE status = 'held';
CREATE INDEX holds_seat ON holds (seat_id);

-- The seat's newest hold. `hold_count` counts the holds that were live on
-- the seat when this one was written, itself included, re-read after
-- waiting for the row like `holders`: a second live hold on one seat (which
-- `none` and `mutex` let through) is told so at once.
ALTER TABLE seats
    ADD COLUMN hold_id    BIGINT,
    ADD COLUMN held_by    TEXT,
    ADD COLUMN held_until TIMESTAMPTZ,
    ADD COLUMN hold_count INTEGER NOT NULL DEFAULT 0;
