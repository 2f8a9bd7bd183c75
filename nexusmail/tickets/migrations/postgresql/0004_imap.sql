-- IMAP collection: per account and folder, the mailbox generation and the highest UID
-- stored; and the mails too large to fetch, recorded once.

CREATE TABLE imap_checkpoints (
    account      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    uidvalidity  BIGINT NOT NULL,
    highest_uid  BIGINT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (account, folder)
);

CREATE TABLE imap_oversize (
    account      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    uidvalidity  BIGINT NOT NULL,
    uid          BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    message_id   TEXT,
    sender       TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    found_at     TEXT NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)
);
