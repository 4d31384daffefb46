-- Lead recycling and own-agent callbacks (docs/operations.md, "Recycling
-- and callbacks").

-- The rules that put finished leads back into dialling, a JSON array of
-- {"outcome": ..., "after_days": ...}; empty recycles nothing.
ALTER TABLE campaign_settings ADD COLUMN recycle JSONB NOT NULL DEFAULT '[]'::jsonb;
-- The total attempts a recycled lead may reach, the first included; 0 when
-- no rule is set.
ALTER TABLE campaign_settings ADD COLUMN recycle_max_attempts BIGINT NOT NULL DEFAULT 0;
-- How long a callback booked for one agent waits for them before any agent
-- of the campaign may take it.
ALTER TABLE campaign_settings ADD COLUMN callback_grace_minutes BIGINT NOT NULL DEFAULT 30;

