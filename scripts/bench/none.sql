-- pgbench: the `none` strategy's statements as the service runs them
-- (server/src/strategy/mod.rs::read_hold_write): the seat read on its own, then a
-- transaction for the write, which bench.sh appends (write_booking.sql).
\set seat_id random(:first, :last)
SELECT id, event_id, seat_number, section, row_name, is_booked, booked_by, booked_at, version, fencing_token
  FROM seats WHERE id = :seat_id;
BEGIN;
