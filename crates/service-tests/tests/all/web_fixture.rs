//! The portal as a browser sees it, shared by the portal and page tests: a desk (one
//! `serve` process wired as `certdesk serve` wires it, behind its Router), a browser
//! that keeps cookies, the mails in the outbox, and signing in as applicant or staff.

use super::common::{example_university, PASS};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use certdesk_ca::authority::{init, Authority};
use certdesk_ca::issuer::OcspResponder;
use certdesk_ca::status::StatusService;
use certdesk_core::clock::{Clock, ManualClock};
use certdesk_core::datadir::DataDir;
use certdesk_desk::portal::{Portal, Role};
use certdesk_web::router;
use http_body_util::BodyExt;
use tower::ServiceExt;
use zeroize::Zeroizing;

pub(super) struct Desk {
    pub(super) app: axum::Router,
    pub(super) portal: Arc<Portal>,
    pub(super) status: Arc<StatusService>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) outbox: PathBuf,
    pub(super) data: DataDir,
    pub(super) _dir: tempfile::TempDir,
}

pub(super) async fn desk(database_url: Option<String>) -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-11-25 12:00 UTC)));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let data = DataDir::new(dir.path().join("data"));
    let options = example_university(database_url);
    init(&data, options, Zeroizing::new(PASS.into()), dyn_clock.as_ref(), "test").await.unwrap();
    // The desk's times in the organisation's zone, whatever this machine's zone is.
    let mut config =
        certdesk_core::config::Config::from_toml(&std::fs::read_to_string(data.config()).unwrap()).unwrap();
    config.portal.time_zone = Some("Europe/Berlin".into());
    std::fs::write(data.config(), config.to_toml().unwrap()).unwrap();
    let authority = Arc::new(Authority::open(data.clone(), dyn_clock.clone()).await.unwrap());
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let responder = OcspResponder::unlock(&data, PASS).unwrap();
    let chain = authority.chain().unwrap();
    let status = Arc::new(StatusService::new(authority.clone(), issuer, responder, dyn_clock.clone()).unwrap());
    status.refresh().await.unwrap();
    let mailer = certdesk_desk::mail::build_mailer(&Default::default(), &data.outbox(), dyn_clock.clone()).unwrap();
    let key = certdesk_desk::portal::load_portal_key(&data).unwrap();
    let portal = Arc::new(super::common::portal(&status, &data, mailer, key, dyn_clock.clone()));
    let state = super::common::state(status.clone(), chain, dyn_clock, Some(portal.clone()), None);
    Desk { app: router(state), portal, status, clock, outbox: data.outbox(), data, _dir: dir }
}

/// Another `serve` process on the same data and database as `desk` (sessions live on
/// in the database), whose desk reaches the CA through `ca`: a restarted process, or one
/// whose CA fails on purpose.
pub(super) fn process_with_ca(desk: &Desk, ca: Arc<dyn certdesk_core::ports::CertificateAuthority>) -> Desk {
    let clock: Arc<dyn Clock> = desk.clock.clone();
    let authority = desk.status.authority();
    let mailer = certdesk_desk::mail::build_mailer(&Default::default(), &desk.data.outbox(), clock.clone()).unwrap();
    let key = certdesk_desk::portal::load_portal_key(&desk.data).unwrap();
    let portal = Arc::new(
        Portal::new(ca, authority.store().clone(), authority.config().clone(), &desk.data, mailer, key, clock.clone())
            .unwrap(),
    );
    let state =
        super::common::state(desk.status.clone(), authority.chain().unwrap(), clock, Some(portal.clone()), None);
    Desk {
        app: router(state),
        portal,
        status: desk.status.clone(),
        clock: desk.clock.clone(),
        outbox: desk.outbox.clone(),
        data: desk.data.clone(),
        _dir: tempfile::tempdir().unwrap(),
    }
}

/// An escrow key (2 of 2 agents) and escrow on for `profile`, as `certdesk escrow init`
/// and `escrow profile PROFILE on` leave the store (issue 15).
pub(super) async fn escrow_on(desk: &Desk, profile: &str) {
    escrow_with_agents(desk, profile, &["agent1@example.org", "agent2@example.org"], 2).await;
}

