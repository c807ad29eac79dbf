//! Key recovery (issue 15, docs/design/key-escrow.md "Recovery"): the desk decides who
//! may ask, who may give a share and when, and who receives the keys; the CA alone reads
//! shares and escrowed keys (through [`certdesk_core::ports::CertificateAuthority`]).
//!
//! `requested → open → ready → delivered`, or `cancelled`, `expired`, `failed`. A
//! holder's own request opens once an officer (not the holder) records an identity check
//! in person; an administrator's request for a successor or stand-in carries a written
//! reason and the authorising person and opens at once, for keys whose certificates can
//! no longer sign (revoked or expired: every escrowed key signs too until signing-only
//! certificates come). Opening starts the window (`[escrow] recovery_window_hours`, 24 by
//! default). Agents of
//! the escrow key (not the holder, recipient or requester), signed in with their second
//! factor and giving a fresh authenticator code, give the share from their message;
//! `threshold` distinct agents make it `ready`. The recipient chooses the .p12 password
//! and receives every requested key once. Every step and every refusal is audited
//! (`recovery.*`); the holder is mailed at request and at delivery.

use serde_json::json;
use zeroize::Zeroizing;

use super::{forbidden, lang_of, not_found, random_id, refused, Actor, Portal, Role};
use crate::mail;
use certdesk_core::audit::{seal, AuditEvent};
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::ports::Pkcs12Delivery;
use certdesk_store::{KeyRecoveryRecord, RecoveryApproval, RecoveryState};

/// A recovery with what a page shows of it.
#[derive(Clone, Debug)]
pub struct RecoveryView {
    /// The recovery.
    pub recovery: KeyRecoveryRecord,
    /// The agents who gave their share.
    pub approvals: Vec<RecoveryApproval>,
    /// Shares needed.
    pub threshold: u8,
    /// The signed-in user's agent index for its escrow key, if they are an agent.
    pub my_agent_index: Option<u8>,
}

/// What an administrator's request for a successor or stand-in says.
#[derive(Clone, Debug, Default)]
pub struct SuccessorRequest {
    /// Whose keys.
    pub holder: String,
    /// Who receives them.
    pub recipient: String,
    /// Why (written).
    pub reason: String,
    /// Who authorised it (a name and function).
    pub authorised_by: String,
    /// Only certificates issued on or after this day (`YYYY-MM-DD`, empty: any).
    pub issued_from: String,
    /// Only certificates issued on or before this day (`YYYY-MM-DD`, empty: any).
    pub issued_until: String,
}

/// The first (or, `end_of_day`, the last) second of the organisation's day `text`
/// (`YYYY-MM-DD`); `None` for an empty field.
fn day(zone: &certdesk_core::zone::OrgZone, text: &str, end_of_day: bool) -> Result<Option<i64>, DomainError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let bad = || DomainError::new(ErrorCode::BadInput, format!("{text:?} is not a date (YYYY-MM-DD)"));
    let date = time::Date::parse(text, &format).map_err(|_| bad())?;
    let (start, end) = zone.day_bounds(date).ok_or_else(bad)?;
    Ok(Some(if end_of_day { end } else { start }))
}

/// Staff act on recoveries only with their second factor given.
fn second_factor_given(actor: &Actor) -> Result<(), DomainError> {
    if actor.needs_second_factor() {
        return Err(forbidden("give your second factor (authenticator code) first"));
    }
    Ok(())
}

impl Portal {
    /// A refusal, audited (`recovery.refused` with the reason), then returned.
    async fn recovery_refused(&self, actor: &Actor, id: &str, error: DomainError) -> DomainError {
        let details = json!({ "reason": error.to_string(), "by": actor.email() });
        if let Err(e) = self.audit(&actor.audit_name(), "recovery.refused", id, details).await {
            tracing::warn!("the refusal of recovery {id} could not be audited: {e}");
        }
        error
    }

