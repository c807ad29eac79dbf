//! Registration-desk benchmark, through the REST API's Router (in process, no TCP):
//!
//! 1. applications per second from submission to issued certificate: sign-in, apply,
//!    mailbox value (read from the mail the portal sent), identity evidence and
//!    approval by an officer, CSR issuance; `CONCURRENCY` applicants at a time;
//! 2. page latency (p50, p99) of the sign-in page and the directory under 50
//!    concurrent clients.
//!
//! On SQLite, and on PostgreSQL when `CERTDESK_TEST_POSTGRES_URL` is set.
//! Run with `scripts/bench portal [N]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request};
use certdesk_ca::authority::{init, Authority, InitOptions};
use certdesk_ca::issuer::OcspResponder;
use certdesk_ca::status::StatusService;
use certdesk_core::clock::{Clock, SystemClock};
use certdesk_core::datadir::DataDir;
use certdesk_desk::mail::{Mail, MailError, Mailer, SendFuture};
use certdesk_desk::portal::{Portal, Role};
use certdesk_pki::key::{KeyAlgorithm, PrivateKey};
use certdesk_web::{router, AppState};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::Connection;
use tower::ServiceExt;
use zeroize::Zeroizing;

const PASS: &str = "correct horse battery staple";
const CONCURRENCY: usize = 16;

/// Keeps the last mail per address in memory (the validation value is read from it).
#[derive(Debug, Default)]
struct MemoryMailer(Mutex<HashMap<String, String>>);

impl Mailer for MemoryMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            self.0
                .lock()
                .map_err(|_| MailError::Random)?
                .insert(mail.to().as_str().to_string(), mail.body().to_string());
            Ok(())
        })
    }
}

