-- A window's newest invitations: what its rating pad shows (any replica of the web face asks).
CREATE INDEX invitations_window ON invitations (hall_id, window_code, id DESC);
