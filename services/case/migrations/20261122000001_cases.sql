-- Cases (办件). `body` is the domain record (state machine input, applicant, notices);
-- the columns beside it are what queries, deadlines and timers need.
CREATE TABLE cases (
    id                 UUID        PRIMARY KEY,
    region_code        TEXT        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    matter_id          UUID        NOT NULL,
    matter_version     INT         NOT NULL,
    matter_name        TEXT        NOT NULL,
    state              TEXT        NOT NULL,
    version            BIGINT      NOT NULL DEFAULT 1,
    body               JSONB       NOT NULL,
    promised_limit     INT         NOT NULL,
    statutory_limit    INT         NOT NULL,
    first_responsible  TEXT        NOT NULL,
    submitted_on       DATE        NOT NULL,
    accepted_on        DATE,
    promised_deadline  DATE,
    statutory_deadline DATE,
    tolerance_due      DATE,
    request_id         TEXT        UNIQUE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX cases_region ON cases (region_code text_pattern_ops, created_at DESC);

-- Every change of every case, with actor, role, time and reason (电子监察).
CREATE TABLE case_history (
    id         BIGSERIAL   PRIMARY KEY,
    case_id    UUID        NOT NULL REFERENCES cases (id),
    action     TEXT        NOT NULL,
    from_state TEXT        NOT NULL,
    to_state   TEXT        NOT NULL,
    actor      TEXT        NOT NULL,
    actor_role TEXT        NOT NULL,
    reason     TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX case_history_case ON case_history (case_id, id);
