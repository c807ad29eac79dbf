//! The key ceremony of an offline root (issue 13): the root key lives on a machine (or
//! token) that is not the online CA, and is used only at ceremonies, each with a
//! printed transcript.
//!
//! On the root machine, a ceremony directory holds `ceremony.toml` (the organisation and
//! public base URL, as `certdesk.toml`), `root.pem`, `root-key.pem` (encrypted, or a
//! reference to a key on a token), `root.crl` and `transcript.jsonl`: one JSON record
//! per step, each with the SHA-256 of the record before it, so the online CA can import
//! the chain into its audit log and see that nothing was left out or changed.
//!
//! 1. `certdesk ceremony create-root`: the root key and certificate, the first root CRL.
//! 2. Online, `certdesk init --offline-root root.pem`: the issuing CA's and the OCSP
//!    responder's keys, and `ca/issuing.csr`.
//! 3. `certdesk ceremony sign-issuing --csr issuing.csr`: the issuing CA certificate.
//! 4. Online, `certdesk ca install-issuing`: checks the certificate against the root and
//!    its own key, makes the OCSP responder's certificate, imports the transcript.
//! 5. Yearly (BR 4.9.7), `certdesk ceremony sign-root-crl`, and online `certdesk ca
//!    install-root-crl`.

use std::path::PathBuf;

use certdesk_core::audit::{seal, AuditEvent};
use certdesk_core::clock::Clock;
use certdesk_core::config::{Config, ValidatedConfig};
use certdesk_core::datadir::{read, write, DataDir};
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_pki::key::Signer;
use certdesk_store::Store;
use der::{Decode, Encode};
use serde_json::{json, Value};

use crate::authority::{
    init_config, issuing_certificate, key_file_text, new_ca_key, open_init_token, root_certificate, sign_root_crl,
    InitOptions,
};
use crate::issuer::{pem, read_cert_pem, unlock_ca_key};

fn internal(e: impl std::fmt::Display) -> DomainError {
    DomainError::new(ErrorCode::Internal, e.to_string())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// A ceremony directory.
pub struct CeremonyDir {
    root: PathBuf,
}

impl CeremonyDir {
    /// The directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `root.pem`.
    pub fn root_cert(&self) -> PathBuf {
        self.path("root.pem")
    }

    /// `root.crl` (DER), the newest root CRL.
    pub fn root_crl(&self) -> PathBuf {
        self.path("root.crl")
    }

    /// `transcript.jsonl`.
    pub fn transcript(&self) -> PathBuf {
        self.path("transcript.jsonl")
    }

    fn config(&self) -> Result<ValidatedConfig, DomainError> {
        let path = self.path("ceremony.toml");
        if !path.is_file() {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!(
                    "{} is not a ceremony directory (`certdesk ceremony create-root` makes one)",
                    self.root.display()
                ),
            ));
        }
        let text = String::from_utf8(read(&path)?)
            .map_err(|_| DomainError::new(ErrorCode::Config, "ceremony.toml is not UTF-8"))?;
        Config::from_toml(&text)?.validate()
    }

    /// Appends a record to the transcript (chained to the one before) and returns it.
    fn record(&self, clock: &dyn Clock, actor: &str, action: &str, details: Value) -> Result<Value, DomainError> {
        let path = self.transcript();
        let existing = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            // Never start the transcript afresh over one that could not be read.
            Err(e) => return Err(internal(format!("cannot read {}: {e}", path.display()))),
        };
        let last = existing.lines().rfind(|l| !l.trim().is_empty());
        let seq = existing.lines().filter(|l| !l.trim().is_empty()).count() + 1;
        let record = json!({
            "seq": seq,
            "at": certdesk_core::clock::unix_text(clock.now().unix_timestamp()),
            "actor": actor,
            "action": action,
            "details": details,
            "prev_sha256": last.map(|l| sha256(l.as_bytes())),
        });
        let line = format!("{record}\n");
        let mut text = existing;
        text.push_str(&line);
        certdesk_core::datadir::replace(&path, text.as_bytes())?;
        Ok(record)
    }

    fn root_key(&self, secret: &str, config: &ValidatedConfig) -> Result<crate::issuer::CaKey, DomainError> {
        unlock_ca_key(&read(&self.path("root-key.pem"))?, secret)?.with_rsa_pss(config.raw.ca.rsa_pss)
    }
}

