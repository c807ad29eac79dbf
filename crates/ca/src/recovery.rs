//! Crash safety of issuance: intents, pending deliveries, and their resolution.
//!
//! Issuance follows Boulder's order (`Authority::issue_batch`):
//!
//! 1. **intent** — one commit (ordered before step 3's and made durable by its sync, see
//!    `Store::record_intents`) reserves the serial (unique forever) and records
//!    the intent: serial, SHA-256 of the to-be-signed certificate, mailbox, profile,
//!    `notAfter`, the application (which moves to `issued` in the same commit) and the
//!    [`Owner`], the process that will sign;
//! 2. **sign**;
//! 3. **record** — one durable commit stores the certificate, its audit record, the
//!    application's serial and, for a server-made key, the `.p12` (encrypted under the
//!    subscriber's password, so the key is durable no later than the certificate), and
//!    deletes the intent;
//! 4. **deliver** — the caller hands the certificate or `.p12` over (HTTP answer, file),
//!    then [`Authority::delivered`] deletes the stored `.p12`.
//!
//! What a SIGKILL leaves behind, and how [`Authority::recover`] (run by `serve` at start
//! and on every refresh, and by every `certdesk` command that changes CA state) resolves
//! it once the owner is gone:
//!
//! | killed | left behind | resolution |
//! |---|---|---|
//! | before 1 commits | nothing | — |
//! | between 1 and 3 | an intent; the application `issued` without a serial | the intent is abandoned: deleted, the application back to `approved`, an audit record `certificate.abandoned` with the to-be-signed hash. The signature, if made, never left the process, and the serial is never used again. |
//! | between 3 and 4 (portal) | certificate and `.p12` stored | the portal keeps the `.p12` a week ([`PORTAL_P12_KEEP_SECONDS`]) and offers it again (same password); then it is deleted, and the certificate revoked if the `.p12` was never sent |
//! | between 3 and 4 (`certdesk issue --p12`) | certificate and `.p12` stored, the file perhaps written | if the file holds exactly that `.p12`, it was delivered; if it does not, or the file cannot be checked (another host, unreadable) by the time the owner is surely gone, the certificate is revoked (cessationOfOperation) with an audit record saying it was never delivered |
//!
//! A revocation deletes the stored `.p12` of its certificate. A `.p12` of a profile that
//! escrows separately holds two keys: its signing certificate (a `companion`) is revoked
//! with the encryption one, first.
//!
//! An owner is gone when it ran on this host and its process no longer runs (or its
//! pid now belongs to this process, started later), or when its intent is older than
//! [`STALE_AFTER_SECONDS`] (another host of a shared PostgreSQL database).

use std::fmt;

use certdesk_core::audit::{seal, AuditEvent};
use certdesk_core::error::DomainError;
use certdesk_pki::crl::RevocationReason;
use certdesk_store::{IssuanceIntent, Serial};
use serde_json::json;

use crate::authority::Authority;

/// How old an intent or pending delivery of another host must be before it is
/// resolved: far longer than any issuance takes (a .p12 with ten million PBKDF2
/// iterations takes seconds).
pub const STALE_AFTER_SECONDS: i64 = 15 * 60;

/// How long the portal keeps a server-made key's .p12 (encrypted under the applicant's
/// password) to offer it again when a download did not complete: a week.
pub const PORTAL_P12_KEEP_SECONDS: i64 = 7 * 86_400;

/// The process that records an intent: host, process id and a random instance id
/// (a restarted container may get the same pid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    host: String,
    pid: u32,
    instance: String,
}

impl Owner {
    /// This process.
    pub fn this_process() -> Self {
        let mut random = [0u8; 8];
        let instance = match aws_lc_rs::rand::fill(&mut random) {
            Ok(()) => hex::encode(random),
            Err(_) => format!("t{}", time::OffsetDateTime::now_utc().unix_timestamp_nanos()),
        };
        Self { host: host_name(), pid: std::process::id(), instance }
    }

