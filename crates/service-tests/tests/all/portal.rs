//! The registration desk through its Router (no port bound): the whole workflow on the
//! web pages and over the REST API, and what hostile users get. Runs on SQLite, and on
//! PostgreSQL when `CERTDESK_TEST_POSTGRES_URL` is set (CI sets it).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use certdesk_ca::authority::Authority;
use certdesk_ca::issuer::OcspResponder;
use certdesk_ca::status::StatusService;
use certdesk_core::clock::Clock;
use certdesk_desk::portal::Role;
use certdesk_test_support::csr::{openssl_csr, CsrOptions};
use certdesk_web::router;
use http_body_util::BodyExt;
use tower::ServiceExt;
use zeroize::Zeroizing;

use super::common::PASS;
use super::web_fixture::{
    desk, from_last_mail, hidden, mails_to, sign_in, staff_sign_in, validation_value, Browser, Desk, Reply,
};

/// A second "process" on the same data directory and database: its own pool, status
/// service, portal and router.
async fn second_process(desk: &Desk) -> axum::Router {
    let clock: Arc<dyn Clock> = desk.clock.clone();
    let authority = Arc::new(Authority::open(desk.data.clone(), clock.clone()).await.unwrap());
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let responder = OcspResponder::unlock(&desk.data, PASS).unwrap();
    let chain = authority.chain().unwrap();
    let status = Arc::new(StatusService::new(authority, issuer, responder, clock.clone()).unwrap());
    let mailer = certdesk_desk::mail::build_mailer(&Default::default(), &desk.data.outbox(), clock.clone()).unwrap();
    let key = certdesk_desk::portal::load_portal_key(&desk.data).unwrap();
    let portal = Arc::new(super::common::portal(&status, &desk.data, mailer, key, clock.clone()));
    router(super::common::state(status, chain, clock, Some(portal), None))
}

async fn apply(desk: &Desk, browser: &mut Browser) -> String {
    let reply = browser
        .submit(desk, "/apply", &[("given_name", "Jane"), ("surname", "Doe"), ("profile", "sponsor-strict")])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    reply.location().trim_start_matches("/applications/").to_string()
}

