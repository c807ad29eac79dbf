//! The issuer: the only code that holds or calls the CA's signing key.
//!
//! It unlocks the issuing CA key with the passphrase, and signs exactly what
//! `certdesk_pki::issuance::prepare` linted, and CRLs.

use certdesk_pki::crl::{build_crl, CrlContent};
use certdesk_pki::issuance::{issue, IssuanceToken, IssuedCertificate, IssuerInfo, PublicationUrls};
use certdesk_pki::key::{KeyError, PrivateKey, Signer};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use certdesk_core::datadir::{read, DataDir};
use certdesk_core::error::{DomainError, ErrorCode};

/// A CA key: in a file (decrypted with the CA passphrase) or on a PKCS#11 token
/// (logged in with its PIN, given where the passphrase goes).
pub enum CaKey {
    /// From an encrypted key file.
    File(PrivateKey),
    /// From an encrypted key file, an RSA key signing with RSASSA-PSS.
    FilePss(certdesk_pki::key::RsaPssKey),
    /// On a token.
    Token(crate::pkcs11::TokenKey),
}

impl Signer for CaKey {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self {
            CaKey::File(key) => key.signature_algorithm(),
            CaKey::FilePss(key) => key.signature_algorithm(),
            CaKey::Token(key) => key.signature_algorithm(),
        }
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        match self {
            CaKey::File(key) => key.public_key(),
            CaKey::FilePss(key) => key.public_key(),
            CaKey::Token(key) => key.public_key(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            CaKey::File(key) => key.sign(message),
            CaKey::FilePss(key) => key.sign(message),
            CaKey::Token(key) => key.sign(message),
        }
    }
}

impl CaKey {
    /// The same key again (a file key decoded anew; a token key shares the session).
    fn duplicate(&self) -> Result<Self, DomainError> {
        Ok(match self {
            CaKey::File(key) => CaKey::File(
                PrivateKey::from_pkcs8_der(key.pkcs8_der())
                    .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))?,
            ),
            CaKey::FilePss(key) => CaKey::FilePss(
                certdesk_pki::key::RsaPssKey::new(
                    PrivateKey::from_pkcs8_der(key.key().pkcs8_der())
                        .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))?,
                )
                .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))?,
            ),
            CaKey::Token(key) => CaKey::Token(key.clone()),
        })
    }

    /// This key signing with RSASSA-PSS (`[ca] rsa_pss`); refused for a key that is not
    /// RSA.
    pub fn with_rsa_pss(self, pss: bool) -> Result<Self, DomainError> {
        if !pss {
            return Ok(self);
        }
        let not_rsa = || DomainError::new(ErrorCode::Config, "[ca] rsa_pss is set, but a CA key is not RSA");
        match self {
            CaKey::File(key) => certdesk_pki::key::RsaPssKey::new(key).map(CaKey::FilePss).map_err(|_| not_rsa()),
            CaKey::FilePss(key) => Ok(CaKey::FilePss(key)),
            CaKey::Token(key) => key.with_rsa_pss().map(CaKey::Token).ok_or_else(not_rsa),
        }
    }
}

/// Runs a signature (a token's may wait on the device, a file key's takes milliseconds
/// for RSA) so that it does not hold up the other tasks of the async runtime: on a
/// multi-threaded runtime the worker hands its other tasks on first
/// (`block_in_place`); elsewhere it just runs.
pub fn blocking_signature<T>(sign: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(sign)
        }
        _ => sign(),
    }
}

/// Opens a CA key file: an encrypted key (decrypted with `secret`, the CA passphrase)
/// or a reference to a key on a token (`secret` is then the token's PIN).
pub fn unlock_ca_key(bytes: &[u8], secret: &str) -> Result<CaKey, DomainError> {
    if let Some(reference) = crate::pkcs11::reference_in(bytes) {
        let reference = reference?;
        let token = crate::pkcs11::Token::open(&reference, secret)?;
        return Ok(CaKey::Token(token.key(&reference.label)?));
    }
    unlock_key(bytes, secret).map(CaKey::File)
}

/// The unlocked issuing CA.
pub struct Issuer {
    key: std::sync::Arc<CaKey>,
    info: IssuerInfo,
    chain_der: Vec<Vec<u8>>,
    /// Started at the first [`Issuer::sign_certificates`] (again after a failed start
    /// or if its threads are gone); its threads end when the issuer is dropped.
    lanes: std::sync::Mutex<Option<SigningLanes>>,
    /// What the signing threads have done so far.
    signed: std::sync::Arc<SigningCounters>,
}

