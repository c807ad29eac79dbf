//! Key escrow tables (issue 15, docs/design/key-escrow.md): escrow keys (their
//! certificates; the private key is only ever in the agents' shares) and their agents
//! (who holds which share, and the commitment each given-back share is checked against).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{append_audit_in, AuditAppend, Store};
use certdesk_core::error::{DomainError, ErrorCode};

/// An escrow key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowKeyRecord {
    /// SHA-256 of the escrow key's SubjectPublicKeyInfo, lower-case hex.
    pub key_id: String,
    /// Its self-signed certificate (DER).
    pub certificate: Vec<u8>,
    /// Shares needed.
    pub threshold: u8,
    /// Agents.
    pub total: u8,
    /// Unix seconds.
    pub created_at: i64,
    /// When a newer escrow key took over (Unix seconds).
    pub retired_at: Option<i64>,
}

/// An agent of an escrow key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowAgentRecord {
    /// The share's index (1 to total).
    pub index: u8,
    /// The agent's address, lower case.
    pub email: String,
    /// The serial of the agent's certificate the share was encrypted to.
    pub agent_serial: String,
    /// The commitment to the share handed out, lower-case hex.
    pub commitment: String,
}

fn small(row: &AnyRow, column: &str) -> Result<u8, DomainError> {
    let value: i64 = row.try_get(column)?;
    u8::try_from(value).map_err(|_| {
        DomainError::new(ErrorCode::Internal, format!("escrow {column} {value} out of range: damaged row"))
    })
}

fn key_from_row(row: &AnyRow) -> Result<EscrowKeyRecord, DomainError> {
    Ok(EscrowKeyRecord {
        key_id: row.try_get("key_id")?,
        certificate: row.try_get("certificate")?,
        threshold: small(row, "threshold")?,
        total: small(row, "total")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

impl Store {
    /// Records a new escrow key with its agents and its audit record in one
    /// transaction; the escrow key in use before is retired at `at` in the same one.
    pub async fn record_escrow_key(
        &self,
        key: &EscrowKeyRecord,
        agents: &[EscrowAgentRecord],
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE escrow_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO escrow_keys (key_id, certificate, threshold, total, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&key.key_id)
        .bind(&key.certificate)
        .bind(i64::from(key.threshold))
        .bind(i64::from(key.total))
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        for agent in agents {
            sqlx::query(
                "INSERT INTO escrow_agents (key_id, idx, email, agent_serial, commitment) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.key_id)
            .bind(i64::from(agent.index))
            .bind(&agent.email)
            .bind(&agent.agent_serial)
            .bind(&agent.commitment)
            .execute(&mut *tx)
            .await?;
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every escrow key, newest first.
    pub async fn escrow_keys(&self) -> Result<Vec<EscrowKeyRecord>, DomainError> {
        let rows =
            sqlx::query("SELECT * FROM escrow_keys ORDER BY created_at DESC, key_id").fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The escrow key in use (not retired), if any.
    pub async fn current_escrow_key(&self) -> Result<Option<EscrowKeyRecord>, DomainError> {
        let row = sqlx::query("SELECT * FROM escrow_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// The agents of an escrow key, by index.
    pub async fn escrow_agents(&self, key_id: &str) -> Result<Vec<EscrowAgentRecord>, DomainError> {
        let rows = sqlx::query(
            "SELECT idx, email, agent_serial, commitment FROM escrow_agents WHERE key_id = $1 ORDER BY idx",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EscrowAgentRecord {
                    index: small(row, "idx")?,
                    email: row.try_get("email")?,
                    agent_serial: row.try_get("agent_serial")?,
                    commitment: row.try_get("commitment")?,
                })
            })
            .collect()
    }
}
