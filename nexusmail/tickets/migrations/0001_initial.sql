-- nexusmail schema, version 1. Timestamps are UTC ISO 8601 text (clock.iso).

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    tax_id      TEXT,
    address     TEXT,
    phone       TEXT,
    email       TEXT,
    language    TEXT,                     -- en | it | ro; NULL: the configured default
    verified    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

-- Every address we know a customer by; an unknown sender becomes an unverified contact.
CREATE TABLE contacts (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    name         TEXT NOT NULL DEFAULT '',
    email        TEXT,
    phone        TEXT,
    role         TEXT,
    verified     INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX contacts_by_email ON contacts(email) WHERE email IS NOT NULL;

CREATE TABLE employees (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL DEFAULT '',
    language    TEXT NOT NULL DEFAULT 'en',
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    token_sha256  TEXT NOT NULL UNIQUE,   -- tokens are long random strings: a plain hash suffices
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);

CREATE TABLE interventions (
    number          INTEGER PRIMARY KEY AUTOINCREMENT,   -- 1, 2, 3... never reused
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    contact_id      INTEGER REFERENCES contacts(id),
    request_type    TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    priority        TEXT NOT NULL DEFAULT 'normal',      -- low | normal | high | urgent
    desired_from    TEXT,
    desired_to      TEXT,
    status          TEXT NOT NULL DEFAULT 'open',        -- open | closed
    source          TEXT NOT NULL,                       -- email | api | schedule
    related_number  INTEGER REFERENCES interventions(number),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    closed_at       TEXT
);
CREATE INDEX interventions_by_status ON interventions(status, number);

-- Addresses that took part in an intervention: a subject tag only threads for them.
CREATE TABLE participants (
    intervention_number  INTEGER NOT NULL REFERENCES interventions(number),
    email                TEXT NOT NULL,
    PRIMARY KEY (email, intervention_number)
) WITHOUT ROWID;

-- Every Message-ID we sent or received for an intervention, for In-Reply-To/References.
CREATE TABLE thread_refs (
    message_id           TEXT PRIMARY KEY,
    intervention_number  INTEGER NOT NULL REFERENCES interventions(number)
) WITHOUT ROWID;

-- Every mail that reached us, whatever became of it. The raw bytes are a blob.
CREATE TABLE inbound (
    id                   INTEGER PRIMARY KEY,
    raw_sha256           TEXT NOT NULL UNIQUE,
    size                 INTEGER NOT NULL,
    message_id           TEXT,
    sender               TEXT NOT NULL DEFAULT '',      -- From: address, lower case
    envelope_from        TEXT NOT NULL DEFAULT '',
    envelope_to          TEXT NOT NULL DEFAULT '[]',    -- JSON list
    source               TEXT NOT NULL,                 -- smtp | lmtp | imap:<account> | ...
    subject              TEXT NOT NULL DEFAULT '',
    outcome              TEXT NOT NULL,                 -- see tickets.models.Outcome
    reason               TEXT NOT NULL DEFAULT '',
    intervention_number  INTEGER REFERENCES interventions(number),
    received_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX inbound_by_message_id ON inbound(message_id, sender)
    WHERE message_id IS NOT NULL;
CREATE INDEX inbound_by_outcome ON inbound(outcome, id);

CREATE TABLE messages (
    id                   INTEGER PRIMARY KEY,
    intervention_number  INTEGER NOT NULL REFERENCES interventions(number),
    kind                 TEXT NOT NULL,      -- see tickets.models.MessageKind
    direction            TEXT NOT NULL,      -- in | out | internal
    author               TEXT NOT NULL DEFAULT '',
    from_addr            TEXT NOT NULL DEFAULT '',
    to_addrs             TEXT NOT NULL DEFAULT '[]',   -- JSON list
    cc_addrs             TEXT NOT NULL DEFAULT '[]',
    subject              TEXT NOT NULL DEFAULT '',
    body_text            TEXT NOT NULL DEFAULT '',
    body_html            TEXT,               -- sanitized (nh3) at ingest; sanitized again at render
    message_id           TEXT,
    inbound_id           INTEGER REFERENCES inbound(id),
    verdict              TEXT,               -- technician replies: confirmed | rejected | unclear
    verified             INTEGER NOT NULL DEFAULT 1,
    extra                TEXT NOT NULL DEFAULT '{}',   -- JSON: small kind-specific details
    created_at           TEXT NOT NULL
);
CREATE INDEX messages_by_intervention ON messages(intervention_number, id);

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    content_id    TEXT,
    inline        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attachments_by_message ON attachments(message_id);

-- The transactional outbox: rows are written with the change that
-- causes them; only the outbox worker talks to the relay.
CREATE TABLE outbox (
    id                   INTEGER PRIMARY KEY,
    message_id           TEXT NOT NULL UNIQUE,          -- fixed at enqueue, kept on every retry
    intervention_number  INTEGER REFERENCES interventions(number),
    thread_message_id    INTEGER REFERENCES messages(id),
    kind                 TEXT NOT NULL,                  -- acknowledgement | assignment | ...
    recipient            TEXT NOT NULL,
    language             TEXT NOT NULL DEFAULT 'en',
    template             TEXT NOT NULL,
    context              TEXT NOT NULL DEFAULT '{}',     -- JSON given to the template
    status               TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      TEXT NOT NULL,
    last_error           TEXT NOT NULL DEFAULT '',
    created_at           TEXT NOT NULL,
    sent_at              TEXT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_by_recipient ON outbox(recipient, kind, created_at);

-- Raw inbound mail, kept in the database so it is durable in the same commit as its
-- effects (one fsync per group commit instead of one per file).
CREATE TABLE raw_messages (
    sha256  TEXT PRIMARY KEY,
    data    BLOB NOT NULL
) WITHOUT ROWID;
