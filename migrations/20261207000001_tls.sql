-- TLS certificates the server obtained from an ACME CA, one per name (the
-- app's domain and each sprite's host name), with their validity in ms
-- since the Unix epoch; and the ACME accounts they were ordered with, one
-- per directory URL (instant-acme's credentials, JSON). Kept here, they
-- survive restarts and travel with the database's replica.
CREATE TABLE tls_certificates (
    name TEXT PRIMARY KEY,
    chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    not_before_ms BIGINT NOT NULL,
    not_after_ms BIGINT NOT NULL,
    issued_at_ms BIGINT NOT NULL
);

CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
