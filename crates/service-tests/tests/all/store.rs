//! One conformance suite for every store backend.

use certdesk_core::audit::{seal, verify, AuditEvent};
use certdesk_store::{
    CertificateRecord, CrlRecord, EscrowAgentRecord, EscrowKeyRecord, EscrowMode, EscrowedKeyRecord, IssuanceIntent,
    KeyRecoveryRecord, PendingDelivery, ProfileId, Publication, RecoveryApproval, RecoveryState, RevocationReason,
    Serial, Store,
};

fn record(serial: &str, not_after: i64) -> CertificateRecord {
    CertificateRecord {
        serial: Serial::parse(serial).unwrap(),
        email: "jane.doe@example.org".into(),
        subject: "CN=Jane Doe".into(),
        profile: ProfileId::SponsorStrict,
        key_kind: "RSA-3072".into(),
        not_before: 1_000,
        not_after,
        der: vec![0x30, 0x00],
        issued_at: 1_000,
        revoked_at: None,
        revocation_reason: None,
    }
}

fn intent(serial: &str) -> IssuanceIntent {
    IssuanceIntent {
        serial: Serial::parse(serial).unwrap(),
        tbs_sha256: "00".repeat(32),
        email: "jane.doe@example.org".into(),
        profile: ProfileId::SponsorStrict,
        not_after: 5_000,
        application_id: None,
        owner: "host/1/a".into(),
        created_at: 1,
    }
}

fn event(action: &'static str, subject: &str) -> AuditEvent {
    AuditEvent { actor: "test".into(), action, subject: subject.into(), details: serde_json::json!({}) }
}

