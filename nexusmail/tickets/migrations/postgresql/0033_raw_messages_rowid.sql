-- Nothing to change on PostgreSQL: its twin makes SQLite's raw_messages a rowid table
-- (SQLite kept each mail's bytes in the key's b-tree); a PostgreSQL table already keeps
-- large values apart from its key's index.
SELECT 1;
