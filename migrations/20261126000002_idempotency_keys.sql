-- Idempotency keys: one row per key a client sent with POST /book.
--
-- A request claims its key by inserting the row (the primary key makes the
-- claim atomic across replicas). The booking's own transaction records which
-- booking the key produced, so a crash leaves both or neither; the rendered
-- answer is stored right after, and a retry replays it instead of booking.
CREATE TABLE idempotency_keys (
    key         TEXT        PRIMARY KEY,
    -- The request the key was first used with; the same key with another
    -- request is refused (422).
    fingerprint TEXT        NOT NULL,
    -- Set in the booking's transaction when the key's request booked a seat.
    booking_id  BIGINT,
    -- The answer, once the request has finished.
    status_code INTEGER,
    response    JSONB,
    -- When the request that holds the key started; a claim older than the
    -- in-flight limit belongs to a request that died, and may be taken over.
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The replica process that holds the key: it holds the session advisory
    -- lock (IDEMPOTENCY_LOCK_CLASS, owner) for as long as it lives, so a
    -- retry can tell at once that the owner died and take the key over.
    owner       INTEGER,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
