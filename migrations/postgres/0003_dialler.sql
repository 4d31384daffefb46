-- Campaign settings and leads: who a campaign may call, and when.

-- One row per campaign; a campaign without one runs on the defaults.
-- Retry delays are seconds; NULL means the outcome is not retried.
CREATE TABLE campaign_settings (
    campaign_id          BIGINT PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    account_id           BIGINT NOT NULL REFERENCES accounts (id),
    mode                 TEXT   NOT NULL DEFAULT 'progressive'
                         CHECK (mode IN ('preview', 'progressive', 'predictive')),
    trunk                TEXT   NOT NULL DEFAULT '',
    calling_hours        JSONB  NOT NULL,
    default_time_zone    TEXT   NOT NULL DEFAULT 'Europe/London',
    max_attempts         BIGINT NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    retry_busy_secs      BIGINT CHECK (retry_busy_secs >= 0),
    retry_no_answer_secs BIGINT CHECK (retry_no_answer_secs >= 0),
    retry_machine_secs   BIGINT CHECK (retry_machine_secs >= 0),
    retry_abandoned_secs BIGINT CHECK (retry_abandoned_secs >= 0),
    retry_failed_secs    BIGINT CHECK (retry_failed_secs >= 0),
    dispositions         JSONB  NOT NULL,
    abandon_target_bp    BIGINT NOT NULL DEFAULT 300
                         CHECK (abandon_target_bp BETWEEN 0 AND 300),
    ring_timeout_secs    BIGINT NOT NULL DEFAULT 20 CHECK (ring_timeout_secs >= 15),
    abandon_message_path TEXT,
    wrap_up_limit_secs   BIGINT NOT NULL DEFAULT 60 CHECK (wrap_up_limit_secs >= 0),
    max_dial_level       DOUBLE PRECISION NOT NULL DEFAULT 3.0 CHECK (max_dial_level >= 1.0),
    updated_at           TIMESTAMPTZ   NOT NULL
);
CREATE INDEX campaign_settings_account ON campaign_settings (account_id);

-- One row per (campaign, contact). A leased lead is 'in_progress' until its
-- lease expires, so a crashed node's leads come back by themselves.
CREATE TABLE leads (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       BIGINT NOT NULL REFERENCES accounts (id),
    campaign_id      BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id       BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    priority         BIGINT NOT NULL DEFAULT 0,
    state            TEXT   NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'in_progress', 'done')),
    attempts         BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_outcome     TEXT,
    last_attempt_at  TIMESTAMPTZ,
    next_attempt_at  TIMESTAMPTZ,
    last_abandon_at  TIMESTAMPTZ,
    callback_at      TIMESTAMPTZ,
    callback_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ   NOT NULL,
    updated_at       TIMESTAMPTZ   NOT NULL,
    UNIQUE (campaign_id, contact_id)
);
CREATE INDEX leads_due ON leads (campaign_id, state, next_attempt_at);
CREATE INDEX leads_callbacks ON leads (campaign_id, callback_at);
CREATE INDEX leads_contact ON leads (contact_id);
CREATE INDEX leads_lease_owner ON leads (lease_owner);
