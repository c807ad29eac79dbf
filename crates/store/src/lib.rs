//! The store: the only code that speaks SQL.
#![doc = include_str!("../README.md")]
//!
//! One schema per backend (`migrations/sqlite`, `migrations/postgres`), the same
//! queries for both through sqlx's `Any` driver (`$1` placeholders work on both).
//! Times are Unix seconds; serials are lower-case hex.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

mod escrow;
mod migrations;
mod oidc;
mod portal;
mod recovery;

pub use escrow::{EscrowAgentRecord, EscrowKeyRecord, EscrowMode, EscrowedKeyRecord};
pub use portal::{ChallengeOutcome, ChallengeRecord, Publication, SessionRecord, SlotRecord, UserRecord};
pub use recovery::{KeyRecoveryRecord, RecoveryApproval, RecoveryState};

#[cfg(feature = "ca")]
use certdesk_core::audit::{seal, AuditEvent};
use certdesk_core::error::{DomainError, ErrorCode};
#[cfg(feature = "ca")]
use certdesk_core::ports::ApplicationClaim;
pub use certdesk_core::records::{
    AuditRow, CertificateRecord, CrlRecord, IssuanceIntent, PendingDelivery, ProfileId, RevocationReason,
    RevokedRecord, Serial, StatusRow,
};

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    read_only: bool,
}

/// Which database we talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[cfg(feature = "ca")]
fn status_from_row(row: &AnyRow) -> Result<StatusRow, DomainError> {
    Ok(StatusRow {
        serial: stored_serial(row.try_get("serial")?)?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: stored_reason(row.try_get("revocation_reason")?)?,
    })
}

