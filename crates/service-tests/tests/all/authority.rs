//! The authority end to end at a fixed time, and audit tamper detection.

use super::common::{example_university, PASS};
use std::sync::Arc;

use certdesk_ca::authority::{init, Authority, IssueInput};
use certdesk_core::clock::FixedClock;
use certdesk_core::datadir::DataDir;
use certdesk_core::error::ErrorCode;
use certdesk_pki::crl::RevocationReason;
use certdesk_pki::key::KeyAlgorithm;
use certdesk_pki::profile::ProfileId;
use certdesk_store::Store;
use time::macros::datetime;
use zeroize::Zeroizing;

async fn authority(dir: &std::path::Path) -> Authority {
    let clock = FixedClock(datetime!(2026-11-25 12:00 UTC));
    let data = DataDir::new(dir.join("data"));
    let options = example_university(None);
    init(&data, options, Zeroizing::new(PASS.into()), &clock, "test").await.unwrap();
    Authority::open(data, Arc::new(clock)).await.unwrap()
}

fn jane() -> IssueInput {
    super::common::jane_input(ProfileId::SponsorStrict)
}

#[tokio::test]
async fn issue_revoke_crl_at_a_fixed_time() {
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path()).await;
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let key = super::common::subscriber_key(KeyAlgorithm::P256);
    let issued = authority.issue(&issuer, super::common::request(jane()), key, "test").await.unwrap();
    assert_eq!(issued.record.not_before, datetime!(2026-11-25 12:00 UTC).unix_timestamp());
    assert_eq!(issued.record.not_after - issued.record.not_before, 730 * 86_400 - 1);

    authority.revoke(&issued.record.serial, RevocationReason::KeyCompromise, "test").await.unwrap();
    let again = authority.revoke(&issued.record.serial, RevocationReason::KeyCompromise, "test").await.unwrap_err();
    assert_eq!(again.code(), ErrorCode::AlreadyRevoked);
    let crl = authority.issue_crl(&issuer, "test").await.unwrap();
    assert_eq!(crl.number, 1);
    assert_eq!(crl.next_update - crl.this_update, 7 * 86_400);

    let wrong = authority.unlock(Zeroizing::new("not the passphrase at all".into())).await.unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::Passphrase);
    assert_eq!(authority.verify_audit().await.unwrap().records, 4);
}

/// `certdesk crl` hands out the current CRL as it is: until its nextUpdate, and until a
/// certificate is revoked that it does not list.
#[tokio::test]
async fn the_current_crl_is_current_until_next_update_or_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(certdesk_core::clock::ManualClock::new(datetime!(2026-11-25 12:00 UTC)));
    let data = DataDir::new(dir.path().join("data"));
    init(&data, example_university(None), Zeroizing::new(PASS.into()), clock.as_ref(), "test").await.unwrap();
    let authority = Authority::open(data, clock.clone()).await.unwrap();
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    assert_eq!(authority.current_crl().await.unwrap(), None, "no CRL yet");
    let key = super::common::subscriber_key(KeyAlgorithm::P256);
    let issued = authority.issue(&issuer, super::common::request(jane()), key.clone(), "test").await.unwrap();
    // A revocation in the same second as the CRL that lists it: current.
    authority.revoke(&issued.record.serial, RevocationReason::KeyCompromise, "test").await.unwrap();
    let first = authority.issue_crl(&issuer, "test").await.unwrap();
    assert_eq!(authority.current_crl().await.unwrap(), Some(first.clone()));
    // A later revocation it does not list: out of date.
    clock.advance(time::Duration::hours(1));
    let other = authority.issue(&issuer, super::common::request(jane()), key, "test").await.unwrap();
    assert_eq!(authority.current_crl().await.unwrap(), Some(first), "an issuance changes no CRL");
    authority.revoke(&other.record.serial, RevocationReason::Superseded, "test").await.unwrap();
    assert_eq!(authority.current_crl().await.unwrap(), None);
    let second = authority.issue_crl(&issuer, "test").await.unwrap();
    assert_eq!(authority.current_crl().await.unwrap().map(|c| c.number), Some(second.number));
    // A day old: re-signed (as serve does), so what is handed out lasts six days more.
    clock.advance(time::Duration::hours(23));
    assert!(authority.current_crl().await.unwrap().is_some());
    clock.advance(time::Duration::hours(1));
    assert_eq!(authority.current_crl().await.unwrap(), None);
    // The root's CRL (signed by init, 358 days) is current until 30 days before its
    // nextUpdate, when serve starts to warn.
    let root = authority.current_root_crl().await.unwrap().unwrap();
    assert_eq!(root.number, 1);
    let left = root.next_update - certdesk_core::clock::Clock::now(clock.as_ref()).unix_timestamp();
    clock.advance(time::Duration::seconds(left - 30 * 86_400 - 60));
    assert!(authority.current_root_crl().await.unwrap().is_some());
    clock.advance(time::Duration::seconds(60));
    assert_eq!(authority.current_root_crl().await.unwrap(), None);
}

