-- The CRM's core tables. Times are UTC, written by the application.
CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    seats           BIGINT  NOT NULL CHECK (seats >= 0),
    suppression_key TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    BIGINT  NOT NULL REFERENCES accounts (id),
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    active        BOOLEAN NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL
);
CREATE INDEX users_account ON users (account_id);

CREATE TABLE sessions (
    token_hash TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    created_at TEXT   NOT NULL,
    expires_at TEXT   NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id, expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT NOT NULL REFERENCES accounts (id),
    first_name     TEXT   NOT NULL DEFAULT '',
    last_name      TEXT   NOT NULL DEFAULT '',
    phone_e164     TEXT   NOT NULL,
    phone_raw      TEXT   NOT NULL,
    email          TEXT,
    postal_address TEXT,
    profession     TEXT,
    time_zone      TEXT,
    custom_fields  TEXT   NOT NULL DEFAULT '{}',
    created_at     TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL
);
CREATE INDEX contacts_account_phone ON contacts (account_id, phone_e164);

CREATE TABLE lists (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT NOT NULL REFERENCES accounts (id),
    name           TEXT   NOT NULL,
    default_region TEXT   NOT NULL DEFAULT 'GB',
    created_at     TEXT   NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE list_members (
    list_id    BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    added_at   TEXT   NOT NULL,
    PRIMARY KEY (list_id, contact_id)
);
CREATE INDEX list_members_contact ON list_members (contact_id);

CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    name       TEXT   NOT NULL,
    caller_id  TEXT   NOT NULL,
    status     TEXT   NOT NULL DEFAULT 'paused' CHECK (status IN ('running', 'paused', 'stopped')),
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE campaign_lists (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    list_id     BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    priority    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, list_id)
);

-- An attempt keeps its outcome after erasure; the contact link is cut then.
CREATE TABLE call_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    call_ref    TEXT   NOT NULL UNIQUE,
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE SET NULL,
    contact_id  BIGINT REFERENCES contacts (id) ON DELETE SET NULL,
    started_at  TEXT   NOT NULL,
    answered_at TEXT,
    ended_at    TEXT,
    outcome     TEXT
);
CREATE INDEX call_attempts_contact ON call_attempts (contact_id);
CREATE INDEX call_attempts_campaign ON call_attempts (campaign_id, started_at);

CREATE TABLE interactions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    contact_id  BIGINT REFERENCES contacts (id) ON DELETE CASCADE,
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    attempt_id  BIGINT REFERENCES call_attempts (id) ON DELETE SET NULL,
    kind        TEXT   NOT NULL,
    disposition TEXT,
    notes       TEXT,
    occurred_at TEXT   NOT NULL
);
CREATE INDEX interactions_contact ON interactions (contact_id, occurred_at);

-- Outlives erasure: the keyed hash keeps an erased number from being dialled.
CREATE TABLE suppression (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    number_hash TEXT   NOT NULL,
    number_e164 TEXT,
    reason      TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    created_at  TEXT   NOT NULL,
    UNIQUE (account_id, number_hash)
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT REFERENCES accounts (id),
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    action      TEXT   NOT NULL,
    target      TEXT,
    ip          TEXT,
    user_agent  TEXT,
    occurred_at TEXT   NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, occurred_at);
