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

/// Whether a profile escrows the keys the desk makes for it (set by an administrator;
/// own-key certificates never are: the CA never had the key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EscrowMode {
    /// Not escrowed (the default).
    #[default]
    Off,
    /// Every server-made key is escrowed at issuance.
    On,
    /// The desk makes two keys, each with its certificate: one to sign (never
    /// escrowed) and one to encrypt (escrowed), so a recovery never lets anyone sign as
    /// the person.
    Separate,
}

impl EscrowMode {
    /// The name stored and typed (`off`, `on`).
    pub fn name(self) -> &'static str {
        match self {
            EscrowMode::Off => "off",
            EscrowMode::On => "on",
            EscrowMode::Separate => "separate",
        }
    }

    /// Whether keys the desk makes are escrowed (`on` or `separate`).
    pub fn escrows(self) -> bool {
        self != EscrowMode::Off
    }

    /// Reads a name of [`EscrowMode::name`].
    ///
    /// # Errors
    /// [`ErrorCode::BadInput`] for anything else.
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(EscrowMode::Off),
            "on" => Ok(EscrowMode::On),
            "separate" => Ok(EscrowMode::Separate),
            other => Err(DomainError::new(
                ErrorCode::BadInput,
                format!(
                    "escrow mode {other:?}: expected `on` (escrow every key the desk makes), `separate` (a signing \
                     key never escrowed and an escrowed encryption key, each with its certificate) or `off`"
                ),
            )),
        }
    }
}

/// A server-made private key kept for recovery: its PKCS#8 as CMS AuthEnvelopedData
/// (AES-256-GCM) to the escrow certificate of `key_id`.
#[derive(Clone, PartialEq, Eq)]
pub struct EscrowedKeyRecord {
    /// The certificate's serial, lower-case hex.
    pub serial: String,
    /// The escrow key it is encrypted to.
    pub key_id: String,
    /// The CMS ContentInfo (DER).
    pub blob: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for EscrowedKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscrowedKeyRecord")
            .field("serial", &self.serial)
            .field("key_id", &self.key_id)
            .field("blob_len", &self.blob.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl Store {
    /// The escrow mode of every profile an administrator set (profile name, mode); a
    /// profile not listed is [`EscrowMode::Off`].
    pub async fn profile_escrow(&self) -> Result<Vec<(String, EscrowMode)>, DomainError> {
        let rows =
            sqlx::query("SELECT profile, mode FROM profile_escrow ORDER BY profile").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mode: String = r.try_get("mode")?;
                let mode = EscrowMode::parse(&mode).map_err(|_| {
                    DomainError::new(ErrorCode::Internal, format!("profile escrow mode {mode:?}: damaged row"))
                })?;
                Ok((r.try_get("profile")?, mode))
            })
            .collect()
    }

    /// The escrow mode of one profile.
    pub async fn escrow_mode(&self, profile: &str) -> Result<EscrowMode, DomainError> {
        Ok(self.profile_escrow().await?.into_iter().find(|(p, _)| p == profile).map(|(_, m)| m).unwrap_or_default())
    }

    /// Sets a profile's escrow mode, with its audit record.
    pub async fn set_profile_escrow(
        &self,
        profile: &str,
        mode: EscrowMode,
        by: &str,
        at: i64,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO profile_escrow (profile, mode, changed_by, changed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (profile) DO UPDATE SET mode = excluded.mode, \
             changed_by = excluded.changed_by, changed_at = excluded.changed_at",
        )
        .bind(profile)
        .bind(mode.name())
        .bind(by)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The escrowed key of a certificate, if it was escrowed.
    pub async fn escrowed_key(&self, serial: &str) -> Result<Option<EscrowedKeyRecord>, DomainError> {
        let row = sqlx::query("SELECT * FROM escrowed_keys WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(escrowed_from_row).transpose()
    }

    /// Every escrowed key, oldest first.
    pub async fn escrowed_keys(&self) -> Result<Vec<EscrowedKeyRecord>, DomainError> {
        let rows = sqlx::query("SELECT * FROM escrowed_keys ORDER BY created_at, serial").fetch_all(&self.pool).await?;
        rows.iter().map(escrowed_from_row).collect()
    }
}

fn escrowed_from_row(row: &AnyRow) -> Result<EscrowedKeyRecord, DomainError> {
    Ok(EscrowedKeyRecord {
        serial: row.try_get("serial")?,
        key_id: row.try_get("key_id")?,
        blob: row.try_get("blob")?,
        created_at: row.try_get("created_at")?,
    })
}

#[cfg(feature = "ca")]
/// Writes an escrowed key in the transaction that records its certificate.
pub(crate) async fn insert_escrowed(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    escrowed: &EscrowedKeyRecord,
) -> Result<(), DomainError> {
    sqlx::query("INSERT INTO escrowed_keys (serial, key_id, blob, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&escrowed.serial)
        .bind(&escrowed.key_id)
        .bind(&escrowed.blob)
        .bind(escrowed.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
