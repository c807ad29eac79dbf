//! The HTTP service (axum): public status endpoints, the portal's pages and the REST
//! API. Handlers extract, call the desk or the status port, render; this crate cannot
//! touch SQL or a signing key (it depends on neither `certdesk-store` nor
//! `certdesk-ca`).
#![doc = include_str!("../README.md")]
//!
//! | route | serves |
//! |---|---|
//! | `GET /health` | `{"status":"ok"}`: the process answers |
//! | `GET /ready` | 200 or 503 with the checks (database, CRL, OCSP, signing certificates) in JSON |
//! | `GET /ca/issuing.crt`, `GET /ca/root.crt` | CA certificates, DER (`application/pkix-cert`) |
//! | `GET /ca/chain.pem` | issuing CA then root, PEM |
//! | `GET /crl/issuing.crl` | the current CRL, DER (`application/pkix-crl`), cacheable until nextUpdate |
//! | `GET /crl/root.crl` | the root's CRL of CA certificates, DER (`DATA/ca/root.crl`) |
//! | `POST /ocsp`, `GET /ocsp/{base64}` | OCSP (RFC 6960 appendix A; RFC 5019 caching headers on GET) |

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use time::OffsetDateTime;

use certdesk_core::clock::Clock;
use certdesk_core::ports::{OcspAnswer, StatusPublisher};

/// Standard base64, padding optional (RFC 6960 appendix A.1 GET requests).
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Largest OCSP request body accepted (RFC 6960 requests are a few hundred bytes).
pub const MAX_OCSP_REQUEST: usize = 64 * 1024;

pub mod access_log;
pub mod api;
pub mod error;
pub mod html;
pub mod ldap;
pub mod metrics;
pub mod pages;
pub mod portal;
pub mod ratelimit;
pub mod server;
pub mod texts;
pub mod tls;

/// Largest portal form or API body accepted (a CSR is a few KiB).
pub const MAX_PORTAL_BODY: usize = 64 * 1024;

/// Shared state of the service.
pub struct AppState {
    /// OCSP and CRL.
    pub status: Arc<dyn StatusPublisher>,
    /// Issuing CA then root, DER.
    pub chain: Vec<Vec<u8>>,
    /// The clock (cache headers).
    pub clock: Arc<dyn Clock>,
    /// The registration desk (web pages and REST API), if enabled.
    pub portal: Option<Arc<certdesk_desk::portal::Portal>>,
    /// The root's CRL of CA certificates (`DATA/ca/root.crl`), read at each request:
    /// `certdesk crl --root` replaces it while `serve` runs.
    pub root_crl: Option<std::path::PathBuf>,
    /// The portal's per-client request limit (`[portal] rate_limit_per_minute`).
    pub limiter: Option<ratelimit::RateLimiter>,
    /// `GET /metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Whether `/metrics` is served on its own listener ([`server::serve_metrics`])
    /// rather than on the main one.
    pub metrics_apart: bool,
}

impl AppState {
    /// The state of `serve`: the request limit comes from the portal's configuration.
    pub fn new(
        status: Arc<dyn StatusPublisher>,
        chain: Vec<Vec<u8>>,
        clock: Arc<dyn Clock>,
        portal: Option<Arc<certdesk_desk::portal::Portal>>,
        root_crl: Option<std::path::PathBuf>,
    ) -> Result<Self, certdesk_core::error::DomainError> {
        let limiter =
            match &portal {
                Some(portal) => {
                    Some(ratelimit::RateLimiter::new(portal.config().raw.portal.rate_limit().map_err(|e| {
                        certdesk_core::error::DomainError::new(certdesk_core::error::ErrorCode::Config, e)
                    })?))
                }
                None => None,
            };
        Ok(Self {
            status,
            chain,
            clock,
            portal,
            root_crl,
            limiter,
            metrics: Arc::new(metrics::Metrics::new()),
            metrics_apart: false,
        })
    }
}

/// Security headers for every answer: no framing, no sniffing, no referrer (sign-in
/// and validation links carry secrets in their path), and a CSP that allows no script.
async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

