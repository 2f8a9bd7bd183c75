-- When a technician is away (holidays, sick leave, training): shown when assigning, so
-- the operator picks someone who is there.
CREATE TABLE employee_absences (
    id           INTEGER PRIMARY KEY,
    employee_id  INTEGER NOT NULL REFERENCES employees(id),
    starts_on    TEXT NOT NULL,          -- first day away (YYYY-MM-DD)
    ends_on      TEXT NOT NULL,          -- last day away, inclusive
    reason       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL
);
CREATE INDEX employee_absences_by_employee ON employee_absences(employee_id, starts_on);
