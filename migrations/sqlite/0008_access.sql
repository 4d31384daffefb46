-- Which agents work which campaign. An agent is offered, and may read, only
-- the contacts of the campaigns they are assigned to.
CREATE TABLE campaign_agents (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (campaign_id, user_id)
);
CREATE INDEX campaign_agents_user ON campaign_agents (account_id, user_id);

-- Upgrading locks nobody out: every existing agent keeps working every
-- existing campaign of their own account. New campaigns start with nobody.
INSERT INTO campaign_agents (campaign_id, user_id, account_id)
SELECT c.id, u.id, c.account_id
FROM campaigns c JOIN users u ON u.account_id = c.account_id AND u.role = 'agent';

-- Per account: keep only daily counts of per-contact actions (views,
-- exports, dispositions), not who did them to which contact.
ALTER TABLE accounts ADD COLUMN aggregate_only BOOLEAN NOT NULL DEFAULT 0;

-- What the audit log would have held for such actions, as counts per UTC
-- day; no user, no target.
CREATE TABLE audit_counts (
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    day        TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    count      BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (account_id, day, action)
);
