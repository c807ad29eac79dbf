//! `certdesk smime keyring import | list | export | mark-revoked`: the files of a
//! keyring directory. The model (states, matching) is `certdesk_smime::keyring`.
//!
//! ```text
//! DIR/                 0700
//! DIR/check.p8         a throw-away key encrypted under the keyring passphrase (checks it)
//! DIR/keys/ID.pem      a certificate (ID = SHA-256 of it, hex)
//! DIR/keys/ID.chain    the CA certificates that came with it (PEM), when there were any
//! DIR/keys/ID.key.p8   its private key, PKCS#8 PBES2 (PBKDF2-SHA256 600k, AES-256-CBC), 0600
//! DIR/keys/ID.revoked  present when the key was marked revoked
//! ```
//! Nothing is ever deleted: expired and revoked keys stay to decrypt old mail.

use std::path::{Path, PathBuf};

use certdesk_pki::key::{KeyAlgorithm, PrivateKey, Signer};
use certdesk_smime::keyring::EntryInfo;
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use crate::{read_secret_file, usage, Failure};

/// Keyring location and passphrase.
#[derive(Args, Clone)]
pub struct KeyringArgs {
    /// The keyring directory (default: env CERTDESK_KEYRING, else ~/.certdesk/keyring).
    #[arg(long, global = true)]
    pub keyring: Option<PathBuf>,
    /// File holding the keyring passphrase (else env CERTDESK_KEYRING_PASSPHRASE).
    #[arg(long, global = true)]
    pub keyring_passphrase_file: Option<PathBuf>,
}

/// Keyring commands.
#[derive(Subcommand)]
pub enum KeyringCommand {
    /// Import a .p12 (any kind: ours, Firefox, macOS, Windows) or a PEM key + certificate.
    Import {
        /// The file (`-`: stdin).
        file: PathBuf,
        /// File holding the .p12 password; without it (or with an empty file), the .p12
        /// is read as one without a password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List every key with its state.
    List {
        /// One JSON array on stdout instead of a line per key.
        #[arg(long)]
        json: bool,
    },
    /// Export one key and certificate, with the CA certificates it came with, as a .p12
    /// (to install on another client); with --all, every key the keyring holds, expired
    /// and revoked ones included (to move to a new computer, or to install on a client
    /// that must read old mail).
    Export {
        /// The entry id (or a unique prefix of it).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every key and certificate of the keyring in one .p12.
        #[arg(long)]
        all: bool,
        /// Output .p12.
        #[arg(long)]
        p12: PathBuf,
        /// File holding the new .p12's password.
        #[arg(long)]
        password_file: PathBuf,
        /// modern (AES-256, PBKDF2-SHA256) or compat (3DES, SHA-1 MAC: macOS before 14, older
        /// Windows, gpgsm 2.2).
        #[arg(long, value_enum, default_value_t = crate::P12Format::Modern)]
        p12_format: crate::P12Format,
    },
    /// Mark a key revoked (kept for decryption, never used to sign).
    MarkRevoked {
        /// The entry id (or a unique prefix of it).
        id: String,
    },
}

/// An opened keyring directory.
pub struct Keyring {
    dir: PathBuf,
    passphrase_file: Option<PathBuf>,
}

fn io(path: &Path, e: std::io::Error) -> Failure {
    usage(format!("{}: {e}", path.display()))
}

impl Keyring {
    /// Names the keyring (nothing is created yet).
    pub fn locate(args: &KeyringArgs) -> Result<Self, Failure> {
        let dir = match (&args.keyring, std::env::var("CERTDESK_KEYRING")) {
            (Some(dir), _) => dir.clone(),
            (None, Ok(dir)) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let home = std::env::var("HOME").map_err(|_| usage("give --keyring DIR (no HOME is set)"))?;
                PathBuf::from(home).join(".certdesk/keyring")
            }
        };
        Ok(Self { dir, passphrase_file: args.keyring_passphrase_file.clone() })
    }

    fn passphrase(&self) -> Result<Zeroizing<String>, Failure> {
        if let Some(file) = &self.passphrase_file {
            return read_secret_file(file, "keyring passphrase");
        }
        match std::env::var("CERTDESK_KEYRING_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Ok(Zeroizing::new(p)),
            _ => Err(usage(
                "the keyring passphrase is needed: --keyring-passphrase-file FILE or CERTDESK_KEYRING_PASSPHRASE",
            )),
        }
    }

    fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    fn check_file(&self) -> PathBuf {
        self.dir.join("check.p8")
    }

    /// Checks the passphrase, creating the keyring with it if it does not exist yet.
    fn unlock(&self, create: bool) -> Result<Zeroizing<String>, Failure> {
        let passphrase = self.passphrase()?;
        let check = self.check_file();
        if !check.exists() {
            if !create {
                return Err(usage(format!("there is no keyring at {}", self.dir.display())));
            }
            certdesk_pki::password::check_strength(&passphrase, &[]).map_err(|e| Failure {
                error: None,
                code: 1,
                message: format!("keyring passphrase: {e}"),
            })?;
            std::fs::create_dir_all(self.keys_dir()).map_err(|e| io(&self.dir, e))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
            }
            let dummy = PrivateKey::generate(KeyAlgorithm::P256).map_err(|e| usage(e.to_string()))?;
            write_secret(&check, &encrypt(dummy.pkcs8_der(), &passphrase)?)?;
            return Ok(passphrase);
        }
        let bytes = std::fs::read(&check).map_err(|e| io(&check, e))?;
        decrypt(&bytes, &passphrase)?;
        Ok(passphrase)
    }

    /// Every entry: info, whether marked revoked, its key file.
    pub fn entries(&self) -> Result<Vec<(EntryInfo, bool, PathBuf)>, Failure> {
        let dir = self.keys_dir();
        if !dir.is_dir() {
            return Err(usage(format!("there is no keyring at {}", self.dir.display())));
        }
        let mut out = Vec::new();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        names.sort();
        for cert_path in names {
            let pem = std::fs::read(&cert_path).map_err(|e| io(&cert_path, e))?;
            let der = first_certificate(&pem, &cert_path)?;
            let info = EntryInfo::from_certificate(&der).map_err(|e| usage(format!("{}: {e}", cert_path.display())))?;
            let key = dir.join(format!("{}.key.p8", info.id));
            let revoked = dir.join(format!("{}.revoked", info.id)).exists();
            out.push((info, revoked, key));
        }
        Ok(out)
    }

    /// The certificate of an entry.
    pub fn certificate(&self, info: &EntryInfo) -> Result<Vec<u8>, Failure> {
        let path = self.keys_dir().join(format!("{}.pem", info.id));
        let pem = std::fs::read(&path).map_err(|e| io(&path, e))?;
        first_certificate(&pem, &path)
    }

    /// The CA certificates an entry came with (none for entries imported without them).
    pub fn chain(&self, info: &EntryInfo) -> Result<Vec<Vec<u8>>, Failure> {
        let path = self.keys_dir().join(format!("{}.chain", info.id));
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path, e)),
        };
        crate::identity::pem_blocks(&pem, "CERTIFICATE", &path)
    }

    /// Decrypts the key of an entry.
    pub fn private_key(&self, key_file: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let passphrase = self.unlock(false)?;
        let bytes = std::fs::read(key_file).map_err(|e| io(key_file, e))?;
        decrypt(&bytes, &passphrase)
    }

    fn find(&self, prefix: &str) -> Result<(EntryInfo, bool, PathBuf), Failure> {
        let mut found: Vec<_> =
            self.entries()?.into_iter().filter(|(info, _, _)| info.id.starts_with(prefix)).collect();
        match found.len() {
            1 => found.pop().ok_or_else(|| usage("no entry")),
            0 => Err(Failure { error: None, code: 1, message: format!("no key {prefix} in the keyring") }),
            _ => Err(usage(format!("{prefix} names several keys; give more of the id"))),
        }
    }
}

fn encrypt(pkcs8: &[u8], passphrase: &str) -> Result<Vec<u8>, Failure> {
    certdesk_pki::pbes2::encrypt_private_key_info(
        pkcs8,
        passphrase.as_bytes(),
        certdesk_pki::pbes2::DEFAULT_ITERATIONS,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .map_err(|e| usage(e.to_string()))
}

fn decrypt(bytes: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    certdesk_pki::pbes2::decrypt_private_key_info(bytes, passphrase.as_bytes()).map_err(|e| match e {
        certdesk_pki::pbes2::Error::WrongPassword => {
            Failure { error: None, code: 1, message: "the keyring passphrase is wrong".into() }
        }
        other => usage(format!("a keyring file is damaged: {other}")),
    })
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io(path, e))?;
    file.write_all(bytes).map_err(|e| io(path, e))?;
    file.sync_all().map_err(|e| io(path, e))
}

