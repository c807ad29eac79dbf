//! The certificate authority's operations: `init`, issue, revoke, CRL, audit check.
//!
//! Each operation validates first, changes state in one database transaction together
//! with its audit record, and leaves nothing behind when it fails.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use certdesk_pki::crl::{CrlContent, RevocationReason, RevokedEntry};
use certdesk_pki::issuance::KeyUse;
use certdesk_pki::issuance::{
    build_ca_certificate, prepare, CaCertificateRequest, IssuanceToken, IssuedCertificate, IssuerInfo,
    PreparedCertificate, SubscriberRequest,
};
use certdesk_pki::key::{AcceptedPublicKey, KeyAlgorithm, PrivateKey, Signer};
use certdesk_pki::password::check_strength;
use certdesk_pki::pkcs12;
use certdesk_pki::profile::ProfileId;
use certdesk_pki::subject::ca_name;
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::issuer::{pem, read_cert_pem, Issuer};
use certdesk_core::audit::{seal, verify, AuditEvent, VerifiedChain};
use certdesk_core::clock::Clock;
use certdesk_core::config::{CaSection, Config, ValidatedConfig};
use certdesk_core::datadir::{read, write, DataDir};
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_store::{CertificateRecord, CrlRecord, Store};
use certdesk_store::{EscrowKeyRecord, EscrowMode, EscrowedKeyRecord, IssuanceIntent, PendingDelivery, Serial};

/// How many batches [`Authority::issue_batches`] has begun (intents recorded) and not
/// yet recorded, at most: one being signed, one waiting for the signing thread, one
/// being committed.
pub const BATCHES_IN_FLIGHT: usize = 3;

/// From how many requests a batch begun while the signing thread is idle is prepared on
/// two threads (below that, starting a thread costs about what it saves).
const SPREAD_FROM: usize = 16;

/// What is stored with the certificate of a single issuance, in its commit.
#[derive(Default)]
struct KeptWith {
    /// The .p12 to deliver (a server-made key).
    delivery: Option<PendingDelivery>,
    /// The server-made key, escrowed (issue 15).
    escrowed: Option<EscrowedKeyRecord>,
}

/// A private key (PKCS#8) as CMS AuthEnvelopedData (AES-256-GCM) to the escrow
/// certificate: only certdesk reads it, at a recovery.
fn escrow_blob(pkcs8: &[u8], escrow_certificate: &[u8]) -> Result<Vec<u8>, DomainError> {
    use certdesk_smime::envelope::{encrypt, ContentCipher, EncryptOptions};
    let options = EncryptOptions { cipher: ContentCipher::Aes256Gcm, oaep: false };
    encrypt(pkcs8, std::slice::from_ref(&escrow_certificate.to_vec()), &options, &SystemRandom::new())
        .map_err(|e| internal(format!("escrowing the key to the escrow certificate: {e}")))
}

/// Validity of the root CA (20 years) and the issuing CA (10 years).
const ROOT_DAYS: i64 = 7305;
const ISSUING_DAYS: i64 = 3653;
/// CRLs are valid 7 days (BR 4.9.7 allows at most 10).
const CRL_DAYS: i64 = 7;
/// Age after which a new CRL is issued even without revocations (`serve` daily; BR
/// 4.9.7 asks for at least every 7 days).
pub const CRL_REISSUE_HOURS: i64 = 24;
/// How often `issue_crl` signs again after losing the crlNumber to another process.
const CRL_NUMBER_ATTEMPTS: u32 = 8;

/// What `certdesk init` is given.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Organisation name.
    pub organization: String,
    /// Country code.
    pub country: String,
    /// organizationIdentifier.
    pub organization_identifier: Option<String>,
    /// Public base URL.
    pub base_url: String,
    /// CA key type: `p384` (default) or `rsa4096`.
    pub key: KeyAlgorithm,
    /// `postgres://...` to keep the database in PostgreSQL (shared by several `serve`
    /// processes); `None` for the embedded SQLite file.
    pub database_url: Option<String>,
    /// Make the CA keys on a PKCS#11 token instead of in encrypted files; the
    /// "passphrase" is then the token's user PIN.
    pub pkcs11: Option<TokenInit>,
    /// The root CA certificate (PEM) made at a key ceremony on another machine
    /// (`certdesk ceremony create-root`): no root key is made here.
    pub offline_root: Option<std::path::PathBuf>,
    /// The root and issuing CA sign with RSASSA-PSS (SHA-256) rather than PKCS#1 v1.5
    /// (RSA keys only; `[ca] rsa_pss` in certdesk.toml).
    pub rsa_pss: bool,
}

/// Where `init` makes the CA keys on a token.
#[derive(Clone, Debug)]
pub struct TokenInit {
    /// The PKCS#11 module (shared library).
    pub module: std::path::PathBuf,
    /// The token's label.
    pub token: String,
    /// The keys' labels are PREFIX-root, PREFIX-issuing and PREFIX-ocsp.
    pub key_label: String,
    /// Use keys already on the token under these labels (made by the HSM's own tools or
    /// a key ceremony) instead of making them.
    pub existing: bool,
}

/// What `init` made.
#[derive(Clone, Debug)]
pub struct InitReport {
    /// Root CA certificate (DER).
    pub root_der: Vec<u8>,
    /// Issuing CA certificate (DER).
    pub issuing_der: Vec<u8>,
    /// Each profile and why this CA cannot issue under it (`None`: it can).
    pub profiles: Vec<(ProfileId, Option<String>)>,
    /// The profile `certdesk issue` uses when none is named.
    pub default_profile: ProfileId,
    /// With an offline root: the issuing CA's CSR is in `ca/issuing.csr`, to be signed
    /// at the key ceremony and installed with `certdesk ca install-issuing`.
    pub awaiting_issuing: bool,
}

/// The commonNames of the CA certificates `init` makes: root, issuing CA and OCSP
/// responder, each "ORGANISATION S/MIME ..." (the responder's as
/// `crate::issuer::certify_ocsp_responder` writes it).
pub fn ca_common_names(organization: &str) -> [String; 3] {
    [
        format!("{organization} S/MIME Root CA"),
        format!("{organization} S/MIME Issuing CA"),
        format!("{organization} S/MIME OCSP Responder"),
    ]
}

pub(crate) fn internal(e: impl std::fmt::Display) -> DomainError {
    DomainError::new(ErrorCode::Internal, e.to_string())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, DomainError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

pub(crate) fn encrypt_key(key: &PrivateKey, passphrase: &str) -> Result<String, DomainError> {
    let rng = SystemRandom::new();
    let der = certdesk_pki::pbes2::encrypt_private_key_info(
        key.pkcs8_der(),
        passphrase.as_bytes(),
        certdesk_pki::pbes2::DEFAULT_ITERATIONS,
        &rng,
    )
    .map_err(internal)?;
    pem("ENCRYPTED PRIVATE KEY", &der)
}

/// Creates a data directory with a root CA, an issuing CA, the database and the config.
/// Refuses a non-empty directory; on failure nothing is left behind.
pub async fn init(
    data: &DataDir,
    options: InitOptions,
    passphrase: Zeroizing<String>,
    clock: &dyn Clock,
    actor: &str,
) -> Result<InitReport, DomainError> {
    let root = data.root();
    if root.exists() {
        let empty = std::fs::read_dir(root).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!("{} already exists and is not empty; certdesk init changes nothing there", root.display()),
            ));
        }
    }
    let (config, validated) = init_config(&options, &passphrase)?;

    // Build everything in a sibling directory, then rename it into place.
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| DomainError::new(ErrorCode::DataDir, format!("cannot create {}: {e}", parent.display())))?;
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "certdesk-data".into());
    let staging = parent.join(format!(".{name}.init-{}", std::process::id()));
    let result = build_data_dir(&DataDir::new(&staging), &config, &validated, options, &passphrase, clock, actor).await;
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if root.exists() {
        // Known empty (checked above).
        let _ = std::fs::remove_dir(root);
    }
    if let Err(e) = std::fs::rename(&staging, root) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(DomainError::new(ErrorCode::DataDir, format!("cannot create {}: {e}", root.display())));
    }
    Ok(report)
}

