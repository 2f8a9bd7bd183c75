-- IMAP collection: per-account checkpoints and the mails too big to take.

-- Per account and folder: the mailbox generation (UIDVALIDITY) and the highest UID up to
-- which every mail was stored (or left on the server as oversize). New mail is
-- "UID > highest_uid", never "not \Seen": a mail read in webmail first is still new to us.
CREATE TABLE imap_checkpoints (
    account      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    highest_uid  INTEGER NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (account, folder)
) WITHOUT ROWID;

-- Mails above [limits] max_message_bytes, left on the server: recorded once (so they are
-- reported once, not at every poll) and shown in the health report.
CREATE TABLE imap_oversize (
    account      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    message_id   TEXT,
    sender       TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    found_at     TEXT NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)
) WITHOUT ROWID;
