-- Admin page logins kept on the server: the cookie names a session here, so logging out
-- (or a new password, or deactivating the operator) ends it for every copy of the cookie.
CREATE TABLE operator_sessions (
    -- sha256 of the id the cookie holds: a copy of the database cannot be turned into
    -- a working cookie.
    id_hash      TEXT PRIMARY KEY,
    operator_id  INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ip           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_id);
