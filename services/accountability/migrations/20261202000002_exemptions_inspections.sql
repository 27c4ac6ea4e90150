-- A fact's attributes, so a proposed rule set can be replayed over a past period (what-if).
ALTER TABLE facts ADD COLUMN attrs JSONB NOT NULL DEFAULT '{}';
ALTER TABLE facts ADD COLUMN subject TEXT NOT NULL DEFAULT '';
CREATE INDEX facts_region_date ON facts (region_code text_pattern_ops, on_date);

-- 容错纠错: an exemption keeps the record and takes it out of the scores.
ALTER TABLE records ADD COLUMN exemption_reason TEXT;
ALTER TABLE records ADD COLUMN exemption_approver TEXT;
ALTER TABLE records ADD COLUMN exemption_date DATE;

-- Inspections (明查暗访, 模拟办事, 随机抽查): each finding is a record against a unit or person.
CREATE TABLE inspections (
    id          UUID        PRIMARY KEY,
    region_code TEXT        NOT NULL,
    kind        TEXT        NOT NULL,
    place       TEXT        NOT NULL,
    inspector   TEXT        NOT NULL,
    on_date     DATE        NOT NULL,
    photos      TEXT[]      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
