-- When each sprite sleeps, and the tasks that keep it awake.
-- NULL times mean the server's defaults; 0 means never.

ALTER TABLE sprites ADD COLUMN warm_after_secs BIGINT;
ALTER TABLE sprites ADD COLUMN cold_after_secs BIGINT;

CREATE TABLE keep_awake (
    id TEXT PRIMARY KEY,
    sprite_id TEXT NOT NULL REFERENCES sprites (id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX keep_awake_by_sprite ON keep_awake (sprite_id);
