//! The ports between the registration desk (and the web tier) and the certificate
//! authority.
//!
//! The desk decides *whether* a certificate may be issued or revoked (workflow, mailbox
//! and identity checks, CAA evidence); the CA decides *how* (profile, lint, serial,
//! signature) and is the only one that holds a key. The desk and web crates reach the
//! CA only through these traits: `certdesk-ca` implements them, `certdesk` (the binary)
//! hands the implementation over as `Arc<dyn CertificateAuthority>` and
//! `Arc<dyn StatusPublisher>`, and neither `certdesk-desk` nor `certdesk-web` depends on
//! `certdesk-ca`, so they cannot name its key-holding types (a test checks the
//! dependency graph).

use std::sync::Arc;

use async_trait::async_trait;
use certdesk_pki::crl::RevocationReason;
use certdesk_pki::key::{AcceptedPublicKey, KeyAlgorithm};
use certdesk_pki::pkcs12;
use certdesk_pki::profile::ProfileId;
use certdesk_pki::subject::Person;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::DomainError;
use crate::records::{CertificateRecord, CrlRecord};

/// Who is certified, under which profile.
#[derive(Clone, Debug)]
pub struct IssueInput {
    /// The validated person.
    pub person: Person,
    /// The profile.
    pub profile: ProfileId,
}

/// The approved application a certificate is issued for. The store moves it to
/// `issued` in the transaction that records the issuance intent, only if it is still
/// `approved` at `version` (so two processes never issue twice for one application),
/// and back to `approved` if that issuance is abandoned (a crash before the
/// certificate was recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationClaim {
    /// The application's id.
    pub id: String,
    /// The version it was read at.
    pub version: i64,
}

/// One issuance as the desk asks for it.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    /// Who and which profile.
    pub input: IssueInput,
    /// What CAA said for the mailbox domain (S/MIME BR 3.2.2.3), for the audit record.
    pub caa: String,
    /// The application, when the certificate is for one.
    pub application: Option<ApplicationClaim>,
}

/// The password and format of a .p12 to deliver.
pub struct Pkcs12Delivery {
    /// Chosen by the subscriber; checked for strength, never stored or logged.
    pub password: Zeroizing<String>,
    /// `modern` or `compat`.
    pub format: pkcs12::Format,
}

/// A certificate just issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The stored record.
    pub record: CertificateRecord,
    /// Issuing CA then root (DER), for a chain file or a .p12.
    pub chain: Vec<Vec<u8>>,
}

/// The certificate authority as the desk sees it: it issues and revokes, and the
/// certificate status it publishes follows at once in this process.
#[async_trait]
pub trait CertificateAuthority: Send + Sync {
    /// Issues a certificate for a key the subscriber holds.
    async fn issue(
        &self,
        request: IssueRequest,
        public_key: AcceptedPublicKey,
        actor: &str,
    ) -> Result<Issued, DomainError>;

    /// Generates the key, issues, and returns the .p12 (encrypted under the
    /// subscriber's password, which is checked before anything is generated).
    async fn issue_pkcs12(
        &self,
        request: IssueRequest,
        key: KeyAlgorithm,
        delivery: Pkcs12Delivery,
        actor: &str,
    ) -> Result<(Issued, Vec<u8>), DomainError>;

    /// Issuing CA then root, DER.
    fn chain(&self) -> &[Vec<u8>];

