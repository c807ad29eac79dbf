//! Schema migrations, run by sqlx's migrator: one set per backend
//! (`migrations/sqlite`, `migrations/postgres`), embedded in the binary, recorded in
//! `_sqlx_migrations` with a SHA-384 checksum each (a migration file changed after it
//! was applied is refused, never silently skipped), serialised on PostgreSQL by an
//! advisory lock (several `serve` processes may start at once).
//!
//! Databases made before session 6 recorded their migrations in `schema_version`
//! (versions only); they are adopted once: the versions listed there are entered into
//! `_sqlx_migrations` with the checksums of the embedded files (which are unchanged
//! since they were released), then the migrator runs the rest.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use certdesk_core::error::{DomainError, ErrorCode};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use crate::Backend;

/// version, description, SQL. Never edit a released file: add a new one.
type Files = &'static [(i64, &'static str, &'static str)];

const SQLITE: Files = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "portal", include_str!("../migrations/sqlite/0002_portal.sql")),
    (3, "oidc", include_str!("../migrations/sqlite/0003_oidc.sql")),
    (4, "profile settings", include_str!("../migrations/sqlite/0004_profile_settings.sql")),
    (5, "audit checkpoints", include_str!("../migrations/sqlite/0005_audit_checkpoints.sql")),
    (6, "totp attempts", include_str!("../migrations/sqlite/0006_totp_attempts.sql")),
    (7, "appointment reminders", include_str!("../migrations/sqlite/0007_appointment_reminders.sql")),
    (8, "issuance intents", include_str!("../migrations/sqlite/0008_issuance_intents.sql")),
    (9, "number floors", include_str!("../migrations/sqlite/0009_number_floors.sql")),
    (10, "directory publications", include_str!("../migrations/sqlite/0010_directory_publications.sql")),
    (11, "key escrow", include_str!("../migrations/sqlite/0011_key_escrow.sql")),
    (12, "escrow at issuance", include_str!("../migrations/sqlite/0012_escrow_at_issuance.sql")),
    (13, "audit hash not indexed", include_str!("../migrations/sqlite/0013_audit_hash_not_indexed.sql")),
];
const POSTGRES: Files = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "portal", include_str!("../migrations/postgres/0002_portal.sql")),
    (3, "oidc", include_str!("../migrations/postgres/0003_oidc.sql")),
    (4, "profile settings", include_str!("../migrations/postgres/0004_profile_settings.sql")),
    (5, "audit checkpoints", include_str!("../migrations/postgres/0005_audit_checkpoints.sql")),
    (6, "totp attempts", include_str!("../migrations/postgres/0006_totp_attempts.sql")),
    (7, "appointment reminders", include_str!("../migrations/postgres/0007_appointment_reminders.sql")),
    (8, "issuance intents", include_str!("../migrations/postgres/0008_issuance_intents.sql")),
    (9, "number floors", include_str!("../migrations/postgres/0009_number_floors.sql")),
    (10, "directory publications", include_str!("../migrations/postgres/0010_directory_publications.sql")),
    (11, "key escrow", include_str!("../migrations/postgres/0011_key_escrow.sql")),
    (12, "escrow at issuance", include_str!("../migrations/postgres/0012_escrow_at_issuance.sql")),
    (13, "audit hash not indexed", include_str!("../migrations/postgres/0013_audit_hash_not_indexed.sql")),
];

/// The embedded files as a source for sqlx's migrator.
#[derive(Debug)]
struct Embedded(Files);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

fn files(backend: Backend) -> Files {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

fn failed(e: impl std::fmt::Display) -> DomainError {
    DomainError::new(ErrorCode::Database, format!("the database schema cannot be brought up to date: {e}"))
}

async fn migrator(backend: Backend) -> Result<Migrator, DomainError> {
    Migrator::new(Embedded(files(backend))).await.map_err(failed)
}

/// Applies what is pending (adopting a `schema_version` database first).
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), DomainError> {
    let migrator = migrator(backend).await?;
    adopt_legacy(pool, &migrator).await?;
    migrator.run(pool).await.map_err(failed)
}

/// Whether every embedded migration is applied (a read-only database cannot migrate).
pub(crate) async fn current(pool: &AnyPool, backend: Backend) -> Result<bool, DomainError> {
    let applied: Option<i64> = match sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
    {
        Ok(row) => row.try_get("v")?,
        // Not yet adopted: the pre-session-6 table.
        Err(_) => sqlx::query("SELECT MAX(version) AS v FROM schema_version").fetch_one(pool).await?.try_get("v")?,
    };
    Ok(applied == files(backend).last().map(|(v, _, _)| *v))
}

/// Enters the versions of `schema_version` into `_sqlx_migrations`, once, in one
/// transaction (under the migrator's advisory lock on PostgreSQL).
async fn adopt_legacy(pool: &AnyPool, migrator: &Migrator) -> Result<(), DomainError> {
    let legacy: Option<i64> = match sqlx::query("SELECT MAX(version) AS v FROM schema_version").fetch_one(pool).await {
        Ok(row) => row.try_get("v")?,
        Err(_) => return Ok(()), // a database made by sqlx's migrator from the start
    };
    let Some(legacy) = legacy else { return Ok(()) };
    let mut conn = pool.acquire().await?;
    conn.lock().await.map_err(failed)?;
    let adopted = adopt_under_lock(&mut conn, migrator, legacy).await;
    conn.unlock().await.map_err(failed)?;
    adopted
}

async fn adopt_under_lock(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    migrator: &Migrator,
    legacy: i64,
) -> Result<(), DomainError> {
    conn.ensure_migrations_table().await.map_err(failed)?;
    // One transaction: two processes starting at once (SQLite has no migrator lock)
    // cannot both enter the versions, and a crash enters none or all of them.
    let mut tx = sqlx::Connection::begin(&mut **conn).await?;
    let known: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations").fetch_one(&mut *tx).await?.try_get("n")?;
    if known > 0 {
        return Ok(()); // adopted already (another process, or an earlier start)
    }
    let adopt: Vec<&Migration> = migrator.iter().filter(|m| m.version <= legacy).collect();
    if i64::try_from(adopt.len()).ok() != Some(legacy) {
        return Err(failed(format!("schema_version names {legacy} migrations, this build has {}", adopt.len())));
    }
    for migration in adopt {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0)",
        )
        .bind(migration.version)
        .bind(migration.description.as_ref())
        .bind(migration.checksum.as_ref())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