async fn conformance(store: &Store) {
    // A batch: intents (serials reserved) in one commit, then the certificates with
    // their audit records in another.
    let events = |list: &[&str]| list.iter().map(|s| event("certificate.issue", s)).collect::<Vec<_>>();
    store.record_intents(&[intent("0a"), intent("0b")], None, 1).await.unwrap();
    assert_eq!(store.intents().await.unwrap().len(), 2);
    let (a, b) = (record("0a", 5_000), record("0b", 500));
    store.record_issued(&[&a, &b], &events(&["0a", "0b"]), 1, None, None).await.unwrap();
    assert!(store.intents().await.unwrap().is_empty(), "recording kept the intents");
    // A taken serial fails before anything is signed, even inside a batch, and keeps
    // nothing (0c stays free).
    assert!(store.record_intents(&[intent("0c"), intent("0a")], None, 2).await.is_err());
    assert!(store.intents().await.unwrap().is_empty());
    // A certificate without an intent (abandoned meanwhile) is not recorded.
    let c = record("0c", 50);
    let err = store.record_issued(&[&c], &events(&["0c"]), 3, None, None).await.unwrap_err();
    assert_eq!(err.code(), certdesk_core::error::ErrorCode::Conflict);
    assert!(store.certificate("0c").await.unwrap().is_none());
    // Events must match the certificates one to one; nothing is kept otherwise.
    store.record_intents(&[intent("0c")], None, 4).await.unwrap();
    assert!(store.record_issued(&[&c], &[], 4, None, None).await.is_err());
    assert_eq!(store.intents().await.unwrap().len(), 1, "a failed record lost the intent");
    store.record_issued(&[&c], &events(&["0c"]), 4, None, None).await.unwrap();
    assert_eq!(store.audit_log().await.unwrap().len(), 3, "a failed issuance left an audit record");

    assert_eq!(store.certificate("0a").await.unwrap().unwrap().email, "jane.doe@example.org");
    assert!(store.certificate("ff").await.unwrap().is_none());
    assert_eq!(store.certificates().await.unwrap().len(), 3);

    let ev = event("certificate.revoke", "0a");
    assert!(store
        .revoke("0a", 100, RevocationReason::KeyCompromise, &|seq, prev| seal(&ev, 100, seq, prev))
        .await
        .unwrap());
    assert!(!store
        .revoke("0a", 101, RevocationReason::KeyCompromise, &|seq, prev| seal(&ev, 101, seq, prev))
        .await
        .unwrap());
    let ev = event("certificate.revoke", "0b");
    assert!(store
        .revoke("0b", 102, RevocationReason::Superseded, &|seq, prev| seal(&ev, 102, seq, prev))
        .await
        .unwrap());
    // Only unexpired revoked certificates go on the CRL.
    let revoked = store.revoked_unexpired(1_000).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!((revoked[0].serial.as_str(), revoked[0].reason), ("0a", RevocationReason::KeyCompromise));

    assert_eq!(store.next_crl_number().await.unwrap(), 1);
    let crl = CrlRecord { number: 1, this_update: 1, next_update: 2, der: vec![1, 2, 3] };
    let ev = event("crl.issue", "1");
    store.insert_crl(&crl, &|seq, prev| seal(&ev, 1, seq, prev)).await.unwrap();
    let taken = store.insert_crl(&crl, &|seq, prev| seal(&ev, 1, seq, prev)).await.unwrap_err();
    assert_eq!(taken.code(), certdesk_core::error::ErrorCode::Contention, "{taken}");
    assert_eq!(store.next_crl_number().await.unwrap(), 2);
    assert_eq!(store.latest_crl().await.unwrap().unwrap(), crl);

    let log = store.audit_log().await.unwrap();
    assert_eq!(log.len(), 6);
    assert_eq!(verify(&log).unwrap().records, 6);

    // Audit checkpoints: one claim per period, given back when its mail fails; alerts
    // (seq 0) are no checkpoint.
    let head = certdesk_core::audit::Checkpoint { seq: 6, hash: log[5].hash.clone() };
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
    // Its only index is the sequence number's (migration 13 dropped the hash's).
    let indexes = match store.backend() {
        certdesk_store::Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log'"
        }
        certdesk_store::Backend::Postgres => "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'audit_log'",
    };
    let primary_key_index = i64::from(store.backend() == certdesk_store::Backend::Postgres);
    assert_eq!(store.danger_integer(indexes).await.unwrap(), primary_key_index);
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    conformance(&store).await;
    concurrent_audit_appends_chain(&store).await;
    intents_and_deliveries_conform(&store).await;
    // Intents commit unsynced (made durable by the record's sync); nothing else does,
    // whether the intent was recorded or refused.
    assert_eq!(store.danger_integer("PRAGMA synchronous").await.unwrap(), 2, "FULL");
    store.record_intents(&[intent("2a")], None, 40).await.unwrap();
    assert_eq!(store.danger_integer("PRAGMA synchronous").await.unwrap(), 2, "FULL after an intent");
    assert!(store.record_intents(&[intent("2a")], None, 41).await.is_err());
    assert_eq!(store.danger_integer("PRAGMA synchronous").await.unwrap(), 2, "FULL after a refused intent");
    // Reopening applies no migration twice.
    store.close().await;
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.audit_log().await.unwrap().len(), 35);
    publications_conform(&again).await;
    escrow_conforms(&again).await;
}

/// Publications to an existing directory (issue 16): recorded with their audit record,
/// recorded again (another entry) by update, removed once.
async fn publications_conform(store: &Store) {
    let records = store.audit_log().await.unwrap().len();
    let publication = |serial: &str, dn: &str| Publication {
        serial: serial.into(),
        email: "jane.doe@example.org".into(),
        dn: dn.into(),
        attribute: "userCertificate;binary".into(),
    };
    let ev = event("directory.publish", "0a");
    for p in [publication("0a", "uid=jane,dc=example"), publication("0c", "uid=jane,dc=example")] {
        store.record_publication(&p, 50, &|seq, prev| seal(&ev, 50, seq, prev)).await.unwrap();
    }
    let moved = publication("0a", "uid=jane2,dc=example");
    store.record_publication(&moved, 51, &|seq, prev| seal(&ev, 51, seq, prev)).await.unwrap();
    assert_eq!(store.directory_publications().await.unwrap(), [moved, publication("0c", "uid=jane,dc=example")]);
    // Only a certificate of the store can be recorded.
    assert!(store
        .record_publication(&publication("ff", "uid=x"), 52, &|seq, prev| seal(&ev, 52, seq, prev))
        .await
        .is_err());
    let ev = event("directory.unpublish", "0a");
    assert!(store.record_unpublication("0a", &|seq, prev| seal(&ev, 53, seq, prev)).await.unwrap());
    assert!(!store.record_unpublication("0a", &|seq, prev| seal(&ev, 54, seq, prev)).await.unwrap());
    assert_eq!(store.directory_publications().await.unwrap().len(), 1);
    let log = store.audit_log().await.unwrap();
    assert_eq!(log.len(), records + 4, "one audit record per change, none for a refused or empty one");
    verify(&log).unwrap();
}

