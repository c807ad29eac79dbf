//! The registration desk: sign-in, applications, mailbox validation, appointments,
//! identity checks, approval, issuance, revocation, renewal, the directory and the
//! staff's tools. HTTP-free: the web pages and the REST API (`http`) call these
//! operations, which check who may do what, run the `workflow`, store the result with
//! its audit record, and send mail.
//!
//! Access rules (least privilege):
//! - an applicant sees and changes only their own applications and certificates; any
//!   other id answers [`ErrorCode::NotFound`], never revealing that it exists;
//! - officer operations need the officer or admin role *and* a second factor (TOTP) in
//!   this session, else [`ErrorCode::Forbidden`]; admin operations need the admin role.

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine;
use certdesk_pki::crl::RevocationReason;
use certdesk_pki::csr::{CsrError, ValidatedCsr};
use certdesk_pki::key::KeyAlgorithm;
use certdesk_pki::pkcs12;
use certdesk_pki::profile::ProfileId;
use certdesk_pki::subject::{EmailAddress, NameField};
use serde_json::json;
use time::Date;
use zeroize::Zeroizing;

use crate::mail::{self, Lang, MailAddress, Mailer};
use certdesk_core::audit::{seal, AuditEvent};
use certdesk_core::clock::Clock;
use certdesk_core::config::ValidatedConfig;
use certdesk_core::datadir::DataDir;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::ports::{ApplicationClaim, CertificateAuthority, IssueInput, IssueRequest, Issued, Pkcs12Delivery};
use certdesk_core::records::normalize_serial;
use certdesk_core::workflow::{Application, ApplicationState, Decision, DocumentType, Event, IdentityEvidence};
use certdesk_pki::subject::Person;
use certdesk_store::{ChallengeOutcome, ChallengeRecord, SessionRecord, Store, UserRecord};

mod appointments;
mod recovery;
mod single_sign_on;

pub use appointments::{QueueEntry, QueueFilter};
pub use recovery::{RecoveryView, SuccessorRequest};

/// Sign-in links are valid 15 minutes.
pub const SIGN_IN_MINUTES: i64 = 15;
/// At most this many sign-in links per address per 15 minutes.
pub const SIGN_IN_LINKS_PER_WINDOW: i64 = 5;

/// Authenticator codes a user may try per [`TOTP_ATTEMPT_MINUTES`] and per day before
/// further tries are refused (a right code resets both): with codes valid for three
/// 30-second steps, guessing succeeds with odds of about 1 in 16,000 a day.
pub const TOTP_ATTEMPTS_PER_WINDOW: i64 = 5;
/// See [`TOTP_ATTEMPTS_PER_WINDOW`].
pub const TOTP_ATTEMPT_MINUTES: i64 = 15;
/// See [`TOTP_ATTEMPTS_PER_WINDOW`].
pub const TOTP_ATTEMPTS_PER_DAY: i64 = 20;
/// A .p12 whose download did not complete is offered again after this many seconds
/// (a request still delivering it has ended by then).
pub const RESUME_P12_AFTER_SECONDS: i64 = 60;
/// Sessions last 12 hours.
pub const SESSION_HOURS: i64 = 12;
/// The mailbox value is valid 24 hours (BR 3.2.2.2 allows at most 24).
pub const VALIDATION_HOURS: i64 = 24;
/// Wrong mailbox values accepted before the value is void.
pub const MAX_VALIDATION_ATTEMPTS: i64 = 5;
/// Random bits of the mailbox value (BR 3.2.2.2 asks for at least 112).
pub const VALIDATION_VALUE_BITS: usize = 120;
// BR 3.2.2.2: at least 112 bits of entropy.
const _: () = assert!(VALIDATION_VALUE_BITS >= 112);

/// Days before expiry when reminders go out.
pub const REMINDER_DAYS: [i64; 3] = [60, 30, 7];

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Staff member applying for certificates.
    Applicant,
    /// Registration officer at the service desk.
    Officer,
    /// CA administrator.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Applicant => "applicant",
            Role::Officer => "officer",
            Role::Admin => "admin",
        }
    }

    /// Reads a name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Role::Applicant, Role::Officer, Role::Admin].into_iter().find(|r| r.name() == name)
    }
}

/// Who is asking: a signed-in session and its user.
#[derive(Clone, Debug)]
pub struct Actor {
    /// The session.
    pub session: SessionRecord,
    /// The user.
    pub user: UserRecord,
    /// The role.
    pub role: Role,
}

impl Actor {
    /// The user's address.
    pub fn email(&self) -> &str {
        &self.user.email
    }

    /// Whether this session gave its second factor.
    pub fn has_second_factor(&self) -> bool {
        self.session.second_factor_at.is_some()
    }

    /// Whether this is staff that must give a second factor before anything else.
    pub fn needs_second_factor(&self) -> bool {
        self.role != Role::Applicant && !self.has_second_factor()
    }

    fn audit_name(&self) -> String {
        format!("{}:{}", self.role.name(), self.user.email)
    }
}

/// A new session: the cookie (or bearer) value to hand out, and the record.
pub struct NewSession {
    /// The secret the client presents; only its hash is stored.
    pub token: Zeroizing<String>,
    /// The session.
    pub record: SessionRecord,
}

/// What an officer types into the identity form (BR 3.2.4).
#[derive(Clone, Debug)]
pub struct EvidenceForm {
    /// `identity-card`, `passport` or `residence-permit`.
    pub document_type: String,
    /// The issuing authority.
    pub issuing_authority: String,
    /// The document number.
    pub document_number: String,
    /// Expiry, `YYYY-MM-DD`.
    pub document_expires: String,
    /// The in-person confirmation box.
    pub verified_in_person: bool,
}

/// The applicant's choices for a new application.
#[derive(Clone, Debug)]
pub struct ApplicationForm {
    /// Given name as on the ID.
    pub given_name: String,
    /// Surname as on the ID.
    pub surname: String,
    /// Profile name.
    pub profile: String,
}

/// Everything the portal needs.
pub struct Portal {
    ca: Arc<dyn CertificateAuthority>,
    store: Store,
    config: ValidatedConfig,
    caa: crate::caa::CaaPolicy,
    mailer: Arc<dyn Mailer>,
    key: LessSafeKey,
    clock: Arc<dyn Clock>,
    public_url: String,
    allowed_domains: Vec<String>,
    profiles: Vec<ProfileId>,
    /// OpenID Connect single sign-on, when `[portal.oidc]` is configured.
    oidc: Option<Arc<crate::oidc::OidcClient>>,
}

fn random_token(bytes: usize) -> Result<String, DomainError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| internal("no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// A random identifier for a record people type or paste (`certdesk enroll --book ID`):
/// like [`random_token`], drawn again while it starts with `-`, so that no command line
/// takes it for an option (one id in 64 did).
fn random_id(bytes: usize) -> Result<String, DomainError> {
    loop {
        let id = random_token(bytes)?;
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

/// SHA-256 of a secret, hex: what the database keeps instead of the secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()))
}

fn internal(message: &str) -> DomainError {
    DomainError::new(ErrorCode::Internal, message)
}

fn not_found(what: &str) -> DomainError {
    DomainError::new(ErrorCode::NotFound, format!("no such {what}"))
}

fn forbidden(message: &str) -> DomainError {
    DomainError::new(ErrorCode::Forbidden, message)
}

fn conflict(e: certdesk_core::workflow::TransitionError) -> DomainError {
    DomainError::new(ErrorCode::Conflict, e.to_string())
}

fn refused(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::Refused, message)
}

/// A mailbox value: 24 base32 characters (120 bits) in groups of four.
fn validation_value() -> Result<String, DomainError> {
    let mut buf = [0u8; VALIDATION_VALUE_BITS / 8];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| internal("no randomness"))?;
    let text = crate::totp::base32(&buf);
    let groups: Vec<String> = text.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).to_string()).collect();
    Ok(groups.join("-"))
}