/// The router of `certdesk serve`.
pub fn router(state: Arc<AppState>) -> Router {
    let portal = portal::routes()
        .merge(api::routes())
        .fallback(portal::not_found)
        .method_not_allowed_fallback(portal::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_PORTAL_BODY))
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state.clone());
    let routes = status_routes(state.clone()).merge(portal);
    let routes = if state.metrics_apart { routes } else { routes.merge(metrics_router(state)) };
    routes.layer(axum::middleware::from_fn(security_headers))
}

/// `GET /metrics` alone, for its own listener.
pub(crate) fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new().route("/metrics", get(metrics_text)).with_state(state)
}

/// `GET /metrics` (see [`metrics`]).
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let checks = state.status.readiness().await;
    let crl = state.status.crl().map(|c| (c.this_update, c.next_update));
    let figures = match state.status.figures().await {
        Ok(figures) => Some(figures),
        Err(e) => {
            // The readiness checks show the database down; the rest is still worth serving.
            tracing::warn!("metrics: the database figures could not be read: {e}");
            None
        }
    };
    match state.metrics.render(crl, state.clock.now().unix_timestamp(), &checks, figures.as_ref()) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The router of the plain-HTTP status listener (beside an HTTPS one): the status
/// routes, and a redirect to the portal for everything else.
pub fn plain_status_router(state: Arc<AppState>, portal_url: String) -> Router {
    let portal_url = portal_url.trim_end_matches('/').to_string();
    status_routes(state)
        .fallback(move |uri: Uri| {
            let target = format!("{portal_url}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
            async move {
                match HeaderValue::from_str(&target) {
                    Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
                    Err(_) => StatusCode::NOT_FOUND.into_response(),
                }
            }
        })
        .layer(axum::middleware::from_fn(security_headers))
}

/// The portal's per-client limit (`crate::ratelimit`) on requests that change
/// something and on directory searches; the client comes from the connection
/// (`serve` runs with `ConnectInfo`), requests without one are not limited.
async fn rate_limit(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let limited = !matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD)
        || path == "/directory"
        || path == "/api/v1/directory";
    let peer = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if let (true, Some(portal), Some(limiter), Some(peer)) = (limited, &state.portal, &state.limiter, peer) {
        let client = limiter.client(peer, request.headers());
        if let Err(wait) = limiter.take(client, tokio::time::Instant::now()) {
            return portal::too_many_requests(
                portal,
                request.uri().query(),
                request.headers(),
                path.starts_with("/api/"),
                wait,
            );
        }
    }
    next.run(request).await
}

fn status_routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/ca/issuing.crt", get(issuing_cert))
        .route("/ca/root.crt", get(root_cert))
        .route("/ca/chain.pem", get(chain_pem))
        .route("/crl/issuing.crl", get(crl))
        .route("/crl/root.crl", get(root_crl))
        .route("/ocsp", axum::routing::post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        // The OCSP handler enforces its own limit and answers malformedRequest.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn health() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#).into_response()
}

/// `GET /ready`: 200 when every check passes, else 503; the checks with reasons in JSON
/// (for load balancers and monitoring; nothing in it is secret).
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let checks = state.status.readiness().await;
    let ready = checks.iter().all(|c| c.ok);
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": checks
            .iter()
            .map(|c| (c.name.to_string(), serde_json::json!({ "ok": c.ok, "detail": c.detail })))
            .collect::<serde_json::Map<_, _>>(),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response()
}