/// Issue 15: escrow keys and agents; a new key retires the one before in the same
/// transaction; one audit record each; a repeated agent index is refused whole.
async fn escrow_conforms(store: &Store) {
    let records = store.audit_log().await.unwrap().len();
    assert_eq!(store.current_escrow_key().await.unwrap(), None);
    let key = |id: &str, at: i64| EscrowKeyRecord {
        key_id: id.into(),
        certificate: vec![0x30, 0x03, 0x02, 0x01, at as u8],
        threshold: 2,
        total: 3,
        created_at: at,
        retired_at: None,
    };
    let agent = |index: u8| EscrowAgentRecord {
        index,
        email: format!("agent{index}@example.org"),
        agent_serial: format!("0{index}"),
        commitment: format!("{index:064x}"),
    };
    let ev = event("escrow.init", "k1");
    let agents: Vec<EscrowAgentRecord> = (1..=3).map(agent).collect();
    store.record_escrow_key(&key("k1", 100), &agents, &|seq, prev| seal(&ev, 100, seq, prev)).await.unwrap();
    assert_eq!(store.current_escrow_key().await.unwrap(), Some(key("k1", 100)));
    assert_eq!(store.escrow_agents("k1").await.unwrap(), agents);
    // The same index twice: nothing of it is kept.
    let twice = vec![agent(1), agent(1)];
    assert!(store.record_escrow_key(&key("k2", 200), &twice, &|seq, prev| seal(&ev, 200, seq, prev)).await.is_err());
    assert_eq!(store.escrow_keys().await.unwrap().len(), 1);
    assert_eq!(store.current_escrow_key().await.unwrap(), Some(key("k1", 100)));
    // A new key retires the one in use.
    store.record_escrow_key(&key("k2", 200), &agents, &|seq, prev| seal(&ev, 200, seq, prev)).await.unwrap();
    let keys = store.escrow_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], key("k2", 200));
    assert_eq!(keys[1], EscrowKeyRecord { retired_at: Some(200), ..key("k1", 100) });
    assert_eq!(store.current_escrow_key().await.unwrap(), Some(key("k2", 200)));

    // Profiles escrow once an administrator says so (one audit record per change).
    assert!(store.profile_escrow().await.unwrap().is_empty());
    assert_eq!(store.escrow_mode("sponsor-strict").await.unwrap(), EscrowMode::Off);
    let ev = event("profile.escrow", "sponsor-strict");
    for (profile, mode, at) in
        [("sponsor-strict", EscrowMode::On, 210), ("private", EscrowMode::On, 211), ("private", EscrowMode::Off, 212)]
    {
        store.set_profile_escrow(profile, mode, "admin", at, &|seq, prev| seal(&ev, at, seq, prev)).await.unwrap();
    }
    assert_eq!(
        store.profile_escrow().await.unwrap(),
        [("private".to_string(), EscrowMode::Off), ("sponsor-strict".to_string(), EscrowMode::On)]
    );
    assert_eq!(store.escrow_mode("sponsor-strict").await.unwrap(), EscrowMode::On);
    assert_eq!(EscrowMode::parse(" ON ").unwrap(), EscrowMode::On);
    assert!(EscrowMode::parse("separately").is_err());

    // An escrowed key is written in the commit of its certificate, never without it.
    let escrowed = |serial: &str, key_id: &str| EscrowedKeyRecord {
        serial: serial.into(),
        key_id: key_id.into(),
        blob: vec![0x30, 0x03, 0x02, 0x01, 0x07],
        created_at: 220,
    };
    store.record_intents(&[intent("e1"), intent("e2")], None, 220).await.unwrap();
    let issue = [event("certificate.issue", "e1")];
    assert!(store
        .record_issued(&[&record("e1", 5_000)], &issue, 220, None, Some(&escrowed("e2", "k2")))
        .await
        .is_err());
    assert!(store
        .record_issued(&[&record("e1", 5_000)], &issue, 220, None, Some(&escrowed("e1", "nokey")))
        .await
        .is_err());
    assert_eq!(store.certificate("e1").await.unwrap(), None, "nothing of a refused commit is kept");
    assert_eq!(store.escrowed_key("e1").await.unwrap(), None);
    store.record_issued(&[&record("e1", 5_000)], &issue, 220, None, Some(&escrowed("e1", "k2"))).await.unwrap();
    assert_eq!(store.escrowed_key("e1").await.unwrap(), Some(escrowed("e1", "k2")));
    store.record_issued(&[&record("e2", 5_000)], &[event("certificate.issue", "e2")], 221, None, None).await.unwrap();
    assert_eq!(store.escrowed_key("e2").await.unwrap(), None);
    assert_eq!(store.escrowed_keys().await.unwrap(), [escrowed("e1", "k2")]);
    assert!(!format!("{:?}", escrowed("e1", "k2")).contains("48"), "Debug shows no blob bytes");

    // A recovery: inserted, moved with its version checked, approvals once per agent,
    // approvals cleared when the shares were lost.
    let recovery = KeyRecoveryRecord {
        id: "r1".into(),
        key_id: "k2".into(),
        holder: "jane.doe@example.org".into(),
        recipient: "jane.doe@example.org".into(),
        serials: vec!["e1".into()],
        reason: "laptop stolen".into(),
        authorised_by: None,
        requested_by: "jane.doe@example.org".into(),
        state: RecoveryState::Requested,
        created_at: 230,
        opened_at: None,
        expires_at: None,
        closed_at: None,
        version: 1,
    };
    let ev = event("recovery.request", "r1");
    store.insert_recovery(&recovery, &|seq, prev| seal(&ev, 230, seq, prev)).await.unwrap();
    assert_eq!(store.recovery("r1").await.unwrap(), Some(recovery.clone()));
    assert_eq!(store.recovery("nope").await.unwrap(), None);
    let open = KeyRecoveryRecord {
        state: RecoveryState::Open,
        opened_at: Some(231),
        expires_at: Some(231 + 86_400),
        version: 2,
        ..recovery.clone()
    };
    let ev = event("recovery.open", "r1");
    assert!(store.update_recovery(&open, false, &|seq, prev| seal(&ev, 231, seq, prev)).await.unwrap());
    assert!(
        !store.update_recovery(&open, false, &|seq, prev| seal(&ev, 232, seq, prev)).await.unwrap(),
        "a stale version moved it"
    );
    let approval = |index: u8| RecoveryApproval { index, agent: format!("agent{index}@example.org"), approved_at: 233 };
    let ev = event("recovery.approve", "r1");
    assert!(store.add_recovery_approval("r1", &approval(1), &|seq, prev| seal(&ev, 233, seq, prev)).await.unwrap());
    assert!(!store.add_recovery_approval("r1", &approval(1), &|seq, prev| seal(&ev, 234, seq, prev)).await.unwrap());
    assert!(store.add_recovery_approval("r1", &approval(2), &|seq, prev| seal(&ev, 235, seq, prev)).await.unwrap());
    assert_eq!(store.recovery_approvals("r1").await.unwrap(), [approval(1), approval(2)]);
    let lost = KeyRecoveryRecord { version: 3, ..open.clone() };
    let ev = event("recovery.shares-lost", "r1");
    assert!(store.update_recovery(&lost, true, &|seq, prev| seal(&ev, 236, seq, prev)).await.unwrap());
    assert!(store.recovery_approvals("r1").await.unwrap().is_empty());
    assert_eq!(store.recoveries().await.unwrap(), std::slice::from_ref(&lost));
    // Closed: no approval is recorded any more.
    let cancelled = KeyRecoveryRecord { state: RecoveryState::Cancelled, closed_at: Some(237), version: 4, ..lost };
    let ev = event("recovery.cancel", "r1");
    assert!(store.update_recovery(&cancelled, false, &|seq, prev| seal(&ev, 237, seq, prev)).await.unwrap());
    let ev = event("recovery.approve", "r1");
    assert!(!store.add_recovery_approval("r1", &approval(3), &|seq, prev| seal(&ev, 238, seq, prev)).await.unwrap());
    assert!(store.recovery_approvals("r1").await.unwrap().is_empty());

    let log = store.audit_log().await.unwrap();
    assert_eq!(log.len(), records + 2 + 3 + 2 + 6);
    verify(&log).unwrap();
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it when CERTDESK_TEST_POSTGRES_URL is set"]
async fn postgres_store_conforms() {
    let url = certdesk_test_support::fresh_postgres_database("certdesk_test");
    let store = Store::open(&url).await.unwrap();
    conformance(&store).await;
    concurrent_audit_appends_chain(&store).await;
    intents_and_deliveries_conform(&store).await;
    publications_conform(&store).await;
    escrow_conforms(&store).await;
    store.close().await;
    certdesk_test_support::drop_postgres_database(&url);
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

/// Abandoned intents and pending .p12 deliveries (crash recovery's part of the store).
async fn intents_and_deliveries_conform(store: &Store) {
    let before = store.audit_log().await.unwrap().len();
    store.record_intents(&[intent("1a")], None, 10).await.unwrap();
    let ev = event("certificate.abandoned", "1a");
    let pending = store.intents().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(store.abandon_intent(&pending[0], 11, &|seq, prev| seal(&ev, 11, seq, prev)).await.unwrap());
    // Once only, and the serial is never free again.
    assert!(!store.abandon_intent(&pending[0], 12, &|seq, prev| seal(&ev, 12, seq, prev)).await.unwrap());
    assert!(store.record_intents(&[intent("1a")], None, 13).await.is_err(), "an abandoned serial was reused");
    let late = record("1a", 5_000);
    assert!(store.record_issued(&[&late], &[event("certificate.issue", "1a")], 14, None, None).await.is_err());
    assert_eq!(store.audit_log().await.unwrap().len(), before + 1);

    // In a batch, the certificate without an intent is named, nothing is recorded, and
    // the other keeps its intent.
    store.record_intents(&[intent("1e")], None, 15).await.unwrap();
    let (kept, orphan) = (record("1e", 5_000), record("1f", 5_000));
    let events = [event("certificate.issue", "1e"), event("certificate.issue", "1f")];
    let err = store.record_issued(&[&kept, &orphan], &events, 15, None, None).await.unwrap_err();
    assert_eq!(err.code(), certdesk_core::error::ErrorCode::Conflict);
    assert!(err.to_string().contains("the issuance of 1f was abandoned"), "{err}");
    assert!(store.certificate("1e").await.unwrap().is_none());
    let left = store.intents().await.unwrap();
    assert_eq!(left.iter().map(|i| i.serial.as_str()).collect::<Vec<_>>(), ["1e"], "an intent was lost");
    let ev = event("certificate.abandoned", "1e");
    assert!(store.abandon_intent(&left[0], 16, &|seq, prev| seal(&ev, 16, seq, prev)).await.unwrap());

    // A .p12 stored with its certificate, found by application, deleted once delivered.
    store.record_intents(&[intent("1b")], None, 20).await.unwrap();
    let delivery = PendingDelivery {
        serial: Serial::parse("1b").unwrap(),
        application_id: None,
        destination: Some("/tmp/jane.p12".into()),
        sha256: "ab".repeat(32),
        pkcs12: vec![0x30, 0x03, 0x02, 0x01, 0x03],
        owner: "host/1/a".into(),
        created_at: 20,
        handed_out_at: None,
        wrong_tries: 0,
        wrong_since: None,
        companions: vec![Serial::parse("0a").unwrap(), Serial::parse("0b").unwrap()],
    };
    let cert = record("1b", 5_000);
    store.record_issued(&[&cert], &[event("certificate.issue", "1b")], 20, Some(&delivery), None).await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), vec![delivery.clone()]);
    assert_eq!(store.pending_delivery_of("nobody").await.unwrap(), None);
    // Wrong passwords for a re-download are counted in a window that starts again.
    assert_eq!(store.note_wrong_p12_password("1b", 100, 900).await.unwrap(), 1);
    assert_eq!(store.note_wrong_p12_password("1b", 200, 900).await.unwrap(), 2);
    assert_eq!(store.note_wrong_p12_password("1b", 1_000, 900).await.unwrap(), 1, "a new window");
    assert_eq!(store.note_wrong_p12_password("none", 1_000, 900).await.unwrap(), 0);
    store.mark_handed_out("1b", 21).await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap()[0].handed_out_at, Some(21));
    assert!(store.delete_pending_delivery("1b").await.unwrap());
    assert!(!store.delete_pending_delivery("1b").await.unwrap(), "deleted twice");
    assert!(store.pending_deliveries().await.unwrap().is_empty());
    // A revocation takes the stored .p12 with it.
    store.record_intents(&[intent("1c")], None, 30).await.unwrap();
    let kept =
        PendingDelivery { serial: Serial::parse("1c").unwrap(), wrong_tries: 0, wrong_since: None, ..delivery.clone() };
    store
        .record_issued(&[&record("1c", 5_000)], &[event("certificate.issue", "1c")], 30, Some(&kept), None)
        .await
        .unwrap();
    let ev = event("certificate.revoke", "1c");
    assert!(store
        .revoke("1c", 31, RevocationReason::KeyCompromise, &|seq, prev| seal(&ev, 31, seq, prev))
        .await
        .unwrap());
    assert!(store.pending_deliveries().await.unwrap().is_empty(), "a revoked certificate's .p12 was kept");
    verify(&store.audit_log().await.unwrap()).unwrap();
}

