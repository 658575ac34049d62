-- pgbench: the `none` strategy's statements as the service runs them
-- (src/strategy/mod.rs::read_hold_write): the seat read on its own, then the
-- write transaction of src/storage/booking.rs::write_booking.
\set seat_id random(:first, :last)
SELECT id, event_id, seat_number, section, row_name, is_booked, booked_by, booked_at, version, fencing_token
  FROM seats WHERE id = :seat_id;
BEGIN;
UPDATE seats SET is_booked = TRUE, booked_by = 'pgbench', booked_at = now(), version = version + 1
  WHERE id = :seat_id AND TRUE
    AND (SELECT version FROM strategy_epoch FOR SHARE) = :epoch;
WITH earlier AS (
    SELECT count(*) AS holders FROM bookings
    WHERE seat_id = :seat_id AND status IN ('confirmed', 'double_booked')
), inserted AS (
    INSERT INTO bookings (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
    SELECT :event, :seat_id, 'pgbench', CASE WHEN earlier.holders = 0 THEN 'confirmed' ELSE 'double_booked' END,
           'none', 'pgbench', 1, NULL
    FROM earlier
    RETURNING id
), linked AS (
    UPDATE idempotency_keys SET booking_id = (SELECT id FROM inserted) WHERE key = NULL
)
SELECT inserted.id, earlier.holders + 1 FROM inserted, earlier;
COMMIT;
