//! Audit checkpoints mailed to the auditors: once per period, retried after a failed
//! mail, an alert when the log was cut short or changed.

use super::common::{example_university, PASS};
use std::sync::{Arc, Mutex};

use certdesk_ca::authority::{init, Authority};
use certdesk_core::audit::Checkpoint;
use certdesk_core::clock::FixedClock;
use certdesk_core::config::AuditSection;
use certdesk_core::datadir::DataDir;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_desk::checkpoint::{send_due, CheckpointOutcome};
use certdesk_desk::mail::{Mail, MailError, Mailer, SendFuture};
use certdesk_store::Store;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

const T0: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

/// Keeps what it is given; refuses everything while `fail` is set, and mail to
/// `unreachable`.
#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<Mail>>,
    fail: Mutex<bool>,
    unreachable: Mutex<Option<&'static str>>,
}

impl Recorder {
    fn take(&self) -> Vec<Mail> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

impl Mailer for Recorder {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            if *self.fail.lock().unwrap() || *self.unreachable.lock().unwrap() == Some(mail.to().as_str()) {
                return Err(MailError::Random);
            }
            self.sent.lock().unwrap().push(mail.clone());
            Ok(())
        })
    }
}

async fn authority(dir: &std::path::Path) -> Authority {
    let clock = FixedClock(T0);
    let data = DataDir::new(dir.join("data"));
    init(&data, example_university(None), Zeroizing::new(PASS.into()), &clock, "test").await.unwrap();
    Authority::open(data, Arc::new(clock)).await.unwrap()
}

fn auditors() -> certdesk_core::config::CheckpointSettings {
    AuditSection {
        checkpoint_to: vec!["auditor@example.org".into(), "second.auditor@example.org".into()],
        checkpoint_hours: None,
        checkpoint_language: None,
    }
    .check()
    .unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    authority: Authority,
    mailer: Recorder,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path()).await;
    Fixture { dir, authority, mailer: Recorder::default() }
}

impl Fixture {
    /// [`send_due`] to [`auditors`] at `at`.
    async fn send(&self, at: OffsetDateTime, force: bool) -> Result<CheckpointOutcome, DomainError> {
        send_due(
            self.authority.store(),
            &self.mailer,
            &auditors(),
            "Example University",
            &certdesk_core::zone::LocalTime::utc(at),
            force,
        )
        .await
    }
}

#[tokio::test]
async fn the_head_is_mailed_once_a_day_and_checks_later() {
    let f = fixture().await;
    let (authority, store, mailer) = (&f.authority, f.authority.store(), &f.mailer);

    // init wrote one record: that is the first checkpoint, mailed to both auditors.
    let first = authority.verify_audit().await.unwrap();
    let outcome = f.send(T0, false).await.unwrap();
    let expected = Checkpoint { seq: 1, hash: first.head.clone() };
    assert_eq!(outcome, CheckpointOutcome::Sent(expected.clone()));
    let mails = mailer.take();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].to().as_str(), "auditor@example.org");
    assert_eq!(mails[1].to().as_str(), "second.auditor@example.org");
    assert!(mails[0].body().contains(&format!("certdesk audit verify --checkpoint 1:{}", first.head)));
    // The mail is audited, and the checkpoint it carries holds.
    let log = store.audit_log().await.unwrap();
    assert_eq!(
        (log.len(), log[1].action.as_str(), log[1].subject.as_str()),
        (2, "audit.checkpoint", &*expected.to_string())
    );
    assert_eq!(authority.verify_audit_since(&expected).await.unwrap().records, 2);

    // The same day: nothing more, even hours later.
    for later in [Duration::ZERO, Duration::hours(11)] {
        assert_eq!(f.send(T0 + later, false).await.unwrap(), CheckpointOutcome::NotDue);
    }
    assert!(mailer.take().is_empty());

    // The next day: the new head (the checkpoint record itself).
    let outcome = f.send(T0 + Duration::days(1), false).await.unwrap();
    let second = store.audit_log().await.unwrap()[1].hash.clone();
    assert_eq!(outcome, CheckpointOutcome::Sent(Checkpoint { seq: 2, hash: second }));
    assert_eq!(mailer.take().len(), 2);

    // Forced (`certdesk audit checkpoint`): sent although the day's mail went out.
    let outcome = f.send(T0 + Duration::days(1), true).await.unwrap();
    assert!(matches!(outcome, CheckpointOutcome::Sent(Checkpoint { seq: 3, .. })), "{outcome:?}");
    assert_eq!(mailer.take().len(), 2);

    // No auditors configured: off.
    let off = AuditSection::default().check().unwrap();
    assert_eq!(
        send_due(
            store,
            mailer,
            &off,
            "Example University",
            &certdesk_core::zone::LocalTime::utc(T0 + Duration::days(9)),
            false
        )
        .await
        .unwrap(),
        CheckpointOutcome::Off
    );
    assert!(mailer.take().is_empty());
}

