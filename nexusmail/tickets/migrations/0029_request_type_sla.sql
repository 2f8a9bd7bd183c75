-- A request type may carry its own SLA: the response and resolution hours a case of
-- this type gets when no contract of its customer sets them (NULL: the [sla] defaults).
ALTER TABLE request_types ADD COLUMN response_hours REAL;
ALTER TABLE request_types ADD COLUMN resolution_hours REAL;
