-- The timer index: every escalation, deemed acceptance and 容缺 due date of every case that
-- can still fire, with the moment it is due. The firing loop reads only rows that are due
-- (partial index), never every open case. A fired row stays (fired_at set): each fires once.
CREATE TABLE case_timers (
    case_id   UUID        NOT NULL REFERENCES cases (id),
    -- warning | yellow_card | red_card | deemed_acceptance | tolerance_due
    kind      TEXT        NOT NULL,
    -- promised | statutory | certificate | step:<department> | case
    clock     TEXT        NOT NULL,
    due_at    TIMESTAMPTZ NOT NULL,
    -- The deadline the escalation is about (escalations only).
    deadline  DATE,
    fired_at  TIMESTAMPTZ,
    PRIMARY KEY (case_id, clock, kind)
);
CREATE INDEX case_timers_due ON case_timers (due_at) WHERE fired_at IS NULL;

-- Key-project flags supervisors filter on (also in the body).
ALTER TABLE cases ADD COLUMN joint BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE cases ADD COLUMN supervised BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX cases_flagged ON cases (region_code text_pattern_ops) WHERE joint OR supervised;

-- The business time of a history entry is set by the service (its clock may run on a drill date).
ALTER TABLE case_history ALTER COLUMN at DROP DEFAULT;

-- Inquiries (咨询): 首问负责 starts here when the citizen asks before applying.
CREATE TABLE inquiries (
    id                UUID        PRIMARY KEY,
    region_code       TEXT        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    body              JSONB       NOT NULL,
    first_responsible TEXT        NOT NULL,
    case_id           UUID        REFERENCES cases (id),
    created_at        TIMESTAMPTZ NOT NULL
);
