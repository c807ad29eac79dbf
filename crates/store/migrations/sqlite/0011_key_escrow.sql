-- certdesk schema v11 (SQLite): key escrow (issue 15, docs/design/key-escrow.md).
-- Never edit once released.
-- An escrow key: its self-signed certificate (the private key exists only as shares
-- held by the agents), how many shares put it together, and when a newer one took over.
CREATE TABLE escrow_keys (
    key_id      TEXT PRIMARY KEY,
    certificate BLOB NOT NULL,
    threshold   INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
-- Its agents: who holds share idx, the certificate it was encrypted to, and the
-- commitment (SHA-256) to the share handed out, against which a share given back is
-- checked.
CREATE TABLE escrow_agents (
    key_id       TEXT NOT NULL REFERENCES escrow_keys(key_id),
    idx          INTEGER NOT NULL,
    email        TEXT NOT NULL,
    agent_serial TEXT NOT NULL,
    commitment   TEXT NOT NULL,
    PRIMARY KEY (key_id, idx)
);
-- One escrow key in use at a time (two `escrow init` at once: the second fails).
CREATE UNIQUE INDEX escrow_keys_one_in_use ON escrow_keys ((COALESCE(retired_at, 0))) WHERE retired_at IS NULL;
