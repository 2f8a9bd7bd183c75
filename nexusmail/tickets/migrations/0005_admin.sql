-- The admin page: operators who log in, full-text search, list indexes.

CREATE TABLE operators (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,        -- lower case; the login name
    name           TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,               -- argon2id, PHC string (argon2-cffi)
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- Full-text search over subjects and messages. External content: the text lives once,
-- in interventions and messages; these tables hold only the index, kept current by the
-- triggers below. `remove_diacritics 2` folds Romanian s/t with comma below and the
-- older cedilla forms alike (ș ş -> s, ț ţ -> t), and Italian accents (perché -> perche),
-- so an operator finds "instalatie" however the mail spelled it.
CREATE VIRTUAL TABLE interventions_fts USING fts5(
    subject, description,
    content = 'interventions', content_rowid = 'number',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE messages_fts USING fts5(
    subject, body_text,
    content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER interventions_fts_insert AFTER INSERT ON interventions BEGIN
    INSERT INTO interventions_fts (rowid, subject, description)
        VALUES (new.number, new.subject, new.description);
END;
CREATE TRIGGER interventions_fts_delete AFTER DELETE ON interventions BEGIN
    INSERT INTO interventions_fts (interventions_fts, rowid, subject, description)
        VALUES ('delete', old.number, old.subject, old.description);
END;
-- Only the indexed columns: every new message touches updated_at, which must not cost
-- a reindex.
CREATE TRIGGER interventions_fts_update AFTER UPDATE OF subject, description ON interventions
BEGIN
    INSERT INTO interventions_fts (interventions_fts, rowid, subject, description)
        VALUES ('delete', old.number, old.subject, old.description);
    INSERT INTO interventions_fts (rowid, subject, description)
        VALUES (new.number, new.subject, new.description);
END;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, subject, body_text)
        VALUES (new.id, new.subject, new.body_text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, subject, body_text)
        VALUES ('delete', old.id, old.subject, old.body_text);
END;
-- The outbox worker fills in an outgoing mail's subject and text when it composes it.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF subject, body_text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, subject, body_text)
        VALUES ('delete', old.id, old.subject, old.body_text);
    INSERT INTO messages_fts (rowid, subject, body_text)
        VALUES (new.id, new.subject, new.body_text);
END;

-- Backfill what was stored before this migration.
INSERT INTO interventions_fts (interventions_fts) VALUES ('rebuild');
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

-- The list's filters, each answerable from an index newest first, with no sort step.
CREATE INDEX interventions_by_customer ON interventions(customer_id, number);
CREATE INDEX interventions_by_request_type
    ON interventions(request_type COLLATE NOCASE, number);
CREATE INDEX assignments_by_employee ON assignments(employee_id, intervention_number);
-- "unverified": replies to an assignment from someone else; few, so a small partial index.
CREATE INDEX messages_unverified_replies ON messages(intervention_number)
    WHERE kind = 'technician_reply' AND verified = 0;
