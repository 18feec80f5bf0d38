-- Limits and the mediator desk (issues 10 and 11): case labels and mediators' pauses, kiosk
-- codes, damaged blobs, aggregated security events and the counters the limits read.

-- A short name the coordinator gives a case ("Case 12", or their own words): the desk shows it,
-- never the raw id. Existing cases get "Case <n>" in the order they were opened.
ALTER TABLE cases ADD COLUMN label TEXT;
UPDATE cases SET label = 'Case ' || (SELECT COUNT(*) FROM cases c2 WHERE c2.created_at <= cases.created_at);

-- Who paused the case (a mediator's ongoing safety assessment, or the coordinator) and the
-- reason code from the fixed list (relay.wire.PAUSE_REASONS). NULL while the case is not paused.
ALTER TABLE cases ADD COLUMN paused_by TEXT REFERENCES people(id);
ALTER TABLE cases ADD COLUMN paused_at TEXT;
ALTER TABLE cases ADD COLUMN pause_reason TEXT;

-- A participant's kiosk code: only its hash (BLAKE2b-256 of the normalized code), so the relay
-- resolves a typed code but cannot show it again. Unique while set.
ALTER TABLE people ADD COLUMN kiosk_code_hash TEXT;
CREATE UNIQUE INDEX people_by_kiosk_code ON people(kiosk_code_hash) WHERE kiosk_code_hash IS NOT NULL;

-- A scrub found a stored blob of the item whose size or hash differs from what was signed:
-- when, and which blob ('original', 'delivery', 'poster'). Fetching that blob is refused.
ALTER TABLE items ADD COLUMN damaged_at TEXT;
ALTER TABLE items ADD COLUMN damaged_part TEXT;

-- Repeated refusals (failed sign-ins, refused challenges, a revoked device's requests) go into
-- the audit chain once per actor, reason and window; the repeats are counted here and written
-- as one summary entry when the window closes, so no one can grow the chain at will.
CREATE TABLE security_tallies (
    action        TEXT NOT NULL,
    actor_person  TEXT NOT NULL DEFAULT '',
    actor_device  TEXT NOT NULL DEFAULT '',
    case_id       TEXT NOT NULL DEFAULT '',
    item_id       TEXT NOT NULL DEFAULT '',
    subject       TEXT NOT NULL DEFAULT '',
    code          TEXT NOT NULL DEFAULT '',
    window_start  TEXT NOT NULL,
    window_end    TEXT NOT NULL,
    repeats       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (action, actor_person, actor_device, case_id, item_id, subject, code)
);
CREATE INDEX security_tallies_by_end ON security_tallies(window_end);

-- Attempts a limit counts, by what is limited and by whom (a terminal's wrong kiosk codes).
CREATE TABLE limit_events (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    at    TEXT NOT NULL
);
CREATE INDEX limit_events_by_key ON limit_events(kind, key, at);

-- Quotas read the sender's items of the last day.
CREATE INDEX items_by_sender_state ON items(sender_id, state);

-- A case's timeline reads its audit entries.
CREATE INDEX audit_log_by_case ON audit_log(case_id, seq);
