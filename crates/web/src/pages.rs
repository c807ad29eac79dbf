//! The portal's pages as pure functions: data that the handler fetched before, and the
//! texts of the page's language, in; the page's content out. Nothing here awaits, reads
//! the desk or a database, or writes HTML by hand: [`maud`] escapes every value.

use certdesk_core::records::{AuditRow, CertificateRecord};
use certdesk_core::workflow::{Application, ApplicationState, DocumentType};
use maud::{html, Markup, PreEscaped};

use crate::html::{csrf_field, day, when};
use crate::texts::Texts;
use certdesk_core::records::RecoveryState;
use certdesk_core::zone::OrgZone;
use certdesk_desk::advisor::MailClient;
use certdesk_desk::portal::RecoveryView;

/// An appointment slot as the pages show it.
pub struct SlotView {
    /// Its identifier (the value of the booking form).
    pub id: String,
    /// Unix seconds.
    pub starts_at: i64,
    /// Where.
    pub place: String,
    /// The application that booked it.
    pub application_id: Option<String>,
}

/// An officer or administrator on the administration page.
pub struct StaffView {
    /// The address.
    pub email: String,
    /// The role's name.
    pub role: String,
    /// Whether a second factor is enrolled.
    pub second_factor: bool,
    /// Whether the account is disabled.
    pub disabled: bool,
}

/// A profile's validity on the administration page.
pub struct ProfileSetting {
    /// The profile's name.
    pub name: &'static str,
    /// The profile's upper bound in days.
    pub max_days: u32,
    /// The validity in force, in days.
    pub days: u32,
    /// Whether it was set on this page (else it comes from certdesk.toml).
    pub set_here: bool,
}

/// The name of an application's state.
pub fn state_name(t: &Texts, state: ApplicationState) -> &'static str {
    match state {
        ApplicationState::AwaitingChecks => t.state_awaiting_checks,
        ApplicationState::Approved => t.state_approved,
        ApplicationState::Issued => t.state_issued,
        ApplicationState::Rejected => t.state_rejected,
        ApplicationState::Withdrawn => t.state_withdrawn,
    }
}

/// A profile as people read it (the id only for one this catalogue does not know).
fn profile_label(t: &Texts, name: &str) -> String {
    match name {
        "sponsor-strict" => t.profile_sponsor_strict,
        "sponsor-multipurpose" => t.profile_sponsor_multipurpose,
        "mailbox-strict" => t.profile_mailbox,
        "mailbox-multipurpose" => t.profile_mailbox_multipurpose,
        "private" => t.profile_private,
        other => other,
    }
    .to_string()
}

fn document_label(t: &Texts, document: DocumentType) -> &'static str {
    match document {
        DocumentType::IdentityCard => t.document_identity_card,
        DocumentType::Passport => t.document_passport,
        DocumentType::ResidencePermit => t.document_residence_permit,
    }
}

/// An error page's content: the sentence, and a link to sign in or back to the start.
pub fn error(t: &Texts, message: &str, sign_in_link: bool) -> Markup {
    html! {
        p.error role="alert" { (message) }
        p { a href="/" { (if sign_in_link { t.sign_in } else { t.back_to_start }) } }
    }
}

/// The sign-in page. `single_sign_on` is the provider's button text when single sign-on
/// is configured.
pub fn sign_in(t: &Texts, notice: Option<&str>, single_sign_on: Option<&str>, csrf: &str) -> Markup {
    html! {
        @if let Some(notice) = notice {
            p.ok role="status" { (notice) }
        }
        @if let Some(name) = single_sign_on {
            p { a #oidc href="/signin/oidc" { (name) } }
            p { (t.sso_or_link) }
        }
        p { (t.sign_in_intro) }
        form method="post" action="/signin" {
            (csrf_field(csrf))
            label for="email" { (t.email_address) }
            input #email name="email" type="email" autocomplete="email" required size="40";
            button type="submit" { (t.send_sign_in_link) }
        }
    }
}

/// The page of a sign-in link: only its button (a POST) uses the token.
pub fn confirm_sign_in(t: &Texts, token: &str) -> Markup {
    html! {
        form method="post" action={ "/signin/" (token) } {
            button type="submit" { (t.sign_in_now) }
        }
    }
}

/// A new second factor: the key to add to the app, and the form for its first code.
pub fn enrol_second_factor(t: &Texts, key: &str, uri: &str, sealed: &str, csrf: &str) -> Markup {
    html! {
        p { (t.totp_intro) }
        @if let Some(svg) = qr_svg(uri) {
            figure #totp-qr role="img" aria-label=(t.totp_qr) {
                // Geometry only (paths), made here from the URI: nothing in it is text
                // from a user, so it goes in unescaped.
                (PreEscaped(svg))
                figcaption { (t.totp_qr) }
            }
        }
        p { (t.totp_key) ": " code #totp-secret { (key) } }
        p { code { (uri) } }
        form method="post" action="/second-factor" {
            (csrf_field(csrf))
            input type="hidden" name="sealed" value=(sealed);
            label for="code" { (t.totp_code_app) }
            input #code name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required;
            button type="submit" { (t.confirm) }
        }
    }
}

/// The `otpauth://` URI as a QR code, inline SVG (an inline image needs no `img-src`
/// and no route); `None` if the URI does not fit a QR code, and the page shows the key
/// as text only.
fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // Without the XML declaration, which has no place inside HTML.
    svg.find("<svg").and_then(|start| svg.get(start..)).map(str::to_string)
}

