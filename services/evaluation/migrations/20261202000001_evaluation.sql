-- Invitations (评价邀请): one per service occurrence, opened from the queue's and the case
-- service's events. `source_key` (ticket:<id> or case:<id>) makes a redelivered event open
-- nothing twice.
CREATE TABLE invitations (
    id          UUID        PRIMARY KEY,
    region_code TEXT        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    occurrence  TEXT        NOT NULL,
    source_key  TEXT        NOT NULL UNIQUE,
    ticket_id   TEXT        NOT NULL,
    case_id     TEXT        NOT NULL,
    matter_id   TEXT        NOT NULL,
    matter_name TEXT        NOT NULL,
    window_code TEXT        NOT NULL,
    hall_id     TEXT        NOT NULL,
    department  TEXT        NOT NULL,
    staff_id    TEXT        NOT NULL,
    citizen_id  TEXT        NOT NULL,
    opened_at   TIMESTAMPTZ NOT NULL,
    rate_by     DATE        NOT NULL,
    rating_id   UUID
);
CREATE INDEX invitations_region ON invitations (region_code text_pattern_ops, opened_at DESC);

-- Ratings: at most one per invitation. `bad_loop` is the 差评 closed loop (JSON), with the
-- columns the statistics and the overdue pass read beside it.
CREATE TABLE ratings (
    id            UUID        PRIMARY KEY,
    invitation_id UUID        NOT NULL UNIQUE REFERENCES invitations (id),
    region_code   TEXT        NOT NULL,
    level         INT         NOT NULL CHECK (level BETWEEN 1 AND 5),
    scores        JSONB       NOT NULL,
    comment       TEXT        NOT NULL,
    tags          TEXT[]      NOT NULL,
    reason        TEXT        NOT NULL,
    channel       INT         NOT NULL,
    anonymous     BOOLEAN     NOT NULL,
    follow_up     TEXT        NOT NULL DEFAULT '',
    rater         TEXT        NOT NULL,
    rated_at      TIMESTAMPTZ NOT NULL,
    rated_on      DATE        NOT NULL,
    bad_loop      JSONB,
    loop_state    TEXT,
    step_due      DATE,
    overdue_notified_for DATE,
    version       BIGINT      NOT NULL DEFAULT 1
);
CREATE INDEX ratings_region ON ratings (region_code text_pattern_ops, rated_on);
CREATE INDEX ratings_open_loops ON ratings (step_due) WHERE loop_state NOT IN ('closed', 'escalated');
