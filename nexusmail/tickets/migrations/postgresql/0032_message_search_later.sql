-- Messages' search vectors made after the commit, out of the store's writer's way.
--
-- A generated column computed each customer mail's vector (unaccent and the text search
-- parser over its whole text, ~0.6 ms of the server for a 5 KB mail) and added it to its
-- GIN index inside the INSERT. The store has one writer, which waits for the server's
-- answers: every mail of a burst also waited for the vectors of the mails before it.
-- Now a trigger only notes the message in message_search_backlog; the daemon's search
-- indexer (tickets/search_indexer.py) turns the backlog into message_search rows when
-- ingest is idle, and at the latest 30 s later while mail keeps coming. Search reads the
-- backlog's messages by their text, so a mail is found at once, indexed or not.
--
-- message_search holds one vector per message other than our own outgoing mail, as the
-- column did. A message whose subject or text changes goes back to the backlog, and
-- search ignores its old vector until it is indexed again.

CREATE TABLE message_search (
    message_id     BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    search_vector  tsvector NOT NULL
);
CREATE TABLE message_search_backlog (
    message_id  BIGINT PRIMARY KEY
);

INSERT INTO message_search (message_id, search_vector)
    SELECT id, search_vector FROM messages WHERE search_vector IS NOT NULL;
CREATE INDEX message_search_vector ON message_search USING gin (search_vector);
DROP INDEX messages_search;
ALTER TABLE messages DROP COLUMN search_vector;

CREATE FUNCTION nexusmail_message_search_later() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_search_backlog (message_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER message_search_backlog_add AFTER INSERT OR UPDATE OF subject, body_text
    ON messages FOR EACH ROW WHEN (NEW.direction <> 'out')
    EXECUTE FUNCTION nexusmail_message_search_later();
