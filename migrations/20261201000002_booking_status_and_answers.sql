-- "Double-booked" is decided in one place: a booking that makes its seat's
-- holder count more than one. The booking's write stores it, and every read
-- that rebuilds an answer asks the same function. (SQL-language and
-- immutable: the planner inlines it.)
CREATE FUNCTION booking_status(holders BIGINT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN holders > 1 THEN 'double_booked' ELSE 'confirmed' END $$;

-- An Idempotency-Key's stored answer is the booking's outcome (the booking
-- module's Answer), which the HTTP layer renders, status code included, for
-- every replay. Answers stored before were HTTP bodies: a key that booked
-- rebuilds its answer from its booking; one that did not book is forgotten
-- (it wrote nothing, so a retry may book).
DELETE FROM idempotency_keys WHERE booking_id IS NULL AND status_code IS NOT NULL;
ALTER TABLE idempotency_keys DROP COLUMN status_code;
ALTER TABLE idempotency_keys RENAME COLUMN response TO answer;
UPDATE idempotency_keys SET answer = NULL;