/// An escrow key of `agents`, `threshold` of them needed, and escrow on for `profile`;
/// returns the agents' shares (PEM), as each agent reads theirs from their message.
pub(super) async fn escrow_with_agents(desk: &Desk, profile: &str, agents: &[&str], threshold: u8) -> Vec<String> {
    let store = desk.status.authority().store();
    let agents: Vec<String> = agents.iter().map(|a| a.to_string()).collect();
    let made = certdesk_ca::escrow::create(
        "Example University",
        usize::from(threshold),
        &agents,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let key = certdesk_store::EscrowKeyRecord {
        key_id: hex::encode(made.key_id),
        certificate: made.certificate.clone(),
        threshold,
        total: agents.len() as u8,
        created_at: 1,
        retired_at: None,
    };
    let records: Vec<certdesk_store::EscrowAgentRecord> = made
        .records
        .iter()
        .map(|r| certdesk_store::EscrowAgentRecord {
            index: r.index,
            email: r.agent.clone(),
            agent_serial: "01".into(),
            commitment: hex::encode(r.commitment),
        })
        .collect();
    let event = |action: &'static str| certdesk_core::audit::AuditEvent {
        actor: "test".into(),
        action,
        subject: profile.into(),
        details: serde_json::json!({}),
    };
    let init = event("escrow.init");
    store
        .record_escrow_key(&key, &records, &|seq, prev| certdesk_core::audit::seal(&init, 1, seq, prev))
        .await
        .unwrap();
    let on = event("profile.escrow");
    store
        .set_profile_escrow(profile, certdesk_store::EscrowMode::On, "test", 2, &|seq, prev| {
            certdesk_core::audit::seal(&on, 2, seq, prev)
        })
        .await
        .unwrap();
    made.shares.iter().map(|s| s.to_pem().unwrap().to_string()).collect()
}

pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: axum::http::HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub(super) fn location(&self) -> String {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }
}

/// A browser: keeps cookies.
#[derive(Default, Clone)]
pub(super) struct Browser {
    pub(super) cookies: HashMap<String, String>,
}

/// `s` percent-encoded for a URL query or a form body.
pub(super) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An `application/x-www-form-urlencoded` body.
pub(super) fn form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect::<Vec<_>>().join("&")
}

impl Browser {
    /// A browser whose language cookie asks for German pages.
    pub(super) fn german() -> Self {
        Browser { cookies: HashMap::from([("certdesk_lang".to_string(), "de".to_string())]) }
    }

    pub(super) async fn send(&mut self, desk: &Desk, request: axum::http::request::Builder, body: Body) -> Reply {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookie.is_empty() { request } else { request.header(header::COOKIE, cookie) };
        let response = desk.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(header::SET_COOKIE) {
            let (pair, _) = value.to_str().unwrap().split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply { status, headers, body }
    }

    pub(super) async fn get(&mut self, desk: &Desk, path: &str) -> Reply {
        self.send(desk, Request::get(path), Body::empty()).await
    }

    pub(super) async fn post(&mut self, desk: &Desk, path: &str, fields: &[(&str, &str)]) -> Reply {
        let request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(desk, request, Body::from(form_body(fields))).await
    }

    /// Posts a form with this session's CSRF token (read from a page).
    pub(super) async fn submit(&mut self, desk: &Desk, path: &str, fields: &[(&str, &str)]) -> Reply {
        let page = self.get(desk, "/").await.text();
        let csrf = hidden(&page, "csrf");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(desk, path, &all).await
    }
}

/// The value of the first hidden input `name` in `html`.
pub(super) fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// Mails in the outbox to `to`, oldest first, decoded: (subject, body).
pub(super) fn mails_to(outbox: &Path, to: &str) -> Vec<(String, String)> {
    let mut names: Vec<_> = std::fs::read_dir(outbox)
        .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "eml")).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|p| {
            let raw = std::fs::read(p).unwrap();
            let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let recipient =
                message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_string();
            (recipient == to)
                .then(|| (message.subject().unwrap_or_default().to_string(), message.body_text(0).unwrap().to_string()))
        })
        .collect()
}

