//! Single sign-on with OpenID Connect, end to end: the portal's Router (driven with
//! `oneshot`) against a fake identity provider on a loopback listener (discovery, JWKS
//! and token endpoints; ID tokens signed with ES256 and RS256 keys made here). Runs on
//! SQLite, and on PostgreSQL when `CERTDESK_TEST_POSTGRES_URL` is set.

use super::common::{example_university, PASS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use certdesk_ca::authority::{init, Authority};
use certdesk_ca::issuer::OcspResponder;
use certdesk_ca::status::StatusService;
use certdesk_core::clock::{Clock, ManualClock};
use certdesk_core::config::Config;
use certdesk_core::datadir::DataDir;
use certdesk_core::oidc_settings::OidcSection;
use certdesk_desk::portal::{Portal, Role};
use certdesk_web::router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use zeroize::Zeroizing;

const CLIENT_ID: &str = "certdesk-portal";
const CLIENT_SECRET: &str = "s3cret with spaces & symbols";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

// ---------------------------------------------------------------------------------------
// The fake identity provider

/// A code the provider handed out: the ID token to answer with and the PKCE challenge.
struct Grant {
    id_token: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct IdpState {
    issuer: String,
    jwks: Value,
    grants: HashMap<String, Grant>,
    /// How the client authenticated at the token endpoint, per request.
    client_auth: Vec<String>,
}

type Idp = Arc<Mutex<IdpState>>;

fn form_decode(text: &str) -> HashMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('=').map(|(k, v)| (decode(k), decode(v))))
        .collect()
}

async fn discovery(axum::extract::State(idp): axum::extract::State<Idp>) -> axum::response::Response {
    let issuer = idp.lock().unwrap().issuer.clone();
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(axum::extract::State(idp): axum::extract::State<Idp>) -> axum::response::Response {
    axum::Json(idp.lock().unwrap().jwks.clone()).into_response()
}

async fn token(
    axum::extract::State(idp): axum::extract::State<Idp>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let form = form_decode(&body);
    let mut idp = idp.lock().unwrap();
    let refuse = |error: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error }))).into_response();
    // client_secret_basic (RFC 6749 §2.3.1), the default when discovery names no method.
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "));
    let Some(basic) = basic else { return refuse("invalid_client") };
    let pair = String::from_utf8(base64::prelude::BASE64_STANDARD.decode(basic).unwrap()).unwrap();
    let (id, secret) = pair.split_once(':').unwrap();
    let (id, secret) = (form_decode(&format!("a={id}"))["a"].clone(), form_decode(&format!("a={secret}"))["a"].clone());
    idp.client_auth.push("basic".into());
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return refuse("invalid_client");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return refuse("unsupported_grant_type");
    }
    let Some(grant) = form.get("code").and_then(|c| idp.grants.remove(c)) else { return refuse("invalid_grant") };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    if challenge != grant.challenge || form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse("invalid_grant");
    }
    axum::Json(json!({ "access_token": "opaque", "token_type": "Bearer", "id_token": grant.id_token })).into_response()
}

struct Keys {
    ec: EcdsaKeyPair,
    other_ec: EcdsaKeyPair,
    rsa: aws_lc_rs::rsa::KeyPair,
}

impl Keys {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let ec = |rng: &SystemRandom| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
        };
        Keys {
            ec: ec(&rng),
            other_ec: ec(&rng),
            rsa: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        }
    }

    fn jwks(&self) -> Value {
        let point = self.ec.public_key().as_ref();
        let rsa = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(self.rsa.public_key());
        json!({ "keys": [
            { "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
              "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]) },
            { "kty": "RSA", "kid": "rsa-1", "use": "sig", "n": B64.encode(&rsa.n), "e": B64.encode(&rsa.e) },
            { "kty": "oct", "kid": "hmac-1", "k": B64.encode(b"a shared secret") },
        ]})
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Signing {
    Es256,
    Rs256,
    /// ES256 by a key the provider does not publish, under the published `kid`.
    WrongKey,
    /// `alg: none`, no signature.
    None,
    /// `alg: HS256`, keyed with the published `oct` key.
    Hs256,
}

fn sign(keys: &Keys, signing: Signing, claims: &Value) -> String {
    let header = match signing {
        Signing::Es256 | Signing::WrongKey => json!({ "alg": "ES256", "kid": "ec-1", "typ": "JWT" }),
        Signing::Rs256 => json!({ "alg": "RS256", "kid": "rsa-1" }),
        Signing::None => json!({ "alg": "none" }),
        Signing::Hs256 => json!({ "alg": "HS256", "kid": "hmac-1" }),
    };
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let rng = SystemRandom::new();
    let signature = match signing {
        Signing::Es256 => keys.ec.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        Signing::WrongKey => keys.other_ec.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        Signing::Rs256 => {
            let mut sig = vec![0u8; keys.rsa.public_modulus_len()];
            keys.rsa.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).unwrap();
            sig
        }
        Signing::None => Vec::new(),
        Signing::Hs256 => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"a shared secret");
            aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
    };
    format!("{input}.{}", B64.encode(signature))
}

