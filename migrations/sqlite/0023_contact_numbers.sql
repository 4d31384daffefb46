-- A contact's other numbers: those of the contacts merged into it (docs/api.md,
-- "Duplicates and merges"). The dialler calls a contact's own number only;
-- these are shown with the contact, find it in a search by number, and tell
-- an inbound caller from them who they are. Undoing the merge that brought
-- one takes it away again (the merge keeps its row id, never the number);
-- erasing the contact deletes them and keeps each suppressed, as its own
-- number is.
CREATE TABLE contact_numbers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    phone_e164 TEXT   NOT NULL,
    phone_raw  TEXT   NOT NULL,
    added_at   TEXT   NOT NULL,
    UNIQUE (contact_id, phone_e164)
);
-- A search or an inbound call by number.
CREATE INDEX contact_numbers_phone ON contact_numbers (account_id, phone_e164);
