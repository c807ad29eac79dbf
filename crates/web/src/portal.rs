//! The web portal: server-rendered pages for applicants, registration officers and
//! administrators, and the public directory. Handlers extract, fetch everything the
//! page needs from [`Portal`], then render it with a pure function of
//! [`crate::pages`] in the request's language ([`crate::texts`]).
//!
//! Every POST form carries a CSRF token: the session's token once signed in, a
//! double-submit cookie before. Session cookies are HttpOnly, SameSite=Lax, and Secure
//! when the portal's public URL is https.

// The early returns of the handlers are whole responses (an error page or a redirect);
// they are made once per request, so their size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::extract::{FromRequest, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use zeroize::Zeroizing;

use super::html::{Page, User};
use super::pages;
use super::texts::{texts, Texts};
use super::AppState;
use base64::Engine as _;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_desk::advisor::MailClient;
use certdesk_desk::mail::Lang;
use certdesk_desk::portal::{Actor, ApplicationForm, EvidenceForm, Portal, Role};

mod oidc;

/// The session cookie.
pub const SESSION_COOKIE: &str = "certdesk_session";
/// The pre-session CSRF cookie (double submit).
pub const CSRF_COOKIE: &str = "certdesk_csrf";
/// The language cookie.
pub const LANG_COOKIE: &str = "certdesk_lang";
/// The page to return to after signing in (the mailbox link opened where one was not
/// signed in), base64url, an hour.
pub const NEXT_COOKIE: &str = "certdesk_next";

type Fields = HashMap<String, String>;

/// The request context of a page: language, the signed-in actor, cookies.
pub struct Ctx {
    /// The page language.
    pub lang: Lang,
    /// The texts of that language.
    pub texts: &'static Texts,
    /// Who is signed in.
    pub actor: Option<Actor>,
    /// The pre-session CSRF cookie, if the browser has one.
    pre_csrf: Option<String>,
    /// A language chosen with `?lang=`, to remember in a cookie.
    chosen_lang: Option<Lang>,
    /// The page to return to after signing in ([`NEXT_COOKIE`]), checked.
    next: Option<String>,
    portal: Arc<Portal>,
}

fn cookies(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    query?.split('&').find_map(|pair| match pair {
        "lang=de" => Some(Lang::De),
        "lang=en" => Some(Lang::En),
        _ => None,
    })
}

fn accept_lang(headers: &HeaderMap) -> Lang {
    let value = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let first = value.split(',').next().unwrap_or_default().trim().to_ascii_lowercase();
    if first.starts_with("de") {
        Lang::De
    } else {
        Lang::En
    }
}

/// The language of a request: `?lang=`, else the language cookie, else
/// `Accept-Language`.
fn request_lang(query: Option<&str>, headers: &HeaderMap) -> Lang {
    query_lang(query)
        .or_else(|| cookies(headers).get(LANG_COOKIE).map(|v| Lang::from_tag(v)))
        .unwrap_or_else(|| accept_lang(headers))
}

/// Rejection of [`Ctx`]: the portal is not configured, or the session lookup failed.
pub struct NoPortal(Response);

impl IntoResponse for NoPortal {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = NoPortal;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let lang = request_lang(parts.uri.query(), &parts.headers);
        let Some(portal) = state.portal.clone() else {
            return Err(NoPortal((StatusCode::NOT_FOUND, texts(lang).portal_disabled).into_response()));
        };
        let jar = cookies(&parts.headers);
        let actor = match jar.get(SESSION_COOKIE) {
            Some(token) => match portal.actor(token).await {
                Ok(actor) => actor,
                Err(e) => return Err(NoPortal(desk_error_page(&portal, texts(lang), None, &e))),
            },
            None => None,
        };
        Ok(Ctx {
            lang,
            texts: texts(lang),
            actor,
            pre_csrf: jar.get(CSRF_COOKIE).cloned(),
            chosen_lang: query_lang(parts.uri.query()),
            next: jar.get(NEXT_COOKIE).and_then(|v| return_path(v)),
            portal,
        })
    }
}

