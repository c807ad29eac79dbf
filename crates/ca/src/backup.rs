//! Backup and restore of a data directory (issue 13).
//!
//! An archive is a tar file: `manifest.json` first, then the files under `data/`: the
//! configuration, the CA certificates and keys (still encrypted under the CA
//! passphrase: a backup never holds a key in clear), the root's CRL, the portal's
//! sealing key, and with SQLite a consistent copy of the database (`VACUUM INTO`).
//! The manifest names every file with its size and SHA-256, the CA (SHA-256 of the root
//! and issuing certificates) and the audit log's head `SEQ:HASH` in the copy.
//!
//! With PostgreSQL the database is not in the archive: `pg_dump` copies it, after
//! `certdesk backup` (docs/operations/backup.md); the manifest's head is then a record
//! the dump must hold.
//!
//! Restore checks every checksum and that the audit chain of the restored database
//! verifies and holds the manifest's head before anything is put in place; it never
//! replaces a data directory without `force`, and then keeps the old one aside. As
//! certificates and CRLs made after the backup are not in it, the CA must not reuse
//! their numbers: serial numbers are random (126 bits), and the next crlNumber of the
//! issuing CA and of the root is set [`CRL_NUMBER_GAP`] above the last one in the
//! backup, plus one per second since the backup was made (RFC 5280 5.2.3: crlNumber
//! only increases; a second restore of the same archive stays above the first's).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use aws_lc_rs::digest::{Context, SHA256};
use certdesk_core::audit::{seal, verify, AuditEvent, Checkpoint};
use certdesk_core::datadir::DataDir;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_store::{Backend, Store};
use serde_json::{json, Value};

use crate::authority::Authority;

/// The archive format this version writes and reads.
pub const FORMAT: &str = "certdesk-backup/1";

/// How far a restore moves the next crlNumber past the last one in the backup: more
/// CRLs than a CA signs in decades (a few a day, one per revocation), so no number used
/// after the backup comes again.
pub const CRL_NUMBER_GAP: i64 = 1 << 20;

const MANIFEST: &str = "manifest.json";
const DATA_PREFIX: &str = "data/";
/// The largest archive member read (a database of millions of certificates fits).
const MAX_MEMBER: u64 = 16 << 30;

/// One file of an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedFile {
    /// Path inside the data directory, `/`-separated.
    pub path: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// What an archive says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// When it was written (Unix seconds).
    pub created_at: i64,
    /// The certdesk version that wrote it.
    pub version: String,
    /// Where the database was: SQLite (in the archive) or PostgreSQL (`pg_dump`).
    pub backend: Backend,
    /// SHA-256 of the root CA certificate (PEM file), hex.
    pub root_sha256: String,
    /// SHA-256 of the issuing CA certificate (PEM file), hex.
    pub issuing_sha256: String,
    /// The audit log's head in the backed-up database.
    pub audit_head: Checkpoint,
    /// Every file, in archive order.
    pub files: Vec<ArchivedFile>,
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    }
}

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::BadInput, message)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> DomainError {
    DomainError::new(ErrorCode::Internal, format!("cannot {what} {}: {e}", path.display()))
}

impl Manifest {
    fn to_json(&self) -> Value {
        json!({
            "format": FORMAT,
            "created_at": self.created_at,
            "created": certdesk_core::clock::unix_text(self.created_at),
            "version": self.version,
            "database": backend_name(self.backend),
            "root_sha256": self.root_sha256,
            "issuing_sha256": self.issuing_sha256,
            "audit_head": self.audit_head.to_string(),
            "files": self.files.iter().map(|f| json!({ "path": f.path, "sha256": f.sha256, "size": f.size })).collect::<Vec<_>>(),
        })
    }

