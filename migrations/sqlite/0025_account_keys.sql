-- A list's members and a contact's values in the account's fields name their
-- account twice: in account_id, and through the list, contact or field they
-- point to. Each of their keys now carries the account, so a row whose
-- account is not its list's, contact's or field's cannot be written
-- (docs/decisions/0018-keys-that-carry-the-account.md). SQLite cannot change
-- a table's keys in place: both tables are rebuilt with their rows. Nothing
-- references them, so dropping the old ones touches no other table.

-- The keys point at (account_id, id), which must be unique. contacts_account_id
-- (0021) was already that index, under the name a query names it by.
CREATE UNIQUE INDEX lists_account_id_id ON lists (account_id, id);
CREATE UNIQUE INDEX contact_field_defs_account_id_id ON contact_field_defs (account_id, id);
DROP INDEX contacts_account_id;
CREATE UNIQUE INDEX contacts_account_id ON contacts (account_id, id);

-- The account itself stays checked through the list, contact or field, each
-- of which references accounts.
CREATE TABLE list_members_keyed (
    list_id    BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    added_at   TEXT   NOT NULL,
    PRIMARY KEY (list_id, contact_id),
    FOREIGN KEY (account_id, list_id) REFERENCES lists (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
INSERT INTO list_members_keyed (list_id, contact_id, account_id, added_at)
    SELECT list_id, contact_id, account_id, added_at FROM list_members;
DROP TABLE list_members;
ALTER TABLE list_members_keyed RENAME TO list_members;
CREATE INDEX list_members_contact ON list_members (contact_id);

CREATE TABLE contact_field_values_keyed (
    account_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    field_id   BIGINT NOT NULL,
    value      TEXT   NOT NULL,
    PRIMARY KEY (contact_id, field_id),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, field_id) REFERENCES contact_field_defs (account_id, id)
        ON DELETE CASCADE
);
INSERT INTO contact_field_values_keyed (account_id, contact_id, field_id, value)
    SELECT account_id, contact_id, field_id, value FROM contact_field_values;
DROP TABLE contact_field_values;
ALTER TABLE contact_field_values_keyed RENAME TO contact_field_values;
CREATE INDEX contact_field_values_search
    ON contact_field_values (field_id, lower(value));
