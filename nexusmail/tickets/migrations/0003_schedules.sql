-- Service schedules: recurring contract dates that open interventions.

CREATE TABLE schedules (
    id                  INTEGER PRIMARY KEY,
    customer_id         INTEGER NOT NULL REFERENCES customers(id),
    contact_id          INTEGER REFERENCES contacts(id),
    contract_ref        TEXT NOT NULL DEFAULT '',
    subject             TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    request_type        TEXT NOT NULL DEFAULT 'Service schedule',
    interval            TEXT NOT NULL,        -- weekly | monthly | quarterly | yearly
    every               INTEGER NOT NULL DEFAULT 1 CHECK (every >= 1),
    day_rule            TEXT NOT NULL DEFAULT 'same_day',  -- same_day | last_day | nth_weekday
    first_date          TEXT NOT NULL,        -- calendar dates (YYYY-MM-DD), company time zone
    until_date          TEXT,
    count               INTEGER CHECK (count IS NULL OR count >= 1),
    lead_days           INTEGER NOT NULL DEFAULT 0 CHECK (lead_days >= 0),
    assignees           TEXT NOT NULL DEFAULT '[]',   -- JSON list of employee addresses
    active              INTEGER NOT NULL DEFAULT 1,
    -- The first occurrence no tick has handled yet, and the day it opens (that minus
    -- lead_days); NULL when the rule has ended. A tick reads only the schedules due
    -- through the index below, so its cost follows the due ones, not all of them.
    next_occurrence_on  TEXT,
    next_opening_on     TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX schedules_due ON schedules(next_opening_on) WHERE active = 1;
CREATE INDEX schedules_by_customer ON schedules(customer_id);

-- Every occurrence a tick handled: opened (with its intervention) or skipped by the
-- catch-up policy. The unique key makes opening exactly-once: two ticks, or two
-- daemons on one database, racing for an occurrence create one intervention.
CREATE TABLE schedule_occurrences (
    id                   INTEGER PRIMARY KEY,
    schedule_id          INTEGER NOT NULL REFERENCES schedules(id),
    occurrence_on        TEXT NOT NULL,
    opens_on             TEXT NOT NULL,
    outcome              TEXT NOT NULL,       -- opened | skipped
    intervention_number  INTEGER REFERENCES interventions(number),
    late                 INTEGER NOT NULL DEFAULT 0,  -- opened after its opening date
    handled_at           TEXT NOT NULL,
    UNIQUE (schedule_id, occurrence_on)
);
CREATE INDEX schedule_occurrences_by_intervention
    ON schedule_occurrences(intervention_number) WHERE intervention_number IS NOT NULL;