impl Ctx {
    fn page(&self, status: StatusCode, title: &str, body: Markup) -> Response {
        let organization = self.portal.organization();
        let html =
            Page { texts: self.texts, organization: &organization, title, user: user_of(self.actor.as_ref()), body }
                .render();
        let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
        if let Some(lang) = self.chosen_lang {
            let secure = secure_attribute(&self.portal);
            let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{secure}", lang.tag());
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    fn ok(&self, title: &str, body: Markup) -> Response {
        self.page(StatusCode::OK, title, body)
    }

    /// The error page of a desk error, in the page's language.
    fn error(&self, e: &DomainError) -> Response {
        desk_error_page(&self.portal, self.texts, self.actor.as_ref(), e)
    }

    /// The error page of a refusal of the web tier (`message` from the catalogue).
    fn fail(&self, code: ErrorCode, message: &str) -> Response {
        error_page(&self.portal, self.texts, self.actor.as_ref(), code, message)
    }

    /// The signed-in actor, or the sign-in page (401).
    fn signed_in(&self) -> Result<&Actor, Response> {
        match &self.actor {
            Some(actor) => Ok(actor),
            None => Err(self.fail(ErrorCode::Unauthenticated, self.texts.please_sign_in)),
        }
    }

    /// The signed-in actor after checking the form's CSRF token (403 if wrong).
    fn checked(&self, fields: &Fields) -> Result<&Actor, Response> {
        let actor = self.signed_in()?;
        let sent = fields.get("csrf").map(String::as_str).unwrap_or_default();
        if verify_slices_are_equal(sent.as_bytes(), actor.session.csrf.as_bytes()).is_err() {
            return Err(self.fail(ErrorCode::Forbidden, self.texts.csrf_wrong));
        }
        Ok(actor)
    }

    /// Checks the double-submit token of a form sent before sign-in.
    fn checked_pre(&self, fields: &Fields) -> Result<(), Response> {
        let sent = fields.get("csrf").map(String::as_str).unwrap_or_default();
        match &self.pre_csrf {
            Some(cookie) if !sent.is_empty() && verify_slices_are_equal(sent.as_bytes(), cookie.as_bytes()).is_ok() => {
                Ok(())
            }
            _ => Err(self.fail(ErrorCode::Forbidden, self.texts.csrf_wrong)),
        }
    }

    /// After a form's action: a redirect to `to(value)` on success, else the error page.
    fn after<T>(&self, result: Result<T, DomainError>, to: impl FnOnce(T) -> String) -> Response {
        match result {
            Ok(value) => redirect(&to(value)),
            Err(e) => self.error(&e),
        }
    }

    /// A staff member who has not yet given the second factor is sent there first.
    fn needs_second_factor(&self) -> Option<Response> {
        self.actor.as_ref().filter(|a| a.needs_second_factor()).map(|_| redirect("/second-factor").into_response())
    }
}

fn user_of(actor: Option<&Actor>) -> Option<User<'_>> {
    actor.map(|a| User { email: a.email(), role: a.role.name(), csrf: a.session.csrf.as_str() })
}

/// The value of a `Result<T, Response>`, or that response returned from the handler.
macro_rules! or_return {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}

/// An error page: the status of `code`, `message` (already in the page's language) and
/// a way back (to sign in, when that is what is missing).
fn error_page(portal: &Portal, t: &'static Texts, actor: Option<&Actor>, code: ErrorCode, message: &str) -> Response {
    let status = super::error::status_of(code);
    let sign_in_link = code == ErrorCode::Unauthenticated && actor.is_none();
    let title = match status {
        // A wrong code (mailbox value, authenticator) is not a missing sign-in.
        _ if code == ErrorCode::WrongCode => t.title_wrong_code,
        StatusCode::NOT_FOUND => t.title_not_found,
        StatusCode::FORBIDDEN => t.title_forbidden,
        StatusCode::UNAUTHORIZED => t.title_unauthenticated,
        StatusCode::INTERNAL_SERVER_ERROR => t.title_internal,
        _ => t.title_failed,
    };
    let organization = portal.organization();
    let page = pages::error(t, message, sign_in_link);
    // The request id, so that a complaint can be found in the access log.
    let body = match crate::access_log::current_request_id() {
        Some(id) => maud::html! { (page) p { small { (t.request_id_label) ": " (id) } } },
        None => page,
    };
    let html = Page { texts: t, organization: &organization, title, user: user_of(actor), body }.render();
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The error page of a desk error: internal failures are logged with a request id and
/// answered generically, other sentences are shown in the page's language.
fn desk_error_page(portal: &Portal, t: &'static Texts, actor: Option<&Actor>, e: &DomainError) -> Response {
    let message = match super::error::public_message(e) {
        (_, Some(request_id)) => (t.internal_error)(&request_id),
        (_, None) => t.error_message(e),
    };
    error_page(portal, t, actor, e.code(), &message)
}

/// The answer to a client over the request limit: 429 with `Retry-After`, a problem
/// document for the REST API, an error page for the portal.
pub(super) fn too_many_requests(
    portal: &Portal,
    query: Option<&str>,
    headers: &HeaderMap,
    api: bool,
    wait: u64,
) -> Response {
    let lang = request_lang(query, headers);
    let message = (texts(lang).too_many_requests)(wait);
    let mut response = if api {
        super::error::Problem(DomainError::new(ErrorCode::TooManyRequests, (super::texts::EN.too_many_requests)(wait)))
            .into_response()
    } else {
        error_page(portal, texts(lang), None, ErrorCode::TooManyRequests, &message)
    };
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    response
}

/// The answer to a request refused before any handler ran (a body too large or too
/// slow): a problem document under `/api/`, else a page of the portal in the request's
/// language.
pub(super) fn request_refused(state: &AppState, parts: &axum::http::request::Parts, error: &DomainError) -> Response {
    match &state.portal {
        Some(portal) if !parts.uri.path().starts_with("/api/") => {
            let t = texts(request_lang(parts.uri.query(), &parts.headers));
            desk_error_page(portal, t, None, error)
        }
        _ => super::error::Problem(DomainError::new(error.code(), error.to_string())).into_response(),
    }
}

/// The answer to a path that no route serves: a problem document under `/api/`, else a
/// page of the portal in the request's language.
pub(super) async fn not_found(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Response {
    let path = request.uri().path();
    match &state.portal {
        _ if path.starts_with("/api/") => {
            super::error::Problem(DomainError::new(ErrorCode::NotFound, "no such resource")).into_response()
        }
        Some(portal) => {
            let t = texts(request_lang(request.uri().query(), request.headers()));
            error_page(portal, t, None, ErrorCode::NotFound, t.page_not_found)
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A request with a method its route does not take. A GET (the language link on a page
/// that answered a form, a bookmarked form address) goes to the start page in the
/// language asked for; anything else gets our error page (405) or, under `/api/`, a
/// problem document: never an empty answer.
pub(super) async fn method_not_allowed(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Response {
    let path = request.uri().path();
    let method = request.method().clone();
    match &state.portal {
        _ if path.starts_with("/api/") => super::error::Problem(DomainError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on this resource"),
        ))
        .into_response(),
        Some(_) if method == axum::http::Method::GET || method == axum::http::Method::HEAD => {
            // Only the language travels along: nothing else of the address is trusted.
            match query_lang(request.uri().query()) {
                Some(Lang::De) => redirect("/?lang=de"),
                Some(Lang::En) => redirect("/?lang=en"),
                None => redirect("/"),
            }
        }
        Some(portal) => {
            let t = texts(request_lang(request.uri().query(), request.headers()));
            error_page(portal, t, None, ErrorCode::MethodNotAllowed, t.method_not_allowed)
        }
        None => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// A 303 redirect that never panics: a target that is not a valid header value (it
/// cannot be: targets are our own paths and ids) goes to the start page instead.
/// The path a [`NEXT_COOKIE`] names, if it is one we send people back to: exactly a
/// mailbox link of ours, `/validate/ID?value=VALUE` with the id and the value
/// percent-encoded as `validate_page` wrote them (never another site, another page, or
/// a dot segment).
fn return_path(cookie: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cookie).ok()?;
    let path = String::from_utf8(bytes).ok()?;
    let (id, value) = path.strip_prefix("/validate/")?.split_once("?value=")?;
    let id_ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let value_ok = value.len() <= 200
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b'%'));
    (id_ok && value_ok).then_some(path)
}

/// The answer to a completed sign-in (mailed link or single sign-on): the session
/// cookie, and back to the mailbox link that sent the person to sign in, else the
/// start page; the return path is used up.
pub(crate) fn signed_in(ctx: &Ctx, token: &str) -> Response {
    let mut response = redirect(ctx.next.as_deref().unwrap_or("/"));
    if let Some(cookie) = session_cookie(&ctx.portal, token, certdesk_desk::portal::SESSION_HOURS * 3600) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    if ctx.next.is_some() {
        append_clear_next(ctx, &mut response);
    }
    response
}

/// Removes the [`NEXT_COOKIE`].
fn append_clear_next(ctx: &Ctx, response: &mut Response) {
    let secure = secure_attribute(&ctx.portal);
    let cookie = format!("{NEXT_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn redirect(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map(String::as_str).unwrap_or_default()
}

/// An error page for a request that could not be read (before the handler ran).
fn unreadable_page(state: &AppState, parts: &Parts, status: StatusCode, detail: &str) -> Response {
    let Some(portal) = &state.portal else { return (status, detail.to_string()).into_response() };
    let t = texts(request_lang(parts.uri.query(), &parts.headers));
    let mut response = error_page(portal, t, None, ErrorCode::BadInput, t.form_unreadable);
    *response.status_mut() = status;
    response
}

/// A url-encoded form; one that cannot be read is answered with an error page of the
/// portal (same status as axum's own rejection).
struct Form(Fields);

impl FromRequest<Arc<AppState>> for Form {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let request = axum::extract::Request::from_parts(parts.clone(), body);
        match axum::Form::<Fields>::from_request(request, state).await {
            Ok(axum::Form(fields)) => Ok(Form(fields)),
            Err(rejection) => Err(unreadable_page(state, &parts, rejection.status(), &rejection.body_text())),
        }
    }
}

/// `; Secure` when the portal is served over HTTPS: every cookie of ours (session,
/// CSRF, language) then travels only over TLS.
fn secure_attribute(portal: &Portal) -> &'static str {
    if portal.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

fn session_cookie(portal: &Portal, token: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = secure_attribute(portal);
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// The routes of the portal.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/signin", post(request_sign_in))
        .route("/signin/{token}", get(confirm_sign_in).post(complete_sign_in))
        .route("/signout", post(sign_out))
        .route("/second-factor", get(second_factor_page).post(second_factor))
        .route("/apply", get(apply_page).post(apply))
        .route("/applications/{id}", get(application_page))
        .route("/applications/{id}/validate", get(validate_page).post(validate))
        .route("/validate/{id}", get(validate_page))
        .route("/applications/{id}/resend", post(resend))
        .route("/applications/{id}/book", post(book))
        .route("/applications/{id}/appointment/cancel", post(cancel_appointment))
        .route("/applications/{id}/withdraw", post(withdraw))
        .route("/applications/{id}/csr", post(issue_csr))
        .route("/applications/{id}/p12", post(issue_p12))
        .route("/applications/{id}/p12/saved", post(p12_saved))
        .route("/certificates/{file}", get(download_certificate))
        .route("/certificates/{serial}/revoke", post(revoke))
        .route("/certificates/{serial}/renew", post(renew))
        .route("/officer", get(officer_queue))
        .route("/officer/applications/{id}", get(officer_application))
        .route("/officer/applications/{id}/identity", post(officer_identity))
        .route("/officer/applications/{id}/approve", post(officer_approve))
        .route("/officer/applications/{id}/reject", post(officer_reject))
        .route("/officer/applications/{id}/appointment/cancel", post(officer_cancel_appointment))
        .route("/officer/slots", get(officer_slots).post(officer_add_slot))
        .route("/officer/slots/{slot}/remove", post(officer_remove_slot))
        .route("/officer/certificates", get(officer_certificates))
        .route("/recoveries", get(recoveries_page).post(request_recovery))
        .route("/recoveries/successor", post(request_successor_recovery))
        .route("/recoveries/{id}", get(recovery_page))
        .route("/recoveries/{id}/identity", post(recovery_identity))
        .route("/recoveries/{id}/share", post(recovery_share))
        .route("/recoveries/{id}/p12", post(recovery_p12))
        .route("/recoveries/{id}/cancel", post(recovery_cancel))
        .route("/admin", get(admin_page))
        .route("/admin/users", post(admin_add_user))
        .route("/admin/users/change", post(admin_change_user))
        .route("/admin/profiles", post(admin_set_profile))
        .route("/admin/audit", get(admin_audit))
        .route("/directory", get(directory_page))
        .route("/install", get(install_page))
        .route("/directory/{file}", get(directory_download))
        .merge(oidc::routes())
}
// ---------------------------------------------------------------------------------------
// Sign-in

async fn home(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let Some(actor) = &ctx.actor else { return sign_in_page(&ctx, None) };
    let apps = or_return!(ctx.portal.my_applications(actor).await.map_err(|e| ctx.error(&e)));
    let certs = or_return!(ctx.portal.my_certificates(actor).await.map_err(|e| ctx.error(&e)));
    ctx.ok(ctx.texts.your_certificates, pages::home(ctx.texts, ctx.portal.zone(), &apps, &certs, &actor.session.csrf))
}

fn sign_in_page(ctx: &Ctx, notice: Option<&str>) -> Response {
    let token = match &ctx.pre_csrf {
        Some(t) => t.clone(),
        None => {
            let mut b = [0u8; 24];
            let _ = aws_lc_rs::rand::fill(&mut b);
            hex::encode(b)
        }
    };
    let single_sign_on = oidc::button_text(ctx);
    let body = pages::sign_in(ctx.texts, notice, single_sign_on.as_deref(), &token);
    let mut response = ctx.ok(ctx.texts.sign_in, body);
    if ctx.pre_csrf.is_none() {
        let secure = secure_attribute(&ctx.portal);
        if let Ok(v) =
            HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"))
        {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

async fn request_sign_in(ctx: Ctx, Form(fields): Form) -> Response {
    if let Err(r) = ctx.checked_pre(&fields) {
        return r;
    }
    match ctx.portal.request_sign_in(field(&fields, "email"), ctx.lang.tag()).await {
        Ok(()) => sign_in_page(&ctx, Some(ctx.texts.sign_in_link_sent)),
        Err(e) => ctx.error(&e),
    }
}

/// The link from the mail opens a confirmation page; only its button (a POST) uses the
/// token, so mail scanners that follow links do not use it up.
async fn confirm_sign_in(ctx: Ctx, Path(token): Path<String>) -> Response {
    let mut response = ctx.ok(ctx.texts.sign_in, pages::confirm_sign_in(ctx.texts, &token));
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn complete_sign_in(ctx: Ctx, Path(token): Path<String>) -> Response {
    // The token itself is the proof (single use, 15 minutes, 256 bits): no CSRF token
    // is needed, and a forged POST could only sign the victim into the sender's account
    // if the attacker gave away their own fresh link.
    match ctx.portal.complete_sign_in(&token).await {
        Ok(session) => signed_in(&ctx, &session.token),
        Err(e) => ctx.error(&e),
    }
}

async fn sign_out(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    if let Err(e) = ctx.portal.sign_out(actor).await {
        return ctx.error(&e);
    }
    let mut response = redirect("/").into_response();
    if let Some(cookie) = session_cookie(&ctx.portal, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    // A shared computer: the next person is not sent to this person's mailbox link.
    append_clear_next(&ctx, &mut response);
    response
}

async fn second_factor_page(ctx: Ctx) -> Response {
    let actor = or_return!(ctx.signed_in());
    if actor.role == Role::Applicant {
        return redirect("/").into_response();
    }
    let csrf = actor.session.csrf.as_str();
    let body = if actor.user.totp_secret.is_none() {
        let (sealed, uri, key) = match ctx.portal.new_totp(actor) {
            Ok(x) => x,
            Err(e) => return ctx.error(&e),
        };
        pages::enrol_second_factor(ctx.texts, &key, &uri, &sealed, csrf)
    } else {
        pages::second_factor(ctx.texts, csrf)
    };
    ctx.ok(ctx.texts.second_factor, body)
}

async fn second_factor(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let result = match fields.get("sealed") {
        Some(sealed) => ctx.portal.enrol_totp(actor, sealed, field(&fields, "code")).await,
        None => ctx.portal.second_factor(actor, field(&fields, "code")).await,
    };
    ctx.after(result, |()| "/officer".to_string())
}

// ---------------------------------------------------------------------------------------
// Applicants

async fn apply_page(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let profiles: Vec<&str> = ctx.portal.profiles().iter().map(|p| p.name()).collect();
    let body = pages::apply(ctx.texts, &profiles, actor.email(), &actor.session.csrf);
    ctx.ok(ctx.texts.apply_for_certificate, body)
}

async fn apply(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let form = ApplicationForm {
        given_name: field(&fields, "given_name").to_string(),
        surname: field(&fields, "surname").to_string(),
        profile: field(&fields, "profile").to_string(),
    };
    ctx.after(ctx.portal.apply(actor, &form, ctx.lang.tag()).await, |app| format!("/applications/{}", app.id))
}

/// A slot of the desk as the pages show it.
macro_rules! slot_view {
    ($slot:expr) => {
        pages::SlotView {
            id: $slot.id.clone(),
            starts_at: $slot.starts_at,
            place: $slot.place.clone(),
            application_id: $slot.application_id.clone(),
        }
    };
}

async fn application_page(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let app = or_return!(ctx.portal.own_application(actor, &id).await.map_err(|e| ctx.error(&e)));
    let mut appointment = pages::Appointment { booked: None, passed: None, free: Vec::new() };
    if app.state == certdesk_core::workflow::ApplicationState::AwaitingChecks && app.identity.is_none() {
        let booked = or_return!(ctx.portal.appointment(&app).await.map_err(|e| ctx.error(&e)));
        match booked {
            Some(slot) if ctx.portal.is_upcoming(&slot) => appointment.booked = Some(slot_view!(slot)),
            Some(slot) => appointment.passed = Some(slot_view!(slot)),
            None => {}
        }
        let free = or_return!(ctx.portal.free_slots().await.map_err(|e| ctx.error(&e)));
        appointment.free = free.iter().map(|slot| slot_view!(slot)).collect();
    }
    let p12_waiting = or_return!(ctx.portal.pending_p12(&app).await.map_err(|e| ctx.error(&e)));
    let approved = app.state == certdesk_core::workflow::ApplicationState::Approved;
    let escrowed = approved && or_return!(ctx.portal.escrows_keys(&app).await.map_err(|e| ctx.error(&e)));
    let separately = escrowed && or_return!(ctx.portal.escrows_separately(&app).await.map_err(|e| ctx.error(&e)));
    let escrow = match (escrowed, separately) {
        (false, _) => pages::EscrowNotice::None,
        (true, false) => pages::EscrowNotice::Escrowed,
        (true, true) => pages::EscrowNotice::Separately,
    };
    let body =
        pages::application(ctx.texts, ctx.portal.zone(), &app, &appointment, p12_waiting, escrow, &actor.session.csrf);
    ctx.ok(ctx.texts.your_application, body)
}

async fn validate_page(ctx: Ctx, Path(id): Path<String>, Query(query): Query<Fields>) -> Response {
    if ctx.actor.is_none() {
        // The mailbox link opened where one is not signed in (another device): sign in
        // here first and come back to this link, code and all.
        let mut response = sign_in_page(&ctx, Some(ctx.texts.sign_in_to_confirm));
        let path = format!("/validate/{}?value={}", url_component(&id), url_component(field(&query, "value")));
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(path.as_bytes());
        let secure = secure_attribute(&ctx.portal);
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{NEXT_COOKIE}={encoded}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax{secure}"
        )) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        return response;
    }
    let actor = or_return!(ctx.signed_in());
    if let Err(e) = ctx.portal.own_application(actor, &id).await {
        return ctx.error(&e);
    }
    let body = pages::validate(ctx.texts, &id, field(&query, "value"), &actor.session.csrf);
    let mut response = ctx.ok(ctx.texts.confirm_mailbox, body);
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn validate(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.validate_mailbox(actor, &id, field(&fields, "value")).await, |app| {
        format!("/applications/{}", app.id)
    })
}

async fn resend(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.resend_validation(actor, &id).await, |()| format!("/applications/{id}"))
}

async fn book(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.book(actor, &id, field(&fields, "slot")).await, |_| format!("/applications/{id}"))
}

async fn cancel_appointment(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    if field(&fields, "confirm") != "yes" {
        return ctx.fail(ErrorCode::Refused, ctx.texts.confirm_missing);
    }
    ctx.after(ctx.portal.cancel_appointment(actor, &id).await, |_| format!("/applications/{id}"))
}

async fn p12_saved(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.confirm_p12_saved(actor, &id).await, |app| format!("/applications/{}", app.id))
}

async fn withdraw(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    if field(&fields, "confirm") != "yes" {
        return ctx.fail(ErrorCode::Refused, ctx.texts.confirm_missing);
    }
    ctx.after(ctx.portal.withdraw(actor, &id).await, |_| "/".to_string())
}

/// The CSR form: url-encoded (the CSR pasted) or `multipart/form-data` (the page's own
/// form: a CSR file, PEM or DER, in `csr_file`, or the CSR pasted in `csr`).
struct CsrForm {
    fields: Fields,
    file: Vec<u8>,
}

impl FromRequest<Arc<AppState>> for CsrForm {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
        if !multipart {
            let Form(fields) = Form::from_request(request, state).await?;
            return Ok(Self { fields, file: Vec::new() });
        }
        let (parts, body) = request.into_parts();
        let unreadable =
            |e: &dyn std::fmt::Display| unreadable_page(state, &parts, StatusCode::BAD_REQUEST, &e.to_string());
        let request = axum::extract::Request::from_parts(parts.clone(), body);
        let mut form = axum::extract::Multipart::from_request(request, state).await.map_err(|e| unreadable(&e))?;
        let (mut fields, mut file) = (Fields::new(), Vec::new());
        while let Some(part) = form.next_field().await.map_err(|e| unreadable(&e))? {
            let name = part.name().unwrap_or_default().to_string();
            let bytes = part.bytes().await.map_err(|e| unreadable(&e))?;
            if name == "csr_file" {
                file = bytes.to_vec();
            } else {
                let text =
                    String::from_utf8(bytes.to_vec()).map_err(|_| unreadable(&format!("{name} is not UTF-8")))?;
                fields.insert(name, text);
            }
        }
        Ok(Self { fields, file })
    }
}

async fn issue_csr(ctx: Ctx, Path(id): Path<String>, form: CsrForm) -> Response {
    let actor = or_return!(ctx.checked(&form.fields));
    let pasted = field(&form.fields, "csr").trim();
    let csr = match (form.file.is_empty(), pasted.is_empty()) {
        (true, false) => pasted.as_bytes(),
        (false, true) => form.file.as_slice(),
        (true, true) => return ctx.fail(ErrorCode::BadInput, ctx.texts.choose_csr),
        (false, false) => return ctx.fail(ErrorCode::BadInput, ctx.texts.csr_not_both),
    };
    ctx.after(ctx.portal.issue_csr(actor, &id, csr).await, |issued| {
        format!("/applications/{id}?issued={}", issued.record.serial)
    })
}

async fn issue_p12(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    // The form of a page from before the download, sent again once the .p12 is no
    // longer kept: the certificate is issued, and its page says so (issue 17 item 5).
    // While the .p12 is kept, the desk offers it again for the password chosen then.
    if field(&fields, "resume") != "1" {
        if let Ok(app) = ctx.portal.own_application(actor, &id).await {
            let kept = ctx.portal.pending_p12(&app).await.unwrap_or(true);
            if app.state == certdesk_core::workflow::ApplicationState::Issued && !kept {
                return redirect(&format!("/applications/{id}"));
            }
        }
    }
    let password = Zeroizing::new(field(&fields, "password").to_string());
    // A resumed download asks for the password once (the .p12 exists already).
    if field(&fields, "resume") != "1" && field(&fields, "password2") != password.as_str() {
        return ctx.fail(ErrorCode::Refused, ctx.texts.passwords_differ);
    }
    // The mail clients ticked: the advisor chooses the format for them ("auto"), and
    // the certificate-ready mail carries their install steps.
    let clients: Vec<MailClient> =
        MailClient::ALL.into_iter().filter(|c| field(&fields, &format!("client_{}", c.name())) == "yes").collect();
    let format = match field(&fields, "format") {
        "compat" => certdesk_pki::pkcs12::Format::Compat,
        "modern" => certdesk_pki::pkcs12::Format::Modern,
        "auto" | "" => certdesk_desk::advisor::advise(&clients).format,
        other => return ctx.fail(ErrorCode::Refused, &(ctx.texts.unknown_format)(other)),
    };
    let key = match field(&fields, "key") {
        "rsa3072" | "" => certdesk_pki::key::KeyAlgorithm::Rsa3072,
        "p256" => certdesk_pki::key::KeyAlgorithm::P256,
        other => return ctx.fail(ErrorCode::Refused, &(ctx.texts.unknown_key_type)(other)),
    };
    match ctx.portal.issue_p12(actor, &id, password, format, key, &clients).await {
        Ok((issued, p12)) => (
            [
                (header::CONTENT_TYPE, "application/x-pkcs12".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"certificate-{}.p12\"", issued.record.serial),
                ),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            p12,
        )
            .into_response(),
        Err(e) => ctx.error(&e),
    }
}

// -----------------------------------------------------------------------------------
// Key recovery (issue 15): the desk decides, the CA alone reads shares and keys.

async fn recoveries_page(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let views = or_return!(ctx.portal.recoveries_for(actor).await.map_err(|e| ctx.error(&e)));
    let admin = actor.role == certdesk_desk::portal::Role::Admin;
    let body = pages::recoveries(ctx.texts, ctx.portal.zone(), &views, admin, &actor.session.csrf);
    ctx.ok(ctx.texts.nav_recovery, body)
}

async fn request_recovery(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let result = ctx.portal.request_own_recovery(actor, field(&fields, "reason")).await;
    ctx.after(result, |r| format!("/recoveries/{}", r.id))
}

async fn request_successor_recovery(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let request = certdesk_desk::portal::SuccessorRequest {
        holder: field(&fields, "holder").to_string(),
        recipient: field(&fields, "recipient").to_string(),
        reason: field(&fields, "reason").to_string(),
        authorised_by: field(&fields, "authorised_by").to_string(),
        issued_from: field(&fields, "issued_from").to_string(),
        issued_until: field(&fields, "issued_until").to_string(),
    };
    let result = ctx.portal.request_successor_recovery(actor, &request).await;
    ctx.after(result, |r| format!("/recoveries/{}", r.id))
}

async fn recovery_page(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let view = or_return!(ctx.portal.recovery_view(actor, &id).await.map_err(|e| ctx.error(&e)));
    let officer = actor.role != certdesk_desk::portal::Role::Applicant && actor.has_second_factor();
    let body = pages::recovery(ctx.texts, ctx.portal.zone(), &view, actor.email(), officer, &actor.session.csrf);
    ctx.ok(ctx.texts.nav_recovery, body)
}

async fn recovery_identity(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let result = ctx
        .portal
        .record_recovery_identity(
            actor,
            &id,
            field(&fields, "document_type"),
            field(&fields, "document_number"),
            field(&fields, "in_person") == "yes",
        )
        .await;
    // Opened, the recovery is the agents' now: back to the list.
    ctx.after(result, |_| "/recoveries".to_string())
}

async fn recovery_share(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let share = Zeroizing::new(field(&fields, "share").as_bytes().to_vec());
    let result = ctx.portal.give_recovery_share(actor, &id, share, field(&fields, "code")).await;
    ctx.after(result, |r| format!("/recoveries/{}", r.id))
}

async fn recovery_p12(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let password = Zeroizing::new(field(&fields, "password").to_string());
    if field(&fields, "password2") != password.as_str() {
        return ctx.fail(ErrorCode::Refused, ctx.texts.passwords_differ);
    }
    let format = match field(&fields, "format") {
        "compat" => certdesk_pki::pkcs12::Format::Compat,
        "modern" | "" => certdesk_pki::pkcs12::Format::Modern,
        other => return ctx.fail(ErrorCode::Refused, &(ctx.texts.unknown_format)(other)),
    };
    let delivery = certdesk_core::ports::Pkcs12Delivery { password, format };
    match ctx.portal.deliver_recovery(actor, &id, delivery).await {
        Ok((recovery, p12)) => (
            [
                (header::CONTENT_TYPE, "application/x-pkcs12".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"recovered-keys-{}.p12\"", recovery.id)),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            p12,
        )
            .into_response(),
        Err(e) => ctx.error(&e),
    }
}

async fn recovery_cancel(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.cancel_recovery(actor, &id).await, |r| format!("/recoveries/{}", r.id))
}

async fn download_certificate(ctx: Ctx, Path(file): Path<String>) -> Response {
    let actor = or_return!(ctx.signed_in());
    let Some(serial) = file.strip_suffix(".pem") else {
        return ctx.fail(ErrorCode::NotFound, ctx.texts.no_such_certificate);
    };
    let cert = or_return!(ctx.portal.own_certificate(actor, serial).await.map_err(|e| ctx.error(&e)));
    certificate_file(&ctx, &cert)
}

/// A certificate as a PEM file to save.
fn certificate_file(ctx: &Ctx, cert: &certdesk_core::records::CertificateRecord) -> Response {
    match der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert.der) {
        Ok(pem) => (
            [
                (header::CONTENT_TYPE, "application/pem-certificate-chain".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"certificate-{}.pem\"", cert.serial)),
            ],
            pem,
        )
            .into_response(),
        Err(_) => ctx.fail(ErrorCode::Internal, ctx.texts.certificate_unencodable),
    }
}

/// A certificate of the directory as a file for the mail client (public, as the
/// directory is).
async fn directory_download(ctx: Ctx, Path(file): Path<String>) -> Response {
    let Some(serial) = file.strip_suffix(".pem") else {
        return ctx.fail(ErrorCode::NotFound, ctx.texts.no_such_certificate);
    };
    let cert = or_return!(ctx.portal.directory_certificate(serial).await.map_err(|e| ctx.error(&e)));
    certificate_file(&ctx, &cert)
}

async fn revoke(ctx: Ctx, Path(serial): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    if field(&fields, "confirm") != "yes" {
        return ctx.fail(ErrorCode::Refused, ctx.texts.confirm_missing);
    }
    match ctx.portal.revoke(actor, &serial, field(&fields, "reason")).await {
        Ok(record) => ctx.ok(ctx.texts.revoked, pages::revoked(ctx.texts, &record.serial)),
        Err(e) => ctx.error(&e),
    }
}

async fn renew(ctx: Ctx, Path(serial): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.renew(actor, &serial, ctx.lang.tag()).await, |app| format!("/applications/{}", app.id))
}

// ---------------------------------------------------------------------------------------
// Officers

async fn officer_queue(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let filter = certdesk_desk::portal::QueueFilter {
        today: field(&query, "view") == "today",
        search: field(&query, "q").to_string(),
    };
    let entries = or_return!(ctx.portal.queue(actor, &filter).await.map_err(|e| ctx.error(&e)));
    let slots: Vec<Option<pages::SlotView>> = entries.iter().map(|e| e.slot.as_ref().map(|s| slot_view!(s))).collect();
    let lines: Vec<pages::QueueLine<'_>> = entries
        .iter()
        .zip(&slots)
        .map(|(e, slot)| pages::QueueLine { app: &e.application, slot: slot.as_ref() })
        .collect();
    let body = pages::officer_queue(ctx.texts, ctx.portal.zone(), &lines, filter.today, &filter.search);
    ctx.ok(ctx.texts.queue_title, body)
}

async fn officer_application(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let app = or_return!(ctx.portal.application_for_officer(actor, &id).await.map_err(|e| ctx.error(&e)));
    let slot = or_return!(ctx.portal.appointment(&app).await.map_err(|e| ctx.error(&e)));
    let upcoming = slot.as_ref().is_some_and(|s| ctx.portal.is_upcoming(s));
    let slot = slot.map(|s| slot_view!(s));
    let body = pages::officer_application(
        ctx.texts,
        ctx.portal.zone(),
        &app,
        slot.as_ref(),
        upcoming,
        actor.email(),
        &actor.session.csrf,
    );
    ctx.ok(ctx.texts.application, body)
}

async fn officer_cancel_appointment(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    if field(&fields, "confirm") != "yes" {
        return ctx.fail(ErrorCode::Refused, ctx.texts.confirm_missing);
    }
    ctx.after(ctx.portal.officer_cancel_appointment(actor, &id).await, |_| format!("/officer/applications/{id}"))
}

async fn officer_remove_slot(ctx: Ctx, Path(slot): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.remove_slot(actor, &slot).await, |()| "/officer/slots".to_string())
}