    /// Revokes a certificate (serial in hex).
    async fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
        actor: &str,
    ) -> Result<CertificateRecord, DomainError>;

    /// Takes an escrow key recovery agent's share (the PEM block `CERTDESK ESCROW SHARE`,
    /// as decrypted from the agent's message) for recovery `recovery_id` of escrow key
    /// `key_id`: it must be that key's share of agent `agent_index`, the one handed out
    /// at init (its commitment), and not given for this recovery yet. It is kept in this
    /// process's memory only. Returns how many distinct agents' shares are held.
    ///
    /// The desk decides who may give a share and when; the CA alone reads shares.
    async fn take_escrow_share(
        &self,
        recovery_id: &str,
        key_id: &str,
        agent_index: u8,
        share: Zeroizing<Vec<u8>>,
    ) -> Result<usize, DomainError>;

    /// How many distinct agents' shares this process holds for a recovery (0 after a
    /// restart: the shares are never stored).
    fn escrow_shares_held(&self, recovery_id: &str) -> usize;

    /// Puts the escrow key of `key_id` together from the shares held for `recovery_id`,
    /// decrypts the escrowed keys of `serials`, checks each against its certificate and
    /// returns them all, with their certificates and the CA chain, as one .p12 under
    /// the recipient's password. The shares are forgotten and every key wiped, whatever
    /// the outcome.
    async fn recover_escrowed_keys(
        &self,
        recovery_id: &str,
        key_id: &str,
        serials: &[String],
        delivery: Pkcs12Delivery,
    ) -> Result<Vec<u8>, DomainError>;

    /// Forgets (wipes) the shares held for a recovery: cancelled, expired or failed.
    fn forget_escrow_shares(&self, recovery_id: &str);

    /// Forgets the share of agent `agent_index` for a recovery (its approval could not
    /// be recorded).
    fn forget_escrow_share(&self, recovery_id: &str, agent_index: u8);
}

/// What an OCSP answer said, for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspOutcome {
    /// One certificate, good.
    Good,
    /// One certificate, revoked.
    Revoked,
    /// One certificate, not ours or not known.
    Unknown,
    /// Several certificates in one request.
    Several,
    /// The request could not be read (`malformedRequest`).
    Malformed,
    /// A certificate of another CA (`unauthorized`).
    Unauthorized,
    /// The responder failed (`internalError`).
    InternalError,
}

impl OcspOutcome {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            OcspOutcome::Good => "good",
            OcspOutcome::Revoked => "revoked",
            OcspOutcome::Unknown => "unknown",
            OcspOutcome::Several => "several",
            OcspOutcome::Malformed => "malformed",
            OcspOutcome::Unauthorized => "unauthorized",
            OcspOutcome::InternalError => "internal_error",
        }
    }
}

/// An HTTP-free answer to an OCSP request.
#[derive(Clone, Debug)]
pub struct OcspAnswer {
    /// What it said.
    pub outcome: OcspOutcome,
    /// DER of the OCSPResponse (successful or an error status).
    pub der: Arc<Vec<u8>>,
    /// For successful single answers: how long a cache may keep it.
    pub next_update: Option<OffsetDateTime>,
    /// For successful answers: when it was signed (HTTP `Last-Modified`, RFC 5019 6.2).
    pub produced_at: Option<OffsetDateTime>,
}

/// One check of `GET /ready`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadinessCheck {
    /// What was checked (`database`, `crl`, `ocsp`, `signing`).
    pub name: &'static str,
    /// Whether it is fine.
    pub ok: bool,
    /// What was found, in a sentence.
    pub detail: String,
}

/// Certificate status as the web tier publishes it: OCSP answers and the current CRL.
#[async_trait]
pub trait StatusPublisher: Send + Sync {
    /// Answers a DER OCSPRequest (an error status for a malformed one).
    async fn answer_ocsp(&self, request_der: &[u8]) -> OcspAnswer;

    /// The current CRL.
    fn crl(&self) -> Option<Arc<CrlRecord>>;

    /// Whether the service can do its work now: the database answers, the CRL is not
    /// past its nextUpdate, the OCSP responses are signed and current, the signing keys'
    /// certificates are valid.
    async fn readiness(&self) -> Vec<ReadinessCheck>;

    /// Figures for `/metrics` read from the database at each scrape.
    async fn figures(&self) -> Result<ServiceFigures, DomainError>;
}

/// Figures for `/metrics` that every process sharing the database sees alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceFigures {
    /// Certificates issued, ever.
    pub issued: u64,
    /// Of them, revoked.
    pub revoked: u64,
    /// When the last audit checkpoint was mailed (Unix seconds).
    pub last_checkpoint_at: Option<i64>,
    /// Database connections open.
    pub pool_size: u32,
    /// Of them, idle.
    pub pool_idle: u32,
    /// The most the pool opens.
    pub pool_max: u32,
}
