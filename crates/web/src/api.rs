//! The REST API (`/api/v1`): the portal's workflow as JSON, for `certdesk enroll` and
//! scripts. Authentication is a bearer token (`Authorization: Bearer ...`) obtained
//! with a sign-in link's token; cookies are never accepted here, so there is no CSRF
//! surface. Errors are RFC 9457 problem documents. The OpenAPI 3 document is served
//! at `/api/openapi.json`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::error::Problem;
use super::AppState;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::records::CertificateRecord;
use certdesk_core::workflow::Application;
use certdesk_desk::portal::{Actor, ApplicationForm, EvidenceForm, Portal};

/// The routes of the REST API.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/sign-in", post(sign_in))
        .route("/api/v1/sessions", post(create_session))
        .route("/api/v1/sessions/second-factor", post(second_factor))
        .route("/api/v1/sessions/totp-enrolment", post(totp_enrolment))
        .route("/api/v1/me", get(me))
        .route("/api/v1/applications", get(list_applications).post(create_application))
        .route("/api/v1/applications/{id}", get(get_application))
        .route("/api/v1/applications/{id}/mailbox", post(validate_mailbox))
        .route("/api/v1/applications/{id}/appointment", post(book).delete(cancel_appointment))
        .route("/api/v1/applications/{id}/csr", post(issue_csr))
        .route("/api/v1/applications/{id}/pkcs12", post(issue_p12))
        .route("/api/v1/slots", get(slots).post(add_slot))
        .route("/api/v1/slots/{slot}", delete(remove_slot))
        .route("/api/v1/certificates", get(my_certificates))
        .route("/api/v1/certificates/{serial}/revoke", post(revoke))
        .route("/api/v1/certificates/{serial}/renew", post(renew))
        .route("/api/v1/directory", get(directory))
        .route("/api/v1/recoveries", get(list_recoveries).post(request_recovery))
        .route("/api/v1/recoveries/successor", post(request_successor_recovery))
        .route("/api/v1/recoveries/{id}", get(get_recovery))
        .route("/api/v1/recoveries/{id}/identity", post(recovery_identity))
        .route("/api/v1/recoveries/{id}/share", post(recovery_share))
        .route("/api/v1/recoveries/{id}/pkcs12", post(recovery_pkcs12))
        .route("/api/v1/recoveries/{id}/cancel", post(cancel_recovery))
        .route("/api/v1/officer/queue", get(queue))
        .route("/api/v1/officer/applications/{id}/appointment", delete(officer_cancel_appointment))
        .route("/api/v1/officer/applications/{id}/identity", post(identity))
        .route("/api/v1/officer/applications/{id}/approve", post(approve))
        .route("/api/v1/officer/applications/{id}/reject", post(reject))
}

type ApiResult = Result<Response, Problem>;

fn portal(state: &AppState) -> Result<Arc<Portal>, Problem> {
    state.portal.clone().ok_or_else(|| Problem(DomainError::new(ErrorCode::NotFound, "the portal is not enabled")))
}

/// The bearer-authenticated actor.
pub struct ApiActor {
    actor: Actor,
    portal: Arc<Portal>,
}

impl FromRequestParts<Arc<AppState>> for ApiActor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let portal = portal(state)?;
        let unauthenticated =
            || Problem(DomainError::new(ErrorCode::Unauthenticated, "send Authorization: Bearer <session token>"));
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthenticated)?;
        let actor = portal.actor(token.trim()).await?.ok_or_else(unauthenticated)?;
        Ok(ApiActor { actor, portal })
    }
}

/// JSON bodies: a malformed body is a problem document (400), not axum's plain text.
pub struct Body<T>(T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<Arc<AppState>> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(Problem(DomainError::new(ErrorCode::BadInput, rejection.body_text()))),
        }
    }
}

fn application_json(app: &Application) -> Value {
    json!({
        "id": app.id,
        "email": app.email,
        "given_name": app.given_name,
        "surname": app.surname,
        "profile": app.profile.name(),
        "state": app.state.name(),
        "mailbox_validated": app.mailbox_validated_at.is_some(),
        "identity_verified": app.identity.is_some(),
        "decision_reason": app.decision.as_ref().and_then(|d| d.reason.clone()),
        "serial": app.serial,
        "renewal_of": app.renewal_of,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
    })
}