/// The second factor's form.
pub fn second_factor(t: &Texts, csrf: &str) -> Markup {
    html! {
        form method="post" action="/second-factor" {
            (csrf_field(csrf))
            label for="code" { (t.totp_code) }
            input #code name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required;
            button type="submit" { (t.confirm) }
        }
    }
}

/// The applicant's start page: applications and certificates.
pub fn home(t: &Texts, z: &OrgZone, apps: &[Application], certs: &[CertificateRecord], csrf: &str) -> Markup {
    html! {
        p { a href="/apply" { (t.apply_for_certificate) } }
        h2 { (t.your_applications) }
        @if apps.is_empty() {
            p { (t.none_yet) }
        } @else {
            table {
                thead { tr { th { (t.submitted) } th { (t.profile) } th { (t.status) } } }
                tbody {
                    @for app in apps {
                        tr {
                            td { a href={ "/applications/" (app.id) } { (when(z, app.created_at)) } }
                            td { (profile_label(t, app.profile.name())) }
                            td { (state_name(t, app.state)) }
                        }
                    }
                }
            }
        }
        h2 { (t.your_certificates) }
        @if certs.is_empty() {
            p { (t.none_yet) }
        }
        @let current = current_serial(certs);
        @for cert in certs {
            (certificate_block(t, z, cert, csrf, Some(current == Some(cert.serial.as_str()))))
        }
    }
}

/// The certificate a person uses now: the newest one not revoked.
fn current_serial(certs: &[CertificateRecord]) -> Option<&str> {
    certs.iter().filter(|c| c.revoked_at.is_none()).max_by_key(|c| c.issued_at).map(|c| c.serial.as_str())
}

/// A certificate with its facts, its download link and, while valid, the revoke and
/// renew forms. `current`: on the holder's own page, whether it is the one in use now.
pub fn certificate_block(
    t: &Texts,
    z: &OrgZone,
    cert: &CertificateRecord,
    csrf: &str,
    current: Option<bool>,
) -> Markup {
    let serial = cert.serial.as_str();
    html! {
        section aria-label=(serial) {
            h3 { (t.certificate_for) " " (cert.email) " · " (profile_label(t, cert.profile.name())) }
            @match current {
                Some(true) => p.ok { (t.current_certificate) },
                Some(false) => p { (t.earlier_certificate) },
                None => {},
            }
            p {
                (t.issued_on) " " (day(z, cert.issued_at)) " · "
                @match cert.revoked_at {
                    Some(at) => { (t.revoked_on) " " (day(z, at)) },
                    None => { (t.valid_until_lower) " " (day(z, cert.not_after)) },
                }
                " · " (t.key_kind) " " (cert.key_kind)
                " · " (t.serial) " " code { (serial) }
                " · " a href={ "/certificates/" (serial) ".pem" } { (t.download_pem) }
            }
            p { small { (cert.subject) } }
            @if cert.revoked_at.is_none() {
                form method="post" action={ "/certificates/" (serial) "/revoke" } {
                    (csrf_field(csrf))
                    label for={ "reason-" (serial) } { (t.revocation_reason) }
                    // No reason chosen for the person, and the consequence in words.
                    select id={ "reason-" (serial) } name="reason" required {
                        option value="" selected { (t.choose_reason) }
                        option value="key-compromise" { (t.reason_key_compromise) }
                        option value="superseded" { (t.reason_superseded) }
                        option value="affiliation-changed" { (t.reason_affiliation_changed) }
                        option value="cessation-of-operation" { (t.reason_cessation) }
                        option value="unspecified" { (t.reason_unspecified) }
                    }
                    label { input type="checkbox" name="confirm" value="yes" required; " " (t.revoke_consequence) }
                    button.secondary type="submit" { (t.revoke_certificate) }
                }
                form method="post" action={ "/certificates/" (serial) "/renew" } {
                    (csrf_field(csrf))
                    button.secondary type="submit" { (t.renew) }
                }
            }
        }
    }
}

/// The application form.
pub fn apply(t: &Texts, profiles: &[&str], email: &str, csrf: &str) -> Markup {
    html! {
        p { (t.apply_intro) }
        form method="post" action="/apply" {
            (csrf_field(csrf))
            label for="given_name" { (t.given_names) }
            input #given_name name="given_name" autocomplete="given-name" required maxlength="64";
            label for="surname" { (t.surname) }
            input #surname name="surname" autocomplete="family-name" required maxlength="64";
            label for="email" { (t.certificate_email) }
            input #email value=(email) readonly aria-readonly="true";
            label for="profile" { (t.certificate_type) }
            select #profile name="profile" {
                @for name in profiles {
                    option value=(name) { (profile_label(t, name)) }
                }
            }
            button type="submit" { (t.apply) }
        }
    }
}