async fn officer_identity(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let form = EvidenceForm {
        document_type: field(&fields, "document_type").to_string(),
        issuing_authority: field(&fields, "issuing_authority").to_string(),
        document_number: field(&fields, "document_number").to_string(),
        document_expires: field(&fields, "document_expires").to_string(),
        verified_in_person: field(&fields, "in_person") == "yes",
    };
    ctx.after(ctx.portal.record_identity(actor, &id, &form).await, |_| format!("/officer/applications/{id}"))
}

async fn officer_approve(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.approve(actor, &id).await, |_| "/officer".to_string())
}

async fn officer_reject(ctx: Ctx, Path(id): Path<String>, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.reject(actor, &id, field(&fields, "reason")).await, |_| "/officer".to_string())
}

async fn officer_slots(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let slots = or_return!(ctx.portal.all_slots(actor).await.map_err(|e| ctx.error(&e)));
    let slots: Vec<pages::SlotView> = slots.iter().map(|slot| slot_view!(slot)).collect();
    ctx.ok(ctx.texts.appointment_slots, pages::officer_slots(ctx.texts, ctx.portal.zone(), &slots, &actor.session.csrf))
}

/// A `datetime-local` field's value, read in the organisation's zone.
fn parse_local_datetime(zone: &certdesk_core::zone::OrgZone, text: &str) -> Option<time::OffsetDateTime> {
    let text = text.trim();
    let with_seconds = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(text, &with_seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &without))
        .ok()
        .and_then(|t| zone.existing_unix_of(t))
        .and_then(|unix| time::OffsetDateTime::from_unix_timestamp(unix).ok())
}

