-- The timesheet lists the current activities (superseded_by IS NULL) of a date range by
-- day, then id. An index of only the current ones by (day, id) gives that order without
-- a sort and never reads a replaced report's row. It takes the place of the index by
-- day and employee: a technician's days are read through activities_by_employee.
DROP INDEX activities_by_day;
CREATE INDEX activities_current_by_day ON activities(day, id) WHERE superseded_by IS NULL;
