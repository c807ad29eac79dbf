-- certdesk schema v9 (SQLite): number floors. Never edit once released.
-- After a restore from a backup, the crlNumbers the CA may have used after the backup
-- are skipped: the next number is at least the floor (RFC 5280 5.2.3: crlNumber only
-- ever increases). `name` is `crl` (the issuing CA's CRL) or `root_crl`.
CREATE TABLE number_floors (
    name  TEXT PRIMARY KEY,
    floor INTEGER NOT NULL
);
