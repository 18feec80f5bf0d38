-- Version 1 of the relay's metadata. Content never lives here: items point at ciphertext blobs,
-- manifests carry only ids, sizes, hashes and sealed keys. Times are RFC 3339 UTC text
-- ("2026-11-21T19:27:28.123456Z"), which sorts correctly as text.

CREATE TABLE institutions (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE people (
    id              TEXT PRIMARY KEY,
    role            TEXT NOT NULL CHECK (role IN ('coordinator', 'mediator', 'participant')),
    relation        TEXT CHECK (relation IN ('victim', 'victim_representative', 'victim_family',
                                             'offender_family', 'offender')),
    label           TEXT NOT NULL,
    institution_id  TEXT REFERENCES institutions(id),
    sign_pk         TEXT NOT NULL UNIQUE,
    box_pk          TEXT NOT NULL,
    enrollment      TEXT NOT NULL,
    enrollment_sig  TEXT NOT NULL,
    key_bundle      BLOB,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at      TEXT NOT NULL,
    CHECK ((role = 'participant') = (relation IS NOT NULL))
);

CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('participant_device', 'mediator_desk', 'terminal',
                                                  'coordinator_console')),
    person_id       TEXT REFERENCES people(id),
    institution_id  TEXT REFERENCES institutions(id),
    label           TEXT NOT NULL,
    token_hash      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at      TEXT NOT NULL,
    revoked_at      TEXT,
    CHECK ((kind = 'terminal') = (institution_id IS NOT NULL AND person_id IS NULL)),
    CHECK ((kind = 'terminal') OR (person_id IS NOT NULL))
);

-- Single-use, short-lived: the first coordinator's enrollment code printed at first start.
CREATE TABLE bootstrap_codes (
    id          TEXT PRIMARY KEY,
    code_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);

CREATE TABLE challenges (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    person_id   TEXT NOT NULL REFERENCES people(id),
    nonce       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL REFERENCES devices(id),
    person_id     TEXT NOT NULL REFERENCES people(id),
    secret_hash   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    ended_at      TEXT
);
CREATE INDEX sessions_by_device ON sessions(device_id);

-- Key bundle fetches, kept to rate-limit offline guessing per person.
CREATE TABLE bundle_fetches (
    person_id   TEXT NOT NULL REFERENCES people(id),
    device_id   TEXT NOT NULL REFERENCES devices(id),
    at          TEXT NOT NULL
);
CREATE INDEX bundle_fetches_by_person ON bundle_fetches(person_id, at);

CREATE TABLE cases (
    id               TEXT PRIMARY KEY,
    institution_id   TEXT NOT NULL REFERENCES institutions(id),
    referral_source  TEXT NOT NULL CHECK (referral_source IN ('victim', 'institutional', 'community')),
    status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paused', 'closed')),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE case_participants (
    case_id             TEXT NOT NULL REFERENCES cases(id),
    person_id           TEXT NOT NULL REFERENCES people(id),
    consent             TEXT NOT NULL DEFAULT 'given' CHECK (consent IN ('given', 'withdrawn')),
    consent_changed_at  TEXT NOT NULL,
    PRIMARY KEY (case_id, person_id)
);
CREATE INDEX case_participants_by_person ON case_participants(person_id);

CREATE TABLE case_mediators (
    case_id    TEXT NOT NULL REFERENCES cases(id),
    person_id  TEXT NOT NULL REFERENCES people(id),
    PRIMARY KEY (case_id, person_id)
);
CREATE INDEX case_mediators_by_person ON case_mediators(person_id);

CREATE TABLE items (
    id                TEXT PRIMARY KEY,
    case_id           TEXT NOT NULL REFERENCES cases(id),
    kind              TEXT NOT NULL CHECK (kind IN ('letter', 'video')),
    sender_id         TEXT NOT NULL REFERENCES people(id),
    recipient_id      TEXT REFERENCES people(id),          -- NULL: addressed to the case's mediators
    state             TEXT NOT NULL CHECK (state IN ('uploading', 'pending_review', 'released',
                          'delivered', 'returned', 'withheld', 'held', 'expired', 'purged')),
    manifest          TEXT NOT NULL,
    manifest_sig      TEXT NOT NULL,
    manifest_hash     TEXT NOT NULL,
    content_type      TEXT NOT NULL,
    size              INTEGER NOT NULL,
    hash              TEXT NOT NULL,
    blob_id           TEXT NOT NULL,
    created_at        TEXT NOT NULL,    -- as signed by the sender
    submitted_at      TEXT NOT NULL,    -- server time the upload was acknowledged
    decision          TEXT CHECK (decision IN ('release', 'return', 'withhold')),
    decision_doc      TEXT,
    decision_sig      TEXT,
    decision_hash     TEXT,
    decided_by        TEXT REFERENCES people(id),
    decided_at        TEXT,
    reason_code       TEXT,
    delivery_blob_id  TEXT,
    held_from         TEXT,            -- the state an item was in when screening held it
    hold_code         TEXT,
    first_opened_at   TEXT,
    receipt_doc       TEXT,
    receipt_sig       TEXT
);
CREATE INDEX items_by_case_state ON items(case_id, state, submitted_at);
CREATE INDEX items_by_recipient ON items(recipient_id, state);
CREATE INDEX items_by_sender ON items(sender_id, submitted_at);

-- Hash-linked, append-only, metadata only: who, what, which case/item, when, a code. Never content.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    action        TEXT NOT NULL,
    actor_person  TEXT,
    actor_device  TEXT,
    case_id       TEXT,
    item_id       TEXT,
    subject       TEXT,
    code          TEXT,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
