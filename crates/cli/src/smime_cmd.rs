//! `certdesk smime sign | verify`.

use std::path::{Path, PathBuf};

use certdesk_pki::key::{PrivateKey, PublicKeyKind};
use certdesk_pki::path::{check_crls, validate, RevocationStatus};
use certdesk_smime::envelope;
use certdesk_smime::mime::{self, SmimeBody};
use certdesk_smime::signed_data::{self, SignOptions, SignedDataError};
use clap::{Args, Subcommand, ValueEnum};
use der::Decode;

use crate::{online, read_secret_file, usage, write_output, Failure};

/// S/MIME messages.
#[derive(Subcommand)]
pub enum SmimeCommand {
    /// Sign a message: multipart/signed (default) or opaque application/pkcs7-mime.
    Sign(SignArgs),
    /// Verify a signed message; writes the signed content, the verdict on stderr; exit 0 only if valid.
    Verify(VerifyArgs),
    /// Encrypt a message to one or more recipients (application/pkcs7-mime).
    Encrypt(EncryptArgs),
    /// Decrypt a message with a .p12, a PEM key + certificate, or the keyring.
    Decrypt(DecryptArgs),
    /// One keyring for every key a person has had.
    Keyring {
        #[command(flatten)]
        args: crate::keyring_cmd::KeyringArgs,
        #[command(subcommand)]
        command: crate::keyring_cmd::KeyringCommand,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("identity").required(true).args(["p12", "cert"])))]
pub struct SignArgs {
    /// The signer's .p12 (key and certificate).
    #[arg(long, requires = "password_file")]
    p12: Option<PathBuf>,
    /// File holding the .p12 password.
    #[arg(long, requires = "p12")]
    password_file: Option<PathBuf>,
    /// The signer's certificate (PEM), with --key.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The signer's private key (PEM PKCS#8 "PRIVATE KEY"), with --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// More certificates to include (PEM), e.g. the issuing CA.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// Opaque signing (application/pkcs7-mime; smime-type=signed-data).
    #[arg(long)]
    opaque: bool,
    /// Input (default stdin).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Output (default stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The content cipher.
#[derive(Clone, Copy, ValueEnum)]
pub enum Cipher {
    /// AES-256-CBC (default: what Outlook and Thunderbird read).
    #[value(name = "aes-256-cbc")]
    Aes256Cbc,
    /// AES-128-CBC.
    #[value(name = "aes-128-cbc")]
    Aes128Cbc,
    /// AES-256-GCM AuthEnvelopedData (RFC 5083; many clients cannot read it).
    #[value(name = "aes-256-gcm")]
    Aes256Gcm,
}

#[derive(Args)]
pub struct EncryptArgs {
    /// Recipient certificates (PEM), one or more.
    #[arg(long, required = true, num_args = 1..)]
    to: Vec<PathBuf>,
    /// Content cipher.
    #[arg(long, value_enum, default_value_t = Cipher::Aes256Cbc)]
    cipher: Cipher,
    /// RSA-OAEP key transport instead of PKCS#1 v1.5.
    #[arg(long)]
    oaep: bool,
    /// Input (default stdin).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Output (default stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// A .p12 with the key.
    #[arg(long, requires = "password_file", conflicts_with_all = ["cert", "keyring"])]
    p12: Option<PathBuf>,
    /// File holding the .p12 password.
    #[arg(long, requires = "p12")]
    password_file: Option<PathBuf>,
    /// The recipient certificate (PEM), with --key.
    #[arg(long, requires = "key", conflicts_with = "keyring")]
    cert: Option<PathBuf>,
    /// The recipient key (PEM PKCS#8), with --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[command(flatten)]
    keyring: crate::keyring_cmd::KeyringArgs,
    /// Input (default stdin).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Output (default stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// How revocation is checked.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RevocationMode {
    /// Fail when no current CRL or OCSP answer says the signer is not revoked.
    Require,
    /// Check what can be had; warn when status is unknown.
    Soft,
    /// Do not check.
    Off,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Trusted root certificates (PEM, one or more).
    #[arg(long)]
    trust: PathBuf,
    /// CRL files (DER or PEM).
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// Revocation checking: CRLs in the message and --crl files first, then online
    /// (OCSP from the certificate's AIA, then its CRL distribution points).
    #[arg(long, value_enum, default_value_t = RevocationMode::Soft)]
    revocation: RevocationMode,
    /// Do not fetch OCSP responses or CRLs over the network.
    #[arg(long)]
    offline: bool,
    /// Timeout in seconds for each OCSP or CRL fetch.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    fetch_timeout: u64,
    /// Where fetched OCSP responses and CRLs are cached until their nextUpdate
    /// (default $XDG_CACHE_HOME/certdesk or ~/.cache/certdesk).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Input (default stdin).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Where to write the signed content (default stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    match path {
        Some(path) => std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display()))),
        None => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| usage(format!("cannot read stdin: {e}")))?;
            Ok(buf)
        }
    }
}

