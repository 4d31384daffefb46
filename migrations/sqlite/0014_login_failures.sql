-- The login throttle's counts, shared by every node and kept across
-- restarts. A row is keyed by a keyed hash (HMAC-SHA-256) of a username or
-- a client address, never by either itself; rows older than the throttle's
-- window are purged every minute.
CREATE TABLE login_failures (
    key_hash     TEXT    PRIMARY KEY,
    failures     BIGINT  NOT NULL,
    last_failure TEXT    NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_failure);

-- Random secrets of the service, made by the first node that needs one
-- (the key of the hashes above).
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