#[tokio::test]
async fn a_failed_mail_is_retried_at_the_next_run() {
    let f = fixture().await;
    let (store, mailer) = (f.authority.store(), &f.mailer);
    *mailer.fail.lock().unwrap() = true;
    let err = f.send(T0, false).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.to_string().contains("auditor@example.org"), "{err}");
    // Nothing was audited, and the period is free again.
    assert_eq!(store.audit_log().await.unwrap().len(), 1);
    *mailer.fail.lock().unwrap() = false;
    let outcome = f.send(T0 + Duration::minutes(5), false).await.unwrap();
    assert!(matches!(outcome, CheckpointOutcome::Sent(Checkpoint { seq: 1, .. })), "{outcome:?}");
    assert_eq!(mailer.take().len(), 2);
}

/// One auditor's mailbox refuses: the other gets the checkpoint, the record names who
/// did not, the error says so, and the period is done (no mail to the first auditor at
/// every refresh).
#[tokio::test]
async fn an_unreachable_auditor_does_not_make_the_others_mailed_again() {
    let f = fixture().await;
    let (store, mailer) = (f.authority.store(), &f.mailer);
    *mailer.unreachable.lock().unwrap() = Some("second.auditor@example.org");
    let err = f.send(T0, false).await.unwrap_err();
    assert!(
        err.to_string().contains("went to auditor@example.org but could not be mailed to second.auditor@example.org"),
        "{err}"
    );
    let mails = mailer.take();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to().as_str(), "auditor@example.org");
    let log = store.audit_log().await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].action, "audit.checkpoint");
    let details: serde_json::Value = serde_json::from_str(&log[1].details).unwrap();
    assert_eq!(details["to"], serde_json::json!(["auditor@example.org"]));
    assert_eq!(details["not_delivered"], serde_json::json!(["second.auditor@example.org"]));
    for later in [Duration::seconds(10), Duration::hours(3)] {
        assert_eq!(f.send(T0 + later, false).await.unwrap(), CheckpointOutcome::NotDue);
    }
    assert!(mailer.take().is_empty());
    // The next period tries both again.
    *mailer.unreachable.lock().unwrap() = None;
    assert!(matches!(f.send(T0 + Duration::days(1), false).await.unwrap(), CheckpointOutcome::Sent(_)));
    assert_eq!(mailer.take().len(), 2);
}

#[tokio::test]
async fn a_log_cut_short_or_changed_raises_an_alert() {
    let f = fixture().await;
    let (authority, store, mailer) = (&f.authority, f.authority.store(), &f.mailer);
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    authority.issue_crl(&issuer, "test").await.unwrap();
    // Checkpoint at record 2 (the CRL), then the checkpoint record 3.
    let outcome = f.send(T0, false).await.unwrap();
    assert!(matches!(outcome, CheckpointOutcome::Sent(Checkpoint { seq: 2, .. })), "{outcome:?}");
    mailer.take();

    // Someone with database access cuts the log back to record 1: the chain alone still
    // verifies, the checkpoint sent does not.
    let url = format!("sqlite://{}", f.dir.path().join("data/certdesk.db").display());
    let raw = Store::open(&url).await.unwrap();
    raw.danger_execute("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq >= 2").await.unwrap();
    assert_eq!(authority.verify_audit().await.unwrap().records, 1);
    let outcome = f.send(T0 + Duration::days(1), false).await.unwrap();
    let CheckpointOutcome::Alert(reason) = outcome else { panic!("no alert: {outcome:?}") };
    assert!(reason.contains("record 2") && reason.contains("removed"), "{reason}");
    let mails = mailer.take();
    assert_eq!(mails.len(), 2);
    assert!(mails[0].subject().starts_with("ALERT") && mails[0].body().contains(&reason), "{}", mails[0].body());
    // The alert is audited, and the alert is no checkpoint: the next day alerts again.
    assert_eq!(store.audit_log().await.unwrap().last().unwrap().action, "audit.alert");
    let outcome = f.send(T0 + Duration::days(2), false).await.unwrap();
    assert!(matches!(outcome, CheckpointOutcome::Alert(_)), "{outcome:?}");
}

#[test]
fn the_section_is_checked() {
    let bad = |section: AuditSection| section.check().unwrap_err();
    let with = |to: &str, hours: Option<u32>, lang: Option<&str>| AuditSection {
        checkpoint_to: vec![to.into()],
        checkpoint_hours: hours,
        checkpoint_language: lang.map(Into::into),
    };
    assert!(bad(with("not an address", None, None)).contains("audit.checkpoint_to"));
    assert!(bad(with("a@example.org", Some(0), None)).contains("checkpoint_hours"));
    assert!(bad(with("a@example.org", Some(169), None)).contains("checkpoint_hours"));
    assert!(bad(with("a@example.org", None, Some("fr"))).contains("checkpoint_language"));
    let ok = with("a@example.org", Some(6), Some("de")).check().unwrap();
    assert_eq!((ok.period_seconds, ok.lang), (6 * 3600, certdesk_desk::mail::Lang::De));
    // From certdesk.toml.
    let config = certdesk_core::config::Config::from_toml(
        "[ca]\norganization = \"Example\"\ncountry = \"DE\"\nbase_url = \"http://pki.example.org\"\n\
         [audit]\ncheckpoint_to = [\"auditor@example.org\"]\ncheckpoint_hours = 12\n",
    )
    .unwrap()
    .validate()
    .unwrap();
    assert_eq!(config.checkpoints.period_seconds, 12 * 3600);
    assert_eq!(config.checkpoints.to[0].as_str(), "auditor@example.org");
}
