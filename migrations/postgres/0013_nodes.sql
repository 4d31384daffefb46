-- The nodes serving this database. Each beats its heart here; a node
-- whose heart stops is declared down by a survivor, which closes what it
-- left open. The epoch is a fencing token: it grows at every start and at
-- every declaration of death, and a node's writes on leads carry the epoch
-- it holds, so a node declared dead (or replaced) cannot land a late write.
CREATE TABLE nodes (
    name         TEXT PRIMARY KEY,
    epoch        BIGINT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('up', 'down', 'left')),
    started_at   TIMESTAMPTZ NOT NULL,
    seen_at      TIMESTAMPTZ NOT NULL,
    down_at      TIMESTAMPTZ,
    recovered_at TIMESTAMPTZ,
    recovered_by TEXT
);

ALTER TABLE leads ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
-- The epoch of the node that placed an attempt: a survivor closes only the
-- attempts of the epoch it declared dead, never those of the node's next
-- start under the same name.
ALTER TABLE call_attempts ADD COLUMN node_epoch BIGINT NOT NULL DEFAULT 0;

-- Where each agent's desk stands (its campaign, its phase, the call it is
-- on or wrapping up), kept so the node an agent's page reconnects to after
-- their node died carries on from there: the wrap-up of the cut call is
-- still due. Call references and campaign ids only, no personal data.
CREATE TABLE agent_desks (
    user_id     BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    campaign_id BIGINT,
    phase       TEXT NOT NULL,
    call_ref    TEXT,
    pause_code  TEXT,
    node        TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
