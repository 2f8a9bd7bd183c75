-- (Named to run after 0019_teams.sql: steps may name a team.)
-- Action sequences: numbered steps (who, what, expected hours, notes, days to wait
-- before the next) that a trigger or an operator starts on an intervention.
CREATE TABLE sequences (
    id                    INTEGER PRIMARY KEY,
    code                  TEXT NOT NULL UNIQUE,
    description           TEXT NOT NULL DEFAULT '',
    notes                 TEXT NOT NULL DEFAULT '',
    trigger_request_type  TEXT,          -- starts on a new intervention of this type
    created_at            TEXT NOT NULL
);
-- Exactly one of employee_id and team_id names who does the step.
CREATE TABLE sequence_steps (
    sequence_id     INTEGER NOT NULL REFERENCES sequences(id),
    number          INTEGER NOT NULL,     -- 1, 2, ... in order
    employee_id     INTEGER REFERENCES employees(id),
    team_id         INTEGER REFERENCES teams(id),
    action          TEXT NOT NULL,        -- call | visit | mail | quote | check | free text
    expected_hours  REAL,
    notes           TEXT NOT NULL DEFAULT '',
    postpone_days   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sequence_id, number),
    CHECK ((employee_id IS NULL) <> (team_id IS NULL))
);
CREATE INDEX sequences_by_trigger ON sequences(trigger_request_type);
