-- The platform roles a staff member signs in with (the web face mints their tokens from them).
ALTER TABLE staff ADD COLUMN roles TEXT[] NOT NULL DEFAULT ARRAY['clerk']::TEXT[];
CREATE INDEX staff_badge ON staff (badge_number);
