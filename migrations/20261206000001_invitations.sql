-- Sign-up by invitation: an admin's invitation (for one address, or for
-- whoever has its link) lets one person make an account. Only a hash of its
-- secret is kept, as for API tokens.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    email TEXT,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at BIGINT
);

-- A disabled account cannot sign in; its sessions and tokens stop working.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
