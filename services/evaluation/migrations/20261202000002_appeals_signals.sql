-- 申诉复核: the rated unit's appeal and its decision; an upheld appeal keeps the rating on
-- record and out of the statistics.
ALTER TABLE ratings ADD COLUMN appeal JSONB;
ALTER TABLE ratings ADD COLUMN excluded BOOLEAN NOT NULL DEFAULT false;
-- The device or phone a rating came from (manipulation signals; never shown publicly).
ALTER TABLE ratings ADD COLUMN device TEXT NOT NULL DEFAULT '';
CREATE INDEX ratings_device ON ratings (device, rated_at) WHERE device <> '';

-- Manipulation signals for the efficiency office: flagged, never dropped.
CREATE TABLE manipulation_flags (
    id             UUID        PRIMARY KEY,
    region_code    TEXT        NOT NULL,
    kind           TEXT        NOT NULL,
    subject        TEXT        NOT NULL,
    ratings        INT         NOT NULL,
    window_minutes INT         NOT NULL,
    rating_ids     UUID[]      NOT NULL,
    flagged_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX manipulation_flags_subject ON manipulation_flags (kind, subject, flagged_at DESC);
CREATE INDEX manipulation_flags_region ON manipulation_flags (region_code text_pattern_ops, flagged_at DESC);
