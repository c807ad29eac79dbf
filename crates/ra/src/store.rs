//! The store: the only code that speaks SQL.
//!
//! One schema per backend (`migrations/sqlite`, `migrations/postgres`), the same
//! queries for both through sqlx's `Any` driver (`$1` placeholders work on both).
//! Times are Unix seconds; serials are lower-case hex.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

mod oidc;
mod portal;

pub use portal::{ChallengeOutcome, ChallengeRecord, SessionRecord, SlotRecord, UserRecord};

use crate::audit::{seal, AuditEvent};
use crate::error::{DomainError, ErrorCode};

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_portal.sql")),
    (3, include_str!("../migrations/sqlite/0003_oidc.sql")),
    (4, include_str!("../migrations/sqlite/0004_profile_settings.sql")),
    (5, include_str!("../migrations/sqlite/0005_audit_checkpoints.sql")),
    (6, include_str!("../migrations/sqlite/0006_totp_attempts.sql")),
    (7, include_str!("../migrations/sqlite/0007_appointment_reminders.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_portal.sql")),
    (3, include_str!("../migrations/postgres/0003_oidc.sql")),
    (4, include_str!("../migrations/postgres/0004_profile_settings.sql")),
    (5, include_str!("../migrations/postgres/0005_audit_checkpoints.sql")),
    (6, include_str!("../migrations/postgres/0006_totp_attempts.sql")),
    (7, include_str!("../migrations/postgres/0007_appointment_reminders.sql")),
];

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Which database we talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Subscriber mailbox.
    pub email: String,
    /// Subject, RFC 4514 string.
    pub subject: String,
    /// Profile name.
    pub profile: String,
    /// Key kind, e.g. "RSA-3072".
    pub key_kind: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// The certificate.
    pub der: Vec<u8>,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// CRLReason code, when revoked.
    pub revocation_reason: Option<i64>,
}

/// A revoked entry for the CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedRecord {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// CRLReason code.
    pub reason: i64,
}

/// One audit record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// Sequence number, from 1, without gaps.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What (e.g. `certificate.issue`).
    pub action: String,
    /// On what (a serial, an e-mail address).
    pub subject: String,
    /// JSON details.
    pub details: String,
    /// Hash of the previous record (hex).
    pub prev_hash: String,
    /// Hash of this record (hex).
    pub hash: String,
}

/// A certificate's status, as the OCSP responder needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRow {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// CRLReason code, when revoked.
    pub revocation_reason: Option<i64>,
}

/// A stored CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlRecord {
    /// crlNumber.
    pub number: i64,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds.
    pub next_update: i64,
    /// DER.
    pub der: Vec<u8>,
}

fn status_from_row(row: &AnyRow) -> Result<StatusRow, DomainError> {
    Ok(StatusRow {
        serial: row.try_get("serial")?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
    })
}

