-- pgbench: a booking's one write, src/storage/booking.rs::commit_booking, as
-- one statement (the epoch check, the seat with its holder count, the booking
-- row, the idempotency key's link), then COMMIT. bench.sh appends it to each
-- strategy's script (pessimistic.sql, none.sql), which opens the transaction.
WITH seat AS (
    UPDATE seats SET is_booked = TRUE, booked_by = 'pgbench', booked_at = now(), version = version + 1, holders = holders + 1
    WHERE id = :seat_id AND TRUE
      AND (SELECT epoch FROM strategy_epoch FOR SHARE) = :epoch
    RETURNING holders
), inserted AS (
    INSERT INTO bookings (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
    SELECT :event, :seat_id, 'pgbench', CASE WHEN seat.holders = 1 THEN 'confirmed' ELSE 'double_booked' END,
           'pgbench', 'pgbench', 1, NULL
    FROM seat
    RETURNING id
), linked AS (
    UPDATE idempotency_keys SET booking_id = inserted.id FROM inserted WHERE key = NULL
)
SELECT inserted.id, seat.holders FROM inserted, seat;
COMMIT;
