-- Copies of one mail are recognised by their content fingerprint, no longer by
-- Message-ID and sender alone (a reused Message-ID with other content is another mail).
ALTER TABLE inbound ADD COLUMN content_sha256 TEXT;
DROP INDEX inbound_by_message_id;
CREATE INDEX inbound_by_message_id ON inbound (message_id, sender)
    WHERE message_id IS NOT NULL;
CREATE INDEX inbound_by_content ON inbound (content_sha256)
    WHERE content_sha256 IS NOT NULL;