    /// Reads a stored owner (`host/pid/instance`); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.rsplitn(3, '/');
        let instance = parts.next()?.to_string();
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_string();
        Some(Self { host, pid, instance })
    }

    /// Whether work recorded by `recorded` at `created_at` may be resolved by this
    /// process at `now`: its owner is gone (see the module documentation).
    pub fn may_resolve(&self, recorded: &str, created_at: i64, now: i64) -> bool {
        if now - created_at >= STALE_AFTER_SECONDS {
            return true;
        }
        match Owner::parse(recorded) {
            Some(other) if other.host == self.host => {
                if other.pid == self.pid {
                    other.instance != self.instance
                } else {
                    !process_runs(other.pid)
                }
            }
            // Another host (or an unreadable owner): only by age.
            _ => false,
        }
    }

    /// Whether `recorded` ran on this host.
    pub fn same_host(&self, recorded: &str) -> bool {
        Owner::parse(recorded).is_some_and(|o| o.host == self.host)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.host, self.pid, self.instance)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().replace('/', "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether process `pid` runs on this host. Where `/proc` is missing the answer is
/// "yes", so only age resolves (the safe side).
fn process_runs(pid: u32) -> bool {
    let proc_root = std::path::Path::new("/proc/self");
    if !proc_root.exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// What [`Authority::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Serials whose intents were abandoned (never recorded as issued).
    pub abandoned: Vec<Serial>,
    /// Serials whose `.p12` had reached its file: only the stored copy was deleted.
    pub delivered: Vec<Serial>,
    /// Serials revoked because their `.p12` never reached anyone.
    pub revoked_undelivered: Vec<Serial>,
    /// Serials whose `.p12`, sent by the portal, was kept the week it is offered again.
    pub expired: Vec<Serial>,
}

impl RecoveryReport {
    /// Whether nothing was left to resolve.
    pub fn is_empty(&self) -> bool {
        self.abandoned.is_empty()
            && self.delivered.is_empty()
            && self.revoked_undelivered.is_empty()
            && self.expired.is_empty()
    }
}

/// Abandons one intent: deletes it, gives the application back (`approved`) and
/// appends `certificate.abandoned`, in one transaction. `false` if it was resolved
/// meanwhile.
pub(crate) async fn abandon(
    authority: &Authority,
    intent: &IssuanceIntent,
    actor: &str,
    why: &str,
) -> Result<bool, DomainError> {
    let at = authority.clock().now().unix_timestamp();
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "certificate.abandoned",
        subject: intent.serial.to_string(),
        details: json!({
            "email": intent.email,
            "profile": intent.profile.name(),
            "tbs_sha256": intent.tbs_sha256,
            "application": intent.application_id,
            "intent_at": intent.created_at,
            "owner": intent.owner,
            "reason": why,
        }),
    };
    authority.store().abandon_intent(intent, at, &|seq, prev| seal(&event, at, seq, prev)).await
}

