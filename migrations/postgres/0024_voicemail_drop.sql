-- Voicemail drop: the message a campaign leaves on answering machines, and
-- how long a lead rests after one was left (seconds; NULL: not retried).
-- Rows from before keep the default of two days.
ALTER TABLE campaign_settings ADD COLUMN voicemail_message_path TEXT;
ALTER TABLE campaign_settings ADD COLUMN retry_voicemail_secs BIGINT DEFAULT 172800
    CHECK (retry_voicemail_secs >= 0);
