-- The seed lab's event: 100 seats A1..J10 in ten rows of ten.
-- Rows A-C are VIP, D-G Standard, H-J Economy.

INSERT INTO events (id, name, venue, event_date, total_seats)
VALUES (1, 'Distributed Systems Live', 'Concurrency Hall', '2027-06-01 19:00:00+00', 100);

SELECT setval(pg_get_serial_sequence('events', 'id'), 1);

INSERT INTO seats (event_id, seat_number, section, row_name)
SELECT 1,
       row_name || seat,
       CASE WHEN row_name IN ('A', 'B', 'C') THEN 'VIP'
            WHEN row_name IN ('D', 'E', 'F', 'G') THEN 'Standard'
            ELSE 'Economy' END,
       row_name
FROM unnest(ARRAY['A','B','C','D','E','F','G','H','I','J']) AS row_name,
     generate_series(1, 10) AS seat
ORDER BY row_name, seat;