/// The whole workflow on the web pages.
async fn workflow(desk: Desk) {
    let jane = "jane.doe@example.org";
    let mut applicant = sign_in(&desk, jane).await;
    let id = apply(&desk, &mut applicant).await;
    let page = applicant.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(page.contains("checks pending"), "{page}");

    // Nothing can be issued before the checks: the key forms are not even offered,
    // and a direct POST is refused.
    let early =
        applicant.submit(&desk, &format!("/applications/{id}/p12"), &[("password", "x"), ("password2", "x")]).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text());

    // Mailbox: a wrong value counts an attempt; the mailed one validates.
    let wrong = applicant.submit(&desk, &format!("/applications/{id}/validate"), &[("value", "AAAA-BBBB")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("4 attempts left"), "{}", wrong.text());
    let value = validation_value(&desk.outbox, jane);
    assert!(value.replace('-', "").len() >= 24, "{value}");
    let ok =
        applicant.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value.to_lowercase())]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    // Used once: replaying it is refused.
    let replay = applicant.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await;
    assert_eq!(replay.status, StatusCode::CONFLICT, "{}", replay.text());

    // The officer publishes a slot; the applicant books it and gets a confirmation.
    let (mut officer, _) = staff_sign_in(&desk, "desk@example.org", Role::Officer).await;
    let slot =
        officer.submit(&desk, "/officer/slots", &[("starts_at", "2026-11-27T09:30"), ("place", "Room 1.01")]).await;
    assert_eq!(slot.status, StatusCode::SEE_OTHER, "{}", slot.text());
    let page = applicant.get(&desk, &format!("/applications/{id}")).await.text();
    let slot_id = page.split(r#"<option value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let booked = applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &slot_id)]).await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER, "{}", booked.text());
    assert!(mails_to(&desk.outbox, jane).iter().any(|(s, b)| s.contains("appointment") && b.contains("Room 1.01")));
    // Its reminder is due only the day before (and the query runs on either database).
    assert_eq!(desk.portal.send_appointment_reminders().await.unwrap(), 0);

    // At the desk: approval before the identity check is refused; the evidence form
    // needs the in-person box; then approve.
    let queue = officer.get(&desk, "/officer").await.text();
    assert!(queue.contains(&id) && queue.contains("Jane"), "{queue}");
    let early = officer.submit(&desk, &format!("/officer/applications/{id}/approve"), &[]).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text());
    let evidence = [
        ("document_type", "identity-card"),
        ("issuing_authority", "Stadt Köln"),
        ("document_number", "L01X00T47"),
        ("document_expires", "2031-03-01"),
    ];
    let not_in_person = officer.submit(&desk, &format!("/officer/applications/{id}/identity"), &evidence).await;
    assert_eq!(not_in_person.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", not_in_person.text());
    let mut with_box = evidence.to_vec();
    with_box.push(("in_person", "yes"));
    let recorded = officer.submit(&desk, &format!("/officer/applications/{id}/identity"), &with_box).await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.text());
    let approved = officer.submit(&desk, &format!("/officer/applications/{id}/approve"), &[]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.text());

    // The applicant chooses a .p12: weak and mismatched passwords are refused, then the
    // file is delivered once.
    let p12_path = format!("/applications/{id}/p12");
    let weak = applicant.submit(&desk, &p12_path, &[("password", "password123"), ("password2", "password123")]).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", weak.text());
    let differ = applicant
        .submit(&desk, &p12_path, &[("password", "Blue-Otter-Canyon-42"), ("password2", "Blue-Otter-Canyon-43")])
        .await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    let password = "Blue-Otter-Canyon-42";
    let p12 = applicant
        .submit(
            &desk,
            &p12_path,
            &[("password", password), ("password2", password), ("format", "compat"), ("key", "p256")],
        )
        .await;
    assert_eq!(p12.status, StatusCode::OK, "{}", p12.text());
    assert_eq!(p12.headers[header::CONTENT_TYPE], "application/x-pkcs12");
    let contents = certdesk_pki::pkcs12::read(&p12.body, password).unwrap();
    // The form sent again from the page before the download: never issued twice. At
    // once, the answer says the .p12 is on its way; once the applicant said it is saved,
    // the application's page, which shows the certificate (issue 17 item 5).
    let again = applicant.submit(&desk, &p12_path, &[("password", password), ("password2", password)]).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "issued twice? {}", again.text());
    assert!(again.text().contains("being delivered"), "{}", again.text());
    let saved = applicant.submit(&desk, &format!("/applications/{id}/p12/saved"), &[]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text());
    let later = applicant.submit(&desk, &p12_path, &[("password", password), ("password2", password)]).await;
    assert_eq!((later.status, later.location()), (StatusCode::SEE_OTHER, format!("/applications/{id}")));
    let shown = applicant.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(shown.contains(".pem"), "the page does not show the certificate: {shown}");
    assert!(mails_to(&desk.outbox, jane).iter().any(|(s, _)| s.to_lowercase().contains("ready")));

    // The certificate is in the directory (page and JSON), and the .p12 holds its key.
    let app = desk.status.authority().store().application(&id).await.unwrap().unwrap();
    let serial = app.serial.clone().unwrap();
    let stored = desk.status.authority().store().certificate(&serial).await.unwrap().unwrap();
    assert_eq!(contents.leaf.as_deref(), Some(stored.der.as_slice()), "the .p12 holds another certificate");
    let key = certdesk_pki::key::PrivateKey::from_pkcs8_der(contents.key_pkcs8_der.as_ref().unwrap()).unwrap();
    let leaf = <x509_cert::Certificate as der::Decode>::from_der(&stored.der).unwrap();
    assert_eq!(
        certdesk_pki::key::Signer::public_key(&key),
        leaf.tbs_certificate().subject_public_key_info(),
        "the .p12's key does not match its certificate"
    );
    let json = applicant.get(&desk, "/api/v1/directory?email=jane.doe@example.org").await;
    assert_eq!(json.status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(value["certificates"][0]["serial"], serial.as_str());
    let page = Browser::default().get(&desk, "/directory?email=jane.doe@example.org").await.text();
    assert!(page.contains(&serial), "{page}");
    let download = applicant.get(&desk, &format!("/certificates/{serial}.pem")).await;
    assert!(download.text().starts_with("-----BEGIN CERTIFICATE-----"));
    // Anyone may save it from the directory, for their mail client.
    assert!(page.contains(&format!(r#"href="/directory/{serial}.pem""#)), "{page}");
    let saved = Browser::default().get(&desk, &format!("/directory/{serial}.pem")).await;
    assert_eq!(saved.status, StatusCode::OK);
    assert_eq!(saved.text(), download.text());

    // Revocation by the applicant needs the consequence confirmed (issue 17 item 6);
    // then the CRL of this process lists it at once.
    let unconfirmed =
        applicant.submit(&desk, &format!("/certificates/{serial}/revoke"), &[("reason", "key-compromise")]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unconfirmed.text());
    assert!(unconfirmed.text().contains("nothing was changed"), "{}", unconfirmed.text());
    assert!(desk.portal.directory("jane.doe@example.org").await.unwrap().iter().any(|c| c.serial.as_str() == serial));
    let revoked = applicant
        .submit(&desk, &format!("/certificates/{serial}/revoke"), &[("reason", "key-compromise"), ("confirm", "yes")])
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    let crl = desk.status.crl().unwrap();
    let parsed = <x509_cert::crl::CertificateList as der::Decode>::from_der(&crl.der).unwrap();
    let listed = parsed
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .any(|r| hex::encode(r.serial_number.as_bytes()) == serial.trim_start_matches("00"));
    assert!(listed, "the CRL does not list {serial}");
    let page = Browser::default().get(&desk, "/directory?email=jane.doe@example.org").await.text();
    assert!(page.contains("No current certificate"), "{page}");
    let gone = Browser::default().get(&desk, &format!("/directory/{serial}.pem")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(mails_to(&desk.outbox, jane).iter().any(|(s, _)| s.to_lowercase().contains("revoked")));

    // Renewal reuses the identity evidence (BR 4.2.1) and the mailbox (within 30 days).
    let renewal = applicant.submit(&desk, &format!("/certificates/{serial}/renew"), &[]).await;
    assert_eq!(renewal.status, StatusCode::SEE_OTHER, "{}", renewal.text());
    let new_id = renewal.location().trim_start_matches("/applications/").to_string();
    let renewed = desk.status.authority().store().application(&new_id).await.unwrap().unwrap();
    assert!(renewed.identity.is_some() && renewed.mailbox_validated_at.is_some());

    // The audit log names every step, and its chain is intact.
    let (mut admin, _) = staff_sign_in(&desk, "root@example.org", Role::Admin).await;
    let audit = admin.get(&desk, "/admin/audit").await.text();
    for action in [
        "session.sign-in",
        "application.submit",
        "application.mailbox-validated",
        "appointment.book",
        "application.identity-recorded",
        "application.approve",
        "certificate.issue",
        "certificate.revoke",
        "application.renew",
    ] {
        assert!(audit.contains(action), "{action} missing from the audit log");
    }
    assert!(audit.contains("The hash chain is intact"), "{audit}");
    let export = admin.get(&desk, "/admin/audit?format=json&q=certificate.issue").await;
    let rows: serde_json::Value = serde_json::from_slice(&export.body).unwrap();
    assert!(rows.as_array().unwrap().iter().all(|r| r["action"] == "certificate.issue"));
    // The document number itself is not in the audit details, only its hash.
    assert!(!audit.contains("L01X00T47"));
}

#[tokio::test]
async fn the_whole_workflow_on_sqlite() {
    workflow(desk(None).await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it when CERTDESK_TEST_POSTGRES_URL is set"]
async fn the_whole_workflow_on_postgresql() {
    let url = certdesk_test_support::fresh_postgres_database("certdesk_portal");
    workflow(desk(Some(url.clone())).await).await;
    certdesk_test_support::drop_postgres_database(&url);
}

#[tokio::test]
async fn hostile_users_get_404_403_and_refusals() {
    let desk = desk(None).await;
    let mut jane = sign_in(&desk, "jane.doe@example.org").await;
    let mut eve = sign_in(&desk, "eve@example.org").await;
    let id = apply(&desk, &mut jane).await;

    // Another applicant's application: 404, also for its forms.
    assert_eq!(eve.get(&desk, &format!("/applications/{id}")).await.status, StatusCode::NOT_FOUND);
    let value = validation_value(&desk.outbox, "jane.doe@example.org");
    let stolen = eve.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    assert_eq!(
        eve.submit(&desk, &format!("/applications/{id}/withdraw"), &[("confirm", "yes")]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(eve.get(&desk, "/certificates/0123abcd.pem").await.status, StatusCode::NOT_FOUND);

    // Applicants on officer and admin routes: 403.
    for path in ["/officer", "/officer/slots", &format!("/officer/applications/{id}"), "/admin", "/admin/audit"] {
        assert_eq!(eve.get(&desk, path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let approve = eve.submit(&desk, &format!("/officer/applications/{id}/approve"), &[]).await;
    assert_eq!(approve.status, StatusCode::FORBIDDEN);

    // Missing or wrong CSRF token: 403, nothing changes.
    let before = mails_to(&desk.outbox, "jane.doe@example.org").len();
    let no_csrf = jane.post(&desk, &format!("/applications/{id}/resend"), &[]).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let wrong = jane.post(&desk, &format!("/applications/{id}/resend"), &[("csrf", "forged")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(mails_to(&desk.outbox, "jane.doe@example.org").len(), before);
    // The sign-in form needs its double-submit token too.
    let mut stranger = Browser::default();
    assert_eq!(stranger.post(&desk, "/signin", &[("email", "x@example.org")]).await.status, StatusCode::FORBIDDEN);

    // Sign-in links: single use, 15 minutes.
    let mut browser = Browser::default();
    let page = browser.get(&desk, "/").await;
    let csrf = hidden(&page.text(), "csrf");
    browser.post(&desk, "/signin", &[("csrf", &csrf), ("email", "bob@example.org")]).await;
    let link = from_last_mail(&desk.outbox, "bob@example.org", "/signin/");
    let path = format!("/signin/{}", link.rsplit('/').next().unwrap());
    assert_eq!(Browser::default().post(&desk, &path, &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(Browser::default().post(&desk, &path, &[]).await.status, StatusCode::UNAUTHORIZED, "replayed");
    browser.post(&desk, "/signin", &[("csrf", &csrf), ("email", "bob@example.org")]).await;
    let link = from_last_mail(&desk.outbox, "bob@example.org", "/signin/");
    desk.clock.advance(time::Duration::minutes(16));
    let late = Browser::default().post(&desk, &format!("/signin/{}", link.rsplit('/').next().unwrap()), &[]).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "expired link accepted");
    // Rate limit on sign-in links.
    for _ in 0..5 {
        browser.post(&desk, "/signin", &[("csrf", &csrf), ("email", "carol@example.org")]).await;
    }
    let limited = browser.post(&desk, "/signin", &[("csrf", &csrf), ("email", "carol@example.org")]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    // Malformed address: a clear message, no mail.
    let bad = browser.post(&desk, "/signin", &[("csrf", &csrf), ("email", "not an address")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Validation values: five wrong tries void the value; an expired value is refused.
    for _ in 0..5 {
        jane.submit(&desk, &format!("/applications/{id}/validate"), &[("value", "WRONG")]).await;
    }
    let value = validation_value(&desk.outbox, "jane.doe@example.org");
    let blocked = jane.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await;
    assert_eq!(blocked.status, StatusCode::UNAUTHORIZED);
    assert!(blocked.text().contains("request a new one"), "{}", blocked.text());
    assert_eq!(jane.submit(&desk, &format!("/applications/{id}/resend"), &[]).await.status, StatusCode::SEE_OTHER);
    let fresh = validation_value(&desk.outbox, "jane.doe@example.org");
    assert_ne!(fresh, value);
    desk.clock.advance(time::Duration::hours(25));
    // The session (12 h) has expired too: sign in again.
    let mut jane = sign_in(&desk, "jane.doe@example.org").await;
    let expired = jane.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &fresh)]).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{}", expired.text());

    // Malformed form fields: a clear message, nothing stored.
    let apps_before = desk.status.authority().store().applications_of("jane.doe@example.org").await.unwrap();
    let bad =
        jane.submit(&desk, "/apply", &[("given_name", ""), ("surname", "Doe"), ("profile", "sponsor-strict")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = jane.submit(&desk, "/apply", &[("given_name", "Jane"), ("surname", "Doe"), ("profile", "root-ca")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(desk.status.authority().store().applications_of("jane.doe@example.org").await.unwrap(), apps_before);
    // Oversized uploads: 413.
    let huge = "A".repeat(200 * 1024);
    let big = jane.submit(&desk, &format!("/applications/{id}/csr"), &[("csr", &huge)]).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Garbage CSR on an approved application: 400, nothing issued.
    let (mut officer, _) = staff_sign_in(&desk, "desk@example.org", Role::Officer).await;
    let id2 = apply(&desk, &mut jane).await;
    let value = validation_value(&desk.outbox, "jane.doe@example.org");
    jane.submit(&desk, &format!("/applications/{id2}/validate"), &[("value", &value)]).await;
    let evidence = [
        ("document_type", "passport"),
        ("issuing_authority", "Stadt Bonn"),
        ("document_number", "C01X00T47"),
        ("document_expires", "2030-01-01"),
        ("in_person", "yes"),
    ];
    officer.submit(&desk, &format!("/officer/applications/{id2}/identity"), &evidence).await;
    officer.submit(&desk, &format!("/officer/applications/{id2}/approve"), &[]).await;
    let garbage = jane
        .submit(
            &desk,
            &format!("/applications/{id2}/csr"),
            &[("csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")],
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.text());
    assert!(desk.status.authority().store().application(&id2).await.unwrap().unwrap().serial.is_none());

    // An officer may not check or approve their own application.
    let mut own = officer.clone();
    let own_id = apply(&desk, &mut own).await;
    let refused = officer.submit(&desk, &format!("/officer/applications/{own_id}/identity"), &evidence).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text());
}

/// The same workflow over the REST API, with problem documents for errors.
#[tokio::test]
async fn the_rest_api_covers_the_workflow() {
    let desk = desk(None).await;
    async fn call(
        desk: &Desk,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(b) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        Browser::default().send(desk, request, body).await
    }
    let json = |r: &Reply| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();

    let doc = call(&desk, "GET", "/api/openapi.json", None, None).await;
    let doc = json(&doc);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/applications/{id}/csr"]["post"].is_object());
    // The request limit is documented on every POST and on directory searches.
    for (path, item) in doc["paths"].as_object().unwrap() {
        if let Some(post) = item.get("post") {
            assert!(post["responses"]["429"]["headers"]["Retry-After"].is_object(), "{path}");
        }
    }
    assert!(doc["paths"]["/api/v1/directory"]["get"]["responses"]["429"].is_object());

    let r =
        call(&desk, "POST", "/api/v1/sign-in", None, Some(serde_json::json!({"email": "jane.doe@example.org"}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let link = from_last_mail(&desk.outbox, "jane.doe@example.org", "/signin/");
    let r = call(&desk, "POST", "/api/v1/sessions", None, Some(serde_json::json!({ "token": link }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let token = json(&r)["token"].as_str().unwrap().to_string();

    // No token, a bad token, cookies instead of a token: 401 problem documents.
    let r = call(&desk, "GET", "/api/v1/applications", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(json(&r)["code"], 1010);
    assert_eq!(call(&desk, "GET", "/api/v1/me", Some("bogus"), None).await.status, StatusCode::UNAUTHORIZED);

    // Malformed JSON: 400 problem.
    let bad = Browser::default()
        .send(
            &desk,
            Request::post("/api/v1/applications")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json"),
            Body::from("{not json"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.headers[header::CONTENT_TYPE], "application/problem+json");

    let r = call(
        &desk,
        "POST",
        "/api/v1/applications",
        Some(&token),
        Some(serde_json::json!({"given_name": "Jane", "surname": "Doe"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = json(&r)["id"].as_str().unwrap().to_string();
    let value = validation_value(&desk.outbox, "jane.doe@example.org");
    let r = call(
        &desk,
        "POST",
        &format!("/api/v1/applications/{id}/mailbox"),
        Some(&token),
        Some(serde_json::json!({ "value": value })),
    )
    .await;
    assert_eq!(json(&r)["mailbox_validated"], true, "{}", r.text());

    // Officer over the API: without the second factor 403, with it the queue.
    let (_, secret) = staff_sign_in(&desk, "desk@example.org", Role::Officer).await;
    let link = desk.portal.add_staff(None, "desk@example.org", Role::Officer).await.unwrap();
    let r = call(&desk, "POST", "/api/v1/sessions", None, Some(serde_json::json!({ "token": link }))).await;
    let officer = json(&r)["token"].as_str().unwrap().to_string();
    assert_eq!(call(&desk, "GET", "/api/v1/officer/queue", Some(&officer), None).await.status, StatusCode::FORBIDDEN);
    desk.clock.advance(time::Duration::seconds(31)); // a fresh TOTP step: codes work once
    let code =
        certdesk_desk::totp::code_at_step(&secret, certdesk_desk::totp::step_at(desk.clock.now().unix_timestamp()));
    let r = call(
        &desk,
        "POST",
        "/api/v1/sessions/second-factor",
        Some(&officer),
        Some(serde_json::json!({ "code": code })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let replay = call(
        &desk,
        "POST",
        "/api/v1/sessions/second-factor",
        Some(&officer),
        Some(serde_json::json!({ "code": code })),
    )
    .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "a TOTP code worked twice");
    let queue = call(&desk, "GET", "/api/v1/officer/queue", Some(&officer), None).await;
    assert!(json(&queue).as_array().unwrap().iter().any(|a| a["id"] == id.as_str() && a["appointment"].is_null()));
    let searched = call(&desk, "GET", "/api/v1/officer/queue?view=today&q=jane", Some(&officer), None).await;
    assert_eq!(searched.status, StatusCode::OK);
    assert!(json(&searched).as_array().unwrap().is_empty(), "no appointment today: {:?}", json(&searched));
    let bad = call(&desk, "GET", "/api/v1/officer/queue?view=tomorrow", Some(&officer), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let no_slot =
        call(&desk, "DELETE", &format!("/api/v1/officer/applications/{id}/appointment"), Some(&officer), None).await;
    assert_eq!(no_slot.status, StatusCode::CONFLICT, "{:?}", json(&no_slot));
    let evidence = serde_json::json!({"document_type": "passport", "issuing_authority": "Stadt Bonn", "document_number": "C01", "document_expires": "2030-01-01", "verified_in_person": true});
    let r = call(&desk, "POST", &format!("/api/v1/officer/applications/{id}/identity"), Some(&officer), Some(evidence))
        .await;
    assert_eq!(json(&r)["identity_verified"], true, "{}", r.text());
    let r = call(&desk, "POST", &format!("/api/v1/officer/applications/{id}/approve"), Some(&officer), None).await;
    assert_eq!(json(&r)["state"], "approved");

    // The applicant's own key: a CSR made by OpenSSL.
    let dir = tempfile::tempdir().unwrap();
    let csr = openssl_csr(dir.path(), "r", &CsrOptions::default()).pem();
    let r = call(
        &desk,
        "POST",
        &format!("/api/v1/applications/{id}/csr"),
        Some(&token),
        Some(serde_json::json!({ "csr": csr })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let cert = json(&r);
    assert!(cert["pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let again = call(
        &desk,
        "POST",
        &format!("/api/v1/applications/{id}/csr"),
        Some(&token),
        Some(serde_json::json!({ "csr": csr })),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // Another user's application through the API: 404.
    let r = call(&desk, "GET", &format!("/api/v1/applications/{id}"), Some(&officer), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let serial = cert["serial"].as_str().unwrap();
    let r = call(
        &desk,
        "POST",
        &format!("/api/v1/certificates/{serial}/revoke"),
        Some(&token),
        Some(serde_json::json!({ "reason": "superseded" })),
    )
    .await;
    assert!(json(&r)["revoked_at"].is_i64(), "{}", r.text());
}

/// Two portals ("processes") on one database race to issue for one application:
/// exactly one certificate is issued.
#[tokio::test]
async fn two_processes_never_issue_twice_for_one_application() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let password = "Blue-Otter-Canyon-42";
    let fields = [("password", password), ("password2", password), ("key", "p256")];
    let page = jane.get(&desk, "/").await.text();
    let csrf = hidden(&page, "csrf");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(&fields);
    let other = Desk {
        app: second_process(&desk).await,
        portal: desk.portal.clone(),
        status: desk.status.clone(),
        clock: desk.clock.clone(),
        outbox: desk.outbox.clone(),
        data: desk.data.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let (mut a, mut b) = (jane.clone(), jane.clone());
    let path = format!("/applications/{id}/p12");
    let (ra, rb) = tokio::join!(a.post(&desk, &path, &all), b.post(&other, &path, &all));
    let statuses = [ra.status, rb.status];
    // The other one is refused (409), or, when the first had finished, sent to the
    // application's page, which shows the certificate (303).
    assert!(
        statuses.contains(&StatusCode::OK)
            && (statuses.contains(&StatusCode::CONFLICT) || statuses.contains(&StatusCode::SEE_OTHER)),
        "{statuses:?}"
    );
    let certs = desk.status.authority().store().certificates_of("jane.doe@example.org").await.unwrap().len();
    assert_eq!(certs, 1);
}

/// An approved application of Jane's: her browser and the application id.
pub(super) async fn approved_application(desk: &Desk) -> (Browser, String) {
    let mut jane = sign_in(desk, "jane.doe@example.org").await;
    let id = apply(desk, &mut jane).await;
    let value = validation_value(&desk.outbox, "jane.doe@example.org");
    jane.submit(desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await;
    let (mut officer, _) = staff_sign_in(desk, "desk@example.org", Role::Officer).await;
    let evidence = [
        ("document_type", "passport"),
        ("issuing_authority", "Stadt Bonn"),
        ("document_number", "C01X00T47"),
        ("document_expires", "2030-01-01"),
        ("in_person", "yes"),
    ];
    officer.submit(desk, &format!("/officer/applications/{id}/identity"), &evidence).await;
    let approved = officer.submit(desk, &format!("/officer/applications/{id}/approve"), &[]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.text());
    (jane, id)
}

#[tokio::test]
async fn expiry_reminders_go_out_60_30_and_7_days_before_once_each() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let password = "Blue-Otter-Canyon-42";
    let p12 = jane
        .submit(
            &desk,
            &format!("/applications/{id}/p12"),
            &[("password", password), ("password2", password), ("key", "p256")],
        )
        .await;
    assert_eq!(p12.status, StatusCode::OK);
    let cert = &desk.status.authority().store().certificates_of("jane.doe@example.org").await.unwrap()[0];
    let reminders =
        || mails_to(&desk.outbox, "jane.doe@example.org").into_iter().filter(|(s, _)| s.contains("expires")).count();
    assert_eq!(desk.portal.send_reminders().await.unwrap(), 0, "a reminder for a new certificate");
    let mut sent = 0;
    for days_before in [59, 29, 6] {
        let target = cert.not_after - days_before * 86_400;
        desk.clock.advance(time::Duration::seconds(target - desk.clock.now().unix_timestamp()));
        assert_eq!(desk.portal.send_reminders().await.unwrap(), 1, "{days_before} days before expiry");
        assert_eq!(desk.portal.send_reminders().await.unwrap(), 0, "sent twice");
        sent += 1;
        assert_eq!(reminders(), sent);
    }
}

/// The directory is for encrypting: a signing-only (Ed25519) certificate is not listed,
/// and the longest-lasting certificate comes first.
#[tokio::test]
async fn the_directory_lists_certificates_one_can_encrypt_to() {
    let desk = desk(None).await;
    let authority = desk.status.authority();
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let input = super::common::jane_input(certdesk_pki::profile::ProfileId::SponsorStrict);
    let ed25519 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let keys = [
        super::common::subscriber_key(certdesk_pki::key::KeyAlgorithm::P256),
        certdesk_pki::key::PrivateKey::from_pkcs8_der(ed25519.as_ref()).unwrap().accepted_public_key().unwrap(),
        super::common::subscriber_key(certdesk_pki::key::KeyAlgorithm::P384),
    ];
    let mut serials = Vec::new();
    for key in keys {
        desk.clock.advance(time::Duration::hours(1));
        let issued = authority.issue(&issuer, super::common::request(input.clone()), key, "test").await.unwrap();
        serials.push(issued.record.serial);
    }
    let listed: Vec<String> = desk
        .portal
        .directory("jane.doe@example.org")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.serial.to_string())
        .collect();
    assert_eq!(listed, [serials[2].clone(), serials[0].clone()]);
    let signing_only = Browser::default().get(&desk, &format!("/directory/{}.pem", serials[1])).await;
    assert_eq!(signing_only.status, StatusCode::NOT_FOUND);
    let garbage = Browser::default().get(&desk, "/directory/not-a-serial.pem").await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
}

/// A certificate issued with `certdesk issue` (no application on the portal) can still
/// be renewed from the portal, as its expiry reminder says: a new application with its
/// names and profile, through the mailbox and desk checks (no evidence to reuse).
#[tokio::test]
async fn a_certificate_issued_by_the_cli_is_renewed_with_fresh_checks() {
    let desk = desk(None).await;
    let authority = desk.status.authority();
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let key = super::common::subscriber_key(certdesk_pki::key::KeyAlgorithm::P256);
    let input = super::common::jane_input(certdesk_pki::profile::ProfileId::SponsorStrict);
    let issued = authority.issue(&issuer, super::common::request(input.clone()), key, "cli:test").await.unwrap();
    let mut jane = sign_in(&desk, "jane.doe@example.org").await;
    let renewal = jane.submit(&desk, &format!("/certificates/{}/renew", issued.record.serial), &[]).await;
    assert_eq!(renewal.status, StatusCode::SEE_OTHER, "{}", renewal.text());
    let id = renewal.location().trim_start_matches("/applications/").to_string();
    let app = authority.store().application(&id).await.unwrap().unwrap();
    assert_eq!((app.given_name.as_str(), app.surname.as_str(), app.profile.name()), ("Jane", "Doe", "sponsor-strict"));
    assert!(app.identity.is_none() && app.mailbox_validated_at.is_none(), "{app:?}");
    assert_eq!(app.renewal_of.as_deref(), Some(issued.record.serial.as_str()));
    assert!(!validation_value(&desk.outbox, "jane.doe@example.org").is_empty());
}

/// A reminder whose mail fails is sent at the next run, and a certificate renewed in
/// the meantime (a longer-lasting one of the same profile) gets no more reminders.
#[tokio::test]
async fn failed_reminders_are_retried_and_renewed_certificates_get_none() {
    let desk = desk(None).await;
    let password = "Blue-Otter-Canyon-42";
    let fields = [("password", password), ("password2", password), ("key", "p256")];
    let (mut jane, id) = approved_application(&desk).await;
    assert_eq!(jane.submit(&desk, &format!("/applications/{id}/p12"), &fields).await.status, StatusCode::OK);
    let store = desk.status.authority().store();
    let first = store.certificates_of("jane.doe@example.org").await.unwrap()[0].clone();
    let reminders =
        || mails_to(&desk.outbox, "jane.doe@example.org").into_iter().filter(|(s, _)| s.contains("expires")).count();

    desk.clock.advance(time::Duration::seconds(first.not_after - 59 * 86_400 - desk.clock.now().unix_timestamp()));
    let kept = desk.outbox.with_extension("kept");
    std::fs::rename(&desk.outbox, &kept).unwrap();
    std::fs::write(&desk.outbox, b"not a directory").unwrap();
    let err = desk.portal.send_reminders().await.unwrap_err();
    assert!(err.to_string().starts_with("1 expiry reminder(s) could not be mailed (0 went out"), "{err}");
    std::fs::remove_file(&desk.outbox).unwrap();
    std::fs::rename(&kept, &desk.outbox).unwrap();
    assert_eq!(reminders(), 0);
    assert_eq!(desk.portal.send_reminders().await.unwrap(), 1);
    assert_eq!(reminders(), 1);

    // Jane has a new certificate of the same profile that outlasts the first, which
    // gets no 30-day mail.
    let authority = desk.status.authority();
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let input = super::common::jane_input(first.profile);
    let key = super::common::subscriber_key(certdesk_pki::key::KeyAlgorithm::P256);
    authority.issue(&issuer, super::common::request(input.clone()), key, "test").await.unwrap();
    assert_eq!(store.certificates_of("jane.doe@example.org").await.unwrap().len(), 2);
    desk.clock.advance(time::Duration::seconds(first.not_after - 29 * 86_400 - desk.clock.now().unix_timestamp()));
    assert_eq!(desk.portal.send_reminders().await.unwrap(), 0);
    assert_eq!(reminders(), 1);
}

#[tokio::test]
async fn administrators_set_profile_validity_within_the_br_limits() {
    let desk = desk(None).await;
    let (mut admin, _) = staff_sign_in(&desk, "root@example.org", Role::Admin).await;
    let page = admin.get(&desk, "/admin").await.text();
    assert!(page.contains(r#"id="days-sponsor-strict""#), "{page}");
    let too_long = admin.submit(&desk, "/admin/profiles", &[("profile", "sponsor-strict"), ("days", "826")]).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", too_long.text());
    let garbage = admin.submit(&desk, "/admin/profiles", &[("profile", "sponsor-strict"), ("days", "soon")]).await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);
    let set = admin.submit(&desk, "/admin/profiles", &[("profile", "sponsor-strict"), ("days", "365")]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.text());
    assert!(admin.get(&desk, "/admin").await.text().contains(r#"value="365""#));

    // An applicant may not; the next certificate lasts 365 days.
    let (mut jane, id) = approved_application(&desk).await;
    let refused = jane.submit(&desk, "/admin/profiles", &[("profile", "sponsor-strict"), ("days", "800")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let password = "Blue-Otter-Canyon-42";
    let fields = [("password", password), ("password2", password), ("key", "p256")];
    assert_eq!(jane.submit(&desk, &format!("/applications/{id}/p12"), &fields).await.status, StatusCode::OK);
    let cert = &desk.status.authority().store().certificates_of("jane.doe@example.org").await.unwrap()[0];
    assert_eq!((cert.not_after - cert.not_before + 1) / 86_400, 365, "{cert:?}");
    let audit = admin.get(&desk, "/admin/audit?q=profile.validity").await.text();
    assert!(audit.contains("profile.validity") && audit.contains("365"));
}

/// Guessing authenticator codes is throttled (RFC 4226 section 7.3): after 5 tries in 15
/// minutes even the right code is refused (429), the first refusal is audited, and a
/// right code later resets the count; 20 tries a day are the other bound.
#[tokio::test]
async fn authenticator_codes_cannot_be_guessed() {
    let desk = desk(None).await;
    let (_, secret) = staff_sign_in(&desk, "desk@example.org", Role::Officer).await;
    let right = |desk: &Desk| {
        certdesk_desk::totp::code_at_step(&secret, certdesk_desk::totp::step_at(desk.clock.now().unix_timestamp()))
    };
    let throttled = || async {
        let log = desk.status.authority().store().audit_log().await.unwrap();
        log.iter().filter(|r| r.action == "user.totp-throttled").count()
    };
    // A new session of the enrolled officer, at the code form.
    async fn session(desk: &Desk) -> (Browser, String) {
        let link = desk.portal.add_staff(None, "desk@example.org", Role::Officer).await.unwrap();
        let path = link.split_once("/signin/").map(|(_, t)| format!("/signin/{t}")).unwrap();
        let mut browser = Browser::default();
        assert_eq!(browser.post(desk, &path, &[]).await.status, StatusCode::SEE_OTHER);
        let csrf = hidden(&browser.get(desk, "/second-factor").await.text(), "csrf");
        (browser, csrf)
    }
    async fn give(desk: &Desk, browser: &mut Browser, csrf: &str, code: &str) -> Reply {
        browser.post(desk, "/second-factor", &[("csrf", csrf), ("code", code)]).await
    }

    let (mut browser, csrf) = session(&desk).await;
    desk.clock.advance(time::Duration::seconds(31));
    for _ in 0..5 {
        assert_eq!(give(&desk, &mut browser, &csrf, "000000").await.status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..3 {
        let refused = give(&desk, &mut browser, &csrf, &right(&desk)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text());
        assert!(refused.text().contains("too many wrong authenticator codes"), "{}", refused.text());
    }
    assert_eq!(throttled().await, 1, "the first refusal is audited, the later ones not");
    assert_eq!(browser.get(&desk, "/officer").await.location(), "/second-factor");

    // 15 minutes later the right code works, and resets the count.
    desk.clock.advance(time::Duration::minutes(16));
    assert_eq!(give(&desk, &mut browser, &csrf, &right(&desk)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get(&desk, "/officer").await.status, StatusCode::OK);

    // A day allows 20 wrong tries, however spread.
    let (mut other, csrf) = session(&desk).await;
    for _ in 0..5 {
        for _ in 0..4 {
            assert_eq!(give(&desk, &mut other, &csrf, "000000").await.status, StatusCode::UNAUTHORIZED);
        }
        desk.clock.advance(time::Duration::minutes(16));
    }
    let refused = give(&desk, &mut other, &csrf, &right(&desk)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text());
    assert_eq!(throttled().await, 2);
    // Once the first four tries are a day old.
    desk.clock.advance(time::Duration::hours(23));
    let (mut other, csrf) = session(&desk).await;
    let r = give(&desk, &mut other, &csrf, &right(&desk)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
}

/// The day before an appointment booked earlier, the applicant gets a reminder, once
/// even with two runs; an appointment booked less than a day ahead gets none (its
/// confirmation has just gone out).
#[tokio::test]
async fn appointment_reminders_go_out_the_day_before_once() {
    let desk = desk(None).await;
    let (mut officer, _) = staff_sign_in(&desk, "desk@example.org", Role::Officer).await;
    for (starts_at, place) in [("2026-11-27T09:30", "Room 1.01"), ("2026-11-26T09:00", "Room 2.02")] {
        let slot = officer.submit(&desk, "/officer/slots", &[("starts_at", starts_at), ("place", place)]).await;
        assert_eq!(slot.status, StatusCode::SEE_OTHER, "{}", slot.text());
    }
    let mut booked = Vec::new();
    for (email, place) in [("jane.doe@example.org", "Room 1.01"), ("john.roe@example.org", "Room 2.02")] {
        let mut applicant = sign_in(&desk, email).await;
        let id = apply(&desk, &mut applicant).await;
        let page = applicant.get(&desk, &format!("/applications/{id}")).await.text();
        let slot_id = page
            .split(r#"<option value=""#)
            .skip(1)
            .find(|option| option.contains(place))
            .and_then(|option| option.split('"').next())
            .unwrap()
            .to_string();
        let reply = applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &slot_id)]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
        booked.push(id);
    }
    let reminders =
        |to: &str| mails_to(&desk.outbox, to).into_iter().filter(|(s, _)| s.starts_with("Reminder")).count();
    // Jane's appointment is two days ahead; John's is 21 hours ahead, but he booked it
    // just now.
    assert_eq!(desk.portal.send_appointment_reminders().await.unwrap(), 0);

    // Jane's appointment is 45.5 hours after she booked it: reminded 24 hours before.
    let store = desk.status.authority().store();
    let starts_at = store.slot_of(&booked[0]).await.unwrap().unwrap().starts_at;
    desk.clock.advance(time::Duration::seconds(starts_at - 86_400 + 60 - desk.clock.now().unix_timestamp()));
    // The mail system fails (the outbox is a file): the error says so, the claim is
    // given back, and the next run sends it.
    let outbox = desk.outbox.clone();
    let kept = outbox.with_extension("kept");
    std::fs::rename(&outbox, &kept).unwrap();
    std::fs::write(&outbox, b"not a directory").unwrap();
    let err = desk.portal.send_appointment_reminders().await.unwrap_err();
    assert!(err.to_string().starts_with("1 appointment reminder(s) could not be mailed (0 went out"), "{err}");
    std::fs::remove_file(&outbox).unwrap();
    std::fs::rename(&kept, &outbox).unwrap();
    assert_eq!(desk.portal.send_appointment_reminders().await.unwrap(), 1);
    assert_eq!(desk.portal.send_appointment_reminders().await.unwrap(), 0, "sent twice");
    assert_eq!(reminders("jane.doe@example.org"), 1);
    let (_, body) =
        mails_to(&desk.outbox, "jane.doe@example.org").into_iter().find(|(s, _)| s.starts_with("Reminder")).unwrap();
    assert!(body.contains("Room 1.01") && body.contains("2026-11-27 09:30"), "{body}");
    assert_eq!(reminders("john.roe@example.org"), 0);
}

/// One client (by address) may post 30 times at once and then one a second; the 31st
/// gets 429 with Retry-After, an error page on the portal and a problem document on the
/// REST API. Other clients, and pages that only read, are not affected; directory
/// searches count.
#[tokio::test]
async fn one_client_cannot_flood_the_portal() {
    let desk = desk(None).await;
    let send = |method: &str, path: &str, peer: &str| {
        let mut request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        desk.app.clone().oneshot(request)
    };
    for _ in 0..30 {
        let r = send("POST", "/signin", "192.0.2.10").await.unwrap();
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let r = send("POST", "/signin", "192.0.2.10").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let body = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(body.contains("too many requests from your address"), "{body}");
    let r = send("POST", "/api/v1/sign-in", "192.0.2.10").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(send("GET", "/directory?q=jane", "192.0.2.10").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    // Reading pages is not limited; another client is not affected; neither are
    // requests without a known peer.
    assert_eq!(send("GET", "/", "192.0.2.10").await.unwrap().status(), StatusCode::OK);
    assert_ne!(send("POST", "/signin", "192.0.2.11").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    let r = desk.app.clone().oneshot(Request::post("/signin").body(Body::empty()).unwrap()).await.unwrap();
    assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// The own-key form is `multipart/form-data` with a CSR file input (PEM or DER) next to
/// the text area: a DER file from OpenSSL is issued; no CSR, both, a bad file or a cut
/// multipart body are refused with nothing issued.
#[tokio::test]
async fn a_csr_file_is_uploaded_as_the_page_sends_it() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let page = jane.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(page.contains(r#"enctype="multipart/form-data""#) && page.contains(r#"name="csr_file" type="file""#));
    let csrf = hidden(&page, "csrf");
    let dir = tempfile::tempdir().unwrap();
    let der = openssl_csr(dir.path(), "r", &CsrOptions { der: true, ..CsrOptions::default() }).bytes();

    let multipart = |file: &[u8], pasted: &str, close: bool| {
        let mut body = Vec::new();
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n").as_bytes(),
        );
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"csr_file\"; filename=\"jane.der\"\r\n\
              Content-Type: application/octet-stream\r\n\r\n",
        );
        body.extend_from_slice(file);
        body.extend_from_slice(
            format!("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csr\"\r\n\r\n{pasted}\r\n").as_bytes(),
        );
        if close {
            body.extend_from_slice(b"--XyZ--\r\n");
        }
        body
    };
    let path = format!("/applications/{id}/csr");
    let mut upload = async |body: Vec<u8>| {
        let request = Request::post(&path).header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ");
        jane.send(&desk, request, Body::from(body)).await
    };
    let issued = async || desk.status.authority().store().application(&id).await.unwrap().unwrap().serial;
    let r = upload(multipart(b"", "", true)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("Choose a CSR file"), "{}", r.text());
    let pem = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----";
    let r = upload(multipart(&der, pem, true)).await;
    assert!(r.status == StatusCode::BAD_REQUEST && r.text().contains("not both"), "{}", r.text());
    let r = upload(multipart(&der[..der.len() / 2], "", true)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = upload(multipart(&der, "", false)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("could not be read"), "{}", r.text());
    assert_eq!(issued().await, None);

    let r = upload(multipart(&der, "", true)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let serial = issued().await.expect("issued");
    assert!(r.location().contains(&serial), "{}", r.location());
}

/// A CSR as `openssl req -new -text` writes it (the request as text, then the PEM
/// block; RFC 7468 section 2), uploaded as a file that starts with a UTF-8 byte order
/// mark, is issued.
#[tokio::test]
async fn a_csr_with_explanatory_text_and_a_byte_order_mark_is_issued() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let csrf = hidden(&jane.get(&desk, &format!("/applications/{id}")).await.text(), "csrf");
    let dir = tempfile::tempdir().unwrap();
    let csr = openssl_csr(dir.path(), "r", &CsrOptions { text: true, ..CsrOptions::default() }).bytes();
    assert!(csr.starts_with(b"Certificate Request:"));
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"csr_file\"; filename=\"jane.csr\"\r\n\
          Content-Type: application/octet-stream\r\n\r\n\xEF\xBB\xBF",
    );
    body.extend_from_slice(&csr);
    body.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csr\"\r\n\r\n\r\n--XyZ--\r\n");
    let request = Request::post(format!("/applications/{id}/csr"))
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ");
    let r = jane.send(&desk, request, Body::from(body)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let serial = desk.status.authority().store().application(&id).await.unwrap().unwrap().serial.expect("issued");
    assert!(r.location().contains(&serial), "{}", r.location());
}

/// The CA of a process that stops right after the certificate and its .p12 were
/// recorded (step 3), before the answer went out: it issues, then fails.
struct StopsAfterRecording(certdesk_ca::service::CaService);

#[async_trait::async_trait]
impl certdesk_core::ports::CertificateAuthority for StopsAfterRecording {
    async fn issue(
        &self,
        request: certdesk_core::ports::IssueRequest,
        public_key: certdesk_pki::key::AcceptedPublicKey,
        actor: &str,
    ) -> Result<certdesk_core::ports::Issued, certdesk_core::error::DomainError> {
        self.0.issue(request, public_key, actor).await
    }

    async fn issue_pkcs12(
        &self,
        request: certdesk_core::ports::IssueRequest,
        key: certdesk_pki::key::KeyAlgorithm,
        delivery: certdesk_core::ports::Pkcs12Delivery,
        actor: &str,
    ) -> Result<(certdesk_core::ports::Issued, Vec<u8>), certdesk_core::error::DomainError> {
        self.0.issue_pkcs12(request, key, delivery, actor).await?;
        Err(certdesk_core::error::DomainError::new(certdesk_core::error::ErrorCode::Internal, "the process stopped"))
    }

    fn chain(&self) -> &[Vec<u8>] {
        self.0.chain()
    }

    async fn revoke(
        &self,
        serial: &str,
        reason: certdesk_pki::crl::RevocationReason,
        actor: &str,
    ) -> Result<certdesk_core::records::CertificateRecord, certdesk_core::error::DomainError> {
        self.0.revoke(serial, reason, actor).await
    }

    async fn take_escrow_share(
        &self,
        recovery_id: &str,
        key_id: &str,
        agent_index: u8,
        share: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<usize, certdesk_core::error::DomainError> {
        self.0.take_escrow_share(recovery_id, key_id, agent_index, share).await
    }

    fn escrow_shares_held(&self, recovery_id: &str) -> usize {
        self.0.escrow_shares_held(recovery_id)
    }

    async fn recover_escrowed_keys(
        &self,
        recovery_id: &str,
        key_id: &str,
        serials: &[String],
        delivery: certdesk_core::ports::Pkcs12Delivery,
    ) -> Result<Vec<u8>, certdesk_core::error::DomainError> {
        self.0.recover_escrowed_keys(recovery_id, key_id, serials, delivery).await
    }

    fn forget_escrow_shares(&self, recovery_id: &str) {
        self.0.forget_escrow_shares(recovery_id)
    }

    fn forget_escrow_share(&self, recovery_id: &str, agent_index: u8) {
        self.0.forget_escrow_share(recovery_id, agent_index)
    }
}

/// A process of `desk` whose CA stops right after recording a .p12.
fn stopping_process(desk: &Desk) -> Desk {
    let ca = Arc::new(StopsAfterRecording(certdesk_ca::service::CaService::new(desk.status.clone())));
    super::web_fixture::process_with_ca(desk, ca)
}

/// Issue 11: a .p12 whose download never completed (the server stopped after recording
/// it) is handed out again to its applicant, with the password chosen then; not with
/// another, and only once.
#[tokio::test]
async fn a_p12_download_that_never_completed_is_resumed_with_its_password() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let crashed = stopping_process(&desk);
    let authority = desk.status.authority();
    let path = format!("/applications/{id}/p12");
    let password = "Blue-Otter-Canyon-42";
    let fields = [("password", password), ("password2", password), ("key", "p256")];
    let lost = jane.submit(&crashed, &path, &fields).await;
    assert_eq!(lost.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", lost.text());
    let store = authority.store();
    let certs = store.certificates_of("jane.doe@example.org").await.unwrap();
    assert_eq!(certs.len(), 1);
    assert!(store.pending_delivery_of(&id).await.unwrap().is_some(), "the .p12 was not kept for the applicant");

    // The same form sent again at once may meet a request still delivering it: 409.
    let early = jane.submit(&desk, &path, &fields).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text());
    desk.clock.advance(time::Duration::seconds(certdesk_desk::portal::RESUME_P12_AFTER_SECONDS));
    // The application page offers the download, with the password chosen then.
    let page = jane.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(page.contains("download did not complete") && page.contains("name=\"resume\""), "{page}");

    // Another password does not open it: refused, nothing handed out, nothing issued.
    let other = "Green-Heron-Valley-17";
    let wrong = jane.submit(&desk, &path, &[("password", other), ("password2", other), ("key", "p256")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.text());
    assert!(store.pending_delivery_of(&id).await.unwrap().is_some());
    // Guessing is limited: after five wrong passwords even the right one waits 15 minutes.
    for _ in 1..certdesk_desk::portal::TOTP_ATTEMPTS_PER_WINDOW {
        let again = jane.submit(&desk, &path, &[("password", other), ("resume", "1")]).await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let blocked = jane.submit(&desk, &path, &[("password", password), ("resume", "1")]).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS, "{}", blocked.text());
    desk.clock.advance(time::Duration::minutes(certdesk_desk::portal::TOTP_ATTEMPT_MINUTES));

    // The password chosen then (asked once, from the page's form): the same
    // certificate, its key; offered again for a week.
    let resumed = jane.submit(&desk, &path, &[("password", password), ("resume", "1")]).await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text());
    let contents = certdesk_pki::pkcs12::read(&resumed.body, password).unwrap();
    assert_eq!(contents.leaf.as_deref(), Some(certs[0].der.as_slice()));
    assert!(store.pending_delivery_of(&id).await.unwrap().unwrap().handed_out_at.is_some());
    let again = jane.submit(&desk, &path, &fields).await;
    assert_eq!((again.status, again.body == resumed.body), (StatusCode::OK, true), "{}", again.text());
    assert_eq!(store.certificates_of("jane.doe@example.org").await.unwrap().len(), 1);

    // A week later recovery deletes it; the certificate stays (its .p12 was sent).
    // (Confirming the .p12 was saved deletes it at once: tested below.)
    desk.clock.advance(time::Duration::seconds(certdesk_ca::recovery::PORTAL_P12_KEEP_SECONDS));
    let report = authority.recover("test").await.unwrap();
    assert_eq!(report.expired, vec![certs[0].serial.clone()]);
    assert!(store.pending_delivery_of(&id).await.unwrap().is_none());
    assert_eq!(store.certificate(&certs[0].serial).await.unwrap().unwrap().revoked_at, None);
    let mut jane = sign_in(&desk, "jane.doe@example.org").await; // the session has ended meanwhile
    let page = jane.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(!page.contains("name=\"resume\""), "the download is still offered");
    // The form sent again now: the application's page, which shows the certificate.
    let again = jane.submit(&desk, &path, &fields).await;
    assert_eq!((again.status, again.location()), (StatusCode::SEE_OTHER, format!("/applications/{id}")));
}

/// The applicant confirms the .p12 is saved: the stored copy goes at once, audited,
/// and is offered no more.
#[tokio::test]
async fn a_saved_p12_is_deleted_when_the_applicant_says_so() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let password = "Blue-Otter-Canyon-42";
    let fields = [("password", password), ("password2", password), ("key", "p256")];
    let p12 = jane.submit(&desk, &format!("/applications/{id}/p12"), &fields).await;
    assert_eq!(p12.status, StatusCode::OK);
    let store = desk.status.authority().store();
    assert!(store.pending_delivery_of(&id).await.unwrap().is_some());
    let page = jane.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(page.contains(&format!("/applications/{id}/p12/saved")), "{page}");
    // Someone else's confirmation: 404, nothing deleted.
    let mut eve = sign_in(&desk, "eve@example.org").await;
    let theirs = eve.submit(&desk, &format!("/applications/{id}/p12/saved"), &[]).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(store.pending_delivery_of(&id).await.unwrap().is_some());
    let saved = jane.submit(&desk, &format!("/applications/{id}/p12/saved"), &[]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text());
    assert!(store.pending_delivery_of(&id).await.unwrap().is_none());
    let log = store.audit_log().await.unwrap();
    assert_eq!(log.last().unwrap().action, "certificate.p12-saved");
    let page = jane.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(!page.contains("/p12/saved") && !page.contains("name=\"resume\""));
    // Nothing is revoked a week later.
    desk.clock.advance(time::Duration::seconds(certdesk_ca::recovery::PORTAL_P12_KEEP_SECONDS));
    assert!(desk.status.authority().recover("test").await.unwrap().is_empty());
}

/// Issue 11: a .p12 the portal made but never sent (the server stopped before the
/// answer, and the applicant never came back for it) is deleted after a week and its
/// certificate revoked: nobody holds its key.
#[tokio::test]
async fn a_p12_never_sent_is_revoked_after_a_week() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let crashed = stopping_process(&desk);
    let password = "Blue-Otter-Canyon-42";
    let fields = [("password", password), ("password2", password), ("key", "p256")];
    let lost = jane.submit(&crashed, &format!("/applications/{id}/p12"), &fields).await;
    assert_eq!(lost.status, StatusCode::INTERNAL_SERVER_ERROR);
    let authority = desk.status.authority();
    // Within the week nothing happens.
    assert!(authority.recover("test").await.unwrap().is_empty());
    desk.clock.advance(time::Duration::seconds(certdesk_ca::recovery::PORTAL_P12_KEEP_SECONDS));
    let report = authority.recover("test").await.unwrap();
    assert_eq!(report.revoked_undelivered.len(), 1);
    let cert = authority.store().certificate(&report.revoked_undelivered[0]).await.unwrap().unwrap();
    assert_eq!(cert.revocation_reason, Some(certdesk_store::RevocationReason::CessationOfOperation));
    assert!(authority.store().pending_delivery_of(&id).await.unwrap().is_none());
    let log = authority.store().audit_log().await.unwrap();
    assert!(log.last().unwrap().details.contains("never downloaded"), "{}", log.last().unwrap().details);
}

/// Issue 11: an application claimed by a process that died before the certificate was
/// recorded (an intent left behind) goes back to `approved` when recovery abandons the
/// intent, so the applicant gets the certificate instead of a 409.
#[tokio::test]
async fn an_abandoned_issuance_gives_the_application_back() {
    let desk = desk(None).await;
    let (mut jane, id) = approved_application(&desk).await;
    let authority = desk.status.authority();
    let store = authority.store();
    let app = store.application(&id).await.unwrap().unwrap();
    let now = desk.clock.now().unix_timestamp();
    let intent = certdesk_store::IssuanceIntent {
        serial: certdesk_store::Serial::parse("7f0011223344556677").unwrap(),
        tbs_sha256: "00".repeat(32),
        email: app.email.clone(),
        profile: app.profile,
        not_after: now + 86_400,
        application_id: Some(id.clone()),
        owner: "elsewhere/12345/dead".into(),
        created_at: now - certdesk_ca::recovery::STALE_AFTER_SECONDS,
    };
    let claim = certdesk_core::ports::ApplicationClaim { id: id.clone(), version: app.version };
    store.record_intents(std::slice::from_ref(&intent), Some(&claim), now).await.unwrap();
    let path = format!("/applications/{id}/p12");
    let password = "Blue-Otter-Canyon-42";
    let fields = [("password", password), ("password2", password), ("key", "p256")];
    // Claimed (issued, no serial yet): the form goes to the application's page, nothing
    // is issued.
    assert_eq!(jane.submit(&desk, &path, &fields).await.status, StatusCode::SEE_OTHER, "claimed: issued, no serial");

    let report = authority.recover("test").await.unwrap();
    assert_eq!(report.abandoned, vec![intent.serial.clone()]);
    let log = store.audit_log().await.unwrap();
    let record = log.last().unwrap();
    assert_eq!((record.action.as_str(), record.subject.as_str()), ("certificate.abandoned", intent.serial.as_str()));
    assert!(record.details.contains(&id));
    assert_eq!(store.application(&id).await.unwrap().unwrap().state.name(), "approved");
    assert_eq!(jane.submit(&desk, &path, &fields).await.status, StatusCode::OK);
    let certs = store.certificates_of("jane.doe@example.org").await.unwrap();
    assert_eq!(certs.len(), 1);
    assert_ne!(certs[0].serial, intent.serial, "an abandoned serial was used");
}

/// Issue 17 item 2: staff changes end the account's sessions at once, and never leave
/// the portal without an administrator who can sign in with a second factor.
#[tokio::test]
async fn staff_changes_end_sessions_and_keep_an_administrator() {
    use certdesk_core::error::ErrorCode;
    use certdesk_desk::portal::StaffChange;
    let desk = desk(None).await;
    let (mut admin, _) = staff_sign_in(&desk, "admin@example.org", Role::Admin).await;
    let (mut officer, _) = staff_sign_in(&desk, "officer@example.org", Role::Officer).await;
    for change in [StaffChange::Disable, StaffChange::ResetSecondFactor] {
        let e = desk.portal.change_staff(None, "admin@example.org", change).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Refused, "{e}");
        assert!(e.to_string().contains("only administrator"), "{e}");
    }
    assert_eq!(admin.get(&desk, "/admin").await.status, StatusCode::OK);
    assert_eq!(officer.get(&desk, "/officer").await.status, StatusCode::OK);
    // On /admin: a change needs its box ticked; then the officer's session ends.
    let page = admin.get(&desk, "/admin").await.text();
    assert!(page.contains(r#"action="/admin/users/change""#), "{page}");
    let csrf = super::web_fixture::hidden(&page, "csrf");
    let unticked = admin
        .post(&desk, "/admin/users/change", &[("csrf", &csrf), ("email", "officer@example.org"), ("change", "disable")])
        .await;
    assert_eq!(unticked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(officer.get(&desk, "/officer").await.status, StatusCode::OK);
    let fields = [("csrf", csrf.as_str()), ("email", "officer@example.org"), ("change", "disable"), ("confirm", "yes")];
    assert_eq!(admin.post(&desk, "/admin/users/change", &fields).await.status, StatusCode::SEE_OTHER);
    let after = officer.get(&desk, "/officer").await;
    assert_ne!(after.status, StatusCode::OK, "a disabled officer's session still works");
    assert!(admin.get(&desk, "/admin").await.text().contains("disabled"));
    // An officer cannot change staff; a second enrolled administrator can be disabled.
    desk.portal.change_staff(None, "officer@example.org", StaffChange::Enable).await.unwrap();
    // A reset from /admin mails the officer a fresh sign-in link.
    let before = super::web_fixture::mails_to(&desk.outbox, "officer@example.org").len();
    let fields = [("csrf", csrf.as_str()), ("email", "officer@example.org"), ("change", "reset"), ("confirm", "yes")];
    assert_eq!(admin.post(&desk, "/admin/users/change", &fields).await.status, StatusCode::SEE_OTHER);
    let mails = super::web_fixture::mails_to(&desk.outbox, "officer@example.org");
    assert_eq!(mails.len(), before + 1);
    // An officer cannot change staff.
    let (mut other, _) = staff_sign_in(&desk, "other@example.org", Role::Officer).await;
    let other_csrf = super::web_fixture::hidden(&other.get(&desk, "/officer").await.text(), "csrf");
    let fields =
        [("csrf", other_csrf.as_str()), ("email", "officer@example.org"), ("change", "disable"), ("confirm", "yes")];
    assert_eq!(other.post(&desk, "/admin/users/change", &fields).await.status, StatusCode::FORBIDDEN);
    let (_, _) = staff_sign_in(&desk, "second@example.org", Role::Admin).await;
    desk.portal.change_staff(None, "second@example.org", StaffChange::Disable).await.unwrap();
    let unknown = desk.portal.change_staff(None, "nobody@example.org", StaffChange::Disable).await.unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::NotFound);
}

/// The id of the slot at `place` among a page's `<option>`s.
fn option_for(page: &str, place: &str) -> Option<String> {
    page.split(r#"<option value=""#)
        .skip(1)
        .find(|option| option.split("</option>").next().unwrap_or_default().contains(place))
        .and_then(|option| option.split('"').next())
        .map(str::to_string)
}

/// Issue 17 item 3 and 4: appointments are moved and cancelled by the applicant,
/// cancelled by an officer (the applicant is mailed), freed when an application is
/// withdrawn or rejected; free slots are removed; the queue shows each appointment,
/// today's view and a search; all in the organisation's zone (Europe/Berlin here), with
/// every change audited.
#[tokio::test]
async fn appointments_are_moved_cancelled_and_freed() {
    let desk = desk(None).await;
    let (mut officer, _) = staff_sign_in(&desk, "desk@example.org", Role::Officer).await;
    // The clock says 2026-11-25 12:00 UTC, 13:00 in Berlin.
    // Room 4.04 is at half past midnight in Berlin, still the 25th in UTC: not today.
    for (starts_at, place) in [
        ("2026-11-27T09:30", "Room 1.01"),
        ("2026-11-25T15:00", "Room 2.02"),
        ("2026-11-28T10:00", "Room 3.03"),
        ("2026-11-26T00:30", "Room 4.04"),
    ] {
        let slot = officer.submit(&desk, "/officer/slots", &[("starts_at", starts_at), ("place", place)]).await;
        assert_eq!(slot.status, StatusCode::SEE_OTHER, "{}", slot.text());
    }
    // 02:30 on the night summer time begins does not exist in Berlin: refused.
    let gap = officer.submit(&desk, "/officer/slots", &[("starts_at", "2027-03-28T02:30"), ("place", "Room 9")]).await;
    assert_eq!(gap.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", gap.text());
    let slots = officer.get(&desk, "/officer/slots").await.text();
    assert!(slots.contains("Starts at (Europe/Berlin time)"), "{slots}");
    assert!(slots.contains("2026-11-27 09:30 CET · Room 1.01"), "{slots}");
    let store = desk.status.authority().store();

    let jane = "jane.doe@example.org";
    let mut applicant = sign_in(&desk, jane).await;
    let id = apply(&desk, &mut applicant).await;
    let page = applicant.get(&desk, &format!("/applications/{id}")).await.text();
    let (room1, room2, room3, room4) = (
        option_for(&page, "Room 1.01").unwrap(),
        option_for(&page, "Room 2.02").unwrap(),
        option_for(&page, "Room 3.03").unwrap(),
        option_for(&page, "Room 4.04").unwrap(),
    );
    let reply = applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &room1)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    let mails = mails_to(&desk.outbox, jane);
    assert!(mails.iter().any(|(_, b)| b.contains("2026-11-27 09:30 CET (Europe/Berlin)")), "{mails:?}");
    let page = applicant.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(page.contains("2026-11-27 09:30 CET · Room 1.01"), "{page}");
    assert!(page.contains("Move my appointment to") && page.contains("Cancel my appointment"), "{page}");

    // Moved to this afternoon: the first slot is free again, the new time mailed.
    let reply = applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &room2)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(store.slot_of(&id).await.unwrap().unwrap().id, room2);
    assert!(store.slot(&room1).await.unwrap().unwrap().application_id.is_none());
    assert!(mails_to(&desk.outbox, jane).iter().any(|(_, b)| b.contains("2026-11-25 15:00 CET (Europe/Berlin)")));
    let same = applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &room2)]).await;
    assert_eq!(same.status, StatusCode::CONFLICT, "{}", same.text());
    assert!(same.text().contains("this is the appointment you booked already"), "{}", same.text());

    // The queue: the appointment time, today's view, the search.
    let queue = officer.get(&desk, "/officer").await.text();
    assert!(queue.contains("2026-11-25 15:00 CET · Room 2.02") && queue.contains("Jane"), "{queue}");
    let today = officer.get(&desk, "/officer?view=today").await.text();
    assert!(today.contains(&id), "{today}");
    let found = officer.get(&desk, "/officer?q=DOE").await.text();
    assert!(found.contains(&id), "{found}");
    let none = officer.get(&desk, "/officer?q=nobody-here").await.text();
    assert!(none.contains("No application matches.") && !none.contains(&id), "{none}");

    // John books the slot after midnight; today's view does not list him.
    let john = "john.roe@example.org";
    let mut john_browser = sign_in(&desk, john).await;
    let john_id = apply(&desk, &mut john_browser).await;
    let reply = john_browser.submit(&desk, &format!("/applications/{john_id}/book"), &[("slot", &room4)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    let today = officer.get(&desk, "/officer?view=today").await.text();
    assert!(today.contains(&id) && !today.contains(&john_id), "{today}");

    // An officer cancels John's appointment: only with the box ticked; John is mailed.
    let cancel = format!("/officer/applications/{john_id}/appointment/cancel");
    let unticked = officer.submit(&desk, &cancel, &[]).await;
    assert_eq!(unticked.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unticked.text());
    assert!(store.slot_of(&john_id).await.unwrap().is_some());
    let cancelled = officer.submit(&desk, &cancel, &[("confirm", "yes")]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER, "{}", cancelled.text());
    assert!(store.slot_of(&john_id).await.unwrap().is_none());
    let (subject, body) = mails_to(&desk.outbox, john).into_iter().find(|(s, _)| s.contains("cancelled")).unwrap();
    assert!(subject.contains("appointment"), "{subject}");
    assert!(
        body.contains("2026-11-26 00:30 CET (Europe/Berlin)") && body.contains(&format!("/applications/{john_id}"))
    );
    let again = officer.submit(&desk, &cancel, &[("confirm", "yes")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());

    // Free slots are removed; a booked one only after its appointment is cancelled.
    let booked = officer.submit(&desk, &format!("/officer/slots/{room2}/remove"), &[]).await;
    assert_eq!(booked.status, StatusCode::CONFLICT, "{}", booked.text());
    let removed = officer.submit(&desk, &format!("/officer/slots/{room3}/remove"), &[]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.text());
    assert!(store.slot(&room3).await.unwrap().is_none());
    let gone = applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &room3)]).await;
    assert_eq!(gone.status, StatusCode::CONFLICT, "{}", gone.text());
    assert_eq!(store.slot_of(&id).await.unwrap().unwrap().id, room2, "a failed move lost the booking");

    // Jane cancels hers (box ticked), then books again and withdraws: the slot is free.
    let own_cancel = format!("/applications/{id}/appointment/cancel");
    let unticked = applicant.submit(&desk, &own_cancel, &[]).await;
    assert_eq!(unticked.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unticked.text());
    let ok = applicant.submit(&desk, &own_cancel, &[("confirm", "yes")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert!(store.slot(&room2).await.unwrap().unwrap().application_id.is_none());
    let reply = applicant.submit(&desk, &format!("/applications/{id}/book"), &[("slot", &room2)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    let withdrawn = applicant.submit(&desk, &format!("/applications/{id}/withdraw"), &[("confirm", "yes")]).await;
    assert_eq!(withdrawn.status, StatusCode::SEE_OTHER, "{}", withdrawn.text());
    assert!(
        store.slot(&room2).await.unwrap().unwrap().application_id.is_none(),
        "a withdrawn application kept its slot"
    );

    // John books again and is rejected: his slot is free again too.
    let reply = john_browser.submit(&desk, &format!("/applications/{john_id}/book"), &[("slot", &room1)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    let rejected =
        officer.submit(&desk, &format!("/officer/applications/{john_id}/reject"), &[("reason", "no ID")]).await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER, "{}", rejected.text());
    assert!(
        store.slot(&room1).await.unwrap().unwrap().application_id.is_none(),
        "a rejected application kept its slot"
    );

    let log = store.audit_log().await.unwrap();
    let count = |action: &str| log.iter().filter(|r| r.action == action).count();
    assert_eq!(count("appointment.book"), 4, "{log:?}");
    assert_eq!(count("appointment.rebook"), 1);
    assert_eq!(count("appointment.cancel"), 2);
    assert_eq!(count("appointment.remove"), 1);
    assert!(log.iter().any(|r| r.action == "appointment.cancel" && r.details.contains("\"by\":\"officer\"")));
    // The slots freed by the withdrawal and the rejection are named in their records.
    let freed = |action: &str| log.iter().any(|r| r.action == action && r.details.contains("freed_slot"));
    assert!(freed("application.withdraw") && freed("application.reject"), "{log:?}");
    certdesk_core::audit::verify(&log).unwrap();
}

/// Issue 17: the .p12 form asks for the mail clients; "as my mail clients need" makes
/// the compatible format when one of them needs it (Android here), the modern one
/// otherwise; the certificate-ready mail carries the install steps of the clients
/// ticked and the link to the guide, which lists every client in both languages.
#[tokio::test]
async fn the_p12_form_chooses_the_format_for_the_mail_clients_ticked() {
    // pbeWithSHAAnd3-KeyTripleDES-CBC and PBES2, as DER object identifiers.
    const TRIPLE_DES: &[u8] = &[0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];
    const PBES2: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    let has = |der: &[u8], oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
    let password = "Blue-Otter-Canyon-42";
    for (clients, compat) in [(vec!["thunderbird", "android"], true), (vec!["thunderbird", "apple-mail"], false)] {
        let desk = desk(None).await;
        let (mut jane, id) = approved_application(&desk).await;
        let page = jane.get(&desk, &format!("/applications/{id}")).await.text();
        assert!(page.contains(r#"name="client_android""#) && page.contains("KMail/Kleopatra (GnuPG 2.2)"), "{page}");
        assert!(page.contains("<code>certdesk enroll</code>") && !page.contains('`'), "{page}");
        let mut fields = vec![("password", password), ("password2", password), ("format", "auto")];
        let names: Vec<String> = clients.iter().map(|c| format!("client_{c}")).collect();
        fields.extend(names.iter().map(|n| (n.as_str(), "yes")));
        let p12 = jane.submit(&desk, &format!("/applications/{id}/p12"), &fields).await;
        assert_eq!(p12.status, StatusCode::OK, "{}", p12.text());
        assert_eq!((has(&p12.body, TRIPLE_DES), has(&p12.body, PBES2)), (compat, !compat), "{clients:?}");
        certdesk_pki::pkcs12::read(&p12.body, password).unwrap();
        let (_, body) = mails_to(&desk.outbox, "jane.doe@example.org")
            .into_iter()
            .rev()
            .find(|(s, _)| s.contains("ready"))
            .unwrap();
        let body = body.replace("\r\n", "\n");
        assert!(body.contains("How to install it in the mail clients you named:"), "{body}");
        assert!(body.contains("Thunderbird:\n  1. Settings") && body.contains("/install"), "{body}");
        assert_eq!(body.contains("Android:\n  1."), compat, "{body}");
        let issued = jane.get(&desk, &format!("/applications/{id}")).await.text();
        assert!(issued.contains(r#"href="/install""#), "{issued}");
    }
    let desk = desk(None).await;
    let guide = Browser::default().get(&desk, "/install?client=android").await.text();
    assert!(
        guide.contains(r#"<details id="android" open>"#) && guide.contains(r#"<details id="thunderbird">"#),
        "{guide}"
    );
    let german = Browser::german().get(&desk, "/install").await.text();
    assert!(german.contains("Anleitung zum Einrichten") && german.contains("Ihre Zertifikate"), "{german}");
}

/// Issue 17 item 8: the mailbox link opened where one is not signed in leads through
/// sign-in back to the link with its code; a wrong code is titled as such; an empty
/// name is said in words (in German on German pages); officers are not offered their
/// own application's evidence form, nor Approve before the checks; applicants see
/// profile names, not ids, and no literal backticks.
#[tokio::test]
async fn messages_speak_to_people_and_the_mailbox_link_survives_sign_in() {
    let desk = desk(None).await;
    let jane = "jane.doe@example.org";
    let mut laptop = sign_in(&desk, jane).await;
    let id = apply(&desk, &mut laptop).await;
    let page = laptop.get(&desk, &format!("/applications/{id}")).await.text();
    assert!(page.contains("Staff, signing and encryption") && !page.contains("sponsor-strict"), "{page}");
    assert!(!page.contains('`'), "{page}");
    let wrong = laptop.submit(&desk, &format!("/applications/{id}/validate"), &[("value", "AAAA-BBBB")]).await;
    assert!(wrong.text().contains("<title>The code is not right"), "{}", wrong.text());

    // The phone: the mail's link, then sign-in on the phone, then back to the link.
    let value = validation_value(&desk.outbox, jane);
    let link = format!("/validate/{id}?value={value}");
    let mut phone = Browser::default();
    let first = phone.get(&desk, &link).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.text().contains("you come back to this link"), "{}", first.text());
    assert!(phone.cookies.contains_key("certdesk_next"));
    let csrf = hidden(&first.text(), "csrf");
    desk.clock.advance(time::Duration::minutes(1)); // mails are named by the clock: this one is the last
    let sent = phone.post(&desk, "/signin", &[("csrf", &csrf), ("email", jane)]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
    let signin = from_last_mail(&desk.outbox, jane, "/signin/");
    let path = signin.split_once("/signin/").map(|(_, t)| format!("/signin/{t}")).unwrap();
    let done = phone.post(&desk, &path, &[]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, link.clone()));
    assert!(!phone.cookies.contains_key("certdesk_next"), "the return path is kept after use");
    let back = phone.get(&desk, &link).await.text();
    assert!(!hidden(&back, "csrf").is_empty());
    assert!(back.contains(&format!(r#"value="{value}""#)), "{back}");
    let confirmed = phone.submit(&desk, &format!("/applications/{id}/validate"), &[("value", &value)]).await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER, "{}", confirmed.text());
    let mut forged = Browser::default();
    // A forged return path (a dot segment out of /validate/) is never followed.
    forged.cookies.insert("certdesk_next".into(), "L3ZhbGlkYXRlLy4uL2FkbWluP3ZhbHVlPXg".into()); // "/validate/../admin?value=x"
    desk.clock.advance(time::Duration::minutes(1));
    let page = forged.get(&desk, "/").await.text();
    let sent =
        forged.post(&desk, "/signin", &[("csrf", &hidden(&page, "csrf")), ("email", "john.roe@example.org")]).await;
    assert_eq!(sent.status, StatusCode::OK);
    let signin = from_last_mail(&desk.outbox, "john.roe@example.org", "/signin/");
    let path = signin.split_once("/signin/").map(|(_, t)| format!("/signin/{t}")).unwrap();
    let done = forged.post(&desk, &path, &[]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/".to_string()));

    // Names said in words, in the page's language.
    let blank = [("given_name", " "), ("surname", "Doe"), ("profile", "sponsor-strict")];
    let en = laptop.submit(&desk, "/apply", &blank).await.text();
    assert!(en.contains("the given name is missing: enter it as on your identity document"), "{en}");
    laptop.cookies.insert("certdesk_lang".into(), "de".into());
    let de = laptop.submit(&desk, "/apply", &blank).await.text();
    assert!(de.contains("Der Vorname fehlt"), "{de}");

    // The officer's view: Approve only after the checks; not on one's own application.
    let officer_email = "desk@example.org";
    let (mut officer, _) = staff_sign_in(&desk, officer_email, Role::Officer).await;
    let view = officer.get(&desk, &format!("/officer/applications/{id}")).await.text();
    assert!(view.contains(r#"id="approve-later""#) && !view.contains("/approve\""), "{view}");
    let own =
        officer.submit(&desk, "/apply", &[("given_name", "Dee"), ("surname", "Sk"), ("profile", "private")]).await;
    assert_eq!(own.status, StatusCode::SEE_OTHER, "{}", own.text());
    let own_id = own.location().trim_start_matches("/applications/").to_string();
    let view = officer.get(&desk, &format!("/officer/applications/{own_id}")).await.text();
    assert!(view.contains(r#"id="own-application""#) && !view.contains("/identity\""), "{view}");
}
