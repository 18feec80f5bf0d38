-- One row the readiness check rewrites: proof that the database can still commit (a full
-- disk fails here first, and /readyz says so).
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
);
INSERT INTO readiness_probe (id, checked_at) VALUES (1, '1970-01-01T00:00:00.000000Z');