fn der_response(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn issuing_cert(State(state): State<Arc<AppState>>) -> Response {
    match state.chain.first() {
        Some(der) => der_response("application/pkix-cert", der.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn root_cert(State(state): State<Arc<AppState>>) -> Response {
    match state.chain.last() {
        Some(der) => der_response("application/pkix-cert", der.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn root_crl(State(state): State<Arc<AppState>>, request: HeaderMap) -> Response {
    let Some(path) = state.root_crl.clone() else { return StatusCode::NOT_FOUND.into_response() };
    match tokio::fs::read(&path).await {
        Ok(der) => match certdesk_core::records::root_crl_dates(&der) {
            Ok((this_update, next_update)) => {
                cacheable(&request, "application/pkix-crl", &der, state.clock.now(), this_update, next_update)
            }
            Err(_) => der_response("application/pkix-crl", der),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn chain_pem(State(state): State<Arc<AppState>>) -> Response {
    let mut text = String::new();
    for der in &state.chain {
        match der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der) {
            Ok(pem) => text.push_str(&pem),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
    ([(header::CONTENT_TYPE, "application/pem-certificate-chain")], text).into_response()
}

/// A cacheable DER response (RFC 5019 6.2): `Cache-Control` and `Expires` so caches
/// keep it until `next_update`, `Last-Modified` (`produced_at`, when it was signed) and
/// an `ETag` (the SHA-256 of the body); a request whose `If-None-Match` names that ETag
/// gets 304. Times are Unix seconds.
fn cacheable(
    request: &HeaderMap,
    content_type: &'static str,
    der: &[u8],
    now: OffsetDateTime,
    produced_at: i64,
    next_update: i64,
) -> Response {
    let etag = format!("\"{}\"", hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)));
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*");
    let mut response =
        if matches { StatusCode::NOT_MODIFIED.into_response() } else { der_response(content_type, der.to_vec()) };
    let headers = response.headers_mut();
    let max_age = (next_update - now.unix_timestamp()).max(0);
    if let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}, public, no-transform, must-revalidate")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    let http_date = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    for (name, at) in [(header::EXPIRES, next_update), (header::LAST_MODIFIED, produced_at)] {
        let value = OffsetDateTime::from_unix_timestamp(at).ok().and_then(|at| at.format(&http_date).ok());
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

async fn crl(State(state): State<Arc<AppState>>, request: HeaderMap) -> Response {
    let Some(crl) = state.status.crl() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no CRL has been issued yet").into_response();
    };
    cacheable(&request, "application/pkix-crl", &crl.der, state.clock.now(), crl.this_update, crl.next_update)
}

fn ocsp_response(state: &AppState, answer: OcspAnswer, request: Option<&HeaderMap>) -> Response {
    state.metrics.record_ocsp(answer.outcome);
    match (request, answer.produced_at, answer.next_update) {
        (Some(request), Some(produced_at), Some(next_update)) => cacheable(
            request,
            "application/ocsp-response",
            &answer.der,
            state.clock.now(),
            produced_at.unix_timestamp(),
            next_update.unix_timestamp(),
        ),
        _ => {
            let mut response = der_response("application/ocsp-response", answer.der.as_ref().clone());
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}

async fn ocsp_post(State(state): State<Arc<AppState>>, body: Body) -> Response {
    // An oversized body is a malformed OCSP request, answered as such (not HTTP 413).
    let answer = match axum::body::to_bytes(body, MAX_OCSP_REQUEST).await {
        Ok(bytes) => state.status.answer_ocsp(&bytes).await,
        Err(_) => malformed(),
    };
    ocsp_response(&state, answer, None)
}

/// Decodes `%XX` escapes; `None` for a broken escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// The OCSP answer to a malformed request, as HTTP sends it.
pub(crate) fn ocsp_malformed_response() -> Response {
    let mut response = der_response("application/ocsp-response", malformed().der.as_ref().clone());
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn malformed() -> OcspAnswer {
    OcspAnswer {
        outcome: certdesk_core::ports::OcspOutcome::Malformed,
        der: Arc::new(certdesk_pki::ocsp::error_response(certdesk_pki::ocsp::ErrorStatus::MalformedRequest)),
        next_update: None,
        produced_at: None,
    }
}

async fn ocsp_get(State(state): State<Arc<AppState>>, uri: Uri, request: HeaderMap) -> Response {
    // RFC 6960 appendix A.1: base64 of the DER request, URL-encoded. Anything that does
    // not decode is a malformed OCSP request, answered as such.
    let encoded = uri.path().strip_prefix("/ocsp/").unwrap_or_default();
    let der = percent_decode(encoded).and_then(|text| BASE64.decode(text).ok());
    let answer = match der {
        Some(der) if der.len() <= MAX_OCSP_REQUEST => state.status.answer_ocsp(&der).await,
        _ => malformed(),
    };
    ocsp_response(&state, answer, Some(&request))
}
