//! Certificate status: the OCSP responder's cache of pre-signed responses and the CRL
//! publishing schedule.
//!
//! RFC 6960 with the RFC 5019 lightweight profile: every certificate this CA issued
//! has a response signed ahead of time by the delegated responder, so answering a
//! request is a lookup. Responses are valid [`OCSP_VALIDITY_HOURS`] and re-signed
//! after [`OCSP_RESIGN_HOURS`] (CA/B Forum S/MIME BR 4.9.10: at least 8 hours, at most
//! 10 days). A serial we never issued gets `unknown`, signed on demand, never `good`.
//!
//! [`StatusService::refresh`] runs every refresh interval in each `serve` process: it
//! signs responses for certificates issued or revoked since the last run (so a
//! revocation made by any process or by `certdesk revoke` is answered by every
//! process within one interval), re-signs ageing responses, issues a new CRL when a
//! revocation appeared or the newest CRL is a day old (BR 4.9.7 asks for at least every
//! 7 days; its nextUpdate is 7 days out), and renews the responder certificate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use certdesk_pki::crl::RevocationReason;
use certdesk_pki::ocsp::{self, CertId, CertStatus, ErrorStatus, IssuerHashes, SingleAnswer};
use time::{Duration, OffsetDateTime};

use crate::authority::{internal, Authority};
use crate::issuer::{Issuer, OcspResponder};
use certdesk_core::clock::Clock;
use certdesk_core::error::DomainError;
use certdesk_store::{CrlRecord, StatusRow};

/// Validity of a pre-signed OCSP response.
pub const OCSP_VALIDITY_HOURS: i64 = 96;
/// Age after which a cached response is signed again.
pub const OCSP_RESIGN_HOURS: i64 = 24;
pub use crate::authority::CRL_REISSUE_HOURS;

const ACTOR: &str = "system:serve";

/// A signed response and what it says.
#[derive(Clone, Debug)]
pub struct CachedResponse {
    /// DER of the OCSPResponse.
    pub der: Arc<Vec<u8>>,
    /// thisUpdate (also when it was signed).
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    status: CertStatus,
}

/// What a refresh did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Responses signed.
    pub signed: usize,
    /// Whether a new CRL was issued.
    pub crl_issued: bool,
    /// Whether the responder certificate was renewed.
    pub responder_renewed: bool,
}

pub use certdesk_core::ports::{OcspAnswer, OcspOutcome};

/// The status service of one `serve` process.
pub struct StatusService {
    authority: Arc<Authority>,
    issuer: Issuer,
    responder: RwLock<Arc<OcspResponder>>,
    hashes: IssuerHashes,
    cache: RwLock<HashMap<Vec<u8>, CachedResponse>>,
    watermark: Mutex<i64>,
    crl: RwLock<Option<Arc<CrlRecord>>>,
    /// A CRL was due and could not be issued: the next refresh issues one.
    crl_due: std::sync::atomic::AtomicBool,
    /// Why the last refresh failed (a token gone, the database down), until one succeeds:
    /// `/ready` says so, while the pre-signed answers are served until their nextUpdate.
    refresh_failure: Mutex<Option<String>>,
    clock: Arc<dyn Clock>,
}

fn status_of(row: &StatusRow) -> Result<CertStatus, DomainError> {
    Ok(match row.revoked_at {
        None => CertStatus::Good,
        Some(at) => CertStatus::Revoked {
            at: OffsetDateTime::from_unix_timestamp(at).map_err(internal)?,
            reason: row.revocation_reason.filter(|r| *r != RevocationReason::Unspecified),
        },
    })
}

