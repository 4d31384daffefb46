-- Webhooks: an account's endpoints, the events each takes, and an outbox of
-- deliveries written with the facts they report. A delivery holds ids,
-- outcomes and times only; the contact fields an endpoint opted into are
-- read when it is sent, so nothing personal waits in this table.
CREATE TABLE webhook_endpoints (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT  NOT NULL REFERENCES accounts (id),
    url            TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    -- The signing key, kept as it is: the service needs it to sign.
    secret         TEXT    NOT NULL,
    -- A JSON array of the contact fields the account opted into.
    contact_fields TEXT    NOT NULL DEFAULT '[]',
    active         BOOLEAN NOT NULL DEFAULT 1,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id);

CREATE TABLE webhook_events (
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    event       TEXT   NOT NULL,
    PRIMARY KEY (endpoint_id, event)
);
CREATE INDEX webhook_events_account ON webhook_events (account_id, event);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       BIGINT NOT NULL REFERENCES accounts (id),
    endpoint_id      BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event            TEXT   NOT NULL,
    -- No foreign key: an erasure unlinks earlier deliveries, and the
    -- delivery that reports it names the contact that no longer exists.
    contact_id       BIGINT,
    data             TEXT   NOT NULL,
    occurred_at      TEXT   NOT NULL,
    status           TEXT   NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TEXT,
    last_attempt_at  TEXT,
    last_status      BIGINT,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    delivered_at     TEXT,
    created_at       TEXT   NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_contact ON webhook_deliveries (account_id, contact_id);
