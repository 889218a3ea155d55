-- Failover. A sprite's generation grows each time the control plane takes
-- it from a lost host: the claim is a compare-and-set on it, so of several
-- API servers one brings the sprite back. Where it came back from: the
-- host it was lost with, the checkpoint it resumed from (`v7`) and when
-- that was shipped and when it came back (ms since the Unix epoch).
ALTER TABLE sprites ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE sprites ADD COLUMN resumed_from_host TEXT;
ALTER TABLE sprites ADD COLUMN resumed_checkpoint TEXT;
ALTER TABLE sprites ADD COLUMN resumed_shipped_at BIGINT;
ALTER TABLE sprites ADD COLUMN resumed_at BIGINT;
