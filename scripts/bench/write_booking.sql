-- pgbench: a booking's one write, server/src/storage/booking.rs::commit_booking, as
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
    SELECT :event, :seat_id, 'pgbench', booking_status(seat.holders),
           'pgbench', 'pgbench', 1, NULL
    FROM seat
    RETURNING id, status
), linked AS (
    UPDATE idempotency_keys SET booking_id = inserted.id FROM inserted WHERE key = NULL
)
SELECT inserted.id, seat.holders, inserted.status FROM inserted, seat;
COMMIT;