fn cert_from_row(row: &AnyRow) -> Result<CertificateRecord, DomainError> {
    Ok(CertificateRecord {
        serial: stored_serial(row.try_get("serial")?)?,
        email: row.try_get("email")?,
        subject: row.try_get("subject")?,
        profile: stored_profile(row.try_get("profile")?)?,
        key_kind: row.try_get("key_kind")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        der: row.try_get("der")?,
        issued_at: row.try_get("issued_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: stored_reason(row.try_get("revocation_reason")?)?,
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
        if backend == Backend::Postgres {
            let pool = AnyPoolOptions::new().max_connections(8).connect(url).await?;
            let store = Self { pool, backend, read_only: false };
            store.migrate().await?;
            return Ok(store);
        }
        let path = sqlite_path(url);
        match Self::open_sqlite(url).await {
            Ok(store) => Ok(store),
            // A data directory this user cannot write (a backup, a read-only mount, the
            // web server's user reading serve's data): SQLite cannot make its -wal and
            // -shm files there, so read-only work (`audit verify`, `crl` when current,
            // `ca chain`) opens the file read-only. Any other failure is reported.
            Err(first) if !directory_writable(&path) => match Self::open_sqlite_read_only(&path).await {
                Ok(store) => Ok(store),
                Err(second) => Err(DomainError::new(
                    ErrorCode::DataDir,
                    format!(
                        "cannot open the database {}: {first}; read-only: {second} (SQLite needs to write its \
                         directory for {}-wal and -shm, or find them there)",
                        path.display(),
                        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
                    ),
                )),
            },
            Err(first) if first.code() == ErrorCode::Database => Err(DomainError::new(
                ErrorCode::Database,
                format!("cannot open the database {}: {first}", path.display()),
            )),
            Err(first) => Err(first),
        }
    }

    async fn open_sqlite(url: &str) -> Result<Self, DomainError> {
        let pool = AnyPoolOptions::new().max_connections(1).connect(url).await?;
        // Write-ahead log: one fsync per commit instead of several, same durability
        // (synchronous stays FULL, the SQLite default).
        sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        let store = Self { pool, backend: Backend::Sqlite, read_only: false };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens an existing SQLite file read-only; its schema must be current (migrations
    /// need write access). Every write then fails. While a writer has the database open
    /// its -wal and -shm files are there and a read-only connection shares them; without
    /// them (no writer, the log checkpointed) the file is opened immutable, which is
    /// right as long as no one writes, and no one can start to without creating them.
    async fn open_sqlite_read_only(path: &std::path::Path) -> Result<Self, DomainError> {
        if !path.is_file() {
            return Err(DomainError::new(ErrorCode::DataDir, format!("{} does not exist", path.display())));
        }
        let wal =
            path.with_file_name(format!("{}-wal", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
        let options = if wal.exists() { "mode=ro" } else { "mode=ro&immutable=1" };
        let url = format!("sqlite://{}?{options}", path.display());
        let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await?;
        let store = Self { pool, backend: Backend::Sqlite, read_only: true };
        if !migrations::current(&store.pool, Backend::Sqlite).await? {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!("{} needs its schema updated: open it once where it can be written", path.display()),
            ));
        }
        Ok(store)
    }

    /// Whether this store was opened read-only (a data directory this user cannot
    /// write): commands that change state refuse it at once.
    pub fn read_only(&self) -> bool {
        self.read_only
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
        migrations::run(&self.pool, self.backend).await
    }

    #[cfg(feature = "ca")]
    /// Step 1 of issuance (see `certdesk_ca::recovery`): in one transaction, reserves
    /// every serial (unique forever by primary key: a collision fails before anything is
    /// signed), records the intents and, for an application, moves it from `approved` to
    /// `issued` only if it still has the version it was read with (so two processes can
    /// never issue twice for one application).
    pub async fn record_intents(
        &self,
        intents: &[IssuanceIntent],
        claim: Option<&ApplicationClaim>,
        now: i64,
    ) -> Result<(), DomainError> {
        let mut conn = UnsyncedCommits::new(self.pool.acquire().await?, self.backend).await?;
        let done = Self::intents_in(conn.connection()?, intents, claim, now).await;
        conn.restore().await?;
        done
    }

    #[cfg(feature = "ca")]
    async fn intents_in(
        conn: &mut sqlx::AnyConnection,
        intents: &[IssuanceIntent],
        claim: Option<&ApplicationClaim>,
        now: i64,
    ) -> Result<(), DomainError> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        if tx.backend_name() == "PostgreSQL" {
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        }

        // Ordered before the record, made durable by its sync: the intent needs to be on
        // disk no later than the certificate (`record_issued`, a full sync), not before
        // the signature, which nobody receives until then. A power cut in between loses
        // intent and signature together, as if the process had stopped before step 1.
        // SQLite: a WAL commit on a `synchronous=NORMAL` connection is not synced, but the
        // next synced commit syncs the log up to and including it. PostgreSQL:
        // `synchronous_commit = off` for this transaction; the record's commit flushes
        // the WAL past it. Saves one disk sync per issuance.
        if let Some(claim) = claim {
            let claimed = sqlx::query(
                "UPDATE applications SET state = 'issued', updated_at = $1, version = version + 1 \
                 WHERE id = $2 AND version = $3 AND state = 'approved' AND serial IS NULL",
            )
            .bind(now)
            .bind(&claim.id)
            .bind(claim.version)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() != 1 {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    "a certificate was already issued for this application, or it changed meanwhile",
                ));
            }
        }
        for chunk in intents.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO serials (serial, reserved_at) VALUES {}",
                placeholders(backend_of(&tx), chunk.len(), 2)
            );
            let mut query = sqlx::query(&sql);
            for intent in chunk {
                query = query.bind(intent.serial.as_str()).bind(now);
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
            let sql = format!(
                "INSERT INTO issuance_intents (serial, tbs_sha256, email, profile, not_after, application_id, owner, \
                 created_at) VALUES {}",
                placeholders(backend_of(&tx), chunk.len(), 8)
            );
            let mut query = sqlx::query(&sql);
            for intent in chunk {
                query = query
                    .bind(intent.serial.as_str())
                    .bind(&intent.tbs_sha256)
                    .bind(&intent.email)
                    .bind(intent.profile.name())
                    .bind(intent.not_after)
                    .bind(&intent.application_id)
                    .bind(&intent.owner)
                    .bind(intent.created_at);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[cfg(feature = "ca")]
    /// Step 3 of issuance: in one transaction, stores the signed certificates, appends
    /// `events[i]` for each (sealed into the hash chain at `now`), gives an application
    /// its serial, stores `delivery` (a .p12 to hand over) and `escrowed` (the escrowed
    /// server-made key, issue 15) and deletes the intents. Fails (and keeps nothing) if
    /// an intent is gone: recovery abandoned it.
    pub async fn record_issued(
        &self,
        certificates: &[&CertificateRecord],
        events: &[AuditEvent],
        now: i64,
        delivery: Option<&PendingDelivery>,
        escrowed: Option<&EscrowedKeyRecord>,
    ) -> Result<(), DomainError> {
        if events.len() != certificates.len() {
            return Err(DomainError::new(ErrorCode::Internal, "every issuance needs exactly one audit event"));
        }
        if let Some(escrowed) = escrowed {
            if !certificates.iter().any(|c| c.serial.as_str() == escrowed.serial) {
                return Err(DomainError::new(ErrorCode::Internal, "an escrowed key without its certificate"));
            }
        }
        // The intents deleted: those without an application counted (a row back from
        // SQLite is a hand-over between threads: issue 11), the few with one returned.
        // Deletes first, so the transaction's first statement is a write: SQLite does not
        // wait for the write lock when a transaction that has only read upgrades, it
        // fails at once if another connection wrote meanwhile.
        let mut tx = self.pool.begin().await?;
        let mut applications = Vec::new();
        for chunk in certificates.chunks(ROWS_PER_INSERT) {
            let list = placeholders(self.backend, 1, chunk.len());
            let bind_serials = |sql| chunk.iter().fold(sqlx::query(sql), |q, cert| q.bind(cert.serial.as_str()));
            let sql = format!("DELETE FROM issuance_intents WHERE serial IN {list} AND application_id IS NULL");
            let mut deleted = bind_serials(&sql).execute(&mut *tx).await?.rows_affected();
            let sql = format!(
                "DELETE FROM issuance_intents WHERE serial IN {list} AND application_id IS NOT NULL \
                 RETURNING serial, application_id"
            );
            for row in bind_serials(&sql).fetch_all(&mut *tx).await? {
                applications.push((row.try_get::<String, _>("application_id")?, row.try_get::<String, _>("serial")?));
                deleted += 1;
            }
            if deleted != chunk.len() as u64 {
                // Name one that has no intent: asked after the rollback, since the
                // deletes have removed the others within this transaction.
                tx.rollback().await?;
                let sql = format!("SELECT serial FROM issuance_intents WHERE serial IN {list}");
                let left = bind_serials(&sql).fetch_all(&self.pool).await?;
                let left: std::collections::HashSet<String> =
                    left.iter().map(|row| row.try_get::<String, _>("serial")).collect::<Result<_, _>>()?;
                let gone = chunk.iter().find(|c| !left.contains(c.serial.as_str())).map_or("?", |c| c.serial.as_str());
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    format!("the issuance of {gone} was abandoned meanwhile; the certificate was not recorded"),
                ));
            }
        }
        for chunk in certificates.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO certificates (serial, email, subject, profile, key_kind, not_before, not_after, der, issued_at) \
                 VALUES {}",
                placeholders(self.backend, chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for cert in chunk {
                query = query
                    .bind(cert.serial.as_str())
                    .bind(&cert.email)
                    .bind(&cert.subject)
                    .bind(cert.profile.name())
                    .bind(&cert.key_kind)
                    .bind(cert.not_before)
                    .bind(cert.not_after)
                    .bind(&cert.der)
                    .bind(cert.issued_at);
            }
            query.execute(&mut *tx).await?;
        }
        let (mut seq, mut prev) = audit_head(&mut tx).await?;
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let row = seal(event, now, seq, &prev);
            seq += 1;
            prev = row.hash.clone();
            rows.push(row);
        }
        insert_audit_rows(&mut tx, &rows).await?;
        for (application, serial) in &applications {
            sqlx::query("UPDATE applications SET serial = $1 WHERE id = $2")
                .bind(serial)
                .bind(application)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(delivery) = delivery {
            sqlx::query(
                "INSERT INTO pending_deliveries \
                 (serial, application_id, destination, sha256, pkcs12, owner, created_at, companions) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(delivery.serial.as_str())
            .bind(&delivery.application_id)
            .bind(&delivery.destination)
            .bind(&delivery.sha256)
            .bind(&delivery.pkcs12)
            .bind(&delivery.owner)
            .bind(delivery.created_at)
            .bind(
                (!delivery.companions.is_empty())
                    .then(|| delivery.companions.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>().join(" ")),
            )
            .execute(&mut *tx)
            .await?;
        }
        if let Some(escrowed) = escrowed {
            escrow::insert_escrowed(&mut tx, escrowed).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database answers (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), DomainError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    #[cfg(feature = "ca")]
    /// Every issuance intent not yet resolved, oldest first.
    pub async fn intents(&self) -> Result<Vec<IssuanceIntent>, DomainError> {
        let rows =
            sqlx::query("SELECT * FROM issuance_intents ORDER BY created_at, serial").fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(IssuanceIntent {
                serial: stored_serial(row.try_get("serial")?)?,
                tbs_sha256: row.try_get("tbs_sha256")?,
                email: row.try_get("email")?,
                profile: stored_profile(row.try_get("profile")?)?,
                not_after: row.try_get("not_after")?,
                application_id: row.try_get("application_id")?,
                owner: row.try_get("owner")?,
                created_at: row.try_get("created_at")?,
            });
        }
        Ok(out)
    }

    #[cfg(feature = "ca")]
    /// Abandons an intent: deletes it, moves its application (if any, and still
    /// `issued` without a serial) back to `approved`, and appends the audit record, in
    /// one transaction. `false` if the intent was resolved meanwhile.
    pub async fn abandon_intent(
        &self,
        intent: &IssuanceIntent,
        now: i64,
        audit: AuditAppend<'_>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM issuance_intents WHERE serial = $1")
            .bind(intent.serial.as_str())
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(application) = &intent.application_id {
            sqlx::query(
                "UPDATE applications SET state = 'approved', updated_at = $1, version = version + 1 \
                 WHERE id = $2 AND state = 'issued' AND serial IS NULL",
            )
            .bind(now)
            .bind(application)
            .execute(&mut *tx)
            .await?;
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[cfg(feature = "ca")]
    /// Every .p12 not yet delivered.
    pub async fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, DomainError> {
        let rows =
            sqlx::query("SELECT * FROM pending_deliveries ORDER BY created_at, serial").fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// The .p12 of an application's certificate not yet delivered.
    pub async fn pending_delivery_of(&self, application_id: &str) -> Result<Option<PendingDelivery>, DomainError> {
        let row = sqlx::query("SELECT * FROM pending_deliveries WHERE application_id = $1")
            .bind(application_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// Deletes the stored .p12 of `serial` (delivered, or its certificate revoked);
    /// `false` if there was none (recovery resolved it meanwhile).
    pub async fn delete_pending_delivery(&self, serial: &str) -> Result<bool, DomainError> {
        let done =
            sqlx::query("DELETE FROM pending_deliveries WHERE serial = $1").bind(serial).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a wrong password given for the stored .p12 of `serial` at `at`, in a
    /// window of `window` seconds (a new window starts after it); returns the count.
    pub async fn note_wrong_p12_password(&self, serial: &str, at: i64, window: i64) -> Result<i64, DomainError> {
        let row = sqlx::query(
            "UPDATE pending_deliveries SET \
             wrong_tries = CASE WHEN wrong_since IS NULL OR wrong_since <= $1 THEN 1 ELSE wrong_tries + 1 END, \
             wrong_since = CASE WHEN wrong_since IS NULL OR wrong_since <= $1 THEN $2 ELSE wrong_since END \
             WHERE serial = $3 RETURNING wrong_tries",
        )
        .bind(at - window)
        .bind(at)
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => row.try_get("wrong_tries")?,
            None => 0,
        })
    }

    /// Notes that the portal sent the stored .p12 of `serial` at `at`.
    pub async fn mark_handed_out(&self, serial: &str, at: i64) -> Result<(), DomainError> {
        sqlx::query("UPDATE pending_deliveries SET handed_out_at = $1 WHERE serial = $2")
            .bind(at)
            .bind(serial)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One certificate by serial.
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, DomainError> {
        let row =
            sqlx::query("SELECT * FROM certificates WHERE serial = $1").bind(serial).fetch_optional(&self.pool).await?;
        row.as_ref().map(cert_from_row).transpose()
    }

    /// Every certificate, newest first.
    pub async fn certificates(&self) -> Result<Vec<CertificateRecord>, DomainError> {
        let rows =
            sqlx::query("SELECT * FROM certificates ORDER BY issued_at DESC, serial").fetch_all(&self.pool).await?;
        rows.iter().map(cert_from_row).collect()
    }

    #[cfg(feature = "ca")]
    /// Marks a certificate revoked (only if it is not yet) and appends the audit record,
    /// in one transaction. Returns `false` if it was already revoked.
    pub async fn revoke(
        &self,
        serial: &str,
        at: i64,
        reason: RevocationReason,
        audit: AuditAppend<'_>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(i64::from(reason.code()))
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // A revoked certificate's key is not handed out any more.
        sqlx::query("DELETE FROM pending_deliveries WHERE serial = $1").bind(serial).execute(&mut *tx).await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[cfg(feature = "ca")]
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
                serial: stored_serial(row.try_get("serial")?)?,
                revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.unwrap_or_default(),
                reason: stored_reason(row.try_get("revocation_reason")?)?.unwrap_or(RevocationReason::Unspecified),
            });
        }
        Ok(out)
    }

    #[cfg(feature = "ca")]
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

    #[cfg(feature = "ca")]
    /// The status of one certificate, `None` if this CA never issued the serial.
    pub async fn certificate_status(&self, serial: &str) -> Result<Option<StatusRow>, DomainError> {
        let row = sqlx::query("SELECT serial, revoked_at, revocation_reason FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(status_from_row).transpose()
    }

    #[cfg(feature = "ca")]
    /// The next crlNumber: one above the highest ever issued, and at least the floor a
    /// restore set ([`Store::raise_number_floors`]).
    pub async fn next_crl_number(&self) -> Result<i64, DomainError> {
        let n: Option<i64> =
            sqlx::query("SELECT MAX(number) AS n FROM crls").fetch_one(&self.pool).await?.try_get("n")?;
        Ok((n.unwrap_or(0) + 1).max(self.number_floor("crl").await?.unwrap_or(0)))
    }

    #[cfg(feature = "ca")]
    /// The floor of a number (`crl`, `root_crl`), if a restore set one.
    pub async fn number_floor(&self, name: &str) -> Result<Option<i64>, DomainError> {
        let row = sqlx::query("SELECT floor FROM number_floors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("floor")).transpose()?)
    }

    #[cfg(feature = "ca")]
    /// Raises the floors of numbers (`(name, floor)`; never lowers one), with their audit
    /// record, in one transaction.
    pub async fn raise_number_floors(&self, floors: &[(&str, i64)], audit: AuditAppend<'_>) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        for (name, floor) in floors {
            sqlx::query(
                "INSERT INTO number_floors (name, floor) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET floor = excluded.floor WHERE number_floors.floor < excluded.floor",
            )
            .bind(*name)
            .bind(*floor)
            .execute(&mut *tx)
            .await?;
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    #[cfg(feature = "ca")]
    /// Writes a consistent copy of the SQLite database to `dest` (`VACUUM INTO`: one
    /// read transaction, so the copy is a state the database was in). Refused for
    /// PostgreSQL, which `pg_dump` copies.
    pub async fn snapshot_sqlite(&self, dest: &std::path::Path) -> Result<(), DomainError> {
        if self.backend != Backend::Sqlite {
            return Err(DomainError::new(ErrorCode::BadInput, "only a SQLite database is copied by certdesk"));
        }
        let dest =
            dest.to_str().ok_or_else(|| DomainError::new(ErrorCode::BadInput, "the snapshot path is not UTF-8"))?;
        sqlx::query("VACUUM INTO $1").bind(dest).execute(&self.pool).await?;
        Ok(())
    }

    #[cfg(feature = "ca")]
    /// Stores a CRL with its audit record; fails if the number was taken meanwhile.
    pub async fn insert_crl(&self, crl: &CrlRecord, audit: AuditAppend<'_>) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query("INSERT INTO crls (number, this_update, next_update, der) VALUES ($1, $2, $3, $4)")
            .bind(crl.number)
            .bind(crl.this_update)
            .bind(crl.next_update)
            .bind(&crl.der)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(DomainError::new(
                    ErrorCode::Contention,
                    format!("crlNumber {} was taken by another process meanwhile", crl.number),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    #[cfg(feature = "ca")]
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
    pub async fn last_checkpoint(&self) -> Result<Option<certdesk_core::audit::Checkpoint>, DomainError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_checkpoints WHERE seq > 0 ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                Ok(Some(certdesk_core::audit::Checkpoint { seq: row.try_get("seq")?, hash: row.try_get("hash")? }))
            }
        }
    }

    /// When the newest checkpoint was mailed (Unix seconds; alerts left out).
    pub async fn last_checkpoint_at(&self) -> Result<Option<i64>, DomainError> {
        let row =
            sqlx::query("SELECT MAX(sent_at) AS at FROM audit_checkpoints WHERE seq > 0").fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<i64>, _>("at")?)
    }

    /// How many certificates were issued, and how many of them are revoked (for
    /// `/metrics`: every process sharing the database counted).
    pub async fn certificate_totals(&self) -> Result<(u64, u64), DomainError> {
        let row = sqlx::query("SELECT COUNT(*) AS issued, COUNT(revoked_at) AS revoked FROM certificates")
            .fetch_one(&self.pool)
            .await?;
        let count = |name: &str| -> Result<u64, DomainError> {
            Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or_default())
        };
        Ok((count("issued")?, count("revoked")?))
    }

    /// The connection pool: connections open, of them idle, and the most it opens.
    pub fn pool_figures(&self) -> (u32, u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (self.pool.size(), idle, self.pool.options().get_max_connections())
    }

    /// The integer a raw query answers in its first row and column (tests that look at
    /// the schema, or at `PRAGMA synchronous`: 2 = FULL).
    #[doc(hidden)]
    pub async fn danger_integer(&self, sql: &str) -> Result<i64, DomainError> {
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// Runs a raw statement (tests that tamper with the database on purpose).
    #[doc(hidden)]
    pub async fn danger_execute(&self, sql: &str) -> Result<(), DomainError> {
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }
}

fn delivery_from_row(row: &AnyRow) -> Result<PendingDelivery, DomainError> {
    Ok(PendingDelivery {
        serial: stored_serial(row.try_get("serial")?)?,
        application_id: row.try_get("application_id")?,
        destination: row.try_get("destination")?,
        sha256: row.try_get("sha256")?,
        pkcs12: row.try_get("pkcs12")?,
        owner: row.try_get("owner")?,
        created_at: row.try_get("created_at")?,
        handed_out_at: row.try_get("handed_out_at")?,
        wrong_tries: row.try_get("wrong_tries")?,
        wrong_since: row.try_get("wrong_since")?,
        companions: row
            .try_get::<Option<String>, _>("companions")?
            .unwrap_or_default()
            .split_whitespace()
            .map(|s| stored_serial(s.to_string()))
            .collect::<Result<Vec<_>, _>>()?,
    })
}

/// A serial read from the database (written by this store, so always well-formed; a
/// damaged row is a database error, not a panic).
fn stored_profile(name: String) -> Result<ProfileId, DomainError> {
    ProfileId::parse(&name)
        .map_err(|_| DomainError::new(ErrorCode::Database, format!("a stored profile is not known: {name:?}")))
}

fn stored_reason(code: Option<i64>) -> Result<Option<RevocationReason>, DomainError> {
    code.map(|c| {
        u8::try_from(c).ok().and_then(RevocationReason::from_code).ok_or_else(|| {
            DomainError::new(ErrorCode::Database, format!("a stored revocation reason is not known: {c}"))
        })
    })
    .transpose()
}

fn stored_serial(text: String) -> Result<Serial, DomainError> {
    Serial::parse(&text)
        .map_err(|_| DomainError::new(ErrorCode::Database, format!("a stored serial is not hex: {text:?}")))
}

/// Whether this user can create a file in `path`'s directory (tried, not guessed from
/// mode bits: root and ACLs differ).
fn directory_writable(path: &std::path::Path) -> bool {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = dir.join(format!(".certdesk-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// The file of a `sqlite:` URL (`sqlite://PATH?options` or `sqlite:PATH`).
fn sqlite_path(url: &str) -> std::path::PathBuf {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

#[cfg(feature = "ca")]
/// A pooled SQLite connection with `synchronous=NORMAL` for the commits of an issuance
/// intent (see [`Store::record_intents`]), set back to `FULL` by [`Self::restore`].
/// Dropped without it (an error, or the request cancelled), it takes the connection out
/// of the pool and closes it, so no other commit ever runs unsynced. On PostgreSQL it
/// changes nothing (the transaction sets `synchronous_commit` itself).
struct UnsyncedCommits {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
    backend: Backend,
}

#[cfg(feature = "ca")]
impl UnsyncedCommits {
    async fn new(conn: sqlx::pool::PoolConnection<sqlx::Any>, backend: Backend) -> Result<Self, DomainError> {
        // The guard first: cancelled during the pragma, the connection is dropped, not
        // given back to the pool in an unknown state.
        let mut guard = Self { conn: Some(conn), backend };
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous=NORMAL").execute(guard.connection()?).await?;
        }
        Ok(guard)
    }

    fn connection(&mut self) -> Result<&mut sqlx::AnyConnection, DomainError> {
        self.conn
            .as_deref_mut()
            .ok_or_else(|| DomainError::new(ErrorCode::Internal, "the intent connection was given back"))
    }

    async fn restore(mut self) -> Result<(), DomainError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous=FULL").execute(self.connection()?).await?;
        }
        // Back to the pool as it came.
        drop(self.conn.take());
        Ok(())
    }
}

#[cfg(feature = "ca")]
impl Drop for UnsyncedCommits {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.backend == Backend::Sqlite {
                drop(conn.detach());
            }
        }
    }
}

/// Rows per multi-row statement: a batch of 100 in one round trip to the database (each
/// costs about 0.1 ms), far under both databases' bind limits (SQLite's 32,766;
/// PostgreSQL's 65,535). SQLite's statements use anonymous parameters (see
/// [`placeholders`]), so binding stays linear in their number.
const ROWS_PER_INSERT: usize = 100;

/// `($1, $2), ($3, $4), ...` for `rows` rows of `columns` values; `(?, ?), (?, ?), ...`
/// on SQLite, where binding a numbered parameter looks its name up in a list as long as
/// the statement's parameters (quadratic: 100 certificates took 1.9 ms to insert, most
/// of it there; issue 11), and an anonymous one is bound in order.
fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| match backend {
                    Backend::Sqlite => "?".to_string(),
                    Backend::Postgres => format!("${}", r * columns + c),
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backend of a connection of the store.
fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name() == "PostgreSQL" {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
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
        None => (1, certdesk_core::audit::GENESIS.to_string()),
    })
}

async fn insert_audit_rows(tx: &mut sqlx::Transaction<'_, sqlx::Any>, rows: &[AuditRow]) -> Result<(), DomainError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES {}",
            placeholders(backend_of(tx), chunk.len(), 8)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stored_fields_are_read_by_parsing_and_a_damaged_one_is_a_database_error() {
        assert_eq!(stored_profile("mailbox-strict".into()).unwrap(), ProfileId::MailboxStrict);
        assert_eq!(stored_reason(Some(1)).unwrap(), Some(RevocationReason::KeyCompromise));
        assert_eq!(stored_reason(Some(0)).unwrap(), Some(RevocationReason::Unspecified));
        assert_eq!(stored_reason(None).unwrap(), None);
        assert_eq!(stored_serial("0A".into()).unwrap().as_str(), "0a");
        for damaged in [
            stored_profile("strict-ish".into()).unwrap_err(),
            stored_reason(Some(2)).unwrap_err(),
            stored_reason(Some(-1)).unwrap_err(),
            stored_reason(Some(300)).unwrap_err(),
            stored_serial("zz".into()).unwrap_err(),
        ] {
            assert_eq!(damaged.code(), ErrorCode::Database, "{damaged}");
        }
    }
}
