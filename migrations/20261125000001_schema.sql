-- The booking lab's schema: events, their seats, and every booking attempt.

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL,
    venue       TEXT        NOT NULL,
    event_date  TIMESTAMPTZ NOT NULL,
    total_seats INTEGER     NOT NULL CHECK (total_seats >= 0)
);

CREATE TABLE seats (
    id            BIGSERIAL PRIMARY KEY,
    event_id      BIGINT      NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seat_number   TEXT        NOT NULL,
    section       TEXT        NOT NULL,
    row_name      TEXT        NOT NULL,
    is_booked     BOOLEAN     NOT NULL DEFAULT FALSE,
    booked_by     TEXT,
    booked_at     TIMESTAMPTZ,
    -- Bumped by every write; the `optimistic` strategy compares and sets it.
    version       BIGINT      NOT NULL DEFAULT 0,
    -- The newest fencing token that has touched this seat; the `fenced`
    -- strategy only writes while its own token is still the newest.
    fencing_token BIGINT      NOT NULL DEFAULT 0,
    UNIQUE (event_id, seat_number)
);

-- Deliberately NO unique constraint on confirmed bookings per seat: the lab
-- must be able to show a double booking when a strategy lets one through.
-- The database would otherwise hide exactly the bug this project teaches.
CREATE TABLE bookings (
    id               BIGSERIAL PRIMARY KEY,
    event_id         BIGINT      NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seat_id          BIGINT      NOT NULL REFERENCES seats (id) ON DELETE CASCADE,
    customer_id      TEXT        NOT NULL,
    -- confirmed | double_booked | failed
    status           TEXT        NOT NULL,
    -- Why a failed attempt failed: seat_taken | lock_busy | retries_exhausted | stale_token
    reason           TEXT,
    locking_strategy TEXT        NOT NULL,
    instance_id      TEXT        NOT NULL,
    attempts         INTEGER     NOT NULL DEFAULT 1,
    fencing_token    BIGINT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX bookings_seat_status ON bookings (seat_id, status);
CREATE INDEX bookings_event ON bookings (event_id);
