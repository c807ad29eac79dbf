//! The web portal: server-rendered pages for applicants, registration officers and
//! administrators, and the public directory. Handlers extract, call [`Portal`], render.
//!
//! Every POST form carries a CSRF token: the session's token once signed in, a
//! double-submit cookie before. Session cookies are HttpOnly, SameSite=Lax, and Secure
//! when the portal's public URL is https.

// The early returns of the handlers are whole responses (an error page or a redirect);
// they are made once per request, so their size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use zeroize::Zeroizing;

use super::html::{csrf_field, day, esc, t, when, Page};
use super::AppState;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::workflow::{Application, ApplicationState, DocumentType};
use certdesk_desk::mail::Lang;
use certdesk_desk::portal::{Actor, ApplicationForm, EvidenceForm, Portal, Role};

mod oidc;

/// The session cookie.
pub const SESSION_COOKIE: &str = "certdesk_session";
/// The pre-session CSRF cookie (double submit).
pub const CSRF_COOKIE: &str = "certdesk_csrf";
/// The language cookie.
pub const LANG_COOKIE: &str = "certdesk_lang";

type Fields = HashMap<String, String>;

/// The request context of a page: language, the signed-in actor, cookies.
pub struct Ctx {
    /// The page language.
    pub lang: Lang,
    /// Who is signed in.
    pub actor: Option<Actor>,
    /// The pre-session CSRF cookie, if the browser has one.
    pre_csrf: Option<String>,
    /// A language chosen with `?lang=`, to remember in a cookie.
    chosen_lang: Option<Lang>,
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
        let Some(portal) = state.portal.clone() else {
            return Err(NoPortal((StatusCode::NOT_FOUND, "the portal is not enabled").into_response()));
        };
        let jar = cookies(&parts.headers);
        let chosen_lang = query_lang(parts.uri.query());
        let lang = chosen_lang
            .or_else(|| jar.get(LANG_COOKIE).map(|v| Lang::from_tag(v)))
            .unwrap_or_else(|| accept_lang(&parts.headers));
        let actor = match jar.get(SESSION_COOKIE) {
            Some(token) => match portal.actor(token).await {
                Ok(actor) => actor,
                Err(e) => return Err(NoPortal(error_page(&portal, lang, None, &e))),
            },
            None => None,
        };
        Ok(Ctx { lang, actor, pre_csrf: jar.get(CSRF_COOKIE).cloned(), chosen_lang, portal })
    }
}

