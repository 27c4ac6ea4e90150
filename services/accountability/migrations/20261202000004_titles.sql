-- Demonstration units (示范点): a title per unit and year, kept or lost with its reasons.
CREATE TABLE titles (
    region_code TEXT        NOT NULL,
    unit        TEXT        NOT NULL,
    year        INT         NOT NULL,
    status      TEXT        NOT NULL,
    reasons     TEXT[]      NOT NULL DEFAULT '{}',
    changed_by  TEXT        NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region_code, unit, year)
);
