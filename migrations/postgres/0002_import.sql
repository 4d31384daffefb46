-- Background list imports, kept in the database so any node can report one.
-- The summary holds counts and line numbers with reasons, never row contents.
CREATE TABLE import_jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    list_id      BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    user_id      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    status       TEXT   NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    on_duplicate TEXT   NOT NULL CHECK (on_duplicate IN ('skip', 'update')),
    summary      JSONB  NOT NULL DEFAULT '{}',
    error        TEXT,
    started_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX import_jobs_account ON import_jobs (account_id, started_at);