/// Every PEM block with `label` in `text`, as DER; DER input is one item.
fn pem_blocks(bytes: &[u8], label: &str, what: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("-----BEGIN") {
        return Ok(vec![bytes.to_vec()]);
    }
    let mut out = Vec::new();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let after = rest.get(start..).unwrap_or_default();
        let stop = after.find(&end).ok_or_else(|| usage(format!("{}: an unterminated PEM block", what.display())))?;
        let block = after.get(..stop + end.len()).unwrap_or_default();
        let (_, der) =
            der::pem::decode_vec(block.as_bytes()).map_err(|e| usage(format!("{}: bad PEM ({e})", what.display())))?;
        out.push(der);
        rest = after.get(stop + end.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(usage(format!("{} holds no {label}", what.display())));
    }
    Ok(out)
}

fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let certs = pem_blocks(&bytes, "CERTIFICATE", path)?;
    for cert in &certs {
        x509_cert::Certificate::from_der(cert)
            .map_err(|e| usage(format!("{} holds something that is not a certificate ({e})", path.display())))?;
    }
    Ok(certs)
}

/// A private key (PKCS#8) with its certificate, and any other certificates that came with it.
pub(crate) struct Identity {
    pub(crate) key_pkcs8: zeroize::Zeroizing<Vec<u8>>,
    pub(crate) cert: Vec<u8>,
    pub(crate) others: Vec<Vec<u8>>,
}

/// Reads a .p12 (every kind our reader knows); a wrong password is a refusal (exit 1).
pub(crate) fn read_p12(path: &Path, password_file: &Path) -> Result<Identity, Failure> {
    let password = read_secret_file(password_file, "password")?;
    let bytes = std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let contents = certdesk_pki::pkcs12::read(&bytes, &password).map_err(|e| match e {
        certdesk_pki::pkcs12::Error::WrongPassword { .. } => Failure { code: 1, message: e.to_string() },
        other => usage(format!("{}: {other}", path.display())),
    })?;
    let key_pkcs8 = contents.key_pkcs8_der.ok_or_else(|| usage(format!("{} holds no private key", path.display())))?;
    let cert = contents.leaf.ok_or_else(|| usage(format!("{} holds no certificate", path.display())))?;
    let others = contents.certificates.into_iter().filter(|c| *c != cert).collect();
    Ok(Identity { key_pkcs8, cert, others })
}

/// Reads a PEM certificate and a PEM PKCS#8 key (from one file or two).
pub(crate) fn read_pem_identity(cert_path: &Path, key_path: &Path) -> Result<Identity, Failure> {
    let cert = read_certs(cert_path)?.into_iter().next().ok_or_else(|| usage("no certificate"))?;
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(key_path).map_err(|e| usage(format!("cannot read {}: {e}", key_path.display())))?,
    );
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY") {
        return Err(usage(format!(
            "{} is a traditional key; convert it: openssl pkcs8 -topk8 -nocrypt -in KEY -out key.p8.pem",
            key_path.display()
        )));
    }
    let key_pkcs8 =
        zeroize::Zeroizing::new(pem_blocks(&bytes, "PRIVATE KEY", key_path)?.into_iter().next().unwrap_or_default());
    Ok(Identity { key_pkcs8, cert, others: Vec::new() })
}

