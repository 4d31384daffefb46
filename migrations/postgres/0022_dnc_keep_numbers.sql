-- Whether the account keeps the numbers of its do-not-call list itself,
-- beside their keyed hashes (off: the hash alone blocks a number).
ALTER TABLE accounts ADD COLUMN dnc_keep_numbers BOOLEAN NOT NULL DEFAULT FALSE;
