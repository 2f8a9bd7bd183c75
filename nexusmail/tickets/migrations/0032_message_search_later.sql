-- Nothing to change on SQLite. On PostgreSQL this migration moves the messages' search
-- vectors out of the INSERT (the one writer waited for them, see its PostgreSQL twin);
-- FTS5's trigger here costs the writer little (within the noise of the ingest benchmark).
SELECT 1;
