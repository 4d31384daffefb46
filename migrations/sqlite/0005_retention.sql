-- Per account: how many days recordings and interactions are kept (NULL
-- keeps them until erased).
ALTER TABLE accounts ADD COLUMN retention_days BIGINT CHECK (retention_days IS NULL OR retention_days > 0);
CREATE INDEX interactions_account_time ON interactions (account_id, occurred_at);
