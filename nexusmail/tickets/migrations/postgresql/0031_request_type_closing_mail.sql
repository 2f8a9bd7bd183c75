-- The same column as the SQLite migration of this number (which explains it).
ALTER TABLE request_types ADD COLUMN customer_closing_mail INTEGER;
