-- Rule sets by region and version (a new version applies from its effective date; the
-- starter set of the city is loaded from the repository at start).
CREATE TABLE rule_sets (
    id             BIGSERIAL   PRIMARY KEY,
    region_code    TEXT        NOT NULL,
    version        TEXT        NOT NULL,
    effective_from DATE        NOT NULL,
    body           TEXT        NOT NULL,
    loaded_by      TEXT        NOT NULL,
    loaded_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (region_code, version)
);

-- The facts the rules count (a counting rule looks at one person's facts in a window).
CREATE TABLE facts (
    event_id    UUID    NOT NULL,
    kind        TEXT    NOT NULL,
    region_code TEXT    NOT NULL,
    unit        TEXT    NOT NULL,
    person      TEXT    NOT NULL,
    on_date     DATE    NOT NULL,
    PRIMARY KEY (event_id, kind)
);
CREATE INDEX facts_person ON facts (kind, person, on_date);

-- Supervision records: one per (rule, event), or per (rule, person, month) for a counting
-- rule, whatever the order or the number of deliveries.
CREATE TABLE records (
    id           UUID        PRIMARY KEY,
    dedupe_key   TEXT        NOT NULL UNIQUE,
    rule_id      TEXT        NOT NULL,
    rule_version TEXT        NOT NULL,
    region_code  TEXT        NOT NULL,
    level        TEXT        NOT NULL,
    title        TEXT        NOT NULL,
    unit         TEXT        NOT NULL,
    person       TEXT        NOT NULL,
    subject      TEXT        NOT NULL,
    evidence     UUID[]      NOT NULL,
    on_date      DATE        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX records_region ON records (region_code text_pattern_ops, on_date DESC);
