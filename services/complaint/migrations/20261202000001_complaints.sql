-- Complaints (投诉举报). The complainant's identity is never stored in clear: it is sealed
-- (AES-256-GCM, the complaint id as associated data) with the key `identity_key_id` names;
-- `complainant_hash` (HMAC) finds the same complainant's open complaint to merge into and
-- `filer_hash` (HMAC of the filing account) a citizen's own.
CREATE TABLE complaints (
    id                  UUID        PRIMARY KEY,
    region_code         TEXT        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    kind                TEXT        NOT NULL,
    category            TEXT        NOT NULL,
    channel             TEXT        NOT NULL,
    target_kind         TEXT        NOT NULL,
    target_id           TEXT        NOT NULL,
    target_department   TEXT        NOT NULL,
    description         TEXT        NOT NULL,
    attachments         TEXT[]      NOT NULL,
    anonymous           BOOLEAN     NOT NULL,
    fast_track          BOOLEAN     NOT NULL,
    state               TEXT        NOT NULL,
    assigned_to         TEXT        NOT NULL,
    to_discipline       BOOLEAN     NOT NULL,
    started_on          DATE        NOT NULL,
    due_on              DATE,
    escalated           BOOLEAN     NOT NULL DEFAULT false,
    extended            BOOLEAN     NOT NULL DEFAULT false,
    extension_reason    TEXT        NOT NULL DEFAULT '',
    finding             TEXT,
    findings            TEXT        NOT NULL DEFAULT '',
    responsible_unit    TEXT        NOT NULL DEFAULT '',
    responsible_person  TEXT        NOT NULL DEFAULT '',
    reply               TEXT        NOT NULL DEFAULT '',
    satisfaction        TEXT        NOT NULL DEFAULT '',
    callback_note       TEXT        NOT NULL DEFAULT '',
    reopened            INT         NOT NULL DEFAULT 0,
    merged              INT         NOT NULL DEFAULT 0,
    linked_case_id      TEXT        NOT NULL DEFAULT '',
    linked_complaint_id TEXT        NOT NULL DEFAULT '',
    filed_at            TIMESTAMPTZ NOT NULL,
    version             BIGINT      NOT NULL DEFAULT 1,
    filer_hash          TEXT        NOT NULL DEFAULT '',
    complainant_hash    TEXT,
    identity_key_id     TEXT,
    identity_nonce      BYTEA,
    identity_cipher     BYTEA,
    -- The deadline a reminder (催办) and an escalation were sent for: once per deadline.
    reminded_for        DATE,
    escalated_for       DATE
);
CREATE INDEX complaints_region ON complaints (region_code text_pattern_ops, id DESC);
CREATE INDEX complaints_merge ON complaints (complainant_hash, target_kind, target_id, category, filed_at DESC)
    WHERE state <> 'closed' AND complainant_hash IS NOT NULL;
CREATE INDEX complaints_running ON complaints (due_on)
    WHERE state IN ('registered', 'assigned', 'investigating', 'concluded');
CREATE INDEX complaints_filer ON complaints (filer_hash) WHERE filer_hash <> '';

-- The later filings merged into a complaint (their substance, never an identity).
CREATE TABLE complaint_merges (
    id           BIGSERIAL   PRIMARY KEY,
    complaint_id UUID        NOT NULL REFERENCES complaints (id),
    channel      TEXT        NOT NULL,
    description  TEXT        NOT NULL,
    merged_at    TIMESTAMPTZ NOT NULL
);

-- Every read of a complainant's identity: who, when, why.
CREATE TABLE identity_reads (
    id           BIGSERIAL   PRIMARY KEY,
    complaint_id UUID        NOT NULL REFERENCES complaints (id),
    region_code  TEXT        NOT NULL,
    reader       TEXT        NOT NULL,
    purpose      TEXT        NOT NULL,
    read_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX identity_reads_region ON identity_reads (region_code text_pattern_ops, read_at DESC);

-- The calendar notices the case service loaded (consumed from its events): the same live
-- calendar, so the complaint limits follow a new year's notice or a region's closure.
CREATE TABLE calendar_notices (
    id         BIGSERIAL   PRIMARY KEY,
    scope      TEXT        NOT NULL,
    version    TEXT        NOT NULL,
    source     TEXT        NOT NULL,
    fabricated BOOLEAN     NOT NULL,
    body       TEXT        NOT NULL,
    loaded_by  TEXT        NOT NULL,
    loaded_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (scope, version)
);