#[tokio::test]
async fn audit_verify_detects_a_changed_record_even_past_the_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path()).await;
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    authority.issue_crl(&issuer, "test").await.unwrap();
    authority.issue_crl(&issuer, "test").await.unwrap();
    assert_eq!(authority.verify_audit().await.unwrap().records, 3);

    // Someone with raw database access drops the guard and edits history.
    let url = format!("sqlite://{}", dir.path().join("data/certdesk.db").display());
    let raw = Store::open(&url).await.unwrap();
    raw.danger_execute("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        .await
        .unwrap();
    let broken = authority.verify_audit().await.unwrap_err();
    assert_eq!(broken.code(), ErrorCode::AuditBroken);
    assert!(broken.to_string().contains("record 2"), "{broken}");

    raw.danger_execute("DROP TRIGGER audit_log_no_delete; UPDATE audit_log SET actor = 'test' WHERE seq = 2; DELETE FROM audit_log WHERE seq = 2")
        .await
        .unwrap();
    let broken = authority.verify_audit().await.unwrap_err();
    assert!(broken.to_string().contains("missing"), "{broken}");
}

#[tokio::test]
async fn a_batch_is_issued_with_one_commit_and_one_audit_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path()).await;
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let requests: Vec<_> =
        (0..3).map(|_| (super::common::request(jane()), super::common::subscriber_key(KeyAlgorithm::P256))).collect();
    let issued = authority.issue_batch(&issuer, requests, "test").await.unwrap();
    let serials: std::collections::HashSet<_> = issued.iter().map(|i| i.record.serial.clone()).collect();
    assert_eq!(serials.len(), 3);
    for one in &issued {
        assert_eq!(authority.store().certificate(&one.record.serial).await.unwrap().as_ref(), Some(&one.record));
    }
    let log = authority.store().audit_log().await.unwrap();
    assert_eq!(log.iter().filter(|r| r.action == "certificate.issue").count(), 3);
    assert_eq!(authority.verify_audit().await.unwrap().records, 4);
}

/// A name whose common name would be longer than 64 characters: refused by the lint.
fn long_name() -> IssueInput {
    let mut input = jane();
    input.person.given_name = certdesk_pki::subject::NameField::parse("given name", &"J".repeat(40)).unwrap();
    input.person.surname = certdesk_pki::subject::NameField::parse("surname", &"D".repeat(40)).unwrap();
    input
}

#[tokio::test]
async fn a_large_batch_is_refused_at_its_first_bad_request_in_either_half() {
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path()).await;
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    // 20 requests: prepared in two halves of 10 (the signing thread is idle); refused
    // requests in the second half only (its first, a later one), then in both.
    let batch = |refused: &[usize]| -> Vec<_> {
        (0..20)
            .map(|i| {
                let input = if refused.contains(&i) { long_name() } else { jane() };
                (super::common::request(input), super::common::subscriber_key(KeyAlgorithm::P256))
            })
            .collect()
    };
    for (refused, named) in
        [(&[10usize][..], "request 11: "), (&[14][..], "request 15: "), (&[4, 14][..], "request 5: ")]
    {
        let error = authority.issue_batch(&issuer, batch(refused), "test").await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::Refused, "{error}");
        assert!(error.to_string().starts_with(named), "{error}");
        assert!(authority.store().certificates().await.unwrap().is_empty());
        assert!(authority.store().intents().await.unwrap().is_empty());
    }
    let issued = authority.issue_batch(&issuer, batch(&[]), "test").await.unwrap();
    let serials: std::collections::HashSet<_> = issued.iter().map(|i| i.record.serial.clone()).collect();
    assert_eq!(serials.len(), 20);
    for one in &issued {
        assert_eq!(authority.store().certificate(&one.record.serial).await.unwrap().as_ref(), Some(&one.record));
    }
    assert_eq!(authority.verify_audit().await.unwrap().records, 21);
}