async fn call(app: &axum::Router, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
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
    let response = app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn value_from(body: &str) -> String {
    let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let at = lines.iter().position(|l| l.contains("enter this code")).unwrap();
    lines[at + 1].to_string()
}

async fn run(label: &str, database_url: Option<String>, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let data = DataDir::new(dir.path().join("data"));
    let options = InitOptions {
        organization: "Bench University".into(),
        country: "DE".into(),
        organization_identifier: Some("VATDE-123456789".into()),
        base_url: "http://pki.example.org".into(),
        key: KeyAlgorithm::P384,
        database_url,
        pkcs11: None,
        offline_root: None,
        rsa_pss: false,
    };
    init(&data, options, Zeroizing::new(PASS.into()), clock.as_ref(), "bench").await.unwrap();
    let authority = Arc::new(Authority::open(data.clone(), clock.clone()).await.unwrap());
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let responder = OcspResponder::unlock(&data, PASS).unwrap();
    let chain = authority.chain().unwrap();
    let store = authority.store().clone();
    let config = authority.config().clone();
    let status = Arc::new(StatusService::new(authority, issuer, responder, clock.clone()).unwrap());
    status.refresh().await.unwrap();
    let mailer = Arc::new(MemoryMailer::default());
    let key = certdesk_desk::portal::load_portal_key(&data).unwrap();
    let ca = Arc::new(certdesk_ca::service::CaService::new(status.clone()));
    let portal = Arc::new(Portal::new(ca, store, config, &data, mailer.clone(), key, clock.clone()).unwrap());
    let app = router(Arc::new(AppState::new(status, chain, clock.clone(), Some(portal.clone()), None).unwrap()));

    // The officer, signed in with TOTP (untimed).
    let link = portal.add_staff(None, "desk@example.org", Role::Officer).await.unwrap();
    let (_, session) = call(&app, "POST", "/api/v1/sessions", None, Some(json!({ "token": link }))).await;
    let officer = session["token"].as_str().unwrap().to_string();
    let (_, enrolment) = call(&app, "POST", "/api/v1/sessions/totp-enrolment", Some(&officer), None).await;
    let secret = certdesk_desk::totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let code = certdesk_desk::totp::code_at_step(&secret, certdesk_desk::totp::step_at(clock.now().unix_timestamp()));
    let body = json!({ "code": code, "sealed": enrolment["sealed"] });
    assert_eq!(call(&app, "POST", "/api/v1/sessions/second-factor", Some(&officer), Some(body)).await.0, 200);
    // Applicants make their keys and CSRs on their own devices (untimed).
    let csrs: Vec<String> = (0..CONCURRENCY)
        .map(|_| {
            let key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
            let der = certdesk_pki::csr::build(&key).unwrap();
            der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der).unwrap()
        })
        .collect();
    let links: Vec<String> = {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(portal.sign_in_link(&format!("user{i}@example.org")).await.unwrap());
        }
        out
    };

    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for csr in csrs {
        let (app, officer, mailer, next, links) =
            (app.clone(), officer.clone(), mailer.clone(), next.clone(), links.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= links.len() {
                    break;
                }
                let email = format!("user{i}@example.org");
                let (_, s) = call(&app, "POST", "/api/v1/sessions", None, Some(json!({ "token": links[i] }))).await;
                let token = s["token"].as_str().unwrap().to_string();
                let body = json!({ "given_name": "Bench", "surname": format!("User{i}") });
                let (code, a) = call(&app, "POST", "/api/v1/applications", Some(&token), Some(body)).await;
                assert_eq!(code, 201, "{a}");
                let id = a["id"].as_str().unwrap().to_string();
                let mail = mailer.0.lock().unwrap().get(&email).cloned().unwrap();
                let body = json!({ "value": value_from(&mail) });
                assert_eq!(call(&app, "POST", &format!("/api/v1/applications/{id}/mailbox"), Some(&token), Some(body)).await.0, 200);
                let evidence = json!({"document_type": "passport", "issuing_authority": "Stadt Bonn", "document_number": format!("C{i}"),
                                      "document_expires": "2031-01-01", "verified_in_person": true});
                let path = format!("/api/v1/officer/applications/{id}/identity");
                assert_eq!(call(&app, "POST", &path, Some(&officer), Some(evidence)).await.0, 200);
                let path = format!("/api/v1/officer/applications/{id}/approve");
                assert_eq!(call(&app, "POST", &path, Some(&officer), None).await.0, 200);
                let path = format!("/api/v1/applications/{id}/csr");
                let (code, c) = call(&app, "POST", &path, Some(&token), Some(json!({ "csr": csr }))).await;
                assert_eq!(code, 201, "{c}");
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "{label}: {n} applications, submission to issued certificate, {CONCURRENCY} at a time: {:.1} s, {:.1} applications/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );

    // A signed-in applicant's browser session (cookie) for the start page with their
    // applications and certificates.
    let link = portal.sign_in_link("user1@example.org").await.unwrap();
    let token_path = format!("/signin/{}", link.rsplit('/').next().unwrap());
    let response = app.clone().oneshot(Request::post(token_path.as_str()).body(Body::empty()).unwrap()).await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();

    // Page latency under 50 concurrent clients, 5 seconds.
    for (path, cookie) in [
        ("/", None),
        ("/directory?email=user1%40example.org", None),
        ("/ (signed in: applications and certificates)", Some(cookie)),
    ] {
        let uri = path.split(' ').next().unwrap();
        let stop = Instant::now() + Duration::from_secs(5);
        let mut clients = Vec::new();
        for _ in 0..50 {
            let (app, cookie) = (app.clone(), cookie.clone());
            clients.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < stop {
                    let t = Instant::now();
                    let mut request = Request::get(uri);
                    if let Some(c) = &cookie {
                        request = request.header(header::COOKIE, c.as_str());
                    }
                    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
                    assert!(response.status().is_success());
                    let _ = response.into_body().collect().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for c in clients {
            all.extend(c.await.unwrap());
        }
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        println!(
            "{label}: GET {path} with 50 clients: {:.0} pages/s, p50 {:.2} ms, p99 {:.2} ms",
            all.len() as f64 / 5.0,
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0
        );
    }
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        run("SQLite", None, n).await;
        match std::env::var("CERTDESK_TEST_POSTGRES_URL") {
            Ok(base) => {
                sqlx::any::install_default_drivers();
                let name = format!("certdesk_bench_{}", std::process::id());
                let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
                sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
                let (prefix, _) = base.rsplit_once('/').unwrap();
                run("PostgreSQL", Some(format!("{prefix}/{name}")), n).await;
                let _ = sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await;
            }
            Err(_) => println!("PostgreSQL: set CERTDESK_TEST_POSTGRES_URL to run it"),
        }
    });
}
