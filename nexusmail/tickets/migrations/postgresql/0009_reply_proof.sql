-- Replies to assignment mails: which answers were applied, so an earlier answer sent
-- again (with a new Message-ID) cannot flip a decision back, and the date of the answer
-- in force, so an older one arriving late does not override a newer one.
ALTER TABLE assignments ADD COLUMN decided_mail_date TEXT;
CREATE TABLE assignment_answers (
    assignment_id  BIGINT NOT NULL REFERENCES assignments(id),
    body_sha256    TEXT NOT NULL,       -- of what the technician wrote, whitespace folded
    verdict        TEXT NOT NULL,
    applied_at     TEXT NOT NULL,
    PRIMARY KEY (assignment_id, body_sha256)
);
