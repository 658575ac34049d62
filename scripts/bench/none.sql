-- pgbench: the `none` strategy's statements (no transaction, no lock), as
-- src/storage.rs runs them.
\set seat_id random(:first, :last)
SELECT id, event_id, seat_number, section, row_name, is_booked, booked_by, booked_at, version, fencing_token
  FROM seats WHERE id = :seat_id;
UPDATE seats SET is_booked = TRUE, booked_by = 'pgbench', booked_at = now(), version = version + 1 WHERE id = :seat_id;
INSERT INTO bookings (event_id, seat_id, customer_id, status, reason, locking_strategy, instance_id, attempts, fencing_token)
  VALUES (:event, :seat_id, 'pgbench', 'confirmed', NULL, 'none', 'pgbench', 1, NULL) RETURNING id;
SELECT count(*) FROM bookings WHERE seat_id = :seat_id AND status IN ('confirmed', 'double_booked');
