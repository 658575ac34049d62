-- pgbench: the `pessimistic` strategy's booking transaction, statement for
-- statement as the service runs it (server/src/strategy/pessimistic.rs); bench.sh
-- appends the write, write_booking.sql. The seat is picked by id here, by
-- (event_id, seat_number) in the service: both are unique index look-ups.
\set seat_id random(:first, :last)
BEGIN;
SELECT id, event_id, seat_number, section, row_name, is_booked, booked_by, booked_at, version, fencing_token
  FROM seats WHERE id = :seat_id FOR UPDATE;