async fn build_data_dir(
    data: &DataDir,
    config: &Config,
    validated: &ValidatedConfig,
    options: InitOptions,
    passphrase: &str,
    clock: &dyn Clock,
    actor: &str,
) -> Result<InitReport, DomainError> {
    let mkdir = |p: &Path| {
        std::fs::create_dir_all(p)
            .map_err(|e| DomainError::new(ErrorCode::DataDir, format!("cannot create {}: {e}", p.display())))
    };
    mkdir(data.root())?;
    mkdir(&data.root().join("ca"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(data.root(), std::fs::Permissions::from_mode(0o700));
    }
    // The database first: one that holds a CA already is refused before any key is
    // made (keys made on a token would stay there).
    let url = config.database.url.clone().unwrap_or_else(|| data.sqlite_url());
    let store = Store::open(&url).await?;
    if store.holds_records().await? {
        store.close().await;
        return Err(DomainError::new(
            ErrorCode::DataDir,
            "the database already holds a certdesk CA; give init an empty database",
        ));
    }
    let built = make_and_write(data, config, validated, options, passphrase, clock, actor, &store).await;
    store.close().await;
    built
}

/// The keys, certificates and files of [`build_data_dir`], and the audit record in
/// `store`.
#[allow(clippy::too_many_arguments)]
async fn make_and_write(
    data: &DataDir,
    config: &Config,
    validated: &ValidatedConfig,
    options: InitOptions,
    passphrase: &str,
    clock: &dyn Clock,
    actor: &str,
    store: &Store,
) -> Result<InitReport, DomainError> {
    let alg = options.key;
    let secret = Zeroizing::new(passphrase.to_string());
    let token = options.pkcs11.clone();
    let key_store = match &token {
        Some(t) => format!("pkcs11 token {:?} ({})", t.token, t.module.display()),
        None => "files encrypted under the CA passphrase".to_string(),
    };
    // With an offline root, its certificate comes from the key ceremony and no root key
    // is made here.
    let offline_root = match &options.offline_root {
        Some(path) => Some(crate::issuer::read_cert_pem(&read(path)?)?),
        None => None,
    };
    let make_root = offline_root.is_none();
    let rsa_pss = options.rsa_pss;
    let (root_key, issuing_key, ocsp_key) = blocking(move || -> Result<_, DomainError> {
        let token = token.map(|t| open_init_token(&t, &secret).map(|open| (open, t))).transpose()?;
        let root = if make_root { Some(new_ca_key(token.as_ref(), "root", alg)?.with_rsa_pss(rsa_pss)?) } else { None };
        let issuing = new_ca_key(token.as_ref(), "issuing", alg)?.with_rsa_pss(rsa_pss)?;
        Ok((root, issuing, new_ca_key(token.as_ref(), "ocsp", KeyAlgorithm::P256)?))
    })
    .await??;
    let org = &validated.organization;
    let now = clock.now().replace_nanosecond(0).map_err(internal)?;
    // The root, its CRL and the issuing CA certificate; or, with an offline root, the
    // issuing CA's CSR for the ceremony.
    let (root_der, made) = match (&root_key, offline_root) {
        (Some(root_key), _) => {
            let root_der = root_certificate(validated, root_key, now)?;
            let issuing_der = issuing_certificate(validated, &root_der, root_key, issuing_key.public_key(), now)?;
            // The root's CRL of CA certificates (empty), named in the issuing CA certificate.
            let root_crl = sign_root_crl(&root_der, root_key, validated, 1, now)?;
            (root_der, Some((issuing_der, root_crl)))
        }
        (None, Some(root_der)) => (root_der, None),
        (None, None) => return Err(internal("no root")),
    };
    let ocsp_der = match &made {
        Some((issuing_der, _)) => {
            let issuing_info =
                IssuerInfo::from_certificate(issuing_der, issuing_key.signature_algorithm(), validated.urls.clone())
                    .map_err(internal)?;
            Some(crate::issuer::certify_ocsp_responder(&issuing_info, &issuing_key, ocsp_key.public_key(), org, now)?)
        }
        None => None,
    };

    let pass = passphrase.to_string();
    let (root_pem, issuing_pem, ocsp_pem, issuing_key) = blocking(move || -> Result<_, DomainError> {
        let root = root_key.as_ref().map(|k| key_file_text(k, &pass)).transpose()?;
        Ok((root, key_file_text(&issuing_key, &pass)?, key_file_text(&ocsp_key, &pass)?, issuing_key))
    })
    .await??;
    write(&data.ocsp_key(), ocsp_pem.as_bytes(), true)?;
    if let Some(root_pem) = &root_pem {
        write(&data.root_key(), root_pem.as_bytes(), true)?;
    }
    write(&data.issuing_key(), issuing_pem.as_bytes(), true)?;
    write(&data.root_cert(), pem("CERTIFICATE", &root_der)?.as_bytes(), false)?;
    match (&made, &ocsp_der) {
        (Some((issuing_der, root_crl)), Some(ocsp_der)) => {
            write(&data.ocsp_cert(), pem("CERTIFICATE", ocsp_der)?.as_bytes(), false)?;
            write(&data.issuing_cert(), pem("CERTIFICATE", issuing_der)?.as_bytes(), false)?;
            write(&data.root_crl(), root_crl, false)?;
        }
        _ => {
            let csr = certdesk_pki::csr::build(&issuing_key).map_err(internal)?;
            write(&data.issuing_csr(), pem("CERTIFICATE REQUEST", &csr)?.as_bytes(), false)?;
        }
    }
    write(&data.config(), config.to_toml()?.as_bytes(), false)?;

    let sha256 = |der: &[u8]| hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der));
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "ca.init",
        subject: org.name.as_str().to_string(),
        details: json!({
            "root_sha256": sha256(&root_der),
            "issuing_sha256": made.as_ref().map(|(issuing_der, _)| sha256(issuing_der)),
            "offline_root": made.is_none(),
            "key": alg.name(),
            "key_store": key_store,
        }),
    };
    let at = now.unix_timestamp();
    store.append_audit(&|seq, prev| seal(&event, at, seq, prev)).await?;
    let profiles = ProfileId::ALL.into_iter().map(|id| (id, validated.profile_unavailable(id))).collect();
    let awaiting_issuing = made.is_none();
    let issuing_der = made.map(|(issuing_der, _)| issuing_der).unwrap_or_default();
    Ok(InitReport { root_der, issuing_der, profiles, default_profile: validated.default_profile(), awaiting_issuing })
}