    fn from_json(bytes: &[u8]) -> Result<Self, DomainError> {
        let damaged = |what: &str| bad(format!("the archive's manifest is damaged ({what})"));
        let value: Value = serde_json::from_slice(bytes).map_err(|_| damaged("not JSON"))?;
        let text = |name: &str| value.get(name).and_then(Value::as_str).ok_or_else(|| damaged(name));
        let format = text("format")?;
        if format != FORMAT {
            return Err(bad(format!("the archive is in format {format:?}; this certdesk reads {FORMAT}")));
        }
        let backend = match text("database")? {
            "sqlite" => Backend::Sqlite,
            "postgresql" => Backend::Postgres,
            _ => return Err(damaged("database")),
        };
        let files = value
            .get("files")
            .and_then(Value::as_array)
            .ok_or_else(|| damaged("files"))?
            .iter()
            .map(|f| {
                Ok(ArchivedFile {
                    path: f.get("path").and_then(Value::as_str).ok_or_else(|| damaged("files"))?.to_string(),
                    sha256: f.get("sha256").and_then(Value::as_str).ok_or_else(|| damaged("files"))?.to_string(),
                    size: f.get("size").and_then(Value::as_u64).ok_or_else(|| damaged("files"))?,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        Ok(Manifest {
            created_at: value.get("created_at").and_then(Value::as_i64).ok_or_else(|| damaged("created_at"))?,
            version: text("version")?.to_string(),
            backend,
            root_sha256: text("root_sha256")?.to_string(),
            issuing_sha256: text("issuing_sha256")?.to_string(),
            audit_head: text("audit_head")?.parse().map_err(|_| damaged("audit_head"))?,
            files,
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&SHA256, bytes))
}

/// A directory next to `near` for work in progress, removed when dropped (kept only by
/// [`Staging::keep`]).
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Staging {
    fn new(near: &Path, purpose: &str) -> Result<Self, DomainError> {
        let parent = match near.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = near.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "certdesk".into());
        let path = parent.join(format!(".{name}.{purpose}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| io("clear", &path, e))?;
        }
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&path).map_err(|e| io("create", &path, e))?;
        Ok(Self { path, keep: false })
    }

    fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The files of a data directory that go into a backup (relative paths), and with
/// SQLite the database copy made in `staging`.
fn data_files(data: &DataDir) -> Result<Vec<String>, DomainError> {
    let mut files = vec!["certdesk.toml".to_string()];
    let ca = data.root().join("ca");
    let mut names: Vec<String> = std::fs::read_dir(&ca)
        .map_err(|e| io("read", &ca, e))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        // Temporary files of an interrupted write are not part of the CA.
        .filter(|n| !n.starts_with('.') && !n.contains(".tmp-"))
        .collect();
    names.sort();
    files.extend(names.into_iter().map(|n| format!("ca/{n}")));
    if data.portal_key().is_file() {
        if let Ok(relative) = data.portal_key().strip_prefix(data.root()) {
            files.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(files)
}

/// The audit chain of `store`, verified: its head.
async fn verified_head(store: &Store) -> Result<Checkpoint, DomainError> {
    let rows = store.audit_log().await?;
    let chain = verify(&rows).map_err(|e| DomainError::new(ErrorCode::AuditBroken, e.to_string()))?;
    Ok(Checkpoint { seq: i64::try_from(chain.records).unwrap_or(i64::MAX), hash: chain.head })
}

/// Opens the SQLite database file `db` (a copy), applying any migration a newer
/// certdesk has.
async fn open_copy(db: &Path) -> Result<Store, DomainError> {
    Store::open(&format!("sqlite://{}?mode=rw", db.display())).await
}

/// Writes a backup of `authority`'s data directory to `out` (which must not exist:
/// never replaced), and records it in the audit log.
pub async fn backup(authority: &Authority, out: &Path, actor: &str) -> Result<Manifest, DomainError> {
    if out.exists() {
        return Err(bad(format!("{} exists; give a new file name (a backup never replaces a file)", out.display())));
    }
    let data = authority.data();
    let backend = authority.store().backend();
    let staging = Staging::new(out, "backup")?;
    // The database copy first, and its head from the copy itself: the manifest
    // describes what the archive holds.
    let (audit_head, database) = match backend {
        Backend::Sqlite => {
            let copy = staging.path.join("certdesk.db");
            authority.store().snapshot_sqlite(&copy).await?;
            let store = open_copy(&copy).await?;
            let head = verified_head(&store).await;
            store.close().await;
            (head?, Some(copy))
        }
        Backend::Postgres => (verified_head(authority.store()).await?, None),
    };
    // Each data file is read once: what is hashed is what is archived, even if `serve`
    // replaces a file (a renewed OCSP certificate) meanwhile. The database copy is ours
    // alone and is streamed from its file.
    let mut entries: Vec<(String, Member)> = Vec::new();
    for name in data_files(data)? {
        entries.push((name.clone(), Member::Bytes(certdesk_core::datadir::read(&data.root().join(&name))?)));
    }
    if let Some(copy) = database {
        entries.push(("certdesk.db".to_string(), Member::File(copy)));
    }
    let mut files = Vec::with_capacity(entries.len());
    for (name, member) in &entries {
        let (sha256, size) = match member {
            Member::Bytes(bytes) => (sha256_hex(bytes), bytes.len() as u64),
            Member::File(path) => hash_file(path)?,
        };
        files.push(ArchivedFile { path: name.clone(), sha256, size });
    }
    let created_at = authority.clock().now().unix_timestamp();
    let manifest = Manifest {
        created_at,
        version: env!("CARGO_PKG_VERSION").to_string(),
        backend,
        root_sha256: sha256_hex(&certdesk_core::datadir::read(&data.root_cert())?),
        issuing_sha256: sha256_hex(&certdesk_core::datadir::read(&data.issuing_cert())?),
        audit_head,
        files,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest.to_json()).map_err(|e| bad(e.to_string()))?;
    let temp = staging.path.join("archive.tar");
    {
        let file = create_private(&temp)?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        tar.mode(tar::HeaderMode::Deterministic);
        append(&mut tar, MANIFEST, manifest_bytes.len() as u64, manifest_bytes.as_slice(), created_at)?;
        for ((name, member), listed) in entries.iter().zip(&manifest.files) {
            let name = format!("{DATA_PREFIX}{name}");
            match member {
                Member::Bytes(bytes) => append(&mut tar, &name, bytes.len() as u64, bytes.as_slice(), created_at)?,
                Member::File(path) => {
                    let file = std::fs::File::open(path).map_err(|e| io("read", path, e))?;
                    append(&mut tar, &name, listed.size, file, created_at)?;
                }
            }
        }
        let writer = tar.into_inner().map_err(|e| io("write", &temp, e))?;
        let file = writer.into_inner().map_err(|e| io("write", &temp, e.into_error()))?;
        file.sync_all().map_err(|e| io("write", &temp, e))?;
    }
    // Linked, not renamed, into place: a file that appeared under the name meanwhile
    // is never replaced.
    std::fs::hard_link(&temp, out).map_err(|e| io("write", out, e))?;
    sync_parent(out);
    let archive_sha256 = hash_file(out)?.0;
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "backup.create",
        subject: out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        details: json!({ "audit_head": manifest.audit_head.to_string(), "sha256": archive_sha256, "files": manifest.files.len() }),
    };
    let at = created_at;
    authority.store().append_audit(&|seq, prev| seal(&event, at, seq, prev)).await?;
    Ok(manifest)
}

/// What goes into an archive: bytes read already, or a file of our own to stream.
enum Member {
    Bytes(Vec<u8>),
    File(PathBuf),
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl Read,
    mtime: i64,
) -> Result<(), DomainError> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(mtime).unwrap_or(0));
    header.set_entry_type(tar::EntryType::Regular);
    // Never more than the header says (the database copy is ours; nothing writes it).
    tar.append_data(&mut header, name, data.take(size))
        .map_err(|e| bad(format!("cannot write {name} into the archive: {e}")))
}

fn create_private(path: &Path) -> Result<std::fs::File, DomainError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| io("create", path, e))
}

fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

fn hash_file(path: &Path) -> Result<(String, u64), DomainError> {
    let mut file = std::fs::File::open(path).map_err(|e| io("read", path, e))?;
    let mut context = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io("read", path, e))?;
        if n == 0 {
            break;
        }
        context.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
    Ok((hex::encode(context.finish()), size))
}

/// A relative, `/`-separated path with no `..`, root or empty part (an archive member
/// must not land outside the directory it is unpacked into).
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if name.is_empty() || name.contains('\\') {
        return None;
    }
    path.components().all(|c| matches!(c, Component::Normal(_))).then(|| path.to_path_buf())
}

