-- Duplicate contacts merged by a supervisor (docs/api.md, "Duplicates and
-- merges"). The merged contact is kept for a day, marked, so the merge can
-- be undone; then it is deleted and the merge becomes final.

-- The contact this one was merged into, while the merge can be undone. A
-- marked contact is left out of searches, number lookups and imports.
ALTER TABLE contacts ADD COLUMN merged_into BIGINT REFERENCES contacts (id);
CREATE INDEX contacts_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL;
-- An account's contacts in id order: the duplicate finder walks them a page
-- at a time from a cursor.
CREATE INDEX contacts_account_id ON contacts (account_id, id);

-- One row per merge. `undo` holds what the merge moved and filled, by row id
-- and field name only (never a contact's values), and is cleared when the
-- merge is undone or becomes final; erasing either contact deletes the row.
CREATE TABLE contact_merges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    kept_id    BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    -- No foreign key: the merged contact is deleted when the merge becomes
    -- final, and the row still tells the kept contact's timeline whose
    -- edits it inherited.
    merged_id  BIGINT NOT NULL,
    user_id    BIGINT REFERENCES users (id) ON DELETE SET NULL,
    state      TEXT   NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'undone', 'final')),
    merged_at  TEXT   NOT NULL,
    undo_until TEXT   NOT NULL,
    closed_at  TEXT,
    undo       TEXT
);
CREATE INDEX contact_merges_kept ON contact_merges (account_id, kept_id);
CREATE INDEX contact_merges_merged ON contact_merges (account_id, merged_id);
-- The merges whose day has passed, for the hourly job that makes them final.
CREATE INDEX contact_merges_open ON contact_merges (undo_until) WHERE state = 'open';
