//! Key recovery through the portal (issue 15, docs/design/key-escrow.md "Recovery"):
//! escrow with three agents, two needed; Jane's key made on the portal is escrowed;
//! OpenSSL encrypts mail to her certificate; her key is "lost"; her request opens once an
//! officer checks her identity; every hostile or wrong step is refused and audited; one
//! agent is not enough, two are; the recovered .p12 opens the mail in OpenSSL and holds
//! her very key; it is handed out once; a window that passed refuses shares.

use axum::http::StatusCode;
use certdesk_core::audit::verify;
use certdesk_core::clock::Clock;
use certdesk_desk::portal::Role;
use certdesk_test_support::openssl;

use super::portal::approved_application;
use super::web_fixture::{desk, escrow_with_agents, mails_to, staff_sign_in, Desk};

/// A fresh authenticator code for `secret` (the clock moves on a step first: each code
/// works once).
fn fresh_code(desk: &Desk, secret: &[u8]) -> String {
    desk.clock.advance(time::Duration::seconds(30));
    let now = desk.clock.now().unix_timestamp();
    certdesk_desk::totp::code_at_step(secret, certdesk_desk::totp::step_at(now))
}

/// The password of the .p12 Jane takes from the portal.
const PASSWORD: &str = "Blue-Otter-Canyon-42";

/// Jane takes her key made on the portal, as a .p12 under [`PASSWORD`] (P-256).
async fn take_p12(desk: &Desk, jane: &mut super::web_fixture::Browser, id: &str) -> super::web_fixture::Reply {
    let fields = [("password", PASSWORD), ("password2", PASSWORD), ("key", "p256")];
    let p12 = jane.submit(desk, &format!("/applications/{id}/p12"), &fields).await;
    assert_eq!(p12.status, StatusCode::OK, "{}", p12.text());
    p12
}

