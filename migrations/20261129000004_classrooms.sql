-- Classrooms: an organization can be a class, joined with a code; its
-- owners and admins are teachers, its members students, who see only the
-- sprites they own or were added to. Assignments are checkpoints kept as
-- images that each student starts a sprite from.

ALTER TABLE organizations ADD COLUMN is_class BIGINT NOT NULL DEFAULT 0;
ALTER TABLE organizations ADD COLUMN join_code TEXT;
-- Per student; NULL is no limit.
ALTER TABLE organizations ADD COLUMN max_sprites_per_member BIGINT;
ALTER TABLE organizations ADD COLUMN max_disk_per_member BIGINT;
CREATE UNIQUE INDEX organizations_by_join_code ON organizations (join_code);

-- Who made a sprite (NULL for sprites made before this was kept).
ALTER TABLE sprites ADD COLUMN owner_id TEXT REFERENCES users (id) ON DELETE SET NULL;

-- People a sprite is shared with besides its owner (a group's workspace).
CREATE TABLE sprite_members (
    sprite_id TEXT NOT NULL REFERENCES sprites (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sprite_id, user_id)
);

CREATE TABLE assignments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Students' sprites are named <name>-<handle>.
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    instructions TEXT NOT NULL DEFAULT '',
    image TEXT NOT NULL,
    open_path TEXT,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- A student's sprite for an assignment, and the checkpoint it started at.
CREATE TABLE assignment_work (
    assignment_id TEXT NOT NULL REFERENCES assignments (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sprite_id TEXT NOT NULL REFERENCES sprites (id) ON DELETE CASCADE,
    start_checkpoint TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    PRIMARY KEY (assignment_id, user_id)
);

-- A collection: one labelled checkpoint of every student's sprite.
CREATE TABLE collections (
    id TEXT PRIMARY KEY,
    assignment_id TEXT NOT NULL REFERENCES assignments (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE collected (
    collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sprite_name TEXT NOT NULL,
    checkpoint TEXT,
    error TEXT,
    PRIMARY KEY (collection_id, user_id)
);
