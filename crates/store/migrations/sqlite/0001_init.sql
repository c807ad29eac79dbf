-- certdesk schema v1 (SQLite). Never edit once released: add a new file instead.
CREATE TABLE serials (
    serial      TEXT PRIMARY KEY,          -- lower-case hex, unique forever
    reserved_at INTEGER NOT NULL
);
CREATE TABLE certificates (
    serial            TEXT PRIMARY KEY REFERENCES serials(serial),
    email             TEXT NOT NULL,
    subject           TEXT NOT NULL,
    profile           TEXT NOT NULL,
    key_kind          TEXT NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    der               BLOB NOT NULL,
    issued_at         INTEGER NOT NULL,
    revoked_at        INTEGER,
    revocation_reason INTEGER
);
CREATE INDEX certificates_email ON certificates(email);
CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE crls (
    number      INTEGER PRIMARY KEY,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    der         BLOB NOT NULL
);
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);
-- Append-only: the database refuses to change or delete audit records.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
