-- The softphone's account and campaign choices.

-- Whether a campaign records its connected calls.
ALTER TABLE campaign_settings ADD COLUMN record_calls BOOLEAN NOT NULL DEFAULT 1;

-- The pause codes an account's agents choose from, as a JSON array of
-- {"code", "label"}; NULL means the built-in list.
ALTER TABLE accounts ADD COLUMN pause_codes TEXT;
