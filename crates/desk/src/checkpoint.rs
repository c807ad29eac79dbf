//! Checkpoints of the audit log mailed to the auditors (`[audit] checkpoint_to`).
//!
//! The hash chain shows a record changed or removed in the middle of the log, but not
//! records cut off its end, nor a log rebuilt from scratch: only a head noted where the
//! CA machine cannot write shows those (`certdesk audit verify --checkpoint SEQ:HASH`).
//! [`send_due`] notes it there: once per period (`checkpoint_hours`, default a day) it
//! verifies the whole log, and against the last checkpoint it sent, and mails the head to
//! every auditor; when the log does not verify it mails an alert instead. `serve` runs it
//! with every status refresh; `certdesk audit checkpoint` runs it now.
//!
//! A period is claimed in the database before its mail goes out, so several `serve`
//! processes send one mail. When no auditor could be mailed the claim is given back and
//! the next run tries again; when only some could, the period stays done (retrying
//! would mail the others every refresh), the audit record lists who was not reached and
//! the error says so. Each mail sent is itself audited (`audit.checkpoint`,
//! `audit.alert`).

use serde_json::json;

use crate::mail::{self, Mailer};
use certdesk_core::audit::{seal, verify, verify_with_checkpoint, AuditEvent, Checkpoint};
use certdesk_core::config::CheckpointSettings;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_store::Store;

/// What [`send_due`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// `[audit] checkpoint_to` is empty.
    Off,
    /// This period's mail has gone out already (or the log is empty).
    NotDue,
    /// The head was mailed to every auditor.
    Sent(Checkpoint),
    /// The log failed verification; the auditors were told why.
    Alert(String),
}

/// Verifies the audit log and mails its head (or an alert) to the auditors, unless this
/// period's mail has gone out already; `force` sends in any case (`certdesk audit
/// checkpoint`). `organization` names the CA in the mails.
pub async fn send_due(
    store: &Store,
    mailer: &dyn Mailer,
    settings: &CheckpointSettings,
    organization: &str,
    now: &mail::LocalTime,
    force: bool,
) -> Result<CheckpointOutcome, DomainError> {
    if settings.to.is_empty() {
        return Ok(CheckpointOutcome::Off);
    }
    let at = now.at.unix_timestamp();
    let period = at.div_euclid(settings.period_seconds.max(1));
    if !force && store.checkpoint_claimed(period).await? {
        return Ok(CheckpointOutcome::NotDue);
    }
    let rows = store.audit_log().await?;
    let verified = match store.last_checkpoint().await? {
        Some(last) => verify_with_checkpoint(&rows, &last),
        None => verify(&rows),
    };
    let recipients = settings
        .to
        .iter()
        .map(|to| mail::MailAddress::parse(to))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DomainError::new(ErrorCode::Config, format!("audit.checkpoint_to: {e}")))?;
    let (seq, hash, event, mails) = match verified {
        Ok(chain) => {
            let seq = i64::try_from(chain.records).map_err(|_| internal("too many audit records"))?;
            if seq == 0 {
                return Ok(CheckpointOutcome::NotDue);
            }
            let checkpoint = Checkpoint { seq, hash: chain.head };
            let text = checkpoint.to_string();
            let mails: Vec<mail::Mail> = recipients
                .iter()
                .map(|to| mail::audit_checkpoint_mail(settings.lang, to, organization, &text, seq, now))
                .collect();
            (seq, checkpoint.hash.clone(), ("audit.checkpoint", text), mails)
        }
        Err(broken) => {
            let reason = broken.to_string();
            let mails: Vec<mail::Mail> = recipients
                .iter()
                .map(|to| mail::audit_alert_mail(settings.lang, to, organization, &reason, now))
                .collect();
            (0, reason.clone(), ("audit.alert", reason), mails)
        }
    };
    // Scheduled: claimed first, so that one process sends, and given back if a mail
    // fails. Forced: recorded once sent.
    if !force && !store.claim_checkpoint(period, seq, &hash, at).await? {
        return Ok(CheckpointOutcome::NotDue);
    }
    // Every auditor is tried. When none got it the claim is given back and the next run
    // tries again; when some did, the period is done (a retry would mail them again
    // every refresh) and the record names who did not get it.
    let mut delivered = Vec::new();
    let mut failed = Vec::new();
    for mail in &mails {
        match mailer.send(mail).await {
            Ok(()) => delivered.push(mail.to().as_str()),
            Err(e) => failed.push((mail.to().as_str(), e.to_string())),
        }
    }
    if delivered.is_empty() {
        if !force {
            store.release_checkpoint(period, seq, &hash).await?;
        }
        let (to, e) = failed.first().map_or(("", ""), |(to, e)| (*to, e.as_str()));
        return Err(DomainError::new(
            ErrorCode::Internal,
            format!("the audit checkpoint could not be mailed to {to} (nor to any other auditor): {e}"),
        ));
    }
    if force {
        store.record_checkpoint(period, seq, &hash, at).await?;
    }
    let (action, subject) = event;
    let not_delivered: Vec<&str> = failed.iter().map(|(to, _)| *to).collect();
    let record = AuditEvent {
        actor: "system:audit-checkpoint".to_string(),
        action,
        subject: subject.clone(),
        details: if not_delivered.is_empty() {
            json!({ "to": delivered, "period": period })
        } else {
            json!({ "to": delivered, "not_delivered": not_delivered, "period": period })
        },
    };
    store.append_audit(&|next, prev| seal(&record, at, next, prev)).await?;
    if let Some((to, e)) = failed.first() {
        return Err(DomainError::new(
            ErrorCode::Internal,
            format!(
                "the audit checkpoint went to {} but could not be mailed to {to}: {e}; the next period's mail \
                 tries again",
                delivered.join(", ")
            ),
        ));
    }
    Ok(if seq == 0 { CheckpointOutcome::Alert(subject) } else { CheckpointOutcome::Sent(Checkpoint { seq, hash }) })
}

fn internal(message: &str) -> DomainError {
    DomainError::new(ErrorCode::Internal, message)
}
