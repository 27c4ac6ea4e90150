-- Actions on the ranked (末位: 约谈, off-post training, adjustment; the top: commendation).
CREATE TABLE actions (
    id          BIGSERIAL   PRIMARY KEY,
    region_code TEXT        NOT NULL,
    period      TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    note        TEXT        NOT NULL,
    recorded_by TEXT        NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (region_code, period, key, action)
);

-- Published bulletins (通报), as rendered.
CREATE TABLE bulletins (
    id           UUID        PRIMARY KEY,
    region_code  TEXT        NOT NULL,
    period       TEXT        NOT NULL,
    markdown     TEXT        NOT NULL,
    html         TEXT        NOT NULL,
    published_by TEXT        NOT NULL,
    published_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
