//! Single sign-on pages: `GET /signin/oidc` sends the browser to the organisation's
//! OpenID Connect provider; `GET /signin/oidc/callback` comes back with `code` and
//! `state`, starts the session and goes to `/` (staff then to `/second-factor`).
//!
//! The `state` is kept server-side (hashed, 10 minutes, single use) and also bound to
//! the browser with a short-lived cookie, so a callback URL made in someone else's
//! browser (login CSRF) does not sign this browser in.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{cookies, AppState, Ctx, Fields};
use certdesk_core::error::{DomainError, ErrorCode};

/// The cookie binding a login in progress to the browser.
pub const OIDC_COOKIE: &str = "certdesk_oidc";

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/signin/oidc", get(start)).route("/signin/oidc/callback", get(callback))
}

/// The text of the sign-in page's single sign-on link (`None` when not configured).
pub(super) fn button_text(ctx: &Ctx) -> Option<String> {
    let section = ctx.portal.single_sign_on()?;
    Some(section.display_name.clone().unwrap_or_else(|| ctx.texts.sso_default_name.to_string()))
}

fn binding_cookie(ctx: &Ctx, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if ctx.portal.public_url().starts_with("https://") { "; Secure" } else { "" };
    // SameSite=Lax: the provider sends the browser back with a top-level GET.
    HeaderValue::from_str(&format!(
        "{OIDC_COOKIE}={value}; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

async fn start(ctx: Ctx) -> Response {
    let (url, state) = match ctx.portal.oidc_start().await {
        Ok(x) => x,
        Err(e) => return ctx.error(&e),
    };
    let Ok(location) = HeaderValue::from_str(&url) else {
        return ctx.error(&DomainError::new(ErrorCode::Internal, "the authorization URL is not a header value"));
    };
    let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let max_age = certdesk_desk::oidc::PENDING_MINUTES * 60;
    if let Some(cookie) = binding_cookie(&ctx, &state, max_age) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn callback(ctx: Ctx, headers: HeaderMap, Query(params): Query<Fields>) -> Response {
    let state = params.get("state").map(String::as_str).unwrap_or_default();
    let bound = cookies(&headers).get(OIDC_COOKIE).is_some_and(|cookie| {
        !state.is_empty() && verify_slices_are_equal(cookie.as_bytes(), state.as_bytes()).is_ok()
    });
    let result = if bound {
        let code = params.get("code").map(String::as_str);
        let error = params.get("error").map(String::as_str);
        Some(ctx.portal.oidc_complete(state, code, error).await)
    } else {
        None
    };
    let mut response = match result {
        Some(Ok(session)) => super::signed_in(&ctx, &session.token),
        Some(Err(e)) => ctx.error(&e),
        None => ctx.fail(ErrorCode::Unauthenticated, ctx.texts.sso_not_started_here),
    };
    if let Some(cookie) = binding_cookie(&ctx, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
