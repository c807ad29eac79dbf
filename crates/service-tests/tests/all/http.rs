//! The HTTP service through its Router (no port is bound).

use super::common::{example_university, PASS};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use certdesk_ca::authority::{init, Authority};
use certdesk_ca::issuer::OcspResponder;
use certdesk_ca::status::StatusService;
use certdesk_core::clock::{Clock, FixedClock};
use certdesk_core::datadir::DataDir;
use certdesk_pki::ocsp::{error_response, ErrorStatus};
use certdesk_web::{router, MAX_OCSP_REQUEST};
use http_body_util::BodyExt;
use time::macros::datetime;
use tower::ServiceExt;
use zeroize::Zeroizing;

async fn app(dir: &std::path::Path) -> (axum::Router, Arc<StatusService>, Arc<Authority>) {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(datetime!(2026-11-25 12:00 UTC)));
    let data = DataDir::new(dir.join("data"));
    let options = example_university(None);
    init(&data, options, Zeroizing::new(PASS.into()), clock.as_ref(), "test").await.unwrap();
    let authority = Arc::new(Authority::open(data.clone(), clock.clone()).await.unwrap());
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let responder = OcspResponder::unlock(&data, PASS).unwrap();
    let chain = authority.chain().unwrap();
    let status = Arc::new(StatusService::new(authority.clone(), issuer, responder, clock.clone()).unwrap());
    let state = super::common::state(status.clone(), chain, clock, None, Some(data.root_crl()));
    (router(state), status, authority)
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn ca_certificates_crl_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let (app, status, authority) = app(dir.path()).await;
    let (code, _, body) = send(&app, get("/health")).await;
    assert_eq!((code, body.as_slice()), (StatusCode::OK, br#"{"status":"ok"}"#.as_slice()));

    let (code, headers, body) = send(&app, get("/ca/issuing.crt")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pkix-cert");
    assert_eq!(body, authority.chain().unwrap()[0]);

    // Before the first refresh there is no CRL to serve.
    assert_eq!(send(&app, get("/crl/issuing.crl")).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let report = status.refresh().await.unwrap();
    assert!(report.crl_issued);
    let (code, headers, body) = send(&app, get("/crl/issuing.crl")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pkix-crl");
    // nextUpdate is 7 days after thisUpdate, and the clock stands at thisUpdate.
    assert!(headers["cache-control"].to_str().unwrap().starts_with("max-age=604800"), "{headers:?}");
    assert_eq!(body, authority.store().latest_crl().await.unwrap().unwrap().der);
    // A second refresh with nothing new issues no CRL.
    assert!(!status.refresh().await.unwrap().crl_issued);

    assert_eq!(send(&app, get("/nowhere")).await.0, StatusCode::NOT_FOUND);
}

/// RFC 5019 6.2: CRLs and OCSP answers fetched with GET carry Last-Modified and an
/// ETag, and a cache asking again with If-None-Match gets 304 without a body; a POST
/// answer (it may carry a nonce) is not cached.
#[tokio::test]
async fn crl_and_ocsp_answers_can_be_revalidated_by_caches() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let (app, status, authority) = app(dir.path()).await;
    status.refresh().await.unwrap();
    let conditional =
        |path: &str, etag: &str| Request::get(path).header("if-none-match", etag).body(Body::empty()).unwrap();

    let (code, headers, body) = send(&app, get("/crl/issuing.crl")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers["last-modified"], "Wed, 25 Nov 2026 12:00:00 GMT");
    assert_eq!(headers["expires"], "Wed, 02 Dec 2026 12:00:00 GMT");
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body))));
    let (code, headers, body) = send(&app, conditional("/crl/issuing.crl", &etag)).await;
    assert_eq!((code, body.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(headers["etag"], etag.as_str());
    let (code, _, body) = send(&app, conditional("/crl/issuing.crl", "\"another\"")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(!body.is_empty());

    // A certificate of ours: its answer is signed ahead and served as it is.
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let input = super::common::jane_input(certdesk_pki::profile::ProfileId::SponsorStrict);
    let key = super::common::subscriber_key(certdesk_pki::key::KeyAlgorithm::P256);
    let issued = authority.issue(&issuer, super::common::request(input.clone()), key, "test").await.unwrap();
    status.refresh().await.unwrap();
    let hashes = certdesk_pki::ocsp::IssuerHashes::new(&authority.chain().unwrap()[0]).unwrap();
    let id = hashes.cert_id(certdesk_pki::ocsp::CertIdHash::Sha1, &hex::decode(issued.record.serial.as_str()).unwrap());
    let request = certdesk_pki::ocsp::build_request(&[id], None).unwrap();
    let path = format!("/ocsp/{}", base64::engine::general_purpose::STANDARD.encode(&request).replace('/', "%2F"));
    let (code, headers, body) = send(&app, get(&path)).await;
    assert_eq!(code, StatusCode::OK);
    assert!(headers.contains_key("last-modified") && headers["cache-control"].to_str().unwrap().contains("public"));
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert!(!body.is_empty());
    assert_eq!(send(&app, conditional(&path, &etag)).await.0, StatusCode::NOT_MODIFIED);
    let post =
        Request::post("/ocsp").header("content-type", "application/ocsp-request").body(Body::from(request)).unwrap();
    let (code, headers, _) = send(&app, post).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!headers.contains_key("etag"));
}

#[tokio::test]
async fn hostile_ocsp_requests_get_malformed_request() {
    let dir = tempfile::tempdir().unwrap();
    let (app, status, _) = app(dir.path()).await;
    status.refresh().await.unwrap();
    let malformed = error_response(ErrorStatus::MalformedRequest);
    let post = |body: Vec<u8>| {
        Request::post("/ocsp").header("content-type", "application/ocsp-request").body(Body::from(body)).unwrap()
    };
    for body in [Vec::new(), b"garbage".to_vec(), vec![0x30, 0x82, 0xff, 0xff], vec![0x30; MAX_OCSP_REQUEST + 1]] {
        let (code, headers, answer) = send(&app, post(body)).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/ocsp-response");
        assert_eq!(answer, malformed);
    }
    for path in ["/ocsp/%%%", "/ocsp/not*base64", "/ocsp/AAAA"] {
        let (code, _, answer) = send(&app, get(path)).await;
        assert_eq!((code, answer), (StatusCode::OK, malformed.clone()), "{path}");
    }
}

/// `/crl/root.crl` serves the root's CRL that init signed, and the one that replaced it;
/// without one it answers 404. `root_crl_warning` says when it is missing or due.
#[tokio::test]
async fn root_crl_is_served_from_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _, authority) = app(dir.path()).await;
    let data = DataDir::new(dir.path().join("data"));
    let (code, headers, body) = send(&app, get("/crl/root.crl")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pkix-crl");
    assert_eq!(body, std::fs::read(data.root_crl()).unwrap());
    assert_eq!(headers["last-modified"], "Wed, 25 Nov 2026 12:00:00 GMT");
    assert!(headers.contains_key("etag") && headers.contains_key("expires"), "{headers:?}");
    let now = datetime!(2026-11-25 12:00 UTC);
    assert_eq!(certdesk_ca::authority::root_crl_warning(&data, now), None);
    let late = certdesk_ca::authority::root_crl_warning(&data, now + time::Duration::days(340)).unwrap();
    assert!(late.contains("certdesk crl --root"), "{late}");
    let renewed = authority.issue_root_crl(Zeroizing::new(PASS.into()), "test").await.unwrap();
    assert_eq!(renewed.number, 2);
    assert_eq!(send(&app, get("/crl/root.crl")).await.2, renewed.der);
    assert!(authority.issue_root_crl(Zeroizing::new("wrong".into()), "test").await.is_err());
    assert_eq!(std::fs::read(data.root_crl()).unwrap(), renewed.der, "a failed re-signing changes nothing");
    // A damaged root CRL: warned about, and re-signing refuses rather than restart at 1.
    std::fs::write(data.root_crl(), b"not a CRL").unwrap();
    assert!(certdesk_ca::authority::root_crl_warning(&data, now).unwrap().contains("damaged"));
    let err = authority.issue_root_crl(Zeroizing::new(PASS.into()), "test").await.unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(std::fs::read(data.root_crl()).unwrap(), b"not a CRL");
    std::fs::remove_file(data.root_crl()).unwrap();
    assert_eq!(send(&app, get("/crl/root.crl")).await.0, StatusCode::NOT_FOUND);
    assert!(certdesk_ca::authority::root_crl_warning(&data, now).unwrap().contains("no root CRL"));
}