/// A fresh mailbox value for an application and the challenge that stores its hash,
/// valid [`VALIDATION_HOURS`] from `now`.
fn new_challenge(application_id: &str, now: i64) -> Result<(String, ChallengeRecord), DomainError> {
    let value = validation_value()?;
    let challenge = ChallengeRecord {
        application_id: application_id.to_string(),
        value_hash: hash_secret(&normalize_value(&value)),
        created_at: now,
        expires_at: now + VALIDATION_HOURS * 3600,
        attempts: 0,
        used_at: None,
    };
    Ok((value, challenge))
}

/// The canonical form of a typed mailbox value: upper case, no separators or spaces.
fn normalize_value(value: &str) -> String {
    value.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

fn lang_of(tag: &str) -> Lang {
    Lang::from_tag(tag)
}

/// Reads or creates the portal key (32 random bytes, hex, 0600) in the data directory.
pub fn load_portal_key(data: &DataDir) -> Result<[u8; 32], DomainError> {
    let path = data.portal_key();
    if !path.is_file() {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| internal("no randomness"))?;
        // create_new: a concurrent first start keeps whichever key was written first.
        let _ = certdesk_core::datadir::write(&path, hex::encode(key).as_bytes(), true);
    }
    let text = certdesk_core::datadir::read(&path)?;
    let bytes = hex::decode(String::from_utf8_lossy(&text).trim())
        .map_err(|_| DomainError::new(ErrorCode::DataDir, format!("{} is damaged", path.display())))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| DomainError::new(ErrorCode::DataDir, format!("{} is damaged", path.display())))
}

/// The portal's public URL from the configuration (no trailing slash).
pub fn public_url(config: &certdesk_core::config::ValidatedConfig) -> String {
    config
        .raw
        .portal
        .public_url
        .clone()
        .unwrap_or_else(|| config.raw.ca.base_url.clone())
        .trim_end_matches('/')
        .to_string()
}

/// Adds (or changes the role of) a staff member and returns a single-use sign-in link
/// (`certdesk user add` and the administrator page), audited as `actor`.
pub async fn add_staff(
    store: &Store,
    now: i64,
    public_url: &str,
    email: &str,
    role: Role,
    actor: &str,
) -> Result<String, DomainError> {
    let email = EmailAddress::parse(email.trim()).map_err(|e| refused(e.to_string()))?.as_str().to_ascii_lowercase();
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "user.add",
        subject: email.clone(),
        details: json!({ "role": role.name() }),
    };
    store.upsert_user(&email, role.name(), now, &|seq, prev| seal(&event, now, seq, prev)).await?;
    sign_in_link(store, now, public_url, &email).await
}

/// A one-time sign-in link for `email`, valid [`SIGN_IN_MINUTES`] (printed by the
/// command line for staff it adds or resets).
pub async fn sign_in_link(store: &Store, now: i64, public_url: &str, email: &str) -> Result<String, DomainError> {
    let email = EmailAddress::parse(email.trim()).map_err(|e| refused(e.to_string()))?.as_str().to_ascii_lowercase();
    let token = random_token(32)?;
    store.insert_sign_in_token(&hash_secret(&token), &email, now, now + SIGN_IN_MINUTES * 60).await?;
    Ok(format!("{public_url}/signin/{token}"))
}

/// A change to a staff account ([`change_staff`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffChange {
    /// The account can no longer sign in; its sessions end.
    Disable,
    /// The account can sign in again.
    Enable,
    /// The authenticator is forgotten (a lost phone); the next sign-in enrols a new one.
    ResetSecondFactor,
}

impl StaffChange {
    fn action(self) -> &'static str {
        match self {
            StaffChange::Disable => "user.disable",
            StaffChange::Enable => "user.enable",
            StaffChange::ResetSecondFactor => "user.reset-second-factor",
        }
    }
}

/// Disables, enables or resets the second factor of a staff account (`certdesk user
/// ...` and `/admin`), audited as `actor`; every session of the account ends. Refused
/// when it would leave no administrator who can sign in with a second factor.
pub async fn change_staff(
    store: &Store,
    now: i64,
    email: &str,
    change: StaffChange,
    actor: &str,
) -> Result<(), DomainError> {
    let email = EmailAddress::parse(email.trim()).map_err(|e| refused(e.to_string()))?.as_str().to_ascii_lowercase();
    let staff = store.staff().await?;
    let Some(user) = staff.iter().find(|u| u.email == email) else {
        return Err(DomainError::new(ErrorCode::NotFound, format!("{email} is not an officer or administrator")));
    };
    let usable_admin = |u: &&UserRecord| u.role == "admin" && u.totp_secret.is_some() && u.disabled_at.is_none();
    let takes_away = matches!(change, StaffChange::Disable | StaffChange::ResetSecondFactor) && usable_admin(&user);
    if takes_away && staff.iter().filter(usable_admin).count() == 1 {
        return Err(refused(format!(
            "{email} is the only administrator who can sign in with a second factor: add another one first"
        )));
    }
    let (disabled, reset) = match change {
        StaffChange::Disable => (Some(true), false),
        StaffChange::Enable => (Some(false), false),
        StaffChange::ResetSecondFactor => (None, true),
    };
    let event = AuditEvent {
        actor: actor.to_string(),
        action: change.action(),
        subject: email.clone(),
        details: json!({ "role": user.role }),
    };
    let changed = store.change_staff(&email, disabled, reset, now, &|seq, prev| seal(&event, now, seq, prev)).await?;
    if !changed {
        return Err(DomainError::new(ErrorCode::Conflict, format!("{email} changed meanwhile; try again")));
    }
    Ok(())
}

/// Whether an administrator has completed sign-in with a second factor (else `serve`
/// prints a first-administrator link).
pub async fn has_enrolled_admin(store: &Store) -> Result<bool, DomainError> {
    Ok(store.staff().await?.iter().any(|u| u.role == "admin" && u.totp_secret.is_some() && u.disabled_at.is_none()))
}

