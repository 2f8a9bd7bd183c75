-- Service contracts and SLA deadlines.
--
-- A contract gives a customer's interventions a response time, a resolution time
-- (business hours; NULL: the [sla] defaults) and maybe a package of prepaid hours
-- (NULL: none) that work reports consume. valid_to NULL: open-ended. The low-hours
-- warning goes out once: low_hours_alerted_at is set in the transaction that queues it.
CREATE TABLE contracts (
    id                    INTEGER PRIMARY KEY,
    customer_id           INTEGER NOT NULL REFERENCES customers(id),
    code                  TEXT NOT NULL,
    type                  TEXT NOT NULL DEFAULT '',
    valid_from            TEXT NOT NULL,           -- YYYY-MM-DD, inclusive
    valid_to              TEXT,                    -- YYYY-MM-DD, inclusive
    response_hours        REAL,
    resolution_hours      REAL,
    prepaid_hours         REAL,
    notes                 TEXT NOT NULL DEFAULT '',
    low_hours_alerted_at  TEXT,
    created_at            TEXT NOT NULL,
    UNIQUE (customer_id, code)
);
CREATE INDEX contracts_by_customer ON contracts(customer_id, valid_from);
-- The sweep's low-hours check reads only the contracts still able to warn.
CREATE INDEX contracts_may_warn ON contracts(id)
    WHERE prepaid_hours IS NOT NULL AND low_hours_alerted_at IS NULL;

-- An intervention's deadlines (UTC ISO 8601, NULL: none), the contract they came from,
-- and when the deadline sweep worked them out (NULL: not yet, which the partial index
-- finds in time proportional to the new ones).
ALTER TABLE interventions ADD COLUMN contract_id INTEGER REFERENCES contracts(id);
ALTER TABLE interventions ADD COLUMN response_due TEXT;
ALTER TABLE interventions ADD COLUMN resolution_due TEXT;
ALTER TABLE interventions ADD COLUMN sla_planned_at TEXT;
ALTER TABLE assignments ADD COLUMN sla_planned_at TEXT;
-- What exists at the upgrade is left as it was: no deadlines, and no burst of reminders
-- for assignments mailed long ago.
UPDATE interventions SET sla_planned_at = updated_at;
UPDATE assignments SET sla_planned_at = created_at;
CREATE INDEX interventions_sla_unplanned ON interventions(number) WHERE sla_planned_at IS NULL;
CREATE INDEX assignments_sla_unplanned ON assignments(id) WHERE sla_planned_at IS NULL;
CREATE INDEX interventions_by_contract ON interventions(contract_id)
    WHERE contract_id IS NOT NULL;
CREATE INDEX interventions_resolution_due ON interventions(resolution_due)
    WHERE resolution_due IS NOT NULL;
CREATE INDEX interventions_response_due ON interventions(response_due)
    WHERE response_due IS NOT NULL;

-- Each chase step happens once: its row is planned with its instant, and taken (done_at
-- set, guarded on done_at IS NULL) in the transaction that mails and notes it.
-- assignment_id 0: a step of the intervention itself (a NULL would not be unique).
CREATE TABLE sla_steps (
    id                   INTEGER PRIMARY KEY,
    intervention_number  INTEGER NOT NULL REFERENCES interventions(number),
    assignment_id        INTEGER NOT NULL DEFAULT 0,
    step                 TEXT NOT NULL,            -- remind | escalate | resolution_warning
    due_at               TEXT NOT NULL,
    done_at              TEXT,
    outcome              TEXT,                     -- sent | moot (nothing left to chase)
    UNIQUE (intervention_number, assignment_id, step)
);
CREATE INDEX sla_steps_due ON sla_steps(due_at, id) WHERE done_at IS NULL;
