-- IMAP collection with several daemons on one database: one holder per account and folder.

-- Who may collect a folder now. `epoch` grows by one at every change of holder, and the
-- checkpoint save and the acknowledgements check owner and epoch: a daemon that stalled
-- past `lease_until` and was replaced changes nothing any more. `lease_until` is in
-- seconds since 1970 (database time on PostgreSQL, the daemon's clock on SQLite).
CREATE TABLE imap_leases (
    account      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    lease_until  REAL NOT NULL,
    PRIMARY KEY (account, folder)
) WITHOUT ROWID;
