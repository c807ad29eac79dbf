-- certdesk schema v1 (PostgreSQL). Never edit once released: add a new file instead.
CREATE TABLE serials (
    serial      TEXT PRIMARY KEY,
    reserved_at BIGINT NOT NULL
);
CREATE TABLE certificates (
    serial            TEXT PRIMARY KEY REFERENCES serials(serial),
    email             TEXT NOT NULL,
    subject           TEXT NOT NULL,
    profile           TEXT NOT NULL,
    key_kind          TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    der               BYTEA NOT NULL,
    issued_at         BIGINT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason BIGINT
);
CREATE INDEX certificates_email ON certificates(email);
CREATE TABLE crls (
    number      BIGINT PRIMARY KEY,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der         BYTEA NOT NULL
);
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
