-- On SQLite this migration stopped indexing our own outgoing mail. On PostgreSQL the
-- search column of 0005 never indexed it: nothing to change, the number is kept so both
-- stores count their migrations alike.
SELECT 1;