/// The first certificate of a keyring entry's PEM file.
fn first_certificate(pem: &[u8], path: &Path) -> Result<Vec<u8>, Failure> {
    certdesk_pki::pem::decode_first(pem, &["CERTIFICATE"]).map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// Reads a .p12, or one PEM file holding the key and the certificate.
fn read_identities(file: &Path, password_file: Option<&Path>) -> Result<Vec<crate::identity::Identity>, Failure> {
    let bytes = zeroize::Zeroizing::new(crate::read_file(file, "key file")?);
    if certdesk_pki::pem::is_pem(&bytes) {
        let cert = crate::identity::pem_blocks(&bytes, "CERTIFICATE", file)?
            .into_iter()
            .next()
            .ok_or_else(|| usage(format!("{} holds no certificate", file.display())))?;
        return Ok(vec![crate::identity::pem_key_identity(cert, &bytes, file)?]);
    }
    crate::identity::p12_identities(&bytes, file, password_file)
}

/// The password of a .p12 to export, strong enough (a weak one is a refusal, exit 1).
fn new_p12_password(password_file: &Path) -> Result<Zeroizing<String>, Failure> {
    let password = read_secret_file(password_file, "password")?;
    certdesk_pki::password::check_strength(&password, &[]).map_err(|e| Failure {
        error: None,
        code: 1,
        message: format!(".p12 password: {e}"),
    })?;
    Ok(password)
}

/// Runs a keyring command.
pub fn run(args: &KeyringArgs, command: KeyringCommand) -> Result<(), Failure> {
    let keyring = Keyring::locate(args)?;
    match command {
        KeyringCommand::Import { file, password_file } => {
            // Every key of the file (an export of a whole keyring holds several), each
            // checked against its certificate before anything is written.
            let mut checked = Vec::new();
            for identity in read_identities(&file, password_file.as_deref())? {
                let key = PrivateKey::from_pkcs8_der(&identity.key_pkcs8)
                    .map_err(|e| usage(format!("{}: {e}", file.display())))?;
                let parsed = <x509_cert::Certificate as der::Decode>::from_der(&identity.cert)
                    .map_err(|e| usage(e.to_string()))?;
                if parsed.tbs_certificate().subject_public_key_info() != key.public_key() {
                    return Err(usage(format!("{}: a key does not belong to its certificate", file.display())));
                }
                let info = EntryInfo::from_certificate(&identity.cert).map_err(|e| usage(e.to_string()))?;
                checked.push((info, key, identity));
            }
            let passphrase = keyring.unlock(true)?;
            for (info, key, identity) in checked {
                let cert_path = keyring.keys_dir().join(format!("{}.pem", info.id));
                if cert_path.exists() {
                    eprintln!("certdesk: {} is already in the keyring", info.subject);
                    continue;
                }
                let key_path = keyring.keys_dir().join(format!("{}.key.p8", info.id));
                let chain_path = keyring.keys_dir().join(format!("{}.chain", info.id));
                // A key without its certificate is what an import that failed half-way
                // left: not an entry yet, so it is written again.
                for orphan in [&key_path, &chain_path] {
                    if orphan.exists() {
                        std::fs::remove_file(orphan).map_err(|e| io(orphan, e))?;
                    }
                }
                // The key and the chain first: an entry is listed only once its
                // certificate file exists.
                write_secret(&key_path, &encrypt(key.pkcs8_der(), &passphrase)?)?;
                if !identity.others.is_empty() {
                    let chain =
                        identity.others.iter().map(|c| crate::pem("CERTIFICATE", c)).collect::<Result<String, _>>()?;
                    write_secret(&chain_path, chain.as_bytes())?;
                }
                let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &identity.cert)
                    .map_err(|e| usage(e.to_string()))?;
                write_secret(&cert_path, pem.as_bytes())?;
                eprintln!("certdesk: imported {} ({})", info.subject, &info.id.get(..16).unwrap_or(&info.id));
            }
            Ok(())
        }
        KeyringCommand::List { json: true } => {
            let now = time::OffsetDateTime::now_utc();
            let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
            let entries: Vec<serde_json::Value> = keyring
                .entries()?
                .into_iter()
                .map(|(info, revoked, _)| {
                    serde_json::json!({
                        "id": info.id,
                        "state": info.state(now, revoked).name().replace(' ', "_"),
                        "subject": info.subject,
                        "issuer": info.issuer,
                        "serial": info.serial,
                        "emails": info.emails,
                        "not_before": rfc3339(info.not_before),
                        "not_after": rfc3339(info.not_after),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(entries));
            Ok(())
        }
        KeyringCommand::List { json: false } => {
            let now = time::OffsetDateTime::now_utc();
            for (info, revoked, _) in keyring.entries()? {
                let until = info.not_after.date();
                println!(
                    "{}  {:<13}  until {until}  serial {}  {}  {}",
                    info.id.get(..16).unwrap_or(&info.id),
                    info.state(now, revoked).name(),
                    info.serial,
                    info.emails.join(","),
                    info.subject
                );
            }
            Ok(())
        }
        KeyringCommand::Export { id: None, all: true, p12, password_file, p12_format } => {
            let format = p12_format.format();
            let entries = keyring.entries()?;
            if entries.is_empty() {
                return Err(usage("the keyring holds no key: nothing to export"));
            }
            let password = new_p12_password(&password_file)?;
            let mut held = Vec::with_capacity(entries.len());
            let mut chain: Vec<Vec<u8>> = Vec::new();
            for (info, _, key_file) in &entries {
                let key = keyring.private_key(key_file)?;
                let cert = keyring.certificate(info)?;
                for ca in keyring.chain(info)? {
                    if !chain.contains(&ca) {
                        chain.push(ca);
                    }
                }
                // The name clients show, one per key (Java key stores keep one entry per
                // name): the subject, the validity and the keyring's id of the key, so
                // that the several keys of one person can be told apart.
                // (A friendlyName is a BMPString: characters beyond it become U+FFFD.)
                let subject: String =
                    info.subject.chars().map(|c| if u32::from(c) > 0xFFFF { '\u{FFFD}' } else { c }).collect();
                let name =
                    format!("{subject} (until {}, {})", info.not_after.date(), info.id.get(..16).unwrap_or(&info.id));
                held.push((key, cert, name));
            }
            let bundles: Vec<certdesk_pki::pkcs12::Bundle<'_>> = held
                .iter()
                .map(|(key, cert, name)| certdesk_pki::pkcs12::Bundle {
                    key_pkcs8_der: key,
                    cert_der: cert,
                    friendly_name: Some(name),
                })
                .collect();
            let options = certdesk_pki::pkcs12::WriteOptions::new(format);
            let bytes = certdesk_pki::pkcs12::write_all(
                &bundles,
                &chain,
                &password,
                &options,
                &aws_lc_rs::rand::SystemRandom::new(),
            )
            .map_err(|e| usage(e.to_string()))?;
            crate::write_output(Some(&p12), &bytes)?;
            eprintln!("certdesk: exported {} keys with their certificates to {}", bundles.len(), p12.display());
            Ok(())
        }
        KeyringCommand::Export { id, p12, password_file, p12_format, .. } => {
            let format = p12_format.format();
            let id = id.ok_or_else(|| usage("give the entry id, or --all"))?;
            let (info, _, key_file) = keyring.find(&id)?;
            let password = new_p12_password(&password_file)?;
            let key = keyring.private_key(&key_file)?;
            let cert = keyring.certificate(&info)?;
            let chain = keyring.chain(&info)?;
            let options = certdesk_pki::pkcs12::WriteOptions {
                format,
                iterations: certdesk_pki::pbes2::DEFAULT_ITERATIONS,
                friendly_name: Some(info.subject.clone()),
            };
            let bytes = certdesk_pki::pkcs12::write(
                &key,
                &cert,
                &chain,
                &password,
                &options,
                &aws_lc_rs::rand::SystemRandom::new(),
            )
            .map_err(|e| usage(e.to_string()))?;
            crate::write_output(Some(&p12), &bytes)
        }
        KeyringCommand::MarkRevoked { id } => {
            let (info, revoked, _) = keyring.find(&id)?;
            if !revoked {
                write_secret(&keyring.keys_dir().join(format!("{}.revoked", info.id)), b"revoked\n")?;
            }
            eprintln!("certdesk: {} marked revoked (kept for decrypting old mail)", info.subject);
            Ok(())
        }
    }
}