// ---------------------------------------------------------------------------------------
// The portal

struct Desk {
    app: axum::Router,
    portal: Arc<Portal>,
    status: Arc<StatusService>,
    clock: Arc<ManualClock>,
    data: DataDir,
    idp: Idp,
    keys: Keys,
    issuer: String,
    _dir: tempfile::TempDir,
}

/// One `certdesk serve` process on the data directory: its own pool, portal and router.
async fn process(data: &DataDir, clock: Arc<dyn Clock>) -> (axum::Router, Arc<Portal>, Arc<StatusService>) {
    let authority = Arc::new(Authority::open(data.clone(), clock.clone()).await.unwrap());
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let responder = OcspResponder::unlock(data, PASS).unwrap();
    let chain = authority.chain().unwrap();
    let status = Arc::new(StatusService::new(authority, issuer, responder, clock.clone()).unwrap());
    status.refresh().await.unwrap();
    let mailer = certdesk_desk::mail::build_mailer(&Default::default(), &data.outbox(), clock.clone()).unwrap();
    let key = certdesk_desk::portal::load_portal_key(data).unwrap();
    let portal = Arc::new(super::common::portal(&status, data, mailer, key, clock.clone()));
    let app = router(super::common::state(status.clone(), chain, clock, Some(portal.clone()), None));
    (app, portal, status)
}

async fn desk(database_url: Option<String>) -> Desk {
    // The identity provider first: its port goes into the configuration.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let keys = Keys::new();
    let idp: Idp = Arc::new(Mutex::new(IdpState { issuer: issuer.clone(), jwks: keys.jwks(), ..IdpState::default() }));
    let routes = axum::Router::new()
        .route("/.well-known/openid-configuration", axum::routing::get(discovery))
        .route("/jwks", axum::routing::get(jwks))
        .route("/token", axum::routing::post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await });

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-11-25 12:00 UTC)));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let data = DataDir::new(dir.path().join("data"));
    let options = example_university(database_url);
    init(&data, options, Zeroizing::new(PASS.into()), dyn_clock.as_ref(), "test").await.unwrap();
    let mut config = Config::from_toml(&std::fs::read_to_string(data.config()).unwrap()).unwrap();
    config.portal.allowed_domains = vec!["example.org".into()];
    config.portal.oidc = Some(OidcSection {
        issuer: issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret_file: "oidc-client-secret".into(),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        display_name: None,
        email_claim: "email".into(),
        require_email_verified: true,
    });
    std::fs::write(data.config(), config.to_toml().unwrap()).unwrap();
    std::fs::write(data.root().join("oidc-client-secret"), format!("{CLIENT_SECRET}\n")).unwrap();
    let (app, portal, status) = process(&data, dyn_clock).await;
    Desk { app, portal, status, clock, data, idp, keys, issuer, _dir: dir }
}

impl Desk {
    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// The claims a correct provider would put into the ID token.
    fn claims(&self, login: &Login, email: &str) -> Value {
        let now = self.now();
        json!({
            "iss": self.issuer, "sub": format!("sub-{email}"), "aud": CLIENT_ID,
            "iat": now, "exp": now + 300, "nonce": login.nonce,
            "email": email, "email_verified": true,
        })
    }

