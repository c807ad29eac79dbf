//! The application state machine (pure: no I/O, time passed in).
//!
//! An application moves `AwaitingChecks` → `Approved` → `Issued`; it may be `Rejected`
//! by an officer or `Withdrawn` by the applicant before issuance. Two checks must pass
//! before an officer may approve (and nothing is issued before approval):
//!
//! - the mailbox: the applicant returned the random value mailed to the address
//!   (CA/B Forum S/MIME BR 3.2.2.2),
//! - the identity: an officer saw an official photo ID in person and recorded its type,
//!   issuer, number and expiry (BR 3.2.4).
//!
//! A renewal may carry over identity evidence verified within [`IDENTITY_REUSE_DAYS`]
//! and a mailbox validation done within [`MAILBOX_REUSE_DAYS`] (BR 4.2.1 data reuse).
//! The officer who approves may not be the applicant (separation of duties).

use crate::records::ProfileId;
use time::{Date, OffsetDateTime};

/// BR 4.2.1: validated individual identity data may be reused for up to 825 days.
pub const IDENTITY_REUSE_DAYS: i64 = 825;
/// BR 4.2.1: mailbox validation may be reused for up to 30 days.
pub const MAILBOX_REUSE_DAYS: i64 = 30;

/// Where an application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplicationState {
    /// Submitted; mailbox and identity checks pending or done, no decision yet.
    AwaitingChecks,
    /// Both checks passed and an officer approved: the applicant may now choose a key path.
    Approved,
    /// A certificate was issued for it.
    Issued,
    /// An officer rejected it (the reason is recorded).
    Rejected,
    /// The applicant withdrew it.
    Withdrawn,
}

impl ApplicationState {
    /// Every state.
    pub const ALL: [ApplicationState; 5] = [
        ApplicationState::AwaitingChecks,
        ApplicationState::Approved,
        ApplicationState::Issued,
        ApplicationState::Rejected,
        ApplicationState::Withdrawn,
    ];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            ApplicationState::AwaitingChecks => "awaiting-checks",
            ApplicationState::Approved => "approved",
            ApplicationState::Issued => "issued",
            ApplicationState::Rejected => "rejected",
            ApplicationState::Withdrawn => "withdrawn",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether no further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(self, ApplicationState::Issued | ApplicationState::Rejected | ApplicationState::Withdrawn)
    }
}

/// The kinds of official photo ID accepted (BR 3.2.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocumentType {
    /// National identity card.
    IdentityCard,
    /// Passport.
    Passport,
    /// Residence permit with photo.
    ResidencePermit,
}

impl DocumentType {
    /// Every type.
    pub const ALL: [DocumentType; 3] =
        [DocumentType::IdentityCard, DocumentType::Passport, DocumentType::ResidencePermit];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            DocumentType::IdentityCard => "identity-card",
            DocumentType::Passport => "passport",
            DocumentType::ResidencePermit => "residence-permit",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What the officer recorded at the desk (BR 3.2.4: type, issuer, number, expiry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityEvidence {
    /// The document's kind.
    pub document_type: DocumentType,
    /// The issuing authority, e.g. "Stadt Köln".
    pub issuing_authority: String,
    /// The document number.
    pub document_number: String,
    /// The document's expiry date.
    pub document_expires: Date,
    /// The officer confirmed the person was present and matched the photo.
    pub verified_in_person: bool,
    /// The officer (e-mail) who checked.
    pub officer: String,
    /// When (Unix seconds).
    pub verified_at: i64,
}

/// An officer's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The officer (e-mail).
    pub officer: String,
    /// When (Unix seconds).
    pub at: i64,
    /// The reason (required for rejections).
    pub reason: Option<String>,
}

/// An application for a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// Random identifier (hex).
    pub id: String,
    /// The applicant's mailbox (the certificate's address).
    pub email: String,
    /// Given name as on the ID.
    pub given_name: String,
    /// Surname as on the ID.
    pub surname: String,
    /// Profile name.
    pub profile: ProfileId,
    /// The state.
    pub state: ApplicationState,
    /// When the mailbox was validated (Unix seconds).
    pub mailbox_validated_at: Option<i64>,
    /// The identity evidence.
    pub identity: Option<IdentityEvidence>,
    /// The approval or rejection.
    pub decision: Option<Decision>,
    /// The certificate issued (serial, hex).
    pub serial: Option<String>,
    /// The certificate this renews.
    pub renewal_of: Option<String>,
    /// Preferred language of mails ("en" or "de").
    pub lang: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Optimistic-concurrency version: each stored change increments it.
    pub version: i64,
}