fn cert_from_row(row: &AnyRow) -> Result<CertificateRecord, sqlx::Error> {
    Ok(CertificateRecord {
        serial: row.try_get("serial")?,
        email: row.try_get("email")?,
        subject: row.try_get("subject")?,
        profile: row.try_get("profile")?,
        key_kind: row.try_get("key_kind")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        der: row.try_get("der")?,
        issued_at: row.try_get("issued_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
    })
}

/// The hash-chained audit record to append at (seq, prev_hash), computed by `audit`.
pub type AuditAppend<'a> = &'a (dyn Fn(i64, &str) -> AuditRow + Sync);

impl Store {
    /// Connects (creating a SQLite file if needed) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, DomainError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DomainError::new(ErrorCode::Config, "the database URL must start with sqlite: or postgres://"));
        };
        let max = if backend == Backend::Sqlite { 1 } else { 8 };
        let pool = AnyPoolOptions::new().max_connections(max).connect(url).await?;
        if backend == Backend::Sqlite {
            // Write-ahead log: one fsync per commit instead of several, same durability
            // (synchronous stays FULL, the SQLite default).
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// Whether the database already holds a CA (any audit record).
    pub async fn holds_records(&self) -> Result<bool, DomainError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_log").fetch_one(&self.pool).await?.try_get("n")?;
        Ok(n > 0)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (so a SQLite file can be moved).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<(), DomainError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY)")
            .execute(&self.pool)
            .await?;
        let current: Option<i64> =
            sqlx::query("SELECT MAX(version) AS v FROM schema_version").fetch_one(&self.pool).await?.try_get("v")?;
        let current = current.unwrap_or(0);
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)").bind(*version).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Records a batch of issuances in one transaction (a group commit): reserves every
    /// serial (unique forever by primary key: a collision fails before anything is
    /// signed), calls `sign(i)` for each to make certificate `i`, stores them and appends
    /// `events[i]`, sealed into the hash chain at `now`, for each. If anything fails
    /// nothing is kept. One durable commit for the whole batch; a single issuance is a batch of one.
    pub async fn record_issuances<F>(
        &self,
        serials: &[String],
        now: i64,
        sign: F,
        events: &[AuditEvent],
    ) -> Result<Vec<CertificateRecord>, DomainError>
    where
        F: FnMut(usize) -> Result<CertificateRecord, DomainError>,
    {
        self.record_issuances_for(serials, now, sign, events, None).await
    }

    /// [`Store::record_issuances`] for one application: in the same transaction, and
    /// before anything is signed, the application moves to `issued` (`issued_app`, made
    /// by the workflow, with the serial) only if it still has the version it was read
    /// with; so two processes can never issue twice for one application.
    pub async fn record_issuances_for<F>(
        &self,
        serials: &[String],
        now: i64,
        mut sign: F,
        events: &[AuditEvent],
        issued_app: Option<&crate::workflow::Application>,
    ) -> Result<Vec<CertificateRecord>, DomainError>
    where
        F: FnMut(usize) -> Result<CertificateRecord, DomainError>,
    {
        if events.len() != serials.len() {
            return Err(DomainError::new(ErrorCode::Internal, "every issuance needs exactly one audit event"));
        }
        let mut tx = self.pool.begin().await?;
        if let Some(app) = issued_app {
            let claimed = sqlx::query(
                "UPDATE applications SET state = $1, updated_at = $2, version = $3 WHERE id = $4 AND version = $5 \
                 AND state = 'approved'",
            )
            .bind(app.state.name())
            .bind(app.updated_at)
            .bind(app.version)
            .bind(&app.id)
            .bind(app.version - 1)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() != 1 {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    "a certificate was already issued for this application, or it changed meanwhile",
                ));
            }
        }
        for chunk in serials.chunks(ROWS_PER_INSERT) {
            let sql = format!("INSERT INTO serials (serial, reserved_at) VALUES {}", placeholders(chunk.len(), 2));
            let mut query = sqlx::query(&sql);
            for serial in chunk {
                query = query.bind(serial).bind(now);
            }
            match query.execute(&mut *tx).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(DomainError::new(
                        ErrorCode::Internal,
                        "a serial number is already taken; nothing was signed",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut certs = Vec::with_capacity(serials.len());
        for (index, serial) in serials.iter().enumerate() {
            let cert = sign(index)?;
            if &cert.serial != serial {
                return Err(DomainError::new(ErrorCode::Internal, "the signed certificate has another serial"));
            }
            certs.push(cert);
        }
        for chunk in certs.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO certificates (serial, email, subject, profile, key_kind, not_before, not_after, der, issued_at) \
                 VALUES {}",
                placeholders(chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for cert in chunk {
                query = query
                    .bind(&cert.serial)
                    .bind(&cert.email)
                    .bind(&cert.subject)
                    .bind(&cert.profile)
                    .bind(&cert.key_kind)
                    .bind(cert.not_before)
                    .bind(cert.not_after)
                    .bind(&cert.der)
                    .bind(cert.issued_at);
            }
            query.execute(&mut *tx).await?;
        }
        let (mut seq, mut prev) = audit_head(&mut tx).await?;
        let mut rows = Vec::with_capacity(certs.len());
        for event in events {
            let row = seal(event, now, seq, &prev);
            seq += 1;
            prev = row.hash.clone();
            rows.push(row);
        }
        insert_audit_rows(&mut tx, &rows).await?;
        if let Some(app) = issued_app {
            sqlx::query("UPDATE applications SET serial = $1 WHERE id = $2")
                .bind(&app.serial)
                .bind(&app.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(certs)
    }

    /// One certificate by serial.
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, DomainError> {
        let row =
            sqlx::query("SELECT * FROM certificates WHERE serial = $1").bind(serial).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(cert_from_row).transpose()?)
    }

    /// Every certificate, newest first.
    pub async fn certificates(&self) -> Result<Vec<CertificateRecord>, DomainError> {
        let rows =
            sqlx::query("SELECT * FROM certificates ORDER BY issued_at DESC, serial").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(cert_from_row).collect::<Result<_, _>>()?)
    }

    /// Marks a certificate revoked (only if it is not yet) and appends the audit record,
    /// in one transaction. Returns `false` if it was already revoked.
    pub async fn revoke(
        &self,
        serial: &str,
        at: i64,
        reason: i64,
        audit: AuditAppend<'_>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revoked certificates that have not yet expired at `now`.
    pub async fn revoked_unexpired(&self, now: i64) -> Result<Vec<RevokedRecord>, DomainError> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE revoked_at IS NOT NULL AND not_after >= $1 ORDER BY revoked_at, serial",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(RevokedRecord {
                serial: row.try_get("serial")?,
                revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.unwrap_or_default(),
                reason: row.try_get::<Option<i64>, _>("revocation_reason")?.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Certificates issued or revoked at or after `since` (Unix seconds): what an OCSP
    /// cache must (re)sign.
    pub async fn status_changes_since(&self, since: i64) -> Result<Vec<StatusRow>, DomainError> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE issued_at >= $1 OR revoked_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(status_from_row).collect()
    }

    /// The status of one certificate, `None` if this CA never issued the serial.
    pub async fn certificate_status(&self, serial: &str) -> Result<Option<StatusRow>, DomainError> {
        let row = sqlx::query("SELECT serial, revoked_at, revocation_reason FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(status_from_row).transpose()
    }

    /// The next crlNumber (one above the highest ever issued).
    pub async fn next_crl_number(&self) -> Result<i64, DomainError> {
        let n: Option<i64> =
            sqlx::query("SELECT MAX(number) AS n FROM crls").fetch_one(&self.pool).await?.try_get("n")?;
        Ok(n.unwrap_or(0) + 1)
    }

    /// Stores a CRL with its audit record; fails if the number was taken meanwhile.
    pub async fn insert_crl(&self, crl: &CrlRecord, audit: AuditAppend<'_>) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO crls (number, this_update, next_update, der) VALUES ($1, $2, $3, $4)")
            .bind(crl.number)
            .bind(crl.this_update)
            .bind(crl.next_update)
            .bind(&crl.der)
            .execute(&mut *tx)
            .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest CRL.
    pub async fn latest_crl(&self) -> Result<Option<CrlRecord>, DomainError> {
        let row = sqlx::query("SELECT number, this_update, next_update, der FROM crls ORDER BY number DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(CrlRecord {
                number: row.try_get("number")?,
                this_update: row.try_get("this_update")?,
                next_update: row.try_get("next_update")?,
                der: row.try_get("der")?,
            })),
        }
    }

    /// Appends one audit record on its own.
    pub async fn append_audit(&self, audit: AuditAppend<'_>) -> Result<AuditRow, DomainError> {
        let mut tx = self.pool.begin().await?;
        let row = append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The whole audit log, in order.
    pub async fn audit_log(&self) -> Result<Vec<AuditRow>, DomainError> {
        let rows =
            sqlx::query("SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(AuditRow {
                seq: row.try_get("seq")?,
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                subject: row.try_get("subject")?,
                details: row.try_get("details")?,
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            });
        }
        Ok(out)
    }

    /// Whether checkpoint period `period` is claimed (its mail sent or being sent).
    pub async fn checkpoint_claimed(&self, period: i64) -> Result<bool, DomainError> {
        let row = sqlx::query("SELECT period FROM audit_checkpoints WHERE period = $1")
            .bind(period)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Claims checkpoint period `period` for the mail of `seq:hash` (`seq` 0: an alert),
    /// so that one process of a deployment sends it; `false` if another one has.
    pub async fn claim_checkpoint(&self, period: i64, seq: i64, hash: &str, now: i64) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "INSERT INTO audit_checkpoints (period, seq, hash, sent_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (period) DO NOTHING",
        )
        .bind(period)
        .bind(seq)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the checkpoint `seq:hash` of `period` mailed outside the schedule
    /// (`certdesk audit checkpoint`): it replaces the period's row only when newer, so an
    /// alert (`seq` 0) never hides a checkpoint.
    pub async fn record_checkpoint(&self, period: i64, seq: i64, hash: &str, now: i64) -> Result<(), DomainError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (period, seq, hash, sent_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (period) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, sent_at = excluded.sent_at \
             WHERE audit_checkpoints.seq < excluded.seq",
        )
        .bind(period)
        .bind(seq)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives back the claim of `period` for `seq:hash` (its mail failed), so that the next
    /// run retries; a row that holds anything else (a forced checkpoint recorded since)
    /// stays.
    pub async fn release_checkpoint(&self, period: i64, seq: i64, hash: &str) -> Result<(), DomainError> {
        sqlx::query("DELETE FROM audit_checkpoints WHERE period = $1 AND seq = $2 AND hash = $3")
            .bind(period)
            .bind(seq)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest checkpoint mailed (alerts left out).
    pub async fn last_checkpoint(&self) -> Result<Option<crate::audit::Checkpoint>, DomainError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_checkpoints WHERE seq > 0 ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(crate::audit::Checkpoint { seq: row.try_get("seq")?, hash: row.try_get("hash")? })),
        }
    }

    /// Runs a raw statement (tests that tamper with the database on purpose).
    #[doc(hidden)]
    pub async fn danger_execute(&self, sql: &str) -> Result<(), DomainError> {
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }
}