/// Reads the archive at `path` into `into` (files under their data-directory paths),
/// checking it against its manifest: every file listed, present once, of its size and
/// SHA-256, nothing else. Nothing is left in `into` on failure that the caller keeps.
fn unpack(path: &Path, into: &Path) -> Result<Manifest, DomainError> {
    let file = std::fs::File::open(path)
        .map_err(|e| DomainError::new(ErrorCode::BadInput, format!("cannot read {}: {e}", path.display())))?;
    let not_archive = |e: std::io::Error| bad(format!("{} is not a certdesk backup ({e})", path.display()));
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut entries = archive.entries().map_err(not_archive)?;
    let first = entries.next().ok_or_else(|| bad(format!("{} is empty: not a certdesk backup", path.display())))?;
    let mut first = first.map_err(not_archive)?;
    if first.path().map_err(not_archive)?.as_os_str() != MANIFEST {
        return Err(bad(format!("{} is not a certdesk backup (no manifest first)", path.display())));
    }
    let mut manifest_bytes = Vec::new();
    (&mut first).take(1 << 20).read_to_end(&mut manifest_bytes).map_err(not_archive)?;
    let manifest = Manifest::from_json(&manifest_bytes)?;
    let mut seen = std::collections::BTreeSet::new();
    for entry in entries {
        let mut entry = entry.map_err(not_archive)?;
        let name = entry.path().map_err(not_archive)?.to_string_lossy().into_owned();
        let listed = name
            .strip_prefix(DATA_PREFIX)
            .and_then(|rel| manifest.files.iter().find(|f| f.path == rel))
            .ok_or_else(|| bad(format!("the archive holds {name}, which its manifest does not list")))?;
        let relative = safe_relative(&listed.path)
            .ok_or_else(|| bad(format!("the archive's path {:?} leaves its directory", listed.path)))?;
        if !seen.insert(listed.path.clone()) {
            return Err(bad(format!("the archive holds {} twice", listed.path)));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("the archive's {} is not a regular file", listed.path)));
        }
        let dest = into.join(&relative);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        }
        let mut out = create_private(&dest)?;
        let mut context = Context::new(&SHA256);
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        let mut limited = (&mut entry).take(MAX_MEMBER);
        loop {
            let n =
                limited.read(&mut buf).map_err(|e| bad(format!("the archive is damaged at {}: {e}", listed.path)))?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            context.update(chunk);
            out.write_all(chunk).map_err(|e| io("write", &dest, e))?;
            size += n as u64;
        }
        out.sync_all().map_err(|e| io("write", &dest, e))?;
        if size != listed.size || hex::encode(context.finish()) != listed.sha256 {
            return Err(bad(format!(
                "{}: {} does not match its checksum in the manifest (the archive is damaged or was changed)",
                path.display(),
                listed.path
            )));
        }
    }
    let missing: Vec<&str> =
        manifest.files.iter().filter(|f| !seen.contains(&f.path)).map(|f| f.path.as_str()).collect();
    if !missing.is_empty() {
        return Err(bad(format!("{} is incomplete (cut short?): {} missing", path.display(), missing.join(", "))));
    }
    let has = |name: &str| seen.contains(name);
    for required in
        ["certdesk.toml", "ca/root.pem", "ca/issuing.pem", "ca/issuing-key.pem", "ca/ocsp.pem", "ca/ocsp-key.pem"]
    {
        if !has(required) {
            return Err(bad(format!("the archive lacks {required}: it is not a whole data directory")));
        }
    }
    if manifest.backend == Backend::Sqlite && !has("certdesk.db") {
        return Err(bad("the archive lacks certdesk.db although its database was SQLite"));
    }
    let check = |name: &str, expected: &str| -> Result<(), DomainError> {
        let (actual, _) = hash_file(&into.join(name))?;
        if actual == expected {
            Ok(())
        } else {
            Err(bad(format!("the manifest's CA fingerprint does not match {name}")))
        }
    };
    check("ca/root.pem", &manifest.root_sha256)?;
    check("ca/issuing.pem", &manifest.issuing_sha256)?;
    Ok(manifest)
}