async fn officer_add_slot(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let Some(starts_at) = parse_local_datetime(ctx.portal.zone(), field(&fields, "starts_at")) else {
        return ctx.fail(ErrorCode::Refused, ctx.texts.slot_start_invalid);
    };
    ctx.after(ctx.portal.add_slot(actor, starts_at, field(&fields, "place")).await, |_| "/officer/slots".to_string())
}

async fn officer_certificates(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let email = field(&query, "email");
    let certs = or_return!(ctx.portal.certificates_for_officer(actor, email).await.map_err(|e| ctx.error(&e)));
    ctx.ok(
        ctx.texts.certificates,
        pages::officer_certificates(ctx.texts, ctx.portal.zone(), email, &certs, &actor.session.csrf),
    )
}

// ---------------------------------------------------------------------------------------
// Administrators

async fn admin_page(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let staff = or_return!(ctx.portal.staff(actor).await.map_err(|e| ctx.error(&e)));
    let settings = or_return!(ctx.portal.profile_settings().await.map_err(|e| ctx.error(&e)));
    let staff: Vec<pages::StaffView> = staff
        .iter()
        .map(|u| pages::StaffView {
            email: u.email.clone(),
            role: u.role.clone(),
            second_factor: u.totp_secret.is_some(),
            disabled: u.disabled_at.is_some(),
        })
        .collect();
    let profiles: Vec<pages::ProfileSetting> = settings
        .iter()
        .map(|(id, days, set_here)| pages::ProfileSetting {
            name: id.name(),
            max_days: id.max_validity_days(),
            days: *days,
            set_here: *set_here,
        })
        .collect();
    ctx.ok(
        ctx.texts.nav_admin,
        pages::admin(
            ctx.texts,
            &staff,
            &profiles,
            &actor.session.csrf,
            certdesk_core::url::is_plain_over_network(ctx.portal.public_url()),
        ),
    )
}

