-- Whether the dialler screens a campaign's calls for answering machines.
ALTER TABLE campaign_settings ADD COLUMN detect_machines BOOLEAN NOT NULL DEFAULT FALSE;