impl Authority {
    /// Revokes the certificates whose keys were only in a .p12 that never arrived (the
    /// signing certificate beside an escrowed encryption one).
    async fn revoke_companions(&self, companions: &[Serial], actor: &str, note: &str) -> Result<(), DomainError> {
        for serial in companions {
            match self.revoke_noted(serial.as_str(), RevocationReason::CessationOfOperation, actor, Some(note)).await {
                Ok(_) => {}
                Err(e) if e.code() == certdesk_core::error::ErrorCode::AlreadyRevoked => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Revokes a certificate whose key never reached its subscriber (cessationOfOperation,
    /// audited with `note`); the stored .p12 goes with the revocation.
    async fn revoke_undelivered(&self, serial: &str, actor: &str, note: &str) -> Result<(), DomainError> {
        match self.revoke_noted(serial, RevocationReason::CessationOfOperation, actor, Some(note)).await {
            Ok(_) => {}
            Err(e) if e.code() == certdesk_core::error::ErrorCode::AlreadyRevoked => {}
            Err(e) => return Err(e),
        }
        self.store().delete_pending_delivery(serial).await?;
        Ok(())
    }

    /// Resolves what crashed issuances left behind (see the module documentation).
    /// Work of processes that still run is left alone.
    pub async fn recover(&self, actor: &str) -> Result<RecoveryReport, DomainError> {
        let now = self.clock().now().unix_timestamp();
        let mut report = RecoveryReport::default();
        for intent in self.store().intents().await? {
            if self.owner().may_resolve(&intent.owner, intent.created_at, now)
                && abandon(self, &intent, actor, "the issuing process ended before the certificate was recorded")
                    .await?
            {
                report.abandoned.push(intent.serial.clone());
            }
        }
        for delivery in self.store().pending_deliveries().await? {
            match (&delivery.application_id, delivery.destination.as_deref()) {
                // The portal's: offered again for a week, then deleted; revoked if it was
                // never sent at all.
                (Some(_), _) => {
                    if now - delivery.created_at < PORTAL_P12_KEEP_SECONDS {
                        continue;
                    }
                    if delivery.handed_out_at.is_none() {
                        let note = "its .p12 was never downloaded from the portal within a week";
                        // Companions first: the main revocation deletes the stored .p12 that names them.
                        self.revoke_companions(&delivery.companions, actor, note).await?;
                        self.revoke_undelivered(&delivery.serial, actor, note).await?;
                        report.revoked_undelivered.push(delivery.serial.clone());
                        report.revoked_undelivered.extend(delivery.companions.iter().cloned());
                    } else {
                        self.store().delete_pending_delivery(&delivery.serial).await?;
                        report.expired.push(delivery.serial.clone());
                    }
                }
                // A command line's: written to its file or not.
                (None, destination) => {
                    if !self.owner().may_resolve(&delivery.owner, delivery.created_at, now) {
                        continue;
                    }
                    let stale = now - delivery.created_at >= STALE_AFTER_SECONDS;
                    let reached = match (self.owner().same_host(&delivery.owner), destination) {
                        (true, Some(path)) => match std::fs::read(path) {
                            Ok(bytes) => Some(
                                hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes))
                                    == delivery.sha256,
                            ),
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
                            // Unreadable here (another user, moved): cannot tell yet.
                            Err(_) => None,
                        },
                        // Another host: the file cannot be checked from here.
                        _ => None,
                    };
                    match (reached, stale) {
                        (Some(true), _) => {
                            self.store().delete_pending_delivery(&delivery.serial).await?;
                            report.delivered.push(delivery.serial.clone());
                        }
                        (Some(false), _) | (None, true) => {
                            let note = format!(
                                "its .p12 never reached {}: the issuing process ended first",
                                destination.unwrap_or("its file")
                            );
                            // Companions first: the main revocation deletes the stored .p12 that names them.
                            self.revoke_companions(&delivery.companions, actor, &note).await?;
                            self.revoke_undelivered(&delivery.serial, actor, &note).await?;
                            report.revoked_undelivered.push(delivery.serial.clone());
                            report.revoked_undelivered.extend(delivery.companions.iter().cloned());
                        }
                        (None, false) => {}
                    }
                }
            }
        }
        Ok(report)
    }
}

/// A point where tests kill the process (debug builds only): with
/// `CERTDESK_FAULT_PAUSE=NAME`, the process says so on stderr and waits to be killed
/// when it reaches `NAME` (`intent-recorded`, `signed`, `recorded`, `written`).
/// Release builds never read the variable.
pub fn fault_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("CERTDESK_FAULT_PAUSE").is_ok_and(|v| v == name) {
        eprintln!("certdesk: paused at {name} (CERTDESK_FAULT_PAUSE)");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip_and_resolve_only_when_gone() {
        let me = Owner::this_process();
        assert_eq!(Owner::parse(&me.to_string()), Some(me.clone()));
        // My own work in flight is never resolved early.
        assert!(!me.may_resolve(&me.to_string(), 100, 101));
        // ...but by age it is.
        assert!(me.may_resolve(&me.to_string(), 100, 100 + STALE_AFTER_SECONDS));
        // My pid with another instance: an earlier process (a restarted container).
        let earlier = Owner { instance: "earlier".into(), ..me.clone() };
        assert!(me.may_resolve(&earlier.to_string(), 100, 101));
        // A pid that does not run on this host.
        let gone = Owner { pid: u32::MAX - 1, ..me.clone() };
        assert!(me.may_resolve(&gone.to_string(), 100, 101));
        // Another host: only by age.
        let remote = Owner { host: "elsewhere".into(), pid: u32::MAX - 1, ..me.clone() };
        assert!(!me.may_resolve(&remote.to_string(), 100, 101));
        assert!(!me.same_host(&remote.to_string()));
        assert!(!me.may_resolve("garbage", 100, 101));
    }
}
