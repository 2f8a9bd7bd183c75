-- Full-text search indexes what people wrote: inbound mails, technician replies and
-- notes. Our own outgoing mails are templates around data already indexed (subject,
-- description); indexing them made every common word match every intervention's
-- acknowledgement, and re-indexing each one when the outbox worker fills in its text
-- cost the single writer time on the ingest path.
--
-- External-content FTS5: a 'delete' must only ever be issued for a row that was
-- indexed, so every trigger carries the same condition.

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.direction != 'out' BEGIN
    INSERT INTO messages_fts (rowid, subject, body_text)
        VALUES (new.id, new.subject, new.body_text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.direction != 'out' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, subject, body_text)
        VALUES ('delete', old.id, old.subject, old.body_text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF subject, body_text ON messages
WHEN old.direction != 'out' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, subject, body_text)
        VALUES ('delete', old.id, old.subject, old.body_text);
    INSERT INTO messages_fts (rowid, subject, body_text)
        VALUES (new.id, new.subject, new.body_text);
END;

-- Rebuild from scratch without the outgoing rows ('rebuild' would read every row of
-- the content table, outgoing ones included).
INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
INSERT INTO messages_fts (rowid, subject, body_text)
    SELECT id, subject, body_text FROM messages WHERE direction != 'out';