/// What the applicant's application page shows besides the application: the booked
/// appointment, else the free slots.
pub struct Appointment {
    /// The booked slot, when it is still to come.
    pub booked: Option<SlotView>,
    /// The booked slot, when it has passed (without the identity check).
    pub passed: Option<SlotView>,
    /// The free slots (to book, or to move the booked one to).
    pub free: Vec<SlotView>,
}

/// What the application page says of key escrow (issue 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EscrowNotice {
    /// The profile does not escrow.
    None,
    /// A key the desk makes is escrowed.
    Escrowed,
    /// Two keys: the signing one never escrowed, the encryption one escrowed.
    Separately,
}

/// The applicant's application page.
///
/// `p12_waiting`: a .p12 was made for it but its download never completed (the server
/// stopped in between); the applicant downloads it with the password chosen then.
/// `escrow`: whether the profile escrows the keys the desk makes, said before the
/// applicant chooses (BR 4.12.1).
pub fn application(
    t: &Texts,
    z: &OrgZone,
    app: &Application,
    appointment: &Appointment,
    p12_waiting: bool,
    escrow: EscrowNotice,
    csrf: &str,
) -> Markup {
    let id = app.id.as_str();
    let check = |done: bool| if done { "✔" } else { "…" };
    html! {
        p { (t.name) ": " (app.given_name) " " (app.surname) " · " (app.email) " · " (profile_label(t, app.profile.name())) }
        p { strong { (t.status) ": " span #state { (state_name(t, app.state)) } } }
        @if let Some(reason) = app.decision.as_ref().and_then(|d| d.reason.as_ref()) {
            p.error { (t.reason) ": " (reason) }
        }
        h2 { (t.steps) }
        ol {
            li { (check(app.mailbox_validated_at.is_some())) " " (t.step_mailbox) }
            li { (check(app.identity.is_some())) " " (t.step_identity) }
            li { (check(matches!(app.state, ApplicationState::Approved | ApplicationState::Issued))) " " (t.step_approval) }
        }
        @if app.state == ApplicationState::AwaitingChecks {
            @if app.mailbox_validated_at.is_none() {
                h2 { (t.confirm_mailbox) }
                form method="post" action={ "/applications/" (id) "/validate" } {
                    (csrf_field(csrf))
                    label for="value" { (t.code_from_mail) }
                    input #value name="value" autocomplete="one-time-code" required size="32";
                    button type="submit" { (t.confirm) }
                }
                form method="post" action={ "/applications/" (id) "/resend" } {
                    (csrf_field(csrf))
                    button.secondary type="submit" { (t.send_new_code) }
                }
            }
            @if app.identity.is_none() {
                h2 { (t.appointment_heading) }
                @if let Some(slot) = &appointment.booked {
                    p #appointment { (t.your_appointment) ": " (when(z, slot.starts_at)) " · " (slot.place) }
                    p { (t.bring_id) }
                    @if !appointment.free.is_empty() {
                        form method="post" action={ "/applications/" (id) "/book" } {
                            (csrf_field(csrf))
                            label for="slot" { (t.move_appointment) }
                            (slot_select(z, &appointment.free))
                            button.secondary type="submit" { (t.move_to) }
                        }
                    }
                    form method="post" action={ "/applications/" (id) "/appointment/cancel" } {
                        (csrf_field(csrf))
                        label { input type="checkbox" name="confirm" value="yes" required; " " (t.cancel_appointment_consequence) }
                        button.secondary type="submit" { (t.cancel_appointment) }
                    }
                } @else {
                    @if let Some(slot) = &appointment.passed {
                        p.error { (t.appointment_passed) " (" (when(z, slot.starts_at)) ")" }
                    }
                    @if appointment.free.is_empty() {
                        p { (t.no_free_slots) }
                    } @else {
                        form method="post" action={ "/applications/" (id) "/book" } {
                            (csrf_field(csrf))
                            label for="slot" { (t.free_slots) }
                            (slot_select(z, &appointment.free))
                            button type="submit" { (t.book) }
                        }
                    }
                }
            }
        }
        @if app.state == ApplicationState::Approved {
            h2 { (t.choose_key) }
            fieldset {
                legend { (t.key_made_for_you) }
                p { (t.key_made_for_you_text) }
                @if escrow != EscrowNotice::None {
                    p #escrow-notice { strong { (t.key_escrowed) } }
                }
                @if escrow == EscrowNotice::Separately {
                    p #escrow-separate { (t.key_escrowed_separately) }
                }
                form method="post" action={ "/applications/" (id) "/p12" } {
                    (csrf_field(csrf))
                    label for="password" { (t.p12_password) }
                    input #password name="password" type="password" autocomplete="new-password" required minlength="12";
                    label for="password2" { (t.p12_password_again) }
                    input #password2 name="password2" type="password" autocomplete="new-password" required minlength="12";
                    fieldset #clients {
                        legend { (t.your_mail_clients) }
                        @for client in MailClient::ALL {
                            label { input type="checkbox" name={ "client_" (client.name()) } value="yes"; " " (client.label(t.lang)) }
                        }
                    }
                    label for="format" { (t.file_format) }
                    select #format name="format" {
                        option value="auto" { (t.format_auto) }
                        option value="modern" { (t.format_modern) }
                        option value="compat" { (t.format_compat) }
                    }
                    label for="key" { (t.key_type) }
                    select #key name="key" {
                        option value="rsa3072" { "RSA 3072 (" (t.rsa_works_everywhere) ")" }
                        option value="p256" { "ECDSA P-256" }
                    }
                    p { small { (t.p12_takes_time) } }
                    button type="submit" { (t.create_p12) }
                }
            }
            fieldset {
                legend { (t.own_key) }
                p { (t.own_key_text) " " code { "certdesk enroll" } " " (t.own_key_enroll) }
                @if escrow != EscrowNotice::None {
                    p { (t.own_key_not_escrowed) }
                }
                form method="post" action={ "/applications/" (id) "/csr" } enctype="multipart/form-data" {
                    (csrf_field(csrf))
                    label for="csr_file" { (t.csr_file) }
                    input #csr_file name="csr_file" type="file" accept=".csr,.req,.pem,.der,.p10";
                    label for="csr" { (t.csr_paste) }
                    textarea #csr name="csr" {}
                    button type="submit" { (t.issue_certificate) }
                }
            }
        }
        @if let (ApplicationState::Issued, Some(serial)) = (app.state, &app.serial) {
            p.ok { (t.certificate_ready) " " a href={ "/certificates/" (serial) ".pem" } { (t.download_pem) } }
            h2 { (t.install_heading) }
            p { (t.install_intro) " " a href="/install" { (t.install_link) } }
            @if p12_waiting {
                form method="post" action={ "/applications/" (id) "/p12" } {
                    (csrf_field(csrf))
                    p { (t.p12_waiting) }
                    input type="hidden" name="resume" value="1";
                    label for="password" { (t.p12_password) }
                    input #password name="password" type="password" autocomplete="current-password" required;
                    button type="submit" { (t.download_p12) }
                }
                form method="post" action={ "/applications/" (id) "/p12/saved" } {
                    (csrf_field(csrf))
                    button.secondary type="submit" { (t.p12_saved) }
                }
            }
        }
        @if matches!(app.state, ApplicationState::AwaitingChecks | ApplicationState::Approved) {
            form method="post" action={ "/applications/" (id) "/withdraw" } {
                (csrf_field(csrf))
                label { input type="checkbox" name="confirm" value="yes" required; " " (t.withdraw_consequence) }
                button.secondary type="submit" { (t.withdraw) }
            }
        }
    }
}

