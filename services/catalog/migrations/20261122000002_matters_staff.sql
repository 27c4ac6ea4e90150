-- Matters (事项) and their versions (办事指南). A version's terms are the protobuf MatterTerms;
-- the columns beside them are what lists, filters and search need.
CREATE TABLE matters (
    id                  UUID        PRIMARY KEY,
    region_code         TEXT        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    implementation_code TEXT        NOT NULL,
    retire_date         DATE,
    retire_reason       TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT matters_code_unique UNIQUE (region_code, implementation_code)
);

CREATE TABLE matter_versions (
    matter_id      UUID        NOT NULL REFERENCES matters (id),
    version        INT         NOT NULL CHECK (version > 0),
    state          TEXT        NOT NULL CHECK (state IN ('draft', 'published')),
    effective_date DATE,
    terms          BYTEA       NOT NULL,
    name           TEXT        NOT NULL,
    department_id  UUID        NOT NULL REFERENCES departments (id),
    matter_type    INT         NOT NULL,
    channels       INT[]       NOT NULL,
    keywords       TEXT[]      NOT NULL,
    search_text    TEXT        NOT NULL,
    request_id     TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at   TIMESTAMPTZ,
    PRIMARY KEY (matter_id, version),
    CHECK ((state = 'published') = (effective_date IS NOT NULL))
);
CREATE UNIQUE INDEX matter_versions_request_id ON matter_versions (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX matter_versions_in_force ON matter_versions (matter_id, effective_date DESC) WHERE state = 'published';

-- Posts (股室/岗位), staff (工牌), certificates (执法证).
CREATE TABLE posts (
    id            UUID PRIMARY KEY,
    department_id UUID NOT NULL REFERENCES departments (id),
    region_code   TEXT NOT NULL,
    name          TEXT NOT NULL,
    duties        TEXT NOT NULL,
    a_staff_id    UUID,
    b_staff_id    UUID,
    CONSTRAINT posts_name_unique UNIQUE (department_id, name)
);

CREATE TABLE staff (
    id            UUID    PRIMARY KEY,
    department_id UUID    NOT NULL REFERENCES departments (id),
    region_code   TEXT    NOT NULL,
    post_id       UUID    REFERENCES posts (id),
    name          TEXT    NOT NULL,
    badge_number  TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    main_business TEXT    NOT NULL,
    trained       BOOLEAN NOT NULL,
    CONSTRAINT staff_badge_unique UNIQUE (region_code, badge_number)
);
ALTER TABLE posts ADD CONSTRAINT posts_a_staff FOREIGN KEY (a_staff_id) REFERENCES staff (id);
ALTER TABLE posts ADD CONSTRAINT posts_b_staff FOREIGN KEY (b_staff_id) REFERENCES staff (id);

CREATE TABLE certificates (
    id            UUID        PRIMARY KEY,
    staff_id      UUID        NOT NULL REFERENCES staff (id),
    region_code   TEXT        NOT NULL,
    number        TEXT        NOT NULL,
    scope         TEXT        NOT NULL,
    issue_date    DATE        NOT NULL,
    expiry_date   DATE        NOT NULL,
    revoked_at    TIMESTAMPTZ,
    revoke_reason TEXT,
    CONSTRAINT certificates_number_unique UNIQUE (number),
    CHECK (expiry_date > issue_date)
);
CREATE INDEX certificates_expiry ON certificates (region_code, expiry_date) WHERE revoked_at IS NULL;

CREATE TABLE staff_matters (
    staff_id  UUID NOT NULL REFERENCES staff (id),
    matter_id UUID NOT NULL REFERENCES matters (id),
    PRIMARY KEY (staff_id, matter_id)
);
