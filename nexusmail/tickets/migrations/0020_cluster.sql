-- Several daemons on one database. Each outbox row a daemon is sending is claimed
-- (claimed_by: that daemon's incarnation id) until lease_until; claim_seq grows with
-- every claim, and the outcome is recorded only by the claim that still holds it, so a
-- daemon whose row was taken over after its lease ran out changes nothing.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claim_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
CREATE INDEX outbox_by_claim ON outbox(claimed_by) WHERE status = 'pending';

-- The daemons using this database: one row per process start (a fresh random id each
-- time), its heartbeat in last_seen, and what it holds (JSON, e.g. {"outbox": 3}).
CREATE TABLE workers (
    id          TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    holds       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX workers_by_last_seen ON workers(last_seen);
