-- Call recordings on disk, linked to the call and the contact, so subject
-- access can hand them over and erasure can delete them. The row holds the
-- file's path only; the audio stays in the recordings folder.
CREATE TABLE recordings (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    attempt_id BIGINT REFERENCES call_attempts (id) ON DELETE SET NULL,
    call_ref   TEXT,
    contact_id BIGINT REFERENCES contacts (id) ON DELETE SET NULL,
    path       TEXT   NOT NULL,
    created_at TEXT   NOT NULL
);
CREATE INDEX recordings_contact ON recordings (account_id, contact_id);
CREATE INDEX recordings_attempt ON recordings (attempt_id);
CREATE INDEX recordings_created ON recordings (account_id, created_at);

-- Filtering the audit log by action or user, newest first.
CREATE INDEX audit_log_action ON audit_log (account_id, action, occurred_at);
CREATE INDEX audit_log_user ON audit_log (account_id, user_id, occurred_at);
