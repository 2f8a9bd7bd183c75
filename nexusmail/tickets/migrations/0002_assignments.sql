-- Assignments: an employee put on an intervention, deciding by replying to a mail.

CREATE TABLE assignments (
    id                   INTEGER PRIMARY KEY,
    intervention_number  INTEGER NOT NULL REFERENCES interventions(number),
    employee_id          INTEGER NOT NULL REFERENCES employees(id),
    status               TEXT NOT NULL DEFAULT 'pending',  -- pending | confirmed | rejected | unclear
    reason               TEXT NOT NULL DEFAULT '',
    decided_at           TEXT,
    mail_message_id      TEXT,          -- the assignment mail's Message-ID (matches replies)
    assigned_by          TEXT NOT NULL DEFAULT '',
    created_at           TEXT NOT NULL,
    UNIQUE (intervention_number, employee_id)
);
CREATE INDEX assignments_by_mail ON assignments(mail_message_id);
CREATE INDEX assignments_by_status ON assignments(status, intervention_number);
