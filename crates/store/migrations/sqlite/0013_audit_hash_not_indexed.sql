-- certdesk schema v13 (SQLite): the audit log's hash without its UNIQUE index (issue 11).
-- Never edit once released.
-- The index held random keys (SHA-256 hex): every batch of 100 audit records wrote about
-- one index page per record, the largest share of an issuance commit in a store with
-- many records. It added no protection: each hash covers its record's sequence number
-- (the primary key) and the previous hash, so two records cannot share one, and
-- `certdesk audit verify` recomputes the chain. SQLite cannot drop a column constraint:
-- the table is rebuilt with the same columns and rows, and its append-only triggers
-- made again (DROP TABLE does not fire them).
CREATE TABLE audit_log_v13 (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_log_v13 (seq, at, actor, action, subject, details, prev_hash, hash)
SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
ALTER TABLE audit_log_v13 RENAME TO audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
