//! Pending OpenID Connect logins (`oidc_logins`): kept in the database, not in one
//! process's memory, because the provider may send the browser back to another
//! `certdesk serve` process. Each is used at most once.

use sqlx::Row;

use super::Store;
use certdesk_core::error::DomainError;
use certdesk_core::records::PendingLogin;

impl Store {
    /// Stores a pending login and drops the expired ones.
    pub async fn insert_oidc_login(&self, login: &PendingLogin, now: i64) -> Result<(), DomainError> {
        sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO oidc_logins (state_hash, nonce_hash, code_verifier, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&login.state_hash)
        .bind(&login.nonce_hash)
        .bind(&login.code_verifier)
        .bind(login.created_at)
        .bind(login.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pending logins not yet expired at `now` (a cap against flooding the table).
    pub async fn oidc_logins_pending(&self, now: i64) -> Result<i64, DomainError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM oidc_logins WHERE expires_at >= $1")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Takes a pending login out (single use: a second call for the same state finds
    /// nothing, even in another process). The caller checks `expires_at`.
    pub async fn take_oidc_login(&self, state_hash: &str) -> Result<Option<PendingLogin>, DomainError> {
        let row = sqlx::query(
            "DELETE FROM oidc_logins WHERE state_hash = $1 \
             RETURNING state_hash, nonce_hash, code_verifier, created_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(PendingLogin {
                state_hash: row.try_get("state_hash")?,
                nonce_hash: row.try_get("nonce_hash")?,
                code_verifier: row.try_get("code_verifier")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })),
        }
    }
}
