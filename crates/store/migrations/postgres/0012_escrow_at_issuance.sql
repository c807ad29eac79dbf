-- certdesk schema v12 (PostgreSQL): escrow at issuance (issue 15, docs/design/key-escrow.md).
-- Never edit once released.
-- Which profiles escrow the keys the desk makes ('off' or 'on'; no row: off), set by an
-- administrator.
CREATE TABLE profile_escrow (
    profile    TEXT PRIMARY KEY,
    mode       TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);
-- A server-made private key (PKCS#8) as CMS AuthEnvelopedData to the escrow
-- certificate of key_id, written in the commit that records its certificate.
CREATE TABLE escrowed_keys (
    serial     TEXT PRIMARY KEY REFERENCES certificates(serial),
    key_id     TEXT NOT NULL REFERENCES escrow_keys(key_id),
    blob       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
