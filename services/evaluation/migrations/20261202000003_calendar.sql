-- The calendar notices the case service loaded (consumed from its events): the same live
-- calendar, so 差评 loop deadlines follow a new year's notice or a region's closure too. The
-- id is this service's calendar epoch.
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
-- The epoch a rating's loop deadline was computed under.
ALTER TABLE ratings ADD COLUMN calendar_epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX ratings_calendar_behind ON ratings (calendar_epoch) WHERE loop_state NOT IN ('closed', 'escalated');