/// The head check of a restored database against the manifest: a SQLite copy must end
/// exactly at it; a PostgreSQL dump (taken after the backup) must hold it.
async fn check_database(store: &Store, manifest: &Manifest) -> Result<(), DomainError> {
    let rows = store.audit_log().await?;
    match manifest.backend {
        Backend::Sqlite => {
            let head = verified_head(store).await?;
            if head != manifest.audit_head {
                return Err(DomainError::new(
                    ErrorCode::AuditBroken,
                    format!(
                        "the archive's database ends at audit record {head}, its manifest says {}",
                        manifest.audit_head
                    ),
                ));
            }
            Ok(())
        }
        Backend::Postgres => {
            certdesk_core::audit::verify_with_checkpoint(&rows, &manifest.audit_head).map(|_| ()).map_err(|e| {
                DomainError::new(
                    ErrorCode::AuditBroken,
                    format!(
                        "the PostgreSQL database does not hold the backup's audit head {} ({e}); restore the \
                         pg_dump taken after this backup first (docs/operations/backup.md)",
                        manifest.audit_head
                    ),
                )
            })
        }
    }
}

/// Checks an archive without restoring it: checksums, completeness, and (SQLite) that
/// the database's audit chain verifies and ends at the manifest's head.
pub async fn verify_archive(path: &Path) -> Result<Manifest, DomainError> {
    // Unpacked in the temporary directory: the archive may be on read-only media.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
    let staging = Staging::new(&std::env::temp_dir().join(name), "verify")?;
    let manifest = unpack(path, &staging.path)?;
    if manifest.backend == Backend::Sqlite {
        let store = open_copy(&staging.path.join("certdesk.db")).await?;
        let checked = check_database(&store, &manifest).await;
        store.close().await;
        checked?;
    }
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// The next crlNumber of the issuing CA and of the root from now on.
    pub crl_floors: (i64, i64),
    /// Where the data directory that was there before is kept (with `force`).
    pub kept_aside: Option<PathBuf>,
}

