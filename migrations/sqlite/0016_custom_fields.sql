-- Fields an account defines for its contacts, and the values contacts hold
-- in them (docs/decisions/0008-custom-fields.md).

CREATE TABLE contact_field_defs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT  NOT NULL REFERENCES accounts (id),
    -- The slug the API, imports and exports name the field by.
    key        TEXT    NOT NULL,
    label      TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('text', 'number', 'date', 'choice', 'yes_no')),
    -- The allowed values of a choice list, a JSON array; empty for other kinds.
    choices    TEXT    NOT NULL DEFAULT '[]',
    required   BOOLEAN NOT NULL DEFAULT 0,
    on_card    BOOLEAN NOT NULL DEFAULT 1,
    exported   BOOLEAN NOT NULL DEFAULT 1,
    position   BIGINT  NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (account_id, key)
);
-- Labels are unique too, case aside: an import maps a column by either.
CREATE UNIQUE INDEX contact_field_defs_label ON contact_field_defs (account_id, lower(label));

-- One row per contact and field it has a value in, in the field's canonical
-- text (a number as digits, a date as YYYY-MM-DD, yes/no as yes or no).
-- Removing a field or erasing a contact deletes its rows; the cascades are a
-- backstop for the explicit deletes, which count what they remove.
CREATE TABLE contact_field_values (
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    field_id   BIGINT NOT NULL REFERENCES contact_field_defs (id) ON DELETE CASCADE,
    value      TEXT   NOT NULL,
    PRIMARY KEY (contact_id, field_id)
);
-- Search: a value's prefix or its exact text within one field, case aside,
-- compared as the name indexes of 0012 are. Led by the field (which
-- belongs to one account), so that removing a field finds its values
-- through it too.
CREATE INDEX contact_field_values_search
    ON contact_field_values (field_id, lower(value));
