-- The abandon figures and crash recovery are read from the attempts, so a
-- restart, a crash or a second node never resets them: which node placed a
-- call, when it reached an agent, and when it was abandoned.
ALTER TABLE call_attempts ADD COLUMN node TEXT;
ALTER TABLE call_attempts ADD COLUMN connected_at TIMESTAMPTZ;
ALTER TABLE call_attempts ADD COLUMN abandoned_at TIMESTAMPTZ;

-- Attempts written before these columns keep counting.
UPDATE call_attempts SET connected_at = answered_at
    WHERE outcome = 'answered' AND answered_at IS NOT NULL;
UPDATE call_attempts SET abandoned_at = answered_at
    WHERE outcome = 'abandoned' AND answered_at IS NOT NULL;

CREATE INDEX call_attempts_connected ON call_attempts (campaign_id, connected_at);
CREATE INDEX call_attempts_abandoned ON call_attempts (campaign_id, abandoned_at);
CREATE INDEX call_attempts_open ON call_attempts (node) WHERE ended_at IS NULL;

-- Which node's desk an agent's state was set on, so a node that restarts
-- can close the states its agents were left in.
ALTER TABLE agent_states ADD COLUMN node TEXT;
