-- Retention: when a case was closed, whether it is under a legal hold, per-case overrides of the
-- schedule, the counts of purged items by rule, and the audit chain's anchor once old entries go.

ALTER TABLE cases ADD COLUMN closed_at TEXT;
UPDATE cases SET closed_at = updated_at WHERE status = 'closed';

-- The newest submission or decision in the case: new activity shortly before something would
-- go gives it the schedule's grace period.
ALTER TABLE cases ADD COLUMN last_activity_at TEXT;
UPDATE cases SET last_activity_at = (SELECT MAX(submitted_at) FROM items WHERE items.case_id = cases.id);
UPDATE cases SET last_activity_at = (SELECT MAX(decided_at) FROM items WHERE items.case_id = cases.id)
    WHERE (SELECT MAX(decided_at) FROM items WHERE items.case_id = cases.id) > COALESCE(last_activity_at, '');

-- NULL: no hold. While set, nothing of the case is purged, by any rule.
ALTER TABLE cases ADD COLUMN legal_hold_since TEXT;
ALTER TABLE cases ADD COLUMN legal_hold_by TEXT REFERENCES people(id);

-- A coordinator's per-case length for one rule of the schedule (in days).
CREATE TABLE retention_overrides (
    case_id  TEXT NOT NULL REFERENCES cases(id),
    rule     TEXT NOT NULL CHECK (rule IN ('review_wait', 'released_undelivered', 'after_delivery',
                                           'returned_or_withheld', 'closed_case')),
    days     INTEGER NOT NULL CHECK (days >= 1),
    set_by   TEXT REFERENCES people(id),
    set_at   TEXT NOT NULL,
    PRIMARY KEY (case_id, rule)
);

-- An item being purged, the rule that took it and the state it was in. 'expired': marked, served
-- to no one, its blobs still whole (a legal hold puts it back as it was); 'purged': its deletion
-- has begun and will be finished. The row goes once its blobs are gone.
ALTER TABLE items ADD COLUMN purge_rule TEXT;
ALTER TABLE items ADD COLUMN purge_from TEXT;
CREATE INDEX items_by_state ON items(state);

-- How many items each rule purged, for the operator (the tombstones say the same, item by item,
-- but audit entries themselves expire).
CREATE TABLE retention_counts (
    rule    TEXT PRIMARY KEY,
    purged  INTEGER NOT NULL DEFAULT 0
);

-- The schedule the relay last started with, so `relay purge` run by hand applies the same one.
CREATE TABLE retention_schedule (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    schedule     TEXT NOT NULL,       -- JSON: each setting in seconds
    recorded_at  TEXT NOT NULL
);

-- One row per purge run, the newest kept: when it ran and what it did (counts only).
CREATE TABLE retention_runs (
    id           INTEGER PRIMARY KEY,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    items        INTEGER NOT NULL DEFAULT 0,
    uploads      INTEGER NOT NULL DEFAULT 0,
    sessions     INTEGER NOT NULL DEFAULT 0,
    audit        INTEGER NOT NULL DEFAULT 0
);

-- Audit entries older than the schedule's audit_entry period go from the start of the chain.
-- The anchor keeps the hash of the newest entry removed, so the rest still verifies, and an
-- entry can be deleted only once the anchor covers it: nothing else can cut the chain.
CREATE TABLE audit_anchor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    seq      INTEGER NOT NULL,
    hash     TEXT NOT NULL,
    at       TEXT NOT NULL
);

CREATE TRIGGER audit_log_delete_only_behind_anchor BEFORE DELETE ON audit_log
WHEN OLD.seq > COALESCE((SELECT seq FROM audit_anchor WHERE id = 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log entries go only from the start, behind the anchor');
END;
