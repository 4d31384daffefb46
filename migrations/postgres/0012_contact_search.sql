-- Contacts found and edited in the CRM (docs/decisions/0007-contact-search.md).

-- Every change to a contact adds one; an edit names the version it read, so
-- two people editing at once cannot silently overwrite each other.
ALTER TABLE contacts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- What an audited action touched, by name only: the fields an edit changed.
ALTER TABLE audit_log ADD COLUMN detail TEXT;

-- Name and email prefixes within an account. The search compares
-- lower(column) with a range in byte order (COLLATE "C"), which these
-- indexes answer whatever the database's collation. The number already has
-- contacts_account_phone. Each name index also holds the order a name search
-- lists its matches in, so a page reads only its own rows, however many match.
CREATE INDEX contacts_first_name ON contacts
    (account_id, (lower(first_name) COLLATE "C"), (lower(last_name) COLLATE "C"), id);
CREATE INDEX contacts_last_name ON contacts
    (account_id, (lower(last_name) COLLATE "C"), (lower(first_name) COLLATE "C"), id);
CREATE INDEX contacts_email ON contacts (account_id, (lower(email) COLLATE "C"));

-- A postal code is a word inside the free-text address, which no B-tree
-- finds: built-in full-text search over the address. pg_trgm would also
-- find fragments, but it is an extension a server may lack.
CREATE INDEX contacts_address_words ON contacts
    USING GIN (to_tsvector('simple', coalesce(postal_address, '')));

-- An agent's callbacks, for the rule that lets them edit those contacts.
CREATE INDEX leads_callback_user ON leads (callback_user_id) WHERE callback_user_id IS NOT NULL;

-- A contact's edits, read back for its timeline.
CREATE INDEX audit_log_target ON audit_log (account_id, target, occurred_at);
