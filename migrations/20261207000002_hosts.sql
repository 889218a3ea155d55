-- The hosts of a cluster (`vmhost serve` daemons the API servers reach),
-- with the room each last said it has (bytes) and when it last answered
-- (ms since the Unix epoch): every API server writes what it hears. And,
-- on each sprite, the host it lives on (NULL: the server's own machine).
CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    cpus BIGINT NOT NULL DEFAULT 0,
    memory_bytes BIGINT NOT NULL DEFAULT 0,
    memory_available_bytes BIGINT NOT NULL DEFAULT 0,
    memory_promised_bytes BIGINT NOT NULL DEFAULT 0,
    disk_bytes BIGINT NOT NULL DEFAULT 0,
    disk_free_bytes BIGINT NOT NULL DEFAULT 0,
    running BIGINT NOT NULL DEFAULT 0,
    sleeping BIGINT NOT NULL DEFAULT 0,
    last_seen_at BIGINT,
    last_error TEXT,
    -- Being drained: placement passes it by (0/1).
    cordoned BIGINT NOT NULL DEFAULT 0,
    registered_at BIGINT NOT NULL
);

ALTER TABLE sprites ADD COLUMN machine TEXT;

CREATE INDEX sprites_machine ON sprites (machine);