/// A choice of slots, named `slot`.
fn slot_select(z: &OrgZone, slots: &[SlotView]) -> Markup {
    html! {
        select #slot name="slot" {
            @for slot in slots {
                option value=(slot.id) { (when(z, slot.starts_at)) " · " (slot.place) }
            }
        }
    }
}

/// The install guide: for every mail client its steps (import, use for signing and
/// encryption, keep the old certificate); `open` are shown unfolded.
pub fn install_guide(t: &Texts, open: &[MailClient]) -> Markup {
    html! {
        p { (t.install_intro) }
        @for client in MailClient::ALL {
            details #(client.name()) open[open.contains(&client)] {
                summary { (client.label(t.lang)) }
                ol {
                    @for step in client.steps(t.lang) {
                        li { (step) }
                    }
                }
            }
        }
    }
}

/// The page of the mailbox link: the code filled in, confirmed with a POST.
pub fn validate(t: &Texts, id: &str, value: &str, csrf: &str) -> Markup {
    html! {
        form method="post" action={ "/applications/" (id) "/validate" } {
            (csrf_field(csrf))
            label for="value" { (t.code_from_mail) }
            input #value name="value" value=(value) required size="32";
            button type="submit" { (t.confirm_my_mailbox) }
        }
    }
}

/// The answer to a revocation.
pub fn revoked(t: &Texts, serial: &str) -> Markup {
    html! {
        p.ok role="status" { (t.certificate_revoked) " " code { (serial) } }
        p { a href="/" { (t.back_to_start) } }
    }
}

/// One line of the officers' queue.
pub struct QueueLine<'a> {
    /// The application.
    pub app: &'a Application,
    /// Its appointment (past ones included).
    pub slot: Option<&'a SlotView>,
}

