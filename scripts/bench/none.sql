-- pgbench: the `none` strategy's statements as the service runs them
-- (src/strategy/mod.rs::read_hold_write): the seat read on its own, then the
-- write transaction of src/storage/booking.rs::write_booking.
\set seat_id random(:first, :last)
SELECT id, event_id, seat_number, section, row_name, is_booked, booked_by, booked_at, version, fencing_token
  FROM seats WHERE id = :seat_id;
BEGIN;
WITH seat AS (
    UPDATE seats SET is_booked = TRUE, booked_by = 'pgbench', booked_at = now(), version = version + 1, holders = holders + 1
    WHERE id = :seat_id AND TRUE
      AND (SELECT version FROM strategy_epoch FOR SHARE) = :epoch
    RETURNING holders
), inserted AS (
    INSERT INTO bookings (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
    SELECT :event, :seat_id, 'pgbench', CASE WHEN seat.holders = 1 THEN 'confirmed' ELSE 'double_booked' END,
           'none', 'pgbench', 1, NULL
    FROM seat
    RETURNING id
), linked AS (
    UPDATE idempotency_keys SET booking_id = inserted.id FROM inserted WHERE key = NULL
)
SELECT inserted.id, seat.holders FROM inserted, seat;
COMMIT;