/// Restores the archive at `path` into the data directory `data` (which must be absent
/// or empty unless `force`; with `force` the present one is kept aside, and it must be
/// of the same CA).
pub async fn restore(path: &Path, data: &DataDir, force: bool, actor: &str, now: i64) -> Result<Restored, DomainError> {
    let root = data.root();
    let occupied = root.is_dir() && std::fs::read_dir(root).map(|mut d| d.next().is_some()).unwrap_or(true);
    if root.exists() && !root.is_dir() {
        return Err(bad(format!("{} is not a directory", root.display())));
    }
    if occupied && !force {
        return Err(DomainError::new(
            ErrorCode::DataDir,
            format!(
                "{} holds a data directory; restore into a new or empty directory, or give --force (the present one \
                 is then kept aside, not deleted)",
                root.display()
            ),
        ));
    }
    if occupied && !data.root_cert().is_file() {
        return Err(DomainError::new(
            ErrorCode::DataDir,
            format!(
                "{} is not empty and holds no certdesk CA (no ca/root.pem): --force replaces only a data directory \
                 of the same CA; restore into a new directory",
                root.display()
            ),
        ));
    }
    let staging = Staging::new(root, "restoring")?;
    let manifest = unpack(path, &staging.path)?;
    if occupied {
        let present = sha256_hex(&certdesk_core::datadir::read(&data.root_cert())?);
        if present != manifest.root_sha256 {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!(
                    "the archive is of another CA (root SHA-256 {}) than the one in {} ({present}); restore it into \
                     a new directory",
                    manifest.root_sha256,
                    root.display()
                ),
            ));
        }
    }
    let restored = DataDir::new(&staging.path);
    let store = match manifest.backend {
        Backend::Sqlite => open_copy(&restored.database()).await?,
        Backend::Postgres => {
            let text = String::from_utf8(certdesk_core::datadir::read(&restored.config())?)
                .map_err(|_| bad("the archive's certdesk.toml is not UTF-8"))?;
            let config = certdesk_core::config::Config::from_toml(&text)?.validate()?;
            let url = config.raw.database.url.clone().ok_or_else(|| {
                bad("the archive's database was PostgreSQL, but its certdesk.toml names no [database] url")
            })?;
            Store::open(&url).await?
        }
    };
    let floors = raise_floors(&store, &restored, &manifest, actor, now).await;
    store.close().await;
    let crl_floors = floors?;
    // The restored directory goes into place; a present one is kept aside.
    let kept_aside = if root.exists() {
        let aside = root.with_file_name(format!(
            "{}.replaced-{now}",
            root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        std::fs::rename(root, &aside).map_err(|e| io("move aside", root, e))?;
        Some(aside)
    } else {
        None
    };
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, root) {
        // Put the one that was there back rather than leave no data directory.
        if let Some(aside) = &kept_aside {
            let _ = std::fs::rename(aside, root);
        }
        return Err(io(&format!("move {} into place as", staged.display()), root, e));
    }
    sync_parent(root);
    Ok(Restored { manifest, crl_floors, kept_aside })
}

/// Checks the restored database against the manifest and moves the next crlNumbers
/// past what the lost time may have used, with the restore's audit record.
async fn raise_floors(
    store: &Store,
    restored: &DataDir,
    manifest: &Manifest,
    actor: &str,
    now: i64,
) -> Result<(i64, i64), DomainError> {
    check_database(store, manifest).await?;
    // Past the backup's last number by the gap, and by one more per second since the
    // backup: restoring the same archive a second time, after CRLs were signed on the
    // first restore (at most one a second), still lands above all of them.
    let since = (now - manifest.created_at).max(0);
    let crl = store.next_crl_number().await? - 1 + CRL_NUMBER_GAP + since;
    let root_last = match std::fs::read(restored.root_crl()) {
        Ok(bytes) => i64::try_from(certdesk_core::records::read_root_crl(&bytes)?.0).unwrap_or(0),
        Err(_) => 0,
    };
    let root = (root_last + 1).max(store.number_floor("root_crl").await?.unwrap_or(0)) - 1 + CRL_NUMBER_GAP + since;
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "backup.restore",
        subject: certdesk_core::clock::unix_text(manifest.created_at),
        details: json!({
            "audit_head": manifest.audit_head.to_string(),
            "next_crl_number": crl,
            "next_root_crl_number": root,
        }),
    };
    store.raise_number_floors(&[("crl", crl), ("root_crl", root)], &|seq, prev| seal(&event, now, seq, prev)).await?;
    Ok((crl, root))
}
