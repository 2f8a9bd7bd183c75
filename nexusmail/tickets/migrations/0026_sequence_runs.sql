-- A step finished by its assignee's confirmation (1: only a "done" work report finishes it).
ALTER TABLE sequence_steps ADD COLUMN needs_report INTEGER NOT NULL DEFAULT 1;
-- A sequence started on an intervention (one per intervention): by an operator or by
-- its trigger. The steps are copied at the start, so editing the plan later leaves the
-- running ones as they were started.
CREATE TABLE sequence_runs (
    id                   INTEGER PRIMARY KEY,
    intervention_number  INTEGER NOT NULL UNIQUE REFERENCES interventions(number),
    sequence_id          INTEGER NOT NULL REFERENCES sequences(id),
    code                 TEXT NOT NULL,
    state                TEXT NOT NULL DEFAULT 'running',   -- running | done
    started_by           TEXT NOT NULL DEFAULT '',
    started_at           TEXT NOT NULL,
    finished_at          TEXT
);
-- planned (an earlier step is not finished) -> scheduled (mail_at known) -> assigned
-- (mailed: assignment_id, or team_dispatch_id for a team) -> done. Each move is a
-- guarded UPDATE on the status, so it happens once.
CREATE TABLE sequence_run_steps (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES sequence_runs(id),
    number            INTEGER NOT NULL,
    employee_id       INTEGER REFERENCES employees(id),
    team_id           INTEGER REFERENCES teams(id),
    action            TEXT NOT NULL,
    expected_hours    REAL,
    notes             TEXT NOT NULL DEFAULT '',
    postpone_days     INTEGER NOT NULL DEFAULT 0,
    needs_report      INTEGER NOT NULL DEFAULT 1,
    status            TEXT NOT NULL DEFAULT 'planned',
    due_on            TEXT,          -- the company's day it is due (YYYY-MM-DD)
    mail_at           TEXT,          -- when its assignment mail goes out (UTC)
    assignment_id     INTEGER REFERENCES assignments(id),
    team_dispatch_id  INTEGER REFERENCES team_dispatches(id),
    problem           TEXT NOT NULL DEFAULT '',   -- why it could not be mailed
    assigned_at       TEXT,
    done_at           TEXT,
    UNIQUE (run_id, number)
);
CREATE INDEX sequence_run_steps_due ON sequence_run_steps(mail_at) WHERE status = 'scheduled';
CREATE INDEX sequence_run_steps_by_assignment ON sequence_run_steps(assignment_id);
CREATE INDEX sequence_run_steps_by_dispatch ON sequence_run_steps(team_dispatch_id);