fn micalg(kind: PublicKeyKind) -> &'static str {
    match kind {
        PublicKeyKind::Ec(certdesk_pki::key::Curve::P384) => "sha-384",
        PublicKeyKind::Ec(certdesk_pki::key::Curve::P521) | PublicKeyKind::Ed25519 => "sha-512",
        _ => "sha-256",
    }
}

pub async fn run(command: SmimeCommand) -> Result<(), Failure> {
    match command {
        SmimeCommand::Sign(args) => sign(args),
        SmimeCommand::Verify(args) => verify(args),
        SmimeCommand::Encrypt(args) => encrypt(args),
        SmimeCommand::Decrypt(args) => decrypt(args),
        SmimeCommand::Keyring { args, command } => crate::keyring_cmd::run(&args, command),
    }
}

fn sign(args: SignArgs) -> Result<(), Failure> {
    let identity = match (&args.p12, &args.password_file, &args.cert, &args.key) {
        (Some(p12), Some(password_file), _, _) => read_p12(p12, password_file)?,
        (_, _, Some(cert_path), Some(key_path)) => read_pem_identity(cert_path, key_path)?,
        _ => return Err(usage("give --p12 FILE --password-file FILE, or --cert FILE --key FILE")),
    };
    let key = PrivateKey::from_pkcs8_der(&identity.key_pkcs8).map_err(|e| usage(e.to_string()))?;
    let (cert, mut chain) = (identity.cert, identity.others);
    let parsed = x509_cert::Certificate::from_der(&cert).map_err(|e| usage(e.to_string()))?;
    if parsed.tbs_certificate().subject_public_key_info() != certdesk_pki::key::Signer::public_key(&key) {
        return Err(usage("the private key does not belong to the certificate"));
    }
    if let Some(chain_path) = &args.chain {
        for extra in read_certs(chain_path)? {
            if !chain.contains(&extra) {
                chain.push(extra);
            }
        }
    }
    let input = read_input(args.input.as_deref())?;
    let (outer, inner) = mime::split_for_signing(&input).map_err(|e| usage(e.to_string()))?;
    let options = SignOptions { signing_time: time::OffsetDateTime::now_utc(), detached: !args.opaque, chain };
    let cms = signed_data::sign(&inner, &cert, &key, &options).map_err(|e| usage(format!("signing failed: {e}")))?;
    let message = if args.opaque {
        mime::build_opaque(&outer, &cms, "signed-data")
    } else {
        mime::build_signed(&outer, &inner, &cms, micalg(key.kind()), &mime::boundary_for(&inner))
    };
    write_output(args.out.as_deref(), &message)
}

fn from_address(message: &[u8]) -> Option<String> {
    let canonical = mime::canonicalize(message);
    let entity = mime::Entity::parse(&canonical).ok()?;
    let from = entity.header("Sender").or_else(|| entity.header("From"))?;
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => from.get(open + 1..close)?,
        _ => from,
    };
    Some(address.trim().to_ascii_lowercase())
}

