-- An invitation whose rating window passed unrated expires (once); where the region's rules
-- name a default rating, it is given then and marked `defaulted` (never a citizen's).
ALTER TABLE invitations ADD COLUMN expired_at TIMESTAMPTZ;
CREATE INDEX invitations_unrated ON invitations (rate_by) WHERE rating_id IS NULL AND expired_at IS NULL;
ALTER TABLE ratings ADD COLUMN defaulted BOOLEAN NOT NULL DEFAULT false;
-- Public reads: a region's ratings of a period, newest first.
CREATE INDEX ratings_public ON ratings (region_code text_pattern_ops, rated_on, id DESC) WHERE NOT excluded;
