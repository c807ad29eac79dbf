//! The registration desk's tables: users, sign-in tokens, sessions, applications,
//! mailbox challenges, appointment slots, reminders. Every state change of an
//! application is an optimistic-concurrency update (`version`) in one transaction with
//! its audit record, so several `certdesk serve` processes never lose a transition.

use sqlx::any::AnyRow;
use sqlx::Row;
use time::Date;

use super::{append_audit_in, AuditAppend, Store};
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::workflow::{Application, ApplicationState, Decision, DocumentType, IdentityEvidence};

/// A certificate in an entry of the existing directory (`[directory.publish]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The certificate's serial, lower-case hex.
    pub serial: String,
    /// Its mailbox.
    pub email: String,
    /// The entry it was added to.
    pub dn: String,
    /// The attribute it was added to.
    pub attribute: String,
}

/// A portal user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Lower-case e-mail address.
    pub email: String,
    /// `applicant`, `officer` or `admin`.
    pub role: String,
    /// The sealed TOTP secret, once enrolled.
    pub totp_secret: Option<String>,
    /// The last TOTP time step accepted.
    pub totp_last_step: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when disabled.
    pub disabled_at: Option<i64>,
}

/// A session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie value (hex).
    pub id_hash: String,
    /// Whose.
    pub email: String,
    /// The CSRF token of this session.
    pub csrf: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When the second factor was given (officers, admins).
    pub second_factor_at: Option<i64>,
}

/// A mailbox challenge (BR 3.2.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// The application.
    pub application_id: String,
    /// SHA-256 of the random value (hex).
    pub value_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Wrong values entered.
    pub attempts: i64,
    /// When the value was used.
    pub used_at: Option<i64>,
}

/// An appointment slot at the service desk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRecord {
    /// Random identifier.
    pub id: String,
    /// Unix seconds.
    pub starts_at: i64,
    /// Where (room, desk).
    pub place: String,
    /// The officer who published it.
    pub created_by: String,
    /// The application that booked it.
    pub application_id: Option<String>,
    /// When it was booked.
    pub booked_at: Option<i64>,
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        email: row.try_get("email")?,
        role: row.try_get("role")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_last_step: row.try_get("totp_last_step")?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

fn slot_from_row(row: &AnyRow) -> Result<SlotRecord, sqlx::Error> {
    Ok(SlotRecord {
        id: row.try_get("id")?,
        starts_at: row.try_get("starts_at")?,
        place: row.try_get("place")?,
        created_by: row.try_get("created_by")?,
        application_id: row.try_get("application_id")?,
        booked_at: row.try_get("booked_at")?,
    })
}

fn corrupt(what: &str) -> DomainError {
    DomainError::new(ErrorCode::Database, format!("the stored {what} cannot be read"))
}