/// A database made before session 6 recorded its migrations in `schema_version`; the
/// sqlx migrator adopts it (checksums of the released files) and applies the rest. A
/// migration changed after it was applied is refused.
#[tokio::test]
async fn a_database_of_the_earlier_migration_runner_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    sqlx::any::install_default_drivers();
    {
        // What the runner before session 6 left: migrations 1 to 7 and their versions.
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE schema_version (version BIGINT PRIMARY KEY)").execute(&pool).await.unwrap();
        let old = [
            include_str!("../../../store/migrations/sqlite/0001_init.sql"),
            include_str!("../../../store/migrations/sqlite/0002_portal.sql"),
            include_str!("../../../store/migrations/sqlite/0003_oidc.sql"),
            include_str!("../../../store/migrations/sqlite/0004_profile_settings.sql"),
            include_str!("../../../store/migrations/sqlite/0005_audit_checkpoints.sql"),
            include_str!("../../../store/migrations/sqlite/0006_totp_attempts.sql"),
            include_str!("../../../store/migrations/sqlite/0007_appointment_reminders.sql"),
        ];
        for (i, sql) in old.iter().enumerate() {
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind(i as i64 + 1)
                .execute(&pool)
                .await
                .unwrap();
        }
        let ev = event("ca.init", "old");
        let store_rows = seal(&ev, 1, 1, certdesk_core::audit::GENESIS);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(store_rows.seq)
        .bind(store_rows.at)
        .bind(&store_rows.actor)
        .bind(&store_rows.action)
        .bind(&store_rows.subject)
        .bind(&store_rows.details)
        .bind(&store_rows.prev_hash)
        .bind(&store_rows.hash)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = Store::open(&url).await.unwrap();
    assert!(store.intents().await.unwrap().is_empty(), "migration 8 was not applied");
    assert_eq!(store.audit_log().await.unwrap().len(), 1, "the old records are gone");
    // Migration 13 rebuilt the audit log: the record kept, the chain goes on, and the
    // log is still append-only.
    let next = event("test.after", "new");
    store.append_audit(&|seq, prev| seal(&next, 2, seq, prev)).await.unwrap();
    let rows = store.audit_log().await.unwrap();
    let old = seal(&event("ca.init", "old"), 1, 1, certdesk_core::audit::GENESIS);
    assert_eq!((rows.len(), rows[0].hash.as_str()), (2, old.hash.as_str()));
    verify(&rows).unwrap();
    assert!(store.danger_execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1").await.is_err());
    assert!(store.danger_execute("DELETE FROM audit_log WHERE seq = 1").await.is_err());
    assert_eq!(store.audit_log().await.unwrap(), rows);
    store.close().await;
    // Opening again changes nothing.
    let store = Store::open(&url).await.unwrap();
    // A released migration edited afterwards (here: its recorded checksum) is refused.
    store.danger_execute("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 3").await.unwrap();
    store.close().await;
    let err = Store::open(&url).await.unwrap_err();
    assert!(err.to_string().contains("migration 3 was previously applied but has been modified"), "{err}");
}
