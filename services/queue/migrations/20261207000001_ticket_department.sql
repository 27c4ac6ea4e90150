-- The department of a ticket's matter (the catalog's department name), carried on
-- ServiceFinished so a window rating is counted for its department.
ALTER TABLE tickets ADD COLUMN department TEXT NOT NULL DEFAULT '';
