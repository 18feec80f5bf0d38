-- Resumable uploads of ciphertext (the tus 1.0 protocol): bytes land in blobs/uploads/<id>.part,
-- and only an acknowledged offset is recorded, after the bytes up to it were fsynced.
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    person_id     TEXT NOT NULL REFERENCES people(id),
    device_id     TEXT NOT NULL REFERENCES devices(id),
    length        INTEGER NOT NULL CHECK (length > 0),
    offset        INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX uploads_by_expiry ON uploads(expires_at);
