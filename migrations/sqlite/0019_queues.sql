-- Inbound queues: the numbers customers call (DIDs), routed to a queue of
-- agents matched by skill. A queue's calls are logged against its campaign
-- (its dispositions, script and wrap-up), as call_attempts with direction
-- 'inbound'; they never count in a campaign's outbound figures.
CREATE TABLE queues (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      BIGINT NOT NULL REFERENCES accounts (id),
    name            TEXT   NOT NULL,
    campaign_id     BIGINT NOT NULL REFERENCES campaigns (id),
    priority        BIGINT NOT NULL DEFAULT 0,
    opening_hours   TEXT   NOT NULL,
    time_zone       TEXT   NOT NULL DEFAULT 'Europe/London',
    welcome_message TEXT,
    hold_music      TEXT,
    closed_message  TEXT,
    voicemail_message TEXT,
    max_wait_secs   BIGINT NOT NULL DEFAULT 120 CHECK (max_wait_secs >= 5),
    overflow        TEXT   NOT NULL DEFAULT 'voicemail'
                    CHECK (overflow IN ('voicemail', 'callback', 'hangup')),
    service_level_secs BIGINT NOT NULL DEFAULT 20 CHECK (service_level_secs >= 1),
    service_level_pct  BIGINT NOT NULL DEFAULT 80
                    CHECK (service_level_pct BETWEEN 1 AND 100),
    record_calls    BOOLEAN NOT NULL DEFAULT 0,
    ring_secs       BIGINT NOT NULL DEFAULT 15 CHECK (ring_secs >= 5),
    created_at      TEXT   NOT NULL,
    updated_at      TEXT   NOT NULL,
    UNIQUE (account_id, name)
);
CREATE INDEX queues_campaign ON queues (campaign_id);

-- A number belongs to one queue of one account, across the whole service.
CREATE TABLE queue_numbers (
    number     TEXT   PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    queue_id   BIGINT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    created_at TEXT   NOT NULL
);
CREATE INDEX queue_numbers_queue ON queue_numbers (queue_id);

CREATE TABLE queue_agents (
    queue_id   BIGINT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    skill      BIGINT NOT NULL CHECK (skill BETWEEN 1 AND 10),
    PRIMARY KEY (queue_id, user_id)
);
CREATE INDEX queue_agents_user ON queue_agents (user_id);

ALTER TABLE call_attempts ADD COLUMN direction TEXT NOT NULL DEFAULT 'outbound'
    CHECK (direction IN ('outbound', 'inbound'));
ALTER TABLE call_attempts ADD COLUMN queue_id BIGINT REFERENCES queues (id) ON DELETE SET NULL;
-- When an agent took the call, and who; outbound calls keep using connected_at.
ALTER TABLE call_attempts ADD COLUMN taken_at TEXT;
ALTER TABLE call_attempts ADD COLUMN taken_by BIGINT REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX call_attempts_queue ON call_attempts (queue_id, started_at);