/// Issue 14: `/ready` is 503 with the reasons until the first refresh, 200 with every
/// check once the CRL and OCSP responses are signed, and 503 again when the CRL and the
/// responses are past their nextUpdate (refreshes failed for a week).
#[tokio::test]
async fn ready_says_what_is_not_ready() {
    use certdesk_core::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let manual = Arc::new(ManualClock::new(datetime!(2026-11-25 12:00 UTC)));
    let clock: Arc<dyn Clock> = manual.clone();
    let data = DataDir::new(dir.path().join("data"));
    init(&data, example_university(None), Zeroizing::new(PASS.into()), clock.as_ref(), "test").await.unwrap();
    let authority = Arc::new(Authority::open(data.clone(), clock.clone()).await.unwrap());
    let issuer = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let responder = OcspResponder::unlock(&data, PASS).unwrap();
    let chain = authority.chain().unwrap();
    let status = Arc::new(StatusService::new(authority.clone(), issuer, responder, clock.clone()).unwrap());
    let app = router(super::common::state(status.clone(), chain, clock, None, None));
    let ready = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).unwrap();

    let (code, headers, body) = send(&app, get("/ready")).await;
    let json = ready(&body);
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(json["status"], "not ready");
    assert_eq!(json["checks"]["database"]["ok"], true, "{json}");
    assert_eq!(json["checks"]["crl"]["ok"], false, "{json}");
    assert_eq!(json["checks"]["crl"]["detail"], "no CRL has been issued yet");
    assert_eq!(json["checks"]["ocsp"]["ok"], false, "{json}");
    assert_eq!(json["checks"]["signing"]["ok"], true, "{json}");

    // One certificate, so that there is an OCSP response to sign and to age.
    let unlocked = authority.unlock(Zeroizing::new(PASS.into())).await.unwrap();
    let input = super::common::jane_input(certdesk_pki::profile::ProfileId::SponsorStrict);
    let key = super::common::subscriber_key(certdesk_pki::key::KeyAlgorithm::P256);
    authority.issue(&unlocked, super::common::request(input), key, "test").await.unwrap();
    status.refresh().await.unwrap();
    let (code, _, body) = send(&app, get("/ready")).await;
    let json = ready(&body);
    assert_eq!(code, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "ready");
    assert_eq!(json["checks"]["ocsp"]["detail"], "pre-signed OCSP responses: 1, all current");
    for check in ["database", "crl", "ocsp", "signing"] {
        assert_eq!(json["checks"][check]["ok"], true, "{json}");
    }

    // A week and a day without a refresh: the CRL (7 days) and the OCSP responses
    // (4 days) are out of date.
    manual.advance(time::Duration::days(8));
    let (code, _, body) = send(&app, get("/ready")).await;
    let json = ready(&body);
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(json["checks"]["crl"]["ok"], false, "{json}");
    assert!(json["checks"]["crl"]["detail"].as_str().unwrap().contains("past its nextUpdate"), "{json}");
    assert_eq!(json["checks"]["ocsp"]["ok"], false, "{json}");
    assert_eq!(json["checks"]["database"]["ok"], true, "{json}");
}
