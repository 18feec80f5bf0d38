-- Screening facts. No-contact conditions (court non-communication orders, parole no-contact conditions,
-- institutional ones) and the national unit's approvals of facilitated communication.
-- A condition is never edited silently: every version is kept in condition_versions and each
-- change is an audit entry. Lifting sets lifted_at; nothing is deleted.

CREATE TABLE conditions (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('court_order', 'parole_condition', 'institutional')),
    reference          TEXT NOT NULL,
    restricted_id      TEXT NOT NULL REFERENCES people(id),
    protected_people   TEXT NOT NULL,          -- JSON array of person ids
    protected_case_id  TEXT REFERENCES cases(id),
    protected_side     TEXT CHECK (protected_side IN ('victim', 'offender')),
    direction          TEXT NOT NULL CHECK (direction IN ('from_restricted', 'to_restricted', 'both')),
    effective_from     TEXT NOT NULL,
    effective_until    TEXT,
    program_exception  INTEGER NOT NULL CHECK (program_exception IN (0, 1)),
    version            INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    lifted_at          TEXT,
    CHECK ((protected_case_id IS NULL) = (protected_side IS NULL))
);
CREATE INDEX conditions_by_restricted ON conditions(restricted_id);
CREATE INDEX conditions_by_case ON conditions(protected_case_id);

CREATE TABLE condition_versions (
    condition_id  TEXT NOT NULL REFERENCES conditions(id),
    version       INTEGER NOT NULL,
    recorded_at   TEXT NOT NULL,
    recorded_by   TEXT REFERENCES people(id),
    change        TEXT NOT NULL CHECK (change IN ('added', 'amended', 'lifted')),
    snapshot      TEXT NOT NULL,               -- canonical JSON of the condition as of this version
    PRIMARY KEY (condition_id, version)
);

CREATE TABLE approvals (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases(id),
    condition_id  TEXT NOT NULL REFERENCES conditions(id),
    directions    TEXT NOT NULL,               -- JSON array: from_restricted, to_restricted
    kinds         TEXT NOT NULL,               -- JSON array: letter, video
    approved_by   TEXT NOT NULL REFERENCES people(id),
    approved_at   TEXT NOT NULL,
    valid_until   TEXT NOT NULL,
    revoked_at    TEXT,
    revoked_by    TEXT REFERENCES people(id)
);
CREATE INDEX approvals_by_case ON approvals(case_id);

-- An item whose submission screening referred to the national unit.
ALTER TABLE items ADD COLUMN screening_code TEXT;

-- A key-bundle fetch followed by its owner's sign-in on that terminal no longer counts against
-- the per-person limit: only fetches that never led to a sign-in look like guessing.
ALTER TABLE bundle_fetches ADD COLUMN redeemed_at TEXT;
