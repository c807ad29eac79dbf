-- certdesk schema v10 (PostgreSQL): publications to an existing LDAP directory
-- (issue 16, [directory.publish]). Never edit once released.
-- One row per certificate that is in the directory: the entry (dn) it was added to,
-- so that it is removed from that entry, value by value, when it is revoked or expires.
CREATE TABLE directory_publications (
    serial       TEXT PRIMARY KEY REFERENCES certificates(serial),
    email        TEXT NOT NULL,
    dn           TEXT NOT NULL,
    attribute    TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
