//! Appointments at the service desk for the identity check (BR 3.2.4): officers publish
//! and remove slots; an applicant books one, moves it to another or cancels it; an
//! officer cancels a booking (the applicant is mailed); an application that needs
//! no appointment any more (withdrawn, rejected, identity recorded) frees its slot to
//! come (in the store, in the same transaction). The officer's queue
//! shows each application with its appointment, today's appointments, and a search.
//!
//! Every change is audited: `appointment.publish`, `.remove`, `.book`, `.rebook`,
//! `.cancel` (with who cancelled); a slot freed by a withdrawal, rejection, identity
//! check or approval is named (`freed_slot`) in that transition's record.

use serde_json::json;
use time::OffsetDateTime;

use super::{internal, lang_of, not_found, random_id, refused, Actor, Portal};
use crate::mail;
use certdesk_core::audit::{seal, AuditEvent};
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::workflow::{Application, ApplicationState};
use certdesk_store::SlotRecord;

/// What part of the queue an officer looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// Only applications with an appointment today (the organisation's day), soonest
    /// first.
    pub today: bool,
    /// Only applications whose name, address or id contain this (any case); empty: all.
    pub search: String,
}

/// An application in the officer's queue with its appointment.
#[derive(Clone, Debug)]
pub struct QueueEntry {
    /// The application.
    pub application: Application,
    /// The slot it booked (past ones included: a missed appointment shows).
    pub slot: Option<SlotRecord>,
}

impl Portal {
    /// Free appointment slots.
    pub async fn free_slots(&self) -> Result<Vec<SlotRecord>, DomainError> {
        Ok(self.store().upcoming_slots(self.now()).await?.into_iter().filter(|s| s.application_id.is_none()).collect())
    }

    /// The appointment an application booked.
    pub async fn appointment(&self, app: &Application) -> Result<Option<SlotRecord>, DomainError> {
        self.store().slot_of(&app.id).await
    }

    /// Whether a slot is still to come (by the desk's clock).
    pub fn is_upcoming(&self, slot: &SlotRecord) -> bool {
        slot.starts_at > self.now()
    }

    fn needs_appointment(app: &Application) -> Result<(), DomainError> {
        if app.state != ApplicationState::AwaitingChecks || app.identity.is_some() {
            return Err(DomainError::new(ErrorCode::Conflict, "this application needs no appointment"));
        }
        Ok(())
    }