/// The first line of the last mail to `to` that contains `needle`.
pub(super) fn from_last_mail(outbox: &Path, to: &str, needle: &str) -> String {
    let mails = mails_to(outbox, to);
    let (_, body) = mails.last().unwrap_or_else(|| panic!("no mail to {to}"));
    body.lines()
        .map(str::trim)
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} in {body}"))
        .to_string()
}

/// The validation value: the line after "enter this code".
pub(super) fn validation_value(outbox: &Path, to: &str) -> String {
    let mails = mails_to(outbox, to);
    let (_, body) = mails.iter().rev().find(|(s, _)| s.contains("confirm")).unwrap();
    let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let at = lines.iter().position(|l| l.contains("enter this code")).unwrap();
    lines[at + 1].to_string()
}

pub(super) async fn sign_in(desk: &Desk, email: &str) -> Browser {
    sign_in_with(desk, Browser::default(), email).await
}

/// Signs `email` in with the mailed link in `browser` (e.g. a German one).
pub(super) async fn sign_in_with(desk: &Desk, mut browser: Browser, email: &str) -> Browser {
    let page = browser.get(desk, "/").await;
    let csrf = hidden(&page.text(), "csrf");
    let sent = browser.post(desk, "/signin", &[("csrf", &csrf), ("email", email)]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
    let link = from_last_mail(&desk.outbox, email, "/signin/");
    let path = link.split_once("/signin/").map(|(_, t)| format!("/signin/{t}")).unwrap();
    // The link opens a confirmation page; the POST uses the token.
    assert_eq!(browser.get(desk, &path).await.status, StatusCode::OK);
    let done = browser.post(desk, &path, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert!(browser.cookies.contains_key("certdesk_session"));
    browser
}

/// Signs a staff member in, enrols TOTP and returns the browser and the TOTP secret.
pub(super) async fn staff_sign_in(desk: &Desk, email: &str, role: Role) -> (Browser, Vec<u8>) {
    let (browser, secret, _) = staff_sign_in_with(desk, Browser::default(), email, role).await;
    (browser, secret)
}

/// [`staff_sign_in`] in `browser`; also returns the pages seen on the way (the
/// sign-in link's confirmation and the authenticator enrolment), by name.
pub(super) async fn staff_sign_in_with(
    desk: &Desk,
    mut browser: Browser,
    email: &str,
    role: Role,
) -> (Browser, Vec<u8>, Vec<(String, Reply)>) {
    let link = desk.portal.add_staff(None, email, role).await.unwrap();
    let path = link.split_once("/signin/").map(|(_, t)| format!("/signin/{t}")).unwrap();
    let confirm = browser.get(desk, &path).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert_eq!(browser.post(desk, &path, &[]).await.status, StatusCode::SEE_OTHER);
    // Staff must give the second factor first.
    let home = browser.get(desk, "/").await;
    assert_eq!((home.status, home.location().as_str()), (StatusCode::SEE_OTHER, "/second-factor"));
    assert_eq!(browser.get(desk, "/officer").await.location(), "/second-factor");
    let enrolment = browser.get(desk, "/second-factor").await;
    let page = enrolment.text();
    let secret_text = page.split(r#"<code id="totp-secret">"#).nth(1).unwrap().split('<').next().unwrap().to_string();
    let secret = certdesk_desk::totp::base32_decode(&secret_text).unwrap();
    let sealed = hidden(&page, "sealed");
    let csrf = hidden(&page, "csrf");
    let now = desk.clock.now().unix_timestamp();
    let wrong = browser.post(desk, "/second-factor", &[("csrf", &csrf), ("sealed", &sealed), ("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let code = certdesk_desk::totp::code_at_step(&secret, certdesk_desk::totp::step_at(now));
    let ok = browser.post(desk, "/second-factor", &[("csrf", &csrf), ("sealed", &sealed), ("code", &code)]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert_eq!(browser.get(desk, "/officer").await.status, StatusCode::OK);
    let seen = vec![("staff sign-in link".to_string(), confirm), ("second factor enrolment".to_string(), enrolment)];
    (browser, secret, seen)
}