/// What happens to an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The applicant returned the mailed random value.
    MailboxValidated {
        /// When.
        at: i64,
    },
    /// An officer recorded the identity evidence.
    IdentityRecorded(IdentityEvidence),
    /// An officer approved.
    Approved(Decision),
    /// An officer rejected.
    Rejected(Decision),
    /// A certificate was issued.
    Issued {
        /// Its serial.
        serial: String,
        /// When.
        at: i64,
    },
    /// The applicant withdrew.
    Withdrawn {
        /// When.
        at: i64,
    },
}

impl Event {
    /// The audit action name.
    pub fn action(&self) -> &'static str {
        match self {
            Event::MailboxValidated { .. } => "application.mailbox-validated",
            Event::IdentityRecorded(_) => "application.identity-recorded",
            Event::Approved(_) => "application.approve",
            Event::Rejected(_) => "application.reject",
            Event::Issued { .. } => "application.issued",
            Event::Withdrawn { .. } => "application.withdraw",
        }
    }
}

/// Why a transition is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The event is not allowed in the current state.
    #[error("this is not possible while the application is {}", state.name())]
    WrongState {
        /// The current state.
        state: ApplicationState,
    },
    /// The mailbox was already validated.
    #[error("the mailbox is already validated")]
    AlreadyValidated,
    /// Approval needs the mailbox validated first.
    #[error("the mailbox has not been validated yet")]
    MailboxNotValidated,
    /// Approval needs identity evidence first.
    #[error("no identity evidence has been recorded yet")]
    IdentityNotVerified,
    /// The officer did not confirm the in-person check.
    #[error("the identity must be checked in person (BR 3.2.4)")]
    NotInPerson,
    /// The ID document had expired when it was checked.
    #[error("the ID document expired on {expires}")]
    DocumentExpired {
        /// Its expiry.
        expires: Date,
    },
    /// A field of the evidence is empty or too long.
    #[error("the {field} must be 1 to 100 characters")]
    BadField {
        /// Which field.
        field: &'static str,
    },
    /// Applicants may not check or approve their own application.
    #[error("officers may not check or decide their own application")]
    OwnApplication,
    /// A rejection needs a reason.
    #[error("a rejection needs a reason")]
    ReasonRequired,
}

fn check_field(field: &'static str, value: &str) -> Result<(), TransitionError> {
    let len = value.trim().chars().count();
    if len == 0 || len > 100 || value.chars().any(char::is_control) {
        return Err(TransitionError::BadField { field });
    }
    Ok(())
}