/// Counted by the signing threads, per batch (an atomic addition or two per batch).
#[derive(Default)]
struct SigningCounters {
    certificates: std::sync::atomic::AtomicU64,
    nanoseconds: std::sync::atomic::AtomicU64,
}

/// How much the signing threads of an [`Issuer`] have signed, and for how long: the wall
/// time from taking a batch to handing it back, summed over batches and threads. It
/// counts the building of each certificate around its signature and any time a thread
/// waited for a core. With one signing thread (two cores) and the time a run of
/// issuances took, it tells whether the key waited for the work around it
/// (`scripts/bench`). The two figures are read one after the other: exact once the
/// batches counted have been answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigningStats {
    /// Certificates signed (of batches signed whole).
    pub certificates: u64,
    /// Time spent signing (every batch, also one that failed).
    pub busy: std::time::Duration,
}

fn lanes_stopped() -> DomainError {
    DomainError::new(ErrorCode::Internal, "the CA's signing threads have stopped")
}

/// What a signing thread answers for a batch: its certificates, in order.
type Signed = Result<Vec<IssuedCertificate>, DomainError>;

/// A batch of linted certificates for a signing thread, with where the signatures go.
type SigningJob = (Vec<IssuanceToken>, tokio::sync::oneshot::Sender<Signed>);

