//! The background jobs of `certdesk serve`, every refresh interval: certificate status
//! (OCSP responses, CRL, responder certificate), recovery of crashed issuances (of
//! other processes of this deployment), expiry and appointment reminders, and audit
//! checkpoints, the LDAP directory's people and publishing to an existing directory.
//! Each job's failure is reported and retried at the next tick; none stops the others
//! or the service.

use std::sync::Arc;

use certdesk_ca::authority::Authority;
use certdesk_ca::status::StatusService;
use certdesk_desk::checkpoint::CheckpointOutcome;
use certdesk_desk::portal::Portal;

/// The actor of what the jobs change, in the audit log.
pub const ACTOR: &str = "system:serve";

/// The directories the jobs keep current: `serve`'s own LDAP server and the existing
/// directory certificates are published to.
#[derive(Default)]
pub struct Directories {
    /// `[directory.ldap]`.
    pub ldap: Option<Arc<certdesk_web::ldap::Directory>>,
    /// `[directory.publish]`.
    pub publisher: Option<Arc<certdesk_desk::publish::Publisher>>,
}

/// Starts the jobs on the runtime; the first run is one interval after start (the
/// caller has refreshed the status once already).
pub fn spawn(
    authority: Arc<Authority>,
    status: Arc<StatusService>,
    portal: Option<Arc<Portal>>,
    directories: Directories,
    every: std::time::Duration,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            run_once(&authority, &status, portal.as_deref(), &directories).await;
        }
    });
}

async fn run_once(authority: &Authority, status: &StatusService, portal: Option<&Portal>, directories: &Directories) {
    match authority.recover(ACTOR).await {
        Ok(report) => crate::report_recovery(&report),
        Err(e) => tracing::warn!("recovery of crashed issuances failed: {e}"),
    }
    if let Err(e) = status.refresh().await {
        // Keep serving the last good state; say why the refresh failed.
        tracing::warn!("status refresh failed: {e}");
    }
    let Some(portal) = portal else { return };
    if let Some(publisher) = &directories.publisher {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match publish_pass(publisher.clone(), authority.store().clone(), now, ACTOR.to_string()).await {
            Ok(report) if report.published.is_empty() && report.removed.is_empty() && report.failed.is_empty() => {}
            Ok(report) => {
                for (serial, dn) in &report.published {
                    tracing::info!(target: "certdesk::publish", serial, dn, "certificate published to the directory");
                }
                for (serial, dn) in &report.removed {
                    tracing::info!(target: "certdesk::publish", serial, dn, "certificate removed from the directory");
                }
                for (serial, why) in &report.failed {
                    tracing::warn!(target: "certdesk::publish", serial, "certificate not published (tried again later): {why}");
                }
            }
            Err(e) => {
                tracing::warn!(target: "certdesk::publish", "publishing to the directory failed (tried again later): {e}")
            }
        }
    }
    if let Some(directory) = directories.ldap.as_deref() {
        // Revoked certificates leave the LDAP answers here (expired ones at once).
        if let Err(e) = directory.refresh(portal).await {
            tracing::warn!("LDAP directory refresh failed (the last one is answered): {e}");
        }
    }
    if let Err(e) = portal.send_reminders().await {
        tracing::warn!("expiry reminders failed: {e}");
    }
    if let Err(e) = portal.send_appointment_reminders().await {
        tracing::warn!("appointment reminders failed: {e}");
    }
    // Key recoveries whose window ended: expired, and their shares wiped (issue 15).
    match portal.expire_recoveries().await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} key recoveries expired (their window ended)"),
        Err(e) => tracing::warn!("expiring key recoveries failed: {e}"),
    }
    match portal.send_audit_checkpoint().await {
        Ok(CheckpointOutcome::Alert(reason)) => {
            tracing::error!("ALERT: {reason}; the auditors were told");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("audit checkpoint failed: {e}"),
    }
}

/// One publishing pass in a task of its own: a panic in the LDAP client on a directory's
/// odd answer ends this pass with an error, not the jobs or the command.
pub(crate) async fn publish_pass(
    publisher: Arc<certdesk_desk::publish::Publisher>,
    store: certdesk_store::Store,
    now: i64,
    actor: String,
) -> Result<certdesk_desk::publish::PublishReport, certdesk_core::error::DomainError> {
    tokio::spawn(async move { publisher.run_once(&store, now, &actor).await }).await.unwrap_or_else(|e| {
        Err(certdesk_core::error::DomainError::new(
            certdesk_core::error::ErrorCode::Internal,
            format!("the publishing pass failed: {e}"),
        ))
    })
}
