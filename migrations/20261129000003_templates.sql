-- Templates people made: a saved checkpoint or an imported root file
-- system, each an image of the storage pool. The gallery's own templates
-- live in the repository's templates/ directory, not here.
-- org_id NULL: the operator's, for everyone. owner_id set: only its maker
-- sees it; NULL: the whole organization.

CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_by TEXT,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CHECK (kind IN ('checkpoint', 'image')),
    image TEXT NOT NULL UNIQUE,
    open_path TEXT,
    created_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX templates_by_org_and_name ON templates (org_id, name);
