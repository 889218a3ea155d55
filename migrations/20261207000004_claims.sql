-- When a failover claimed a sprite for its new host (ms since the Unix
-- epoch): claimed and not come back (`resumed_at` empty) is a take-over
-- left halfway, which a later heartbeat finishes.
ALTER TABLE sprites ADD COLUMN claimed_at BIGINT;
