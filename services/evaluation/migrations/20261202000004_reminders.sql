-- The deadline a reminder (催办) was sent for: once per step deadline, on the day.
ALTER TABLE ratings ADD COLUMN reminded_for DATE;
