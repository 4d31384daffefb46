-- Contacts found and edited in the CRM (docs/decisions/0007-contact-search.md).

-- Every change to a contact adds one; an edit names the version it read, so
-- two people editing at once cannot silently overwrite each other.
ALTER TABLE contacts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- What an audited action touched, by name only: the fields an edit changed.
ALTER TABLE audit_log ADD COLUMN detail TEXT;

-- Name and email prefixes within an account. The search compares
-- lower(column) with a range, which these indexes answer on SQLite and
-- PostgreSQL alike. The number already has contacts_account_phone. Each name
-- index also holds the order a name search lists its matches in, so a page
-- reads only its own rows, however many match.
CREATE INDEX contacts_first_name ON contacts (account_id, lower(first_name), lower(last_name));
CREATE INDEX contacts_last_name ON contacts (account_id, lower(last_name), lower(first_name));
CREATE INDEX contacts_email ON contacts (account_id, lower(email));

-- A postal code is a word inside the free-text address, which no B-tree
-- finds: a full-text index over the address, kept by triggers so every
-- writer (imports included) keeps it current.
CREATE VIRTUAL TABLE contact_addresses USING fts5 (
    postal_address,
    content = 'contacts',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
-- An erased or changed address leaves no words behind in the index's pages,
-- as secure_delete does for the tables.
INSERT INTO contact_addresses (contact_addresses, rank) VALUES ('secure-delete', 1);
INSERT INTO contact_addresses (contact_addresses) VALUES ('rebuild');

CREATE TRIGGER contacts_address_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contact_addresses (rowid, postal_address) VALUES (new.id, new.postal_address);
END;
CREATE TRIGGER contacts_address_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contact_addresses (contact_addresses, rowid, postal_address)
        VALUES ('delete', old.id, old.postal_address);
END;
CREATE TRIGGER contacts_address_update AFTER UPDATE OF postal_address ON contacts BEGIN
    INSERT INTO contact_addresses (contact_addresses, rowid, postal_address)
        VALUES ('delete', old.id, old.postal_address);
    INSERT INTO contact_addresses (rowid, postal_address) VALUES (new.id, new.postal_address);
END;

-- An agent's callbacks, for the rule that lets them edit those contacts.
CREATE INDEX leads_callback_user ON leads (callback_user_id) WHERE callback_user_id IS NOT NULL;

-- A contact's edits, read back for its timeline.
CREATE INDEX audit_log_target ON audit_log (account_id, target, occurred_at);
