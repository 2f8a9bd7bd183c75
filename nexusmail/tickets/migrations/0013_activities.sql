-- Activities: time spent on an intervention. A technician's work report by mail becomes
-- one (kind 'work', on the thread as the reply itself); operators add phone calls,
-- visits, remote sessions, workshop and travel time by hand. Times are whole minutes
-- (exact: 20 minutes is a third of an hour, no rounded decimal is ever stored); NULL
-- when a report stated none the reader could trust.
--
-- A later report of the same assignment replaces the earlier one: the earlier row stays
-- (both replies stay on the thread) with superseded_by naming its replacement, and
-- only rows without it count in timesheets.
CREATE TABLE activities (
    id                   INTEGER PRIMARY KEY,
    intervention_number  INTEGER NOT NULL REFERENCES interventions(number),
    employee_id          INTEGER REFERENCES employees(id),
    employee_email       TEXT NOT NULL,          -- lower case, as the employee is known
    kind                 TEXT NOT NULL,          -- work | phone | visit | remote | workshop | travel
    day                  TEXT NOT NULL,          -- YYYY-MM-DD, the company's calendar day
    work_minutes         INTEGER,
    travel_minutes       INTEGER,
    text                 TEXT NOT NULL DEFAULT '',
    message_id           INTEGER REFERENCES messages(id),     -- its thread entry and files
    assignment_id        INTEGER REFERENCES assignments(id),  -- reports only
    verdict              TEXT,                   -- reports: done | not_done
    author               TEXT NOT NULL DEFAULT '',
    superseded_by        INTEGER REFERENCES activities(id),
    created_at           TEXT NOT NULL
);
CREATE INDEX activities_by_intervention ON activities(intervention_number, id);
CREATE INDEX activities_by_day ON activities(day, employee_email);
CREATE INDEX activities_by_employee ON activities(employee_email, day);
CREATE INDEX activities_by_assignment ON activities(assignment_id)
    WHERE assignment_id IS NOT NULL;

-- The latest report of an assignment (done | not_done | NULL): a not-done report keeps
-- the assignment confirmed, and this is what flags it for the operators.
ALTER TABLE assignments ADD COLUMN report TEXT;
-- Per intervention, whether the customer gets a closing mail when it is resolved;
-- NULL: the configured default ([reports] customer_closing_mail).
ALTER TABLE interventions ADD COLUMN notify_customer_on_resolve INTEGER;
ALTER TABLE interventions ADD COLUMN resolved_at TEXT;
