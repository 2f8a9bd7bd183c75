-- The same index as the SQLite migration of this number (which explains it).
DROP INDEX activities_by_day;
CREATE INDEX activities_current_by_day ON activities(day, id) WHERE superseded_by IS NULL;