    /// The escrowed keys of `holder` (serial, escrow key, certificate), oldest first.
    async fn escrowed_of(
        &self,
        holder: &str,
    ) -> Result<Vec<(String, String, certdesk_store::CertificateRecord)>, DomainError> {
        let mut out = Vec::new();
        for escrowed in self.store().escrowed_keys().await? {
            if let Some(cert) = self.store().certificate(&escrowed.serial).await? {
                if cert.email == holder {
                    out.push((escrowed.serial, escrowed.key_id, cert));
                }
            }
        }
        Ok(out)
    }

    /// The one escrow key of `keys`, or a refusal naming the choice.
    fn one_escrow_key(keys: &[(String, String, certdesk_store::CertificateRecord)]) -> Result<String, DomainError> {
        let mut ids: Vec<&String> = keys.iter().map(|(_, k, _)| k).collect();
        ids.dedup();
        match ids.as_slice() {
            [] => Err(DomainError::new(ErrorCode::NotFound, "no certificate of this person has an escrowed key")),
            [one] => Ok((*one).clone()),
            _ => Err(refused(
                "these keys are escrowed to different escrow keys: limit the request by date so that one escrow key \
                 holds them all",
            )),
        }
    }

    /// The signed-in applicant asks for their own escrowed keys back (lost keys). It
    /// opens once an officer records an identity check in person.
    pub async fn request_own_recovery(&self, actor: &Actor, reason: &str) -> Result<KeyRecoveryRecord, DomainError> {
        second_factor_given(actor)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(DomainError::new(ErrorCode::BadInput, "say why you need your keys back"));
        }
        let holder = actor.email().to_ascii_lowercase();
        let keys = self.escrowed_of(&holder).await?;
        let key_id = Self::one_escrow_key(&keys)?;
        self.create_recovery(actor, &holder, &holder, keys, key_id, reason, None, RecoveryState::Requested).await
    }

    /// An administrator asks for a successor's or stand-in's access to `holder`'s
    /// escrowed keys whose certificates can no longer sign (revoked or expired), of the
    /// date range given. Opens at once.
    pub async fn request_successor_recovery(
        &self,
        actor: &Actor,
        request: &SuccessorRequest,
    ) -> Result<KeyRecoveryRecord, DomainError> {
        self.require_admin(actor)?;
        let holder = self.check_address(&request.holder)?;
        let recipient = self.check_address(&request.recipient)?;
        let (reason, authorised_by) = (request.reason.trim(), request.authorised_by.trim());
        if reason.is_empty() || authorised_by.is_empty() {
            return Err(DomainError::new(
                ErrorCode::BadInput,
                "a recovery for someone else needs a written reason and the person who authorised it",
            ));
        }
        if recipient == holder {
            return Err(refused("the holder asks for their own keys themselves (with an identity check in person)"));
        }
        if recipient == actor.email() {
            return Err(refused("an administrator cannot ask for keys for themselves"));
        }
        let zone = self.zone();
        let (from, until) = (day(zone, &request.issued_from, false)?, day(zone, &request.issued_until, true)?);
        let now = self.now();
        let keys: Vec<_> = self
            .escrowed_of(&holder)
            .await?
            .into_iter()
            .filter(|(_, _, c)| from.is_none_or(|f| c.issued_at >= f) && until.is_none_or(|u| c.issued_at <= u))
            .collect();
        if keys.is_empty() {
            return Err(DomainError::new(ErrorCode::NotFound, format!("{holder} has no escrowed key in that range")));
        }
        if let Some((serial, _, _)) =
            keys.iter().find(|(_, _, c)| c.revoked_at.is_none() && c.not_after > now && crate::directory::signs(&c.der))
        {
            return Err(refused(format!(
                "certificate {serial} still signs: a successor gets keys for encryption only, or keys whose \
                 certificates are revoked or expired (revoke it first, or limit the date range)"
            )));
        }
        let key_id = Self::one_escrow_key(&keys)?;
        let authorised = Some(authorised_by.to_string());
        self.create_recovery(actor, &holder, &recipient, keys, key_id, reason, authorised, RecoveryState::Open).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_recovery(
        &self,
        actor: &Actor,
        holder: &str,
        recipient: &str,
        keys: Vec<(String, String, certdesk_store::CertificateRecord)>,
        key_id: String,
        reason: &str,
        authorised_by: Option<String>,
        state: RecoveryState,
    ) -> Result<KeyRecoveryRecord, DomainError> {
        let now = self.now();
        let open = state == RecoveryState::Open;
        let recovery = KeyRecoveryRecord {
            id: random_id(12)?,
            key_id,
            holder: holder.to_string(),
            recipient: recipient.to_string(),
            serials: keys.into_iter().map(|(s, _, _)| s).collect(),
            reason: reason.to_string(),
            authorised_by,
            requested_by: actor.email().to_string(),
            state,
            created_at: now,
            opened_at: open.then_some(now),
            expires_at: open.then_some(now + self.config.recovery_window_seconds),
            closed_at: None,
            version: 1,
        };
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "recovery.request",
            subject: recovery.id.clone(),
            details: json!({
                "holder": recovery.holder,
                "recipient": recovery.recipient,
                "serials": recovery.serials,
                "escrow_key": recovery.key_id,
                "reason": recovery.reason,
                "authorised_by": recovery.authorised_by,
                "state": recovery.state.name(),
            }),
        };
        self.store().insert_recovery(&recovery, &|seq, prev| seal(&event, now, seq, prev)).await?;
        self.mail_holder(&recovery, false).await;
        Ok(recovery)
    }

    async fn mail_holder(&self, recovery: &KeyRecoveryRecord, delivered: bool) {
        let lang = match self.store().applications_of(&recovery.holder).await {
            Ok(apps) => apps.first().map(|a| a.lang.clone()).unwrap_or_default(),
            Err(_) => String::new(),
        };
        let link = format!("{}/recoveries/{}", self.public_url, recovery.id);
        let sent = self
            .send(&recovery.holder, |to| {
                mail::recovery_mail(lang_of(&lang), to, delivered, &recovery.recipient, recovery.serials.len(), &link)
            })
            .await;
        if let Err(e) = sent {
            tracing::warn!("the mail about recovery {} failed: {e}", recovery.id);
        }
    }

    /// A recovery as `actor` may see it: its holder, recipient or requester, an
    /// officer or an administrator. A window that ended moves it to `expired` first.
    pub async fn recovery_view(&self, actor: &Actor, id: &str) -> Result<RecoveryView, DomainError> {
        second_factor_given(actor)?;
        let recovery = self.store().recovery(id).await?.ok_or_else(|| not_found("recovery"))?;
        let email = actor.email();
        let involved = recovery.holder == email || recovery.recipient == email || recovery.requested_by == email;
        if !involved {
            self.require_officer(actor)?;
        }
        let recovery = self.expire_if_due(recovery).await?;
        let view = self.view(actor, recovery).await?;
        // Officers see what is theirs to do: an identity check, their share.
        if !(involved || actor.role == Role::Admin || Self::officer_task(&view)) {
            let e = forbidden("this recovery is not yours to see");
            return Err(self.recovery_refused(actor, id, e).await);
        }
        Ok(view)
    }

    /// What `actor` is shown of a recovery they just acted on (asked for, opened, gave a
    /// share to, cancelled): the answer to that action, whatever they may see later.
    pub async fn recovery_outcome(
        &self,
        actor: &Actor,
        recovery: KeyRecoveryRecord,
    ) -> Result<RecoveryView, DomainError> {
        self.view(actor, recovery).await
    }

    /// Whether an officer has a step of `view` to do: the identity check of a request,
    /// or their share as an agent of its escrow key.
    fn officer_task(view: &RecoveryView) -> bool {
        view.recovery.state == RecoveryState::Requested
            || (view.my_agent_index.is_some() && !view.recovery.state.is_closed())
    }

    async fn view(&self, actor: &Actor, recovery: KeyRecoveryRecord) -> Result<RecoveryView, DomainError> {
        let key = self.store().escrow_keys().await?.into_iter().find(|k| k.key_id == recovery.key_id);
        let threshold = key.map_or(0, |k| k.threshold);
        let my_agent_index = if actor.role == Role::Applicant {
            None
        } else {
            self.store()
                .escrow_agents(&recovery.key_id)
                .await?
                .into_iter()
                .find(|a| a.email == actor.email())
                .map(|a| a.index)
        };
        let approvals = self.store().recovery_approvals(&recovery.id).await?;
        Ok(RecoveryView { recovery, approvals, threshold, my_agent_index })
    }

    /// The recoveries `actor` has a part in: their own (holder, recipient, requester);
    /// for officers also those waiting for an identity check or for their share; for
    /// administrators all. Newest first.
    pub async fn recoveries_for(&self, actor: &Actor) -> Result<Vec<RecoveryView>, DomainError> {
        let email = actor.email();
        let staff = actor.role != Role::Applicant && actor.has_second_factor();
        let mut out = Vec::new();
        for recovery in self.store().recoveries().await? {
            let involved = recovery.holder == email || recovery.recipient == email || recovery.requested_by == email;
            if !(involved || staff) {
                continue;
            }
            let recovery = self.expire_if_due(recovery).await?;
            let view = self.view(actor, recovery).await?;
            let relevant = involved || actor.role == Role::Admin || Self::officer_task(&view);
            if relevant {
                out.push(view);
            }
        }
        Ok(out)
    }

    /// Moves `recovery` to `to` (version checked), audited as `action`; the shares held
    /// are forgotten when it closes.
    async fn move_recovery(
        &self,
        actor: &str,
        recovery: &KeyRecoveryRecord,
        to: KeyRecoveryRecord,
        clear_approvals: bool,
        action: &'static str,
        details: serde_json::Value,
    ) -> Result<KeyRecoveryRecord, DomainError> {
        let now = self.now();
        let to = KeyRecoveryRecord { version: recovery.version + 1, ..to };
        let event = AuditEvent { actor: actor.to_string(), action, subject: recovery.id.clone(), details };
        if !self.store().update_recovery(&to, clear_approvals, &|seq, prev| seal(&event, now, seq, prev)).await? {
            return Err(DomainError::new(ErrorCode::Conflict, "the recovery changed meanwhile; look again"));
        }
        if to.state.is_closed() || clear_approvals {
            self.ca.forget_escrow_shares(&to.id);
        }
        Ok(to)
    }

    async fn expire_if_due(&self, recovery: KeyRecoveryRecord) -> Result<KeyRecoveryRecord, DomainError> {
        let now = self.now();
        let due = matches!(recovery.state, RecoveryState::Open | RecoveryState::Ready)
            && recovery.expires_at.is_some_and(|e| now >= e);
        if !due {
            return Ok(recovery);
        }
        let to = KeyRecoveryRecord { state: RecoveryState::Expired, closed_at: Some(now), ..recovery.clone() };
        match self.move_recovery("certdesk", &recovery, to, false, "recovery.expire", json!({})).await {
            Ok(moved) => Ok(moved),
            // Another request expired it first.
            Err(e) if e.code() == ErrorCode::Conflict => {
                self.store().recovery(&recovery.id).await?.ok_or_else(|| not_found("recovery"))
            }
            Err(e) => Err(e),
        }
    }

    /// Expires every recovery whose window ended (`jobs`); returns how many.
    pub async fn expire_recoveries(&self) -> Result<usize, DomainError> {
        let mut expired = 0;
        for recovery in self.store().recoveries().await? {
            if self.expire_if_due(recovery.clone()).await?.state != recovery.state {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// An officer (not the holder) records the identity check in person of a holder's own
    /// request: it opens, and the window starts.
    pub async fn record_recovery_identity(
        &self,
        actor: &Actor,
        id: &str,
        document: &str,
        number: &str,
        in_person: bool,
    ) -> Result<KeyRecoveryRecord, DomainError> {
        self.require_officer(actor)?;
        let recovery = self.store().recovery(id).await?.ok_or_else(|| not_found("recovery"))?;
        let outcome = async {
            if recovery.holder == actor.email() {
                return Err(forbidden("another officer checks your identity"));
            }
            if recovery.state != RecoveryState::Requested {
                return Err(DomainError::new(
                    ErrorCode::Conflict,
                    format!("the recovery is {}, not waiting for an identity check", recovery.state.name()),
                ));
            }
            if !in_person || document.trim().is_empty() || number.trim().is_empty() {
                return Err(DomainError::new(
                    ErrorCode::BadInput,
                    "record the document type and number, checked in person",
                ));
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            return Err(self.recovery_refused(actor, id, e).await);
        }
        let now = self.now();
        let to = KeyRecoveryRecord {
            state: RecoveryState::Open,
            opened_at: Some(now),
            expires_at: Some(now + self.config.recovery_window_seconds),
            ..recovery.clone()
        };
        let details = json!({
            "document_type": document.trim(),
            "document_number": number.trim(),
            "in_person": true,
            "expires_at": to.expires_at,
        });
        self.move_recovery(&actor.audit_name(), &recovery, to, false, "recovery.open", details).await
    }

    /// An agent of the recovery's escrow key gives their share (`share`: the decrypted
    /// message or the PEM block), confirmed with a fresh authenticator `code`. Returns
    /// the recovery (`ready` once `threshold` distinct agents gave theirs).
    pub async fn give_recovery_share(
        &self,
        actor: &Actor,
        id: &str,
        share: Zeroizing<Vec<u8>>,
        code: &str,
    ) -> Result<KeyRecoveryRecord, DomainError> {
        if actor.role == Role::Applicant {
            let e = forbidden("this is for key recovery agents");
            return Err(self.recovery_refused(actor, id, e).await);
        }
        self.require_officer(actor)?;
        let recovery = self.store().recovery(id).await?.ok_or_else(|| not_found("recovery"))?;
        let mut recovery = self.expire_if_due(recovery).await?;
        let agents = self.store().escrow_agents(&recovery.key_id).await?;
        // Approvals whose shares this process does not hold were given before a restart
        // (or to another process): voided, and those agents give theirs again.
        let approved = self.store().recovery_approvals(id).await?.len();
        if recovery.state == RecoveryState::Open && approved > self.ca.escrow_shares_held(id) {
            let to = recovery.clone();
            let details = json!({ "approvals_voided": approved });
            recovery = self.move_recovery("certdesk", &recovery, to, true, "recovery.shares-lost", details).await?;
        }
        let threshold = self
            .store()
            .escrow_keys()
            .await?
            .into_iter()
            .find(|k| k.key_id == recovery.key_id)
            .map_or(0, |k| k.threshold);
        let checked = async {
            let agent = agents
                .iter()
                .find(|a| a.email == actor.email())
                .ok_or_else(|| forbidden("you are not a key recovery agent of the escrow key of this recovery"))?;
            let email = actor.email();
            if recovery.holder == email || recovery.recipient == email || recovery.requested_by == email {
                return Err(forbidden(
                    "an agent cannot approve a recovery of their own keys, for themselves or asked by themselves",
                ));
            }
            match recovery.state {
                RecoveryState::Open => {}
                RecoveryState::Expired => {
                    return Err(DomainError::new(
                        ErrorCode::Conflict,
                        "the window of this recovery has passed: it must be asked for again",
                    ))
                }
                other => {
                    return Err(DomainError::new(
                        ErrorCode::Conflict,
                        format!("the recovery is {}, not open for shares", other.name()),
                    ))
                }
            }
            if self.store().recovery_approvals(id).await?.iter().any(|a| a.index == agent.index) {
                return Err(refused(format!(
                    "agent {} ({}) gave a share already: a recovery needs distinct agents",
                    agent.index, agent.email
                )));
            }
            // A fresh code: approving is a decision of its own, not of the session.
            self.second_factor(actor, code).await?;
            let held = self.ca.take_escrow_share(id, &recovery.key_id, agent.index, share).await?;
            Ok((agent.index, held))
        }
        .await;
        let (index, _) = match checked {
            Ok(ok) => ok,
            Err(e) => return Err(self.recovery_refused(actor, id, e).await),
        };
        let now = self.now();
        let approval = RecoveryApproval { index, agent: actor.email().to_string(), approved_at: now };
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "recovery.approve",
            subject: id.to_string(),
            details: json!({ "agent": approval.agent, "index": index }),
        };
        let recorded =
            self.store().add_recovery_approval(id, &approval, &|seq, prev| seal(&event, now, seq, prev)).await;
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                // Closed meanwhile (cancelled, expired) or the same agent in a parallel
                // request: the share just taken goes.
                self.ca.forget_escrow_share(id, index);
                let e = DomainError::new(
                    ErrorCode::Conflict,
                    "the recovery changed meanwhile (closed, or this share was given in another request)",
                );
                return Err(self.recovery_refused(actor, id, e).await);
            }
            Err(e) => {
                self.ca.forget_escrow_share(id, index);
                return Err(e);
            }
        }
        self.promote_if_complete(id, threshold).await
    }

    /// Moves an open recovery to `ready` once `threshold` agents approved and this
    /// process holds their shares (counted afresh: agents may give theirs at once); a
    /// recovery closed meanwhile has its shares forgotten.
    async fn promote_if_complete(&self, id: &str, threshold: u8) -> Result<KeyRecoveryRecord, DomainError> {
        for _ in 0..3 {
            let current = self.store().recovery(id).await?.ok_or_else(|| not_found("recovery"))?;
            if current.state.is_closed() {
                self.ca.forget_escrow_shares(id);
                return Ok(current);
            }
            let approvals = self.store().recovery_approvals(id).await?.len();
            let held = self.ca.escrow_shares_held(id);
            let needed = usize::from(threshold);
            if current.state != RecoveryState::Open || approvals < needed || held < needed {
                return Ok(current);
            }
            let to = KeyRecoveryRecord { state: RecoveryState::Ready, ..current.clone() };
            let details = json!({ "agents": approvals });
            match self.move_recovery("certdesk", &current, to, false, "recovery.ready", details).await {
                Err(e) if e.code() == ErrorCode::Conflict => continue, // moved by the other agent's request
                other => return other,
            }
        }
        self.store().recovery(id).await?.ok_or_else(|| not_found("recovery"))
    }

    /// The recipient takes the recovered keys, once, as a .p12 under the password they
    /// choose. The shares are combined only now, and wiped with every key after.
    pub async fn deliver_recovery(
        &self,
        actor: &Actor,
        id: &str,
        delivery: Pkcs12Delivery,
    ) -> Result<(KeyRecoveryRecord, Vec<u8>), DomainError> {
        second_factor_given(actor)?;
        let recovery = self.store().recovery(id).await?.ok_or_else(|| not_found("recovery"))?;
        if recovery.recipient != actor.email() {
            let e = forbidden("only the recipient named in the request receives the keys");
            return Err(self.recovery_refused(actor, id, e).await);
        }
        let recovery = self.expire_if_due(recovery).await?;
        if recovery.state != RecoveryState::Ready {
            let e = DomainError::new(
                ErrorCode::Conflict,
                match recovery.state {
                    RecoveryState::Expired => "the window of this recovery has passed: ask again".to_string(),
                    RecoveryState::Delivered => "the keys were handed out already (once)".to_string(),
                    other => format!("the recovery is {}: not enough agents have given their share", other.name()),
                },
            );
            return Err(self.recovery_refused(actor, id, e).await);
        }
        let key = self.store().escrow_keys().await?.into_iter().find(|k| k.key_id == recovery.key_id);
        let threshold = usize::from(key.map_or(0, |k| k.threshold));
        if self.ca.escrow_shares_held(id) < threshold {
            // The process restarted (shares are never stored): the agents give theirs again.
            let to = KeyRecoveryRecord { state: RecoveryState::Open, ..recovery.clone() };
            self.move_recovery("certdesk", &recovery, to, true, "recovery.shares-lost", json!({})).await?;
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "the shares given were lost (the service restarted): the agents give them again within the window",
            ));
        }
        let p12 = match self.ca.recover_escrowed_keys(id, &recovery.key_id, &recovery.serials, delivery).await {
            Ok(p12) => p12,
            // A weak password, or another request delivering now: the shares are still
            // here, nothing changed.
            Err(e) if self.ca.escrow_shares_held(id) >= threshold => return Err(e),
            Err(e) => {
                // The shares were used up. Keys that do not come back: failed. Anything
                // else (the database, the task): open again, the agents give theirs anew.
                let now = self.now();
                let (to, action, clear) = if e.code() == ErrorCode::Refused {
                    let to =
                        KeyRecoveryRecord { state: RecoveryState::Failed, closed_at: Some(now), ..recovery.clone() };
                    (to, "recovery.fail", false)
                } else {
                    (KeyRecoveryRecord { state: RecoveryState::Open, ..recovery.clone() }, "recovery.shares-lost", true)
                };
                let details = json!({ "reason": e.to_string() });
                if let Err(moved) = self.move_recovery("certdesk", &recovery, to, clear, action, details).await {
                    tracing::warn!("recovery {id}: after `{e}`, the state could not be recorded: {moved}");
                }
                return Err(e);
            }
        };
        let now = self.now();
        let to = KeyRecoveryRecord { state: RecoveryState::Delivered, closed_at: Some(now), ..recovery.clone() };
        let sha256 = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &p12));
        let details = json!({ "serials": recovery.serials, "recipient": recovery.recipient, "p12_sha256": sha256 });
        let delivered =
            self.move_recovery(&actor.audit_name(), &recovery, to, false, "recovery.deliver", details).await?;
        self.mail_holder(&delivered, true).await;
        Ok((delivered, p12))
    }

    /// Cancels a recovery not yet closed: its holder, requester or an administrator.
    pub async fn cancel_recovery(&self, actor: &Actor, id: &str) -> Result<KeyRecoveryRecord, DomainError> {
        second_factor_given(actor)?;
        let recovery = self.store().recovery(id).await?.ok_or_else(|| not_found("recovery"))?;
        let email = actor.email();
        // A recovery an administrator asked for (a successor's) is the requester's or an
        // administrator's to cancel, not the holder's.
        let own = recovery.requested_by == email || (recovery.holder == email && recovery.authorised_by.is_none());
        if !own && actor.role != Role::Admin {
            let e = forbidden("only who asked for this recovery, or an administrator, can cancel it");
            return Err(self.recovery_refused(actor, id, e).await);
        }
        if !own {
            self.require_admin(actor)?;
        }
        if recovery.state.is_closed() {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                format!("the recovery is {} already", recovery.state.name()),
            ));
        }
        let now = self.now();
        let to = KeyRecoveryRecord { state: RecoveryState::Cancelled, closed_at: Some(now), ..recovery.clone() };
        self.move_recovery(&actor.audit_name(), &recovery, to, false, "recovery.cancel", json!({})).await
    }
}
