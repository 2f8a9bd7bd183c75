-- What changed since an operator last looked. `last_inbound_at` is when the customer
-- or a technician last wrote (a message coming in); an operator's `read_at` for a case
-- is when they last opened its page. New mail for them = last_inbound_at > read_at.
ALTER TABLE interventions ADD COLUMN last_inbound_at TEXT;
UPDATE interventions SET last_inbound_at = (
    SELECT max(m.created_at) FROM messages m
    WHERE m.intervention_number = interventions.number AND m.direction = 'in');

CREATE TABLE operator_reads (
    operator_id          BIGINT NOT NULL REFERENCES operators(id),
    intervention_number  BIGINT NOT NULL REFERENCES interventions(number),
    read_at              TEXT NOT NULL,
    PRIMARY KEY (operator_id, intervention_number)
);

-- The list's default order: last activity first (updated_at moves with every message).
CREATE INDEX interventions_by_activity ON interventions(updated_at, number);