impl Portal {
    /// Builds the portal.
    pub fn new(
        ca: Arc<dyn CertificateAuthority>,
        store: Store,
        config: ValidatedConfig,
        data: &DataDir,
        mailer: Arc<dyn Mailer>,
        portal_key: [u8; 32],
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DomainError> {
        let section = &config.raw.portal;
        let public_url = public_url(&config);
        let names: Vec<String> = if section.profiles.is_empty() {
            vec!["sponsor-strict".into(), "sponsor-multipurpose".into(), "private".into()]
        } else {
            section.profiles.clone()
        };
        let mut profiles = Vec::new();
        for name in &names {
            let id = ProfileId::parse(name).map_err(|e| DomainError::new(ErrorCode::Config, e.to_string()))?;
            // Only profiles the CA can issue: a BR profile needs a public base URL (so the
            // demo CA on 127.0.0.1 offers private only), a sponsor one the organizationIdentifier.
            if config.profile(id).is_ok() && config.profile_unavailable(id).is_none() {
                profiles.push(id);
            }
        }
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &portal_key).map_err(|_| internal("bad portal key"))?);
        let oidc = match &section.oidc {
            Some(oidc) => Some(Arc::new(single_sign_on::client(oidc, data, &public_url)?)),
            None => None,
        };
        section.rate_limit().map_err(|e| DomainError::new(ErrorCode::Config, e))?;
        let caa = crate::caa::CaaPolicy::from_config(&config);
        Ok(Self {
            ca,
            store,
            caa,
            mailer,
            key,
            clock,
            public_url,
            allowed_domains: section.allowed_domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            profiles,
            oidc,
            config,
        })
    }

    /// The configuration (the web tier's request limits, the banner).
    pub fn config(&self) -> &ValidatedConfig {
        &self.config
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// The organisation's time zone (pages and mails show times in it).
    pub fn zone(&self) -> &certdesk_core::zone::OrgZone {
        &self.config.zone
    }

    /// The portal's public URL (no trailing slash).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Profiles applicants may choose.
    pub fn profiles(&self) -> &[ProfileId] {
        &self.profiles
    }

    /// The organisation's name (page headers).
    pub fn organization(&self) -> String {
        self.config.raw.ca.organization.clone()
    }

    async fn audit(
        &self,
        actor: &str,
        action: &'static str,
        subject: &str,
        details: serde_json::Value,
    ) -> Result<(), DomainError> {
        let event = AuditEvent { actor: actor.to_string(), action, subject: subject.to_string(), details };
        let at = self.now();
        self.store().append_audit(&|seq, prev| seal(&event, at, seq, prev)).await.map(|_| ())
    }

    async fn send(&self, to: &str, build: impl FnOnce(&MailAddress) -> mail::Mail) -> Result<(), DomainError> {
        let to = MailAddress::parse(to).map_err(|e| refused(e.to_string()))?;
        let mail = build(&to);
        self.mailer
            .send(&mail)
            .await
            .map_err(|e| DomainError::new(ErrorCode::Internal, format!("the mail could not be sent: {e}")))
    }

    // -------------------------------------------------------------------------------
    // Sign-in and sessions

    fn check_address(&self, email: &str) -> Result<String, DomainError> {
        let parsed = EmailAddress::parse(email.trim()).map_err(|e| refused(e.to_string()))?;
        Ok(parsed.as_str().to_ascii_lowercase())
    }

    fn domain_allowed(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        self.allowed_domains.is_empty() || self.allowed_domains.iter().any(|d| d == domain)
    }

    /// Mails a sign-in link, if the address may sign in. The answer is the same whether
    /// or not a mail went out (no account enumeration); only bad input and the rate
    /// limit are reported.
    pub async fn request_sign_in(&self, email: &str, lang: &str) -> Result<(), DomainError> {
        let email = self.check_address(email)?;
        let now = self.now();
        let recent = self.store().sign_in_tokens_since(&email, now - SIGN_IN_MINUTES * 60).await?;
        if recent >= SIGN_IN_LINKS_PER_WINDOW {
            return Err(DomainError::new(
                ErrorCode::TooManyRequests,
                "too many sign-in links were requested for this address; wait 15 minutes",
            ));
        }
        let staff = self.store().user(&email).await?.is_some_and(|u| u.role != "applicant" && u.disabled_at.is_none());
        if !staff && !self.domain_allowed(&email) {
            return Ok(());
        }
        let link = self.sign_in_link(&email).await?;
        let expires = self.zone().at(self.clock.now() + time::Duration::minutes(SIGN_IN_MINUTES));
        self.send(&email, |to| mail::sign_in_mail(lang_of(lang), to, &link, &expires)).await
    }

    /// Makes a single-use sign-in link for `email` (for `certdesk user add` and the
    /// first administrator, which print it instead of mailing it).
    pub async fn sign_in_link(&self, email: &str) -> Result<String, DomainError> {
        let email = self.check_address(email)?;
        let token = random_token(32)?;
        let now = self.now();
        self.store().insert_sign_in_token(&hash_secret(&token), &email, now, now + SIGN_IN_MINUTES * 60).await?;
        Ok(format!("{}/signin/{token}", self.public_url))
    }

    /// Mails a sign-in link made by [`Portal::add_staff`] to its owner.
    pub async fn mail_sign_in_link(&self, email: &str, link: &str, lang: &str) -> Result<(), DomainError> {
        let expires = self.zone().at(self.clock.now() + time::Duration::minutes(SIGN_IN_MINUTES));
        self.send(email, |to| mail::sign_in_mail(lang_of(lang), to, link, &expires)).await
    }

    /// Mails a new officer or administrator that they were made one, with the sign-in
    /// link made by [`Portal::add_staff`] and what comes after it (the second factor).
    pub async fn mail_staff_invitation(
        &self,
        email: &str,
        role: Role,
        link: &str,
        lang: &str,
    ) -> Result<(), DomainError> {
        let expires = self.zone().at(self.clock.now() + time::Duration::minutes(SIGN_IN_MINUTES));
        let admin = role == Role::Admin;
        self.send(email, |to| mail::staff_invitation_mail(lang_of(lang), to, admin, link, &expires)).await
    }

    /// Uses a sign-in token (once) and starts a session.
    pub async fn complete_sign_in(&self, token: &str) -> Result<NewSession, DomainError> {
        let now = self.now();
        let email = self.store().consume_sign_in_token(&hash_secret(token.trim()), now).await?.ok_or_else(|| {
            DomainError::new(
                ErrorCode::Unauthenticated,
                "this sign-in link is invalid, used or expired; request a new one",
            )
        })?;
        self.start_session(&email, json!({ "method": "link" })).await
    }

    /// Starts a session for an address whose owner has just proven it (a mailed link,
    /// or the organisation's identity provider): creates an applicant on first sign-in,
    /// refuses disabled accounts, audits `session.sign-in` with `details`. Staff still
    /// give their second factor before anything else.
    async fn start_session(&self, email: &str, details: serde_json::Value) -> Result<NewSession, DomainError> {
        let now = self.now();
        let email = email.to_string();
        let user = self.store().ensure_user(&email, now).await?;
        if user.disabled_at.is_some() {
            return Err(DomainError::new(ErrorCode::Forbidden, "this account is disabled"));
        }
        let token = Zeroizing::new(random_token(32)?);
        let record = SessionRecord {
            id_hash: hash_secret(&token),
            email: email.clone(),
            csrf: random_token(32)?,
            created_at: now,
            expires_at: now + SESSION_HOURS * 3600,
            second_factor_at: None,
        };
        self.store().insert_session(&record).await?;
        self.audit(&format!("{}:{email}", user.role), "session.sign-in", &email, details).await?;
        Ok(NewSession { token, record })
    }

    /// The actor behind a session token, if the session is valid.
    pub async fn actor(&self, token: &str) -> Result<Option<Actor>, DomainError> {
        let Some(session) = self.store().session(&hash_secret(token), self.now()).await? else { return Ok(None) };
        let Some(user) = self.store().user(&session.email).await? else { return Ok(None) };
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        let Some(role) = Role::from_name(&user.role) else { return Ok(None) };
        Ok(Some(Actor { session, user, role }))
    }

    /// Ends a session.
    pub async fn sign_out(&self, actor: &Actor) -> Result<(), DomainError> {
        self.store().delete_session(&actor.session.id_hash).await
    }

    fn seal_secret(&self, secret: &[u8]) -> Result<String, DomainError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| internal("no randomness"))?;
        let mut sealed = secret.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"certdesk totp"), &mut sealed)
            .map_err(|_| internal("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    fn open_secret(&self, sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sealed.trim()).ok()?;
        let (nonce, rest) = bytes.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(b"certdesk totp"), &mut buf).ok()?;
        Some(Zeroizing::new(plain.to_vec()))
    }

    /// A new TOTP secret for a staff member to enrol: (sealed form for the enrolment
    /// form, otpauth URI, base32 text). Nothing is stored until a code confirms it.
    pub fn new_totp(&self, actor: &Actor) -> Result<(String, String, String), DomainError> {
        let mut secret = Zeroizing::new([0u8; 20]);
        aws_lc_rs::rand::fill(secret.as_mut()).map_err(|_| internal("no randomness"))?;
        let uri =
            crate::totp::otpauth_uri(&format!("certdesk {}", self.organization()), actor.email(), secret.as_ref());
        Ok((self.seal_secret(secret.as_ref())?, uri, crate::totp::base32(secret.as_ref())))
    }

    /// Confirms TOTP enrolment with a code from the app, stores the (sealed) secret and
    /// marks this session's second factor.
    pub async fn enrol_totp(&self, actor: &Actor, sealed: &str, code: &str) -> Result<(), DomainError> {
        if actor.role == Role::Applicant {
            return Err(forbidden("only officers and administrators use a second factor"));
        }
        if actor.user.totp_secret.is_some() {
            return Err(DomainError::new(ErrorCode::Conflict, "a second factor is already enrolled"));
        }
        let secret = self.open_secret(sealed).ok_or_else(|| refused("the enrolment form was altered; start again"))?;
        let now = self.now();
        let step = crate::totp::verify(&secret, code, now)
            .ok_or_else(|| DomainError::new(ErrorCode::WrongCode, "the code is wrong"))?;
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "user.totp-enrol",
            subject: actor.email().to_string(),
            details: json!({}),
        };
        self.store()
            .set_totp(actor.email(), &self.seal_secret(&secret)?, step, &|seq, prev| seal(&event, now, seq, prev))
            .await?;
        self.store().mark_second_factor(&actor.session.id_hash, now).await
    }

    /// Checks a TOTP code for this session (each code works once).
    pub async fn second_factor(&self, actor: &Actor, code: &str) -> Result<(), DomainError> {
        let sealed = actor
            .user
            .totp_secret
            .as_deref()
            .ok_or_else(|| DomainError::new(ErrorCode::Conflict, "no second factor is enrolled yet"))?;
        let secret = self.open_secret(sealed).ok_or_else(|| internal("the stored TOTP secret cannot be opened"))?;
        let now = self.now();
        // Throttled (RFC 4226 section 7.3): a 6-digit code falls to guessing otherwise.
        let limits = [TOTP_ATTEMPTS_PER_WINDOW, TOTP_ATTEMPTS_PER_DAY];
        let noted = self
            .store()
            .note_totp_attempt(actor.email(), now, [now - TOTP_ATTEMPT_MINUTES * 60, now - 86_400], limits)
            .await?;
        let throttled = || {
            DomainError::new(
                ErrorCode::TooManyRequests,
                "too many wrong authenticator codes; wait 15 minutes (after 20 in a day, a day) before the next try",
            )
        };
        match noted {
            None => return Err(throttled()),
            Some([recent, today]) if recent > TOTP_ATTEMPTS_PER_WINDOW || today > TOTP_ATTEMPTS_PER_DAY => {
                // The first refused try of a window: audited (later ones are not noted).
                let details = json!({ "tries_15_minutes": recent - 1, "tries_day": today - 1 });
                self.audit(&actor.audit_name(), "user.totp-throttled", actor.email(), details).await?;
                return Err(throttled());
            }
            Some(_) => {}
        }
        let wrong = || DomainError::new(ErrorCode::WrongCode, "the code is wrong or was already used");
        let step = crate::totp::verify(&secret, code, now).ok_or_else(wrong)?;
        if !self.store().accept_totp_step(actor.email(), step).await? {
            return Err(wrong());
        }
        self.store().clear_totp_attempts(actor.email()).await?;
        self.store().mark_second_factor(&actor.session.id_hash, now).await?;
        self.audit(&actor.audit_name(), "session.second-factor", actor.email(), json!({})).await
    }

    fn require_officer(&self, actor: &Actor) -> Result<(), DomainError> {
        if actor.role == Role::Applicant {
            return Err(forbidden("this page is for registration officers"));
        }
        if !actor.has_second_factor() {
            return Err(forbidden("give your second factor (authenticator code) first"));
        }
        Ok(())
    }

    fn require_admin(&self, actor: &Actor) -> Result<(), DomainError> {
        if actor.role != Role::Admin {
            return Err(forbidden("this page is for administrators"));
        }
        if !actor.has_second_factor() {
            return Err(forbidden("give your second factor (authenticator code) first"));
        }
        Ok(())
    }

    // -------------------------------------------------------------------------------
    // Applicants

    /// The applicant's own application (404 for anyone else's).
    pub async fn own_application(&self, actor: &Actor, id: &str) -> Result<Application, DomainError> {
        match self.store().application(id).await? {
            Some(app) if app.email == actor.user.email => Ok(app),
            _ => Err(not_found("application")),
        }
    }

    /// The applicant's applications.
    pub async fn my_applications(&self, actor: &Actor) -> Result<Vec<Application>, DomainError> {
        self.store().applications_of(actor.email()).await
    }

    /// The applicant's certificates.
    pub async fn my_certificates(&self, actor: &Actor) -> Result<Vec<certdesk_store::CertificateRecord>, DomainError> {
        self.store().certificates_of(actor.email()).await
    }

    /// Applies for a certificate for the signed-in address and mails the validation value.
    pub async fn apply(&self, actor: &Actor, form: &ApplicationForm, lang: &str) -> Result<Application, DomainError> {
        self.create_application(actor, form, lang, None).await
    }

    async fn create_application(
        &self,
        actor: &Actor,
        form: &ApplicationForm,
        lang: &str,
        renewal_of: Option<(&str, Option<&Application>)>,
    ) -> Result<Application, DomainError> {
        if !self.domain_allowed(actor.email()) {
            return Err(forbidden("addresses of this domain cannot apply here"));
        }
        let given_name = NameField::parse("given name", &form.given_name).map_err(|e| refused(e.to_string()))?;
        let surname = NameField::parse("surname", &form.surname).map_err(|e| refused(e.to_string()))?;
        let profile = ProfileId::parse(&form.profile).map_err(|e| refused(e.to_string()))?;
        if !self.profiles.contains(&profile) {
            return Err(refused(format!("the profile {} is not offered here", profile.name())));
        }
        let open = self.store().applications_of(actor.email()).await?;
        if open.iter().filter(|a| !a.state.is_final()).count() >= 3 {
            return Err(DomainError::new(ErrorCode::Conflict, "you already have three open applications"));
        }
        // CAA now as well as at issuance: an applicant whose domain does not let this CA
        // issue learns it before the appointment, not after.
        let domain = actor.email().rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        self.caa.evidence(domain).await?;
        let now = self.now();
        let (identity, mailbox) = match renewal_of {
            Some((_, Some(previous))) => previous.reusable_for_renewal(now),
            _ => (None, None),
        };
        let lang = if lang == "de" { "de" } else { "en" };
        let app = Application {
            id: random_id(12)?,
            email: actor.email().to_string(),
            given_name: given_name.as_str().to_string(),
            surname: surname.as_str().to_string(),
            profile,
            state: ApplicationState::AwaitingChecks,
            mailbox_validated_at: mailbox,
            identity,
            decision: None,
            serial: None,
            renewal_of: renewal_of.map(|(serial, _)| serial.to_string()),
            lang: lang.to_string(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let (value, challenge) = new_challenge(&app.id, now)?;
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: if renewal_of.is_some() { "application.renew" } else { "application.submit" },
            subject: app.id.clone(),
            details: json!({
                "email": app.email, "given_name": app.given_name, "surname": app.surname, "profile": app.profile.name(),
                "renewal_of": app.renewal_of, "identity_reused": app.identity.is_some(),
                "mailbox_reused": app.mailbox_validated_at.is_some(),
            }),
        };
        self.store().insert_application(&app, &challenge, &|seq, prev| seal(&event, now, seq, prev)).await?;
        if app.mailbox_validated_at.is_none() {
            self.send_validation(&app, &value, challenge.expires_at).await?;
        }
        Ok(app)
    }

    async fn send_validation(&self, app: &Application, value: &str, expires_at: i64) -> Result<(), DomainError> {
        let expires = self.zone().local(expires_at).ok_or_else(|| internal("bad expiry"))?;
        // BR 4.12.1: told before choosing how the key is made.
        let escrow = self.escrows_keys(app).await?;
        self.send(&app.email, |to| {
            mail::validation_mail(lang_of(&app.lang), to, &self.public_url, &app.id, value, &expires, escrow)
        })
        .await
    }

    /// Sends a new validation value (the old one is void).
    pub async fn resend_validation(&self, actor: &Actor, id: &str) -> Result<(), DomainError> {
        let app = self.own_application(actor, id).await?;
        if app.mailbox_validated_at.is_some() || app.state != ApplicationState::AwaitingChecks {
            return Err(DomainError::new(ErrorCode::Conflict, "the mailbox needs no validation now"));
        }
        let now = self.now();
        let (value, challenge) = new_challenge(&app.id, now)?;
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "application.validation-resent",
            subject: app.id.clone(),
            details: json!({}),
        };
        self.store().replace_challenge(&challenge, &|seq, prev| seal(&event, now, seq, prev)).await?;
        self.send_validation(&app, &value, challenge.expires_at).await
    }

    /// Checks the mailed value (single use, at most 24 h old, at most five wrong tries).
    pub async fn validate_mailbox(&self, actor: &Actor, id: &str, value: &str) -> Result<Application, DomainError> {
        let app = self.own_application(actor, id).await?;
        let now = self.now();
        let next = app.apply(&Event::MailboxValidated { at: now }).map_err(conflict)?;
        let typed = hash_secret(&normalize_value(value));
        let matches = |stored: &str| verify_slices_are_equal(stored.as_bytes(), typed.as_bytes()).is_ok();
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "application.mailbox-validated",
            subject: app.id.clone(),
            details: json!({ "email": app.email, "method": "BR 3.2.2.2 random value by e-mail" }),
        };
        let outcome = self
            .store()
            .answer_challenge(&app.id, &matches, now, MAX_VALIDATION_ATTEMPTS, &next, &|seq, prev| {
                seal(&event, now, seq, prev)
            })
            .await?;
        match outcome {
            ChallengeOutcome::Validated => Ok(next),
            ChallengeOutcome::Wrong { attempts_left } => Err(DomainError::new(
                ErrorCode::WrongCode,
                format!("the value is not right; {attempts_left} attempts left"),
            )),
            ChallengeOutcome::Void => Err(DomainError::new(
                ErrorCode::WrongCode,
                "this value is used, expired or blocked after too many attempts; request a new one",
            )),
        }
    }

    /// Withdraws an application.
    pub async fn withdraw(&self, actor: &Actor, id: &str) -> Result<Application, DomainError> {
        let app = self.own_application(actor, id).await?;
        let now = self.now();
        let next = app.apply(&Event::Withdrawn { at: now }).map_err(conflict)?;
        self.store_transition(actor, &next, json!({})).await?;
        Ok(next)
    }

    async fn store_transition(
        &self,
        actor: &Actor,
        next: &Application,
        details: serde_json::Value,
    ) -> Result<(), DomainError> {
        let now = self.now();
        let action = match next.state {
            ApplicationState::Approved => "application.approve",
            ApplicationState::Rejected => "application.reject",
            ApplicationState::Withdrawn => "application.withdraw",
            _ => "application.identity-recorded",
        };
        // The store frees the slot to come of an application that needs no appointment
        // any more, in this transaction; the record names it.
        let mut details = details;
        if next.state != ApplicationState::AwaitingChecks || next.identity.is_some() {
            let slot = self.store().slot_of(&next.id).await?.filter(|s| s.starts_at > now);
            if let (Some(slot), Some(object)) = (slot, details.as_object_mut()) {
                object.insert("freed_slot".into(), json!(slot.id));
            }
        }
        let event = AuditEvent { actor: actor.audit_name(), action, subject: next.id.clone(), details };
        self.store().update_application(next, &|seq, prev| seal(&event, now, seq, prev)).await
    }

    fn approved_own(&self, app: &Application) -> Result<(), DomainError> {
        if app.state != ApplicationState::Approved {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "a certificate can be issued only after the mailbox and identity checks and the approval",
            ));
        }
        Ok(())
    }

    /// Issues for the applicant's own key (a PEM or DER CSR).
    pub async fn issue_csr(&self, actor: &Actor, id: &str, csr: &[u8]) -> Result<Issued, DomainError> {
        let app = self.own_application(actor, id).await?;
        self.approved_own(&app)?;
        let csr = ValidatedCsr::parse(csr).map_err(|e| match e {
            CsrError::Malformed { .. } => DomainError::new(ErrorCode::BadInput, e.to_string()),
            other => refused(other.to_string()),
        })?;
        let request = self.issue_request(&app).await?;
        let issued = self.ca.issue(request, csr.into_public_key(), &actor.audit_name()).await?;
        self.after_issue(&app, &issued, &[]).await;
        Ok(issued)
    }

    /// Generates the key on the server and returns the .p12. The .p12 (never the bare
    /// key) is kept a week, encrypted under the applicant's password, and handed out
    /// again to a request that shows the password: a download that did not arrive (the
    /// server stopped, the connection broke) is not a lost key.
    pub async fn issue_p12(
        &self,
        actor: &Actor,
        id: &str,
        password: Zeroizing<String>,
        format: pkcs12::Format,
        key: KeyAlgorithm,
        clients: &[crate::advisor::MailClient],
    ) -> Result<(Issued, Vec<u8>), DomainError> {
        let app = self.own_application(actor, id).await?;
        if let Some(resumed) = self.resume_p12(&app, &password).await? {
            return Ok(resumed);
        }
        self.approved_own(&app)?;
        let request = self.issue_request(&app).await?;
        let (issued, p12) =
            self.ca.issue_pkcs12(request, key, Pkcs12Delivery { password, format }, &actor.audit_name()).await?;
        // Kept a week (certdesk_ca::recovery), offered again should this answer not arrive.
        self.store().mark_handed_out(&issued.record.serial, self.now()).await?;
        self.after_issue(&app, &issued, clients).await;
        Ok((issued, p12))
    }

    /// Whether the profile of `app` escrows the keys the desk makes (issue 15): the
    /// applicant is told on the page and in the mail before choosing (BR 4.12.1).
    pub async fn escrows_keys(&self, app: &Application) -> Result<bool, DomainError> {
        Ok(self.store().escrow_mode(app.profile.name()).await?.escrows())
    }

    /// Whether the profile of `app` escrows separately: two certificates, the signing
    /// key never escrowed.
    pub async fn escrows_separately(&self, app: &Application) -> Result<bool, DomainError> {
        Ok(self.store().escrow_mode(app.profile.name()).await? == certdesk_store::EscrowMode::Separate)
    }

    /// Whether the applicant's `app` has a stored .p12 (kept a week, in case its download
    /// did not complete): it is handed out again to whoever shows the password chosen
    /// then.
    pub async fn pending_p12(&self, app: &Application) -> Result<bool, DomainError> {
        Ok(app.state == ApplicationState::Issued && self.store().pending_delivery_of(&app.id).await?.is_some())
    }

    /// The applicant says they saved the .p12: the stored copy is deleted at once
    /// instead of after the week (audited).
    pub async fn confirm_p12_saved(&self, actor: &Actor, id: &str) -> Result<Application, DomainError> {
        let app = self.own_application(actor, id).await?;
        let Some(pending) = self.store().pending_delivery_of(&app.id).await? else {
            return Ok(app); // nothing stored (any more): nothing to do
        };
        if self.store().delete_pending_delivery(&pending.serial).await? {
            let details = json!({ "application": app.id });
            self.audit(&actor.audit_name(), "certificate.p12-saved", &pending.serial, details).await?;
        }
        Ok(app)
    }

    async fn resume_p12(
        &self,
        app: &Application,
        password: &Zeroizing<String>,
    ) -> Result<Option<(Issued, Vec<u8>)>, DomainError> {
        if app.state != ApplicationState::Issued {
            return Ok(None);
        }
        let Some(pending) = self.store().pending_delivery_of(&app.id).await? else { return Ok(None) };
        // A .p12 this young may be on its way in another request (the same form sent
        // twice): it is handed out again only once that request would have ended.
        if self.now() - pending.created_at < RESUME_P12_AFTER_SECONDS {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "the .p12 of this application is being delivered; if the download did not arrive, try again in a minute",
            ));
        }
        // Wrong passwords are limited like authenticator codes (each try also costs a
        // PBKDF2 run): none is checked once the window's tries are used up.
        let now = self.now();
        let window = TOTP_ATTEMPT_MINUTES * 60;
        if pending.wrong_tries >= TOTP_ATTEMPTS_PER_WINDOW && pending.wrong_since.is_some_and(|s| s > now - window) {
            return Err(DomainError::new(
                ErrorCode::TooManyRequests,
                "too many wrong passwords for this .p12; wait 15 minutes before the next try",
            ));
        }
        let p12 = pending.pkcs12.clone();
        let pass = password.clone();
        let opened = tokio::task::spawn_blocking(move || pkcs12::read(&p12, &pass).is_ok())
            .await
            .map_err(|e| internal(&e.to_string()))?;
        if !opened {
            self.store().note_wrong_p12_password(&pending.serial, now, window).await?;
            return Err(refused(
                "the .p12 of this application was made already; give the password you chose then to download it again",
            ));
        }
        let record = self.store().certificate(&pending.serial).await?.ok_or_else(|| not_found("certificate"))?;
        let chain = self.ca.chain().to_vec();
        self.store().mark_handed_out(&pending.serial, self.now()).await?;
        Ok(Some((Issued { record, chain }, pending.pkcs12)))
    }

    /// What the CA is asked for an application: its person and profile (validated
    /// again), CAA evidence for its domain, and the claim on it.
    async fn issue_request(&self, app: &Application) -> Result<IssueRequest, DomainError> {
        let input = application_input(app)?;
        let caa = self.caa.evidence(input.person.email.domain()).await?;
        Ok(IssueRequest {
            input,
            caa,
            application: Some(ApplicationClaim { id: app.id.clone(), version: app.version }),
        })
    }

    /// Mails that the certificate is ready. A failed mail is logged, not returned: the
    /// certificate is issued and the answer carries it (or its .p12).
    async fn after_issue(&self, app: &Application, issued: &Issued, clients: &[crate::advisor::MailClient]) {
        let link = format!("{}/applications/{}", self.public_url, app.id);
        let guide = format!("{}/install", self.public_url);
        let serial = &issued.record.serial;
        let escrowed = match self.store().escrowed_key(serial.as_str()).await {
            Ok(kept) => kept.is_some(),
            Err(e) => {
                // Told already, on the page and in the validation mail.
                tracing::warn!("whether the key of {serial} was escrowed is unknown: {e}");
                false
            }
        };
        let sent = self
            .send(&app.email, |to| {
                mail::certificate_ready_mail(lang_of(&app.lang), to, serial, &link, clients, &guide, escrowed)
            })
            .await;
        if let Err(e) = sent {
            tracing::warn!("the certificate-ready mail for {} failed: {e}", issued.record.serial);
        }
    }

    /// A certificate of the signed-in applicant (404 for anyone else's).
    pub async fn own_certificate(
        &self,
        actor: &Actor,
        serial: &str,
    ) -> Result<certdesk_store::CertificateRecord, DomainError> {
        let serial = normalize_serial(serial).map_err(|_| not_found("certificate"))?;
        match self.store().certificate(&serial).await? {
            Some(cert) if cert.email == actor.user.email => Ok(cert),
            _ => Err(not_found("certificate")),
        }
    }

    /// Revokes a certificate: the applicant their own, an officer anyone's. The CRL and
    /// OCSP answers of this process are renewed at once.
    pub async fn revoke(
        &self,
        actor: &Actor,
        serial: &str,
        reason: &str,
    ) -> Result<certdesk_store::CertificateRecord, DomainError> {
        let cert = if actor.role == Role::Applicant || !actor.has_second_factor() {
            self.own_certificate(actor, serial).await?
        } else {
            let serial = normalize_serial(serial)?;
            self.store().certificate(&serial).await?.ok_or_else(|| not_found("certificate"))?
        };
        let reason = RevocationReason::from_name(reason)
            .ok_or_else(|| refused(format!("unknown revocation reason {reason:?}")))?;
        let record = self.ca.revoke(&cert.serial, reason, &actor.audit_name()).await?;
        let at = self
            .zone()
            .local(record.revoked_at.unwrap_or_default())
            .unwrap_or_else(|| self.zone().at(self.clock.now()));
        let lang =
            self.store().applications_of(&record.email).await?.first().map(|a| a.lang.clone()).unwrap_or_default();
        self.send(&record.email, |to| mail::revocation_mail(lang_of(&lang), to, &record.serial, reason, &at)).await?;
        Ok(record)
    }

    /// Starts the renewal of one of the applicant's certificates: a new application with
    /// the same person and profile, reusing evidence within the BR 4.2.1 windows.
    pub async fn renew(&self, actor: &Actor, serial: &str, lang: &str) -> Result<Application, DomainError> {
        let cert = self.own_certificate(actor, serial).await?;
        let apps = self.store().applications_of(actor.email()).await?;
        let Some(previous) = apps.iter().find(|a| a.serial.as_deref() == Some(cert.serial.as_str())) else {
            // Issued by `certdesk issue`, with no application and no evidence here to
            // reuse: a new application with the certificate's names and profile, which
            // goes through the mailbox and desk checks.
            let names = crate::directory::subject_names(&cert.der);
            let (Some(given_name), Some(surname)) = (names.given_name, names.surname) else {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    "this certificate names no person: apply for a new one",
                ));
            };
            let form = ApplicationForm { given_name, surname, profile: cert.profile.name().to_string() };
            return self.create_application(actor, &form, lang, Some((&cert.serial, None))).await;
        };
        let form = ApplicationForm {
            given_name: previous.given_name.clone(),
            surname: previous.surname.clone(),
            profile: previous.profile.name().to_string(),
        };
        self.create_application(actor, &form, lang, Some((&cert.serial, Some(previous)))).await
    }

    // -------------------------------------------------------------------------------
    // Officers

    /// Any application (officers).
    pub async fn application_for_officer(&self, actor: &Actor, id: &str) -> Result<Application, DomainError> {
        self.require_officer(actor)?;
        self.store().application(id).await?.ok_or_else(|| not_found("application"))
    }

    /// Records the identity evidence checked at the desk (BR 3.2.4).
    pub async fn record_identity(
        &self,
        actor: &Actor,
        id: &str,
        form: &EvidenceForm,
    ) -> Result<Application, DomainError> {
        let app = self.application_for_officer(actor, id).await?;
        let document_type = DocumentType::from_name(&form.document_type)
            .ok_or_else(|| refused(format!("unknown document type {:?}", form.document_type)))?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let document_expires = Date::parse(form.document_expires.trim(), &format)
            .map_err(|_| refused("the expiry date must be written YYYY-MM-DD"))?;
        let evidence = IdentityEvidence {
            document_type,
            issuing_authority: form.issuing_authority.trim().to_string(),
            document_number: form.document_number.trim().to_string(),
            document_expires,
            verified_in_person: form.verified_in_person,
            officer: actor.email().to_string(),
            verified_at: self.now(),
        };
        let next = app.apply(&Event::IdentityRecorded(evidence.clone())).map_err(|e| match e {
            certdesk_core::workflow::TransitionError::WrongState { .. } => conflict(e),
            other => refused(other.to_string()),
        })?;
        // The document number stays out of the audit details (personal data); its hash
        // proves later which document was seen.
        let details = json!({
            "document_type": document_type.name(),
            "issuing_authority": evidence.issuing_authority,
            "document_number_sha256": hash_secret(&evidence.document_number),
            "document_expires": form.document_expires.trim(),
            "in_person": true,
        });
        self.store_transition(actor, &next, details).await?;
        Ok(next)
    }

    /// Approves (both checks must have passed).
    pub async fn approve(&self, actor: &Actor, id: &str) -> Result<Application, DomainError> {
        let app = self.application_for_officer(actor, id).await?;
        let decision = Decision { officer: actor.email().to_string(), at: self.now(), reason: None };
        let next = app.apply(&Event::Approved(decision)).map_err(conflict)?;
        self.store_transition(actor, &next, json!({ "email": app.email })).await?;
        Ok(next)
    }

    /// Rejects with a reason.
    pub async fn reject(&self, actor: &Actor, id: &str, reason: &str) -> Result<Application, DomainError> {
        let app = self.application_for_officer(actor, id).await?;
        let reason = reason.trim();
        if reason.chars().count() > 500 {
            return Err(refused("the reason is longer than 500 characters"));
        }
        let decision =
            Decision { officer: actor.email().to_string(), at: self.now(), reason: Some(reason.to_string()) };
        let next = app.apply(&Event::Rejected(decision)).map_err(|e| match e {
            certdesk_core::workflow::TransitionError::ReasonRequired => refused(e.to_string()),
            other => conflict(other),
        })?;
        self.store_transition(actor, &next, json!({ "reason": reason })).await?;
        Ok(next)
    }

    /// Certificates of one address (officers revoking for someone).
    pub async fn certificates_for_officer(
        &self,
        actor: &Actor,
        email: &str,
    ) -> Result<Vec<certdesk_store::CertificateRecord>, DomainError> {
        self.require_officer(actor)?;
        self.store().certificates_of(&email.trim().to_ascii_lowercase()).await
    }

    // -------------------------------------------------------------------------------
    // Administrators

    /// Adds (or changes the role of) an officer or administrator and returns a
    /// single-use sign-in link for them.
    pub async fn add_staff(&self, actor: Option<&Actor>, email: &str, role: Role) -> Result<String, DomainError> {
        if let Some(actor) = actor {
            self.require_admin(actor)?;
        }
        let name = actor.map(Actor::audit_name).unwrap_or_else(|| "system:cli".into());
        add_staff(self.store(), self.now(), &self.public_url, email, role, &name).await
    }

    /// A one-time sign-in link for a staff member (after their authenticator was reset).
    pub async fn staff_sign_in_link(&self, email: &str) -> Result<String, DomainError> {
        sign_in_link(self.store(), self.now(), &self.public_url, email).await
    }

    /// Disables, enables or resets the second factor of a staff account: by an
    /// administrator (`Some(actor)`), or the command line (`None`). See [`change_staff`].
    pub async fn change_staff(
        &self,
        actor: Option<&Actor>,
        email: &str,
        change: StaffChange,
    ) -> Result<(), DomainError> {
        if let Some(actor) = actor {
            self.require_admin(actor)?;
        }
        let name = actor.map(Actor::audit_name).unwrap_or_else(|| "system:cli".into());
        change_staff(self.store(), self.now(), email, change, &name).await
    }

    /// Officers and administrators.
    pub async fn staff(&self, actor: &Actor) -> Result<Vec<UserRecord>, DomainError> {
        self.require_admin(actor)?;
        self.store().staff().await
    }

    /// The audit log, filtered by a case-insensitive text (actor, action, subject,
    /// details), newest first.
    pub async fn audit_log(&self, actor: &Actor, filter: &str) -> Result<Vec<certdesk_store::AuditRow>, DomainError> {
        self.require_admin(actor)?;
        let filter = filter.trim().to_lowercase();
        let mut rows: Vec<_> = self
            .store()
            .audit_log()
            .await?
            .into_iter()
            .filter(|r| {
                filter.is_empty()
                    || [&r.actor, &r.action, &r.subject, &r.details].iter().any(|f| f.to_lowercase().contains(&filter))
            })
            .collect();
        rows.reverse();
        Ok(rows)
    }

    /// Verifies the audit chain (administrators).
    pub async fn verify_audit(&self, actor: &Actor) -> Result<certdesk_core::audit::VerifiedChain, DomainError> {
        self.require_admin(actor)?;
        let rows = self.store().audit_log().await?;
        certdesk_core::audit::verify(&rows).map_err(|e| DomainError::new(ErrorCode::AuditBroken, e.to_string()))
    }

    /// The profiles with the validity issuance uses now, and whether an administrator
    /// set it here (else it comes from certdesk.toml).
    pub async fn profile_settings(&self) -> Result<Vec<(ProfileId, u32, bool)>, DomainError> {
        let overrides = self.store().profile_validity().await?;
        Ok(self.config.profile_settings(&overrides))
    }

    /// Sets a profile's validity (administrators; at most 825 days for BR profiles).
    pub async fn set_profile_validity(&self, actor: &Actor, profile: &str, days: &str) -> Result<(), DomainError> {
        self.require_admin(actor)?;
        let id = ProfileId::parse(profile).map_err(|e| refused(e.to_string()))?;
        let days: u32 = days.trim().parse().map_err(|_| refused("the validity must be a whole number of days"))?;
        self.config.profile(id)?.with_validity(days).map_err(|e| refused(e.to_string()))?;
        let at = self.now();
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "profile.validity",
            subject: id.name().to_string(),
            details: json!({ "validity_days": days }),
        };
        self.store()
            .set_profile_validity(id.name(), i64::from(days), &actor.audit_name(), at, &|seq, prev| {
                seal(&event, at, seq, prev)
            })
            .await
    }

    // -------------------------------------------------------------------------------
    // Public

    /// The current certificates of an address: valid now and not revoked, newest first.
    pub async fn directory(&self, email: &str) -> Result<Vec<certdesk_store::CertificateRecord>, DomainError> {
        let email = self.check_address(email)?;
        let now = self.now();
        // The store orders them longest-lasting first: the one to encrypt to first.
        Ok(self
            .store()
            .directory_certificates(now, Some(&email))
            .await?
            .into_iter()
            .filter(|c| crate::directory::listable(c, now))
            .collect())
    }

    /// Everyone in the directory now, with the certificates one can encrypt to (the
    /// LDAP server's view; the same query and rule as [`Portal::directory`]).
    pub async fn directory_people(&self) -> Result<Vec<crate::directory::DirectoryPerson>, DomainError> {
        let now = self.now();
        Ok(crate::directory::people(&self.store().directory_certificates(now, None).await?, now))
    }

    /// One certificate of the directory by serial (public, as the directory is): only
    /// while it is listed there.
    pub async fn directory_certificate(&self, serial: &str) -> Result<certdesk_store::CertificateRecord, DomainError> {
        let serial = normalize_serial(serial).map_err(|_| not_found("certificate"))?;
        match self.store().certificate(&serial).await? {
            Some(cert) if crate::directory::listable(&cert, self.now()) => Ok(cert),
            _ => Err(not_found("certificate")),
        }
    }

    /// Sends the reminders of appointments starting within a day (booked more than a day
    /// before), each once even with several processes. A failed mail gives its claim back
    /// (retried at the next run) and does not hold up the others; the error then names
    /// how many failed. Returns how many went out.
    pub async fn send_appointment_reminders(&self) -> Result<usize, DomainError> {
        let now = self.now();
        let mut sent = 0;
        let mut failed: Vec<DomainError> = Vec::new();
        for slot in self.store().appointments_to_remind(now, now + 86_400, 86_400).await? {
            let Some(app_id) = slot.application_id.as_deref() else { continue };
            let Some(app) = self.store().application(app_id).await? else { continue };
            if app.state != ApplicationState::AwaitingChecks || app.identity.is_some() {
                continue;
            }
            let Some(when) = self.zone().local(slot.starts_at) else {
                failed.push(internal("bad slot time"));
                continue;
            };
            if !self.store().claim_appointment_reminder(&slot.id, &app.id, now).await? {
                continue;
            }
            let mailed = self
                .send(&app.email, |to| mail::appointment_reminder_mail(lang_of(&app.lang), to, &when, &slot.place))
                .await;
            match mailed {
                Ok(()) => sent += 1,
                Err(e) => {
                    self.store().release_appointment_reminder(&slot.id, now).await?;
                    failed.push(e);
                }
            }
        }
        batch_outcome("appointment reminder", sent, failed)
    }

    /// Mails the audit log's checkpoint to the auditors when this period's is due
    /// (`[audit]`, see [`crate::checkpoint`]).
    pub async fn send_audit_checkpoint(&self) -> Result<crate::checkpoint::CheckpointOutcome, DomainError> {
        let config = &self.config;
        crate::checkpoint::send_due(
            self.store(),
            self.mailer.as_ref(),
            &config.checkpoints,
            &config.raw.ca.organization,
            &self.zone().at(self.clock.now()),
            false,
        )
        .await
    }

    /// Sends the expiry reminders due now (60, 30 and 7 days before), each once even
    /// with several processes, none for a certificate already renewed. A failed mail
    /// gives its claim back (retried at the next run) and does not hold up the others;
    /// the error then names how many failed. Returns how many went out.
    pub async fn send_reminders(&self) -> Result<usize, DomainError> {
        let now = self.now();
        let mut sent = 0;
        let mut failed: Vec<DomainError> = Vec::new();
        for days in REMINDER_DAYS {
            let due = self.store().certificates_expiring(now, now + days * 86_400).await?;
            // A signing certificate issued with an encryption one (a profile that escrows
            // separately) expires with it: one reminder, for the pair.
            let paired = |cert: &certdesk_store::CertificateRecord| {
                !crate::directory::encrypts(&cert.der)
                    && due.iter().any(|other| {
                        other.serial != cert.serial
                            && other.email == cert.email
                            && other.not_after == cert.not_after
                            && crate::directory::encrypts(&other.der)
                    })
            };
            let due: Vec<_> = due.iter().filter(|c| !paired(c)).cloned().collect();
            for cert in due {
                let left = (cert.not_after - now) / 86_400;
                // Only the most urgent reminder not yet sent: a certificate 5 days from
                // expiry gets the 7-day one, not all three.
                if REMINDER_DAYS.iter().any(|d| *d < days && left <= *d) {
                    continue;
                }
                if !self.store().claim_reminder(&cert.serial, days, now).await? {
                    continue;
                }
                let Some(not_after) = self.zone().local(cert.not_after) else { continue };
                let lang = self
                    .store()
                    .applications_of(&cert.email)
                    .await?
                    .first()
                    .map(|a| a.lang.clone())
                    .unwrap_or_default();
                let link = format!("{}/", self.public_url);
                let days_left = u32::try_from(left).unwrap_or(0);
                let mailed = self
                    .send(&cert.email, |to| {
                        mail::expiry_reminder_mail(lang_of(&lang), to, &cert.serial, &not_after, days_left, &link)
                    })
                    .await;
                match mailed {
                    Ok(()) => sent += 1,
                    Err(e) => {
                        self.store().release_reminder(&cert.serial, days, now).await?;
                        failed.push(e);
                    }
                }
            }
        }
        batch_outcome("expiry reminder", sent, failed)
    }
}

/// How a batch of mails went: how many were sent, or an error naming how many of
/// `what` failed (each retried at the next run) and the first reason.
fn batch_outcome(what: &str, sent: usize, failed: Vec<DomainError>) -> Result<usize, DomainError> {
    match failed.first() {
        None => Ok(sent),
        Some(first) => Err(DomainError::new(
            ErrorCode::Internal,
            format!("{} {what}(s) could not be mailed ({sent} went out; the next run retries): {first}", failed.len()),
        )),
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
        profile: app.profile,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn validation_values_have_enough_entropy_and_normalize() {
        let v = validation_value().unwrap();
        assert_eq!(normalize_value(&v).len(), 24, "{v}");
        assert_eq!(normalize_value(" abcd-EFGH  ijkl "), "ABCDEFGHIJKL");
        assert_ne!(validation_value().unwrap(), v);
    }

    #[test]
    fn record_ids_never_start_with_a_dash() {
        // One plain token in 64 starts with `-`; 5,000 ids without one would be a chance
        // of 4e-35 if the redraw were missing.
        for _ in 0..5_000 {
            let id = random_id(9).unwrap();
            assert!(!id.starts_with('-'), "{id}");
            assert_eq!(id.len(), 12, "{id}");
        }
    }
}