/// The officers' queue: the view (all or today's appointments), the search, and the
/// applications with their appointments.
pub fn officer_queue(t: &Texts, z: &OrgZone, lines: &[QueueLine<'_>], today: bool, search: &str) -> Markup {
    let checked = |done: bool| if done { t.checked } else { t.open };
    html! {
        p { a href="/officer/slots" { (t.appointment_slots) } " · " a href="/officer/certificates" { (t.find_certificates) } }
        p {
            @if today { a href="/officer" { (t.queue_all) } " · " strong { (t.queue_today) } }
            @else { strong { (t.queue_all) } " · " a href="/officer?view=today" { (t.queue_today) } }
        }
        form method="get" action="/officer" {
            @if today { input type="hidden" name="view" value="today"; }
            label for="q" { (t.queue_search_label) }
            input #q name="q" type="search" value=(search) maxlength="200";
            button.secondary type="submit" { (t.search) }
        }
        @if lines.is_empty() {
            p #queue-empty { (t.queue_empty) }
        } @else {
            table {
                thead {
                    tr {
                        th { (t.applicant) } th { (t.column_appointment) } th { (t.submitted) } th { (t.mailbox) }
                        th { (t.identity) } th { (t.status) }
                    }
                }
                tbody {
                    @for line in lines {
                        tr {
                            td { a href={ "/officer/applications/" (line.app.id) } { (line.app.given_name) " " (line.app.surname) " <" (line.app.email) ">" } }
                            td {
                                @match line.slot {
                                    Some(slot) => { (when(z, slot.starts_at)) " · " (slot.place) },
                                    None => { (t.none_booked) },
                                }
                            }
                            td { (when(z, line.app.created_at)) }
                            td { (checked(line.app.mailbox_validated_at.is_some())) }
                            td { (checked(line.app.identity.is_some())) }
                            td { (state_name(t, line.app.state)) }
                        }
                    }
                }
            }
        }
    }
}

/// An application as the officer sees it, with the evidence and decision forms.
pub fn officer_application(
    t: &Texts,
    z: &OrgZone,
    app: &Application,
    slot: Option<&SlotView>,
    upcoming: bool,
    officer: &str,
    csrf: &str,
) -> Markup {
    let id = app.id.as_str();
    // Nobody checks their own application (the desk refuses it too).
    let own = app.email.eq_ignore_ascii_case(officer);
    html! {
        p { (app.given_name) " " (app.surname) " <" (app.email) "> · " (profile_label(t, app.profile.name())) " · " strong { (state_name(t, app.state)) } }
        p {
            (t.mailbox) ": "
            @match app.mailbox_validated_at {
                Some(at) => { (t.validated) " " (when(z, at)) },
                None => { (t.not_yet_validated) },
            }
        }
        p #appointment {
            (t.column_appointment) ": "
            @match slot {
                Some(slot) => { (when(z, slot.starts_at)) " · " (slot.place) },
                None => { (t.none_booked) },
            }
        }
        @if upcoming && app.state == ApplicationState::AwaitingChecks {
            form method="post" action={ "/officer/applications/" (id) "/appointment/cancel" } {
                (csrf_field(csrf))
                label { input type="checkbox" name="confirm" value="yes" required; " " (t.officer_cancel_consequence) }
                button.secondary type="submit" { (t.officer_cancel_appointment) }
            }
        }
        @if let Some(e) = &app.identity {
            p {
                (t.identity) ": " (document_label(t, e.document_type)) " · " (e.issuing_authority) " · " (e.document_number)
                " · " (t.valid_until_lower) " " (e.document_expires.to_string()) " · " (t.checked_by) " " (e.officer)
            }
        } @else if app.state == ApplicationState::AwaitingChecks && own {
            p.error #own-application { (t.own_application_note) }
        } @else if app.state == ApplicationState::AwaitingChecks {
            h2 { (t.record_identity) }
            form method="post" action={ "/officer/applications/" (id) "/identity" } {
                (csrf_field(csrf))
                label for="document_type" { (t.document_type) }
                select #document_type name="document_type" {
                    @for d in DocumentType::ALL {
                        option value=(d.name()) { (document_label(t, d)) }
                    }
                }
                label for="issuing_authority" { (t.issuing_authority) }
                input #issuing_authority name="issuing_authority" required maxlength="100";
                label for="document_number" { (t.document_number) }
                input #document_number name="document_number" required maxlength="100";
                label for="document_expires" { (t.valid_until) }
                input #document_expires name="document_expires" type="date" required;
                label { input type="checkbox" name="in_person" value="yes" required; " " (t.in_person) }
                button type="submit" { (t.record) }
            }
        }
        @if app.state == ApplicationState::AwaitingChecks && !own {
            h2 { (t.decision) }
            @if app.mailbox_validated_at.is_some() && app.identity.is_some() {
                form method="post" action={ "/officer/applications/" (id) "/approve" } {
                    (csrf_field(csrf))
                    button type="submit" { (t.approve) }
                }
            } @else {
                p #approve-later { (t.approve_after_checks) }
            }
            form method="post" action={ "/officer/applications/" (id) "/reject" } {
                (csrf_field(csrf))
                label for="reason" { (t.rejection_reason) }
                input #reason name="reason" required maxlength="500" size="50";
                button.secondary type="submit" { (t.reject) }
            }
        }
    }
}

