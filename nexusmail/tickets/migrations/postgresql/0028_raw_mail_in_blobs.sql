-- 1: the mail's bytes are in the blob store under its sha256 (an S3 store, shared by the
-- daemons of a cluster), and data is empty; 0: data holds them, as before.
ALTER TABLE raw_messages ADD COLUMN in_blobs INTEGER NOT NULL DEFAULT 0;