async fn admin_add_user(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let Some(role) = Role::from_name(field(&fields, "role")).filter(|r| *r != Role::Applicant) else {
        return ctx.fail(ErrorCode::Refused, ctx.texts.role_invalid);
    };
    let email = field(&fields, "email");
    let result = async {
        let link = ctx.portal.add_staff(Some(actor), email, role).await?;
        ctx.portal.mail_staff_invitation(email, role, &link, ctx.lang.tag()).await
    };
    ctx.after(result.await, |()| "/admin".to_string())
}

async fn admin_change_user(ctx: Ctx, Form(fields): Form) -> Response {
    use certdesk_desk::portal::StaffChange;
    let actor = or_return!(ctx.checked(&fields));
    let change = match (field(&fields, "change"), field(&fields, "confirm")) {
        ("disable", "yes") => StaffChange::Disable,
        ("enable", "yes") => StaffChange::Enable,
        ("reset", "yes") => StaffChange::ResetSecondFactor,
        _ => return ctx.fail(ErrorCode::Refused, ctx.texts.staff_change_invalid),
    };
    let email = field(&fields, "email");
    let result = async {
        ctx.portal.change_staff(Some(actor), email, change).await?;
        if change == StaffChange::ResetSecondFactor {
            // A fresh sign-in link, by mail, to enrol the new authenticator.
            let link = ctx.portal.staff_sign_in_link(email).await?;
            ctx.portal.mail_sign_in_link(email, &link, ctx.lang.tag()).await?;
        }
        Ok(())
    };
    ctx.after(result.await, |()| "/admin".to_string())
}