/// The configuration `init` (or a key ceremony) writes for `options`, checked: key type,
/// passphrase strength (not for a token's PIN), names that fit a commonName.
pub(crate) fn init_config(options: &InitOptions, passphrase: &str) -> Result<(Config, ValidatedConfig), DomainError> {
    if !matches!(options.key, KeyAlgorithm::P384 | KeyAlgorithm::Rsa4096) {
        return Err(DomainError::new(ErrorCode::Refused, "the CA key must be p384 or rsa4096"));
    }
    if options.rsa_pss && options.key != KeyAlgorithm::Rsa4096 {
        return Err(DomainError::new(ErrorCode::Refused, "RSASSA-PSS needs RSA CA keys: give --key rsa4096"));
    }
    // A token's PIN follows the token's own policy (and it locks after wrong tries).
    if options.pkcs11.is_none() {
        check_strength(passphrase, &[])
            .map_err(|e| DomainError::new(ErrorCode::Refused, format!("CA passphrase: {e}")))?;
    }
    let config = Config {
        ca: CaSection {
            organization: options.organization.clone(),
            country: options.country.clone(),
            organization_identifier: options.organization_identifier.clone(),
            base_url: options.base_url.clone(),
            private_policy_oid: None,
            caa: None,
            caa_identities: Vec::new(),
            caa_resolvers: Vec::new(),
            rsa_pss: options.rsa_pss,
        },
        profiles: Default::default(),
        pkcs12: Default::default(),
        database: certdesk_core::config::DatabaseSection { url: options.database_url.clone() },
        portal: Default::default(),
        mail: Default::default(),
        http: Default::default(),
        directory: Default::default(),
        escrow: Default::default(),
        audit: Default::default(),
    };
    let validated = config.clone().validate()?;
    // Every CA name must fit a commonName (64 characters, RFC 5280 appendix A): a longer
    // issuer name would make every certificate of this CA malformed.
    let org_name = validated.organization.name.as_str();
    let max = certdesk_pki::lint::attribute::MAX_COMMON_NAME;
    if let Some(long) = ca_common_names(org_name).into_iter().find(|cn| cn.chars().count() > max) {
        let room = max - (long.chars().count() - org_name.chars().count());
        return Err(DomainError::new(
            ErrorCode::Config,
            format!(
                "the organisation name {org_name:?} has {} characters: the CA name {long:?} made from it would \
                 exceed the 64 characters of a commonName (RFC 5280 appendix A); give --org at most {room} characters",
                org_name.chars().count()
            ),
        ));
    }

    Ok((config, validated))
}

/// Opens the token `init` makes keys on (its PIN is `secret`).
pub(crate) fn open_init_token(t: &TokenInit, secret: &str) -> Result<Arc<crate::pkcs11::Token>, DomainError> {
    let reference = crate::pkcs11::KeyReference {
        module: crate::pkcs11::absolute_module(&t.module),
        token: t.token.clone(),
        label: String::new(),
    };
    crate::pkcs11::Token::open(&reference, secret)
}

/// Makes the CA key for `role` (`root`, `issuing`, `ocsp`): in memory (to be written
/// encrypted), or on the token (with `existing`, finds it there, and refuses one that
/// can leave the token).
pub(crate) fn new_ca_key(
    token: Option<&(Arc<crate::pkcs11::Token>, TokenInit)>,
    role: &str,
    alg: KeyAlgorithm,
) -> Result<crate::issuer::CaKey, DomainError> {
    use crate::issuer::CaKey;
    let Some((token, t)) = token else {
        return PrivateKey::generate(alg).map(CaKey::File).map_err(internal);
    };
    let label = format!("{}-{role}", t.key_label);
    if !t.existing {
        return token.generate(&label, alg).map(CaKey::Token);
    }
    let key = token.key(&label)?;
    if !token.key_is_locked_in(&label)? {
        return Err(DomainError::new(
            ErrorCode::Refused,
            format!(
                "the key {label:?} on token {:?} can leave the token (CKA_SENSITIVE false or CKA_EXTRACTABLE true); \
                 a CA key must not",
                t.token
            ),
        ));
    }
    Ok(CaKey::Token(key))
}

/// A key file's text: the key encrypted under the passphrase, or where it is on the token.
pub(crate) fn key_file_text(key: &crate::issuer::CaKey, passphrase: &str) -> Result<String, DomainError> {
    match key {
        crate::issuer::CaKey::File(key) => encrypt_key(key, passphrase),
        crate::issuer::CaKey::FilePss(key) => encrypt_key(key.key(), passphrase),
        crate::issuer::CaKey::Token(key) => Ok(key.reference().to_text()),
    }
}

/// The self-signed root CA certificate of the organisation.
pub(crate) fn root_certificate(
    validated: &ValidatedConfig,
    root_key: &dyn Signer,
    now: OffsetDateTime,
) -> Result<Vec<u8>, DomainError> {
    let org = &validated.organization;
    let [root_cn, _, _] = ca_common_names(org.name.as_str());
    build_ca_certificate(
        &CaCertificateRequest {
            subject: ca_name(&root_cn, org).map_err(internal)?,
            public_key: root_key.public_key().clone(),
            not_before: now,
            not_after: now + time::Duration::days(ROOT_DAYS),
            path_len: None,
            email_protection_only: false,
            crl_url: None,
        },
        None,
        root_key,
        &SystemRandom::new(),
    )
    .map_err(internal)
}

/// The issuing CA certificate for `public_key`, signed by the root.
pub(crate) fn issuing_certificate(
    validated: &ValidatedConfig,
    root_der: &[u8],
    root_key: &dyn Signer,
    public_key: &spki::SubjectPublicKeyInfoOwned,
    now: OffsetDateTime,
) -> Result<Vec<u8>, DomainError> {
    use der::Decode;
    let org = &validated.organization;
    let [_, issuing_cn, _] = ca_common_names(org.name.as_str());
    let root = x509_cert::Certificate::from_der(root_der).map_err(internal)?;
    let root_name = root.tbs_certificate().subject().clone();
    let root_key_id = certdesk_pki::key::key_identifier(root_key.public_key());
    build_ca_certificate(
        &CaCertificateRequest {
            subject: ca_name(&issuing_cn, org).map_err(internal)?,
            public_key: public_key.clone(),
            not_before: now,
            not_after: now + time::Duration::days(ISSUING_DAYS),
            path_len: Some(0),
            email_protection_only: true,
            crl_url: Some(validated.root_crl_url.clone()),
        },
        Some((&root_name, &root_key_id)),
        root_key,
        &SystemRandom::new(),
    )
    .map_err(internal)
}

/// An opened data directory: config and database; the CA key stays locked until
/// [`Authority::unlock`].
pub struct Authority {
    data: DataDir,
    config: ValidatedConfig,
    store: Store,
    clock: Arc<dyn Clock>,
    /// Who records intents: this host and process (see [`crate::recovery`]).
    owner: crate::recovery::Owner,
}

pub use certdesk_core::ports::{ApplicationClaim, IssueInput, IssueRequest, Issued, Pkcs12Delivery};
pub use certdesk_core::records::normalize_serial;