fn certificate_json(cert: &CertificateRecord) -> Value {
    json!({
        "serial": cert.serial,
        "email": cert.email,
        "subject": cert.subject,
        "profile": cert.profile.name(),
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "revoked_at": cert.revoked_at,
        "pem": der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert.der).unwrap_or_default(),
    })
}

fn ok(value: Value) -> ApiResult {
    Ok(Json(value).into_response())
}

fn created(value: Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
    #[serde(default)]
    lang: Option<String>,
}

async fn sign_in(State(state): State<Arc<AppState>>, Body(body): Body<EmailBody>) -> ApiResult {
    let portal = portal(&state)?;
    portal.request_sign_in(&body.email, body.lang.as_deref().unwrap_or("en")).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "if the address may sign in, a link was mailed" })))
        .into_response())
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn create_session(State(state): State<Arc<AppState>>, Body(body): Body<TokenBody>) -> ApiResult {
    let portal = portal(&state)?;
    // Accept the whole link as well as the bare token.
    let token = body.token.trim().rsplit('/').next().unwrap_or_default().to_string();
    let session = portal.complete_sign_in(&token).await?;
    created(json!({
        "token": session.token.as_str(),
        "email": session.record.email,
        "expires_at": session.record.expires_at,
    }))
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
    /// The sealed secret from `totp-enrolment`, to confirm an enrolment.
    #[serde(default)]
    sealed: Option<String>,
}

async fn second_factor(api: ApiActor, Body(body): Body<CodeBody>) -> ApiResult {
    match &body.sealed {
        Some(sealed) => api.portal.enrol_totp(&api.actor, sealed, &body.code).await?,
        None => api.portal.second_factor(&api.actor, &body.code).await?,
    }
    ok(json!({ "second_factor": true }))
}

async fn totp_enrolment(api: ApiActor) -> ApiResult {
    if api.actor.role == certdesk_desk::portal::Role::Applicant {
        return Err(Problem(DomainError::new(
            ErrorCode::Forbidden,
            "only officers and administrators use a second factor",
        )));
    }
    if api.actor.user.totp_secret.is_some() {
        return Err(Problem(DomainError::new(ErrorCode::Conflict, "a second factor is already enrolled")));
    }
    let (sealed, uri, secret) = api.portal.new_totp(&api.actor)?;
    ok(json!({ "sealed": sealed, "otpauth_uri": uri, "secret": secret }))
}

async fn me(api: ApiActor) -> ApiResult {
    ok(json!({
        "email": api.actor.email(),
        "role": api.actor.role.name(),
        "second_factor": api.actor.has_second_factor(),
    }))
}

async fn list_applications(api: ApiActor) -> ApiResult {
    let apps = api.portal.my_applications(&api.actor).await?;
    ok(Value::Array(apps.iter().map(application_json).collect()))
}

#[derive(Deserialize)]
struct ApplicationBody {
    given_name: String,
    surname: String,
    /// Absent: the first profile the portal offers.
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

async fn create_application(api: ApiActor, Body(body): Body<ApplicationBody>) -> ApiResult {
    let profile = match body.profile {
        Some(profile) => profile,
        None => api.portal.profiles().first().map_or_else(|| "sponsor-strict".to_string(), |p| p.name().to_string()),
    };
    let form = ApplicationForm { given_name: body.given_name, surname: body.surname, profile };
    let app = api.portal.apply(&api.actor, &form, body.lang.as_deref().unwrap_or("en")).await?;
    created(application_json(&app))
}

async fn get_application(api: ApiActor, Path(id): Path<String>) -> ApiResult {
    let app = api.portal.own_application(&api.actor, &id).await?;
    let mut value = application_json(&app);
    if let (Some(slot), Some(map)) = (api.portal.appointment(&app).await?, value.as_object_mut()) {
        map.insert("appointment".into(), json!({ "starts_at": slot.starts_at, "place": slot.place }));
    }
    ok(value)
}

#[derive(Deserialize)]
struct ValueBody {
    value: String,
}

async fn validate_mailbox(api: ApiActor, Path(id): Path<String>, Body(body): Body<ValueBody>) -> ApiResult {
    let app = api.portal.validate_mailbox(&api.actor, &id, &body.value).await?;
    ok(application_json(&app))
}

#[derive(Deserialize)]
struct SlotBody {
    slot_id: String,
}

async fn book(api: ApiActor, Path(id): Path<String>, Body(body): Body<SlotBody>) -> ApiResult {
    let slot = api.portal.book(&api.actor, &id, &body.slot_id).await?;
    ok(json!({ "slot_id": slot.id, "starts_at": slot.starts_at, "place": slot.place }))
}

#[derive(Deserialize)]
struct CsrBody {
    csr: String,
}

async fn issue_csr(api: ApiActor, Path(id): Path<String>, Body(body): Body<CsrBody>) -> ApiResult {
    let issued = api.portal.issue_csr(&api.actor, &id, body.csr.as_bytes()).await?;
    let mut value = certificate_json(&issued.record);
    let chain: Vec<String> = issued
        .chain
        .iter()
        .filter_map(|c| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, c).ok())
        .collect();
    if let Some(map) = value.as_object_mut() {
        map.insert("chain_pem".into(), json!(chain.concat()));
    }
    created(value)
}

