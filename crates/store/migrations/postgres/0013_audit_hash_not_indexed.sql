-- certdesk schema v13 (PostgreSQL): the audit log's hash without its UNIQUE index (issue 11).
-- Never edit once released.
-- The index held random keys (SHA-256 hex): every batch of 100 audit records wrote about
-- one index page per record. It added no protection: each hash covers its record's
-- sequence number (the primary key) and the previous hash, so two records cannot share
-- one, and `certdesk audit verify` recomputes the chain.
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_hash_key;