impl Application {
    /// Applies `event`, returning the next state of the application, or why not.
    pub fn apply(&self, event: &Event) -> Result<Application, TransitionError> {
        let mut next = self.clone();
        let wrong = Err(TransitionError::WrongState { state: self.state });
        match event {
            Event::MailboxValidated { at } => {
                if self.state != ApplicationState::AwaitingChecks {
                    return wrong;
                }
                if self.mailbox_validated_at.is_some() {
                    return Err(TransitionError::AlreadyValidated);
                }
                next.mailbox_validated_at = Some(*at);
                next.updated_at = *at;
            }
            Event::IdentityRecorded(evidence) => {
                if self.state != ApplicationState::AwaitingChecks {
                    return wrong;
                }
                if evidence.officer.eq_ignore_ascii_case(&self.email) {
                    return Err(TransitionError::OwnApplication);
                }
                if !evidence.verified_in_person {
                    return Err(TransitionError::NotInPerson);
                }
                check_field("issuing authority", &evidence.issuing_authority)?;
                check_field("document number", &evidence.document_number)?;
                let checked_on =
                    OffsetDateTime::from_unix_timestamp(evidence.verified_at).map(|t| t.date()).unwrap_or(Date::MIN);
                if evidence.document_expires < checked_on {
                    return Err(TransitionError::DocumentExpired { expires: evidence.document_expires });
                }
                next.identity = Some(evidence.clone());
                next.updated_at = evidence.verified_at;
            }
            Event::Approved(decision) => {
                if self.state != ApplicationState::AwaitingChecks {
                    return wrong;
                }
                if decision.officer.eq_ignore_ascii_case(&self.email) {
                    return Err(TransitionError::OwnApplication);
                }
                if self.mailbox_validated_at.is_none() {
                    return Err(TransitionError::MailboxNotValidated);
                }
                if self.identity.is_none() {
                    return Err(TransitionError::IdentityNotVerified);
                }
                next.state = ApplicationState::Approved;
                next.decision = Some(decision.clone());
                next.updated_at = decision.at;
            }
            Event::Rejected(decision) => {
                if !matches!(self.state, ApplicationState::AwaitingChecks | ApplicationState::Approved) {
                    return wrong;
                }
                if decision.officer.eq_ignore_ascii_case(&self.email) {
                    return Err(TransitionError::OwnApplication);
                }
                if decision.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    return Err(TransitionError::ReasonRequired);
                }
                next.state = ApplicationState::Rejected;
                next.decision = Some(decision.clone());
                next.updated_at = decision.at;
            }
            Event::Issued { serial, at } => {
                if self.state != ApplicationState::Approved {
                    return wrong;
                }
                next.state = ApplicationState::Issued;
                next.serial = Some(serial.clone());
                next.updated_at = *at;
            }
            Event::Withdrawn { at } => {
                if !matches!(self.state, ApplicationState::AwaitingChecks | ApplicationState::Approved) {
                    return wrong;
                }
                next.state = ApplicationState::Withdrawn;
                next.updated_at = *at;
            }
        }
        next.version = self.version + 1;
        Ok(next)
    }

    /// Evidence from an earlier application of the same person that a renewal may reuse
    /// at `now` (BR 4.2.1): the identity within 825 days of its check, the mailbox
    /// validation within 30 days.
    pub fn reusable_for_renewal(&self, now: i64) -> (Option<IdentityEvidence>, Option<i64>) {
        let identity = self
            .identity
            .clone()
            .filter(|e| now - e.verified_at <= IDENTITY_REUSE_DAYS * 86_400 && now >= e.verified_at);
        let mailbox = self.mailbox_validated_at.filter(|t| now - t <= MAILBOX_REUSE_DAYS * 86_400 && now >= *t);
        (identity, mailbox)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use time::macros::date;

    const T: i64 = 1_790_000_000; // 2026-09-22

    fn application() -> Application {
        Application {
            id: "a1".into(),
            email: "jane@example.org".into(),
            given_name: "Jane".into(),
            surname: "Doe".into(),
            profile: ProfileId::SponsorStrict,
            state: ApplicationState::AwaitingChecks,
            mailbox_validated_at: None,
            identity: None,
            decision: None,
            serial: None,
            renewal_of: None,
            lang: "en".into(),
            created_at: T,
            updated_at: T,
            version: 1,
        }
    }

    fn evidence() -> IdentityEvidence {
        IdentityEvidence {
            document_type: DocumentType::IdentityCard,
            issuing_authority: "Stadt Köln".into(),
            document_number: "L01X00T47".into(),
            document_expires: date!(2030 - 01 - 01),
            verified_in_person: true,
            officer: "officer@example.org".into(),
            verified_at: T + 10,
        }
    }

    fn decision(reason: Option<&str>) -> Decision {
        Decision { officer: "officer@example.org".into(), at: T + 20, reason: reason.map(String::from) }
    }

    /// Every event in every state: exactly the allowed transitions succeed.
    #[test]
    fn every_transition_is_allowed_or_refused_as_specified() {
        let events = [
            Event::MailboxValidated { at: T + 1 },
            Event::IdentityRecorded(evidence()),
            Event::Approved(decision(None)),
            Event::Rejected(decision(Some("document forged"))),
            Event::Issued { serial: "0a".into(), at: T + 30 },
            Event::Withdrawn { at: T + 5 },
        ];
        for state in ApplicationState::ALL {
            let mut app = application();
            app.state = state;
            // With both checks done, so that only the state decides.
            app.mailbox_validated_at = Some(T);
            app.identity = Some(evidence());
            for event in &events {
                let result = app.apply(event);
                let allowed = match (state, event) {
                    (ApplicationState::AwaitingChecks, Event::MailboxValidated { .. }) => false, // already validated
                    (ApplicationState::AwaitingChecks, Event::Issued { .. }) => false,
                    (ApplicationState::AwaitingChecks, _) => true,
                    (
                        ApplicationState::Approved,
                        Event::Rejected(_) | Event::Issued { .. } | Event::Withdrawn { .. },
                    ) => true,
                    _ => false,
                };
                assert_eq!(result.is_ok(), allowed, "{state:?} + {event:?}: {result:?}");
                if let Ok(next) = result {
                    assert_eq!(next.version, app.version + 1);
                }
            }
        }
    }

    #[test]
    fn approval_needs_both_checks_and_another_person() {
        let app = application();
        let approve = Event::Approved(decision(None));
        assert_eq!(app.apply(&approve), Err(TransitionError::MailboxNotValidated));
        let app = app.apply(&Event::MailboxValidated { at: T + 1 }).unwrap();
        assert_eq!(app.apply(&approve), Err(TransitionError::IdentityNotVerified));
        assert_eq!(app.apply(&Event::MailboxValidated { at: T + 2 }), Err(TransitionError::AlreadyValidated));
        let mut own = evidence();
        own.officer = "JANE@example.org".into();
        assert_eq!(app.apply(&Event::IdentityRecorded(own)), Err(TransitionError::OwnApplication));
        let app = app.apply(&Event::IdentityRecorded(evidence())).unwrap();
        let mut self_approval = decision(None);
        self_approval.officer = "jane@example.org".into();
        assert_eq!(app.apply(&Event::Approved(self_approval)), Err(TransitionError::OwnApplication));
        let approved = app.apply(&approve).unwrap();
        assert_eq!(approved.state, ApplicationState::Approved);
        let issued = approved.apply(&Event::Issued { serial: "0a".into(), at: T + 30 }).unwrap();
        assert_eq!((issued.state, issued.serial.as_deref()), (ApplicationState::Issued, Some("0a")));
        assert!(issued.apply(&Event::Issued { serial: "0b".into(), at: T + 31 }).is_err(), "issued twice");
    }

    #[test]
    fn bad_evidence_and_rejections_without_reason_are_refused() {
        let app = application();
        let mut e = evidence();
        e.verified_in_person = false;
        assert_eq!(app.apply(&Event::IdentityRecorded(e)), Err(TransitionError::NotInPerson));
        let mut e = evidence();
        e.document_expires = date!(2020 - 01 - 01);
        assert!(matches!(app.apply(&Event::IdentityRecorded(e)), Err(TransitionError::DocumentExpired { .. })));
        for (field, value) in [("issuing authority", " "), ("document number", "x\u{0}y")] {
            let mut e = evidence();
            if field == "issuing authority" {
                e.issuing_authority = value.into();
            } else {
                e.document_number = value.into();
            }
            assert_eq!(app.apply(&Event::IdentityRecorded(e)), Err(TransitionError::BadField { field }));
        }
        assert_eq!(app.apply(&Event::Rejected(decision(None))), Err(TransitionError::ReasonRequired));
        assert_eq!(app.apply(&Event::Rejected(decision(Some("  ")))), Err(TransitionError::ReasonRequired));
    }

    #[test]
    fn renewal_reuses_evidence_only_within_the_br_windows() {
        let mut app = application();
        app.mailbox_validated_at = Some(T);
        app.identity = Some(evidence());
        let (identity, mailbox) = app.reusable_for_renewal(T + 29 * 86_400);
        assert!(identity.is_some() && mailbox.is_some());
        let (identity, mailbox) = app.reusable_for_renewal(T + 31 * 86_400);
        assert!(identity.is_some() && mailbox.is_none());
        let (identity, _) = app.reusable_for_renewal(T + 826 * 86_400);
        assert!(identity.is_none());
    }

    #[test]
    fn names_round_trip() {
        for s in ApplicationState::ALL {
            assert_eq!(ApplicationState::from_name(s.name()), Some(s));
        }
        for d in DocumentType::ALL {
            assert_eq!(DocumentType::from_name(d.name()), Some(d));
        }
        assert_eq!(ApplicationState::from_name("bogus"), None);
    }
}
