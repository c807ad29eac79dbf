//! The certificate authority's operations: `init`, issue, revoke, CRL, audit check.
//!
//! Each operation validates first, changes state in one database transaction together
//! with its audit record, and leaves nothing behind when it fails.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use certdesk_pki::crl::{CrlContent, RevocationReason, RevokedEntry};
use certdesk_pki::issuance::{
    build_ca_certificate, prepare, CaCertificateRequest, IssuanceToken, IssuerInfo, PreparedCertificate,
    SubscriberRequest,
};
use certdesk_pki::key::{AcceptedPublicKey, KeyAlgorithm, PrivateKey, Signer};
use certdesk_pki::password::check_strength;
use certdesk_pki::pkcs12;
use certdesk_pki::profile::{ProfileId, SubscriberProfile};
use certdesk_pki::subject::{ca_name, EmailAddress, NameField, Person};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{seal, verify, AuditEvent, VerifiedChain};
use crate::clock::Clock;
use crate::config::{CaSection, Config, ValidatedConfig};
use crate::datadir::{read, write, DataDir};
use crate::error::{DomainError, ErrorCode};
use crate::issuer::{read_cert_pem, Issuer};
use crate::store::{CertificateRecord, CrlRecord, Store};
use crate::workflow::{Application, Event};

/// Validity of the root CA (20 years) and the issuing CA (10 years).
const ROOT_DAYS: i64 = 7305;
const ISSUING_DAYS: i64 = 3653;
/// CRLs are valid 7 days (BR 4.9.7 allows at most 10).
const CRL_DAYS: i64 = 7;

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
}

/// What `init` made.
#[derive(Clone, Debug)]
pub struct InitReport {
    /// Root CA certificate (DER).
    pub root_der: Vec<u8>,
    /// Issuing CA certificate (DER).
    pub issuing_der: Vec<u8>,
}

pub(crate) fn internal(e: impl std::fmt::Display) -> DomainError {
    DomainError::new(ErrorCode::Internal, e.to_string())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, DomainError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

pub(crate) fn pem(label: &'static str, der: &[u8]) -> Result<String, DomainError> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).map_err(internal)
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
    if !matches!(options.key, KeyAlgorithm::P384 | KeyAlgorithm::Rsa4096) {
        return Err(DomainError::new(ErrorCode::Refused, "the CA key must be p384 or rsa4096"));
    }
    check_strength(&passphrase, &[])
        .map_err(|e| DomainError::new(ErrorCode::Refused, format!("CA passphrase: {e}")))?;
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
        },
        profiles: Default::default(),
        pkcs12: Default::default(),
        database: crate::config::DatabaseSection { url: options.database_url.clone() },
        portal: Default::default(),
        mail: Default::default(),
        audit: Default::default(),
    };
    let validated = config.clone().validate()?;

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
    let alg = options.key;
    let (root_key, issuing_key) = blocking(move || {
        Ok::<_, certdesk_pki::key::KeyError>((PrivateKey::generate(alg)?, PrivateKey::generate(alg)?))
    })
    .await?
    .map_err(internal)?;
    let org = &validated.organization;
    let now = clock.now().replace_nanosecond(0).map_err(internal)?;
    let rng = SystemRandom::new();
    let root_name = ca_name(&format!("{} S/MIME Root CA", org.name.as_str()), org).map_err(internal)?;
    let issuing_name = ca_name(&format!("{} S/MIME Issuing CA", org.name.as_str()), org).map_err(internal)?;
    let root_der = build_ca_certificate(
        &CaCertificateRequest {
            subject: root_name.clone(),
            public_key: root_key.public_key().clone(),
            not_before: now,
            not_after: now + time::Duration::days(ROOT_DAYS),
            path_len: None,
            email_protection_only: false,
            crl_url: None,
        },
        None,
        &root_key,
        &rng,
    )
    .map_err(internal)?;
    let root_key_id = certdesk_pki::key::key_identifier(root_key.public_key());
    let issuing_der = build_ca_certificate(
        &CaCertificateRequest {
            subject: issuing_name,
            public_key: issuing_key.public_key().clone(),
            not_before: now,
            not_after: now + time::Duration::days(ISSUING_DAYS),
            path_len: Some(0),
            email_protection_only: true,
            crl_url: Some(validated.root_crl_url.clone()),
        },
        Some((&root_name, &root_key_id)),
        &root_key,
        &rng,
    )
    .map_err(internal)?;

    // The root's CRL of CA certificates (empty), named in the issuing CA certificate.
    let root_crl = sign_root_crl(&root_der, &root_key, validated, 1, now)?;

    let ocsp_key = PrivateKey::generate(KeyAlgorithm::P256).map_err(internal)?;
    let issuing_info =
        IssuerInfo::from_certificate(&issuing_der, issuing_key.signature_algorithm(), validated.urls.clone())
            .map_err(internal)?;
    let ocsp_der = crate::issuer::certify_ocsp_responder(&issuing_info, &issuing_key, ocsp_key.public_key(), org, now)?;

    let pass = passphrase.to_string();
    let (root_pem, issuing_pem, ocsp_pem) = blocking(move || -> Result<(String, String, String), DomainError> {
        Ok((encrypt_key(&root_key, &pass)?, encrypt_key(&issuing_key, &pass)?, encrypt_key(&ocsp_key, &pass)?))
    })
    .await??;
    write(&data.ocsp_key(), ocsp_pem.as_bytes(), true)?;
    write(&data.ocsp_cert(), pem("CERTIFICATE", &ocsp_der)?.as_bytes(), false)?;
    write(&data.root_key(), root_pem.as_bytes(), true)?;
    write(&data.issuing_key(), issuing_pem.as_bytes(), true)?;
    write(&data.root_cert(), pem("CERTIFICATE", &root_der)?.as_bytes(), false)?;
    write(&data.issuing_cert(), pem("CERTIFICATE", &issuing_der)?.as_bytes(), false)?;
    write(&data.root_crl(), &root_crl, false)?;
    write(&data.config(), config.to_toml()?.as_bytes(), false)?;

    let url = config.database.url.clone().unwrap_or_else(|| data.sqlite_url());
    let store = Store::open(&url).await?;
    if store.holds_records().await? {
        store.close().await;
        return Err(DomainError::new(
            ErrorCode::DataDir,
            "the database already holds a certdesk CA; give init an empty database",
        ));
    }
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "ca.init",
        subject: org.name.as_str().to_string(),
        details: json!({
            "root_sha256": hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &root_der)),
            "issuing_sha256": hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &issuing_der)),
            "key": alg.name(),
        }),
    };
    let at = now.unix_timestamp();
    let appended = store.append_audit(&|seq, prev| seal(&event, at, seq, prev)).await;
    store.close().await;
    appended?;
    Ok(InitReport { root_der, issuing_der })
}

