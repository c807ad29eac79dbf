//! The data directory: where config, database and the (encrypted) CA keys live.
//!
//! ```text
//! DATA/certdesk.toml         configuration (no secrets)
//! DATA/certdesk.db           SQLite database (default backend; absent with database.url = postgres://)
//! DATA/ca/root.pem           root CA certificate
//! DATA/ca/root-key.pem       root CA key, PKCS#8 PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 0600
//! DATA/ca/issuing.pem        issuing CA certificate
//! DATA/ca/issuing-key.pem    issuing CA key, encrypted as above, 0600
//! DATA/ca/ocsp.pem           delegated OCSP responder certificate (90 days, renewed by serve)
//! DATA/ca/ocsp-key.pem       OCSP responder key (P-256), encrypted as above, 0600
//! DATA/outbox/               outgoing mail, one .eml file each (default mail transport), 0700
//! ```

use std::path::{Path, PathBuf};

use crate::error::{DomainError, ErrorCode};

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Names a data directory (nothing is checked yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `certdesk.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("certdesk.toml")
    }

    /// `certdesk.db`.
    pub fn database(&self) -> PathBuf {
        self.root.join("certdesk.db")
    }

    /// The default SQLite URL.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.database().display())
    }

    /// `ca/root.pem`.
    pub fn root_cert(&self) -> PathBuf {
        self.root.join("ca/root.pem")
    }

    /// `ca/root-key.pem`.
    pub fn root_key(&self) -> PathBuf {
        self.root.join("ca/root-key.pem")
    }

    /// `ca/issuing.pem`.
    pub fn issuing_cert(&self) -> PathBuf {
        self.root.join("ca/issuing.pem")
    }

    /// `ca/issuing-key.pem`.
    pub fn issuing_key(&self) -> PathBuf {
        self.root.join("ca/issuing-key.pem")
    }

    /// `ca/root.crl`: the root's CRL of CA certificates (DER), published at
    /// `/crl/root.crl`; re-signed by `certdesk crl --root`.
    pub fn root_crl(&self) -> PathBuf {
        self.root.join("ca/root.crl")
    }

    /// `ca/ocsp.pem`: the delegated OCSP responder certificate (renewed by `serve`).
    pub fn ocsp_cert(&self) -> PathBuf {
        self.root.join("ca/ocsp.pem")
    }

    /// `ca/ocsp-key.pem`: the OCSP responder key, encrypted like the CA keys.
    pub fn ocsp_key(&self) -> PathBuf {
        self.root.join("ca/ocsp-key.pem")
    }

    /// `portal.key`: 32 random bytes (hex, 0600) that seal TOTP secrets; made by the
    /// first `certdesk serve`. Every process of one deployment shares it.
    pub fn portal_key(&self) -> PathBuf {
        self.root.join("portal.key")
    }

    /// `ca-passphrase`: only in a demo data directory made by `certdesk serve`.
    pub fn demo_passphrase(&self) -> PathBuf {
        self.root.join("ca-passphrase")
    }

    /// `outbox/`: outgoing mail as `.eml` files when `[mail] transport = "outbox"` (the
    /// default); made 0700 by `mail::build_mailer` when missing.
    pub fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }

    /// `ca/issuing.csr`: with an offline root, the issuing CA's request for the key
    /// ceremony, until `certdesk ca install-issuing` puts the certificate beside it.
    pub fn issuing_csr(&self) -> PathBuf {
        self.root.join("ca/issuing.csr")
    }

    /// Every file a working data directory has (and `certdesk.db` unless the database
    /// is PostgreSQL). The root key is not among them: with an offline root it is on
    /// another machine.
    pub fn required_files(&self) -> [PathBuf; 6] {
        [self.config(), self.root_cert(), self.issuing_cert(), self.issuing_key(), self.ocsp_cert(), self.ocsp_key()]
    }

    /// Checks that `init` completed here; names what is missing otherwise.
    pub fn check_complete(&self) -> Result<(), DomainError> {
        if !self.root.is_dir() {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!("there is no data directory at {}; run `certdesk init` first", self.root.display()),
            ));
        }
        if self.issuing_csr().is_file() && !self.issuing_cert().is_file() {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!(
                    "{} awaits its issuing CA certificate: sign {} at the key ceremony (`certdesk ceremony \
                     sign-issuing`) and install it with `certdesk ca install-issuing`",
                    self.root.display(),
                    self.issuing_csr().display()
                ),
            ));
        }
        let missing: Vec<String> =
            self.required_files().iter().filter(|p| !p.is_file()).map(|p| p.display().to_string()).collect();
        if !missing.is_empty() {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!(
                    "the data directory {} is incomplete (missing {}); it was not made by `certdesk init` or is damaged",
                    self.root.display(),
                    missing.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// Reads a file with a clear error.
pub fn read(path: &Path) -> Result<Vec<u8>, DomainError> {
    std::fs::read(path)
        .map_err(|e| DomainError::new(ErrorCode::DataDir, format!("cannot read {}: {e}", path.display())))
}

/// Replaces a file atomically (temporary file in the same directory, then rename).
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), DomainError> {
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    write(&temp, bytes, false)?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        DomainError::new(ErrorCode::Internal, format!("cannot replace {}: {e}", path.display()))
    })
}

/// Writes a file; `secret` files get mode 0600.
pub fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), DomainError> {
    use std::io::Write;
    let fail =
        |e: std::io::Error| DomainError::new(ErrorCode::Internal, format!("cannot write {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}
