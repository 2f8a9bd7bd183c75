-- Teams: employees assigned together. Assigning a team mails every member; the first
-- member to confirm takes the job and the others' assignments become 'taken'.
CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);
CREATE TABLE team_members (
    team_id      INTEGER NOT NULL REFERENCES teams(id),
    employee_id  INTEGER NOT NULL REFERENCES employees(id),
    PRIMARY KEY (team_id, employee_id)
);
-- One team put on one intervention: its members' assignments point here. taken_by is
-- set once, by a guarded UPDATE, so exactly one confirmation wins.
CREATE TABLE team_dispatches (
    id                   INTEGER PRIMARY KEY,
    team_id              INTEGER NOT NULL REFERENCES teams(id),
    intervention_number  INTEGER NOT NULL REFERENCES interventions(number),
    taken_by             INTEGER REFERENCES employees(id),
    taken_at             TEXT,
    all_rejected_at      TEXT,          -- when operators were told nobody took it
    created_at           TEXT NOT NULL
);
CREATE INDEX team_dispatches_by_intervention ON team_dispatches(intervention_number);
ALTER TABLE assignments ADD COLUMN team_dispatch_id INTEGER REFERENCES team_dispatches(id);
CREATE INDEX assignments_by_team_dispatch ON assignments(team_dispatch_id);
