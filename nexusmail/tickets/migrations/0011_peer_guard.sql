-- What the acknowledgement budgets and the loop guard count, per sender as counted
-- (nexusmail.mail.peers: the address without its +extension, lower-case, and its
-- domain). Rows older than the longest window are deleted as new ones come.
CREATE TABLE peer_events (
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,      -- ack (an acknowledgement queued) | case (a case opened by mail)
    address  TEXT NOT NULL,
    domain   TEXT NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX peer_events_by_address ON peer_events (kind, address, at);
CREATE INDEX peer_events_by_domain ON peer_events (kind, domain, at);
CREATE INDEX peer_events_by_time ON peer_events (kind, at);

-- Senders muted by the loop guard: one that kept opening new cases. While muted
-- (until muted_until, pushed back by each mail it sends, or until an operator
-- unmutes it) its mails that would open a case are kept in the quarantine instead.
-- A row stays after the mute ends: unmuted_at restarts the count from that moment.
CREATE TABLE muted_peers (
    kind         TEXT NOT NULL,     -- address | domain
    peer         TEXT NOT NULL,     -- the address as counted, or the domain
    reason       TEXT NOT NULL,
    muted_at     TEXT NOT NULL,
    muted_until  TEXT NOT NULL,
    held         INTEGER NOT NULL DEFAULT 0,   -- mails kept back during this mute
    unmuted_at   TEXT,
    unmuted_by   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, peer)
);
CREATE INDEX muted_peers_until ON muted_peers (muted_until);