    /// Books an identification appointment, or moves the one booked to another slot,
    /// and mails the confirmation of the (new) time.
    pub async fn book(&self, actor: &Actor, id: &str, slot_id: &str) -> Result<SlotRecord, DomainError> {
        let app = self.own_application(actor, id).await?;
        Self::needs_appointment(&app)?;
        let now = self.now();
        let before = self.store().slot_of(&app.id).await?;
        if before.as_ref().is_some_and(|s| s.id == slot_id) {
            return Err(DomainError::new(ErrorCode::Conflict, "this is the appointment you booked already"));
        }
        let (action, details) = match &before {
            Some(old) => ("appointment.rebook", json!({ "slot": slot_id, "from": old.id })),
            None => ("appointment.book", json!({ "slot": slot_id })),
        };
        let event = AuditEvent { actor: actor.audit_name(), action, subject: app.id.clone(), details };
        if !self.store().book_slot(slot_id, &app.id, now, &|seq, prev| seal(&event, now, seq, prev)).await? {
            // The application changed meanwhile (withdrawn, rejected, identity checked)?
            Self::needs_appointment(&self.own_application(actor, id).await?)?;
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "this appointment is no longer free; choose another one",
            ));
        }
        let slot = self.store().slot_of(&app.id).await?.ok_or_else(|| internal("the booked slot vanished"))?;
        // Booked: a failed confirmation mail is logged, not an error (the page shows the
        // appointment, and the reminder follows the day before).
        if let Some(when) = self.zone().local(slot.starts_at) {
            let sent =
                self.send(&app.email, |to| mail::appointment_mail(lang_of(&app.lang), to, &when, &slot.place)).await;
            if let Err(e) = sent {
                tracing::warn!("the confirmation of appointment {} for {} failed: {e}", slot.id, app.id);
            }
        }
        Ok(slot)
    }

    /// The applicant cancels their appointment to come (the slot is free again).
    pub async fn cancel_appointment(&self, actor: &Actor, id: &str) -> Result<SlotRecord, DomainError> {
        let app = self.own_application(actor, id).await?;
        self.release(actor, &app, "applicant").await
    }

    /// An officer cancels an applicant's appointment to come; the applicant is mailed
    /// and asked to book another.
    pub async fn officer_cancel_appointment(&self, actor: &Actor, id: &str) -> Result<SlotRecord, DomainError> {
        let app = self.application_for_officer(actor, id).await?;
        Self::needs_appointment(&app)?;
        let slot = self.release(actor, &app, "officer").await?;
        // Cancelled: the mail is sent once; should it fail, the failure is logged (the
        // application's page shows no appointment and offers the free ones).
        let link = format!("{}/applications/{}", self.public_url, app.id);
        if let Some(when) = self.zone().local(slot.starts_at) {
            let sent = self
                .send(&app.email, |to| mail::appointment_cancelled_mail(lang_of(&app.lang), to, &when, &link))
                .await;
            if let Err(e) = sent {
                tracing::warn!("the cancellation notice of appointment {} for {} failed: {e}", slot.id, app.id);
            }
        }
        Ok(slot)
    }

    async fn release(&self, actor: &Actor, app: &Application, by: &str) -> Result<SlotRecord, DomainError> {
        let now = self.now();
        let booked = self.store().slot_of(&app.id).await?.filter(|s| s.starts_at > now);
        let Some(booked) = booked else {
            return Err(DomainError::new(ErrorCode::Conflict, "there is no appointment to come to cancel"));
        };
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "appointment.cancel",
            subject: app.id.clone(),
            details: json!({ "slot": booked.id, "starts_at": booked.starts_at, "by": by }),
        };
        self.store()
            .release_slot(&app.id, now, &|seq, prev| seal(&event, now, seq, prev))
            .await?
            .ok_or_else(|| DomainError::new(ErrorCode::Conflict, "there is no appointment to come to cancel"))
    }

    /// Publishes an appointment slot.
    pub async fn add_slot(
        &self,
        actor: &Actor,
        starts_at: OffsetDateTime,
        place: &str,
    ) -> Result<SlotRecord, DomainError> {
        self.require_officer(actor)?;
        let place = place.trim();
        if place.is_empty() || place.chars().count() > 100 || place.chars().any(char::is_control) {
            return Err(refused("the place must be 1 to 100 characters"));
        }
        let now = self.now();
        if starts_at.unix_timestamp() <= now {
            return Err(refused("the slot must be in the future"));
        }
        let slot = SlotRecord {
            id: random_id(9)?,
            starts_at: starts_at.unix_timestamp(),
            place: place.to_string(),
            created_by: actor.email().to_string(),
            application_id: None,
            booked_at: None,
        };
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "appointment.publish",
            subject: slot.id.clone(),
            details: json!({ "starts_at": slot.starts_at, "place": slot.place }),
        };
        self.store().insert_slot(&slot, &|seq, prev| seal(&event, now, seq, prev)).await?;
        Ok(slot)
    }

    /// Removes a free slot that has not begun (officers); a booked one is cancelled
    /// first, so that its applicant is told.
    pub async fn remove_slot(&self, actor: &Actor, slot_id: &str) -> Result<(), DomainError> {
        self.require_officer(actor)?;
        let slot = self.store().slot(slot_id).await?.ok_or_else(|| not_found("appointment slot"))?;
        if slot.application_id.is_some() {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "this slot is booked: cancel the appointment first, so that the applicant is told",
            ));
        }
        let now = self.now();
        let event = AuditEvent {
            actor: actor.audit_name(),
            action: "appointment.remove",
            subject: slot.id.clone(),
            details: json!({ "starts_at": slot.starts_at, "place": slot.place }),
        };
        if !self.store().delete_free_slot(&slot.id, now, &|seq, prev| seal(&event, now, seq, prev)).await? {
            return Err(DomainError::new(ErrorCode::Conflict, "this slot was booked or has begun meanwhile"));
        }
        Ok(())
    }

    /// Every upcoming slot, booked or free (officers).
    pub async fn all_slots(&self, actor: &Actor) -> Result<Vec<SlotRecord>, DomainError> {
        self.require_officer(actor)?;
        self.store().upcoming_slots(self.now()).await
    }

    /// Applications waiting for the desk, oldest first, then the approved ones, each
    /// with its appointment; `filter` narrows them (today's appointments are sorted by
    /// time).
    pub async fn queue(&self, actor: &Actor, filter: &QueueFilter) -> Result<Vec<QueueEntry>, DomainError> {
        self.require_officer(actor)?;
        let mut entries = Vec::new();
        for state in [ApplicationState::AwaitingChecks, ApplicationState::Approved] {
            let mut slots: std::collections::HashMap<String, SlotRecord> = self
                .store()
                .slots_of_applications_in(state)
                .await?
                .into_iter()
                .filter_map(|s| Some((s.application_id.clone()?, s)))
                .collect();
            for application in self.store().applications_in(state).await? {
                let slot = slots.remove(&application.id);
                entries.push(QueueEntry { application, slot });
            }
        }
        let needle = filter.search.trim().to_lowercase();
        if !needle.is_empty() {
            entries.retain(|e| {
                let a = &e.application;
                [&a.given_name, &a.surname, &a.email, &a.id].iter().any(|t| t.to_lowercase().contains(&needle))
                    || format!("{} {}", a.given_name, a.surname).to_lowercase().contains(&needle)
            });
        }
        if filter.today {
            let today = self.zone().date_of(self.now()).ok_or_else(|| internal("bad clock"))?;
            let (start, end) = self.zone().day_bounds(today).ok_or_else(|| internal("bad clock"))?;
            entries.retain(|e| e.slot.as_ref().is_some_and(|s| (start..=end).contains(&s.starts_at)));
            entries.sort_by_key(|e| e.slot.as_ref().map(|s| s.starts_at));
        }
        Ok(entries)
    }
}
