-- Earlier password hashes of each user, so a new password cannot repeat
-- one of the last five.
CREATE TABLE password_history (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT   NOT NULL,
    replaced_at   TIMESTAMPTZ   NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, replaced_at);