/// The officers' slots: the form for a new one and the upcoming ones.
pub fn officer_slots(t: &Texts, z: &OrgZone, slots: &[SlotView], csrf: &str) -> Markup {
    html! {
        form method="post" action="/officer/slots" {
            (csrf_field(csrf))
            label for="starts_at" { ((t.slot_starts_at)(z.name())) }
            input #starts_at name="starts_at" type="datetime-local" required;
            label for="place" { (t.place) }
            input #place name="place" required maxlength="100";
            button type="submit" { (t.publish_slot) }
        }
        h2 { (t.upcoming_slots) }
        ul {
            @for slot in slots {
                li {
                    (when(z, slot.starts_at)) " · " (slot.place) " · "
                    @match &slot.application_id {
                        Some(app) => { a href={ "/officer/applications/" (app) } { (t.booked) } },
                        None => {
                            (t.free) " "
                            form.inline method="post" action={ "/officer/slots/" (slot.id) "/remove" } {
                                (csrf_field(csrf))
                                button.secondary type="submit" { (t.remove_slot) }
                            }
                        },
                    }
                }
            }
        }
    }
}

/// The officers' certificate search.
pub fn officer_certificates(t: &Texts, z: &OrgZone, email: &str, certs: &[CertificateRecord], csrf: &str) -> Markup {
    html! {
        form method="get" action="/officer/certificates" {
            label for="email" { (t.email_address) }
            input #email name="email" type="email" value=(email);
            button type="submit" { (t.search) }
        }
        @for cert in certs {
            (certificate_block(t, z, cert, csrf, None))
        }
    }
}

/// The administration page: staff, the form to add one, the profiles' validity.
/// `plain_links`: the portal's public URL is plain http:// over a network (a warning).
pub fn admin(t: &Texts, staff: &[StaffView], profiles: &[ProfileSetting], csrf: &str, plain_links: bool) -> Markup {
    html! {
        @if plain_links {
            p.warning role="alert" { strong { (t.plain_http_warning) } }
        }
        p { a href="/admin/audit" { (t.audit_log) } }
        h2 { (t.staff_heading) }
        ul {
            @for user in staff {
                li {
                    (user.email) " · " (user.role) " · " (if user.second_factor { t.totp_enrolled } else { t.totp_missing })
                    @if user.disabled { " · " strong { (t.staff_disabled) } }
                    // Each change needs its box ticked: no change in one click.
                    form method="post" action="/admin/users/change" {
                        (csrf_field(csrf))
                        input type="hidden" name="email" value=(user.email);
                        @if user.disabled {
                            button type="submit" name="change" value="enable" { (t.enable_staff) }
                        } @else {
                            button type="submit" name="change" value="disable" { (t.disable_staff) }
                            " "
                            button type="submit" name="change" value="reset" { (t.reset_second_factor) }
                        }
                        " "
                        label { input type="checkbox" name="confirm" value="yes" required; " " (t.confirm_staff_change) }
                    }
                }
            }
        }
        form method="post" action="/admin/users" {
            (csrf_field(csrf))
            label for="email" { (t.email_address) }
            input #email name="email" type="email" required;
            label for="role" { (t.role) }
            select #role name="role" {
                option value="officer" { (t.role_officer) }
                option value="admin" { (t.role_admin) }
            }
            button type="submit" { (t.add_staff) }
        }
        h2 { (t.profiles_heading) }
        ul {
            @for p in profiles {
                li {
                    form method="post" action="/admin/profiles" {
                        (csrf_field(csrf))
                        input type="hidden" name="profile" value=(p.name);
                        label for={ "days-" (p.name) } {
                            (p.name) " (" (p.max_days) " " (t.days_at_most) ", " (if p.set_here { t.set_here } else { t.from_config }) ")"
                        }
                        input id={ "days-" (p.name) } name="days" type="number" min="1" max=(p.max_days) value=(p.days) required;
                        " " (t.days) " "
                        button type="submit" { (t.save) }
                    }
                }
            }
        }
    }
}

