-- pgbench: the cheapest correct booking there is, one conditional UPDATE:
-- the database's own ceiling for a booking. Every transaction books a fresh
-- seat (the next number of a sequence bench.sh creates), so none of the
-- UPDATEs is a no-op on a seat already booked.
WITH next AS (SELECT nextval('bench_fresh_seat') AS n)
UPDATE seats SET is_booked = TRUE, booked_by = 'pgbench', booked_at = now(), version = version + 1
  FROM next WHERE seats.id = :first + next.n AND NOT is_booked;
