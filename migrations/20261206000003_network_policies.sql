-- A class's network policy for its students' sprites (JSON, as
-- `/v1/organizations/{slug}/policy/network` takes it); NULL: none, each
-- sprite keeps its own.
ALTER TABLE organizations ADD COLUMN network_policy TEXT;
