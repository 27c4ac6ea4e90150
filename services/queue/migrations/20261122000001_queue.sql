-- Halls, their windows, staff roster and tidal policies.
CREATE TABLE halls (
    id          UUID        PRIMARY KEY,
    region_code TEXT        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    name        TEXT        NOT NULL,
    -- [{code, name, matter_ids}]
    categories  JSONB       NOT NULL,
    -- [{staff_id, name, categories}]
    staff       JSONB       NOT NULL DEFAULT '[]',
    -- [{category, open_waiting, open_wait_minutes, close_waiting}]
    tidal       JSONB       NOT NULL DEFAULT '[]',
    -- 周末不打烊: open for appointments on weekends (not on statutory holidays).
    weekend_service BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (region_code, name)
);

CREATE TABLE windows (
    id             UUID    PRIMARY KEY,
    hall_id        UUID    NOT NULL REFERENCES halls (id),
    code           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    matter_ids     TEXT[]  NOT NULL DEFAULT '{}',
    state          TEXT    NOT NULL DEFAULT 'closed',
    staff_id       TEXT    NOT NULL DEFAULT '',
    tidal          BOOLEAN NOT NULL DEFAULT false,
    tidal_category TEXT    NOT NULL DEFAULT '',
    UNIQUE (hall_id, code)
);

-- Tickets: the durable record; Redis holds the waiting queue and is rebuilt from here.
CREATE TABLE tickets (
    id             UUID        PRIMARY KEY,
    hall_id        UUID        NOT NULL REFERENCES halls (id),
    region_code    TEXT        NOT NULL,
    day            DATE        NOT NULL,
    number         TEXT        NOT NULL,
    category       TEXT        NOT NULL,
    matter_id      TEXT        NOT NULL,
    matter_name    TEXT        NOT NULL,
    window_codes   TEXT[]      NOT NULL DEFAULT '{}',
    priority       SMALLINT    NOT NULL,
    service_kind   TEXT        NOT NULL,
    state          TEXT        NOT NULL,
    -- Queue position: arrival in ms (kept through transfer and hold).
    arrival_at     TIMESTAMPTZ NOT NULL,
    arrival_ms     BIGINT      NOT NULL,
    window_id      UUID,
    window_code    TEXT        NOT NULL DEFAULT '',
    staff_id       TEXT        NOT NULL DEFAULT '',
    called_at      TIMESTAMPTZ,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    no_shows       INT         NOT NULL DEFAULT 0,
    recalls        INT         NOT NULL DEFAULT 0,
    call_seq       BIGINT,
    case_id        TEXT        NOT NULL DEFAULT '',
    citizen_id     TEXT        NOT NULL DEFAULT '',
    appointment_id UUID,
    -- Set by a transfer to a named window: only that window may call it.
    direct_window  UUID,
    request_id     TEXT        UNIQUE,
    UNIQUE (hall_id, day, number)
);
CREATE INDEX tickets_waiting ON tickets (hall_id) WHERE state = 'waiting';
CREATE INDEX tickets_at_window ON tickets (window_id) WHERE state IN ('called', 'serving');
CREATE INDEX tickets_finished ON tickets (hall_id, finished_at DESC) WHERE state = 'finished';

-- Ticket numbers per hall, category and hall day: A001 … reset every day.
CREATE TABLE ticket_counters (
    hall_id  UUID NOT NULL,
    category TEXT NOT NULL,
    day      DATE NOT NULL,
    n        INT  NOT NULL,
    PRIMARY KEY (hall_id, category, day)
);

CREATE TABLE slots (
    id         UUID PRIMARY KEY,
    hall_id    UUID NOT NULL REFERENCES halls (id),
    matter_id  TEXT NOT NULL,
    day        DATE NOT NULL,
    start_time TIME NOT NULL,
    end_time   TIME NOT NULL,
    capacity   INT  NOT NULL CHECK (capacity > 0),
    booked     INT  NOT NULL DEFAULT 0 CHECK (booked >= 0 AND booked <= capacity),
    UNIQUE (hall_id, matter_id, day, start_time)
);

CREATE TABLE appointments (
    id           UUID        PRIMARY KEY,
    slot_id      UUID        NOT NULL REFERENCES slots (id),
    hall_id      UUID        NOT NULL REFERENCES halls (id),
    matter_id    TEXT        NOT NULL,
    citizen_id   TEXT        NOT NULL,
    citizen_name TEXT        NOT NULL,
    state        TEXT        NOT NULL,
    ticket_id    UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX appointments_citizen ON appointments (citizen_id, hall_id);

CREATE TABLE tidal_events (
    id             UUID        PRIMARY KEY,
    hall_id        UUID        NOT NULL REFERENCES halls (id),
    category       TEXT        NOT NULL,
    action         TEXT        NOT NULL,
    window_id      UUID,
    window_code    TEXT        NOT NULL DEFAULT '',
    staff_id       TEXT        NOT NULL DEFAULT '',
    waiting        INT         NOT NULL,
    estimated_wait INT         NOT NULL,
    reason         TEXT        NOT NULL,
    at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX tidal_events_hall ON tidal_events (hall_id, at);
