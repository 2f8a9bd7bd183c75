-- raw_messages as a rowid table. Made WITHOUT ROWID at first, it kept each mail's bytes
-- in the primary key's own b-tree, which SQLite advises against for rows over a
-- twentieth of a page: an insert of a 40 KB mail took the store's one writer about
-- three times as long as the same insert into a rowid table (whose key index holds
-- only the sha256). One-off cost: every stored mail is copied once, and the old
-- table's pages stay in the file as free pages that later writes reuse.
CREATE TABLE raw_messages_new (
    sha256    TEXT PRIMARY KEY,
    data      BLOB NOT NULL,
    in_blobs  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO raw_messages_new (sha256, data, in_blobs)
    SELECT sha256, data, in_blobs FROM raw_messages;
DROP TABLE raw_messages;
ALTER TABLE raw_messages_new RENAME TO raw_messages;