/// Makes the root: its key (in an encrypted file, or on the token of `options.pkcs11`),
/// its certificate and its first CRL, in a new ceremony directory.
pub fn create_root(
    dir: &CeremonyDir,
    options: InitOptions,
    secret: &str,
    clock: &dyn Clock,
    actor: &str,
) -> Result<Value, DomainError> {
    if dir.root.exists() && std::fs::read_dir(&dir.root).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(DomainError::new(
            ErrorCode::DataDir,
            format!("{} exists and is not empty; a ceremony directory is made new", dir.root.display()),
        ));
    }
    let (config, validated) = init_config(&options, secret)?;
    let token =
        options.pkcs11.as_ref().map(|t| open_init_token(t, secret).map(|open| (open, t.clone()))).transpose()?;
    let key = new_ca_key(token.as_ref(), "root", options.key)?.with_rsa_pss(options.rsa_pss)?;
    let now = clock.now().replace_nanosecond(0).map_err(internal)?;
    let root_der = root_certificate(&validated, &key, now)?;
    let crl = sign_root_crl(&root_der, &key, &validated, 1, now)?;
    // Written in a sibling directory and renamed into place: a run cut short leaves no
    // half-made ceremony directory (and no key file without its certificate) behind.
    let name = dir.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "ceremony".into());
    let staging = CeremonyDir::new(dir.root.with_file_name(format!(".{name}.creating-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&staging.root);
    std::fs::create_dir_all(&staging.root)
        .map_err(|e| internal(format!("cannot create {}: {e}", staging.root.display())))?;
    let written = (|| -> Result<Value, DomainError> {
        write(&staging.path("root-key.pem"), key_file_text(&key, secret)?.as_bytes(), true)?;
        write(&staging.root_cert(), pem("CERTIFICATE", &root_der)?.as_bytes(), false)?;
        write(&staging.root_crl(), &crl, false)?;
        write(&staging.path("ceremony.toml"), config.to_toml()?.as_bytes(), false)?;
        // The transcript's first record goes in with the rest.
        let record = staging.record(
            clock,
            actor,
            "ceremony.create-root",
            json!({
                "root_sha256": sha256(&root_der),
                "root_spki_sha256": sha256(&key.public_key().to_der().map_err(internal)?),
                "key": options.key.name(),
                "key_store": match &options.pkcs11 {
                    Some(t) => format!("pkcs11 token {:?}", t.token),
                    None => "file encrypted under the ceremony passphrase".to_string(),
                },
                "root_crl_number": 1,
            }),
        )?;
        if dir.root.exists() {
            // Known empty (checked above).
            let _ = std::fs::remove_dir(&dir.root);
        }
        std::fs::rename(&staging.root, &dir.root)
            .map_err(|e| internal(format!("cannot move the ceremony directory into place: {e}")))?;
        Ok(record)
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging.root);
    }
    written
}

/// Signs the issuing CA certificate for the CSR made by `certdesk init --offline-root`.
pub fn sign_issuing(
    dir: &CeremonyDir,
    csr: &[u8],
    secret: &str,
    clock: &dyn Clock,
    actor: &str,
) -> Result<(Vec<u8>, Value), DomainError> {
    let validated = dir.config()?;
    let request = certdesk_pki::csr::ValidatedCsr::parse(csr)
        .map_err(|e| DomainError::new(ErrorCode::BadInput, format!("the issuing CA's CSR: {e}")))?;
    let public_key = request.public_key().spki().clone();
    let root_der = read_cert_pem(&read(&dir.root_cert())?)?;
    let key = dir.root_key(secret, &validated)?;
    let now = clock.now().replace_nanosecond(0).map_err(internal)?;
    let issuing_der = issuing_certificate(&validated, &root_der, &key, &public_key, now)?;
    let record = dir.record(
        clock,
        actor,
        "ceremony.sign-issuing",
        json!({
            "issuing_sha256": sha256(&issuing_der),
            "issuing_spki_sha256": sha256(&public_key.to_der().map_err(internal)?),
            "root_sha256": sha256(&root_der),
        }),
    )?;
    Ok((issuing_der, record))
}

/// Signs the root's next CRL (empty: the issuing CA is not revoked).
pub fn sign_root_crl_at_ceremony(
    dir: &CeremonyDir,
    secret: &str,
    clock: &dyn Clock,
    actor: &str,
) -> Result<(Vec<u8>, Value), DomainError> {
    let validated = dir.config()?;
    let root_der = read_cert_pem(&read(&dir.root_cert())?)?;
    let key = dir.root_key(secret, &validated)?;
    let last = certdesk_core::records::read_root_crl(&read(&dir.root_crl())?)?.0;
    let now = clock.now().replace_nanosecond(0).map_err(internal)?;
    let crl = sign_root_crl(&root_der, &key, &validated, last + 1, now)?;
    certdesk_core::datadir::replace(&dir.root_crl(), &crl)?;
    let record = dir.record(
        clock,
        actor,
        "ceremony.sign-root-crl",
        json!({ "root_crl_number": last + 1, "sha256": sha256(&crl) }),
    )?;
    Ok((crl, record))
}

/// A root CRL given as PEM or DER, as DER.
fn crl_der_of(bytes: &[u8]) -> Result<Vec<u8>, DomainError> {
    if !certdesk_pki::pem::is_pem(bytes) {
        return Ok(bytes.to_vec());
    }
    certdesk_pki::pem::decode_first(bytes, &["X509 CRL"])
        .map_err(|e| DomainError::new(ErrorCode::BadInput, format!("the root CRL cannot be read: {e}")))
}

/// Checks that `signed_der` (a certificate or CRL: `SEQUENCE { tbs, algorithm, BIT
/// STRING }`) was signed by the certificate `root_der`.
fn signed_by(signed_der: &[u8], root_der: &[u8], what: &str) -> Result<(), DomainError> {
    let root = x509_cert::Certificate::from_der(root_der).map_err(internal)?;
    let not = |why: String| DomainError::new(ErrorCode::Refused, format!("{what} {why}"));
    let outer = der::asn1::AnyRef::from_der(signed_der).map_err(|e| not(format!("cannot be read ({e})")))?;
    let mut reader = der::SliceReader::new(outer.value()).map_err(|e| not(format!("cannot be read ({e})")))?;
    use der::Reader;
    let tbs = reader.tlv_bytes().map_err(|e| not(format!("cannot be read ({e})")))?;
    let algorithm: spki::AlgorithmIdentifierOwned =
        reader.decode().map_err(|e| not(format!("cannot be read ({e})")))?;
    let signature: der::asn1::BitString = reader.decode().map_err(|e| not(format!("cannot be read ({e})")))?;
    certdesk_pki::key::verify_signature(
        root.tbs_certificate().subject_public_key_info(),
        &algorithm,
        tbs,
        signature.raw_bytes(),
    )
    .map_err(|_| not("is not signed by this CA's root".to_string()))
}

/// Reads a transcript and checks its chain: each record names the SHA-256 of the one
/// before it, and numbers run from 1.
fn read_transcript(text: &str) -> Result<Vec<Value>, DomainError> {
    let bad = |why: String| DomainError::new(ErrorCode::Refused, format!("the ceremony transcript {why}"));
    let mut records = Vec::new();
    let mut prev: Option<String> = None;
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let record: Value = serde_json::from_str(line).map_err(|_| bad(format!("line {} is not JSON", i + 1)))?;
        if record.get("seq").and_then(Value::as_u64) != Some(i as u64 + 1) {
            return Err(bad(format!("record {} is out of order", i + 1)));
        }
        let named = record.get("prev_sha256").and_then(Value::as_str).map(str::to_string);
        if named != prev {
            return Err(bad(format!("record {} does not follow the one before it (changed or left out)", i + 1)));
        }
        prev = Some(sha256(line.as_bytes()));
        records.push(record);
    }
    if records.is_empty() {
        return Err(bad("is empty".into()));
    }
    Ok(records)
}

/// Checks that a transcript has a record of `action` whose `details.field` is `value`
/// (the transcript speaks of what is being installed).
fn transcript_names(text: &str, action: &str, field: &str, value: &str) -> Result<(), DomainError> {
    let found = read_transcript(text)?.iter().any(|r| {
        r.get("action").and_then(Value::as_str) == Some(action)
            && r.get("details").and_then(|d| d.get(field)).and_then(Value::as_str) == Some(value)
    });
    if found {
        Ok(())
    } else {
        Err(DomainError::new(
            ErrorCode::Refused,
            format!("the ceremony transcript has no {action} record for this {field} ({value}): is it this CA's?"),
        ))
    }
}

/// The records of a transcript not yet in the audit log, checked: a later transcript
/// continues the one imported before, unchanged (checked before anything is installed).
async fn records_to_import(store: &Store, transcript: Option<&str>) -> Result<Vec<Value>, DomainError> {
    let Some(text) = transcript else { return Ok(Vec::new()) };
    let imported: Vec<Value> = store
        .audit_log()
        .await?
        .into_iter()
        .filter(|row| row.action == "ceremony.record")
        .filter_map(|row| serde_json::from_str(&row.details).ok())
        .collect();
    let records = read_transcript(text)?;
    if records.len() < imported.len() || records.get(..imported.len()) != Some(imported.as_slice()) {
        return Err(DomainError::new(
            ErrorCode::Refused,
            "the ceremony transcript does not continue the one imported before (records changed or missing)",
        ));
    }
    Ok(records.into_iter().skip(imported.len()).collect())
}

/// Appends the ceremony records (as [`records_to_import`] gave them) and then
/// `action`'s own to the audit log.
async fn audit(
    store: &Store,
    records: Vec<Value>,
    clock: &dyn Clock,
    actor: &str,
    action: &'static str,
    subject: String,
    details: Value,
) -> Result<(), DomainError> {
    let at = clock.now().unix_timestamp();
    for record in records {
        let event = AuditEvent {
            actor: format!("ceremony:{}", record.get("actor").and_then(Value::as_str).unwrap_or("unknown")),
            action: "ceremony.record",
            subject: record.get("action").and_then(Value::as_str).unwrap_or_default().to_string(),
            details: record,
        };
        store.append_audit(&|seq, prev| seal(&event, at, seq, prev)).await?;
    }
    let event = AuditEvent { actor: actor.to_string(), action, subject, details };
    store.append_audit(&|seq, prev| seal(&event, at, seq, prev)).await?;
    Ok(())
}

/// Online: installs the issuing CA certificate signed at the ceremony, with the root's
/// CRL, makes the OCSP responder's certificate and imports the transcript. `secret` is
/// the CA passphrase (or the token's PIN).
pub async fn install_issuing(
    data: &DataDir,
    issuing_pem: &[u8],
    root_crl: &[u8],
    transcript: Option<&str>,
    secret: &str,
    clock: &dyn Clock,
    actor: &str,
) -> Result<Vec<u8>, DomainError> {
    if !data.issuing_csr().is_file() {
        return Err(DomainError::new(
            ErrorCode::DataDir,
            format!(
                "{} does not await an issuing CA certificate (made by `certdesk init --offline-root`)",
                data.root().display()
            ),
        ));
    }
    if data.issuing_cert().is_file() {
        return Err(DomainError::new(ErrorCode::Conflict, "the issuing CA certificate is installed already"));
    }
    let text = String::from_utf8(read(&data.config())?)
        .map_err(|_| DomainError::new(ErrorCode::Config, "certdesk.toml is not UTF-8"))?;
    let validated = Config::from_toml(&text)?.validate()?;
    let root_der = read_cert_pem(&read(&data.root_cert())?)?;
    let issuing_der = certdesk_pki::pem::decode_first(issuing_pem, &["CERTIFICATE"])
        .or_else(|_| {
            x509_cert::Certificate::from_der(issuing_pem).map(|_| issuing_pem.to_vec()).map_err(|e| e.to_string())
        })
        .map_err(|e| {
            DomainError::new(ErrorCode::BadInput, format!("the issuing CA certificate cannot be read: {e}"))
        })?;
    signed_by(&issuing_der, &root_der, "the issuing CA certificate")?;
    let crl_der = crl_der_of(root_crl)?;
    signed_by(&crl_der, &root_der, "the root CRL")?;
    certdesk_core::records::read_root_crl(&crl_der)?;
    let issuing_key = unlock_ca_key(&read(&data.issuing_key())?, secret)?.with_rsa_pss(validated.raw.ca.rsa_pss)?;
    let cert = x509_cert::Certificate::from_der(&issuing_der).map_err(internal)?;
    if cert.tbs_certificate().subject_public_key_info() != issuing_key.public_key() {
        return Err(DomainError::new(
            ErrorCode::Refused,
            "the issuing CA certificate is not for this CA's issuing key (was another CSR signed?)",
        ));
    }
    if let Some(text) = transcript {
        transcript_names(text, "ceremony.create-root", "root_sha256", &sha256(&root_der))?;
        transcript_names(text, "ceremony.sign-issuing", "issuing_sha256", &sha256(&issuing_der))?;
    }
    let ocsp_key = unlock_ca_key(&read(&data.ocsp_key())?, secret)?;
    let info = certdesk_pki::issuance::IssuerInfo::from_certificate(
        &issuing_der,
        issuing_key.signature_algorithm(),
        validated.urls.clone(),
    )
    .map_err(|e| DomainError::new(ErrorCode::Refused, format!("the issuing CA certificate: {e}")))?;
    let now = clock.now().replace_nanosecond(0).map_err(internal)?;
    let ocsp_der = crate::issuer::certify_ocsp_responder(
        &info,
        &issuing_key,
        ocsp_key.public_key(),
        &validated.organization,
        now,
    )?;
    // Audited first, then put in place (each file atomically, the issuing certificate
    // last: with it the data directory is complete). A run cut short is run again: it
    // audits once more and replaces what the first one wrote.
    let url = validated.raw.database.url.clone().unwrap_or_else(|| data.sqlite_url());
    let store = Store::open(&url).await?;
    let audited = match records_to_import(&store, transcript).await {
        Ok(records) => {
            audit(
                &store,
                records,
                clock,
                actor,
                "ca.install-issuing",
                "issuing".to_string(),
                json!({ "issuing_sha256": sha256(&issuing_der), "root_crl_sha256": sha256(&crl_der) }),
            )
            .await
        }
        Err(e) => Err(e),
    };
    store.close().await;
    audited?;
    certdesk_core::datadir::replace(&data.root_crl(), &crl_der)?;
    certdesk_core::datadir::replace(&data.ocsp_cert(), pem("CERTIFICATE", &ocsp_der)?.as_bytes())?;
    certdesk_core::datadir::replace(&data.issuing_cert(), pem("CERTIFICATE", &issuing_der)?.as_bytes())?;
    Ok(issuing_der)
}

/// Online: installs a root CRL signed at a ceremony (signed by this CA's root, with a
/// higher crlNumber than the present one).
pub async fn install_root_crl(
    authority: &crate::authority::Authority,
    crl: &[u8],
    transcript: Option<&str>,
    actor: &str,
) -> Result<u64, DomainError> {
    let data = authority.data();
    let crl_der = crl_der_of(crl)?;
    let root_der = read_cert_pem(&read(&data.root_cert())?)?;
    signed_by(&crl_der, &root_der, "the root CRL")?;
    let (number, _, _) = certdesk_core::records::read_root_crl(&crl_der)?;
    let present = std::fs::read(data.root_crl()).ok().and_then(|b| certdesk_core::records::read_root_crl(&b).ok());
    if let Some((present, _, _)) = present {
        if number <= present {
            return Err(DomainError::new(
                ErrorCode::Refused,
                format!("the root CRL has number {number}, not above the installed one's ({present})"),
            ));
        }
    }
    if let Some(text) = transcript {
        transcript_names(text, "ceremony.create-root", "root_sha256", &sha256(&root_der))?;
        transcript_names(text, "ceremony.sign-root-crl", "sha256", &sha256(&crl_der))?;
    }
    let records = records_to_import(authority.store(), transcript).await?;
    // Audited first, then put in place: a run cut short between the two is run again
    // (the file still holds the older CRL), never an installed CRL without its record.
    audit(
        authority.store(),
        records,
        authority.clock().as_ref(),
        actor,
        "crl.root.install",
        "root".to_string(),
        json!({ "crl_number": number, "sha256": sha256(&crl_der) }),
    )
    .await?;
    certdesk_core::datadir::replace(&data.root_crl(), &crl_der)?;
    Ok(number)
}

/// A transcript record as one line for people: when, who, what, and the details.
pub fn describe(record: &Value) -> String {
    format!(
        "#{} {} {} {} {}",
        record.get("seq").and_then(Value::as_u64).unwrap_or(0),
        record.get("at").and_then(Value::as_str).unwrap_or_default(),
        record.get("actor").and_then(Value::as_str).unwrap_or_default(),
        record.get("action").and_then(Value::as_str).unwrap_or_default(),
        record.get("details").map(Value::to_string).unwrap_or_default()
    )
}
