-- Where the matter complained of happened, as an Open311 client sends it (address_string,
-- address_id, lat, long), returned as sent; and when the complaint last changed
-- (updated_datetime).
ALTER TABLE complaints
    ADD COLUMN address    TEXT NOT NULL DEFAULT '',
    ADD COLUMN address_id TEXT NOT NULL DEFAULT '',
    ADD COLUMN lat        DOUBLE PRECISION CHECK (lat BETWEEN -90 AND 90),
    ADD COLUMN long       DOUBLE PRECISION CHECK (long BETWEEN -180 AND 180),
    ADD COLUMN updated_at TIMESTAMPTZ;
UPDATE complaints SET updated_at = filed_at;
ALTER TABLE complaints ALTER COLUMN updated_at SET NOT NULL;

-- The complainant's own words sealed like the identity (the same keys, the complaint id and
-- "/description" as associated data): `description` keeps them masked in clear for every
-- other reader; rows filed before this migration keep their text as it was.
ALTER TABLE complaints
    ADD COLUMN text_key_id TEXT,
    ADD COLUMN text_nonce  BYTEA,
    ADD COLUMN text_cipher BYTEA;
