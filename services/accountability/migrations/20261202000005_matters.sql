-- The visits each matter promises at most (from the catalog's MatterPublished): what the
-- visits of one case are held against (最多跑一次).
CREATE TABLE matters (
    matter_id  TEXT PRIMARY KEY,
    max_visits INT  NOT NULL
);
CREATE INDEX facts_subject ON facts (kind, subject);