#[derive(Deserialize)]
struct P12Body {
    password: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    key: Option<String>,
    /// The mail clients it is for (`crate::advisor` names): with format `auto` they
    /// choose it; the certificate-ready mail carries their install steps.
    #[serde(default)]
    clients: Vec<String>,
}

async fn issue_p12(api: ApiActor, Path(id): Path<String>, Body(body): Body<P12Body>) -> ApiResult {
    let password = Zeroizing::new(body.password);
    let clients = certdesk_desk::advisor::parse_clients(body.clients.iter().map(String::as_str))
        .map_err(|e| Problem(DomainError::new(ErrorCode::BadInput, e)))?;
    // Without a format: what the clients named need (modern when none is named).
    let format = match body.format.as_deref().unwrap_or("auto") {
        "modern" => certdesk_pki::pkcs12::Format::Modern,
        "compat" => certdesk_pki::pkcs12::Format::Compat,
        "auto" => certdesk_desk::advisor::advise(&clients).format,
        other => return Err(Problem(DomainError::new(ErrorCode::Refused, format!("unknown format {other:?}")))),
    };
    let key = certdesk_pki::key::KeyAlgorithm::from_name(body.key.as_deref().unwrap_or("rsa3072"))
        .ok_or_else(|| Problem(DomainError::new(ErrorCode::Refused, "key must be rsa3072, rsa4096, p256 or p384")))?;
    let (issued, p12) = api.portal.issue_p12(&api.actor, &id, password, format, key, &clients).await?;
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/x-pkcs12".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"certificate-{}.p12\"", issued.record.serial)),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        p12,
    )
        .into_response())
}

