//! `certdesk serve`'s connections, in front of the router: an accept loop on hyper with
//! the bounds `axum::serve` does not offer (see docs/design/http-server.md).
//!
//! - **Header read time**: a request's header must arrive within `header_timeout`
//!   (hyper's timer starts when the connection waits for a request head, so the same
//!   bound ends idle keep-alive connections).
//! - **Body read time**: the whole body must arrive within `body_timeout` (408), and at
//!   most [`crate::MAX_PORTAL_BODY`] bytes of it are read (413; on `/ocsp` the OCSP
//!   answer `malformedRequest`, as before).
//! - **Connections**: at most `max_connections` at once, and at most
//!   `max_connections_per_client` from one client (an IPv4 address, an IPv6 /64; the
//!   reverse proxies of `[portal] trusted_proxies` are not limited per client). A
//!   connection over a limit is closed at once, before anything is read or allocated
//!   for it.
//! - **Graceful shutdown**: when `shutdown` completes, the listener closes, idle
//!   connections close, requests in flight finish (each connection closes after its
//!   answer) within `shutdown_grace`; what is still running then is cut off.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use certdesk_core::error::{DomainError, ErrorCode};

use crate::AppState;

/// Timeouts and connection limits of the listener (`[http]` in certdesk.toml).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time for a request's header, and for an idle keep-alive connection's next one.
    pub header_timeout: Duration,
    /// Time for a request's whole body.
    pub body_timeout: Duration,
    /// Connections at once.
    pub max_connections: usize,
    /// Connections at once from one client.
    pub max_connections_per_client: usize,
    /// Peers not limited per client (reverse proxies).
    pub proxies: Vec<IpAddr>,
    /// Time requests in flight get to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_client: 64,
            proxies: Vec::new(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How a run of [`serve`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Connections still busy when the grace period ended (cut off).
    pub cut_off: bool,
}

/// The connections open now, in all and per client.
#[derive(Default)]
struct Connections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives its place back.
struct Slot {
    table: Arc<Mutex<Connections>>,
    client: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = match self.table.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        table.total = table.total.saturating_sub(1);
        if let Some(client) = self.client {
            if let Some(count) = table.per_client.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    table.per_client.remove(&client);
                }
            }
        }
    }
}

/// The client a connection counts against, as the request limit counts it: the address,
/// an IPv6 address by its /64, an IPv4-mapped IPv6 address as IPv4.
fn client_of(ip: IpAddr) -> IpAddr {
    crate::ratelimit::network(crate::ratelimit::canonical(ip))
}

fn admit(table: &Arc<Mutex<Connections>>, limits: &ServerLimits, peer: IpAddr) -> Option<Slot> {
    let mut guard = match table.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if guard.total >= limits.max_connections {
        return None;
    }
    let client = (!limits.proxies.contains(&peer)).then(|| client_of(peer));
    if let Some(client) = client {
        let count = guard.per_client.entry(client).or_insert(0);
        if *count >= limits.max_connections_per_client {
            return None;
        }
        *count += 1;
    }
    guard.total += 1;
    Some(Slot { table: table.clone(), client })
}

/// Serves `state`'s router on `listener` until `shutdown` completes, then drains (see
/// the module documentation).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    limits: ServerLimits,
    tls: Option<crate::tls::Tls>,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, DomainError> {
    let router = crate::router(state.clone());
    let router =
        if tls.is_some() { router.layer(axum::middleware::from_fn(strict_transport_security)) } else { router };
    serve_router(listener, state, router, limits, tls, shutdown).await
}

/// Serves only the public status routes (CRL, OCSP, CA certificates, health) over plain
/// HTTP, for relying parties that fetch them so (RFC 5280, RFC 6960) while the portal is
/// served over HTTPS; every other path is redirected to `portal_url`.
pub async fn serve_plain_status(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    portal_url: String,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, DomainError> {
    let router = crate::plain_status_router(state.clone(), portal_url);
    serve_router(listener, state, router, limits, None, shutdown).await
}

/// Serves `GET /metrics` alone (`[http] metrics_listen`), plain HTTP: for a scraper on
/// an internal network, apart from the public listener.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, DomainError> {
    let router = crate::metrics_router(state.clone());
    serve_router(listener, state, router, limits, None, shutdown).await
}

