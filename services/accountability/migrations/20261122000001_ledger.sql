-- The supervision ledger (电子监察台账): every event accountability applied.
-- No unique key on event_id on purpose: exactly-once is the consumer's job (processed_events),
-- and a duplicate here would show that it failed.
CREATE TABLE ledger_entries (
    id          BIGSERIAL   PRIMARY KEY,
    event_id    UUID        NOT NULL,
    event_type  TEXT        NOT NULL,
    source      TEXT        NOT NULL,
    subject     TEXT        NOT NULL,
    region_code TEXT        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_region ON ledger_entries (region_code text_pattern_ops, id DESC);
CREATE INDEX ledger_entries_event ON ledger_entries (event_id);