async fn slots(api: ApiActor) -> ApiResult {
    let slots = if api.actor.role == certdesk_desk::portal::Role::Applicant {
        api.portal.free_slots().await?
    } else {
        api.portal.all_slots(&api.actor).await?
    };
    ok(Value::Array(
        slots
            .iter()
            .map(|s| json!({ "id": s.id, "starts_at": s.starts_at, "place": s.place, "booked": s.application_id.is_some() }))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct NewSlotBody {
    starts_at: i64,
    place: String,
}

async fn add_slot(api: ApiActor, Body(body): Body<NewSlotBody>) -> ApiResult {
    let starts_at = time::OffsetDateTime::from_unix_timestamp(body.starts_at)
        .map_err(|_| Problem(DomainError::new(ErrorCode::BadInput, "starts_at must be Unix seconds")))?;
    let slot = api.portal.add_slot(&api.actor, starts_at, &body.place).await?;
    created(json!({ "id": slot.id, "starts_at": slot.starts_at, "place": slot.place }))
}

async fn my_certificates(api: ApiActor) -> ApiResult {
    let certs = api.portal.my_certificates(&api.actor).await?;
    ok(Value::Array(certs.iter().map(certificate_json).collect()))
}

#[derive(Deserialize)]
struct ReasonBody {
    reason: String,
}

async fn revoke(api: ApiActor, Path(serial): Path<String>, Body(body): Body<ReasonBody>) -> ApiResult {
    let record = api.portal.revoke(&api.actor, &serial, &body.reason).await?;
    ok(certificate_json(&record))
}

#[derive(Deserialize, Default)]
struct LangBody {
    #[serde(default)]
    lang: Option<String>,
}

async fn renew(api: ApiActor, Path(serial): Path<String>, body: Option<Json<LangBody>>) -> ApiResult {
    let lang = body.and_then(|Json(b)| b.lang).unwrap_or_else(|| "en".into());
    let app = api.portal.renew(&api.actor, &serial, &lang).await?;
    created(application_json(&app))
}

// -----------------------------------------------------------------------------------
// Key recovery (issue 15)

fn recovery_json(view: &certdesk_desk::portal::RecoveryView) -> Value {
    let r = &view.recovery;
    json!({
        "id": r.id,
        "state": r.state.name(),
        "holder": r.holder,
        "recipient": r.recipient,
        "serials": r.serials,
        "reason": r.reason,
        "authorised_by": r.authorised_by,
        "requested_by": r.requested_by,
        "created_at": r.created_at,
        "opened_at": r.opened_at,
        "expires_at": r.expires_at,
        "closed_at": r.closed_at,
        "threshold": view.threshold,
        "agents_given": view.approvals.iter().map(|a| json!({ "index": a.index, "agent": a.agent, "at": a.approved_at })).collect::<Vec<_>>(),
        "my_agent_index": view.my_agent_index,
    })
}

async fn list_recoveries(api: ApiActor) -> ApiResult {
    let views = api.portal.recoveries_for(&api.actor).await?;
    ok(Value::Array(views.iter().map(recovery_json).collect()))
}

async fn get_recovery(api: ApiActor, Path(id): Path<String>) -> ApiResult {
    ok(recovery_json(&api.portal.recovery_view(&api.actor, &id).await?))
}

#[derive(Deserialize)]
struct RecoveryBody {
    reason: String,
}

async fn request_recovery(api: ApiActor, Body(body): Body<RecoveryBody>) -> ApiResult {
    let recovery = api.portal.request_own_recovery(&api.actor, &body.reason).await?;
    created(recovery_json(&api.portal.recovery_outcome(&api.actor, recovery).await?))
}

#[derive(Deserialize)]
struct SuccessorBody {
    holder: String,
    recipient: String,
    reason: String,
    authorised_by: String,
    #[serde(default)]
    issued_from: String,
    #[serde(default)]
    issued_until: String,
}

async fn request_successor_recovery(api: ApiActor, Body(body): Body<SuccessorBody>) -> ApiResult {
    let request = certdesk_desk::portal::SuccessorRequest {
        holder: body.holder,
        recipient: body.recipient,
        reason: body.reason,
        authorised_by: body.authorised_by,
        issued_from: body.issued_from,
        issued_until: body.issued_until,
    };
    let recovery = api.portal.request_successor_recovery(&api.actor, &request).await?;
    created(recovery_json(&api.portal.recovery_outcome(&api.actor, recovery).await?))
}

#[derive(Deserialize)]
struct RecoveryIdentityBody {
    document_type: String,
    document_number: String,
    verified_in_person: bool,
}

async fn recovery_identity(api: ApiActor, Path(id): Path<String>, Body(body): Body<RecoveryIdentityBody>) -> ApiResult {
    let recovery = api
        .portal
        .record_recovery_identity(&api.actor, &id, &body.document_type, &body.document_number, body.verified_in_person)
        .await?;
    ok(recovery_json(&api.portal.recovery_outcome(&api.actor, recovery).await?))
}

#[derive(Deserialize)]
struct ShareBody {
    share: String,
    code: String,
}

async fn recovery_share(api: ApiActor, Path(id): Path<String>, Body(body): Body<ShareBody>) -> ApiResult {
    let share = Zeroizing::new(body.share.into_bytes());
    let recovery = api.portal.give_recovery_share(&api.actor, &id, share, &body.code).await?;
    ok(recovery_json(&api.portal.recovery_outcome(&api.actor, recovery).await?))
}

#[derive(Deserialize)]
struct RecoveredP12Body {
    password: String,
    #[serde(default)]
    format: Option<String>,
}

async fn recovery_pkcs12(api: ApiActor, Path(id): Path<String>, Body(body): Body<RecoveredP12Body>) -> ApiResult {
    let password = Zeroizing::new(body.password);
    let format = match body.format.as_deref().unwrap_or("modern") {
        "modern" => certdesk_pki::pkcs12::Format::Modern,
        "compat" => certdesk_pki::pkcs12::Format::Compat,
        other => return Err(Problem(DomainError::new(ErrorCode::Refused, format!("unknown format {other:?}")))),
    };
    let delivery = certdesk_core::ports::Pkcs12Delivery { password, format };
    let (recovery, p12) = api.portal.deliver_recovery(&api.actor, &id, delivery).await?;
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/x-pkcs12".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"recovered-keys-{}.p12\"", recovery.id)),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        p12,
    )
        .into_response())
}