fn application_from_row(row: &AnyRow) -> Result<Application, DomainError> {
    let state: String = row.try_get("state")?;
    let state = ApplicationState::from_name(&state).ok_or_else(|| corrupt("application state"))?;
    let document_type: Option<String> = row.try_get("id_document_type")?;
    let identity = match document_type {
        None => None,
        Some(kind) => {
            let expires: String = row.try_get("id_document_expires")?;
            let format = time::macros::format_description!("[year]-[month]-[day]");
            Some(IdentityEvidence {
                document_type: DocumentType::from_name(&kind).ok_or_else(|| corrupt("document type"))?,
                issuing_authority: row.try_get("id_issuing_authority")?,
                document_number: row.try_get("id_document_number")?,
                document_expires: Date::parse(&expires, &format).map_err(|_| corrupt("document expiry"))?,
                verified_in_person: row.try_get::<i64, _>("id_in_person")? == 1,
                officer: row.try_get("id_officer")?,
                verified_at: row.try_get("id_verified_at")?,
            })
        }
    };
    let decided_by: Option<String> = row.try_get("decided_by")?;
    let decision = match decided_by {
        None => None,
        Some(officer) => {
            Some(Decision { officer, at: row.try_get("decided_at")?, reason: row.try_get("decision_reason")? })
        }
    };
    Ok(Application {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        given_name: row.try_get("given_name")?,
        surname: row.try_get("surname")?,
        profile: crate::stored_profile(row.try_get("profile")?)?,
        state,
        mailbox_validated_at: row.try_get("mailbox_validated_at")?,
        identity,
        decision,
        serial: row.try_get("serial")?,
        renewal_of: row.try_get("renewal_of")?,
        lang: row.try_get("lang")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

fn date_text(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// How a mailbox value was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeOutcome {
    /// The value matched: the mailbox is validated (application updated, audited).
    Validated,
    /// The value did not match; attempts left.
    Wrong {
        /// Attempts left before the value is void.
        attempts_left: i64,
    },
    /// No usable challenge: none, used, expired or too many wrong attempts.
    Void,
}

impl Store {
    /// Creates a user or changes the role of an existing one.
    pub async fn upsert_user(
        &self,
        email: &str,
        role: &str,
        now: i64,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (email, role, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO UPDATE SET role = excluded.role",
        )
        .bind(email)
        .bind(role)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates an applicant on first sign-in; an existing user keeps its role.
    pub async fn ensure_user(&self, email: &str, now: i64) -> Result<UserRecord, DomainError> {
        sqlx::query(
            "INSERT INTO users (email, role, created_at) VALUES ($1, 'applicant', $2) ON CONFLICT (email) DO NOTHING",
        )
        .bind(email)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.user(email).await?.ok_or_else(|| corrupt("user"))
    }

    /// One user.
    pub async fn user(&self, email: &str) -> Result<Option<UserRecord>, DomainError> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1").bind(email).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// Officers and administrators.
    pub async fn staff(&self) -> Result<Vec<UserRecord>, DomainError> {
        let rows = sqlx::query("SELECT * FROM users WHERE role <> 'applicant' ORDER BY role, email")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    /// Changes a staff account: `disabled` sets or clears `disabled_at` (to `now`), and
    /// `reset_totp` forgets the authenticator (the next sign-in enrols a new one). Every
    /// session of the account ends, in the transaction that audits the change. `false`
    /// if there is no such account.
    pub async fn change_staff(
        &self,
        email: &str,
        disabled: Option<bool>,
        reset_totp: bool,
        now: i64,
        audit: AuditAppend<'_>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("SELECT email FROM users WHERE email = $1 AND role <> 'applicant'")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if found {
            if let Some(disabled) = disabled {
                sqlx::query("UPDATE users SET disabled_at = $1 WHERE email = $2")
                    .bind(disabled.then_some(now))
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
            }
            if reset_totp {
                sqlx::query("UPDATE users SET totp_secret = NULL, totp_last_step = NULL WHERE email = $1")
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM sessions WHERE email = $1").bind(email).execute(&mut *tx).await?;
            append_audit_in(&mut tx, audit).await?;
            tx.commit().await?;
        }
        Ok(found)
    }

    /// Stores a sealed TOTP secret (enrolment).
    pub async fn set_totp(
        &self,
        email: &str,
        sealed: &str,
        step: i64,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = $2 WHERE email = $3")
            .bind(sealed)
            .bind(step)
            .bind(email)
            .execute(&mut *tx)
            .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts TOTP time step `step` for `email` only if it is later than the last
    /// accepted one (a code works once, RFC 6238 section 5.2).
    pub async fn accept_totp_step(&self, email: &str, step: i64) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE email = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(email)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Booked appointments starting after `now` and up to `until`, booked more than
    /// `lead` seconds before they start (a later booking has just had its confirmation),
    /// whose reminder has not gone out.
    pub async fn appointments_to_remind(
        &self,
        now: i64,
        until: i64,
        lead: i64,
    ) -> Result<Vec<SlotRecord>, DomainError> {
        let rows = sqlx::query(
            "SELECT * FROM appointment_slots WHERE application_id IS NOT NULL AND reminded_at IS NULL \
             AND starts_at > $1 AND starts_at <= $2 AND booked_at < starts_at - $3 ORDER BY starts_at, id",
        )
        .bind(now)
        .bind(until)
        .bind(lead)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(slot_from_row).collect::<Result<_, _>>()?)
    }

    /// Claims the reminder of appointment `slot_id` booked by `application_id` (one
    /// process sends it); `false` if it went out already or the slot changed hands.
    pub async fn claim_appointment_reminder(
        &self,
        slot_id: &str,
        application_id: &str,
        now: i64,
    ) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "UPDATE appointment_slots SET reminded_at = $1 WHERE id = $2 AND application_id = $3 AND reminded_at IS NULL",
        )
        .bind(now)
        .bind(slot_id)
        .bind(application_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back the claim made at `claimed_at` (the mail failed), so that the next run
    /// retries; a claim made since by another process stays.
    pub async fn release_appointment_reminder(&self, slot_id: &str, claimed_at: i64) -> Result<(), DomainError> {
        sqlx::query("UPDATE appointment_slots SET reminded_at = NULL WHERE id = $1 AND reminded_at = $2")
            .bind(slot_id)
            .bind(claimed_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Notes a second-factor attempt by `email` at `now`, before its code is checked (so
    /// that attempts made at once all count), and returns how many it has made since each
    /// of `since`, this one included. `None`, and nothing noted, when it had already made
    /// more than `max` in one of those windows: throttled attempts do not grow the table.
    /// Attempts older than the earliest window are dropped.
    pub async fn note_totp_attempt<const N: usize>(
        &self,
        email: &str,
        now: i64,
        since: [i64; N],
        max: [i64; N],
    ) -> Result<Option<[i64; N]>, DomainError> {
        let oldest = since.iter().copied().min().unwrap_or(now);
        sqlx::query("DELETE FROM totp_attempts WHERE email = $1 AND at < $2")
            .bind(email)
            .bind(oldest)
            .execute(&self.pool)
            .await?;
        let before = self.totp_attempts_since(email, since).await?;
        if before.iter().zip(max).any(|(count, max)| *count > max) {
            return Ok(None);
        }
        sqlx::query("INSERT INTO totp_attempts (email, at) VALUES ($1, $2)")
            .bind(email)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(Some(self.totp_attempts_since(email, since).await?))
    }

    async fn totp_attempts_since<const N: usize>(&self, email: &str, since: [i64; N]) -> Result<[i64; N], DomainError> {
        let mut counts = [0; N];
        for (count, since) in counts.iter_mut().zip(since) {
            *count = sqlx::query("SELECT COUNT(*) AS n FROM totp_attempts WHERE email = $1 AND at >= $2")
                .bind(email)
                .bind(since)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        }
        Ok(counts)
    }

    /// Forgets `email`'s second-factor attempts (a code was right).
    pub async fn clear_totp_attempts(&self, email: &str) -> Result<(), DomainError> {
        sqlx::query("DELETE FROM totp_attempts WHERE email = $1").bind(email).execute(&self.pool).await?;
        Ok(())
    }

    /// Stores a sign-in token (its hash).
    pub async fn insert_sign_in_token(
        &self,
        token_hash: &str,
        email: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), DomainError> {
        sqlx::query("INSERT INTO sign_in_tokens (token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(email)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Uses a sign-in token once: the e-mail it was made for, if it is unused and not
    /// expired at `now`.
    pub async fn consume_sign_in_token(&self, token_hash: &str, now: i64) -> Result<Option<String>, DomainError> {
        let row = sqlx::query(
            "UPDATE sign_in_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at >= $1 \
             RETURNING email",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("email")).transpose()?)
    }

    /// Sign-in tokens made for `email` since `since` (rate limiting across processes).
    pub async fn sign_in_tokens_since(&self, email: &str, since: i64) -> Result<i64, DomainError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sign_in_tokens WHERE email = $1 AND created_at >= $2")
            .bind(email)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Starts a session.
    pub async fn insert_session(&self, session: &SessionRecord) -> Result<(), DomainError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, email, csrf, created_at, expires_at, second_factor_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.id_hash)
        .bind(&session.email)
        .bind(&session.csrf)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.second_factor_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session that has not expired at `now`.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>, DomainError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1 AND expires_at >= $2")
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            id_hash: row.try_get("id_hash")?,
            email: row.try_get("email")?,
            csrf: row.try_get("csrf")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            second_factor_at: row.try_get("second_factor_at")?,
        }))
    }

    /// Records that the session's second factor was given.
    pub async fn mark_second_factor(&self, id_hash: &str, now: i64) -> Result<(), DomainError> {
        sqlx::query("UPDATE sessions SET second_factor_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), DomainError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Stores a new application, its mailbox challenge and the audit record, in one
    /// transaction.
    pub async fn insert_application(
        &self,
        app: &Application,
        challenge: &ChallengeRecord,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO applications (id, email, given_name, surname, profile, state, lang, created_at, updated_at, \
             version, mailbox_validated_at, renewal_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&app.id)
        .bind(&app.email)
        .bind(&app.given_name)
        .bind(&app.surname)
        .bind(app.profile.name())
        .bind(app.state.name())
        .bind(&app.lang)
        .bind(app.created_at)
        .bind(app.updated_at)
        .bind(app.version)
        .bind(app.mailbox_validated_at)
        .bind(&app.renewal_of)
        .execute(&mut *tx)
        .await?;
        if let Some(identity) = &app.identity {
            write_identity(&mut tx, &app.id, identity).await?;
        }
        insert_challenge(&mut tx, challenge).await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One application.
    pub async fn application(&self, id: &str) -> Result<Option<Application>, DomainError> {
        let row = sqlx::query("SELECT * FROM applications WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(application_from_row).transpose()
    }

    /// The applications of one applicant, newest first.
    pub async fn applications_of(&self, email: &str) -> Result<Vec<Application>, DomainError> {
        let rows = sqlx::query("SELECT * FROM applications WHERE email = $1 ORDER BY created_at DESC, id")
            .bind(email)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(application_from_row).collect()
    }

    /// Applications in `state`, oldest first (the officers' queue).
    pub async fn applications_in(&self, state: ApplicationState) -> Result<Vec<Application>, DomainError> {
        let rows = sqlx::query("SELECT * FROM applications WHERE state = $1 ORDER BY created_at, id")
            .bind(state.name())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(application_from_row).collect()
    }

    /// Stores `next` (made by [`Application::apply`]) if the stored application still
    /// has version `next.version - 1`, with its audit record, in one transaction.
    /// A concurrent change makes this fail with [`ErrorCode::Conflict`].
    pub async fn update_application(&self, next: &Application, audit: AuditAppend<'_>) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        update_application_in(&mut tx, next).await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the mailbox challenge of an application (a new value was sent).
    pub async fn replace_challenge(
        &self,
        challenge: &ChallengeRecord,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM mailbox_challenges WHERE application_id = $1")
            .bind(&challenge.application_id)
            .execute(&mut *tx)
            .await?;
        insert_challenge(&mut tx, challenge).await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a mailbox value in one transaction: a usable challenge (unused, not expired
    /// at `now`, fewer than `max_attempts` wrong tries) whose hash equals `value_hash`
    /// validates the mailbox (`next` is stored as by [`Store::update_application`] and
    /// the challenge used up); a wrong value counts an attempt.
    pub async fn answer_challenge(
        &self,
        application_id: &str,
        matches: &(dyn Fn(&str) -> bool + Sync),
        now: i64,
        max_attempts: i64,
        next: &Application,
        audit: AuditAppend<'_>,
    ) -> Result<ChallengeOutcome, DomainError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT * FROM mailbox_challenges WHERE application_id = $1")
            .bind(application_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(ChallengeOutcome::Void) };
        let value_hash: String = row.try_get("value_hash")?;
        let attempts: i64 = row.try_get("attempts")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() || expires_at < now || attempts >= max_attempts {
            return Ok(ChallengeOutcome::Void);
        }
        if !matches(&value_hash) {
            sqlx::query("UPDATE mailbox_challenges SET attempts = attempts + 1 WHERE application_id = $1")
                .bind(application_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(ChallengeOutcome::Wrong { attempts_left: max_attempts - attempts - 1 });
        }
        let used =
            sqlx::query("UPDATE mailbox_challenges SET used_at = $1 WHERE application_id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(application_id)
                .execute(&mut *tx)
                .await?;
        if used.rows_affected() != 1 {
            return Ok(ChallengeOutcome::Void);
        }
        update_application_in(&mut tx, next).await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(ChallengeOutcome::Validated)
    }

    /// Publishes an appointment slot.
    pub async fn insert_slot(&self, slot: &SlotRecord, audit: AuditAppend<'_>) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO appointment_slots (id, starts_at, place, created_by) VALUES ($1, $2, $3, $4)")
            .bind(&slot.id)
            .bind(slot.starts_at)
            .bind(&slot.place)
            .bind(&slot.created_by)
            .execute(&mut *tx)
            .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Slots starting after `now`, soonest first (booked ones included).
    pub async fn upcoming_slots(&self, now: i64) -> Result<Vec<SlotRecord>, DomainError> {
        let rows = sqlx::query("SELECT * FROM appointment_slots WHERE starts_at > $1 ORDER BY starts_at, id")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(slot_from_row).collect::<Result<_, _>>()?)
    }

    /// The slot an application booked.
    pub async fn slot_of(&self, application_id: &str) -> Result<Option<SlotRecord>, DomainError> {
        let row = sqlx::query("SELECT * FROM appointment_slots WHERE application_id = $1")
            .bind(application_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(slot_from_row).transpose()?)
    }

    /// Books a free future slot for an application, in place of the one it booked
    /// before (if any: that one is free again, or, when past, kept only in the audit
    /// log); `false` if the slot is taken, past or unknown, and then nothing changed.
    pub async fn book_slot(
        &self,
        slot_id: &str,
        application_id: &str,
        now: i64,
        audit: AuditAppend<'_>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        // The application must still need an appointment, checked (and its row locked
        // on PostgreSQL) in this transaction: a withdrawal, rejection or identity check
        // committed meanwhile wins, and nothing is booked.
        let waiting = sqlx::query(
            "UPDATE applications SET version = version WHERE id = $1 AND state = $2 AND id_verified_at IS NULL",
        )
        .bind(application_id)
        .bind(ApplicationState::AwaitingChecks.name())
        .execute(&mut *tx)
        .await?;
        if waiting.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE appointment_slots SET application_id = NULL, booked_at = NULL, reminded_at = NULL \
             WHERE application_id = $1 AND id <> $2",
        )
        .bind(application_id)
        .bind(slot_id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE appointment_slots SET application_id = $1, booked_at = $2 \
             WHERE id = $3 AND application_id IS NULL AND starts_at > $2",
        )
        .bind(application_id)
        .bind(now)
        .bind(slot_id)
        .execute(&mut *tx)
        .await;
        match done {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => return Ok(false),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels the booking of `application_id` if its slot starts after `now` (the slot
    /// is free again); the slot, or `None` (nothing booked to come, nothing changed).
    pub async fn release_slot(
        &self,
        application_id: &str,
        now: i64,
        audit: AuditAppend<'_>,
    ) -> Result<Option<SlotRecord>, DomainError> {
        let mut tx = self.pool.begin().await?;
        let Some(slot) = release_slot_in(&mut tx, application_id, now).await? else { return Ok(None) };
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(slot))
    }

    /// One slot.
    pub async fn slot(&self, slot_id: &str) -> Result<Option<SlotRecord>, DomainError> {
        let row = sqlx::query("SELECT * FROM appointment_slots WHERE id = $1")
            .bind(slot_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(slot_from_row).transpose()?)
    }

    /// Removes a free slot that has not begun; `false` if it is booked, past or unknown.
    pub async fn delete_free_slot(&self, slot_id: &str, now: i64, audit: AuditAppend<'_>) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("DELETE FROM appointment_slots WHERE id = $1 AND application_id IS NULL AND starts_at > $2")
                .bind(slot_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The slots booked by the applications in `state`.
    pub async fn slots_of_applications_in(&self, state: ApplicationState) -> Result<Vec<SlotRecord>, DomainError> {
        let rows = sqlx::query(
            "SELECT s.* FROM appointment_slots s JOIN applications a ON a.id = s.application_id \
             WHERE a.state = $1 ORDER BY s.starts_at, s.id",
        )
        .bind(state.name())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(slot_from_row).collect::<Result<_, _>>()?)
    }

    /// The certificates the directory may list at `now`: valid now and not revoked, of
    /// one address or of everyone, ordered by address, then longest-lasting first. The
    /// web directory, its JSON endpoint, LDAP and SMIMEA all start from this one query
    /// (the desk then keeps those one can encrypt to).
    pub async fn directory_certificates(
        &self,
        now: i64,
        email: Option<&str>,
    ) -> Result<Vec<super::CertificateRecord>, DomainError> {
        let rows = match email {
            Some(email) => {
                sqlx::query(
                    "SELECT * FROM certificates WHERE revoked_at IS NULL AND not_before <= $1 AND not_after >= $1 \
                     AND email = $2 ORDER BY not_after DESC, serial",
                )
                .bind(now)
                .bind(email)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT * FROM certificates WHERE revoked_at IS NULL AND not_before <= $1 AND not_after >= $1 \
                     ORDER BY email, not_after DESC, serial",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(super::cert_from_row).collect()
    }

    /// The certificates published to the existing directory (`[directory.publish]`):
    /// (serial, mailbox, entry DN, attribute), by serial.
    pub async fn directory_publications(&self) -> Result<Vec<Publication>, DomainError> {
        let rows = sqlx::query("SELECT serial, email, dn, attribute FROM directory_publications ORDER BY serial")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Publication {
                    serial: row.try_get("serial")?,
                    email: row.try_get("email")?,
                    dn: row.try_get("dn")?,
                    attribute: row.try_get("attribute")?,
                })
            })
            .collect()
    }

    /// Records that a certificate was added to an entry of the directory, with its audit
    /// record, in one transaction (again for the same serial: the entry is updated).
    pub async fn record_publication(
        &self,
        publication: &Publication,
        at: i64,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO directory_publications (serial, email, dn, attribute, published_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (serial) DO UPDATE SET email = excluded.email, dn = excluded.dn, \
             attribute = excluded.attribute, published_at = excluded.published_at",
        )
        .bind(&publication.serial)
        .bind(&publication.email)
        .bind(&publication.dn)
        .bind(&publication.attribute)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that a certificate was removed from the directory, with its audit record,
    /// in one transaction. `false` if it was not recorded as published (nothing changed).
    pub async fn record_unpublication(&self, serial: &str, audit: AuditAppend<'_>) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await?;
        let gone =
            sqlx::query("DELETE FROM directory_publications WHERE serial = $1").bind(serial).execute(&mut *tx).await?;
        if gone.rows_affected() == 0 {
            return Ok(false);
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Certificates issued to `email`, newest first.
    pub async fn certificates_of(&self, email: &str) -> Result<Vec<super::CertificateRecord>, DomainError> {
        let rows = sqlx::query("SELECT * FROM certificates WHERE email = $1 ORDER BY issued_at DESC, serial")
            .bind(email)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(super::cert_from_row).collect()
    }

    /// Certificates valid at `now`, not revoked, expiring before `until` (reminders),
    /// leaving out those already renewed: a certificate of the same mailbox and profile,
    /// not revoked, that lasts longer.
    pub async fn certificates_expiring(
        &self,
        now: i64,
        until: i64,
    ) -> Result<Vec<super::CertificateRecord>, DomainError> {
        let rows = sqlx::query(
            "SELECT * FROM certificates c WHERE c.revoked_at IS NULL AND c.not_after >= $1 AND c.not_after <= $2 \
             AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.email = c.email AND n.profile = c.profile \
             AND n.revoked_at IS NULL AND n.not_after > c.not_after) \
             ORDER BY c.not_after, c.serial",
        )
        .bind(now)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::cert_from_row).collect()
    }

    /// Profile validity set on the portal: (profile name, days).
    pub async fn profile_validity(&self) -> Result<Vec<(String, i64)>, DomainError> {
        let rows = sqlx::query("SELECT profile, validity_days FROM profile_settings ORDER BY profile")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("profile")?, r.try_get("validity_days")?))).collect()
    }

    /// Sets a profile's validity, with its audit record.
    pub async fn set_profile_validity(
        &self,
        profile: &str,
        days: i64,
        by: &str,
        at: i64,
        audit: AuditAppend<'_>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO profile_settings (profile, validity_days, changed_by, changed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (profile) DO UPDATE SET validity_days = excluded.validity_days, \
             changed_by = excluded.changed_by, changed_at = excluded.changed_at",
        )
        .bind(profile)
        .bind(days)
        .bind(by)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives back the claim of [`Store::claim_reminder`] made at `claimed_at` (its mail
    /// failed), so that the next run retries.
    pub async fn release_reminder(&self, serial: &str, days: i64, claimed_at: i64) -> Result<(), DomainError> {
        sqlx::query("DELETE FROM reminders_sent WHERE serial = $1 AND days = $2 AND sent_at = $3")
            .bind(serial)
            .bind(days)
            .bind(claimed_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that the `days` reminder for `serial` is being sent; `false` if it was
    /// already (so several processes send each reminder once).
    pub async fn claim_reminder(&self, serial: &str, days: i64, now: i64) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "INSERT INTO reminders_sent (serial, days, sent_at) VALUES ($1, $2, $3) ON CONFLICT (serial, days) DO NOTHING",
        )
        .bind(serial)
        .bind(days)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

async fn insert_challenge(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    challenge: &ChallengeRecord,
) -> Result<(), DomainError> {
    sqlx::query(
        "INSERT INTO mailbox_challenges (application_id, value_hash, created_at, expires_at, attempts) \
         VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(&challenge.application_id)
    .bind(&challenge.value_hash)
    .bind(challenge.created_at)
    .bind(challenge.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_identity(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    identity: &IdentityEvidence,
) -> Result<(), DomainError> {
    sqlx::query(
        "UPDATE applications SET id_document_type = $1, id_issuing_authority = $2, id_document_number = $3, \
         id_document_expires = $4, id_in_person = $5, id_officer = $6, id_verified_at = $7 WHERE id = $8",
    )
    .bind(identity.document_type.name())
    .bind(&identity.issuing_authority)
    .bind(&identity.document_number)
    .bind(date_text(identity.document_expires))
    .bind(i64::from(identity.verified_in_person))
    .bind(&identity.officer)
    .bind(identity.verified_at)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The optimistic-concurrency update of an application (see [`Store::update_application`]).
pub(super) async fn update_application_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    next: &Application,
) -> Result<(), DomainError> {
    let done = sqlx::query(
        "UPDATE applications SET state = $1, updated_at = $2, version = $3, mailbox_validated_at = $4, \
         decided_by = $5, decided_at = $6, decision_reason = $7, serial = $8 WHERE id = $9 AND version = $10",
    )
    .bind(next.state.name())
    .bind(next.updated_at)
    .bind(next.version)
    .bind(next.mailbox_validated_at)
    .bind(next.decision.as_ref().map(|d| d.officer.clone()))
    .bind(next.decision.as_ref().map(|d| d.at))
    .bind(next.decision.as_ref().and_then(|d| d.reason.clone()))
    .bind(&next.serial)
    .bind(&next.id)
    .bind(next.version - 1)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(DomainError::new(
            ErrorCode::Conflict,
            "the application was changed meanwhile; reload the page and try again",
        ));
    }
    if let Some(identity) = &next.identity {
        write_identity(tx, &next.id, identity).await?;
    }
    // An application that needs no appointment any more (closed, identity recorded,
    // decided) holds none to come: its slot is free again.
    if next.state != ApplicationState::AwaitingChecks || next.identity.is_some() {
        release_slot_in(tx, &next.id, next.updated_at).await?;
    }
    Ok(())
}

/// Frees the slot `application_id` booked, if it starts after `now`; returns it.
async fn release_slot_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    application_id: &str,
    now: i64,
) -> Result<Option<SlotRecord>, DomainError> {
    let row = sqlx::query("SELECT * FROM appointment_slots WHERE application_id = $1 AND starts_at > $2")
        .bind(application_id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(slot) = row.as_ref().map(slot_from_row).transpose()? else { return Ok(None) };
    // Guarded by the owner: a concurrent release and a new booking of the slot in
    // between leave the new booking alone.
    let done = sqlx::query(
        "UPDATE appointment_slots SET application_id = NULL, booked_at = NULL, reminded_at = NULL \
         WHERE id = $1 AND application_id = $2",
    )
    .bind(&slot.id)
    .bind(application_id)
    .execute(&mut **tx)
    .await?;
    Ok((done.rows_affected() == 1).then_some(slot))
}