#[tokio::test]
async fn batches_under_way_at_once_are_each_issued_whole_or_not_at_all() {
    use der::{Decode, Encode};
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path()).await;
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let key = || super::common::subscriber_key(KeyAlgorithm::P256);
    // A mailbox whose certificate the database refuses to record: the batch fails after
    // its intents were recorded and it was signed.
    let fail = || {
        let mut input = jane();
        input.person.email = certdesk_pki::subject::EmailAddress::parse("fail@example.org").unwrap();
        input
    };
    let url = format!("sqlite://{}", dir.path().join("data/certdesk.db").display());
    Store::open(&url)
        .await
        .unwrap()
        .danger_execute(
            "CREATE TRIGGER refuse_fail BEFORE INSERT ON certificates WHEN NEW.email = 'fail@example.org' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap();
    let batches: Vec<Vec<_>> = (0..6)
        .map(|b| {
            (0..4)
                .map(|i| {
                    let input = match (b, i) {
                        (2, 3) => long_name(),
                        (3, 1) => fail(),
                        _ => jane(),
                    };
                    (super::common::request(input), key())
                })
                .collect()
        })
        .collect();
    let signed = issuer.signing_stats();
    let results = authority.issue_batches(&issuer, batches, "test").await;
    assert_eq!(results.len(), 6);
    // Five batches signed (the refused one was not; the failed one was, before its
    // record failed), and the signing threads say so.
    let now_signed = issuer.signing_stats();
    assert_eq!(now_signed.certificates - signed.certificates, 20);
    assert!(now_signed.busy > signed.busy);
    let refused = results[2].as_ref().unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Refused, "{refused}");
    assert!(refused.to_string().starts_with("request 4: "), "{refused}");
    let failed = results[3].as_ref().unwrap_err();
    assert!(failed.to_string().contains("refused by the test"), "{failed}");
    let mut serials = std::collections::HashSet::new();
    for (b, result) in results.iter().enumerate().filter(|(b, _)| *b != 2 && *b != 3) {
        let issued = result.as_ref().unwrap_or_else(|e| panic!("batch {b}: {e}"));
        assert_eq!(issued.len(), 4);
        for one in issued {
            assert!(serials.insert(one.record.serial.clone()), "serial {} twice", one.record.serial);
            assert_eq!(authority.store().certificate(&one.record.serial).await.unwrap().as_ref(), Some(&one.record));
            // Signed by the issuing CA's key, over what was linted.
            let cert = x509_cert::Certificate::from_der(&one.record.der).unwrap();
            let ca = x509_cert::Certificate::from_der(&one.chain[0]).unwrap();
            certdesk_pki::key::verify_signature(
                ca.tbs_certificate().subject_public_key_info(),
                cert.signature_algorithm(),
                &cert.tbs_certificate().to_der().unwrap(),
                cert.signature().raw_bytes(),
            )
            .unwrap();
        }
    }
    // The refused batch left nothing; the failed one no certificate and no intent, its
    // four serials abandoned with an audit record each.
    assert_eq!(authority.store().certificates().await.unwrap().len(), 16);
    assert!(authority.store().intents().await.unwrap().is_empty());
    let log = authority.store().audit_log().await.unwrap();
    assert_eq!(log.iter().filter(|r| r.action == "certificate.issue").count(), 16);
    assert_eq!(log.iter().filter(|r| r.action == "certificate.abandoned").count(), 4);
    assert_eq!(authority.verify_audit().await.unwrap().records, 21);
}