/// Threads that sign certificates with the issuing key, one batch at a time each (issue
/// 11): while they sign a batch, the async tasks prepare, lint and commit the next and
/// the previous one. One thread fewer than the machine has cores (at least one), so a
/// core stays free for that work; on two cores the key signs on one, as the raw rate of
/// `scripts/bench` does.
struct SigningLanes {
    /// `None` only while dropping.
    jobs: Option<std::sync::mpsc::Sender<SigningJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for SigningLanes {
    /// Ends the threads and waits for them, so the key's last reference is dropped here:
    /// a token's PKCS#11 library must not be finalised by a thread racing the process's
    /// exit (SoftHSM2 then aborts with "double free").
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl SigningLanes {
    fn start(key: &std::sync::Arc<CaKey>, counters: &std::sync::Arc<SigningCounters>) -> Result<Self, DomainError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1));
        let (jobs, queue) = std::sync::mpsc::channel::<SigningJob>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let mut lanes = Self { jobs: Some(jobs), threads: Vec::with_capacity(threads) };
        for i in 0..threads {
            let (key, queue, counters) = (key.clone(), queue.clone(), counters.clone());
            let thread = std::thread::Builder::new()
                .name(format!("ca-sign-{i}"))
                .spawn(move || loop {
                    // The lock is held while waiting for a job only, not while signing.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok((tokens, answer)) = job else { return };
                    let (started, count) = (std::time::Instant::now(), tokens.len() as u64);
                    // A panic fails this batch only; the thread goes on with the next.
                    let signed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        tokens
                            .into_iter()
                            .map(|token| {
                                issue(token, key.as_ref())
                                    .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
                            })
                            .collect()
                    }))
                    .unwrap_or_else(|_| {
                        Err(DomainError::new(ErrorCode::Internal, "signing failed: the signing thread panicked"))
                    });
                    let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    if signed.is_ok() {
                        counters.certificates.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                    }
                    counters.nanoseconds.fetch_add(took, std::sync::atomic::Ordering::Relaxed);
                    // The caller may have gone (its task was cancelled): nothing to tell.
                    let _ = answer.send(signed);
                })
                .map_err(|e| DomainError::new(ErrorCode::Internal, format!("cannot start a signing thread: {e}")))?;
            lanes.threads.push(thread);
        }
        Ok(lanes)
    }
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("name", &self.info.name().to_string()).finish_non_exhaustive()
    }
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` PEM file's content.
pub fn unlock_key(pem: &[u8], passphrase: &str) -> Result<PrivateKey, DomainError> {
    let der = certdesk_pki::pem::decode_first(pem, &["ENCRYPTED PRIVATE KEY"]).map_err(|e| match e {
        certdesk_pki::pem::PemError::Missing { .. } => {
            DomainError::new(ErrorCode::DataDir, "the CA key file is not an encrypted private key")
        }
        e => DomainError::new(ErrorCode::DataDir, format!("the CA key file is damaged: {e}")),
    })?;
    let plain: Zeroizing<Vec<u8>> = match certdesk_pki::pbes2::decrypt_private_key_info(&der, passphrase.as_bytes()) {
        Ok(plain) => plain,
        Err(certdesk_pki::pbes2::Error::WrongPassword) => {
            return Err(DomainError::new(ErrorCode::Passphrase, "the CA passphrase is wrong"))
        }
        Err(e) => return Err(DomainError::new(ErrorCode::DataDir, format!("the CA key cannot be decrypted: {e}"))),
    };
    PrivateKey::from_pkcs8_der(&plain)
        .map_err(|e| DomainError::new(ErrorCode::DataDir, format!("the CA key is damaged: {e}")))
}

/// PEM text of `der` under `label`.
pub(crate) fn pem(label: &'static str, der: &[u8]) -> Result<String, DomainError> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der)
        .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
}

/// Reads the first certificate of a PEM file as DER.
pub fn read_cert_pem(bytes: &[u8]) -> Result<Vec<u8>, DomainError> {
    certdesk_pki::pem::decode_first(bytes, &["CERTIFICATE"]).map_err(|e| match e {
        certdesk_pki::pem::PemError::Missing { .. } => {
            DomainError::new(ErrorCode::DataDir, "a CA certificate file holds no certificate")
        }
        e => DomainError::new(ErrorCode::DataDir, format!("a CA certificate file is damaged: {e}")),
    })
}

impl Issuer {
    /// Unlocks the issuing CA of a data directory.
    pub fn unlock(data: &DataDir, passphrase: &str, urls: PublicationUrls, rsa_pss: bool) -> Result<Self, DomainError> {
        let key = unlock_ca_key(&read(&data.issuing_key())?, passphrase)?.with_rsa_pss(rsa_pss)?;
        let issuing = read_cert_pem(&read(&data.issuing_cert())?)?;
        let root = read_cert_pem(&read(&data.root_cert())?)?;
        let info = IssuerInfo::from_certificate(&issuing, key.signature_algorithm(), urls)
            .map_err(|e| DomainError::new(ErrorCode::DataDir, e.to_string()))?;
        if info.public_key() != key.public_key() {
            return Err(DomainError::new(ErrorCode::DataDir, "the issuing CA key does not match its certificate"));
        }
        Ok(Self {
            key: std::sync::Arc::new(key),
            info,
            chain_der: vec![issuing, root],
            lanes: std::sync::Mutex::new(None),
            signed: std::sync::Arc::default(),
        })
    }

    /// What issuance needs to know of this CA.
    pub fn info(&self) -> &IssuerInfo {
        &self.info
    }

    /// Issuing CA then root, DER.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// Signs linted certificates, in their order, on a signing thread of this issuer
    /// (`SigningLanes`: one fewer than the machine has cores, at least one). The batch
    /// is queued for the thread at once, at the call, so a caller can queue the next
    /// batch before awaiting this one; awaiting does not hold up the async runtime.
    pub fn sign_certificates(
        &self,
        tokens: Vec<IssuanceToken>,
    ) -> impl std::future::Future<Output = Signed> + Send + 'static {
        let queued = self.queue(tokens);
        async move { queued?.await.map_err(|_| lanes_stopped())? }
    }

    /// How much this issuer's signing threads have signed so far, and for how long.
    pub fn signing_stats(&self) -> SigningStats {
        SigningStats {
            certificates: self.signed.certificates.load(std::sync::atomic::Ordering::Relaxed),
            busy: std::time::Duration::from_nanos(self.signed.nanoseconds.load(std::sync::atomic::Ordering::Relaxed)),
        }
    }

    /// Queues a batch for the signing threads, starting them if they are not running.
    fn queue(&self, tokens: Vec<IssuanceToken>) -> Result<tokio::sync::oneshot::Receiver<Signed>, DomainError> {
        let mut lanes = self.lanes.lock().map_err(|_| lanes_stopped())?;
        let running = match lanes.take() {
            Some(running) => running,
            None => SigningLanes::start(&self.key, &self.signed)?,
        };
        let (answer, signed) = tokio::sync::oneshot::channel();
        let sent = running.jobs.as_ref().is_some_and(|jobs| jobs.send((tokens, answer)).is_ok());
        if sent {
            *lanes = Some(running);
            Ok(signed)
        } else {
            // Every thread is gone: the next call starts new ones.
            Err(lanes_stopped())
        }
    }

    /// Builds and signs a CRL.
    pub fn sign_crl(&self, content: &CrlContent<'_>) -> Result<Vec<u8>, DomainError> {
        build_crl(&self.info, content, self.key.as_ref())
            .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
    }
}

/// Validity of the delegated OCSP responder certificate. It carries
/// id-pkix-ocsp-nocheck, so it is kept short and renewed by `serve` when less than
/// [`OCSP_RENEW_BEFORE_DAYS`] remain.
pub const OCSP_RESPONDER_DAYS: i64 = 90;
/// Renew the OCSP responder certificate when fewer days than this remain.
pub const OCSP_RENEW_BEFORE_DAYS: i64 = 30;

/// Makes the delegated OCSP responder certificate for `public_key`, signed by the
/// issuing CA.
pub fn certify_ocsp_responder(
    issuer: &IssuerInfo,
    issuer_key: &dyn Signer,
    public_key: &spki::SubjectPublicKeyInfoOwned,
    org: &certdesk_pki::subject::Organization,
    now: time::OffsetDateTime,
) -> Result<Vec<u8>, DomainError> {
    let subject = certdesk_pki::subject::ca_name(&format!("{} S/MIME OCSP Responder", org.name.as_str()), org)
        .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))?;
    certdesk_pki::issuance::build_ocsp_responder_certificate(
        &subject,
        public_key,
        now,
        now + time::Duration::days(OCSP_RESPONDER_DAYS),
        issuer,
        issuer_key,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
}

/// The delegated OCSP responder: its key (unlocked) and certificate.
pub struct OcspResponder {
    key: CaKey,
    cert_der: Vec<u8>,
    not_after: time::OffsetDateTime,
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder").field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

impl OcspResponder {
    /// Unlocks the responder key and reads its certificate.
    pub fn unlock(data: &DataDir, passphrase: &str) -> Result<Self, DomainError> {
        let key = unlock_ca_key(&read(&data.ocsp_key())?, passphrase)?;
        let cert_der = read_cert_pem(&read(&data.ocsp_cert())?)?;
        Self::new(key, cert_der)
    }

    fn new(key: CaKey, cert_der: Vec<u8>) -> Result<Self, DomainError> {
        use der::Decode;
        let cert = x509_cert::Certificate::from_der(&cert_der).map_err(|e| {
            DomainError::new(ErrorCode::DataDir, format!("the OCSP responder certificate is damaged: {e}"))
        })?;
        if cert.tbs_certificate().subject_public_key_info() != key.public_key() {
            return Err(DomainError::new(ErrorCode::DataDir, "the OCSP responder key does not match its certificate"));
        }
        let not_after = time::OffsetDateTime::from_unix_timestamp(
            i64::try_from(cert.tbs_certificate().validity().not_after.to_unix_duration().as_secs()).unwrap_or(i64::MAX),
        )
        .map_err(|e| DomainError::new(ErrorCode::DataDir, e.to_string()))?;
        Ok(Self { key, cert_der, not_after })
    }

    /// The responder certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.cert_der
    }

    /// When the responder certificate expires.
    pub fn not_after(&self) -> time::OffsetDateTime {
        self.not_after
    }

    /// Whether the certificate should be renewed at `now`.
    pub fn needs_renewal(&self, now: time::OffsetDateTime) -> bool {
        self.not_after - now < time::Duration::days(OCSP_RENEW_BEFORE_DAYS)
    }

    /// Signs an OCSP response with the responder key.
    pub fn sign_response(
        &self,
        answers: &[certdesk_pki::ocsp::SingleAnswer],
        produced_at: time::OffsetDateTime,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, DomainError> {
        certdesk_pki::ocsp::build_response(&self.key, &self.cert_der, answers, produced_at, nonce)
            .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
    }

    /// Issues a new responder certificate for the same key, writes it to the data
    /// directory (atomically) and returns the renewed responder.
    pub fn renew(
        &self,
        data: &DataDir,
        issuer: &Issuer,
        org: &certdesk_pki::subject::Organization,
        now: time::OffsetDateTime,
    ) -> Result<Self, DomainError> {
        let cert_der = certify_ocsp_responder(&issuer.info, issuer.key.as_ref(), self.key.public_key(), org, now)?;
        certdesk_core::datadir::replace(&data.ocsp_cert(), pem("CERTIFICATE", &cert_der)?.as_bytes())?;
        Self::new(self.key.duplicate()?, cert_der)
    }
}