fn certificate_addresses(cert: &[u8]) -> Vec<String> {
    let Ok(cert) = x509_cert::Certificate::from_der(cert) else { return Vec::new() };
    let san = certdesk_pki::issuance::find_extension::<x509_cert::ext::pkix::SubjectAltName>(
        cert.tbs_certificate().extensions(),
    );
    san.map(|san| {
        san.0
            .iter()
            .filter_map(|name| match name {
                x509_cert::ext::pkix::name::GeneralName::Rfc822Name(m) => Some(m.as_str().to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure { code: 1, message: format!("signature NOT valid: {}", message.into()) }
}

fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let anchors = read_certs(&args.trust)?;
    let mut crls = Vec::new();
    for path in &args.crl {
        let bytes = std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        crls.extend(pem_blocks(&bytes, "X509 CRL", path)?);
    }
    let message = read_input(args.input.as_deref())?;
    let body = mime::parse(&message).map_err(|e| usage(e.to_string()))?;
    let verified = match &body {
        SmimeBody::MultipartSigned(parts) => signed_data::verify(&parts.signature, Some(&parts.signed), &[]),
        SmimeBody::Opaque { cms, smime_type } => {
            if smime_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("enveloped-data")) {
                return Err(usage("the message is encrypted, not signed: use certdesk smime decrypt"));
            }
            signed_data::verify(cms, None, &[])
        }
    };
    let verified = verified.map_err(|e| match e {
        SignedDataError::Malformed { .. } | SignedDataError::NotSignedData { .. } => usage(e.to_string()),
        other => invalid(other.to_string()),
    })?;
    crls.extend(verified.crls.iter().cloned());
    let now = time::OffsetDateTime::now_utc();
    let mut fetcher = (!args.offline).then(|| {
        online::Fetcher::new(
            std::time::Duration::from_secs(args.fetch_timeout),
            args.cache_dir.clone().or_else(online::default_cache_dir),
        )
    });
    let sender = from_address(&message);
    let mut report = Vec::new();
    let mut warnings = Vec::new();
    for signature in &verified.signatures {
        let path = validate(signature.signer_certificate(), &verified.certificates, &anchors, now)
            .map_err(|e| invalid(e.to_string()))?;
        let addresses = certificate_addresses(signature.signer_certificate());
        if let Some(sender) = &sender {
            if !addresses.is_empty() && !addresses.contains(sender) {
                return Err(invalid(format!(
                    "the message is from {sender}, but the certificate is for {} (RFC 8550 3)",
                    addresses.join(", ")
                )));
            }
        }
        let revocation = if args.revocation == RevocationMode::Off {
            "not checked (--revocation off)".to_string()
        } else {
            let offline = check_crls(&path, &crls, now).map_err(|e| invalid(e.to_string()))?;
            let verdict = match (offline, fetcher.as_mut()) {
                (RevocationStatus::NotRevoked, _) => {
                    online::OnlineVerdict::Good { source: "a current CRL given".to_string() }
                }
                (RevocationStatus::Unknown, Some(fetcher)) => fetcher.check(&path, now),
                (RevocationStatus::Unknown, None) => {
                    online::OnlineVerdict::Unknown { reasons: vec!["no current CRL given and --offline".to_string()] }
                }
            };
            match verdict {
                online::OnlineVerdict::Good { source } => format!("not revoked ({source})"),
                online::OnlineVerdict::Revoked(e) => return Err(invalid(e.to_string())),
                online::OnlineVerdict::Unknown { reasons } if args.revocation == RevocationMode::Require => {
                    return Err(invalid(format!(
                        "revocation status unknown (--revocation require): {}",
                        reasons.join("; ")
                    )));
                }
                online::OnlineVerdict::Unknown { reasons } => {
                    warnings.push(format!("revocation status unknown: {}", reasons.join("; ")));
                    "unknown".to_string()
                }
            }
        };
        let chain: Vec<String> = path
            .chain()
            .iter()
            .filter_map(|c| x509_cert::Certificate::from_der(c).ok())
            .map(|c| certdesk_pki::subject::rfc4514(c.tbs_certificate().subject()))
            .collect();
        let signed_at = signature
            .signing_time()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| "not stated".into());
        report.push(format!(
            "  signer:     {}\n  addresses:  {}\n  chain:      {}\n  signed at:  {signed_at}\n  revocation: {revocation}",
            chain.first().cloned().unwrap_or_default(),
            if addresses.is_empty() { "none".to_string() } else { addresses.join(", ") },
            chain.join(" -> ")
        ));
    }
    // Only now, with every check passed, is any content written.
    write_output(args.out.as_deref(), &verified.content)?;
    eprintln!("certdesk: signature valid\n{}", report.join("\n"));
    for warning in warnings {
        eprintln!("certdesk: warning: {warning}");
    }
    Ok(())
}

fn encrypt(args: EncryptArgs) -> Result<(), Failure> {
    let mut recipients = Vec::new();
    for path in &args.to {
        recipients.extend(read_certs(path)?);
    }
    let input = read_input(args.input.as_deref())?;
    let (outer, inner) = mime::split_for_signing(&input).map_err(|e| usage(e.to_string()))?;
    let cipher = match args.cipher {
        Cipher::Aes256Cbc => envelope::ContentCipher::Aes256Cbc,
        Cipher::Aes128Cbc => envelope::ContentCipher::Aes128Cbc,
        Cipher::Aes256Gcm => envelope::ContentCipher::Aes256Gcm,
    };
    let options = envelope::EncryptOptions { cipher, oaep: args.oaep };
    let cms = envelope::encrypt(&inner, &recipients, &options).map_err(|e| usage(e.to_string()))?;
    let smime_type = if matches!(args.cipher, Cipher::Aes256Gcm) { "authEnveloped-data" } else { "enveloped-data" };
    write_output(args.out.as_deref(), &mime::build_opaque(&outer, &cms, smime_type))
}

fn decrypt_failure(e: envelope::EnvelopeError) -> Failure {
    match e {
        envelope::EnvelopeError::Malformed { .. } | envelope::EnvelopeError::NotEnvelopedData { .. } => {
            usage(e.to_string())
        }
        other => Failure { code: 1, message: other.to_string() },
    }
}

/// The enveloped CMS object in a message, looking inside encrypt-then-sign messages
/// (an opaque or multipart signature around the encrypted part, RFC 8551 3.7). The outer
/// signature is not judged here: `smime verify` does that.
fn find_enveloped(mut message: Vec<u8>) -> Result<Vec<u8>, Failure> {
    for _ in 0..4 {
        let signed_content = match mime::parse(&message) {
            Ok(SmimeBody::Opaque { cms, smime_type }) => {
                let signed = smime_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("signed-data"));
                if !signed {
                    return Ok(cms);
                }
                signed_data::verify(&cms, None, &[]).map_err(|e| usage(format!("the signed layer: {e}")))?.content
            }
            Ok(SmimeBody::MultipartSigned(parts)) => parts.signed,
            // A bare DER/BER CMS object is accepted too.
            Err(_) if message.first() == Some(&0x30) => return Ok(message),
            Err(e) => return Err(usage(e.to_string())),
        };
        message = signed_content;
    }
    Err(usage("the message nests signatures too deeply to find the encrypted part"))
}

fn decrypt(args: DecryptArgs) -> Result<(), Failure> {
    let message = read_input(args.input.as_deref())?;
    let cms = find_enveloped(message)?;
    let keys: Vec<envelope::RecipientKey> = match (&args.p12, &args.password_file, &args.cert, &args.key) {
        (Some(p12), Some(password_file), _, _) => {
            let identity = read_p12(p12, password_file)?;
            vec![envelope::RecipientKey::new(&identity.key_pkcs8, &identity.cert).map_err(|e| usage(e.to_string()))?]
        }
        (_, _, Some(cert_path), Some(key_path)) => {
            let identity = read_pem_identity(cert_path, key_path)?;
            vec![envelope::RecipientKey::new(&identity.key_pkcs8, &identity.cert).map_err(|e| usage(e.to_string()))?]
        }
        _ => {
            // The keyring: only the keys the message names are decrypted.
            let keyring = crate::keyring_cmd::Keyring::locate(&args.keyring)?;
            let wanted = envelope::recipients(&cms).map_err(decrypt_failure)?;
            let mut keys = Vec::new();
            for (info, _, key_file) in keyring.entries()? {
                let named = wanted.iter().any(|id| match id {
                    envelope::RecipientId::IssuerSerial { issuer, serial_hex } => {
                        info.is_recipient(Some(issuer), Some(serial_hex), None)
                    }
                    envelope::RecipientId::SubjectKeyId(key_id) => info.is_recipient(None, None, Some(key_id)),
                    _ => false,
                });
                if named {
                    let key = keyring.private_key(&key_file)?;
                    let cert = keyring.certificate(&info)?;
                    keys.push(envelope::RecipientKey::new(&key, &cert).map_err(|e| usage(e.to_string()))?);
                }
            }
            if keys.is_empty() {
                return Err(Failure {
                    code: 1,
                    message: "no key in the keyring matches a recipient of this message".into(),
                });
            }
            keys
        }
    };
    let content = envelope::decrypt(&cms, &keys).map_err(decrypt_failure)?;
    write_output(args.out.as_deref(), &content)
}
