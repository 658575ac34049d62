-- How many bookings hold each seat, kept on the seat row itself.
--
-- A booking's one write (src/storage/booking.rs) bumps it in the same UPDATE
-- that books the seat. An UPDATE that waited for another writer of the row
-- re-reads the row once that writer commits, so the count it returns already
-- includes every earlier holder: the second holder of a seat learns at once
-- that it double-booked, with no separate count of the bookings table.
ALTER TABLE seats ADD COLUMN holders INTEGER NOT NULL DEFAULT 0;

UPDATE seats SET holders = held.n
FROM (
    SELECT seat_id, count(*) AS n FROM bookings
    WHERE status IN ('confirmed', 'double_booked')
    GROUP BY seat_id
) AS held
WHERE seats.id = held.seat_id;