impl Authority {
    /// Opens an initialised data directory.
    pub async fn open(data: DataDir, clock: Arc<dyn Clock>) -> Result<Self, DomainError> {
        data.check_complete()?;
        let text = String::from_utf8(read(&data.config())?)
            .map_err(|_| DomainError::new(ErrorCode::Config, "certdesk.toml is not UTF-8"))?;
        let config = Config::from_toml(&text)?.validate()?;
        let url = match config.raw.database.url.clone() {
            Some(url) => url,
            None => {
                if !data.database().is_file() {
                    return Err(DomainError::new(
                        ErrorCode::DataDir,
                        format!("the data directory is incomplete (missing {})", data.database().display()),
                    ));
                }
                data.sqlite_url()
            }
        };
        let store = Store::open(&url).await?;
        Ok(Self { data, config, store, clock, owner: crate::recovery::Owner::this_process() })
    }

    /// The data directory.
    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// The configuration.
    pub fn config(&self) -> &ValidatedConfig {
        &self.config
    }

    /// The store (read access for listings).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn owner(&self) -> &crate::recovery::Owner {
        &self.owner
    }

    /// Issuing CA then root, DER; needs no passphrase.
    pub fn chain(&self) -> Result<Vec<Vec<u8>>, DomainError> {
        Ok(vec![read_cert_pem(&read(&self.data.issuing_cert())?)?, read_cert_pem(&read(&self.data.root_cert())?)?])
    }

    /// Unlocks the issuing CA key (PBKDF2 with 600,000 iterations: run off the async
    /// threads).
    pub async fn unlock(&self, passphrase: Zeroizing<String>) -> Result<Issuer, DomainError> {
        let data = self.data.clone();
        let urls = self.config.urls.clone();
        let pss = self.config.raw.ca.rsa_pss;
        blocking(move || Issuer::unlock(&data, &passphrase, urls, pss)).await?
    }

    /// Profiles with the validity issuance uses now: (profile, days, set on the portal).
    pub async fn profile_settings(&self) -> Result<Vec<(ProfileId, u32, bool)>, DomainError> {
        let overrides = self.store.profile_validity().await?;
        Ok(self.config.profile_settings(&overrides))
    }

    /// Issues a certificate for a key the subscriber holds (from a validated CSR).
    pub async fn issue(
        &self,
        issuer: &Issuer,
        request: IssueRequest,
        public_key: AcceptedPublicKey,
        actor: &str,
    ) -> Result<Issued, DomainError> {
        let mut issued = self.issue_batch(issuer, vec![(request, public_key)], actor).await?;
        issued.pop().ok_or_else(|| internal("an issuance of one returned nothing"))
    }

    /// Issues several certificates, in Boulder's order (see [`crate::recovery`]): every
    /// request is prepared and linted first, and if any is refused nothing is signed.
    /// Then, with one durable commit, the serials are reserved and the intents recorded
    /// (serial, hash of the to-be-signed certificate, application); all are signed; and
    /// with a second commit the certificates are stored with their audit records. A
    /// crash between the two leaves intents that [`Authority::recover`] resolves; a
    /// failure the process survives resolves them at once.
    pub async fn issue_batch(
        &self,
        issuer: &Issuer,
        requests: Vec<(IssueRequest, AcceptedPublicKey)>,
        actor: &str,
    ) -> Result<Vec<Issued>, DomainError> {
        let requests = with_default_use(requests);
        self.issue_batch_with(issuer, requests, actor, |_| Ok(KeptWith::default())).await.map(|(issued, _)| issued)
    }

    /// Issues batches of certificates (a bulk enrolment) as a pipeline: each batch
    /// exactly as by [`Authority::issue_batch`], whole or not at all, but while the
    /// issuer's signing thread signs one, the next ones are prepared and their intents
    /// recorded, and the one before has its certificates committed, so the CA key does
    /// not wait for the database. At most [`BATCHES_IN_FLIGHT`] batches are begun and
    /// not yet recorded. The results come in the order of the batches; a refused or
    /// failed batch leaves nothing behind (its intents are resolved as by
    /// `issue_batch`) and does not stop the others. A crash leaves at most
    /// [`BATCHES_IN_FLIGHT`] batches' intents for [`Authority::recover`]. Not
    /// cancel-safe: the future dropped, the batches begun keep their intents (and the
    /// signing thread signs them) until `recover` runs in a later process, as after a
    /// crash; a caller that can be cancelled (an HTTP handler) must not use it as is.
    pub async fn issue_batches(
        &self,
        issuer: &Issuer,
        batches: Vec<Vec<(IssueRequest, AcceptedPublicKey)>>,
        actor: &str,
    ) -> Vec<Result<Vec<Issued>, DomainError>> {
        // One task does the work around the signatures, one step at a time: on two
        // cores, preparing one batch while committing another put three threads (this
        // task's, the database's, the signing thread) on two cores, and the signing
        // thread waited for a core (issue 11). Keeping the signing thread fed needs no
        // more: recording a batch and beginning the next take less time than signing one.
        let mut batches = batches.into_iter();
        let mut under_way = std::collections::VecDeque::with_capacity(BATCHES_IN_FLIGHT);
        let mut results = Vec::with_capacity(batches.len());
        loop {
            // Stage 1: prepare, lint and record the intents; queue the signatures at once.
            while under_way.len() < BATCHES_IN_FLIGHT {
                let Some(batch) = batches.next() else { break };
                let begun = self
                    .begin_batch(issuer, with_default_use(batch), under_way.is_empty())
                    .await
                    .map(|(begun, tokens)| (begun, issuer.sign_certificates(tokens)));
                under_way.push_back(begun);
            }
            // Stages 2 and 3: await the oldest batch's signatures, record its certificates.
            let Some(oldest) = under_way.pop_front() else { break };
            results.push(match oldest {
                Ok((begun, signing)) => self
                    .finish_batch(issuer, begun, signing, actor, |_| Ok(KeptWith::default()))
                    .await
                    .map(|(issued, _)| issued),
                Err(refused) => Err(refused),
            });
        }
        results
    }

    /// The protocol of [`Authority::issue_batch`], each key with its use; `deliver`
    /// makes, from the signed certificates, what must be stored with them in the same
    /// commit (a .p12 to deliver, the escrowed key), so a server-made key is durable no
    /// later than its certificate.
    async fn issue_batch_with(
        &self,
        issuer: &Issuer,
        requests: Vec<(IssueRequest, AcceptedPublicKey, KeyUse)>,
        actor: &str,
        deliver: impl FnOnce(&[Issued]) -> Result<KeptWith, DomainError> + Send + 'static,
    ) -> Result<(Vec<Issued>, KeptWith), DomainError> {
        let (begun, tokens) = self.begin_batch(issuer, requests, true).await?;
        let signing = issuer.sign_certificates(tokens);
        self.finish_batch(issuer, begun, signing, actor, deliver).await
    }

    /// Steps 0 and 1 of an issuance: every request prepared and linted (if any is
    /// refused, nothing is recorded), then the serials reserved and the intents
    /// recorded in one commit. Returns what [`Authority::finish_batch`] needs and what
    /// is to be signed. `spread`: the caller has nothing of its own queued for the
    /// signing thread (assumed idle: another caller's batch may be signing), so a large
    /// batch is prepared on two threads. This async task waits for the second thread,
    /// as it waited for the whole batch before (about 20 us a certificate).
    async fn begin_batch(
        &self,
        issuer: &Issuer,
        requests: Vec<(IssueRequest, AcceptedPublicKey, KeyUse)>,
        spread: bool,
    ) -> Result<(Begun, Vec<IssuanceToken>), DomainError> {
        // An application gets its certificate in an issuance of its own (with, for a
        // profile that escrows separately, the signing certificate beside it).
        let claims = requests.iter().filter(|(r, _, _)| r.application.is_some()).count();
        if claims > 1 || (claims == 1 && requests.len() > 2) {
            return Err(internal("an application gets its certificates in an issuance of its own"));
        }
        let now = self.clock.now();
        let at = now.unix_timestamp();
        let several = requests.len() > 1;
        let overrides = self.store.profile_validity().await?;
        // One request prepared and linted (`index` for the message when several are).
        let prepare_one = |index: usize, (request, public_key, key_use): (IssueRequest, AcceptedPublicKey, KeyUse)| {
            let prefix = || if several { format!("request {}: ", index + 1) } else { String::new() };
            if let Some(why) = self.config.profile_unavailable(request.input.profile) {
                return Err(DomainError::new(
                    ErrorCode::Config,
                    format!("{}this CA cannot issue {} certificates: {why}", prefix(), request.input.profile),
                ));
            }
            let profile = self.config.profile_with(request.input.profile, &overrides)?;
            let key_kind = public_key.kind().to_string();
            let subscriber = SubscriberRequest {
                person: request.input.person.clone(),
                organization: self.config.organization.clone(),
                public_key,
                key_use,
            };
            let (prepared, token) =
                prepare(&profile, issuer.info(), &subscriber, now, &SystemRandom::new()).map_err(|e| {
                    let code = match e {
                        certdesk_pki::issuance::IssueError::MissingSubjectData { .. } => ErrorCode::Config,
                        _ => ErrorCode::Refused,
                    };
                    // A lint finding or a name too long: refused, nothing signed or recorded.
                    DomainError::new(code, format!("{}{e}", prefix()))
                })?;
            Ok((Pending { request, key_kind, prepared }, token))
        };
        let prepare_from = |offset: usize, requests: Vec<(IssueRequest, AcceptedPublicKey, KeyUse)>| {
            requests.into_iter().enumerate().map(|(i, r)| prepare_one(offset + i, r)).collect::<Result<Vec<_>, _>>()
        };
        let prepared = if spread && requests.len() >= SPREAD_FROM {
            // The signing thread has nothing of ours to sign yet: its core prepares the
            // second half of the batch, so the key starts signing sooner.
            let mut first = requests;
            let offset = first.len() / 2;
            let mut second = Some(first.split_off(offset));
            let (first, second_done) = std::thread::scope(|scope| {
                let slot = &mut second;
                let other = std::thread::Builder::new()
                    .name("ca-prepare".into())
                    .spawn_scoped(scope, || slot.take().map(|second| prepare_from(offset, second)));
                let first = prepare_from(0, first);
                (first, other.ok().and_then(|thread| thread.join().ok().flatten()))
            });
            let second = match (second_done, second) {
                (Some(done), _) => done,
                // No thread could be started: prepared here.
                (None, Some(second)) => prepare_from(offset, second),
                (None, None) => Err(internal("preparing a batch failed: its thread panicked")),
            };
            // The first refusal in the order of the requests.
            let mut all = first?;
            all.extend(second?);
            all
        } else {
            prepare_from(0, requests)?
        };
        let (pending, tokens): (Vec<Pending>, Vec<IssuanceToken>) = prepared.into_iter().unzip();
        let claim = pending.iter().find_map(|p| p.request.application.clone());
        let intents: Vec<IssuanceIntent> = pending
            .iter()
            .map(|p| IssuanceIntent {
                serial: Serial::from_der_bytes(&p.prepared.serial),
                tbs_sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &p.prepared.tbs_der)),
                email: p.request.input.person.email.as_str().to_string(),
                profile: p.request.input.profile,
                not_after: p.prepared.not_after.unix_timestamp(),
                application_id: p.request.application.as_ref().map(|c| c.id.clone()),
                owner: self.owner.to_string(),
                created_at: at,
            })
            .collect();
        // Step 1: the intent, committed before anything is signed (and durable no later
        // than the certificate: see `Store::record_intents`).
        self.store.record_intents(&intents, claim.as_ref(), at).await?;
        crate::recovery::fault_point("intent-recorded");
        Ok((Begun { pending, intents, at }, tokens))
    }

    /// Steps 2 and 3 of an issuance begun by [`Authority::begin_batch`]: the signatures
    /// (`signing`, under way on the issuer's signing thread), then the certificates
    /// recorded. If anything fails, the batch's intents are resolved at once (this
    /// process lives on) rather than at the next start.
    async fn finish_batch(
        &self,
        issuer: &Issuer,
        begun: Begun,
        signing: impl std::future::Future<Output = Result<Vec<IssuedCertificate>, DomainError>>,
        actor: &str,
        deliver: impl FnOnce(&[Issued]) -> Result<KeptWith, DomainError> + Send + 'static,
    ) -> Result<(Vec<Issued>, KeptWith), DomainError> {
        let outcome = self.sign_and_record(issuer, &begun, signing, actor, deliver).await;
        if outcome.is_err() {
            for intent in &begun.intents {
                let _ = crate::recovery::abandon(self, intent, actor, "the issuance failed").await;
            }
        }
        outcome
    }

    async fn sign_and_record(
        &self,
        issuer: &Issuer,
        begun: &Begun,
        signing: impl std::future::Future<Output = Result<Vec<IssuedCertificate>, DomainError>>,
        actor: &str,
        deliver: impl FnOnce(&[Issued]) -> Result<KeptWith, DomainError> + Send + 'static,
    ) -> Result<(Vec<Issued>, KeptWith), DomainError> {
        let Begun { pending, intents, at } = begun;
        let at = *at;
        // The audit records say nothing the signatures decide: made while they are made.
        let mut events: Vec<AuditEvent> = pending
            .iter()
            .zip(intents)
            .map(|(p, intent)| {
                let mut details = json!({
                    "email": intent.email,
                    "profile": intent.profile.name(),
                    "key": p.key_kind,
                    "not_before": p.prepared.not_before.unix_timestamp(),
                    "not_after": intent.not_after,
                    "tbs_sha256": intent.tbs_sha256,
                    "caa": p.request.caa,
                });
                if let (Some(claim), Some(map)) = (&p.request.application, details.as_object_mut()) {
                    map.insert("application".into(), json!(claim.id));
                }
                AuditEvent {
                    actor: actor.to_string(),
                    action: "certificate.issue",
                    subject: intent.serial.to_string(),
                    details,
                }
            })
            .collect();
        // Step 2: the signatures, made on the issuer's signing thread (which goes on with
        // the batches queued behind this one while this task records it).
        let signatures = signing.await?;
        if signatures.len() != pending.len() {
            return Err(internal("the signing thread returned a different number of certificates"));
        }
        let mut records = Vec::with_capacity(pending.len());
        for (p, signed) in pending.iter().zip(signatures) {
            records.push(CertificateRecord {
                serial: Serial::from_der_bytes(&p.prepared.serial),
                email: p.request.input.person.email.as_str().to_string(),
                subject: p.prepared.subject.clone(),
                profile: p.request.input.profile,
                key_kind: p.key_kind.clone(),
                not_before: p.prepared.not_before.unix_timestamp(),
                not_after: p.prepared.not_after.unix_timestamp(),
                der: signed.der,
                issued_at: at,
                revoked_at: None,
                revocation_reason: None,
            });
        }
        crate::recovery::fault_point("signed");
        let chain = issuer.chain().to_vec();
        let issued: Vec<Issued> = records.into_iter().map(|record| Issued { record, chain: chain.clone() }).collect();
        let kept = if issued.len() <= 2 {
            // Off the async threads: a .p12 costs two PBKDF2 runs.
            let all = issued.clone();
            blocking(move || deliver(&all)).await??
        } else {
            KeptWith::default()
        };
        if let Some(escrowed) = &kept.escrowed {
            let event = events.iter_mut().find(|e| e.subject == escrowed.serial);
            if let Some(details) = event.and_then(|e| e.details.as_object_mut()) {
                details.insert("escrow_key".into(), json!(escrowed.key_id));
            }
        }
        if let Some(delivery) = &kept.delivery {
            // The certificates of one .p12 name each other in their audit records.
            for event in events.iter_mut() {
                let others: Vec<String> = std::iter::once(delivery.serial.to_string())
                    .chain(delivery.companions.iter().map(|s| s.to_string()))
                    .filter(|s| *s != event.subject)
                    .collect();
                if let (false, Some(details)) = (others.is_empty(), event.details.as_object_mut()) {
                    details.insert("issued_with".into(), json!(others));
                }
            }
        }
        // Step 3: the certificates, their audit records (and a .p12 to deliver, the
        // escrowed key), durable before anyone receives a certificate.
        let certificates: Vec<&CertificateRecord> = issued.iter().map(|i| &i.record).collect();
        self.store.record_issued(&certificates, &events, at, kept.delivery.as_ref(), kept.escrowed.as_ref()).await?;
        crate::recovery::fault_point("recorded");
        Ok((issued, kept))
    }

    /// How the server-made keys of `profile` are escrowed (issue 15): the profile's mode
    /// with the escrow key they go to, or `None` if the profile does not escrow.
    ///
    /// # Errors
    /// [`ErrorCode::Config`] if the profile escrows but no escrow key is in use.
    pub async fn escrow_key_for(
        &self,
        profile: ProfileId,
    ) -> Result<Option<(EscrowMode, EscrowKeyRecord)>, DomainError> {
        match self.store.escrow_mode(profile.name()).await? {
            EscrowMode::Off => Ok(None),
            mode @ (EscrowMode::On | EscrowMode::Separate) => match self.store.current_escrow_key().await? {
                Some(key) => Ok(Some((mode, key))),
                None => Err(DomainError::new(
                    ErrorCode::Config,
                    format!(
                        "the {profile} profile escrows the keys the desk makes, but there is no escrow key: an \
                         administrator creates one with `certdesk escrow init` (or turns escrow off with \
                         `certdesk escrow profile {profile} off`); nothing was issued"
                    ),
                )),
            },
        }
    }

    /// Generates the key on the server, issues, and returns the certificates and the
    /// .p12 bytes. The password is checked before anything is generated or signed. The
    /// .p12 is stored with the certificates (it is encrypted under the subscriber's
    /// password) until [`Authority::delivered`] says it reached the subscriber;
    /// `destination` names the file a command line delivers it to (see
    /// [`crate::recovery`]).
    ///
    /// If the profile escrows ([`Authority::escrow_key_for`]), the key is encrypted to
    /// the escrow certificate (CMS AuthEnvelopedData, AES-256-GCM) and stored in the
    /// commit of its certificate; a profile that escrows without an escrow key is
    /// refused before anything is generated. A profile that escrows `separate`ly gets
    /// two keys, each with its certificate, in the one .p12: the first for key
    /// management only (escrowed), the second for signing only (never escrowed).
    pub async fn issue_with_generated_key(
        &self,
        issuer: &Issuer,
        request: IssueRequest,
        key: KeyAlgorithm,
        delivery: Pkcs12Delivery,
        destination: Option<&Path>,
        actor: &str,
    ) -> Result<(Vec<Issued>, Vec<u8>), DomainError> {
        let person = &request.input.person;
        let personal = [person.email.local_part(), person.given_name.as_str(), person.surname.as_str()];
        check_strength(&delivery.password, &personal)
            .map_err(|e| DomainError::new(ErrorCode::Refused, format!(".p12 password: {e}")))?;
        let name = format!("{} ({})", person.personal_name(), person.email);
        let (separate, escrow) = match self.escrow_key_for(request.input.profile).await? {
            Some((mode, key)) => (mode == EscrowMode::Separate, Some(key)),
            None => (false, None),
        };
        let keys = blocking(move || -> Result<Vec<PrivateKey>, certdesk_pki::key::KeyError> {
            (0..if separate { 2 } else { 1 }).map(|_| PrivateKey::generate(key)).collect()
        })
        .await?
        .map_err(internal)?;
        let mut requests = Vec::with_capacity(keys.len());
        for (i, private) in keys.iter().enumerate() {
            let public_key = private.accepted_public_key().map_err(internal)?;
            let (request, key_use) = match (separate, i) {
                (false, _) => (request.clone(), KeyUse::SigningAndEncryption),
                (true, 0) => (request.clone(), KeyUse::KeyManagementOnly),
                // The signing certificate belongs to the application through the other.
                (true, _) => (IssueRequest { application: None, ..request.clone() }, KeyUse::SigningOnly),
            };
            requests.push((request, public_key, key_use));
        }
        let iterations = self.config.pkcs12_iterations;
        let application_id = request.application.as_ref().map(|c| c.id.clone());
        let destination = destination.map(|p| p.display().to_string());
        let owner = self.owner.to_string();
        let created_at = self.clock.now().unix_timestamp();
        let (issued, kept) = self
            .issue_batch_with(issuer, requests, actor, move |issued| {
                let [first, others @ ..] = issued else { return Err(internal("nothing was issued")) };
                let options = pkcs12::WriteOptions { format: delivery.format, iterations, friendly_name: None };
                let names: Vec<String> =
                    if separate { vec![format!("{name} encryption"), format!("{name} signing")] } else { vec![name] };
                let bundles: Vec<pkcs12::Bundle<'_>> = keys
                    .iter()
                    .zip(issued)
                    .zip(&names)
                    .map(|((key, cert), name)| pkcs12::Bundle {
                        key_pkcs8_der: key.pkcs8_der(),
                        cert_der: &cert.record.der,
                        friendly_name: Some(name),
                    })
                    .collect();
                let p12 = pkcs12::write_all(&bundles, &first.chain, &delivery.password, &options, &SystemRandom::new())
                    .map_err(internal)?;
                // The first key is the one that encrypts: the escrowed one.
                let escrowed = match (&escrow, keys.first()) {
                    (Some(escrow), Some(key)) => Some(EscrowedKeyRecord {
                        serial: first.record.serial.as_str().to_string(),
                        key_id: escrow.key_id.clone(),
                        blob: escrow_blob(key.pkcs8_der(), &escrow.certificate)?,
                        created_at,
                    }),
                    _ => None,
                };
                let delivery = Some(PendingDelivery {
                    serial: first.record.serial.clone(),
                    application_id,
                    destination,
                    sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &p12)),
                    pkcs12: p12,
                    owner,
                    created_at,
                    handed_out_at: None,
                    wrong_tries: 0,
                    wrong_since: None,
                    companions: others.iter().map(|o| o.record.serial.clone()).collect(),
                });
                Ok(KeptWith { delivery, escrowed })
            })
            .await?;
        let p12 = kept.delivery.map(|d| d.pkcs12).ok_or_else(|| internal("the .p12 was not made"))?;
        Ok((issued, p12))
    }

    /// Marks the .p12 of `serial` delivered (its file written): the stored copy is
    /// deleted. `false` if it was gone: recovery, believing this process dead, revoked
    /// the certificate meanwhile.
    pub async fn delivered(&self, serial: &str) -> Result<bool, DomainError> {
        self.store.delete_pending_delivery(serial).await
    }

    /// Revokes a certificate.
    pub async fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
        actor: &str,
    ) -> Result<CertificateRecord, DomainError> {
        self.revoke_noted(serial, reason, actor, None).await
    }

    /// [`Authority::revoke`] with a note for the audit record (why the CA revoked).
    pub async fn revoke_noted(
        &self,
        serial: &str,
        reason: RevocationReason,
        actor: &str,
        note: Option<&str>,
    ) -> Result<CertificateRecord, DomainError> {
        let serial = normalize_serial(serial)?;
        let record = self.store.certificate(&serial).await?.ok_or_else(|| {
            DomainError::new(ErrorCode::NotFound, format!("no certificate with serial {serial} was issued by this CA"))
        })?;
        if let Some(at) = record.revoked_at {
            return Err(already_revoked(&serial, at));
        }
        let now = self.clock.now().unix_timestamp();
        let event = AuditEvent {
            actor: actor.to_string(),
            action: "certificate.revoke",
            subject: serial.clone(),
            details: match note {
                None => json!({ "reason": reason.name(), "email": record.email }),
                Some(note) => json!({ "reason": reason.name(), "email": record.email, "note": note }),
            },
        };
        let changed = self.store.revoke(&serial, now, reason, &|seq, prev| seal(&event, now, seq, prev)).await?;
        if !changed {
            return Err(already_revoked(&serial, now));
        }
        Ok(CertificateRecord { revoked_at: Some(now), revocation_reason: Some(reason), ..record })
    }

    /// Re-signs the root's CRL of CA certificates with the next crlNumber (the root key
    /// is unlocked with `passphrase` for this alone), writes it to `DATA/ca/root.crl`
    /// and records it in the audit log. Due at least every twelve months (BR 4.9.7);
    /// `serve` warns a month ahead.
    pub async fn issue_root_crl(&self, passphrase: Zeroizing<String>, actor: &str) -> Result<CrlRecord, DomainError> {
        let now = self.clock.now().replace_nanosecond(0).map_err(internal)?;
        let data = self.data.clone();
        let config = self.config.clone();
        if !self.data.root_key().is_file() {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                "the root key is not on this machine (an offline root): sign the root CRL at the key ceremony \
                 (`certdesk ceremony sign-root-crl`) and install it here with `certdesk ca install-root-crl FILE`",
            ));
        }
        // After a restore, the numbers the lost days may have used are skipped.
        let floor = self.store.number_floor("root_crl").await?.unwrap_or(0);
        let der = blocking(move || -> Result<Vec<u8>, DomainError> {
            let root_key = crate::issuer::unlock_ca_key(&read(&data.root_key())?, &passphrase)?
                .with_rsa_pss(config.raw.ca.rsa_pss)?;
            let root_der = read_cert_pem(&read(&data.root_cert())?)?;
            // The next number after the current CRL's (1 when there is none yet).
            let number = match std::fs::read(data.root_crl()) {
                Ok(bytes) => read_root_crl(&bytes)?.0 + 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
                Err(e) => return Err(DomainError::new(ErrorCode::DataDir, format!("cannot read the root CRL: {e}"))),
            };
            let number = number.max(floor.try_into().unwrap_or(0));
            let der = sign_root_crl(&root_der, &root_key, &config, number, now)?;
            certdesk_core::datadir::replace(&data.root_crl(), &der)?;
            Ok(der)
        })
        .await??;
        let (number, _, next_update) = read_root_crl(&der)?;
        let number = i64::try_from(number).map_err(internal)?;
        let event = AuditEvent {
            actor: actor.to_string(),
            action: "crl.root",
            subject: "root".to_string(),
            details: json!({ "crl_number": number, "sha256": hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der)) }),
        };
        let at = now.unix_timestamp();
        self.store.append_audit(&|seq, prev| seal(&event, at, seq, prev)).await?;
        Ok(CrlRecord { number, der, this_update: at, next_update })
    }

    /// The newest CRL if it is still current: signed less than a day ago (`serve`
    /// re-signs daily, so a CRL handed out lasts six days or more), and no certificate
    /// revoked since that it does not list. `None` when a new one is needed.
    pub async fn current_crl(&self) -> Result<Option<CrlRecord>, DomainError> {
        let now = self.clock.now().unix_timestamp();
        let Some(latest) = self.store.latest_crl().await? else { return Ok(None) };
        if latest.next_update <= now || now - latest.this_update >= CRL_REISSUE_HOURS * 3600 {
            return Ok(None);
        }
        // Revoked in the CRL's second or later: out of date unless the CRL lists it (a
        // revocation and a CRL can share a second). Serials compare without the leading
        // zero byte of DER.
        let revoked_since: Vec<String> = self
            .store
            .status_changes_since(latest.this_update)
            .await?
            .into_iter()
            .filter(|c| c.revoked_at.is_some_and(|at| at >= latest.this_update))
            .map(|c| c.serial.trim_start_matches("00").to_string())
            .collect();
        if revoked_since.is_empty() {
            return Ok(Some(latest));
        }
        let listed = crl_serials(&latest.der)?;
        Ok(revoked_since.iter().all(|s| listed.contains(s)).then_some(latest))
    }

    /// The root's CRL of CA certificates (`DATA/ca/root.crl`) while more than
    /// [`ROOT_CRL_RENEW_DAYS`] remain before its nextUpdate (when `serve` starts to warn);
    /// `None` when there is none or it is due to be re-signed. A damaged file is an error.
    pub async fn current_root_crl(&self) -> Result<Option<CrlRecord>, DomainError> {
        let now = self.clock.now().unix_timestamp();
        let bytes = match std::fs::read(self.data.root_crl()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DomainError::new(ErrorCode::DataDir, format!("cannot read the root CRL: {e}"))),
        };
        let (number, this_update, next_update) = read_root_crl(&bytes)?;
        if next_update - now <= ROOT_CRL_RENEW_DAYS * 86_400 {
            return Ok(None);
        }
        let number = i64::try_from(number).map_err(internal)?;
        Ok(Some(CrlRecord { number, this_update, next_update, der: bytes }))
    }

    /// Issues a new CRL (next crlNumber) listing every revoked, unexpired certificate.
    pub async fn issue_crl(&self, issuer: &Issuer, actor: &str) -> Result<CrlRecord, DomainError> {
        // Two processes may take the same crlNumber; the loser signs again with the
        // next one (and the revocations as they are then).
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_issue_crl(issuer, actor).await {
                Err(e) if e.code() == ErrorCode::Contention && attempt < CRL_NUMBER_ATTEMPTS => continue,
                other => return other,
            }
        }
    }

    async fn try_issue_crl(&self, issuer: &Issuer, actor: &str) -> Result<CrlRecord, DomainError> {
        let now = self.clock.now().replace_nanosecond(0).map_err(internal)?;
        // The number before the revocations: a CRL that gets a higher number read them
        // later, so it never lists fewer (a tie is settled by the unique number).
        let number = self.store.next_crl_number().await?;
        let revoked = self.store.revoked_unexpired(now.unix_timestamp()).await?;
        let mut entries = Vec::with_capacity(revoked.len());
        for r in &revoked {
            entries.push(RevokedEntry {
                serial: hex::decode(r.serial.as_str()).map_err(internal)?,
                revoked_at: OffsetDateTime::from_unix_timestamp(r.revoked_at).map_err(internal)?,
                reason: r.reason,
            });
        }
        let next_update = now + time::Duration::days(CRL_DAYS);
        let der = crate::issuer::blocking_signature(|| {
            issuer.sign_crl(&CrlContent {
                number: u64::try_from(number).map_err(internal)?,
                this_update: now,
                next_update,
                entries: &entries,
            })
        })?;
        let record =
            CrlRecord { number, this_update: now.unix_timestamp(), next_update: next_update.unix_timestamp(), der };
        let event = AuditEvent {
            actor: actor.to_string(),
            action: "crl.issue",
            subject: number.to_string(),
            details: json!({ "entries": entries.len(), "next_update": record.next_update }),
        };
        let at = now.unix_timestamp();
        self.store.insert_crl(&record, &|seq, prev| seal(&event, at, seq, prev)).await?;
        Ok(record)
    }

    /// Checks the audit log's hash chain.
    pub async fn verify_audit(&self) -> Result<VerifiedChain, DomainError> {
        let rows = self.store.audit_log().await?;
        verify(&rows).map_err(|e| DomainError::new(ErrorCode::AuditBroken, e.to_string()))
    }

    /// [`Authority::verify_audit`], and that the log still holds `checkpoint` (a head
    /// noted earlier) unchanged: records cut off the end show here.
    pub async fn verify_audit_since(
        &self,
        checkpoint: &certdesk_core::audit::Checkpoint,
    ) -> Result<VerifiedChain, DomainError> {
        let rows = self.store.audit_log().await?;
        certdesk_core::audit::verify_with_checkpoint(&rows, checkpoint)
            .map_err(|e| DomainError::new(ErrorCode::AuditBroken, e.to_string()))
    }
}