fn state_of(page: &str) -> String {
    page.split(r#"<span id="state">"#).nth(1).unwrap().split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn escrowed_keys_come_back_only_with_enough_agents() {
    let desk = desk(None).await;
    let agents = ["agent1@example.org", "agent2@example.org", "agent3@example.org"];
    let shares = escrow_with_agents(&desk, "sponsor-strict", &agents, 2).await;
    let store = desk.status.authority().store();

    // Jane's key, made on the portal, escrowed; OpenSSL encrypts mail to her.
    let (mut jane, id) = approved_application(&desk).await;
    let p12 = take_p12(&desk, &mut jane, &id).await;
    let serial = store.application(&id).await.unwrap().unwrap().serial.unwrap();
    assert!(store.escrowed_key(&serial).await.unwrap().is_some());
    let dir = tempfile::tempdir().unwrap();
    let cert = store.certificate(&serial).await.unwrap().unwrap();
    std::fs::write(dir.path().join("jane.der"), &cert.der).unwrap();
    openssl(dir.path(), &["x509", "-inform", "DER", "-in", "jane.der", "-out", "jane.pem"]);
    std::fs::write(dir.path().join("original.p12"), &p12.body).unwrap();
    std::fs::write(dir.path().join("message.txt"), "Subject: budget\r\n\r\nThe figures for 2027.\r\n").unwrap();
    openssl(dir.path(), &["cms", "-encrypt", "-aes256", "-in", "message.txt", "-out", "mail.eml", "jane.pem"]);
    openssl(
        dir.path(),
        &["cms", "-encrypt", "-aes256", "-in", "message.txt", "-outform", "DER", "-out", "mail.der", "jane.pem"],
    );
    // (The key is lost: original.p12 is not used again but to compare the key.)

    // Jane asks; the request waits for an identity check; she is told by mail.
    let asked = jane.submit(&desk, "/recoveries", &[("reason", "my laptop was stolen")]).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.text());
    let page_path = asked.location();
    let rid = page_path.trim_start_matches("/recoveries/").to_string();
    assert!(mails_to(&desk.outbox, "jane.doe@example.org")
        .iter()
        .any(|(subject, _)| subject == "A recovery of your escrowed keys was requested"));
    let empty = jane.submit(&desk, "/recoveries", &[("reason", " ")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.text());
    // Someone with no escrowed key has nothing to recover.
    let mut bob = super::web_fixture::sign_in(&desk, "bob@example.org").await;
    let none = bob.submit(&desk, "/recoveries", &[("reason", "lost it")]).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.text());

    let (mut agent1, secret1) = staff_sign_in(&desk, agents[0], Role::Officer).await;
    let (mut agent2, secret2) = staff_sign_in(&desk, agents[1], Role::Officer).await;
    let (mut officer, officer_secret) = staff_sign_in(&desk, "other@example.org", Role::Officer).await;
    let share_path = format!("/recoveries/{rid}/share");

    // Not open yet: a share is refused.
    let code = fresh_code(&desk, &secret1);
    let early = agent1.submit(&desk, &share_path, &[("share", &shares[0]), ("code", &code)]).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text());
    // Jane cannot check her own identity or give shares.
    let own = jane
        .submit(
            &desk,
            &format!("/recoveries/{rid}/identity"),
            &[("document_type", "passport"), ("document_number", "X"), ("in_person", "yes")],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text());
    let applicant_share = jane.submit(&desk, &share_path, &[("share", &shares[0]), ("code", "123456")]).await;
    assert_eq!(applicant_share.status, StatusCode::FORBIDDEN, "{}", applicant_share.text());
    // An officer checks her identity in person: open, the window starts.
    let no_box = officer
        .submit(
            &desk,
            &format!("/recoveries/{rid}/identity"),
            &[("document_type", "passport"), ("document_number", "C01X00T47")],
        )
        .await;
    assert_eq!(no_box.status, StatusCode::BAD_REQUEST, "{}", no_box.text());
    let opened = officer
        .submit(
            &desk,
            &format!("/recoveries/{rid}/identity"),
            &[("document_type", "passport"), ("document_number", "C01X00T47"), ("in_person", "yes")],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.text());
    let page = agent1.get(&desk, &page_path).await.text();
    assert_eq!(state_of(&page), "open for the agents' shares");
    // An officer with no step in it (no agent of its key) does not see it any more.
    let r = officer.get(&desk, &page_path).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(page.contains(r#"action="/recoveries/"#) && page.contains("Give your share"), "{page}");

    // Refused, nothing held: an officer who is no agent; garbage; another agent's
    // share; a changed share; a wrong code.
    let code = fresh_code(&desk, &officer_secret);
    let r = officer.submit(&desk, &share_path, &[("share", &shares[2]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", "no share here"), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", &shares[1]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("not yours"), "{}", r.text());
    let body_line = shares[0].lines().nth(1).unwrap();
    let mut flipped: Vec<char> = body_line.chars().collect();
    flipped[20] = if flipped[20] == 'A' { 'B' } else { 'A' };
    let forged = shares[0].replace(body_line, &flipped.into_iter().collect::<String>());
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", &forged), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let r = agent1.submit(&desk, &share_path, &[("share", &shares[0]), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // A share of another escrow key (a newer one, same agents) is refused by name.
    let newer = escrow_with_agents(&desk, "sponsor-strict", &agents, 2).await;
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", &newer[0]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("belongs to another escrow key"), "{}", r.text());

    // Agent 1 gives their share: one of two. Twice is refused; one agent is not enough.
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", &shares[0]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", &shares[0]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("gave a share already"), "{}", r.text());
    let p12_path = format!("/recoveries/{rid}/p12");
    let new_password = "Green-Heron-Valley-77";
    let fields = [("password", new_password), ("password2", new_password), ("format", "modern")];
    let r = jane.submit(&desk, &p12_path, &fields).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "one agent recovered something: {}", r.text());

    // Agent 2: ready. Only the recipient receives the keys, once.
    let code = fresh_code(&desk, &secret2);
    let r = agent2.submit(&desk, &share_path, &[("share", &shares[1]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(state_of(&jane.get(&desk, &page_path).await.text()), "ready to hand out");
    let r = agent2.submit(&desk, &p12_path, &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = jane
        .submit(&desk, &p12_path, &[("password", new_password), ("password2", "other"), ("format", "modern")])
        .await;
    assert_ne!(r.status, StatusCode::OK);
    let recovered = jane.submit(&desk, &p12_path, &fields).await;
    assert_eq!(recovered.status, StatusCode::OK, "{}", recovered.text());
    let again = jane.submit(&desk, &p12_path, &fields).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert!(mails_to(&desk.outbox, "jane.doe@example.org")
        .iter()
        .any(|(subject, _)| subject == "Your escrowed keys were recovered"));

    // OpenSSL: the recovered .p12 opens, holds her very key, and decrypts the mail.
    std::fs::write(dir.path().join("recovered.p12"), &recovered.body).unwrap();
    std::fs::write(dir.path().join("pass"), new_password).unwrap();
    std::fs::write(dir.path().join("oldpass"), PASSWORD).unwrap();
    openssl(dir.path(), &["pkcs12", "-in", "recovered.p12", "-passin", "file:pass", "-nodes", "-out", "recovered.pem"]);
    openssl(
        dir.path(),
        &["pkcs12", "-in", "original.p12", "-passin", "file:oldpass", "-nodes", "-out", "original.pem"],
    );
    let public = |file: &str| String::from_utf8(openssl(dir.path(), &["pkey", "-in", file, "-pubout"]).stdout).unwrap();
    assert_eq!(public("recovered.pem"), public("original.pem"));
    let out =
        openssl(dir.path(), &["cms", "-decrypt", "-in", "mail.eml", "-inkey", "recovered.pem", "-recip", "jane.pem"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("The figures for 2027."));
    // And certdesk's own reader and decryption.
    let contents = certdesk_pki::pkcs12::read(&recovered.body, new_password).unwrap();
    assert_eq!(contents.pairs.len(), 1, "one key was escrowed");
    assert_eq!(contents.pairs[0].leaf.as_deref(), Some(cert.der.as_slice()));
    let key = certdesk_smime::envelope::RecipientKey::new(&contents.pairs[0].key_pkcs8_der, &cert.der).unwrap();
    let der = std::fs::read(dir.path().join("mail.der")).unwrap();
    let plain = certdesk_smime::envelope::decrypt(&der, &[key]).unwrap();
    assert!(String::from_utf8_lossy(&plain).contains("The figures for 2027."));

    // No share and no key in clear anywhere in the data directory (database, outbox).
    let original = certdesk_pki::pkcs12::read(&p12.body, PASSWORD).unwrap();
    let key = original.key_pkcs8_der.unwrap();
    let secrets: Vec<Vec<u8>> =
        shares.iter().map(|share| share.lines().nth(1).unwrap().as_bytes().to_vec()).chain([key.to_vec()]).collect();
    for file in certdesk_test_support::files_under(desk.data.root()) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in &secrets {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()), "a secret is in {}", file.display());
        }
    }

    // Every step and refusal is in the audit chain, which verifies.
    let log = store.audit_log().await.unwrap();
    verify(&log).unwrap();
    let actions: Vec<&str> = log.iter().filter(|r| r.subject == rid).map(|r| r.action.as_str()).collect();
    for needed in ["recovery.request", "recovery.open", "recovery.approve", "recovery.ready", "recovery.deliver"] {
        assert!(actions.contains(&needed), "{needed} missing: {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| **a == "recovery.approve").count(), 2);
    assert!(actions.iter().filter(|a| **a == "recovery.refused").count() >= 9, "{actions:?}");

    // A window that passed: shares refused, the recovery expired.
    let asked = jane.submit(&desk, "/recoveries", &[("reason", "again")]).await;
    let rid2 = asked.location().trim_start_matches("/recoveries/").to_string();
    let fields_identity = [("document_type", "passport"), ("document_number", "C01X00T47"), ("in_person", "yes")];
    let r = officer.submit(&desk, &format!("/recoveries/{rid2}/identity"), &fields_identity).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    desk.clock.advance(time::Duration::hours(25));
    // (Sessions ended meanwhile: the third agent signs in now.)
    let (mut agent3, secret3) = staff_sign_in(&desk, agents[2], Role::Admin).await;
    let code = fresh_code(&desk, &secret3);
    let late =
        agent3.submit(&desk, &format!("/recoveries/{rid2}/share"), &[("share", &shares[2]), ("code", &code)]).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text());
    assert!(late.text().contains("window"), "{}", late.text());
    assert_eq!(store.recovery(&rid2).await.unwrap().unwrap().state, certdesk_store::RecoveryState::Expired);
}

/// The same service after a restart: a new CA process (the shares held in memory are
/// gone) on the same data and database; sessions live on in the database.
fn restarted(desk: &Desk) -> Desk {
    let ca = std::sync::Arc::new(certdesk_ca::service::CaService::new(desk.status.clone()));
    super::web_fixture::process_with_ca(desk, ca)
}

/// An administrator's recovery for a successor: refused while the holder's certificate
/// still signs, without the authorising person, outside the date range, or for the
/// administrator; then open at once; the holder is told. A restart loses the shares
/// given: the recipient's download finds them gone, the approvals are voided and the
/// agents give theirs again; then the successor receives the key, and nobody else.
#[tokio::test]
async fn a_successor_gets_revoked_keys_and_a_restart_voids_the_shares() {
    let desk = desk(None).await;
    let agents = ["agent1@example.org", "agent2@example.org"];
    let shares = escrow_with_agents(&desk, "sponsor-strict", &agents, 2).await;
    let store = desk.status.authority().store();
    let (mut jane, id) = approved_application(&desk).await;
    take_p12(&desk, &mut jane, &id).await;
    let serial = store.application(&id).await.unwrap().unwrap().serial.unwrap();

    let (mut admin, _) = staff_sign_in(&desk, "root@example.org", Role::Admin).await;
    let form = |authorised: &'static str, until: &'static str| {
        vec![
            ("holder", "Jane.Doe@example.org"),
            ("recipient", "successor@example.org"),
            ("reason", "Jane left; her successor answers her project mail"),
            ("authorised_by", authorised),
            ("issued_from", ""),
            ("issued_until", until),
        ]
    };
    let r = admin.submit(&desk, "/recoveries/successor", &form("", "")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = admin.submit(&desk, "/recoveries/successor", &form("Dr. Head, head of department", "")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("still signs"), "{}", r.text());
    let r = jane.submit(&desk, "/recoveries/successor", &form("Dr. Head", "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    desk.status
        .authority()
        .revoke(&serial, certdesk_pki::crl::RevocationReason::AffiliationChanged, "test")
        .await
        .unwrap();
    let r = admin.submit(&desk, "/recoveries/successor", &form("Dr. Head", "31.12.2099")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("is not a date (YYYY-MM-DD)"), "{}", r.text());
    let r = admin.submit(&desk, "/recoveries/successor", &form("Dr. Head", "2020-01-01")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = admin.submit(&desk, "/recoveries/successor", &form("Dr. Head, head of department", "2099-12-31")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let rid = r.location().trim_start_matches("/recoveries/").to_string();
    let recovery = store.recovery(&rid).await.unwrap().unwrap();
    assert_eq!(recovery.state, certdesk_store::RecoveryState::Open);
    assert_eq!(
        (recovery.holder.as_str(), recovery.recipient.as_str()),
        ("jane.doe@example.org", "successor@example.org")
    );
    assert_eq!(recovery.serials, std::slice::from_ref(&serial));
    assert!(mails_to(&desk.outbox, "jane.doe@example.org")
        .iter()
        .any(|(subject, body)| subject == "A recovery of your escrowed keys was requested"
            && body.contains("successor@example.org")));

    // Agent 1 gives a share; the service restarts (the share is gone); agent 2 gives
    // theirs: agent 1's approval is voided (audited), and one agent is not enough.
    let (mut agent1, secret1) = staff_sign_in(&desk, agents[0], Role::Officer).await;
    let (mut agent2, secret2) = staff_sign_in(&desk, agents[1], Role::Officer).await;
    let share_path = format!("/recoveries/{rid}/share");
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", &shares[0]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let desk = restarted(&desk);
    let code = fresh_code(&desk, &secret2);
    let r = agent2.submit(&desk, &share_path, &[("share", &shares[1]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(store.recovery(&rid).await.unwrap().unwrap().state, certdesk_store::RecoveryState::Open);
    let approvals = store.recovery_approvals(&rid).await.unwrap();
    assert_eq!(approvals.iter().map(|a| a.agent.as_str()).collect::<Vec<_>>(), [agents[1]]);
    let mut successor = super::web_fixture::sign_in(&desk, "successor@example.org").await;
    let p12_path = format!("/recoveries/{rid}/p12");
    let new_password = "Green-Heron-Valley-77";
    let fields = [("password", new_password), ("password2", new_password), ("format", "compat")];
    let r = successor.submit(&desk, &p12_path, &fields).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let code = fresh_code(&desk, &secret1);
    let r = agent1.submit(&desk, &share_path, &[("share", &shares[0]), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(store.recovery(&rid).await.unwrap().unwrap().state, certdesk_store::RecoveryState::Ready);
    // Jane, the holder, can neither cancel it nor receive it; the successor receives it,
    // in the compatible format.
    let r = jane.submit(&desk, &format!("/recoveries/{rid}/cancel"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = jane.submit(&desk, &p12_path, &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = successor.submit(&desk, &p12_path, &fields).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let contents = certdesk_pki::pkcs12::read(&r.body, new_password).unwrap();
    assert_eq!(contents.pairs.len(), 1);
    let actions: Vec<String> =
        store.audit_log().await.unwrap().into_iter().filter(|r| r.subject == rid).map(|r| r.action).collect();
    assert!(actions.contains(&"recovery.shares-lost".to_string()), "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "recovery.approve").count(), 3, "{actions:?}");
}

/// The REST API walks the same recovery (bearer tokens of the same sessions): problem
/// documents for refusals, the .p12 once.
#[tokio::test]
async fn the_rest_api_covers_key_recovery() {
    use axum::body::Body;
    use axum::http::{header, Request};
    let desk = desk(None).await;
    let agents = ["agent1@example.org", "agent2@example.org"];
    let shares = escrow_with_agents(&desk, "sponsor-strict", &agents, 2).await;
    let (mut jane, id) = approved_application(&desk).await;
    take_p12(&desk, &mut jane, &id).await;
    let (agent1, secret1) = staff_sign_in(&desk, agents[0], Role::Officer).await;
    let (agent2, secret2) = staff_sign_in(&desk, agents[1], Role::Officer).await;
    let (officer, _) = staff_sign_in(&desk, "other@example.org", Role::Officer).await;
    let token = |b: &super::web_fixture::Browser| b.cookies[certdesk_web::portal::SESSION_COOKIE].clone();
    let (jane_t, agent1_t, agent2_t, officer_t) = (token(&jane), token(&agent1), token(&agent2), token(&officer));
    async fn call(desk: &Desk, path: &str, token: &str, body: Option<serde_json::Value>) -> super::web_fixture::Reply {
        let method = if body.is_some() { "POST" } else { "GET" };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json");
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
        super::web_fixture::Browser::default().send(desk, request, body).await
    }
    let json = |r: &super::web_fixture::Reply| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();

    let r = call(&desk, "/api/v1/recoveries", &jane_t, Some(serde_json::json!({ "reason": "laptop stolen" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let rid = json(&r)["id"].as_str().unwrap().to_string();
    assert_eq!(json(&r)["state"], "requested");
    let base = format!("/api/v1/recoveries/{rid}");
    let identity =
        serde_json::json!({ "document_type": "passport", "document_number": "C01X00T47", "verified_in_person": true });
    let r = call(&desk, &format!("{base}/identity"), &jane_t, Some(identity.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/problem+json");
    let r = call(&desk, &format!("{base}/identity"), &officer_t, Some(identity)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(json(&r)["state"], "open");
    let share = |share: &str, code: String| Some(serde_json::json!({ "share": share, "code": code }));
    let r = call(&desk, &format!("{base}/share"), &agent1_t, share("garbage", fresh_code(&desk, &secret1))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = call(&desk, &format!("{base}/share"), &agent1_t, share(&shares[0], fresh_code(&desk, &secret1))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(json(&r)["agents_given"].as_array().unwrap().len(), 1);
    assert_eq!(json(&r)["my_agent_index"], 1);
    let take = Some(serde_json::json!({ "password": "Green-Heron-Valley-77", "format": "compat" }));
    let r = call(&desk, &format!("{base}/pkcs12"), &jane_t, take.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = call(&desk, &format!("{base}/share"), &agent2_t, share(&shares[1], fresh_code(&desk, &secret2))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(json(&r)["state"], "ready");
    // The same download twice at once: one .p12, the other request refused, nothing lost.
    let path = format!("{base}/pkcs12");
    let (a, b) = tokio::join!(call(&desk, &path, &jane_t, take.clone()), call(&desk, &path, &jane_t, take.clone()));
    let (r, other) = if a.status == StatusCode::CREATED { (a, b) } else { (b, a) };
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text());
    assert_eq!(json(&call(&desk, &base, &jane_t, None).await)["state"], "delivered");
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/x-pkcs12");
    let contents = certdesk_pki::pkcs12::read(&r.body, "Green-Heron-Valley-77").unwrap();
    assert_eq!(contents.pairs.len(), 1);
    let r = call(&desk, &format!("{base}/pkcs12"), &jane_t, take).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = call(&desk, "/api/v1/recoveries", &jane_t, None).await;
    assert_eq!(json(&r)[0]["state"], "delivered", "{}", r.text());
    let doc = call(&desk, "/api/openapi.json", &jane_t, None).await;
    assert!(json(&doc)["paths"]["/api/v1/recoveries/{id}/share"]["post"]["responses"]["429"].is_object());
}

/// A profile that escrows separately: the page says so before the key is chosen; the
/// .p12 holds the two keys; a successor may be given the encryption key of a current
/// certificate at once (it cannot sign), and the signing certificate is never in a
/// recovery.
#[tokio::test]
async fn a_successor_gets_a_current_encryption_key_of_a_separate_profile() {
    let desk = desk(None).await;
    let agents = ["agent1@example.org", "agent2@example.org"];
    escrow_with_agents(&desk, "sponsor-strict", &agents, 2).await;
    let store = desk.status.authority().store();
    let ev = certdesk_core::audit::AuditEvent {
        actor: "test".into(),
        action: "profile.escrow",
        subject: "sponsor-strict".into(),
        details: serde_json::json!({ "mode": "separate" }),
    };
    store
        .set_profile_escrow("sponsor-strict", certdesk_store::EscrowMode::Separate, "test", 3, &|seq, prev| {
            certdesk_core::audit::seal(&ev, 3, seq, prev)
        })
        .await
        .unwrap();
    let (mut jane, id) = approved_application(&desk).await;
    let page = jane.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(page.contains(r#"id="escrow-separate""#), "{page}");
    let p12 = take_p12(&desk, &mut jane, &id).await;
    let contents = certdesk_pki::pkcs12::read(&p12.body, PASSWORD).unwrap();
    assert_eq!(contents.pairs.len(), 2);
    let encryption = store.application(&id).await.unwrap().unwrap().serial.unwrap();
    let all = store.certificates().await.unwrap();
    let jane_certs: Vec<_> = all.iter().filter(|c| c.email == "jane.doe@example.org").collect();
    assert_eq!(jane_certs.len(), 2);
    // Only the encryption certificate is in the directory.
    let listed = desk.portal.directory("jane.doe@example.org").await.unwrap();
    assert_eq!(listed.iter().map(|c| c.serial.to_string()).collect::<Vec<_>>(), std::slice::from_ref(&encryption));

    let (mut admin, _) = staff_sign_in(&desk, "root@example.org", Role::Admin).await;
    let form = [
        ("holder", "jane.doe@example.org"),
        ("recipient", "standin@example.org"),
        ("reason", "Jane is on leave; her stand-in reads the project mail"),
        ("authorised_by", "Dr. Head, head of department"),
    ];
    let r = admin.submit(&desk, "/recoveries/successor", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let rid = r.location().trim_start_matches("/recoveries/").to_string();
    let recovery = store.recovery(&rid).await.unwrap().unwrap();
    assert_eq!(recovery.serials, std::slice::from_ref(&encryption));
    assert_eq!(recovery.state, certdesk_store::RecoveryState::Open);

    // The pair expires together: one reminder, naming the encryption certificate.
    let not_after = jane_certs[0].not_after;
    assert!(jane_certs.iter().all(|c| c.not_after == not_after));
    desk.clock.advance(time::Duration::seconds(not_after - desk.clock.now().unix_timestamp() - 20 * 86_400));
    assert_eq!(desk.portal.send_reminders().await.unwrap(), 1);
    let reminders: Vec<_> = mails_to(&desk.outbox, "jane.doe@example.org")
        .into_iter()
        .filter(|(subject, _)| subject.contains("expires"))
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert!(reminders[0].1.contains(&encryption), "{}", reminders[0].1);
}
