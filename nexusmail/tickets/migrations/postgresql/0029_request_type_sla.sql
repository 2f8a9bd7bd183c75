-- The same columns as the SQLite migration of this number (which explains them).
ALTER TABLE request_types ADD COLUMN response_hours DOUBLE PRECISION;
ALTER TABLE request_types ADD COLUMN resolution_hours DOUBLE PRECISION;