/// Requests whose keys both sign and encrypt (the default [`KeyUse`]).
fn with_default_use(
    requests: Vec<(IssueRequest, AcceptedPublicKey)>,
) -> Vec<(IssueRequest, AcceptedPublicKey, KeyUse)> {
    requests.into_iter().map(|(r, k)| (r, k, KeyUse::default())).collect()
}

/// A prepared request waiting for its signature.
struct Pending {
    request: IssueRequest,
    key_kind: String,
    prepared: PreparedCertificate,
}

/// A batch whose intents are recorded: step 1 of an issuance done.
struct Begun {
    pending: Vec<Pending>,
    intents: Vec<IssuanceIntent>,
    at: i64,
}

/// How many days before the root CRL's nextUpdate `serve` warns and `certdesk crl --root`
/// re-signs it.
pub const ROOT_CRL_RENEW_DAYS: i64 = 30;

/// Validity of the root's CRL of CA certificates: the BR 4.9.7 maximum (twelve months),
/// less a week, so a CRL re-signed on schedule is never late.
const ROOT_CRL_DAYS: i64 = certdesk_pki::crl::MAX_CA_CRL_VALIDITY_DAYS - 7;

/// Signs the root's CRL of CA certificates with `number`. No CA certificate is ever
/// revoked by certdesk (a compromised issuing CA means a new CA), so it is empty.
pub(crate) fn sign_root_crl(
    root_der: &[u8],
    root_key: &dyn Signer,
    config: &ValidatedConfig,
    number: u64,
    now: OffsetDateTime,
) -> Result<Vec<u8>, DomainError> {
    let info = certdesk_pki::issuance::IssuerInfo::from_certificate(
        root_der,
        root_key.signature_algorithm(),
        config.urls.clone(),
    )
    .map_err(internal)?;
    let content =
        CrlContent { number, this_update: now, next_update: now + time::Duration::days(ROOT_CRL_DAYS), entries: &[] };
    certdesk_pki::crl::build_ca_crl(&info, &content, root_key).map_err(internal)
}

