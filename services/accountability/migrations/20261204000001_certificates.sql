-- 持证上岗: each staff member's law-enforcement certificates and enforcement matters, from the
-- catalog's CertificateChanged and MatterAssigned (both keyed by the staff id, so in order),
-- what a revoked or expired certificate is held against. `expiry_judged`: the expiry sweep has
-- looked at this certificate after it expired (replicas share the sweep by SKIP LOCKED).
CREATE TABLE certificates (
    certificate_id TEXT PRIMARY KEY,
    staff_id       TEXT    NOT NULL,
    region_code    TEXT    NOT NULL,
    revoked        BOOLEAN NOT NULL,
    expiry_date    DATE    NOT NULL,
    changed_on     DATE    NOT NULL,
    event_id       UUID    NOT NULL,
    expiry_judged  BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX certificates_staff ON certificates (staff_id);
CREATE INDEX certificates_unjudged ON certificates (expiry_date) WHERE NOT revoked AND NOT expiry_judged;

CREATE TABLE enforcement_assignments (
    staff_id      TEXT NOT NULL,
    matter_id     TEXT NOT NULL,
    department_id TEXT NOT NULL,
    PRIMARY KEY (staff_id, matter_id)
);

-- The unit a window rating or a visit is counted under: its matter's department, by name.
ALTER TABLE matters ADD COLUMN department_id TEXT NOT NULL DEFAULT '';
CREATE TABLE departments (
    department_id TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL
);
