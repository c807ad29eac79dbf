//! One access-log line per request (`tracing` target `certdesk::access`): method, route,
//! status, latency, client and a request id. The route is the pattern that matched
//! (`/signin/{token}`), never the path itself, so sign-in links, codes and serials in
//! paths stay out of the log; no header, cookie or body is logged. The request id is
//! sent back as `X-Request-Id` and shown in error pages and problem documents, so a
//! user's complaint can be found in the log.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered (`None` outside a request).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A fresh request id: 8 random bytes, hex.
pub(crate) fn new_id() -> String {
    let mut id = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut id);
    hex::encode(id)
}

/// The middleware: answers the request within its id's scope, then logs it.
pub async fn access_log(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = new_id();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or("(no route)", |p| p.as_str()).to_string();
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.record(&route, method.as_str(), response.status().as_u16(), seconds);
    let latency_ms = seconds * 1000.0;
    tracing::info!(
        target: "certdesk::access",
        request_id = %id,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_ms = format!("{latency_ms:.1}"),
        client = client.as_deref().unwrap_or("-"),
        "request"
    );
    response
}