/// Rows per multi-row INSERT: few enough that SQLite's linear parameter-name lookup
/// (sqlx binds `$n` by name) stays cheap, far under both databases' bind limits.
const ROWS_PER_INSERT: usize = 32;

/// `($1, $2), ($3, $4), ...` for `rows` rows of `columns` values.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The advisory lock that serialises audit appends on PostgreSQL (an arbitrary,
/// fixed key: "certdesk audit").
const AUDIT_LOCK_KEY: i64 = 0x6365_7274_6175_6469;

/// The sequence number and hash the next audit record follows.
///
/// Appends must be serialised: two transactions that read the same head would both
/// chain to it. SQLite allows one writer at a time, so its transactions already are;
/// on PostgreSQL (READ COMMITTED) a transaction-scoped advisory lock is taken first and
/// held until commit or rollback, and the head is read after it, so it sees every
/// committed record.
async fn audit_head(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(i64, String), DomainError> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK_KEY).execute(&mut **tx).await?;
    }
    let last =
        sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut **tx).await?;
    Ok(match last {
        Some(row) => (row.try_get::<i64, _>("seq")? + 1, row.try_get::<String, _>("hash")?),
        None => (1, crate::audit::GENESIS.to_string()),
    })
}

async fn insert_audit_rows(tx: &mut sqlx::Transaction<'_, sqlx::Any>, rows: &[AuditRow]) -> Result<(), DomainError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES {}",
            placeholders(chunk.len(), 8)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.seq)
                .bind(row.at)
                .bind(&row.actor)
                .bind(&row.action)
                .bind(&row.subject)
                .bind(&row.details)
                .bind(&row.prev_hash)
                .bind(&row.hash);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn append_audit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    audit: AuditAppend<'_>,
) -> Result<AuditRow, DomainError> {
    let (seq, prev) = audit_head(tx).await?;
    let row = audit(seq, &prev);
    insert_audit_rows(tx, std::slice::from_ref(&row)).await?;
    Ok(row)
}
