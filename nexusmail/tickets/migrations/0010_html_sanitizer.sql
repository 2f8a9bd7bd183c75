-- Which version of the sanitizer (mail.html.SANITIZER_VERSION) made a message's
-- body_html. The page shows body_html as stored when it is the current version, so a
-- mail's HTML is sanitized once, at ingest, not on every view; NULL (rows from before
-- this column, HTML stored by other means) or an older version is sanitized again when
-- first shown, and the result stored with the version.
ALTER TABLE messages ADD COLUMN html_sanitizer INTEGER;
