-- The applicant's citizen account: a citizen reads and acts only on their own cases.
ALTER TABLE cases ADD COLUMN applicant_citizen_id TEXT NOT NULL DEFAULT '';
CREATE INDEX cases_applicant ON cases (applicant_citizen_id) WHERE applicant_citizen_id <> '';
