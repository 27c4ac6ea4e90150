-- A matter's facts by the matter: what the catalog's MatterPublished looks up (the cases
-- visiting it, the ratings and visits that arrived before it without a unit) without a scan
-- of every fact.
CREATE INDEX facts_matter ON facts ((attrs->>'matter'));