/// The audit log: the chain's verdict (records and head, or the desk's sentence), the
/// search and the rows.
pub fn audit(t: &Texts, z: &OrgZone, verdict: Result<(usize, &str), &str>, filter: &str, rows: &[AuditRow]) -> Markup {
    html! {
        @match verdict {
            Ok((records, head)) => {
                p.ok #audit-verdict { (t.chain_intact) " (" (records) " " (t.records) ", " (t.chain_head) " " code { (head) } ")" }
            },
            Err(message) => { p.error #audit-verdict { (message) } },
        }
        form method="get" action="/admin/audit" {
            label for="q" { (t.search_label) }
            input #q name="q" value=(filter);
            button type="submit" { (t.search) }
        }
        p { a href={ "/admin/audit?format=json&q=" (filter) } { (t.export_json) } }
        table {
            thead {
                tr {
                    th { "#" } th { (t.column_when) } th { (t.column_who) } th { (t.column_what) }
                    th { (t.column_subject) } th { (t.column_details) }
                }
            }
            tbody {
                @for r in rows.iter().take(500) {
                    tr {
                        td { (r.seq) } td { (when(z, r.at)) } td { (r.actor) } td { code { (r.action) } }
                        td { code { (r.subject) } } td { code { (r.details) } }
                    }
                }
            }
        }
    }
}

/// A certificate of the directory with its PEM.
pub struct DirectoryEntry<'a> {
    /// The certificate.
    pub cert: &'a CertificateRecord,
    /// Its PEM.
    pub pem: String,
}

/// The directory: the search form and, after a search, what it found.
pub fn directory(t: &Texts, z: &OrgZone, email: &str, found: Option<&[DirectoryEntry<'_>]>) -> Markup {
    html! {
        p { (t.directory_intro) }
        form method="get" action="/directory" {
            label for="email" { (t.email_address) }
            input #email name="email" type="email" value=(email) required;
            button type="submit" { (t.look_up) }
        }
        @match found {
            Some([]) => { p #directory-result { (t.no_current_certificate) } },
            Some(entries) => {
                ul #directory-result {
                    @for e in entries {
                        li {
                            (e.cert.subject) " · " (profile_label(t, e.cert.profile.name())) " · " (t.issued_on) " "
                            (day(z, e.cert.issued_at)) " · " (t.valid_until_lower) " " (day(z, e.cert.not_after)) " · "
                            (t.key_kind) " " (e.cert.key_kind) " · " code { (e.cert.serial) }
                            " · " a href={ "/directory/" (e.cert.serial) ".pem" } download { (t.download_certificate) }
                            details { summary { "PEM" } pre { (e.pem) } }
                        }
                    }
                }
            },
            None => {},
        }
    }
}

fn recovery_state(t: &Texts, state: RecoveryState) -> &'static str {
    match state {
        RecoveryState::Requested => t.recovery_state_requested,
        RecoveryState::Open => t.recovery_state_open,
        RecoveryState::Ready => t.recovery_state_ready,
        RecoveryState::Delivered => t.recovery_state_delivered,
        RecoveryState::Cancelled => t.recovery_state_cancelled,
        RecoveryState::Expired => t.recovery_state_expired,
        RecoveryState::Failed => t.recovery_state_failed,
    }
}

/// The key recoveries page (issue 15): the recoveries the signed-in user has a part in,
/// the form to ask for one's own escrowed keys, and for administrators the form for a
/// successor or stand-in.
pub fn recoveries(t: &Texts, z: &OrgZone, views: &[RecoveryView], admin: bool, csrf: &str) -> Markup {
    html! {
        p { (t.recoveries_intro) }
        @if views.is_empty() {
            p { (t.recovery_none) }
        } @else {
            table {
                thead { tr { th { (t.submitted) } th { (t.recovery_holder_label) } th { (t.recovery_recipient_label) } th { (t.status) } } }
                tbody {
                    @for view in views {
                        @let r = &view.recovery;
                        tr {
                            td { a href={ "/recoveries/" (r.id) } { (when(z, r.created_at)) } }
                            td { (r.holder) }
                            td { (r.recipient) }
                            td { (recovery_state(t, r.state)) }
                        }
                    }
                }
            }
        }
        h2 { (t.recovery_request_own) }
        p { (t.recovery_request_own_note) }
        form method="post" action="/recoveries" {
            (csrf_field(csrf))
            label for="reason" { (t.recovery_why) }
            textarea #reason name="reason" required {}
            button type="submit" { (t.recovery_ask) }
        }
        @if admin {
            h2 { (t.recovery_successor_heading) }
            p { (t.recovery_successor_note) }
            form method="post" action="/recoveries/successor" {
                (csrf_field(csrf))
                label for="holder" { (t.recovery_holder) }
                input #holder name="holder" type="email" required;
                label for="recipient" { (t.recovery_recipient) }
                input #recipient name="recipient" type="email" required;
                label for="successor_reason" { (t.recovery_why) }
                textarea #successor_reason name="reason" required {}
                label for="authorised_by" { (t.recovery_authorised_by) }
                input #authorised_by name="authorised_by" required;
                label for="issued_from" { (t.recovery_issued_from) }
                input #issued_from name="issued_from" type="date";
                label for="issued_until" { (t.recovery_issued_until) }
                input #issued_until name="issued_until" type="date";
                button type="submit" { (t.recovery_ask) }
            }
        }
    }
}

