-- Departments (部门) per region.
CREATE TABLE departments (
    id           UUID        PRIMARY KEY,
    region_code  TEXT        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    code         TEXT        NOT NULL,
    display_name TEXT        NOT NULL,
    request_id   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT departments_code_unique UNIQUE (region_code, code)
);
CREATE UNIQUE INDEX departments_request_id ON departments (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX departments_region ON departments (region_code text_pattern_ops, id);
