-- On SQLite this migration stopped indexing the intervention's description (the first
-- message's body, indexed there). On PostgreSQL the search column of 0005 never did:
-- nothing to change, the number is kept so both stores count their migrations alike.
SELECT 1;
