-- Background list imports, kept in the database so any node can report one.
-- The summary holds counts and line numbers with reasons, never row contents.
CREATE TABLE import_jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    list_id      BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    user_id      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    status       TEXT   NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    on_duplicate TEXT   NOT NULL CHECK (on_duplicate IN ('skip', 'update')),
    summary      TEXT   NOT NULL DEFAULT '{}',
    error        TEXT,
    started_at   TEXT   NOT NULL,
    updated_at   TEXT   NOT NULL,
    finished_at  TEXT
);
CREATE INDEX import_jobs_account ON import_jobs (account_id, started_at);
