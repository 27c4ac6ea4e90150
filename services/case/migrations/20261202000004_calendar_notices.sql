-- Calendar notices loaded at run time (a new year's State Council notice, a region's
-- overlay). The id is the epoch: every replica applies the notices up to the highest id.
CREATE TABLE calendar_notices (
    id         BIGSERIAL   PRIMARY KEY,
    -- national:<year> | region:<code>
    scope      TEXT        NOT NULL,
    version    TEXT        NOT NULL,
    source     TEXT        NOT NULL,
    fabricated BOOLEAN     NOT NULL,
    -- The notice as loaded (TOML), validated on the way in.
    body       TEXT        NOT NULL,
    loaded_by  TEXT        NOT NULL,
    loaded_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (scope, version)
);

-- The calendar epoch a case's deadlines were last computed under, and whether one of them
-- falls past the calendar's official coverage (counted Monday–Friday, provisional).
ALTER TABLE cases ADD COLUMN calendar_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN provisional BOOLEAN NOT NULL DEFAULT false;
-- Open cases behind the calendar: what the recompute pass reads, in batches.
CREATE INDEX cases_calendar_behind ON cases (calendar_epoch, id)
    WHERE state NOT IN ('Closed', 'Withdrawn', 'NotAccepted', 'Returned', 'Delivered', 'Denied');
CREATE INDEX cases_provisional ON cases (region_code) WHERE provisional;
-- A timer whose deadline is past the calendar's coverage fires on a provisional date.
ALTER TABLE case_timers ADD COLUMN provisional BOOLEAN NOT NULL DEFAULT false;