impl StatusService {
    /// Builds the service; call [`StatusService::refresh`] before answering.
    pub fn new(
        authority: Arc<Authority>,
        issuer: Issuer,
        responder: OcspResponder,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DomainError> {
        let issuing = issuer.chain().first().cloned().ok_or_else(|| internal("the issuer has no certificate"))?;
        let hashes = IssuerHashes::new(&issuing).map_err(internal)?;
        Ok(Self {
            authority,
            issuer,
            responder: RwLock::new(Arc::new(responder)),
            hashes,
            cache: RwLock::new(HashMap::new()),
            watermark: Mutex::new(0),
            crl: RwLock::new(None),
            crl_due: std::sync::atomic::AtomicBool::new(false),
            refresh_failure: Mutex::new(None),
            clock,
        })
    }

    /// The authority (store and configuration).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The unlocked issuing CA, for issuance by the portal.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    fn responder(&self) -> Arc<OcspResponder> {
        match self.responder.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn sign_single(&self, id: CertId, status: CertStatus, now: OffsetDateTime) -> Result<CachedResponse, DomainError> {
        let this_update = now;
        let next_update = now + Duration::hours(OCSP_VALIDITY_HOURS);
        let answer = SingleAnswer { cert_id: id, status, this_update, next_update };
        let der = self.responder().sign_response(std::slice::from_ref(&answer), now, None)?;
        Ok(CachedResponse { der: Arc::new(der), this_update, next_update, status })
    }

    /// The CertID (SHA-1, as RFC 5019 clients send) for one of our serials.
    fn cert_id(&self, serial: &[u8]) -> CertId {
        self.hashes.cert_id(ocsp::CertIdHash::Sha1, serial)
    }

    /// Signs what changed, re-signs what ages, keeps the CRL and responder fresh.
    pub async fn refresh(&self) -> Result<RefreshReport, DomainError> {
        let result = self.refresh_now().await;
        if let Ok(mut failure) = self.refresh_failure.lock() {
            *failure = result.as_ref().err().map(ToString::to_string);
        }
        result
    }

    async fn refresh_now(&self) -> Result<RefreshReport, DomainError> {
        let now = self.clock.now().replace_nanosecond(0).map_err(internal)?;
        let mut report = RefreshReport::default();

        if self.responder().needs_renewal(now) {
            let old = self.responder();
            let fresh = old.renew(self.authority.data(), &self.issuer, &self.authority.config().organization, now)?;
            *self.responder.write().map_err(|_| internal("lock poisoned"))? = Arc::new(fresh);
            report.responder_renewed = true;
        }

        let since = *self.watermark.lock().map_err(|_| internal("lock poisoned"))?;
        // Overlap by a few seconds: a change committed during this second is not missed.
        let next_watermark = now.unix_timestamp() - 5;
        let changed = self.authority.store().status_changes_since(since).await?;
        let mut revocation_seen = false;
        let mut fresh = Vec::with_capacity(changed.len());
        for row in &changed {
            let serial = hex::decode(row.serial.as_str()).map_err(internal)?;
            let status = status_of(row)?;
            revocation_seen |= matches!(status, CertStatus::Revoked { .. });
            fresh.push((serial, status));
        }
        // Ageing responses.
        {
            let cache = self.cache.read().map_err(|_| internal("lock poisoned"))?;
            for (serial, cached) in cache.iter() {
                if now - cached.this_update >= Duration::hours(OCSP_RESIGN_HOURS) || report.responder_renewed {
                    fresh.push((serial.clone(), cached.status));
                }
            }
        }
        for (serial, status) in fresh {
            let id = self.cert_id(&serial);
            let signed = crate::issuer::blocking_signature(|| self.sign_single(id, status, now))?;
            self.cache.write().map_err(|_| internal("lock poisoned"))?.insert(serial, signed);
            report.signed += 1;
        }
        *self.watermark.lock().map_err(|_| internal("lock poisoned"))? = next_watermark;

        // The CRL: newest from the database (another process may have made it). The
        // watermark has moved past what changed: should this fail, the next refresh
        // issues a CRL anyway.
        let latest = match self.authority.store().latest_crl().await {
            Ok(latest) => latest,
            Err(e) => {
                self.crl_due.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
        };
        let stale = match &latest {
            None => true,
            Some(crl) => {
                now.unix_timestamp() - crl.this_update >= CRL_REISSUE_HOURS * 3600
                    || (revocation_seen && changed.iter().any(|r| r.revoked_at.is_some_and(|at| at >= crl.this_update)))
            }
        };
        let due = self.crl_due.swap(false, std::sync::atomic::Ordering::SeqCst);
        let stale = stale || due;
        let current = if stale {
            match self.authority.issue_crl(&self.issuer, ACTOR).await {
                Ok(crl) => {
                    report.crl_issued = true;
                    Some(crl)
                }
                // (A lost crlNumber race is retried inside issue_crl.) Serve the newest
                // CRL there is, say why, and try again at the next refresh: the watermark
                // has moved past the revocation that made this one due.
                Err(e) => {
                    eprintln!("certdesk serve: issuing a CRL failed (retried at the next refresh): {e}");
                    self.crl_due.store(true, std::sync::atomic::Ordering::SeqCst);
                    self.authority.store().latest_crl().await?
                }
            }
        } else {
            latest
        };
        *self.crl.write().map_err(|_| internal("lock poisoned"))? = current.map(Arc::new);
        Ok(report)
    }

    /// The checks of `GET /ready` (see [`certdesk_core::ports::StatusPublisher::readiness`]).
    pub async fn readiness(&self) -> Vec<certdesk_core::ports::ReadinessCheck> {
        use certdesk_core::ports::ReadinessCheck;
        let now = self.clock.now();
        let check = |name, ok, detail: String| ReadinessCheck { name, ok, detail };
        let mut checks = Vec::with_capacity(4);
        checks.push(match self.authority.store().ping().await {
            Ok(()) => check("database", true, "the database answers".into()),
            Err(e) => check("database", false, format!("the database does not answer: {e}")),
        });
        checks.push(match self.crl() {
            Some(crl) if crl.next_update > now.unix_timestamp() => {
                check("crl", true, format!("CRL {} is current until {}", crl.number, unix_text(crl.next_update)))
            }
            Some(crl) => check(
                "crl",
                false,
                format!(
                    "CRL {} is past its nextUpdate ({}) and no new one was issued",
                    crl.number,
                    unix_text(crl.next_update)
                ),
            ),
            None => check("crl", false, "no CRL has been issued yet".into()),
        });
        checks.push(match self.cache.read() {
            Ok(cache) => {
                let stale = cache.values().filter(|c| c.next_update <= now).count();
                let refreshed = self.watermark.lock().map(|w| *w != 0).unwrap_or(false);
                if !refreshed {
                    check("ocsp", false, "the OCSP responses have not been signed yet".into())
                } else if stale > 0 {
                    check(
                        "ocsp",
                        false,
                        format!("{stale} of {} pre-signed OCSP responses are past nextUpdate", cache.len()),
                    )
                } else {
                    check("ocsp", true, format!("pre-signed OCSP responses: {}, all current", cache.len()))
                }
            }
            Err(_) => check("ocsp", false, "the OCSP cache is unusable (a lock was poisoned)".into()),
        });
        let issuing_until = self.issuer.chain().first().and_then(|der| certificate_not_after(der));
        let responder_until = self.responder().not_after();
        let failure = self.refresh_failure.lock().ok().and_then(|f| f.clone());
        checks.push(match issuing_until {
            // The reason is in the log: module paths and database errors stay inside.
            _ if failure.is_some() => check(
                "signing",
                false,
                "the last status refresh failed (the log says why: a signing key's token gone, the database \
                 down, ...); the pre-signed answers are served until their nextUpdate"
                    .to_string(),
            ),
            Some(until) if until > now && responder_until > now => check(
                "signing",
                true,
                format!(
                    "the issuing CA certificate is valid until {} and the OCSP responder's until {}",
                    unix_text(until.unix_timestamp()),
                    unix_text(responder_until.unix_timestamp())
                ),
            ),
            Some(until) if until <= now => check(
                "signing",
                false,
                format!("the issuing CA certificate expired at {}", unix_text(until.unix_timestamp())),
            ),
            Some(_) => check(
                "signing",
                false,
                format!("the OCSP responder certificate expired at {}", unix_text(responder_until.unix_timestamp())),
            ),
            None => check("signing", false, "the issuing CA certificate cannot be read".into()),
        });
        checks
    }

    /// The current CRL.
    pub fn crl(&self) -> Option<Arc<CrlRecord>> {
        self.crl.read().ok().and_then(|c| c.clone())
    }

    /// Answers a DER OCSPRequest.
    pub async fn answer(&self, request_der: &[u8]) -> OcspAnswer {
        match self.try_answer(request_der).await {
            Ok(answer) => answer,
            Err(_) => error_answer(ErrorStatus::InternalError),
        }
    }

    async fn try_answer(&self, request_der: &[u8]) -> Result<OcspAnswer, DomainError> {
        let request = match ocsp::parse_request(request_der) {
            Ok(request) => request,
            Err(_) => return Ok(error_answer(ErrorStatus::MalformedRequest)),
        };
        if request.cert_ids.iter().any(|id| !self.hashes.matches(id)) {
            return Ok(error_answer(ErrorStatus::Unauthorized));
        }
        let now = self.clock.now().replace_nanosecond(0).map_err(internal)?;
        if let [id] = request.cert_ids.as_slice() {
            // The fast path: a pre-signed response (RFC 5019: no nonce echoed).
            if id.hash == ocsp::CertIdHash::Sha1 {
                let cached = self.cache.read().map_err(|_| internal("lock poisoned"))?.get(&id.serial).cloned();
                if let Some(cached) = cached.filter(|c| c.next_update > now) {
                    return Ok(OcspAnswer {
                        outcome: outcome_of(&cached.status),
                        der: cached.der,
                        next_update: Some(cached.next_update),
                        produced_at: Some(cached.this_update),
                    });
                }
            }
        }
        // Slow path: look each serial up and sign now.
        let mut answers = Vec::with_capacity(request.cert_ids.len());
        for id in &request.cert_ids {
            let status = match self.authority.store().certificate_status(&hex::encode(&id.serial)).await? {
                Some(row) => status_of(&row)?,
                // BR 4.9.10: never "good" for a serial we did not issue.
                None => CertStatus::Unknown,
            };
            answers.push(SingleAnswer {
                cert_id: id.clone(),
                status,
                this_update: now,
                next_update: now + Duration::hours(OCSP_VALIDITY_HOURS),
            });
        }
        let responder = self.responder();
        let der =
            crate::issuer::blocking_signature(|| responder.sign_response(&answers, now, request.nonce.as_deref()))?;
        let next_update = if answers.len() == 1 { answers.first().map(|a| a.next_update) } else { None };
        let outcome = match answers.as_slice() {
            [single] => outcome_of(&single.status),
            _ => OcspOutcome::Several,
        };
        Ok(OcspAnswer { outcome, der: Arc::new(der), next_update, produced_at: Some(now) })
    }
}

/// A certificate's notAfter.
fn certificate_not_after(der: &[u8]) -> Option<OffsetDateTime> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let seconds = cert.tbs_certificate().validity().not_after.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).ok()?).ok()
}