/// HSTS on every answer over HTTPS (a year; not for subdomains, which may be other
/// services).
async fn strict_transport_security(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    response
}

async fn serve_router(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    router: axum::Router,
    limits: ServerLimits,
    tls: Option<crate::tls::Tls>,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, DomainError> {
    let rules = BodyRules { state: state.clone(), allowed: limits.body_timeout };
    let app = router
        .layer(axum::middleware::from_fn_with_state(rules, read_body_within))
        .layer(axum::middleware::from_fn_with_state(state, crate::access_log::access_log));
    let table = Arc::new(Mutex::new(Connections::default()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(64 * 1024);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: go
                    // on after a pause rather than spin or stop serving.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = admit(&table, &limits, peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let (watcher, http, tls) = (graceful.watcher(), http.clone(), tls.clone());
        let handshake_time = limits.header_timeout;
        tokio::spawn(async move {
            // A client that goes away or sends garbage ends its own connection only.
            match tls {
                None => {
                    let _ = watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await;
                }
                Some(tls) => {
                    // The handshake is bounded like a request header.
                    if let Ok(Ok(stream)) = tokio::time::timeout(handshake_time, tls.acceptor().accept(stream)).await {
                        let _ = watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await;
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let cut_off = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err();
    Ok(Stopped { cut_off })
}

/// What [`read_body_within`] needs.
#[derive(Clone)]
struct BodyRules {
    state: Arc<AppState>,
    allowed: Duration,
}

/// Reads the request body within the time allowed, at most [`crate::MAX_PORTAL_BODY`]
/// bytes (every route's limit), and hands the request on with the body read.
async fn read_body_within(State(rules): State<BodyRules>, request: Request, next: Next) -> Response {
    let allowed = rules.allowed;
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, crate::MAX_PORTAL_BODY);
    let error = match tokio::time::timeout(allowed, limited.collect()).await {
        Ok(Ok(collected)) => return next.run(Request::from_parts(parts, Body::from(collected.to_bytes()))).await,
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            if parts.uri.path().starts_with("/ocsp") {
                // An oversized OCSP request is malformed (RFC 6960), not an HTTP error.
                rules.state.metrics.record_ocsp(certdesk_core::ports::OcspOutcome::Malformed);
                return crate::ocsp_malformed_response();
            }
            DomainError::new(ErrorCode::TooLarge, crate::texts::EN.request_too_large)
        }
        // The client closed or broke the body: nobody is left to read an answer.
        Ok(Err(_)) => DomainError::new(ErrorCode::BadInput, "the request body could not be read"),
        Err(_) => DomainError::new(ErrorCode::RequestTimeout, crate::texts::EN.request_too_slow),
    };
    let mut response = crate::portal::request_refused(&rules.state, &parts, &error);
    // What is left of the body is not read: the connection cannot carry another request.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response.into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_address_and_ipv6_by_64() {
        let limits = ServerLimits {
            max_connections: 5,
            max_connections_per_client: 2,
            proxies: vec!["10.0.0.1".parse().unwrap()],
            ..ServerLimits::default()
        };
        let table = Arc::new(Mutex::new(Connections::default()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = admit(&table, &limits, a).unwrap();
        let _second = admit(&table, &limits, a).unwrap();
        assert!(admit(&table, &limits, a).is_none(), "a third connection of one client");
        // The same client as an IPv4-mapped address.
        assert!(admit(&table, &limits, "::ffff:192.0.2.1".parse().unwrap()).is_none());
        drop(first);
        let _third = admit(&table, &limits, a).expect("a place given back is free again");
        // Two addresses of one /64 are one client.
        let _v6 = admit(&table, &limits, "2001:db8::1".parse().unwrap()).unwrap();
        let _v6b = admit(&table, &limits, "2001:db8::2".parse().unwrap()).unwrap();
        assert!(admit(&table, &limits, "2001:db8::3".parse().unwrap()).is_none());
        // A proxy is not limited per client, but counts in all: 5 is the limit.
        let _proxy = admit(&table, &limits, "10.0.0.1".parse().unwrap()).unwrap();
        assert!(admit(&table, &limits, "10.0.0.1".parse().unwrap()).is_none(), "over the total");
        assert_eq!(table.lock().unwrap().total, 5);
    }
}
