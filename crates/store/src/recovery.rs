//! Key recoveries (issue 15, docs/design/key-escrow.md "Recovery"): the request with its
//! serials fixed, its state and window, and which agents gave their share. The shares
//! themselves are never stored.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{append_audit_in, AuditAppend, Store};
use certdesk_core::error::{DomainError, ErrorCode};
pub use certdesk_core::records::{KeyRecoveryRecord, RecoveryApproval, RecoveryState};

fn recovery_from_row(row: &AnyRow) -> Result<KeyRecoveryRecord, DomainError> {
    let serials: String = row.try_get("serials")?;
    let state: String = row.try_get("state")?;
    Ok(KeyRecoveryRecord {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        holder: row.try_get("holder")?,
        recipient: row.try_get("recipient")?,
        serials: serials.split_whitespace().map(str::to_string).collect(),
        reason: row.try_get("reason")?,
        authorised_by: row.try_get("authorised_by")?,
        requested_by: row.try_get("requested_by")?,
        state: RecoveryState::parse(&state)
            .ok_or_else(|| DomainError::new(ErrorCode::Internal, format!("recovery state {state:?}: damaged row")))?,
        created_at: row.try_get("created_at")?,
        opened_at: row.try_get("opened_at")?,
        expires_at: row.try_get("expires_at")?,
        closed_at: row.try_get("closed_at")?,
        version: row.try_get("version")?,
    })
}

impl Store {
    /// Records a new recovery with its audit record.
    pub async fn insert_recovery(
        &self,
        recovery: &KeyRecoveryRecord,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO key_recoveries (id, key_id, holder, recipient, serials, reason, authorised_by, requested_by, \
             state, created_at, opened_at, expires_at, closed_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&recovery.id)
        .bind(&recovery.key_id)
        .bind(&recovery.holder)
        .bind(&recovery.recipient)
        .bind(recovery.serials.join(" "))
        .bind(&recovery.reason)
        .bind(&recovery.authorised_by)
        .bind(&recovery.requested_by)
        .bind(recovery.state.name())
        .bind(recovery.created_at)
        .bind(recovery.opened_at)
        .bind(recovery.expires_at)
        .bind(recovery.closed_at)
        .bind(recovery.version)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A recovery by id.
    pub async fn recovery(&self, id: &str) -> Result<Option<KeyRecoveryRecord>, DomainError> {
        let row = sqlx::query("SELECT * FROM key_recoveries WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(recovery_from_row).transpose()
    }

    /// Every recovery, newest first.
    pub async fn recoveries(&self) -> Result<Vec<KeyRecoveryRecord>, DomainError> {
        let rows =
            sqlx::query("SELECT * FROM key_recoveries ORDER BY created_at DESC, id").fetch_all(&self.pool).await?;
        rows.iter().map(recovery_from_row).collect()
    }

    /// Moves a recovery to `to` (its state, window and closing time as `to` has them)
    /// if it is still at `to.version - 1`, with its audit record; `clear_approvals`
    /// also forgets which agents gave shares (the shares were lost). `false` if it
    /// changed meanwhile (nothing written).
    pub async fn update_recovery(
        &self,
        to: &KeyRecoveryRecord,
        clear_approvals: bool,
        audit: AuditAppend<'_>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE key_recoveries SET state = $1, opened_at = $2, expires_at = $3, closed_at = $4, version = $5 \
             WHERE id = $6 AND version = $7",
        )
        .bind(to.state.name())
        .bind(to.opened_at)
        .bind(to.expires_at)
        .bind(to.closed_at)
        .bind(to.version)
        .bind(&to.id)
        .bind(to.version - 1)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if clear_approvals {
            sqlx::query("DELETE FROM recovery_approvals WHERE recovery_id = $1").bind(&to.id).execute(&mut *tx).await?;
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records an agent's approval with its audit record, only while the recovery is
    /// open; `false` (nothing written) if that agent's share was given already or the
    /// recovery is no longer open.
    pub async fn add_recovery_approval(
        &self,
        recovery_id: &str,
        approval: &RecoveryApproval,
        audit: AuditAppend<'_>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO recovery_approvals (recovery_id, idx, agent, approved_at) \
             SELECT CAST($1 AS TEXT), CAST($2 AS INTEGER), CAST($3 AS TEXT), CAST($4 AS BIGINT) \
             WHERE EXISTS (SELECT 1 FROM key_recoveries WHERE id = $1 AND state = 'open') \
             ON CONFLICT (recovery_id, idx) DO NOTHING",
        )
        .bind(recovery_id)
        .bind(i64::from(approval.index))
        .bind(&approval.agent)
        .bind(approval.approved_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The approvals of a recovery, by index.
    pub async fn recovery_approvals(&self, recovery_id: &str) -> Result<Vec<RecoveryApproval>, DomainError> {
        let rows =
            sqlx::query("SELECT idx, agent, approved_at FROM recovery_approvals WHERE recovery_id = $1 ORDER BY idx")
                .bind(recovery_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                let index: i64 = row.try_get("idx")?;
                Ok(RecoveryApproval {
                    index: u8::try_from(index)
                        .map_err(|_| DomainError::new(ErrorCode::Internal, "approval index out of range"))?,
                    agent: row.try_get("agent")?,
                    approved_at: row.try_get("approved_at")?,
                })
            })
            .collect()
    }
}
