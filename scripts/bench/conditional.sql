-- pgbench: the cheapest correct booking there is, one conditional UPDATE:
-- the database's own ceiling for a booking.
\set seat_id random(:first, :last)
UPDATE seats SET is_booked = TRUE, booked_by = 'pgbench', booked_at = now(), version = version + 1
  WHERE id = :seat_id AND NOT is_booked;
