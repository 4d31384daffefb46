-- Call scripts: one per campaign, the sections supervisors wrote, as a JSON
-- array of {title, body}. A campaign without a row has no script.
CREATE TABLE campaign_scripts (
    campaign_id BIGINT      PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    account_id  BIGINT      NOT NULL REFERENCES accounts (id),
    sections    JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaign_scripts_account ON campaign_scripts (account_id);
