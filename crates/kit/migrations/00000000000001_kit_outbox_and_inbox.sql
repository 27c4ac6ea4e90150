-- Shared by every service (xiaoneng-kit): the transactional outbox and the consumer inbox.

-- Events written in the same transaction as the state change they describe; the relay
-- publishes them to Kafka and marks them once the broker acknowledged.
CREATE TABLE IF NOT EXISTS outbox (
    id            BIGSERIAL PRIMARY KEY,
    event_id      UUID        NOT NULL UNIQUE,
    topic         TEXT        NOT NULL,
    event_key     TEXT        NOT NULL,
    event_type    TEXT        NOT NULL,
    source        TEXT        NOT NULL,
    region_code   TEXT        NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,
    payload       BYTEA       NOT NULL,
    trace_context JSONB       NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ,
    attempts      INT         NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- Events a consumer has applied, deduplicated by event id in the handler's transaction.
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     TEXT        NOT NULL,
    event_id     UUID        NOT NULL,
    topic        TEXT        NOT NULL,
    kafka_partition INT      NOT NULL,
    kafka_offset BIGINT      NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Records a consumer could not apply after its retries (or could not even read), kept for
-- an operator instead of blocking the partition forever.
CREATE TABLE IF NOT EXISTS dead_letters (
    id              BIGSERIAL PRIMARY KEY,
    consumer        TEXT        NOT NULL,
    topic           TEXT        NOT NULL,
    kafka_partition INT         NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    event_id        UUID,
    event_type      TEXT,
    payload         BYTEA,
    error           TEXT        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
