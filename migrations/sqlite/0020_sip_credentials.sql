-- Desk phone credentials: one per user, for SIP digest authentication at the
-- registrar. Only the HA1 values for the realm are kept (MD5 and SHA-256,
-- RFC 8760), never the password. SIP usernames are unique across the
-- service whatever their case, as phones and people may write either.
CREATE TABLE sip_credentials (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    sip_username TEXT   NOT NULL,
    realm        TEXT   NOT NULL,
    ha1_md5      TEXT   NOT NULL,
    ha1_sha256   TEXT   NOT NULL,
    created_at   TEXT   NOT NULL,
    updated_at   TEXT   NOT NULL
);
CREATE UNIQUE INDEX sip_credentials_username ON sip_credentials (lower(sip_username));
CREATE INDEX sip_credentials_account ON sip_credentials (account_id);