impl Ctx {
    fn page(&self, status: StatusCode, title: &str, body: String) -> Response {
        let user = self.actor.as_ref().map(|a| (a.email(), a.role.name(), a.session.csrf.as_str()));
        let organization = self.portal.organization();
        let html = Page { lang: self.lang, organization: &organization, title, user, body }.render();
        let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
        if let Some(lang) = self.chosen_lang {
            if let Ok(v) =
                HeaderValue::from_str(&format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.tag()))
            {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    fn ok(&self, title: &str, body: String) -> Response {
        self.page(StatusCode::OK, title, body)
    }

    fn error(&self, e: &DomainError) -> Response {
        error_page(&self.portal, self.lang, self.actor.as_ref(), e)
    }

    /// The signed-in actor, or the sign-in page (401).
    fn signed_in(&self) -> Result<&Actor, Response> {
        match &self.actor {
            Some(actor) => Ok(actor),
            None => Err(self.error(&DomainError::new(
                ErrorCode::Unauthenticated,
                t(self.lang, "Please sign in first.", "Bitte melden Sie sich zuerst an."),
            ))),
        }
    }

    /// The signed-in actor after checking the form's CSRF token (403 if wrong).
    fn checked(&self, fields: &Fields) -> Result<&Actor, Response> {
        let actor = self.signed_in()?;
        let sent = fields.get("csrf").map(String::as_str).unwrap_or_default();
        if verify_slices_are_equal(sent.as_bytes(), actor.session.csrf.as_bytes()).is_err() {
            return Err(self.error(&csrf_error()));
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
            _ => Err(self.error(&csrf_error())),
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

/// The value of a `Result<T, Response>`, or that response returned from the handler.
macro_rules! or_return {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}

fn csrf_error() -> DomainError {
    DomainError::new(
        ErrorCode::Forbidden,
        "the form's security token is missing or wrong; reload the page and try again",
    )
}

fn error_page(portal: &Portal, lang: Lang, actor: Option<&Actor>, e: &DomainError) -> Response {
    let status = super::error::status_of(e.code());
    let (message, _) = super::error::public_message(e);
    let mut body = format!(r#"<p class="error" role="alert">{}</p>"#, esc(&message));
    if e.code() == ErrorCode::Unauthenticated && actor.is_none() {
        body.push_str(&format!(r#"<p><a href="/">{}</a></p>"#, t(lang, "Sign in", "Anmelden")));
    } else {
        body.push_str(&format!(
            r#"<p><a href="/">{}</a></p>"#,
            t(lang, "Back to the start page", "Zurück zur Startseite")
        ));
    }
    let title = match status {
        StatusCode::NOT_FOUND => t(lang, "Not found", "Nicht gefunden"),
        StatusCode::FORBIDDEN => t(lang, "Not allowed", "Nicht erlaubt"),
        StatusCode::UNAUTHORIZED => t(lang, "Sign-in needed", "Anmeldung nötig"),
        StatusCode::INTERNAL_SERVER_ERROR => t(lang, "Something went wrong", "Etwas ist schiefgegangen"),
        _ => t(lang, "That did not work", "Das hat nicht geklappt"),
    };
    let user = actor.map(|a| (a.email(), a.role.name(), a.session.csrf.as_str()));
    let organization = portal.organization();
    let html = Page { lang, organization: &organization, title, user, body }.render();
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The answer to a client over the request limit: 429 with `Retry-After`, a problem
/// document for the REST API, an error page for the portal.
pub(super) fn too_many_requests(portal: &Portal, headers: &HeaderMap, api: bool, wait: u64) -> Response {
    let error = DomainError::new(
        ErrorCode::TooManyRequests,
        format!("too many requests from your address; try again in {wait} seconds"),
    );
    let mut response = if api {
        super::error::Problem(error).into_response()
    } else {
        error_page(portal, accept_lang(headers), None, &error)
    };
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    response
}

/// A 303 redirect that never panics: a target that is not a valid header value (it
/// cannot be: targets are our own paths and ids) goes to the start page instead.
fn redirect(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map(String::as_str).unwrap_or_default()
}

fn session_cookie(portal: &Portal, token: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if portal.public_url().starts_with("https://") { "; Secure" } else { "" };
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
        .route("/applications/{id}/withdraw", post(withdraw))
        .route("/applications/{id}/csr", post(issue_csr))
        .route("/applications/{id}/p12", post(issue_p12))
        .route("/certificates/{file}", get(download_certificate))
        .route("/certificates/{serial}/revoke", post(revoke))
        .route("/certificates/{serial}/renew", post(renew))
        .route("/officer", get(officer_queue))
        .route("/officer/applications/{id}", get(officer_application))
        .route("/officer/applications/{id}/identity", post(officer_identity))
        .route("/officer/applications/{id}/approve", post(officer_approve))
        .route("/officer/applications/{id}/reject", post(officer_reject))
        .route("/officer/slots", get(officer_slots).post(officer_add_slot))
        .route("/officer/certificates", get(officer_certificates))
        .route("/admin", get(admin_page))
        .route("/admin/users", post(admin_add_user))
        .route("/admin/profiles", post(admin_set_profile))
        .route("/admin/audit", get(admin_audit))
        .route("/directory", get(directory_page))
        .route("/directory/{file}", get(directory_download))
        .merge(oidc::routes())
}

// ---------------------------------------------------------------------------------------
// Sign-in

async fn home(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
    let Some(actor) = &ctx.actor else { return sign_in_page(&ctx, None) };
    let apps = or_return!(ctx.portal.my_applications(actor).await.map_err(|e| ctx.error(&e)));
    let certs = or_return!(ctx.portal.my_certificates(actor).await.map_err(|e| ctx.error(&e)));
    let mut body = String::new();
    let _ =
        write!(body, r#"<p><a href="/apply">{}</a></p>"#, t(lang, "Apply for a certificate", "Zertifikat beantragen"));
    let _ = write!(body, "<h2>{}</h2>", t(lang, "Your applications", "Ihre Anträge"));
    if apps.is_empty() {
        let _ = write!(body, "<p>{}</p>", t(lang, "None yet.", "Noch keine."));
    } else {
        let _ = write!(
            body,
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            t(lang, "Submitted", "Eingereicht"),
            t(lang, "Profile", "Profil"),
            t(lang, "Status", "Status")
        );
        for app in &apps {
            let _ = write!(
                body,
                r#"<tr><td><a href="/applications/{id}">{at}</a></td><td>{profile}</td><td>{state}</td></tr>"#,
                id = esc(&app.id),
                at = when(app.created_at),
                profile = esc(&app.profile),
                state = state_name(lang, app.state)
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(body, "<h2>{}</h2>", t(lang, "Your certificates", "Ihre Zertifikate"));
    if certs.is_empty() {
        let _ = write!(body, "<p>{}</p>", t(lang, "None yet.", "Noch keine."));
    }
    for cert in &certs {
        body.push_str(&certificate_block(&ctx, actor, cert));
    }
    ctx.ok(t(lang, "Your certificates", "Ihre Zertifikate"), body)
}

fn certificate_block(ctx: &Ctx, actor: &Actor, cert: &certdesk_core::records::CertificateRecord) -> String {
    let lang = ctx.lang;
    let mut out = String::new();
    let state = match cert.revoked_at {
        Some(at) => format!("{} {}", t(lang, "revoked on", "widerrufen am"), day(at)),
        None => format!("{} {}", t(lang, "valid until", "gültig bis"), day(cert.not_after)),
    };
    let _ = write!(
        out,
        r#"<section aria-label="{serial}"><h3>{subject}</h3><p>{serialword} <code>{serial}</code> · {state} · <a href="/certificates/{serial}.pem">{download}</a></p>"#,
        serial = esc(&cert.serial),
        subject = esc(&cert.subject),
        serialword = t(lang, "Serial", "Seriennummer"),
        download = t(lang, "Download certificate (PEM)", "Zertifikat herunterladen (PEM)"),
    );
    if cert.revoked_at.is_none() {
        let _ = write!(
            out,
            r#"<form method="post" action="/certificates/{serial}/revoke">{csrf}<label for="reason-{serial}">{label}</label>
<select id="reason-{serial}" name="reason"><option value="key-compromise">{kc}</option><option value="superseded">{sup}</option><option value="affiliation-changed">{aff}</option><option value="cessation-of-operation">{cess}</option><option value="unspecified">{uns}</option></select>
<button type="submit">{revoke}</button></form>
<form method="post" action="/certificates/{serial}/renew">{csrf}<button class="secondary" type="submit">{renew}</button></form>"#,
            serial = esc(&cert.serial),
            csrf = csrf_field(&actor.session.csrf),
            label = t(lang, "Reason for revocation", "Grund des Widerrufs"),
            kc = t(lang, "My key was lost or compromised", "Mein Schlüssel ist verloren oder kompromittiert"),
            sup = t(lang, "Replaced by a new certificate", "Durch ein neues Zertifikat ersetzt"),
            aff = t(lang, "My name or affiliation changed", "Name oder Zugehörigkeit hat sich geändert"),
            cess = t(lang, "I no longer need it", "Ich brauche es nicht mehr"),
            uns = t(lang, "No reason given", "Ohne Angabe"),
            revoke = t(lang, "Revoke this certificate", "Dieses Zertifikat widerrufen"),
            renew = t(lang, "Renew", "Verlängern"),
        );
    }
    out.push_str("</section>");
    out
}

fn sign_in_page(ctx: &Ctx, notice: Option<&str>) -> Response {
    let lang = ctx.lang;
    let token = match &ctx.pre_csrf {
        Some(t) => t.clone(),
        None => {
            let mut b = [0u8; 24];
            let _ = aws_lc_rs::rand::fill(&mut b);
            hex::encode(b)
        }
    };
    let mut body = String::new();
    if let Some(n) = notice {
        let _ = write!(body, r#"<p class="ok" role="status">{}</p>"#, esc(n));
    }
    body.push_str(&oidc::sign_in_button(ctx));
    let _ = write!(
        body,
        r#"<p>{intro}</p><form method="post" action="/signin">{csrf}<label for="email">{label}</label>
<input id="email" name="email" type="email" autocomplete="email" required size="40">
<button type="submit">{button}</button></form>"#,
        intro = t(
            lang,
            "Sign in with your work e-mail address: we mail you a link that signs you in. No password needed.",
            "Melden Sie sich mit Ihrer dienstlichen E-Mail-Adresse an: Wir senden Ihnen einen Link, der Sie anmeldet. Ein Passwort ist nicht nötig."
        ),
        csrf = csrf_field(&token),
        label = t(lang, "E-mail address", "E-Mail-Adresse"),
        button = t(lang, "Send me a sign-in link", "Anmeldelink senden"),
    );
    let mut response = ctx.ok(t(lang, "Sign in", "Anmelden"), body);
    if ctx.pre_csrf.is_none() {
        if let Ok(v) = HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

async fn request_sign_in(ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    if let Err(r) = ctx.checked_pre(&fields) {
        return r;
    }
    match ctx.portal.request_sign_in(field(&fields, "email"), ctx.lang.tag()).await {
        Ok(()) => sign_in_page(
            &ctx,
            Some(t(
                ctx.lang,
                "If this address may use the portal, a sign-in link is on its way. It works once, for 15 minutes.",
                "Wenn diese Adresse das Portal nutzen darf, ist ein Anmeldelink unterwegs. Er gilt einmal, 15 Minuten lang.",
            )),
        ),
        Err(e) => ctx.error(&e),
    }
}

/// The link from the mail opens a confirmation page; only its button (a POST) uses the
/// token, so mail scanners that follow links do not use it up.
async fn confirm_sign_in(ctx: Ctx, Path(token): Path<String>) -> Response {
    let lang = ctx.lang;
    let body = format!(
        r#"<form method="post" action="/signin/{token}"><button type="submit">{button}</button></form>"#,
        token = esc(&token),
        button = t(lang, "Sign in now", "Jetzt anmelden")
    );
    let mut response = ctx.ok(t(lang, "Sign in", "Anmelden"), body);
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn complete_sign_in(ctx: Ctx, Path(token): Path<String>) -> Response {
    // The token itself is the proof (single use, 15 minutes, 256 bits): no CSRF token
    // is needed, and a forged POST could only sign the victim into the sender's account
    // if the attacker gave away their own fresh link.
    match ctx.portal.complete_sign_in(&token).await {
        Ok(session) => {
            let mut response = redirect("/").into_response();
            if let Some(cookie) =
                session_cookie(&ctx.portal, &session.token, certdesk_desk::portal::SESSION_HOURS * 3600)
            {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => ctx.error(&e),
    }
}

async fn sign_out(ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    if let Err(e) = ctx.portal.sign_out(actor).await {
        return ctx.error(&e);
    }
    let mut response = redirect("/").into_response();
    if let Some(cookie) = session_cookie(&ctx.portal, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn second_factor_page(ctx: Ctx) -> Response {
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    if actor.role == Role::Applicant {
        return redirect("/").into_response();
    }
    let mut body = String::new();
    if actor.user.totp_secret.is_none() {
        let (sealed, uri, text) = match ctx.portal.new_totp(actor) {
            Ok(x) => x,
            Err(e) => return ctx.error(&e),
        };
        let _ = write!(
            body,
            r#"<p>{intro}</p><p>{key}: <code id="totp-secret">{text}</code></p><p><code>{uri}</code></p>
<form method="post" action="/second-factor">{csrf}<input type="hidden" name="sealed" value="{sealed}">
<label for="code">{label}</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{{6,7}}" required>
<button type="submit">{button}</button></form>"#,
            intro = t(
                lang,
                "Officers and administrators sign in with a second factor. Add this key to your authenticator app (TOTP, 6 digits, 30 seconds), then enter the code it shows.",
                "Sachbearbeitende und Administratoren melden sich mit einem zweiten Faktor an. Fügen Sie diesen Schlüssel Ihrer Authenticator-App hinzu (TOTP, 6 Ziffern, 30 Sekunden) und geben Sie den angezeigten Code ein."
            ),
            key = t(lang, "Key", "Schlüssel"),
            text = esc(&text),
            uri = esc(&uri),
            csrf = csrf_field(&actor.session.csrf),
            sealed = esc(&sealed),
            label = t(lang, "Code from the app", "Code aus der App"),
            button = t(lang, "Confirm", "Bestätigen"),
        );
    } else {
        let _ = write!(
            body,
            r#"<form method="post" action="/second-factor">{csrf}<label for="code">{label}</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{{6,7}}" required>
<button type="submit">{button}</button></form>"#,
            csrf = csrf_field(&actor.session.csrf),
            label = t(lang, "Code from your authenticator app", "Code aus Ihrer Authenticator-App"),
            button = t(lang, "Confirm", "Bestätigen"),
        );
    }
    ctx.ok(t(lang, "Second factor", "Zweiter Faktor"), body)
}

async fn second_factor(ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let result = match fields.get("sealed") {
        Some(sealed) => ctx.portal.enrol_totp(actor, sealed, field(&fields, "code")).await,
        None => ctx.portal.second_factor(actor, field(&fields, "code")).await,
    };
    ctx.after(result, |()| "/officer".to_string())
}

// ---------------------------------------------------------------------------------------
// Applicants

fn state_name(lang: Lang, state: ApplicationState) -> &'static str {
    match state {
        ApplicationState::AwaitingChecks => t(lang, "checks pending", "Prüfungen ausstehend"),
        ApplicationState::Approved => t(lang, "approved: choose your key", "genehmigt: Schlüssel wählen"),
        ApplicationState::Issued => t(lang, "certificate issued", "Zertifikat ausgestellt"),
        ApplicationState::Rejected => t(lang, "rejected", "abgelehnt"),
        ApplicationState::Withdrawn => t(lang, "withdrawn", "zurückgezogen"),
    }
}

fn profile_label(lang: Lang, name: &str) -> String {
    let text = match name {
        "sponsor-strict" => t(
            lang,
            "Staff, signing and encryption (recommended)",
            "Beschäftigte, Signatur und Verschlüsselung (empfohlen)",
        ),
        "sponsor-multipurpose" => {
            t(lang, "Staff, multipurpose (also document signing)", "Beschäftigte, Mehrzweck (auch Dokumentsignatur)")
        }
        "mailbox-strict" | "mailbox-multipurpose" => t(lang, "Mailbox only (no name)", "Nur Postfach (ohne Namen)"),
        "private" => t(
            lang,
            "Internal use only, 3 years (not publicly trusted)",
            "Nur intern, 3 Jahre (nicht öffentlich vertraut)",
        ),
        _ => "",
    };
    format!("{text} ({name})")
}

async fn apply_page(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    let mut options = String::new();
    for p in ctx.portal.profiles() {
        let _ = write!(options, r#"<option value="{}">{}</option>"#, p.name(), esc(&profile_label(lang, p.name())));
    }
    let body = format!(
        r#"<p>{intro}</p><form method="post" action="/apply">{csrf}
<label for="given_name">{given}</label><input id="given_name" name="given_name" autocomplete="given-name" required maxlength="64">
<label for="surname">{sur}</label><input id="surname" name="surname" autocomplete="family-name" required maxlength="64">
<label for="email">{mail}</label><input id="email" value="{email}" readonly aria-readonly="true">
<label for="profile">{prof}</label><select id="profile" name="profile">{options}</select>
<button type="submit">{button}</button></form>"#,
        intro = t(
            lang,
            "Give your name exactly as on your ID card or passport: the service desk checks it when you visit.",
            "Geben Sie Ihren Namen genau wie in Ausweis oder Pass an: Die Servicetheke prüft ihn bei Ihrem Besuch."
        ),
        csrf = csrf_field(&actor.session.csrf),
        given = t(lang, "Given name(s)", "Vorname(n)"),
        sur = t(lang, "Surname", "Nachname"),
        mail = t(lang, "E-mail address (the certificate's)", "E-Mail-Adresse (die des Zertifikats)"),
        email = esc(actor.email()),
        prof = t(lang, "Certificate type", "Zertifikatstyp"),
        button = t(lang, "Apply", "Beantragen"),
    );
    ctx.ok(t(lang, "Apply for a certificate", "Zertifikat beantragen"), body)
}

async fn apply(ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let form = ApplicationForm {
        given_name: field(&fields, "given_name").to_string(),
        surname: field(&fields, "surname").to_string(),
        profile: field(&fields, "profile").to_string(),
    };
    ctx.after(ctx.portal.apply(actor, &form, ctx.lang.tag()).await, |app| format!("/applications/{}", app.id))
}

async fn application_page(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let actor = or_return!(ctx.signed_in());
    let app = or_return!(ctx.portal.own_application(actor, &id).await.map_err(|e| ctx.error(&e)));
    let body = or_return!(application_body(&ctx, actor, &app).await.map_err(|e| ctx.error(&e)));
    ctx.ok(t(ctx.lang, "Your application", "Ihr Antrag"), body)
}

async fn application_body(ctx: &Ctx, actor: &Actor, app: &Application) -> Result<String, DomainError> {
    let lang = ctx.lang;
    let csrf = csrf_field(&actor.session.csrf);
    let id = esc(&app.id);
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<p>{name}: {given} {sur} · {mail} · {profile}</p><p><strong>{status}: <span id="state">{state}</span></strong></p>"#,
        name = t(lang, "Name", "Name"),
        given = esc(&app.given_name),
        sur = esc(&app.surname),
        mail = esc(&app.email),
        profile = esc(&app.profile),
        status = t(lang, "Status", "Status"),
        state = state_name(lang, app.state),
    );
    if let Some(decision) = &app.decision {
        if let Some(reason) = &decision.reason {
            let _ = write!(body, r#"<p class="error">{}: {}</p>"#, t(lang, "Reason", "Begründung"), esc(reason));
        }
    }
    let check = |done: bool| if done { "✔" } else { "…" };
    let _ = write!(
        body,
        "<h2>{}</h2><ol><li>{} {}</li><li>{} {}</li><li>{} {}</li></ol>",
        t(lang, "Steps", "Schritte"),
        check(app.mailbox_validated_at.is_some()),
        t(lang, "Confirm your mailbox with the code we mailed you", "Postfach mit dem zugesandten Code bestätigen"),
        check(app.identity.is_some()),
        t(lang, "Show your ID at the service desk", "Ausweis an der Servicetheke vorzeigen"),
        check(matches!(app.state, ApplicationState::Approved | ApplicationState::Issued)),
        t(lang, "Approval, then choose your key", "Genehmigung, dann Schlüssel wählen"),
    );
    if app.state == ApplicationState::AwaitingChecks {
        if app.mailbox_validated_at.is_none() {
            let _ = write!(
                body,
                r#"<h2>{h}</h2><form method="post" action="/applications/{id}/validate">{csrf}<label for="value">{label}</label>
<input id="value" name="value" autocomplete="one-time-code" required size="32"><button type="submit">{button}</button></form>
<form method="post" action="/applications/{id}/resend">{csrf}<button class="secondary" type="submit">{resend}</button></form>"#,
                h = t(lang, "Confirm your mailbox", "Postfach bestätigen"),
                label = t(lang, "Code from the e-mail", "Code aus der E-Mail"),
                button = t(lang, "Confirm", "Bestätigen"),
                resend = t(lang, "Send a new code", "Neuen Code senden"),
            );
        }
        if app.identity.is_none() {
            let _ =
                write!(body, "<h2>{}</h2>", t(lang, "Appointment at the service desk", "Termin an der Servicetheke"));
            match ctx.portal.appointment(app).await? {
                Some(slot) => {
                    let _ = write!(
                        body,
                        r#"<p id="appointment">{}: {} · {}</p><p>{}</p>"#,
                        t(lang, "Your appointment", "Ihr Termin"),
                        when(slot.starts_at),
                        esc(&slot.place),
                        t(lang, "Bring your ID card or passport.", "Bringen Sie Ihren Personalausweis oder Pass mit.")
                    );
                }
                None => {
                    let slots = ctx.portal.free_slots().await?;
                    if slots.is_empty() {
                        let _ = write!(
                            body,
                            "<p>{}</p>",
                            t(
                                lang,
                                "No free slots right now; please look again later.",
                                "Zurzeit keine freien Termine; bitte später erneut schauen."
                            )
                        );
                    } else {
                        let mut options = String::new();
                        for s in &slots {
                            let _ = write!(
                                options,
                                r#"<option value="{}">{} · {}</option>"#,
                                esc(&s.id),
                                when(s.starts_at),
                                esc(&s.place)
                            );
                        }
                        let _ = write!(
                            body,
                            r#"<form method="post" action="/applications/{id}/book">{csrf}<label for="slot">{label}</label><select id="slot" name="slot">{options}</select><button type="submit">{button}</button></form>"#,
                            label = t(lang, "Free slots", "Freie Termine"),
                            button = t(lang, "Book", "Buchen"),
                        );
                    }
                }
            }
        }
    }
    if app.state == ApplicationState::Approved {
        let _ = write!(
            body,
            r#"<h2>{h}</h2>
<fieldset><legend>{a}</legend><p>{a_text}</p><form method="post" action="/applications/{id}/p12">{csrf}
<label for="password">{pw}</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="12">
<label for="password2">{pw2}</label><input id="password2" name="password2" type="password" autocomplete="new-password" required minlength="12">
<label for="format">{fmt}</label><select id="format" name="format"><option value="modern">{modern}</option><option value="compat">{compat}</option></select>
<label for="key">{keyl}</label><select id="key" name="key"><option value="rsa3072">RSA 3072 ({rsa})</option><option value="p256">ECDSA P-256</option></select>
<button type="submit">{button}</button></form></fieldset>
<fieldset><legend>{b}</legend><p>{b_text}</p><form method="post" action="/applications/{id}/csr" enctype="multipart/form-data">{csrf}
<label for="csr_file">{csrf_file}</label><input id="csr_file" name="csr_file" type="file" accept=".csr,.req,.pem,.der,.p10">
<label for="csr">{csrl}</label><textarea id="csr" name="csr"></textarea><button type="submit">{button2}</button></form></fieldset>"#,
            csrf_file = t(lang, "CSR file (PEM or DER)", "CSR-Datei (PEM oder DER)"),
            h = t(lang, "Choose how you get your key", "Wählen Sie, wie Sie Ihren Schlüssel erhalten"),
            a = t(lang, "A key made for you, as a password-protected file (.p12)", "Ein für Sie erzeugter Schlüssel als passwortgeschützte Datei (.p12)"),
            a_text = t(
                lang,
                "The file is shown once and not kept here. Choose a password of at least 12 characters that only you know. Modern files suit Thunderbird, current Windows and Outlook, Apple Mail on macOS 14 and later; choose compatible for older Windows, older macOS and gpgsm (Kleopatra).",
                "Die Datei wird einmal ausgeliefert und hier nicht aufbewahrt. Wählen Sie ein Passwort mit mindestens 12 Zeichen, das nur Sie kennen. Modern passt für Thunderbird, aktuelles Windows und Outlook, Apple Mail ab macOS 14; kompatibel für älteres Windows, älteres macOS und gpgsm (Kleopatra)."
            ),
            pw = t(lang, "Password for the file", "Passwort für die Datei"),
            pw2 = t(lang, "The same password again", "Dasselbe Passwort noch einmal"),
            fmt = t(lang, "File format", "Dateiformat"),
            modern = t(lang, "modern (AES-256)", "modern (AES-256)"),
            compat = t(lang, "compatible (3DES, older clients)", "kompatibel (3DES, ältere Programme)"),
            keyl = t(lang, "Key type", "Schlüsseltyp"),
            rsa = t(lang, "works everywhere", "funktioniert überall"),
            button = t(lang, "Create and download my .p12", "Meine .p12 erzeugen und herunterladen"),
            b = t(lang, "My own key (advanced)", "Eigener Schlüssel (für Fortgeschrittene)"),
            b_text = t(
                lang,
                "Upload or paste a certificate signing request (CSR, PEM or DER). Your key never leaves your device. `certdesk enroll` does this for you.",
                "Laden Sie einen Zertifikatsantrag (CSR, PEM oder DER) hoch oder fügen Sie ihn ein. Ihr Schlüssel verlässt Ihr Gerät nie. `certdesk enroll` erledigt das für Sie."
            ),
            csrl = t(lang, "or paste it (PEM)", "oder fügen Sie ihn ein (PEM)"),
            button2 = t(lang, "Issue my certificate", "Mein Zertifikat ausstellen"),
        );
    }
    if let (ApplicationState::Issued, Some(serial)) = (app.state, &app.serial) {
        let _ = write!(
            body,
            r#"<p class="ok">{} <a href="/certificates/{serial}.pem">{}</a></p>"#,
            t(lang, "Your certificate is ready.", "Ihr Zertifikat ist fertig."),
            t(lang, "Download certificate (PEM)", "Zertifikat herunterladen (PEM)"),
            serial = esc(serial)
        );
    }
    if matches!(app.state, ApplicationState::AwaitingChecks | ApplicationState::Approved) {
        let _ = write!(
            body,
            r#"<form method="post" action="/applications/{id}/withdraw">{csrf}<button class="secondary" type="submit">{}</button></form>"#,
            t(lang, "Withdraw this application", "Diesen Antrag zurückziehen")
        );
    }
    Ok(body)
}

async fn validate_page(ctx: Ctx, Path(id): Path<String>, Query(query): Query<Fields>) -> Response {
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    if let Err(e) = ctx.portal.own_application(actor, &id).await {
        return ctx.error(&e);
    }
    let body = format!(
        r#"<form method="post" action="/applications/{id}/validate">{csrf}<label for="value">{label}</label>
<input id="value" name="value" value="{value}" required size="32"><button type="submit">{button}</button></form>"#,
        id = esc(&id),
        csrf = csrf_field(&actor.session.csrf),
        label = t(lang, "Code from the e-mail", "Code aus der E-Mail"),
        value = esc(field(&query, "value")),
        button = t(lang, "Confirm my mailbox", "Mein Postfach bestätigen"),
    );
    let mut response = ctx.ok(t(lang, "Confirm your mailbox", "Postfach bestätigen"), body);
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn validate(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.validate_mailbox(actor, &id, field(&fields, "value")).await, |app| {
        format!("/applications/{}", app.id)
    })
}

async fn resend(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.resend_validation(actor, &id).await, |()| format!("/applications/{}", esc(&id)))
}

async fn book(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.book(actor, &id, field(&fields, "slot")).await, |_| format!("/applications/{}", esc(&id)))
}

async fn withdraw(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.withdraw(actor, &id).await, |_| "/".to_string())
}

/// The CSR form: url-encoded (the CSR pasted) or `multipart/form-data` (the page's own
/// form: a CSR file, PEM or DER, in `csr_file`, or the CSR pasted in `csr`).
struct CsrForm {
    fields: Fields,
    file: Vec<u8>,
}

impl axum::extract::FromRequest<Arc<AppState>> for CsrForm {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
        if !multipart {
            let Form(fields) =
                Form::<Fields>::from_request(request, state).await.map_err(IntoResponse::into_response)?;
            return Ok(Self { fields, file: Vec::new() });
        }
        let unreadable = |e: &dyn std::fmt::Display| {
            (StatusCode::BAD_REQUEST, format!("the form could not be read: {e}")).into_response()
        };
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
        (true, true) => {
            return ctx.error(&DomainError::new(
                ErrorCode::BadInput,
                t(
                    ctx.lang,
                    "Choose a CSR file or paste the CSR.",
                    "Wählen Sie eine CSR-Datei oder fügen Sie den CSR ein.",
                ),
            ))
        }
        (false, false) => {
            return ctx.error(&DomainError::new(
                ErrorCode::BadInput,
                t(
                    ctx.lang,
                    "Give the CSR once: as a file or pasted, not both.",
                    "Geben Sie den CSR nur einmal an: als Datei oder eingefügt, nicht beides.",
                ),
            ))
        }
    };
    ctx.after(ctx.portal.issue_csr(actor, &id, csr).await, |issued| {
        format!("/applications/{}?issued={}", esc(&id), issued.record.serial)
    })
}

async fn issue_p12(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let password = Zeroizing::new(field(&fields, "password").to_string());
    if field(&fields, "password2") != password.as_str() {
        return ctx.error(&DomainError::new(
            ErrorCode::Refused,
            t(ctx.lang, "The two passwords differ.", "Die beiden Passwörter unterscheiden sich."),
        ));
    }
    let format = match field(&fields, "format") {
        "compat" => certdesk_pki::pkcs12::Format::Compat,
        "modern" | "" => certdesk_pki::pkcs12::Format::Modern,
        other => return ctx.error(&DomainError::new(ErrorCode::Refused, format!("unknown format {other:?}"))),
    };
    let key = match field(&fields, "key") {
        "rsa3072" | "" => certdesk_pki::key::KeyAlgorithm::Rsa3072,
        "p256" => certdesk_pki::key::KeyAlgorithm::P256,
        other => return ctx.error(&DomainError::new(ErrorCode::Refused, format!("unknown key type {other:?}"))),
    };
    match ctx.portal.issue_p12(actor, &id, password, format, key).await {
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

async fn download_certificate(ctx: Ctx, Path(file): Path<String>) -> Response {
    let actor = or_return!(ctx.signed_in());
    let Some(serial) = file.strip_suffix(".pem") else {
        return ctx.error(&DomainError::new(ErrorCode::NotFound, "no such certificate"));
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
        Err(_) => ctx.error(&DomainError::new(ErrorCode::Internal, "the certificate cannot be encoded")),
    }
}

/// A certificate of the directory as a file for the mail client (public, as the
/// directory is).
async fn directory_download(ctx: Ctx, Path(file): Path<String>) -> Response {
    let Some(serial) = file.strip_suffix(".pem") else {
        return ctx.error(&DomainError::new(ErrorCode::NotFound, "no such certificate"));
    };
    let cert = or_return!(ctx.portal.directory_certificate(serial).await.map_err(|e| ctx.error(&e)));
    certificate_file(&ctx, &cert)
}

async fn revoke(ctx: Ctx, Path(serial): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    match ctx.portal.revoke(actor, &serial, field(&fields, "reason")).await {
        Ok(record) => {
            let body = format!(
                r#"<p class="ok" role="status">{} <code>{}</code></p><p><a href="/">{}</a></p>"#,
                t(ctx.lang, "The certificate is revoked:", "Das Zertifikat ist widerrufen:"),
                esc(&record.serial),
                t(ctx.lang, "Back to the start page", "Zurück zur Startseite")
            );
            ctx.ok(t(ctx.lang, "Revoked", "Widerrufen"), body)
        }
        Err(e) => ctx.error(&e),
    }
}

async fn renew(ctx: Ctx, Path(serial): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.renew(actor, &serial, ctx.lang.tag()).await, |app| format!("/applications/{}", app.id))
}

// ---------------------------------------------------------------------------------------
// Officers

async fn officer_queue(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    let apps = or_return!(ctx.portal.queue(actor).await.map_err(|e| ctx.error(&e)));
    let mut body = format!(
        r#"<p><a href="/officer/slots">{}</a> · <a href="/officer/certificates">{}</a></p>"#,
        t(lang, "Appointment slots", "Termine"),
        t(lang, "Find and revoke certificates", "Zertifikate suchen und widerrufen")
    );
    let _ = write!(
        body,
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        t(lang, "Applicant", "Antragsteller/in"),
        t(lang, "Submitted", "Eingereicht"),
        t(lang, "Mailbox", "Postfach"),
        t(lang, "Identity", "Identität"),
        t(lang, "Status", "Status")
    );
    for app in &apps {
        let yes_no = |b: bool| if b { t(lang, "checked", "geprüft") } else { t(lang, "open", "offen") };
        let _ = write!(
            body,
            r#"<tr><td><a href="/officer/applications/{id}">{given} {sur} &lt;{mail}&gt;</a></td><td>{at}</td><td>{m}</td><td>{i}</td><td>{s}</td></tr>"#,
            id = esc(&app.id),
            given = esc(&app.given_name),
            sur = esc(&app.surname),
            mail = esc(&app.email),
            at = when(app.created_at),
            m = yes_no(app.mailbox_validated_at.is_some()),
            i = yes_no(app.identity.is_some()),
            s = state_name(lang, app.state),
        );
    }
    body.push_str("</tbody></table>");
    ctx.ok(t(lang, "Service desk queue", "Warteschlange der Servicetheke"), body)
}

async fn officer_application(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    let app = or_return!(ctx.portal.application_for_officer(actor, &id).await.map_err(|e| ctx.error(&e)));
    let csrf = csrf_field(&actor.session.csrf);
    let id = esc(&app.id);
    let mut body = format!(
        r#"<p>{given} {sur} &lt;{mail}&gt; · {profile} · <strong>{state}</strong></p><p>{mbox}: {mstate}</p>"#,
        given = esc(&app.given_name),
        sur = esc(&app.surname),
        mail = esc(&app.email),
        profile = esc(&app.profile),
        state = state_name(lang, app.state),
        mbox = t(lang, "Mailbox", "Postfach"),
        mstate = match app.mailbox_validated_at {
            Some(at) => format!("{} {}", t(lang, "validated", "bestätigt"), when(at)),
            None => t(lang, "not yet validated", "noch nicht bestätigt").to_string(),
        }
    );
    match &app.identity {
        Some(e) => {
            let _ = write!(
                body,
                "<p>{}: {} · {} · {} · {} {} · {} {}</p>",
                t(lang, "Identity", "Identität"),
                e.document_type.name(),
                esc(&e.issuing_authority),
                esc(&e.document_number),
                t(lang, "valid until", "gültig bis"),
                e.document_expires,
                t(lang, "checked by", "geprüft von"),
                esc(&e.officer)
            );
        }
        None if app.state == ApplicationState::AwaitingChecks => {
            let mut options = String::new();
            for d in DocumentType::ALL {
                let label = match d {
                    DocumentType::IdentityCard => t(lang, "National identity card", "Personalausweis"),
                    DocumentType::Passport => t(lang, "Passport", "Reisepass"),
                    DocumentType::ResidencePermit => t(lang, "Residence permit", "Aufenthaltstitel"),
                };
                let _ = write!(options, r#"<option value="{}">{}</option>"#, d.name(), label);
            }
            let _ = write!(
                body,
                r#"<h2>{h}</h2><form method="post" action="/officer/applications/{id}/identity">{csrf}
<label for="document_type">{dt}</label><select id="document_type" name="document_type">{options}</select>
<label for="issuing_authority">{ia}</label><input id="issuing_authority" name="issuing_authority" required maxlength="100">
<label for="document_number">{dn}</label><input id="document_number" name="document_number" required maxlength="100">
<label for="document_expires">{de}</label><input id="document_expires" name="document_expires" type="date" required>
<label><input type="checkbox" name="in_person" value="yes" required> {ip}</label>
<button type="submit">{button}</button></form>"#,
                h = t(lang, "Record the identity check (BR 3.2.4)", "Identitätsprüfung erfassen (BR 3.2.4)"),
                dt = t(lang, "Document type", "Dokumentart"),
                ia = t(lang, "Issuing authority", "Ausstellende Behörde"),
                dn = t(lang, "Document number", "Dokumentnummer"),
                de = t(lang, "Valid until", "Gültig bis"),
                ip = t(
                    lang,
                    "I saw the person and the original document, and the photo and name match",
                    "Ich habe die Person und das Originaldokument gesehen; Foto und Name stimmen überein"
                ),
                button = t(lang, "Record", "Erfassen"),
            );
        }
        None => {}
    }
    if app.state == ApplicationState::AwaitingChecks {
        let _ = write!(
            body,
            r#"<h2>{h}</h2><form method="post" action="/officer/applications/{id}/approve">{csrf}<button type="submit">{approve}</button></form>
<form method="post" action="/officer/applications/{id}/reject">{csrf}<label for="reason">{rl}</label><input id="reason" name="reason" required maxlength="500" size="50"><button class="secondary" type="submit">{reject}</button></form>"#,
            h = t(lang, "Decision", "Entscheidung"),
            approve = t(lang, "Approve", "Genehmigen"),
            rl = t(lang, "Reason for rejection", "Ablehnungsgrund"),
            reject = t(lang, "Reject", "Ablehnen"),
        );
    }
    ctx.ok(t(lang, "Application", "Antrag"), body)
}

async fn officer_identity(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let form = EvidenceForm {
        document_type: field(&fields, "document_type").to_string(),
        issuing_authority: field(&fields, "issuing_authority").to_string(),
        document_number: field(&fields, "document_number").to_string(),
        document_expires: field(&fields, "document_expires").to_string(),
        verified_in_person: field(&fields, "in_person") == "yes",
    };
    ctx.after(ctx.portal.record_identity(actor, &id, &form).await, |_| format!("/officer/applications/{}", esc(&id)))
}

async fn officer_approve(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.approve(actor, &id).await, |_| "/officer".to_string())
}

async fn officer_reject(ctx: Ctx, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    ctx.after(ctx.portal.reject(actor, &id, field(&fields, "reason")).await, |_| "/officer".to_string())
}

async fn officer_slots(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    let slots = or_return!(ctx.portal.all_slots(actor).await.map_err(|e| ctx.error(&e)));
    let mut body = format!(
        r#"<form method="post" action="/officer/slots">{csrf}<label for="starts_at">{start}</label><input id="starts_at" name="starts_at" type="datetime-local" required>
<label for="place">{place}</label><input id="place" name="place" required maxlength="100"><button type="submit">{button}</button></form><h2>{upcoming}</h2><ul>"#,
        csrf = csrf_field(&actor.session.csrf),
        start = t(lang, "Starts at (UTC)", "Beginn (UTC)"),
        place = t(lang, "Place", "Ort"),
        button = t(lang, "Publish slot", "Termin veröffentlichen"),
        upcoming = t(lang, "Upcoming slots", "Kommende Termine"),
    );
    for s in &slots {
        let booked = match &s.application_id {
            Some(app) => {
                format!(r#"<a href="/officer/applications/{0}">{1}</a>"#, esc(app), t(lang, "booked", "gebucht"))
            }
            None => t(lang, "free", "frei").to_string(),
        };
        let _ = write!(body, "<li>{} · {} · {}</li>", when(s.starts_at), esc(&s.place), booked);
    }
    body.push_str("</ul>");
    ctx.ok(t(lang, "Appointment slots", "Termine"), body)
}

fn parse_local_datetime(text: &str) -> Option<time::OffsetDateTime> {
    let text = text.trim();
    let with_seconds = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(text, &with_seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &without))
        .ok()
        .map(|t| t.assume_utc())
}

async fn officer_add_slot(ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let Some(starts_at) = parse_local_datetime(field(&fields, "starts_at")) else {
        return ctx
            .error(&DomainError::new(ErrorCode::Refused, "the start must be a date and time (YYYY-MM-DDTHH:MM)"));
    };
    ctx.after(ctx.portal.add_slot(actor, starts_at, field(&fields, "place")).await, |_| "/officer/slots".to_string())
}

async fn officer_certificates(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    let email = field(&query, "email");
    let certs = or_return!(ctx.portal.certificates_for_officer(actor, email).await.map_err(|e| ctx.error(&e)));
    let mut body = format!(
        r#"<form method="get" action="/officer/certificates"><label for="email">{label}</label><input id="email" name="email" type="email" value="{value}"><button type="submit">{button}</button></form>"#,
        label = t(lang, "E-mail address", "E-Mail-Adresse"),
        value = esc(email),
        button = t(lang, "Search", "Suchen"),
    );
    for cert in &certs {
        body.push_str(&certificate_block(&ctx, actor, cert));
    }
    ctx.ok(t(lang, "Certificates", "Zertifikate"), body)
}

// ---------------------------------------------------------------------------------------
// Administrators

async fn admin_page(ctx: Ctx) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
    let actor = or_return!(ctx.signed_in());
    let staff = or_return!(ctx.portal.staff(actor).await.map_err(|e| ctx.error(&e)));
    let mut body = format!(
        r#"<p><a href="/admin/audit">{}</a></p><h2>{}</h2><ul>"#,
        t(lang, "Audit log", "Audit-Protokoll"),
        t(lang, "Officers and administrators", "Sachbearbeitende und Administratoren")
    );
    for u in &staff {
        let _ = write!(
            body,
            "<li>{} · {} · {}</li>",
            esc(&u.email),
            esc(&u.role),
            if u.totp_secret.is_some() {
                t(lang, "second factor enrolled", "zweiter Faktor eingerichtet")
            } else {
                t(lang, "no second factor yet", "noch kein zweiter Faktor")
            }
        );
    }
    let _ = write!(
        body,
        r#"</ul><form method="post" action="/admin/users">{csrf}<label for="email">{label}</label><input id="email" name="email" type="email" required>
<label for="role">{role}</label><select id="role" name="role"><option value="officer">{officer}</option><option value="admin">{admin}</option></select><button type="submit">{button}</button></form>
<h2>{profiles}</h2><ul>"#,
        csrf = csrf_field(&actor.session.csrf),
        label = t(lang, "E-mail address", "E-Mail-Adresse"),
        role = t(lang, "Role", "Rolle"),
        officer = t(lang, "Registration officer", "Sachbearbeitung (Registrierung)"),
        admin = t(lang, "Administrator", "Administrator/in"),
        button = t(lang, "Add and mail a sign-in link", "Hinzufügen und Anmeldelink senden"),
        profiles = t(lang, "Profiles and validity", "Profile und Gültigkeit"),
    );
    let settings = or_return!(ctx.portal.profile_settings().await.map_err(|e| ctx.error(&e)));
    for (id, days, set_here) in settings {
        let _ = write!(
            body,
            r#"<li><form method="post" action="/admin/profiles">{csrf}<input type="hidden" name="profile" value="{name}">
<label for="days-{name}">{name} ({max} {maxword}, {source})</label>
<input id="days-{name}" name="days" type="number" min="1" max="{max}" value="{days}" required> {daysword}
<button type="submit">{save}</button></form></li>"#,
            csrf = csrf_field(&actor.session.csrf),
            name = id.name(),
            max = id.max_validity_days(),
            maxword = t(lang, "days at most", "Tage höchstens"),
            source = if set_here {
                t(lang, "set here", "hier gesetzt")
            } else {
                t(lang, "from certdesk.toml", "aus certdesk.toml")
            },
            daysword = t(lang, "days", "Tage"),
            save = t(lang, "Save", "Speichern"),
        );
    }
    body.push_str("</ul>");
    ctx.ok(t(lang, "Administration", "Verwaltung"), body)
}

async fn admin_add_user(ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let Some(role) = Role::from_name(field(&fields, "role")).filter(|r| *r != Role::Applicant) else {
        return ctx.error(&DomainError::new(ErrorCode::Refused, "the role must be officer or admin"));
    };
    let email = field(&fields, "email");
    let result = async {
        let link = ctx.portal.add_staff(Some(actor), email, role).await?;
        ctx.portal.mail_sign_in_link(email, &link, ctx.lang.tag()).await
    };
    ctx.after(result.await, |()| "/admin".to_string())
}

async fn admin_set_profile(ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    let actor = or_return!(ctx.checked(&fields));
    let result = ctx.portal.set_profile_validity(actor, field(&fields, "profile"), field(&fields, "days")).await;
    ctx.after(result, |()| "/admin".to_string())
}

async fn admin_audit(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    if let Some(r) = ctx.needs_second_factor() {
        return r;
    }
    let lang = ctx.lang;
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
    let verdict = match ctx.portal.verify_audit(actor).await {
        Ok(chain) => format!(
            r#"<p class="ok" id="audit-verdict">{} ({} {}, head <code>{}</code>)</p>"#,
            t(lang, "The hash chain is intact", "Die Hash-Kette ist intakt"),
            chain.records,
            t(lang, "records", "Einträge"),
            esc(&chain.head)
        ),
        Err(e) => format!(r#"<p class="error" id="audit-verdict">{}</p>"#, esc(&e.to_string())),
    };
    let mut body = format!(
        r#"{verdict}<form method="get" action="/admin/audit"><label for="q">{label}</label><input id="q" name="q" value="{value}"><button type="submit">{button}</button></form>
<p><a href="/admin/audit?format=json&amp;q={value}">{export}</a></p><table><thead><tr><th>#</th><th>{at}</th><th>{who}</th><th>{what}</th><th>{on}</th><th>{details}</th></tr></thead><tbody>"#,
        label = t(lang, "Search", "Suche"),
        value = esc(filter),
        button = t(lang, "Search", "Suchen"),
        export = t(lang, "Export as JSON", "Als JSON exportieren"),
        at = t(lang, "When", "Wann"),
        who = t(lang, "Who", "Wer"),
        what = t(lang, "What", "Was"),
        on = t(lang, "Subject", "Gegenstand"),
        details = t(lang, "Details", "Details"),
    );
    for r in rows.iter().take(500) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            r.seq,
            when(r.at),
            esc(&r.actor),
            esc(&r.action),
            esc(&r.subject),
            esc(&r.details)
        );
    }
    body.push_str("</tbody></table>");
    ctx.ok(t(lang, "Audit log", "Audit-Protokoll"), body)
}

// ---------------------------------------------------------------------------------------
// Public

async fn directory_page(ctx: Ctx, Query(query): Query<Fields>) -> Response {
    let lang = ctx.lang;
    let email = field(&query, "email");
    let mut body = format!(
        r#"<p>{intro}</p><form method="get" action="/directory"><label for="email">{label}</label><input id="email" name="email" type="email" value="{value}" required><button type="submit">{button}</button></form>"#,
        intro = t(
            lang,
            "Find a colleague's current certificate to send them encrypted mail.",
            "Finden Sie das aktuelle Zertifikat einer Kollegin oder eines Kollegen, um verschlüsselt zu schreiben."
        ),
        label = t(lang, "E-mail address", "E-Mail-Adresse"),
        value = esc(email),
        button = t(lang, "Look up", "Nachschlagen"),
    );
    if !email.is_empty() {
        match ctx.portal.directory(email).await {
            Ok(certs) if certs.is_empty() => {
                let _ = write!(
                    body,
                    r#"<p id="directory-result">{}</p>"#,
                    t(lang, "No current certificate.", "Kein aktuelles Zertifikat.")
                );
            }
            Ok(certs) => {
                body.push_str(r#"<ul id="directory-result">"#);
                for c in &certs {
                    let pem =
                        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &c.der).unwrap_or_default();
                    let _ = write!(
                        body,
                        r#"<li>{} · <code>{}</code> · {} {} · <a href="/directory/{}.pem" download>{}</a><details><summary>PEM</summary><pre>{}</pre></details></li>"#,
                        esc(&c.subject),
                        esc(&c.serial),
                        t(lang, "valid until", "gültig bis"),
                        day(c.not_after),
                        esc(&c.serial),
                        t(lang, "Download certificate", "Zertifikat herunterladen"),
                        esc(&pem)
                    );
                }
                body.push_str("</ul>");
            }
            Err(e) => return ctx.error(&e),
        }
    }
    ctx.ok(t(lang, "Directory", "Verzeichnis"), body)
}