pub(crate) use certdesk_core::clock::unix_text;

/// What `/metrics` counts for a certificate status.
fn outcome_of(status: &CertStatus) -> OcspOutcome {
    match status {
        CertStatus::Good => OcspOutcome::Good,
        CertStatus::Revoked { .. } => OcspOutcome::Revoked,
        CertStatus::Unknown => OcspOutcome::Unknown,
    }
}

fn error_answer(status: ErrorStatus) -> OcspAnswer {
    let outcome = match status {
        ErrorStatus::MalformedRequest => OcspOutcome::Malformed,
        ErrorStatus::Unauthorized => OcspOutcome::Unauthorized,
        _ => OcspOutcome::InternalError,
    };
    OcspAnswer { outcome, der: Arc::new(ocsp::error_response(status)), next_update: None, produced_at: None }
}

#[async_trait::async_trait]
impl certdesk_core::ports::StatusPublisher for StatusService {
    async fn answer_ocsp(&self, request_der: &[u8]) -> OcspAnswer {
        self.answer(request_der).await
    }

    fn crl(&self) -> Option<Arc<CrlRecord>> {
        StatusService::crl(self)
    }

    async fn readiness(&self) -> Vec<certdesk_core::ports::ReadinessCheck> {
        StatusService::readiness(self).await
    }

    async fn figures(&self) -> Result<certdesk_core::ports::ServiceFigures, DomainError> {
        let store = self.authority.store();
        let (issued, revoked) = store.certificate_totals().await?;
        let (pool_size, pool_idle, pool_max) = store.pool_figures();
        Ok(certdesk_core::ports::ServiceFigures {
            issued,
            revoked,
            last_checkpoint_at: store.last_checkpoint_at().await?,
            pool_size,
            pool_idle,
            pool_max,
        })
    }
}
