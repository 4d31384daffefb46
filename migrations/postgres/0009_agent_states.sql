-- Every agent state change (ready, paused with its code, in call, wrap-up,
-- logged out), so reports can add up the time agents spent in each. A state
-- lasts until the user's next row.
CREATE TABLE agent_states (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT   NOT NULL
               CHECK (state IN ('ready', 'paused', 'in_call', 'wrap_up', 'logged_out')),
    pause_code TEXT,
    started_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX agent_states_account ON agent_states (account_id, started_at);
CREATE INDEX agent_states_user ON agent_states (user_id, started_at);
-- Reports count a campaign's attempts by when they started.
CREATE INDEX call_attempts_account_time ON call_attempts (account_id, started_at);