    /// The provider authenticates the user and hands out a code for this ID token.
    fn code_for(&self, login: &Login, id_token: String) -> String {
        let mut b = [0u8; 16];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        let code = B64.encode(b);
        let grant = Grant { id_token, challenge: login.challenge.clone(), redirect_uri: login.redirect_uri.clone() };
        self.idp.lock().unwrap().grants.insert(code.clone(), grant);
        code
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> String {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }
}

#[derive(Default, Clone)]
struct Browser {
    cookies: HashMap<String, String>,
}

impl Browser {
    async fn get(&mut self, app: &axum::Router, path: &str) -> Reply {
        let mut request = Request::get(path);
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        if !cookie.is_empty() {
            request = request.header(header::COOKIE, cookie);
        }
        let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
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
        let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Reply { status, headers, body }
    }
}

/// What the browser carries to the provider.
struct Login {
    state: String,
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

/// `GET /signin/oidc`: a 302 to the provider with a complete authorization request.
async fn begin(desk: &Desk, browser: &mut Browser) -> Login {
    let reply = browser.get(&desk.app, "/signin/oidc").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let location = reply.location();
    let (endpoint, query) = location.split_once('?').unwrap();
    assert_eq!(endpoint, format!("{}/authorize", desk.issuer));
    let params = form_decode(query);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["scope"], "openid email profile");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["redirect_uri"], "http://pki.example.org/signin/oidc/callback");
    assert!(params["state"].len() >= 43 && params["nonce"].len() >= 43 && params["code_challenge"].len() == 43);
    assert_eq!(browser.cookies.get("certdesk_oidc"), Some(&params["state"]), "the state is bound to the browser");
    Login {
        state: params["state"].clone(),
        nonce: params["nonce"].clone(),
        challenge: params["code_challenge"].clone(),
        redirect_uri: params["redirect_uri"].clone(),
    }
}

async fn callback(desk: &Desk, browser: &mut Browser, state: &str, code: &str) -> Reply {
    browser.get(&desk.app, &format!("/signin/oidc/callback?code={code}&state={state}")).await
}

/// A whole login with this ID token; returns the callback's reply.
async fn login_with(desk: &Desk, browser: &mut Browser, token: impl FnOnce(&Login) -> String) -> Reply {
    let login = begin(desk, browser).await;
    let code = desk.code_for(&login, token(&login));
    callback(desk, browser, &login.state, &code).await
}

fn assert_refused(reply: &Reply, browser: &Browser, status: StatusCode, sentence: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.body.contains(sentence), "expected {sentence:?} in {}", reply.body);
    assert!(!browser.cookies.contains_key("certdesk_session"), "no session after a failed sign-in");
}

async fn sign_in_audits(desk: &Desk, email: &str) -> Vec<Value> {
    let log = desk.status.authority().store().audit_log().await.unwrap();
    log.iter()
        .filter(|r| r.action == "session.sign-in" && r.subject == email)
        .map(|r| serde_json::from_str(&r.details).unwrap())
        .collect()
}

