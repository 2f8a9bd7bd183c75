-- An intervention's description is also the body of its first thread message (the
-- customer's mail, the operator's note of a phone call, the schedule's note), which
-- messages_fts indexes together with the subject. Indexing the description a second
-- time here doubled the tokenizing work of every new case on the single writer and
-- found nothing more. The intervention's own subject stays: it is cleaned of Re:/R:
-- prefixes and may differ from the mail's.

DROP TRIGGER interventions_fts_insert;
DROP TRIGGER interventions_fts_delete;
DROP TRIGGER interventions_fts_update;
DROP TABLE interventions_fts;

CREATE VIRTUAL TABLE interventions_fts USING fts5(
    subject,
    content = 'interventions', content_rowid = 'number',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER interventions_fts_insert AFTER INSERT ON interventions BEGIN
    INSERT INTO interventions_fts (rowid, subject) VALUES (new.number, new.subject);
END;
CREATE TRIGGER interventions_fts_delete AFTER DELETE ON interventions BEGIN
    INSERT INTO interventions_fts (interventions_fts, rowid, subject)
        VALUES ('delete', old.number, old.subject);
END;
CREATE TRIGGER interventions_fts_update AFTER UPDATE OF subject ON interventions BEGIN
    INSERT INTO interventions_fts (interventions_fts, rowid, subject)
        VALUES ('delete', old.number, old.subject);
    INSERT INTO interventions_fts (rowid, subject) VALUES (new.number, new.subject);
END;
INSERT INTO interventions_fts (interventions_fts) VALUES ('rebuild');
