-- The cluster's epoch is called what it is. `version` is the seat's
-- optimistic version (`seats.version`); the booking's write names both in
-- one statement, so the epoch row's counter gets a name of its own.
ALTER TABLE strategy_epoch RENAME COLUMN version TO epoch;