async fn single_sign_on(desk: Desk) {
    // The sign-in page offers the provider, in English and German.
    let mut browser = Browser::default();
    let page = browser.get(&desk.app, "/").await.body;
    assert!(page.contains(r#"href="/signin/oidc">Sign in with your organisation account<"#), "{page}");
    assert!(page.contains(r#"action="/signin""#), "link sign-in stays available");
    let page = browser.get(&desk.app, "/?lang=de").await.body;
    assert!(page.contains("Mit Ihrem Organisationskonto anmelden"));

    // Success (ES256): a session, the user created, the audit record says how.
    let mut alice = Browser::default();
    let reply =
        login_with(&desk, &mut alice, |l| sign(&desk.keys, Signing::Es256, &desk.claims(l, "Alice@Example.org"))).await;
    assert_eq!((reply.status, reply.location().as_str()), (StatusCode::SEE_OTHER, "/"), "{}", reply.body);
    assert!(alice.cookies.contains_key("certdesk_session"));
    assert!(!alice.cookies.contains_key("certdesk_oidc"), "the binding cookie is cleared");
    let home = alice.get(&desk.app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("alice@example.org"), "the address is lower-cased");
    let user = desk.status.authority().store().user("alice@example.org").await.unwrap().unwrap();
    assert_eq!(user.role, "applicant");
    let audits = sign_in_audits(&desk, "alice@example.org").await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0]["method"], "oidc");
    assert_eq!(audits[0]["subject"], "sub-Alice@Example.org");
    assert_eq!(desk.idp.lock().unwrap().client_auth.last().map(String::as_str), Some("basic"));

    // RS256 works too.
    let mut bob = Browser::default();
    let reply =
        login_with(&desk, &mut bob, |l| sign(&desk.keys, Signing::Rs256, &desk.claims(l, "bob@example.org"))).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(bob.cookies.contains_key("certdesk_session"));

    // Staff still give their second factor: OIDC replaces the link, not the TOTP.
    desk.portal.add_staff(None, "officer@example.org", Role::Officer).await.unwrap();
    let mut officer = Browser::default();
    let reply =
        login_with(&desk, &mut officer, |l| sign(&desk.keys, Signing::Es256, &desk.claims(l, "officer@example.org")))
            .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let home = officer.get(&desk.app, "/").await;
    assert_eq!((home.status, home.location().as_str()), (StatusCode::SEE_OTHER, "/second-factor"));
    assert_eq!(officer.get(&desk.app, "/officer").await.location(), "/second-factor");

    // A wrong state (the browser's binding cookie does not match).
    let mut eve = Browser::default();
    let login = begin(&desk, &mut eve).await;
    let code = desk.code_for(&login, sign(&desk.keys, Signing::Es256, &desk.claims(&login, "eve@example.org")));
    let reply = callback(&desk, &mut eve, "forged-state", &code).await;
    assert_refused(&reply, &eve, StatusCode::UNAUTHORIZED, "not started in this browser");
    // A state the server does not know, even with a matching cookie.
    let mut forger = Browser::default();
    forger.cookies.insert("certdesk_oidc".into(), "forged-state".into());
    let reply = callback(&desk, &mut forger, "forged-state", &code).await;
    assert_refused(&reply, &forger, StatusCode::UNAUTHORIZED, "unknown or was already used");

    // A replayed callback: the state works once, even with the binding cookie kept.
    let mut carol = Browser::default();
    let login = begin(&desk, &mut carol).await;
    let code = desk.code_for(&login, sign(&desk.keys, Signing::Es256, &desk.claims(&login, "carol@example.org")));
    let url = format!("/signin/oidc/callback?code={code}&state={}", login.state);
    assert_eq!(carol.get(&desk.app, &url).await.status, StatusCode::SEE_OTHER);
    let mut replay = Browser::default();
    replay.cookies.insert("certdesk_oidc".into(), login.state.clone());
    let reply = replay.get(&desk.app, &url).await;
    assert_refused(&reply, &replay, StatusCode::UNAUTHORIZED, "unknown or was already used");

    // An expired pending login (more than 10 minutes).
    let mut slow = Browser::default();
    let login = begin(&desk, &mut slow).await;
    desk.clock.advance(time::Duration::minutes(11));
    let code = desk.code_for(&login, sign(&desk.keys, Signing::Es256, &desk.claims(&login, "slow@example.org")));
    let reply = callback(&desk, &mut slow, &login.state, &code).await;
    assert_refused(&reply, &slow, StatusCode::UNAUTHORIZED, "has expired");

    // ID tokens that must be refused.
    type Tamper = fn(&mut Value);
    let cases: [(&str, Signing, Tamper, &str); 10] = [
        ("aud", Signing::Es256, |c| c["aud"] = json!("another-client"), "not meant for this portal"),
        ("azp", Signing::Es256, |c| c["aud"] = json!([CLIENT_ID, "another-client"]), "not meant for this portal"),
        ("iss", Signing::Es256, |c| c["iss"] = json!("https://evil.example"), "issued by someone else"),
        ("exp", Signing::Es256, |c| c["exp"] = json!(c["iat"].as_i64().unwrap() - 600), "expired"),
        ("iat", Signing::Es256, |c| c["iat"] = json!(c["iat"].as_i64().unwrap() + 3600), "not yet valid"),
        ("nonce", Signing::Es256, |c| c["nonce"] = json!("another-nonce"), "does not belong to this sign-in"),
        ("unverified", Signing::Es256, |c| c["email_verified"] = json!(false), "has not verified"),
        ("signature", Signing::WrongKey, |_| {}, "signature is not valid"),
        ("none", Signing::None, |_| {}, "algorithm &quot;none&quot; is not accepted"),
        ("hmac", Signing::Hs256, |_| {}, "algorithm &quot;HS256&quot; is not accepted"),
    ];
    for (name, signing, tamper, sentence) in cases {
        let mut browser = Browser::default();
        let reply = login_with(&desk, &mut browser, |l| {
            let mut claims = desk.claims(l, &format!("{name}@example.org"));
            tamper(&mut claims);
            sign(&desk.keys, signing, &claims)
        })
        .await;
        assert_refused(&reply, &browser, StatusCode::UNAUTHORIZED, sentence);
        assert!(
            desk.status.authority().store().user(&format!("{name}@example.org")).await.unwrap().is_none(),
            "{name}"
        );
    }

    // An address outside allowed_domains.
    let mut outsider = Browser::default();
    let reply = login_with(&desk, &mut outsider, |l| {
        sign(&desk.keys, Signing::Es256, &desk.claims(l, "mallory@elsewhere.net"))
    })
    .await;
    assert_refused(&reply, &outsider, StatusCode::FORBIDDEN, "may not use the portal");

    // The provider answers with an error; the pending login is used up.
    let mut denied = Browser::default();
    let login = begin(&desk, &mut denied).await;
    let reply =
        denied.get(&desk.app, &format!("/signin/oidc/callback?error=access_denied&state={}", login.state)).await;
    assert_refused(&reply, &denied, StatusCode::UNAUTHORIZED, "refused the sign-in (access_denied)");
    let code = desk.code_for(&login, sign(&desk.keys, Signing::Es256, &desk.claims(&login, "denied@example.org")));
    denied.cookies.insert("certdesk_oidc".into(), login.state.clone());
    let reply = callback(&desk, &mut denied, &login.state, &code).await;
    assert_refused(&reply, &denied, StatusCode::UNAUTHORIZED, "unknown or was already used");

    // The token endpoint refuses a code it never issued.
    let mut guesser = Browser::default();
    let login = begin(&desk, &mut guesser).await;
    let reply = callback(&desk, &mut guesser, &login.state, "made-up-code").await;
    assert_refused(&reply, &guesser, StatusCode::UNAUTHORIZED, "refused the authorization code (invalid_grant)");

    // A disabled account gets no session.
    desk.status
        .authority()
        .store()
        .danger_execute("UPDATE users SET disabled_at = 1 WHERE email = 'bob@example.org'")
        .await
        .unwrap();
    let mut disabled = Browser::default();
    let reply =
        login_with(&desk, &mut disabled, |l| sign(&desk.keys, Signing::Es256, &desk.claims(l, "bob@example.org")))
            .await;
    assert_refused(&reply, &disabled, StatusCode::FORBIDDEN, "disabled");

    // The provider may send the browser back to another process on the same database.
    let (second, _, _) = process(&desk.data, desk.clock.clone()).await;
    let mut dave = Browser::default();
    let login = begin(&desk, &mut dave).await;
    let code = desk.code_for(&login, sign(&desk.keys, Signing::Es256, &desk.claims(&login, "dave@example.org")));
    let reply = dave.get(&second, &format!("/signin/oidc/callback?code={code}&state={}", login.state)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(dave.get(&desk.app, "/").await.status, StatusCode::OK, "the session works in every process");

    // Mailed links still work alongside.
    let link = desk.portal.sign_in_link("erin@example.org").await.unwrap();
    let path = link.split_once("/signin/").map(|(_, t)| format!("/signin/{t}")).unwrap();
    let done = desk.app.clone().oneshot(Request::post(&path).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(sign_in_audits(&desk, "erin@example.org").await[0]["method"], "link");
}

#[tokio::test]
async fn single_sign_on_on_sqlite() {
    single_sign_on(desk(None).await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it when CERTDESK_TEST_POSTGRES_URL is set"]
async fn single_sign_on_on_postgresql() {
    let url = certdesk_test_support::fresh_postgres_database("certdesk_oidc");
    single_sign_on(desk(Some(url.clone())).await).await;
    certdesk_test_support::drop_postgres_database(&url);
}

#[tokio::test]
async fn the_oidc_section_has_defaults_and_refuses_http_issuers_and_inline_secrets() {
    let issuer_ok = OidcSection {
        issuer: "https://login.example.org/realms/staff".into(),
        client_id: CLIENT_ID.into(),
        client_secret_file: "missing".into(),
        scopes: vec!["openid".into()],
        display_name: Some("Uni SSO".into()),
        email_claim: "email".into(),
        require_email_verified: true,
    };
    assert!(issuer_ok.check().is_ok());
    let text = r#"
[ca]
organization = "Example University"
country = "DE"
base_url = "http://pki.example.org"

[portal.oidc]
issuer = "http://login.example.org"
client_id = "x"
client_secret_file = "secret"
"#;
    let err = Config::from_toml(text).unwrap().validate().unwrap_err();
    assert!(err.to_string().contains("https://"), "{err}");
    let https = text.replace("http://login", "https://login");
    let config = Config::from_toml(&https).unwrap().validate().unwrap();
    let oidc = config.raw.portal.oidc.unwrap();
    assert_eq!(oidc.scopes, ["openid", "email"]);
    assert!(oidc.require_email_verified && oidc.email_claim == "email" && oidc.display_name.is_none());
    let inline = https.replace("client_secret_file = \"secret\"", "client_secret = \"inline\"");
    assert!(Config::from_toml(&inline).is_err(), "secrets are never inline");
}