/// One key recovery: what it is for and where it stands, and the form of the step that
/// is the signed-in user's (`me`): the officer's identity check, the agent's share, the
/// recipient's download, cancelling.
pub fn recovery(t: &Texts, z: &OrgZone, view: &RecoveryView, me: &str, officer: bool, csrf: &str) -> Markup {
    let r = &view.recovery;
    let id = r.id.as_str();
    let involved = r.holder == me || r.recipient == me || r.requested_by == me;
    html! {
        p { strong { (t.status) ": " span #state { (recovery_state(t, r.state)) } } }
        p { (t.recovery_holder_label) ": " (r.holder) " · " (t.recovery_recipient_label) ": " (r.recipient) }
        p { (t.recovery_requested_by) ": " (r.requested_by) " · " (when(z, r.created_at)) }
        p { (t.reason) ": " (r.reason) }
        @if let Some(by) = &r.authorised_by {
            p { (t.recovery_authorised_by) ": " (by) }
        }
        p { (t.certificates) ": " @for serial in &r.serials { code { (serial) } " " } }
        @if let Some(until) = r.expires_at {
            @if r.state == RecoveryState::Open {
                p { (t.recovery_window) " " (when(z, until)) }
            }
            @if r.state == RecoveryState::Ready {
                p { (t.recovery_take_until) " " (when(z, until)) }
            }
        }
        p #shares { ((t.recovery_shares_of)(view.approvals.len(), view.threshold)) }
        @if !view.approvals.is_empty() {
            p { (t.recovery_agents_given) ": " @for a in &view.approvals { (a.agent) " " } }
        }
        @if r.state == RecoveryState::Requested && officer && r.holder != me {
            h2 { (t.recovery_identity_heading) }
            form method="post" action={ "/recoveries/" (id) "/identity" } {
                (csrf_field(csrf))
                label for="document_type" { (t.document_type) }
                select #document_type name="document_type" {
                    option value="identity-card" { (t.document_identity_card) }
                    option value="passport" { (t.document_passport) }
                    option value="residence-permit" { (t.document_residence_permit) }
                }
                label for="document_number" { (t.document_number) }
                input #document_number name="document_number" required;
                label { input type="checkbox" name="in_person" value="yes" required; " " (t.in_person) }
                button type="submit" { (t.record) }
            }
        }
        @if r.state == RecoveryState::Open && view.my_agent_index.is_some() && !involved {
            h2 { (t.recovery_share_heading) }
            form method="post" action={ "/recoveries/" (id) "/share" } autocomplete="off" {
                (csrf_field(csrf))
                label for="share" { (t.recovery_share_label) }
                textarea #share name="share" required rows="8" {}
                label for="code" { (t.totp_code) }
                input #code name="code" inputmode="numeric" autocomplete="one-time-code" required;
                button type="submit" { (t.recovery_give_share) }
            }
        }
        @if r.state == RecoveryState::Ready && r.recipient == me {
            h2 { (t.recovery_receive_heading) }
            p { (t.recovery_receive_text) }
            form method="post" action={ "/recoveries/" (id) "/p12" } {
                (csrf_field(csrf))
                label for="password" { (t.p12_password) }
                input #password name="password" type="password" autocomplete="new-password" required minlength="12";
                label for="password2" { (t.p12_password_again) }
                input #password2 name="password2" type="password" autocomplete="new-password" required minlength="12";
                label for="format" { (t.file_format) }
                select #format name="format" {
                    option value="modern" { (t.format_modern) }
                    option value="compat" { (t.format_compat) }
                }
                button type="submit" { (t.create_p12) }
            }
        }
        @if !r.state.is_closed() && (r.holder == me || r.requested_by == me) {
            form method="post" action={ "/recoveries/" (id) "/cancel" } {
                (csrf_field(csrf))
                button.secondary type="submit" { (t.recovery_cancel) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    /// The QR code on the enrolment page reads back (rqrr, a decoder we did not write)
    /// as the `otpauth://` URI, from the SVG as the browser draws it.
    #[test]
    fn the_totp_qr_code_reads_back_as_the_uri() {
        let uri = "otpauth://totp/certdesk%20Example%20University:jane.doe@example.org?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=certdesk%20Example%20University&algorithm=SHA1&digits=6&period=30";
        let svg = super::qr_svg(uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        let number = |name: &str| -> usize {
            let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            svg[at..].split('"').next().unwrap().parse().unwrap()
        };
        let (width, height) = (number("width"), number("height"));
        // Every dark module is `M{left} {top}h{w}v{h}H{left}V{top}` in the path.
        let path = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
        let mut dark = vec![false; width * height];
        for rect in path.split('M').filter(|r| !r.is_empty()) {
            let numbers: Vec<usize> = rect
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().unwrap())
                .collect();
            let (left, top, w, h) = (numbers[0], numbers[1], numbers[2], numbers[3]);
            for y in top..top + h {
                for x in left..left + w {
                    dark[y * width + x] = true;
                }
            }
        }
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(
                width,
                height,
                |x, y| if dark[y * width + x] { 0 } else { 255 },
            );
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }
}