async fn cancel_recovery(api: ApiActor, Path(id): Path<String>) -> ApiResult {
    let recovery = api.portal.cancel_recovery(&api.actor, &id).await?;
    ok(recovery_json(&api.portal.recovery_outcome(&api.actor, recovery).await?))
}

#[derive(Deserialize)]
struct DirectoryQuery {
    email: String,
}

async fn directory(State(state): State<Arc<AppState>>, Query(query): Query<DirectoryQuery>) -> ApiResult {
    let portal = portal(&state)?;
    let certs = portal.directory(&query.email).await?;
    ok(
        json!({ "email": query.email.trim().to_ascii_lowercase(), "certificates": certs.iter().map(certificate_json).collect::<Vec<_>>() }),
    )
}

#[derive(Deserialize)]
struct QueueQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    q: String,
}

async fn queue(api: ApiActor, Query(query): Query<QueueQuery>) -> ApiResult {
    let today = match query.view.as_str() {
        "" | "all" => false,
        "today" => true,
        other => {
            return Err(Problem(DomainError::new(
                ErrorCode::BadInput,
                format!("view must be all or today, not {other:?}"),
            )))
        }
    };
    let filter = certdesk_desk::portal::QueueFilter { today, search: query.q };
    let entries = api.portal.queue(&api.actor, &filter).await?;
    let items = entries
        .iter()
        .map(|e| {
            let mut value = application_json(&e.application);
            let appointment = e.slot.as_ref().map_or(Value::Null, |s| slot_json(&s.id, s.starts_at, &s.place));
            if let Some(object) = value.as_object_mut() {
                object.insert("appointment".into(), appointment);
            }
            value
        })
        .collect();
    ok(Value::Array(items))
}

fn slot_json(id: &str, starts_at: i64, place: &str) -> Value {
    json!({ "slot_id": id, "starts_at": starts_at, "place": place })
}

async fn cancel_appointment(api: ApiActor, Path(id): Path<String>) -> ApiResult {
    let slot = api.portal.cancel_appointment(&api.actor, &id).await?;
    ok(slot_json(&slot.id, slot.starts_at, &slot.place))
}

async fn officer_cancel_appointment(api: ApiActor, Path(id): Path<String>) -> ApiResult {
    let slot = api.portal.officer_cancel_appointment(&api.actor, &id).await?;
    ok(slot_json(&slot.id, slot.starts_at, &slot.place))
}

async fn remove_slot(api: ApiActor, Path(slot): Path<String>) -> ApiResult {
    api.portal.remove_slot(&api.actor, &slot).await?;
    ok(json!({ "removed": slot }))
}

#[derive(Deserialize)]
struct EvidenceBody {
    document_type: String,
    issuing_authority: String,
    document_number: String,
    document_expires: String,
    verified_in_person: bool,
}

async fn identity(api: ApiActor, Path(id): Path<String>, Body(body): Body<EvidenceBody>) -> ApiResult {
    let form = EvidenceForm {
        document_type: body.document_type,
        issuing_authority: body.issuing_authority,
        document_number: body.document_number,
        document_expires: body.document_expires,
        verified_in_person: body.verified_in_person,
    };
    let app = api.portal.record_identity(&api.actor, &id, &form).await?;
    ok(application_json(&app))
}

async fn approve(api: ApiActor, Path(id): Path<String>) -> ApiResult {
    let app = api.portal.approve(&api.actor, &id).await?;
    ok(application_json(&app))
}

async fn reject(api: ApiActor, Path(id): Path<String>, Body(body): Body<ReasonBody>) -> ApiResult {
    let app = api.portal.reject(&api.actor, &id, &body.reason).await?;
    ok(application_json(&app))
}

