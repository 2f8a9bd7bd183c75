-- The language an operator reads the admin page in (en | it | ro); NULL: the
-- browser's Accept-Language, then [web] default_language.
ALTER TABLE operators ADD COLUMN language TEXT;