/// An opened data directory: config and database; the CA key stays locked until
/// [`Authority::unlock`].
pub struct Authority {
    data: DataDir,
    config: ValidatedConfig,
    store: Store,
    clock: Arc<dyn Clock>,
    /// CAA checking before issuance (`[ca] caa = "check"`).
    caa: Option<crate::caa::CaaCheck>,
}

/// A certificate just issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The stored record.
    pub record: CertificateRecord,
    /// Issuing CA then root (DER), for a chain file or a .p12.
    pub chain: Vec<Vec<u8>>,
}

/// How to issue.
#[derive(Clone, Debug)]
pub struct IssueInput {
    /// The validated person.
    pub person: Person,
    /// The profile.
    pub profile: ProfileId,
}

/// The password and format of a .p12 to deliver.
pub struct Pkcs12Delivery {
    /// Chosen by the subscriber; checked for strength, never stored or logged.
    pub password: Zeroizing<String>,
    /// `modern` or `compat`.
    pub format: pkcs12::Format,
}

/// Lower-case hex without separators; accepts `:` separated and upper case input.
pub fn normalize_serial(input: &str) -> Result<String, DomainError> {
    let cleaned: String = input.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    let cleaned = cleaned.trim_start_matches("0x").to_string();
    if cleaned.is_empty() || cleaned.len() > 42 || !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(DomainError::new(ErrorCode::BadInput, format!("{input:?} is not a serial number in hex")));
    }
    Ok(cleaned)
}

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
        let caa = config.caa.as_ref().map(|settings| {
            let resolvers = if settings.resolvers.is_empty() {
                crate::caa::CaaCheck::system_resolvers()
            } else {
                settings.resolvers.clone()
            };
            crate::caa::CaaCheck::new(resolvers, settings.identities.clone(), std::time::Duration::from_secs(5))
        });
        Ok(Self { data, config, store, clock, caa })
    }

    /// What CAA says about issuing for mailboxes at `domain` (`[ca] caa`; see
    /// [`crate::caa`]): the note for the audit record, or the refusal.
    pub async fn check_caa(&self, domain: &str) -> Result<String, DomainError> {
        match &self.caa {
            Some(check) => check.check(domain).await,
            None => Ok("not checked ([ca] caa = off)".to_string()),
        }
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

    /// Issuing CA then root, DER; needs no passphrase.
    pub fn chain(&self) -> Result<Vec<Vec<u8>>, DomainError> {
        Ok(vec![read_cert_pem(&read(&self.data.issuing_cert())?)?, read_cert_pem(&read(&self.data.root_cert())?)?])
    }

    /// Unlocks the issuing CA key (PBKDF2 with 600,000 iterations: run off the async
    /// threads).
    pub async fn unlock(&self, passphrase: Zeroizing<String>) -> Result<Issuer, DomainError> {
        let data = self.data.clone();
        let urls = self.config.urls.clone();
        blocking(move || Issuer::unlock(&data, &passphrase, urls)).await?
    }

    /// A profile as issuance uses it: certdesk.toml's, with the validity an administrator
    /// set on the portal (`overrides`, from [`Store::profile_validity`]) if any.
    fn profile(&self, id: ProfileId, overrides: &[(String, i64)]) -> Result<SubscriberProfile, DomainError> {
        let configured = self.config.profile(id)?;
        match overrides.iter().find(|(name, _)| name == id.name()) {
            Some((_, days)) => configured
                .with_validity(u32::try_from(*days).unwrap_or(0))
                .map_err(|e| DomainError::new(ErrorCode::Config, format!("the validity set on the portal: {e}"))),
            None => Ok(configured.clone()),
        }
    }

    /// Profiles with the validity issuance uses now: (profile, days, set on the portal).
    pub async fn profile_settings(&self) -> Result<Vec<(ProfileId, u32, bool)>, DomainError> {
        let overrides = self.store.profile_validity().await?;
        let mut out = Vec::new();
        for id in ProfileId::ALL {
            if let Ok(profile) = self.profile(id, &overrides) {
                let set = overrides.iter().any(|(name, _)| name == id.name());
                out.push((id, profile.validity_days(), set));
            }
        }
        Ok(out)
    }

    /// Sets a profile's validity for all future issuance (checked against the profile's
    /// bounds: 825 days for the BR profiles), audited.
    pub async fn set_profile_validity(&self, id: ProfileId, days: u32, actor: &str) -> Result<(), DomainError> {
        self.config
            .profile(id)?
            .with_validity(days)
            .map_err(|e| DomainError::new(ErrorCode::Refused, e.to_string()))?;
        let at = self.clock.now().unix_timestamp();
        let event = AuditEvent {
            actor: actor.to_string(),
            action: "profile.validity",
            subject: id.name().to_string(),
            details: json!({ "validity_days": days }),
        };
        self.store
            .set_profile_validity(id.name(), i64::from(days), actor, at, &|seq, prev| seal(&event, at, seq, prev))
            .await
    }

    /// Issues a certificate for a key the subscriber holds (from a validated CSR).
    pub async fn issue(
        &self,
        issuer: &Issuer,
        input: &IssueInput,
        public_key: AcceptedPublicKey,
        actor: &str,
    ) -> Result<Issued, DomainError> {
        let mut issued = self.issue_batch(issuer, vec![(input.clone(), public_key)], actor).await?;
        issued.pop().ok_or_else(|| internal("an issuance of one returned nothing"))
    }

    /// Issues several certificates with one durable commit (group commit): every
    /// request is prepared and linted first, and if any is refused nothing is signed.
    /// Then serials are reserved, all are signed, stored and audited in one transaction.
    pub async fn issue_batch(
        &self,
        issuer: &Issuer,
        requests: Vec<(IssueInput, AcceptedPublicKey)>,
        actor: &str,
    ) -> Result<Vec<Issued>, DomainError> {
        self.issue_batch_for(issuer, requests, actor, None).await
    }

    /// Issues the certificate of an approved application for a key the applicant holds.
    /// The application moves to `issued` in the same transaction (never twice).
    pub async fn issue_for_application(
        &self,
        issuer: &Issuer,
        app: &Application,
        public_key: AcceptedPublicKey,
        actor: &str,
    ) -> Result<Issued, DomainError> {
        let input = application_input(app)?;
        let mut issued = self.issue_batch_for(issuer, vec![(input, public_key)], actor, Some(app)).await?;
        issued.pop().ok_or_else(|| internal("an issuance of one returned nothing"))
    }

    async fn issue_batch_for(
        &self,
        issuer: &Issuer,
        requests: Vec<(IssueInput, AcceptedPublicKey)>,
        actor: &str,
        app: Option<&Application>,
    ) -> Result<Vec<Issued>, DomainError> {
        if app.is_some() && requests.len() != 1 {
            return Err(internal("an application gets exactly one certificate"));
        }
        // CAA (S/MIME BR 3.2.2.3) for every mailbox domain, before anything is prepared.
        let mut caa = std::collections::BTreeMap::new();
        for (input, _) in &requests {
            let domain = input.person.email.domain().to_string();
            if caa.contains_key(&domain) {
                continue;
            }
            let note = self.check_caa(&domain).await?;
            caa.insert(domain, note);
        }
        let now = self.clock.now();
        let at = now.unix_timestamp();
        let rng = SystemRandom::new();
        let several = requests.len() > 1;
        let overrides = self.store.profile_validity().await?;
        let mut pending = Vec::with_capacity(requests.len());
        for (index, (input, public_key)) in requests.into_iter().enumerate() {
            let profile = self.profile(input.profile, &overrides)?;
            let profile = &profile;
            let key_kind = public_key.kind().to_string();
            let request = SubscriberRequest {
                person: input.person.clone(),
                organization: self.config.organization.clone(),
                public_key,
            };
            let (prepared, token) = prepare(profile, issuer.info(), &request, now, &rng).map_err(|e| {
                let code = match e {
                    certdesk_pki::issuance::IssueError::MissingSubjectData { .. } => ErrorCode::Config,
                    _ => ErrorCode::Refused,
                };
                let prefix = if several { format!("request {}: ", index + 1) } else { String::new() };
                DomainError::new(code, format!("{prefix}{e}"))
            })?;
            pending.push(Pending { input, key_kind, prepared, token: Some(token) });
        }
        let serials: Vec<String> = pending.iter().map(|p| hex::encode(&p.prepared.serial)).collect();
        let events: Vec<AuditEvent> = pending
            .iter()
            .zip(&serials)
            .map(|(p, serial)| AuditEvent {
                actor: actor.to_string(),
                action: "certificate.issue",
                subject: serial.clone(),
                details: json!({
                    "email": p.input.person.email.as_str(),
                    "profile": p.input.profile.name(),
                    "key": p.key_kind,
                    "not_before": p.prepared.not_before.unix_timestamp(),
                    "not_after": p.prepared.not_after.unix_timestamp(),
                    "tbs_sha256": hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &p.prepared.tbs_der)),
                    "caa": caa.get(p.input.person.email.domain()),
                }),
            })
            .collect();
        let sign = |index: usize| -> Result<CertificateRecord, DomainError> {
            let p = pending.get_mut(index).ok_or_else(|| internal("no such request"))?;
            let token = p.token.take().ok_or_else(|| internal("a request was signed twice"))?;
            let issued = issuer.sign_certificate(token)?;
            Ok(CertificateRecord {
                serial: hex::encode(&p.prepared.serial),
                email: p.input.person.email.as_str().to_string(),
                subject: p.prepared.subject.clone(),
                profile: p.input.profile.name().to_string(),
                key_kind: p.key_kind.clone(),
                not_before: p.prepared.not_before.unix_timestamp(),
                not_after: p.prepared.not_after.unix_timestamp(),
                der: issued.der,
                issued_at: at,
                revoked_at: None,
                revocation_reason: None,
            })
        };
        let issued_app = match (app, serials.first()) {
            (Some(app), Some(serial)) => Some(
                app.apply(&Event::Issued { serial: serial.clone(), at })
                    .map_err(|e| DomainError::new(ErrorCode::Conflict, e.to_string()))?,
            ),
            _ => None,
        };
        let mut events = events;
        if let (Some(app), Some(event)) = (app, events.first_mut()) {
            if let Some(details) = event.details.as_object_mut() {
                details.insert("application".into(), json!(app.id));
            }
        }
        let records = self.store.record_issuances_for(&serials, at, sign, &events, issued_app.as_ref()).await?;
        let chain = issuer.chain().to_vec();
        Ok(records.into_iter().map(|record| Issued { record, chain: chain.clone() }).collect())
    }

    /// Generates the key on the server, issues, and returns the .p12 bytes. The password
    /// is checked before anything is generated or signed.
    pub async fn issue_with_generated_key(
        &self,
        issuer: &Issuer,
        input: &IssueInput,
        key: KeyAlgorithm,
        delivery: Pkcs12Delivery,
        actor: &str,
    ) -> Result<(Issued, Vec<u8>), DomainError> {
        self.issue_with_generated_key_for(issuer, input, key, delivery, actor, None).await
    }

    /// [`Authority::issue_with_generated_key`] for an approved application (which moves
    /// to `issued` in the issuance's transaction).
    pub async fn issue_with_generated_key_for(
        &self,
        issuer: &Issuer,
        input: &IssueInput,
        key: KeyAlgorithm,
        delivery: Pkcs12Delivery,
        actor: &str,
        app: Option<&Application>,
    ) -> Result<(Issued, Vec<u8>), DomainError> {
        let personal =
            [input.person.email.local_part(), input.person.given_name.as_str(), input.person.surname.as_str()];
        check_strength(&delivery.password, &personal)
            .map_err(|e| DomainError::new(ErrorCode::Refused, format!(".p12 password: {e}")))?;
        let private = blocking(move || PrivateKey::generate(key)).await?.map_err(internal)?;
        let public_key = private.accepted_public_key().map_err(internal)?;
        let issued = self
            .issue_batch_for(issuer, vec![(input.clone(), public_key)], actor, app)
            .await?
            .pop()
            .ok_or_else(|| internal("an issuance of one returned nothing"))?;
        let iterations = self.config.pkcs12_iterations;
        let cert = issued.record.der.clone();
        let chain = issued.chain.clone();
        let friendly = format!("{} ({})", input.person.personal_name(), input.person.email);
        let p12 = blocking(move || {
            let options = pkcs12::WriteOptions { format: delivery.format, iterations, friendly_name: Some(friendly) };
            pkcs12::write(private.pkcs8_der(), &cert, &chain, &delivery.password, &options, &SystemRandom::new())
        })
        .await?
        .map_err(internal)?;
        Ok((issued, p12))
    }

    /// Revokes a certificate.
    pub async fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
        actor: &str,
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
            details: json!({ "reason": reason.name(), "email": record.email }),
        };
        let changed = self
            .store
            .revoke(&serial, now, i64::from(reason.code()), &|seq, prev| seal(&event, now, seq, prev))
            .await?;
        if !changed {
            return Err(already_revoked(&serial, now));
        }
        Ok(CertificateRecord { revoked_at: Some(now), revocation_reason: Some(i64::from(reason.code())), ..record })
    }

    /// Re-signs the root's CRL of CA certificates with the next crlNumber (the root key
    /// is unlocked with `passphrase` for this alone), writes it to `DATA/ca/root.crl`
    /// and records it in the audit log. Due at least every twelve months (BR 4.9.7);
    /// `serve` warns a month ahead.
    pub async fn issue_root_crl(&self, passphrase: Zeroizing<String>, actor: &str) -> Result<CrlRecord, DomainError> {
        let now = self.clock.now().replace_nanosecond(0).map_err(internal)?;
        let data = self.data.clone();
        let config = self.config.clone();
        let der = blocking(move || -> Result<Vec<u8>, DomainError> {
            let root_key = crate::issuer::unlock_key(&read(&data.root_key())?, &passphrase)?;
            let root_der = read_cert_pem(&read(&data.root_cert())?)?;
            // The next number after the current CRL's (1 when there is none yet).
            let number = match std::fs::read(data.root_crl()) {
                Ok(bytes) => read_root_crl(&bytes)?.0 + 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
                Err(e) => return Err(DomainError::new(ErrorCode::DataDir, format!("cannot read the root CRL: {e}"))),
            };
            let der = sign_root_crl(&root_der, &root_key, &config, number, now)?;
            crate::datadir::replace(&data.root_crl(), &der)?;
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
        if latest.next_update <= now || now - latest.this_update >= crate::status::CRL_REISSUE_HOURS * 3600 {
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
        let now = self.clock.now().replace_nanosecond(0).map_err(internal)?;
        let revoked = self.store.revoked_unexpired(now.unix_timestamp()).await?;
        let mut entries = Vec::with_capacity(revoked.len());
        for r in &revoked {
            entries.push(RevokedEntry {
                serial: hex::decode(&r.serial).map_err(internal)?,
                revoked_at: OffsetDateTime::from_unix_timestamp(r.revoked_at).map_err(internal)?,
                reason: u8::try_from(r.reason)
                    .ok()
                    .and_then(RevocationReason::from_code)
                    .unwrap_or(RevocationReason::Unspecified),
            });
        }
        let number = self.store.next_crl_number().await?;
        let next_update = now + time::Duration::days(CRL_DAYS);
        let der = issuer.sign_crl(&CrlContent {
            number: u64::try_from(number).map_err(internal)?,
            this_update: now,
            next_update,
            entries: &entries,
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
        checkpoint: &crate::audit::Checkpoint,
    ) -> Result<VerifiedChain, DomainError> {
        let rows = self.store.audit_log().await?;
        crate::audit::verify_with_checkpoint(&rows, checkpoint)
            .map_err(|e| DomainError::new(ErrorCode::AuditBroken, e.to_string()))
    }
}

/// The issuance input of an application: its person and profile, validated again.
pub fn application_input(app: &Application) -> Result<IssueInput, DomainError> {
    let refused = |e: &dyn std::fmt::Display| DomainError::new(ErrorCode::Refused, e.to_string());
    Ok(IssueInput {
        person: Person {
            email: EmailAddress::parse(&app.email).map_err(|e| refused(&e))?,
            given_name: NameField::parse("given name", &app.given_name).map_err(|e| refused(&e))?,
            surname: NameField::parse("surname", &app.surname).map_err(|e| refused(&e))?,
        },
        profile: ProfileId::parse(&app.profile).map_err(|e| refused(&e))?,
    })
}

/// A prepared request waiting for its signature.
struct Pending {
    input: IssueInput,
    key_kind: String,
    prepared: PreparedCertificate,
    token: Option<IssuanceToken>,
}

/// How many days before the root CRL's nextUpdate `serve` warns and `certdesk crl --root`
/// re-signs it.
pub const ROOT_CRL_RENEW_DAYS: i64 = 30;

/// Validity of the root's CRL of CA certificates: the BR 4.9.7 maximum (twelve months),
/// less a week, so a CRL re-signed on schedule is never late.
const ROOT_CRL_DAYS: i64 = certdesk_pki::crl::MAX_CA_CRL_VALIDITY_DAYS - 7;

/// Signs the root's CRL of CA certificates with `number`. No CA certificate is ever
/// revoked by certdesk (a compromised issuing CA means a new CA), so it is empty.
fn sign_root_crl(
    root_der: &[u8],
    root_key: &PrivateKey,
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

/// A root CRL's thisUpdate and nextUpdate (Unix seconds), for the HTTP cache headers.
pub fn root_crl_dates(der: &[u8]) -> Result<(i64, i64), DomainError> {
    read_root_crl(der).map(|(_, this_update, next_update)| (this_update, next_update))
}

/// What the root CRL says of itself: its crlNumber, thisUpdate and nextUpdate (Unix
/// seconds).
fn read_root_crl(der: &[u8]) -> Result<(u64, i64, i64), DomainError> {
    use der::Decode;
    let damaged = |detail: String| DomainError::new(ErrorCode::DataDir, format!("the root CRL is damaged: {detail}"));
    let crl = x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
        .map_err(|e| damaged(e.to_string()))?;
    let number = crl
        .tbs_cert_list
        .crl_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == certdesk_pki::oid::CE_CRL_NUMBER)
        .ok_or_else(|| damaged("it has no crlNumber".into()))?;
    let value = der::asn1::Uint::from_der(number.extn_value.as_bytes()).map_err(|e| damaged(e.to_string()))?;
    let bytes = value.as_bytes();
    if bytes.len() > 8 {
        return Err(damaged("its crlNumber is too large".into()));
    }
    let number = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let next_update = crl
        .tbs_cert_list
        .next_update
        .and_then(|t| i64::try_from(t.to_unix_duration().as_secs()).ok())
        .ok_or_else(|| damaged("it has no nextUpdate".into()))?;
    let this_update = i64::try_from(crl.tbs_cert_list.this_update.to_unix_duration().as_secs())
        .map_err(|_| damaged("its thisUpdate is out of range".into()))?;
    Ok((number, this_update, next_update))
}

fn already_revoked(serial: &str, at: i64) -> DomainError {
    let when = OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| at.to_string());
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
    };
    init(data, options, passphrase.clone(), clock, "system:serve-demo").await?;
    write(&data.demo_passphrase(), format!("{}\n", passphrase.as_str()).as_bytes(), true)
}
