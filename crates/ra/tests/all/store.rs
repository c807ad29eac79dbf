//! One conformance suite for every store backend.

use certdesk_ra::audit::{seal, verify, AuditEvent};
use certdesk_ra::store::{CertificateRecord, CrlRecord, Store};
use sqlx::Connection;

fn record(serial: &str, not_after: i64) -> CertificateRecord {
    CertificateRecord {
        serial: serial.into(),
        email: "jane.doe@example.org".into(),
        subject: "CN=Jane Doe".into(),
        profile: "sponsor-strict".into(),
        key_kind: "RSA-3072".into(),
        not_before: 1_000,
        not_after,
        der: vec![0x30, 0x00],
        issued_at: 1_000,
        revoked_at: None,
        revocation_reason: None,
    }
}

fn event(action: &'static str, subject: &str) -> AuditEvent {
    AuditEvent { actor: "test".into(), action, subject: subject.into(), details: serde_json::json!({}) }
}

async fn conformance(store: &Store) {
    // A batch: serials reserved, signed, stored and audited in one commit.
    let serials = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let events = |list: &[&str]| list.iter().map(|s| event("certificate.issue", s)).collect::<Vec<_>>();
    let stored = store
        .record_issuances(
            &serials(&["0a", "0b"]),
            1,
            |i| Ok(record(["0a", "0b"][i], [5_000, 500][i])),
            &events(&["0a", "0b"]),
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    // A taken serial fails before anything is signed, even inside a batch.
    let mut signed = 0;
    let again = store
        .record_issuances(
            &serials(&["0c", "0a"]),
            2,
            |i| {
                signed += 1;
                Ok(record(["0c", "0a"][i], 5_000))
            },
            &events(&["0c", "0a"]),
        )
        .await;
    assert!(again.is_err() && signed == 0, "a taken serial reached the signer");
    // A failed signature keeps nothing: the serials stay free, no audit record.
    let failed = store
        .record_issuances(
            &serials(&["0c", "0d"]),
            3,
            |i| match i {
                0 => Ok(record("0c", 50)),
                _ => Err(certdesk_ra::error::DomainError::new(certdesk_ra::error::ErrorCode::Internal, "boom")),
            },
            &events(&["0c", "0d"]),
        )
        .await;
    assert!(failed.is_err());
    assert!(store.certificate("0c").await.unwrap().is_none());
    // Events must match the serials one to one.
    assert!(store.record_issuances(&serials(&["0c"]), 4, |_| Ok(record("0c", 50)), &[]).await.is_err());
    store.record_issuances(&serials(&["0c"]), 4, |_| Ok(record("0c", 50)), &events(&["0c"])).await.unwrap();
    assert_eq!(store.audit_log().await.unwrap().len(), 3, "a failed issuance left an audit record");

    assert_eq!(store.certificate("0a").await.unwrap().unwrap().email, "jane.doe@example.org");
    assert!(store.certificate("ff").await.unwrap().is_none());
    assert_eq!(store.certificates().await.unwrap().len(), 3);

    let ev = event("certificate.revoke", "0a");
    assert!(store.revoke("0a", 100, 1, &|seq, prev| seal(&ev, 100, seq, prev)).await.unwrap());
    assert!(!store.revoke("0a", 101, 1, &|seq, prev| seal(&ev, 101, seq, prev)).await.unwrap());
    let ev = event("certificate.revoke", "0b");
    assert!(store.revoke("0b", 102, 4, &|seq, prev| seal(&ev, 102, seq, prev)).await.unwrap());
    // Only unexpired revoked certificates go on the CRL.
    let revoked = store.revoked_unexpired(1_000).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!((revoked[0].serial.as_str(), revoked[0].reason), ("0a", 1));

    assert_eq!(store.next_crl_number().await.unwrap(), 1);
    let crl = CrlRecord { number: 1, this_update: 1, next_update: 2, der: vec![1, 2, 3] };
    let ev = event("crl.issue", "1");
    store.insert_crl(&crl, &|seq, prev| seal(&ev, 1, seq, prev)).await.unwrap();
    assert!(store.insert_crl(&crl, &|seq, prev| seal(&ev, 1, seq, prev)).await.is_err());
    assert_eq!(store.next_crl_number().await.unwrap(), 2);
    assert_eq!(store.latest_crl().await.unwrap().unwrap(), crl);

    let log = store.audit_log().await.unwrap();
    assert_eq!(log.len(), 6);
    assert_eq!(verify(&log).unwrap().records, 6);

    // Audit checkpoints: one claim per period, given back when its mail fails; alerts
    // (seq 0) are no checkpoint.
    let head = certdesk_ra::audit::Checkpoint { seq: 6, hash: log[5].hash.clone() };
    assert_eq!(store.last_checkpoint().await.unwrap(), None);
    assert!(!store.checkpoint_claimed(7).await.unwrap());
    assert!(store.claim_checkpoint(7, 6, &head.hash, 10).await.unwrap());
    assert!(!store.claim_checkpoint(7, 6, &head.hash, 11).await.unwrap());
    assert!(store.checkpoint_claimed(7).await.unwrap());
    assert!(store.claim_checkpoint(8, 0, "an alert", 12).await.unwrap());
    assert_eq!(store.last_checkpoint().await.unwrap(), Some(head.clone()));
    // Recorded outside the schedule: a newer checkpoint replaces the period's, an alert
    // does not.
    store.record_checkpoint(7, 0, "an alert", 13).await.unwrap();
    assert_eq!(store.last_checkpoint().await.unwrap().map(|c| c.seq), Some(6));
    store.record_checkpoint(7, 9, "later", 14).await.unwrap();
    assert_eq!(store.last_checkpoint().await.unwrap().map(|c| c.seq), Some(9));
    store.record_checkpoint(9, 10, "forced", 15).await.unwrap();
    assert_eq!(store.last_checkpoint().await.unwrap().map(|c| c.hash), Some("forced".into()));
    // Given back only for what was claimed: period 7 now holds 9:later.
    store.release_checkpoint(7, 6, &head.hash).await.unwrap();
    assert!(store.checkpoint_claimed(7).await.unwrap());
    for (period, seq, hash) in [(7, 9, "later"), (9, 10, "forced")] {
        store.release_checkpoint(period, seq, hash).await.unwrap();
        assert!(!store.checkpoint_claimed(period).await.unwrap());
    }
    assert_eq!(store.last_checkpoint().await.unwrap(), None);

    // Second-factor attempts: counted per window, not noted once over the limit,
    // forgotten after a right code.
    let mail = "desk@example.org";
    for at in [100, 200, 300] {
        store.note_totp_attempt(mail, at, [at - 150, at - 1_000], [5, 20]).await.unwrap().unwrap();
    }
    assert_eq!(store.note_totp_attempt(mail, 400, [250, 0], [5, 20]).await.unwrap(), Some([2, 4]));
    assert_eq!(store.note_totp_attempt(mail, 401, [250, 0], [1, 20]).await.unwrap(), None);
    assert_eq!(store.note_totp_attempt("other@example.org", 401, [250, 0], [1, 20]).await.unwrap(), Some([1, 1]));
    store.clear_totp_attempts(mail).await.unwrap();
    assert_eq!(store.note_totp_attempt(mail, 402, [0, 0], [5, 20]).await.unwrap(), Some([1, 1]));

    // The database refuses to change or delete audit records.
    assert!(store.danger_execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2").await.is_err());
    assert!(store.danger_execute("DELETE FROM audit_log WHERE seq = 6").await.is_err());
    assert_eq!(store.audit_log().await.unwrap(), log);
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    conformance(&store).await;
    concurrent_audit_appends_chain(&store).await;
    // Reopening applies no migration twice.
    store.close().await;
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.audit_log().await.unwrap().len(), 30);
}

#[tokio::test]
async fn postgres_store_conforms() {
    let Ok(base) = std::env::var("CERTDESK_TEST_POSTGRES_URL") else {
        eprintln!("CERTDESK_TEST_POSTGRES_URL not set: PostgreSQL conformance not run here (CI runs it)");
        return;
    };
    sqlx::any::install_default_drivers();
    let name =
        format!("certdesk_test_{}_{}", std::process::id(), time::OffsetDateTime::now_utc().unix_timestamp_nanos());
    let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{name}");
    let store = Store::open(&url).await.unwrap();
    conformance(&store).await;
    concurrent_audit_appends_chain(&store).await;
    store.close().await;
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
}

/// Many transactions appending audit records at once (several portal requests, several
/// processes): every record lands and the chain stays intact.
async fn concurrent_audit_appends_chain(store: &Store) {
    let before = store.audit_log().await.unwrap().len();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let event = event("test.concurrent", &format!("t{i}"));
            store.append_audit(&|seq, prev| seal(&event, 100 + i, seq, prev)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = store.audit_log().await.unwrap();
    assert_eq!(rows.len(), before + 24);
    verify(&rows).unwrap();
}
