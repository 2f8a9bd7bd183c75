-- IMAP collection with several daemons on one database: one holder per account and folder.
-- `epoch` grows at every change of holder; checkpoint saves and acknowledgements check
-- owner and epoch. `lease_until` is in seconds since 1970, from the database's now().

CREATE TABLE imap_leases (
    account      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    epoch        BIGINT NOT NULL,
    lease_until  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, folder)
);
