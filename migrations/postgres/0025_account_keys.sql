-- A list's members and a contact's values in the account's fields name their
-- account twice: in account_id, and through the list, contact or field they
-- point to. Each of their keys now carries the account, so a row whose
-- account is not its list's, contact's or field's cannot be written, and a
-- row costs the server two key checks instead of three, which an import of a
-- million rows feels (docs/benchmarks.md, "Contact import").

-- The keys point at (account_id, id), which must be unique. contacts_account_id
-- (0021) was already that index; its rows are unique since ids are.
ALTER TABLE lists ADD CONSTRAINT lists_account_id_id_key UNIQUE (account_id, id);
ALTER TABLE contact_field_defs
    ADD CONSTRAINT contact_field_defs_account_id_id_key UNIQUE (account_id, id);
DROP INDEX contacts_account_id;
ALTER TABLE contacts ADD CONSTRAINT contacts_account_id UNIQUE (account_id, id);

-- The account itself stays checked through the list, contact or field, each
-- of which references accounts.
ALTER TABLE list_members
    DROP CONSTRAINT list_members_list_id_fkey,
    DROP CONSTRAINT list_members_contact_id_fkey,
    DROP CONSTRAINT list_members_account_id_fkey,
    ADD CONSTRAINT list_members_list_fkey FOREIGN KEY (account_id, list_id)
        REFERENCES lists (account_id, id) ON DELETE CASCADE,
    ADD CONSTRAINT list_members_contact_fkey FOREIGN KEY (account_id, contact_id)
        REFERENCES contacts (account_id, id) ON DELETE CASCADE;

ALTER TABLE contact_field_values
    DROP CONSTRAINT contact_field_values_account_id_fkey,
    DROP CONSTRAINT contact_field_values_contact_id_fkey,
    DROP CONSTRAINT contact_field_values_field_id_fkey,
    ADD CONSTRAINT contact_field_values_contact_fkey FOREIGN KEY (account_id, contact_id)
        REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    ADD CONSTRAINT contact_field_values_field_fkey FOREIGN KEY (account_id, field_id)
        REFERENCES contact_field_defs (account_id, id) ON DELETE CASCADE;
