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
-- A key recovery (docs/design/key-escrow.md, "Recovery"): whose escrowed keys (the
-- serials, fixed at request, all escrowed to key_id), for whom, why, on whose
-- authority, and where it stands; `version` guards each transition.
CREATE TABLE key_recoveries (
    id            TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL REFERENCES escrow_keys(key_id),
    holder        TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    serials       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    authorised_by TEXT,
    requested_by  TEXT NOT NULL,
    state         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    opened_at     BIGINT,
    expires_at    BIGINT,
    closed_at     BIGINT,
    version       BIGINT NOT NULL
);
-- The agents who gave their share to a recovery (the shares themselves only ever in the
-- memory of the process that delivers).
CREATE TABLE recovery_approvals (
    recovery_id TEXT NOT NULL REFERENCES key_recoveries(id),
    idx         INTEGER NOT NULL,
    agent       TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (recovery_id, idx)
);
-- The other certificates whose keys only a pending .p12 holds (a profile that escrows
-- separately: the signing certificate beside the escrowed encryption one), revoked with
-- it if it never arrives (space-separated serials).
ALTER TABLE pending_deliveries ADD COLUMN companions TEXT;
