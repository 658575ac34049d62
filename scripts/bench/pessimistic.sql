-- pgbench: the `pessimistic` strategy's booking transaction, statement for
-- statement as the service runs it (src/strategy/pessimistic.rs, then
-- src/storage/booking.rs::write_booking). The seat is picked by id here, by
-- (event_id, seat_number) in the service: both are unique index look-ups.
\set seat_id random(:first, :last)
BEGIN;
SELECT id, event_id, seat_number, section, row_name, is_booked, booked_by, booked_at, version, fencing_token
  FROM seats WHERE id = :seat_id FOR UPDATE;
WITH seat AS (
    UPDATE seats SET is_booked = TRUE, booked_by = 'pgbench', booked_at = now(), version = version + 1, holders = holders + 1
    WHERE id = :seat_id AND TRUE
      AND (SELECT version FROM strategy_epoch FOR SHARE) = :epoch
    RETURNING holders
), inserted AS (
    INSERT INTO bookings (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
    SELECT :event, :seat_id, 'pgbench', CASE WHEN seat.holders = 1 THEN 'confirmed' ELSE 'double_booked' END,
           'pessimistic', 'pgbench', 1, NULL
    FROM seat
    RETURNING id
), linked AS (
    UPDATE idempotency_keys SET booking_id = inserted.id FROM inserted WHERE key = NULL
)
SELECT inserted.id, seat.holders FROM inserted, seat;
COMMIT;