async fn admin_set_profile(ctx: Ctx, Form(fields): Form) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let result = ctx.portal.set_profile_validity(actor, field(&fields, "profile"), field(&fields, "days")).await;
    ctx.after(result, |()| "/admin".to_string())
}

async fn admin_audit(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let filter = field(&query, "q");
    let rows = or_return!(ctx.portal.audit_log(actor, filter).await.map_err(|e| ctx.error(&e)));
    if field(&query, "format") == "json" {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action, "subject": r.subject,
                    "details": serde_json::from_str::<serde_json::Value>(&r.details).unwrap_or_default(),
                    "prev_hash": r.prev_hash, "hash": r.hash})
            })
            .collect();
        return (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"certdesk-audit.json\""),
            ],
            serde_json::Value::Array(items).to_string(),
        )
            .into_response();
    }
    let verified = ctx.portal.verify_audit(actor).await;
    let broken = verified.as_ref().err().map(|e| ctx.texts.error_message(e));
    let verdict = match (&verified, &broken) {
        (Ok(chain), _) => Ok((chain.records, chain.head.as_str())),
        (Err(_), Some(message)) => Err(message.as_str()),
        (Err(_), None) => Err(ctx.texts.code_failed),
    };
    ctx.ok(ctx.texts.audit_log, pages::audit(ctx.texts, ctx.portal.zone(), verdict, filter, &rows))
}

// ---------------------------------------------------------------------------------------
// Public

/// The install guide for every mail client; `?client=a,b` unfolds those.
async fn install_page(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    let open: Vec<MailClient> = field(&query, "client").split(',').filter_map(MailClient::from_name).collect();
    ctx.ok(ctx.texts.install_guide_title, pages::install_guide(ctx.texts, &open))
}

async fn directory_page(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    let email = field(&query, "email");
    let found = if email.is_empty() {
        None
    } else {
        Some(or_return!(ctx.portal.directory(email).await.map_err(|e| ctx.error(&e))))
    };
    let entries: Option<Vec<pages::DirectoryEntry<'_>>> = found.as_ref().map(|certs| {
        certs
            .iter()
            .map(|cert| pages::DirectoryEntry {
                cert,
                pem: der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert.der).unwrap_or_default(),
            })
            .collect()
    });
    ctx.ok(ctx.texts.nav_directory, pages::directory(ctx.texts, ctx.portal.zone(), email, entries.as_deref()))
}
