-- Admin page logins kept on the server: logout, a new password or deactivating the
-- operator delete the row, which ends every copy of the cookie.
CREATE TABLE operator_sessions (
    id_hash      TEXT PRIMARY KEY,
    operator_id  BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ip           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_id);