/// A warning for `serve` when the root's CRL of CA certificates is missing or due within
/// 30 days (it must be re-signed with `certdesk crl --root`); `None` when it is current.
pub fn root_crl_warning(data: &DataDir, now: OffsetDateTime) -> Option<String> {
    let path = data.root_crl();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(_) => return Some(format!("there is no root CRL at {}: run `certdesk crl --root`", path.display())),
    };
    let Ok((_, _, next_update)) = read_root_crl(&bytes) else {
        return Some(format!("the root CRL at {} is damaged: run `certdesk crl --root`", path.display()));
    };
    let left = next_update - now.unix_timestamp();
    (left <= ROOT_CRL_RENEW_DAYS * 86_400).then(|| {
        format!(
            "the root CRL expires in {} days: run `certdesk crl --root` before then (BR 4.9.7)",
            left.max(0) / 86_400
        )
    })
}

/// The serials a CRL lists, lower-case hex without a leading zero byte.
fn crl_serials(der: &[u8]) -> Result<Vec<String>, DomainError> {
    use der::Decode;
    let crl = x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
        .map_err(|e| DomainError::new(ErrorCode::Internal, format!("a stored CRL does not decode: {e}")))?;
    Ok(crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|entry| hex::encode(entry.serial_number.as_bytes()).trim_start_matches("00").to_string())
        .collect())
}

