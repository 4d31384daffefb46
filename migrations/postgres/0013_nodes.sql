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
