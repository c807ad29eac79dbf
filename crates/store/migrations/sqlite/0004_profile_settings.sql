-- certdesk schema v4 (SQLite): profile validity set by administrators on the portal.
-- Overrides [profiles] of certdesk.toml; read at every issuance, so every process of
-- a deployment issues with the same validity. Never edit once released.
CREATE TABLE profile_settings (
    profile       TEXT PRIMARY KEY,
    validity_days INTEGER NOT NULL,
    changed_by    TEXT NOT NULL,
    changed_at    INTEGER NOT NULL
);