use certdesk_core::records::read_root_crl;
pub use certdesk_core::records::root_crl_dates;

fn already_revoked(serial: &str, at: i64) -> DomainError {
    let when = crate::status::unix_text(at);
    DomainError::new(ErrorCode::AlreadyRevoked, format!("certificate {serial} is already revoked (since {when})"))
}

/// Creates a demo data directory for `certdesk serve` on a fresh machine: a local demo
/// CA whose passphrase is generated and kept in `DATA/ca-passphrase` (0600). Never for
/// production: there the passphrase must not sit next to the keys.
pub async fn init_demo(data: &DataDir, base_url: &str, clock: &dyn Clock) -> Result<(), DomainError> {
    let mut random = [0u8; 24];
    aws_lc_rs::rand::fill(&mut random).map_err(internal)?;
    let passphrase = Zeroizing::new(hex::encode(random));
    let options = InitOptions {
        organization: "certdesk demo".into(),
        country: "DE".into(),
        organization_identifier: Some("VATDE-000000000".into()),
        base_url: base_url.to_string(),
        key: KeyAlgorithm::P384,
        database_url: None,
        pkcs11: None,
        offline_root: None,
        rsa_pss: false,
    };
    init(data, options, passphrase.clone(), clock, "system:serve-demo").await?;
    write(&data.demo_passphrase(), format!("{}\n", passphrase.as_str()).as_bytes(), true)
}
