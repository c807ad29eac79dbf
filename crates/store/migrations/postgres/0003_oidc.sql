-- certdesk schema v3 (PostgreSQL): OpenID Connect logins in progress. Never edit once released.
CREATE TABLE oidc_logins (
    state_hash    TEXT PRIMARY KEY,           -- SHA-256 of the state parameter, hex
    nonce_hash    TEXT NOT NULL,              -- SHA-256 of the nonce, hex
    code_verifier TEXT NOT NULL,              -- PKCE verifier (RFC 7636)
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX oidc_logins_expires ON oidc_logins(expires_at);