/// The OpenAPI 3.1 document of this API.
pub fn openapi_document() -> Value {
    let problem = json!({ "description": "RFC 9457 problem document", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
    let app = json!({ "description": "the application", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Application" } } } });
    let cert = json!({ "description": "the certificate", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Certificate" } } } });
    let recovery = json!({ "description": "the key recovery", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Recovery" } } } });
    let body = |props: Value, required: Value| json!({ "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": props, "required": required } } } });
    let id_param = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
    let serial_param = json!([{ "name": "serial", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-f]+$" } }]);
    let s = json!({ "type": "string" });
    let mut document = json!({
        "openapi": "3.1.0",
        "info": { "title": "certdesk registration desk API", "version": "1",
                  "description": "Apply for S/MIME certificates, prove the mailbox, book the identification appointment, get the certificate (own key via CSR or a server-made .p12), revoke and renew. Officers record identity evidence (CA/B Forum S/MIME BR 3.2.4) and decide." },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "a session token from POST /api/v1/sessions" } },
            "schemas": {
                "Problem": { "type": "object", "properties": { "type": s, "title": s, "status": { "type": "integer" }, "detail": s, "code": { "type": "integer" } } },
                "Application": { "type": "object", "properties": {
                    "id": s, "email": s, "given_name": s, "surname": s, "profile": s,
                    "state": { "type": "string", "enum": ["awaiting-checks", "approved", "issued", "rejected", "withdrawn"] },
                    "mailbox_validated": { "type": "boolean" }, "identity_verified": { "type": "boolean" },
                    "decision_reason": { "type": ["string", "null"] }, "serial": { "type": ["string", "null"] },
                    "renewal_of": { "type": ["string", "null"] }, "created_at": { "type": "integer" }, "updated_at": { "type": "integer" } } },
                "Recovery": { "type": "object", "properties": {
                    "id": s, "state": { "type": "string", "enum": ["requested", "open", "ready", "delivered", "cancelled", "expired", "failed"] },
                    "holder": s, "recipient": s, "serials": { "type": "array", "items": s }, "reason": s,
                    "authorised_by": { "type": ["string", "null"] }, "requested_by": s, "created_at": { "type": "integer" },
                    "opened_at": { "type": ["integer", "null"] }, "expires_at": { "type": ["integer", "null"] }, "closed_at": { "type": ["integer", "null"] },
                    "threshold": { "type": "integer" }, "agents_given": { "type": "array" }, "my_agent_index": { "type": ["integer", "null"] } } },
                "Certificate": { "type": "object", "properties": {
                    "serial": s, "email": s, "subject": s, "profile": s, "not_before": { "type": "integer" },
                    "not_after": { "type": "integer" }, "revoked_at": { "type": ["integer", "null"] }, "pem": s } }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/sign-in": { "post": { "summary": "Mail a sign-in link", "security": [],
                "requestBody": body(json!({ "email": s, "lang": { "type": "string", "enum": ["en", "de"] } }), json!(["email"])),
                "responses": { "202": { "description": "a link was mailed if the address may sign in" }, "422": problem, "429": problem } } },
            "/api/v1/sessions": { "post": { "summary": "Exchange a sign-in link's token for a session token", "security": [],
                "requestBody": body(json!({ "token": s }), json!(["token"])),
                "responses": { "201": { "description": "the session: token, email, expires_at" }, "401": problem } } },
            "/api/v1/sessions/second-factor": { "post": { "summary": "Give the TOTP code (officers, administrators); with `sealed`, confirm an enrolment",
                "requestBody": body(json!({ "code": s, "sealed": s }), json!(["code"])), "responses": { "200": { "description": "done" }, "401": problem } } },
            "/api/v1/sessions/totp-enrolment": { "post": { "summary": "Start TOTP enrolment: a new secret (confirm it with second-factor)",
                "responses": { "200": { "description": "sealed, otpauth_uri, secret" }, "403": problem, "409": problem } } },
            "/api/v1/me": { "get": { "summary": "Who am I", "responses": { "200": { "description": "email, role, second_factor" }, "401": problem } } },
            "/api/v1/applications": {
                "get": { "summary": "My applications", "responses": { "200": { "description": "a list of Application" } } },
                "post": { "summary": "Apply (mails the mailbox validation value)",
                    "requestBody": body(json!({ "given_name": s, "surname": s, "profile": s, "lang": s }), json!(["given_name", "surname"])),
                    "responses": { "201": app, "403": problem, "409": problem, "422": problem } } },
            "/api/v1/applications/{id}": { "parameters": id_param, "get": { "summary": "One of my applications", "responses": { "200": app, "404": problem } } },
            "/api/v1/applications/{id}/mailbox": { "parameters": id_param, "post": { "summary": "Return the mailed value (BR 3.2.2.2)",
                "requestBody": body(json!({ "value": s }), json!(["value"])), "responses": { "200": app, "401": problem, "404": problem, "409": problem } } },
            "/api/v1/applications/{id}/appointment": { "parameters": id_param, "post": { "summary": "Book an identification appointment",
                "requestBody": body(json!({ "slot_id": s }), json!(["slot_id"])), "responses": { "200": { "description": "the slot (booked, or the booked appointment moved to it)" }, "409": problem } },
                "delete": { "summary": "Cancel my appointment to come (the slot is free again)", "responses": { "200": { "description": "the slot" }, "409": problem } } },
            "/api/v1/applications/{id}/csr": { "parameters": id_param, "post": { "summary": "Issue for my own key (PEM CSR)",
                "requestBody": body(json!({ "csr": s }), json!(["csr"])), "responses": { "201": cert, "400": problem, "409": problem, "422": problem } } },
            "/api/v1/applications/{id}/pkcs12": { "parameters": id_param, "post": { "summary": "Issue with a server-made key, delivered once as .p12",
                "requestBody": body(json!({ "password": s, "format": { "type": "string", "enum": ["modern", "compat", "auto"] }, "key": { "type": "string", "enum": ["rsa3072", "rsa4096", "p256", "p384"] },
                    "clients": { "type": "array", "items": { "type": "string", "enum": ["thunderbird", "outlook", "outlook-old-windows", "apple-mail", "apple-mail-old", "ios", "ios-old", "android", "kleopatra", "kleopatra-old", "other"] } } }), json!(["password"])),
                "responses": { "201": { "description": "the .p12", "content": { "application/x-pkcs12": {} } }, "409": problem, "422": problem } } },
            "/api/v1/slots": {
                "get": { "summary": "Free slots (applicants) or all upcoming slots (officers)", "responses": { "200": { "description": "slots" } } },
                "post": { "summary": "Publish a slot (officers)", "requestBody": body(json!({ "starts_at": { "type": "integer" }, "place": s }), json!(["starts_at", "place"])),
                    "responses": { "201": { "description": "the slot" }, "403": problem } } },
            "/api/v1/slots/{slot}": { "parameters": [{ "name": "slot", "in": "path", "required": true, "schema": s }],
                "delete": { "summary": "Remove a free slot (officers)", "responses": { "200": { "description": "removed" }, "403": problem, "404": problem, "409": problem } } },
            "/api/v1/certificates": { "get": { "summary": "My certificates", "responses": { "200": { "description": "a list of Certificate" } } } },
            "/api/v1/certificates/{serial}/revoke": { "parameters": serial_param, "post": { "summary": "Revoke (own, or any for officers)",
                "requestBody": body(json!({ "reason": { "type": "string", "enum": ["key-compromise", "superseded", "affiliation-changed", "cessation-of-operation", "unspecified"] } }), json!(["reason"])),
                "responses": { "200": cert, "404": problem, "409": problem } } },
            "/api/v1/certificates/{serial}/renew": { "parameters": serial_param, "post": { "summary": "Start a renewal (reuses evidence within BR 4.2.1)",
                "responses": { "201": app, "404": problem } } },
            "/api/v1/directory": { "get": { "summary": "Current certificates of an address that one can encrypt to, longest-lasting first (public)", "security": [],
                "parameters": [{ "name": "email", "in": "query", "required": true, "schema": s }],
                "responses": { "200": { "description": "email and certificates" }, "422": problem } } },
            "/api/v1/officer/queue": { "get": { "summary": "Applications waiting (officers), each with its appointment",
                "parameters": [{ "name": "view", "in": "query", "schema": { "type": "string", "enum": ["all", "today"] } },
                    { "name": "q", "in": "query", "description": "part of a name, address or application id", "schema": s }],
                "responses": { "200": { "description": "a list of Application with appointment" }, "400": problem, "403": problem } } },
            "/api/v1/officer/applications/{id}/appointment": { "parameters": id_param, "delete": { "summary": "Cancel an applicant's appointment (the applicant is mailed)",
                "responses": { "200": { "description": "the slot" }, "403": problem, "409": problem } } },
            "/api/v1/officer/applications/{id}/identity": { "parameters": id_param, "post": { "summary": "Record identity evidence (BR 3.2.4)",
                "requestBody": body(json!({ "document_type": { "type": "string", "enum": ["identity-card", "passport", "residence-permit"] }, "issuing_authority": s, "document_number": s, "document_expires": { "type": "string", "format": "date" }, "verified_in_person": { "type": "boolean" } }),
                    json!(["document_type", "issuing_authority", "document_number", "document_expires", "verified_in_person"])),
                "responses": { "200": app, "403": problem, "422": problem } } },
            "/api/v1/officer/applications/{id}/approve": { "parameters": id_param, "post": { "summary": "Approve", "responses": { "200": app, "403": problem, "409": problem } } },
            "/api/v1/officer/applications/{id}/reject": { "parameters": id_param, "post": { "summary": "Reject with a reason",
                "requestBody": body(json!({ "reason": s }), json!(["reason"])), "responses": { "200": app, "403": problem, "409": problem } } }
        }
    });
    // Key recovery (issue 15), added apart: one literal of every path is beyond the
    // json! macro's recursion limit.
    let recovery_paths = json!({
            "/api/v1/recoveries": {
                "get": { "summary": "Key recoveries I have a part in (officers: also those waiting for an identity check or my share; administrators: all)", "responses": { "200": { "description": "a list of Recovery" } } },
                "post": { "summary": "Ask for my own escrowed keys back (opens after an identity check in person)",
                    "requestBody": body(json!({ "reason": s }), json!(["reason"])), "responses": { "201": recovery, "400": problem, "404": problem, "422": problem } } },
            "/api/v1/recoveries/successor": { "post": { "summary": "Ask for a successor's or stand-in's access to someone's escrowed keys of revoked or expired certificates (administrators; opens at once)",
                "requestBody": body(json!({ "holder": s, "recipient": s, "reason": s, "authorised_by": s, "issued_from": { "type": "string", "format": "date" }, "issued_until": { "type": "string", "format": "date" } }), json!(["holder", "recipient", "reason", "authorised_by"])),
                "responses": { "201": recovery, "400": problem, "403": problem, "404": problem, "422": problem } } },
            "/api/v1/recoveries/{id}": { "parameters": id_param, "get": { "summary": "One key recovery", "responses": { "200": recovery, "403": problem, "404": problem } } },
            "/api/v1/recoveries/{id}/identity": { "parameters": id_param, "post": { "summary": "Record the holder's identity check in person (officers, not the holder): opens the recovery",
                "requestBody": body(json!({ "document_type": s, "document_number": s, "verified_in_person": { "type": "boolean" } }), json!(["document_type", "document_number", "verified_in_person"])),
                "responses": { "200": recovery, "400": problem, "403": problem, "409": problem } } },
            "/api/v1/recoveries/{id}/share": { "parameters": id_param, "post": { "summary": "Give my escrow share (key recovery agents), with a fresh authenticator code",
                "requestBody": body(json!({ "share": { "type": "string", "description": "the decrypted message or its CERTDESK ESCROW SHARE PEM block" }, "code": s }), json!(["share", "code"])),
                "responses": { "200": recovery, "400": problem, "401": problem, "403": problem, "409": problem, "422": problem } } },
            "/api/v1/recoveries/{id}/pkcs12": { "parameters": id_param, "post": { "summary": "Receive the recovered keys once, as one .p12 (the recipient)",
                "requestBody": body(json!({ "password": s, "format": { "type": "string", "enum": ["modern", "compat"] } }), json!(["password"])),
                "responses": { "201": { "description": "the .p12", "content": { "application/x-pkcs12": {} } }, "403": problem, "409": problem, "422": problem } } },
            "/api/v1/recoveries/{id}/cancel": { "parameters": id_param, "post": { "summary": "Cancel a recovery (its holder, its requester, administrators)",
                "responses": { "200": recovery, "403": problem, "409": problem } } }
    });
    if let (Some(paths), Some(more)) =
        (document.get_mut("paths").and_then(Value::as_object_mut), recovery_paths.as_object())
    {
        paths.extend(more.clone());
    }
    // The per-client limit (`crate::ratelimit`) applies to every POST and to directory
    // searches: 429 with Retry-After.
    let limited = json!({ "description": "too many requests from this client; try again after Retry-After seconds",
        "headers": { "Retry-After": { "schema": { "type": "integer" } } },
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for (method, operation) in item.as_object_mut().into_iter().flatten() {
                if method == "post" || method == "delete" || (method == "get" && path == "/api/v1/directory") {
                    if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
                        responses.insert("429".into(), limited.clone());
                    }
                }
            }
        }
    }
    document
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_document().to_string()).into_response()
}
