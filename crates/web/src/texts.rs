//! The portal's texts: one catalogue per language ([`EN`], [`DE`]), chosen once per
//! request with [`texts`]. A page takes `&Texts` and never a language: a text missing
//! in one language is a compile error (both catalogues are literals of one struct).
//!
//! Error sentences of the desk ([`DomainError`] messages, written in English) are
//! shown through [`Texts::error_message`]: known sentences map to their catalogue
//! entry by wording, any other one to a sentence for its [`ErrorCode`] (German pages),
//! so a German page never shows the desk's English.

use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_desk::mail::Lang;

/// Declares [`Texts`] with its plain texts (listed by [`Texts::all`]) and its texts
/// with parameters (functions).
macro_rules! catalogue {
    (
        plain { $($name:ident,)* }
        functions { $($function:ident: fn($($argument:ty),*),)* }
    ) => {
        /// The texts of the portal in one language.
        pub struct Texts {
            /// The language of the catalogue.
            pub lang: Lang,
            $(
                #[doc = concat!("The text `", stringify!($name), "`.")]
                pub $name: &'static str,
            )*
            $(
                #[doc = concat!("The text `", stringify!($function), "` with its parameters.")]
                pub $function: fn($($argument),*) -> String,
            )*
        }

        impl Texts {
            /// Every plain text, with its name (for tests that look for a language's
            /// texts on another language's pages).
            pub fn all(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

catalogue! {
    plain {
        // Layout
        nav_home, nav_directory, nav_officer, nav_admin, sign_out, skip_to_content, nav_label,
        // Error pages
        title_not_found, title_forbidden, title_unauthenticated, title_internal, title_failed,
        sign_in, back_to_start,
        // Errors made by the web tier
        please_sign_in, csrf_wrong, choose_csr, csr_not_both, passwords_differ, role_invalid,
        slot_start_invalid, no_such_certificate, certificate_unencodable, sso_not_started_here,
        page_not_found, portal_disabled, form_unreadable,
        // Sign-in and second factor
        sign_in_intro, email_address, send_sign_in_link, sign_in_link_sent, sign_in_now, sso_default_name,
        sso_or_link, second_factor, totp_intro, totp_key, totp_code_app, totp_code, confirm,
        // Applicant: home and certificates
        apply_for_certificate, your_applications, none_yet, submitted, profile, status, your_certificates,
        revoked_on, valid_until_lower, serial, download_pem, revocation_reason, reason_key_compromise,
        reason_superseded, reason_affiliation_changed, reason_cessation, reason_unspecified, revoke_certificate,
        renew,
        // States of an application
        state_awaiting_checks, state_approved, state_issued, state_rejected, state_withdrawn,
        // Profiles
        profile_sponsor_strict, profile_sponsor_multipurpose, profile_mailbox, profile_private,
        // Applying
        apply_intro, given_names, surname, certificate_email, certificate_type, apply,
        // The application page
        your_application, name, reason, steps, step_mailbox, step_identity, step_approval, confirm_mailbox,
        code_from_mail, send_new_code, appointment_heading, your_appointment, bring_id, no_free_slots,
        free_slots, book, choose_key, key_made_for_you, key_made_for_you_text, p12_password, p12_password_again,
        file_format, format_modern, format_compat, key_type, rsa_works_everywhere, create_p12, own_key,
        own_key_text, csr_file, csr_paste, issue_certificate, certificate_ready, withdraw, confirm_my_mailbox,
        p12_waiting, download_p12, p12_saved,
        // Revocation
        certificate_revoked, revoked,
        // Officers
        appointment_slots, find_certificates, applicant, mailbox, identity, checked, open, queue_title,
        validated, not_yet_validated, checked_by, document_identity_card, document_passport,
        document_residence_permit, record_identity, document_type, issuing_authority, document_number,
        valid_until, in_person, record, decision, approve, rejection_reason, reject, application,
        slot_starts_at, place, publish_slot, upcoming_slots, booked, free, search, certificates,
        // Administrators
        audit_log, staff_heading, totp_enrolled, totp_missing, role, role_officer, role_admin, add_staff,
        profiles_heading, days_at_most, set_here, from_config, days, save, chain_intact, records,
        chain_head, search_label, export_json, column_when, column_who, column_what, column_subject,
        column_details,
        // Directory
        directory_intro, look_up, no_current_certificate, download_certificate,
        // Known sentences of the desk (English: the desk's own sentence)
        desk_link_invalid, desk_code_wrong, desk_code_wrong_or_used, desk_value_void, desk_officers_only,
        desk_admins_only, desk_second_factor_first, desk_staff_only_totp, desk_account_disabled,
        desk_domain_refused, desk_address_refused, desk_too_many_links, desk_too_many_codes,
        desk_too_many_sso, desk_no_application, desk_no_certificate, desk_sso_not_configured,
        desk_three_open, desk_mailbox_no_validation, desk_no_appointment_needed, desk_slot_taken,
        desk_issue_too_early, desk_totp_enrolled, desk_totp_not_enrolled, desk_names_no_person,
        desk_enrolment_altered, desk_expiry_format, desk_reason_too_long, desk_place_length,
        desk_slot_past, desk_validity_days, desk_mailbox_validated, desk_mailbox_not_validated,
        desk_no_evidence, desk_in_person, desk_own_application, desk_reason_required, desk_p12_password,
        desk_p12_in_delivery,
        // Sentences for a code, when the desk's sentence is not known (German pages)
        code_bad_input, code_refused, code_not_found, code_already_revoked, code_conflict,
        code_unauthenticated, code_wrong_code, code_forbidden, code_too_many_requests, code_contention, code_audit_broken, code_failed,
        code_sso_failed,
    }
    functions {
        too_many_requests: fn(u64),
        internal_error: fn(&str),
        desk_value_wrong: fn(u32),
        unknown_format: fn(&str),
        unknown_key_type: fn(&str),
    }
}

/// The catalogue of a language.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        _ => &EN,
    }
}

/// The English texts.
pub static EN: Texts = Texts {
    lang: Lang::En,
    nav_home: "Home",
    nav_directory: "Directory",
    nav_officer: "Service desk",
    nav_admin: "Administration",
    sign_out: "Sign out",
    skip_to_content: "Skip to content",
    nav_label: "Main",
    title_not_found: "Not found",
    title_forbidden: "Not allowed",
    title_unauthenticated: "Sign-in needed",
    title_internal: "Something went wrong",
    title_failed: "That did not work",
    sign_in: "Sign in",
    back_to_start: "Back to the start page",
    please_sign_in: "Please sign in first.",
    csrf_wrong: "the form's security token is missing or wrong; reload the page and try again",
    choose_csr: "Choose a CSR file or paste the CSR.",
    csr_not_both: "Give the CSR once: as a file or pasted, not both.",
    passwords_differ: "The two passwords differ.",
    role_invalid: "the role must be officer or admin",
    slot_start_invalid: "the start must be a date and time (YYYY-MM-DDTHH:MM)",
    no_such_certificate: "no such certificate",
    certificate_unencodable: "the certificate cannot be encoded",
    sso_not_started_here: "single sign-on failed: this sign-in attempt was not started in this browser; start again",
    page_not_found: "There is no such page.",
    portal_disabled: "the portal is not enabled",
    form_unreadable: "the form could not be read; reload the page and try again",
    sign_in_intro: "Sign in with your work e-mail address: we mail you a link that signs you in. No password needed.",
    email_address: "E-mail address",
    send_sign_in_link: "Send me a sign-in link",
    sign_in_link_sent: "If this address may use the portal, a sign-in link is on its way. It works once, for 15 minutes.",
    sign_in_now: "Sign in now",
    sso_default_name: "Sign in with your organisation account",
    sso_or_link: "Or sign in with a link by e-mail:",
    second_factor: "Second factor",
    totp_intro: "Officers and administrators sign in with a second factor. Add this key to your authenticator app (TOTP, 6 digits, 30 seconds), then enter the code it shows.",
    totp_key: "Key",
    totp_code_app: "Code from the app",
    totp_code: "Code from your authenticator app",
    confirm: "Confirm",
    apply_for_certificate: "Apply for a certificate",
    your_applications: "Your applications",
    none_yet: "None yet.",
    submitted: "Submitted",
    profile: "Profile",
    status: "Status",
    your_certificates: "Your certificates",
    revoked_on: "revoked on",
    valid_until_lower: "valid until",
    serial: "Serial",
    download_pem: "Download certificate (PEM)",
    revocation_reason: "Reason for revocation",
    reason_key_compromise: "My key was lost or compromised",
    reason_superseded: "Replaced by a new certificate",
    reason_affiliation_changed: "My name or affiliation changed",
    reason_cessation: "I no longer need it",
    reason_unspecified: "No reason given",
    revoke_certificate: "Revoke this certificate",
    renew: "Renew",
    state_awaiting_checks: "checks pending",
    state_approved: "approved: choose your key",
    state_issued: "certificate issued",
    state_rejected: "rejected",
    state_withdrawn: "withdrawn",
    profile_sponsor_strict: "Staff, signing and encryption (recommended)",
    profile_sponsor_multipurpose: "Staff, multipurpose (also document signing)",
    profile_mailbox: "Mailbox only (no name)",
    profile_private: "Internal use only, 3 years (not publicly trusted)",
    apply_intro: "Give your name exactly as on your ID card or passport: the service desk checks it when you visit.",
    given_names: "Given name(s)",
    surname: "Surname",
    certificate_email: "E-mail address (the certificate's)",
    certificate_type: "Certificate type",
    apply: "Apply",
    your_application: "Your application",
    name: "Name",
    reason: "Reason",
    steps: "Steps",
    step_mailbox: "Confirm your mailbox with the code we mailed you",
    step_identity: "Show your ID at the service desk",
    step_approval: "Approval, then choose your key",
    confirm_mailbox: "Confirm your mailbox",
    code_from_mail: "Code from the e-mail",
    send_new_code: "Send a new code",
    appointment_heading: "Appointment at the service desk",
    your_appointment: "Your appointment",
    bring_id: "Bring your ID card or passport.",
    no_free_slots: "No free slots right now; please look again later.",
    free_slots: "Free slots",
    book: "Book",
    choose_key: "Choose how you get your key",
    key_made_for_you: "A key made for you, as a password-protected file (.p12)",
    key_made_for_you_text: "The file holds your key, encrypted with your password; a copy stays here for a week (or until you confirm you saved it), in case the download does not arrive. Choose a password of at least 12 characters that only you know. Modern files suit Thunderbird, current Windows and Outlook, Apple Mail on macOS 14 and later; choose compatible for older Windows, older macOS and gpgsm (Kleopatra).",
    p12_password: "Password for the file",
    p12_password_again: "The same password again",
    file_format: "File format",
    format_modern: "modern (AES-256)",
    format_compat: "compatible (3DES, older clients)",
    key_type: "Key type",
    rsa_works_everywhere: "works everywhere",
    create_p12: "Create and download my .p12",
    own_key: "My own key (advanced)",
    own_key_text: "Upload or paste a certificate signing request (CSR, PEM or DER). Your key never leaves your device. `certdesk enroll` does this for you.",
    csr_file: "CSR file (PEM or DER)",
    csr_paste: "or paste it (PEM)",
    issue_certificate: "Issue my certificate",
    certificate_ready: "Your certificate is ready.",
    p12_waiting: "Your .p12 file is kept here for a week after it was made, encrypted with your password, in case its download did not complete (until you confirm you saved it). Enter the password you chose for it to download it again.",
    download_p12: "Download my .p12 again",
    p12_saved: "I have saved my .p12: delete the copy here",
    withdraw: "Withdraw this application",
    confirm_my_mailbox: "Confirm my mailbox",
    certificate_revoked: "The certificate is revoked:",
    revoked: "Revoked",
    appointment_slots: "Appointment slots",
    find_certificates: "Find and revoke certificates",
    applicant: "Applicant",
    mailbox: "Mailbox",
    identity: "Identity",
    checked: "checked",
    open: "open",
    queue_title: "Service desk queue",
    validated: "validated",
    not_yet_validated: "not yet validated",
    checked_by: "checked by",
    document_identity_card: "National identity card",
    document_passport: "Passport",
    document_residence_permit: "Residence permit",
    record_identity: "Record the identity check (BR 3.2.4)",
    document_type: "Document type",
    issuing_authority: "Issuing authority",
    document_number: "Document number",
    valid_until: "Valid until",
    in_person: "I saw the person and the original document, and the photo and name match",
    record: "Record",
    decision: "Decision",
    approve: "Approve",
    rejection_reason: "Reason for rejection",
    reject: "Reject",
    application: "Application",
    slot_starts_at: "Starts at (UTC)",
    place: "Place",
    publish_slot: "Publish slot",
    upcoming_slots: "Upcoming slots",
    booked: "booked",
    free: "free",
    search: "Search",
    certificates: "Certificates",
    audit_log: "Audit log",
    staff_heading: "Officers and administrators",
    totp_enrolled: "second factor enrolled",
    totp_missing: "no second factor yet",
    role: "Role",
    role_officer: "Registration officer",
    role_admin: "Administrator",
    add_staff: "Add and mail a sign-in link",
    profiles_heading: "Profiles and validity",
    days_at_most: "days at most",
    set_here: "set here",
    from_config: "from certdesk.toml",
    days: "days",
    save: "Save",
    chain_intact: "The hash chain is intact",
    records: "records",
    chain_head: "head",
    search_label: "Search",
    export_json: "Export as JSON",
    column_when: "When",
    column_who: "Who",
    column_what: "What",
    column_subject: "Subject",
    column_details: "Details",
    directory_intro: "Find a colleague's current certificate to send them encrypted mail.",
    look_up: "Look up",
    no_current_certificate: "No current certificate.",
    download_certificate: "Download certificate",
    desk_link_invalid: "this sign-in link is invalid, used or expired; request a new one",
    desk_code_wrong: "the code is wrong",
    desk_code_wrong_or_used: "the code is wrong or was already used",
    desk_value_void: "this value is used, expired or blocked after too many attempts; request a new one",
    desk_officers_only: "this page is for registration officers",
    desk_admins_only: "this page is for administrators",
    desk_second_factor_first: "give your second factor (authenticator code) first",
    desk_staff_only_totp: "only officers and administrators use a second factor",
    desk_account_disabled: "this account is disabled",
    desk_domain_refused: "addresses of this domain cannot apply here",
    desk_address_refused: "this e-mail address may not use the portal",
    desk_too_many_links: "too many sign-in links were requested for this address; wait 15 minutes",
    desk_too_many_codes: "too many wrong authenticator codes; wait 15 minutes (after 20 in a day, a day) before the next try",
    desk_too_many_sso: "too many sign-ins are in progress; try again in a few minutes",
    desk_no_application: "no such application",
    desk_no_certificate: "no such certificate",
    desk_sso_not_configured: "single sign-on is not configured",
    desk_three_open: "you already have three open applications",
    desk_mailbox_no_validation: "the mailbox needs no validation now",
    desk_no_appointment_needed: "this application needs no appointment",
    desk_slot_taken: "this slot is no longer free, or you already booked one",
    desk_issue_too_early: "a certificate can be issued only after the mailbox and identity checks and the approval",
    desk_totp_enrolled: "a second factor is already enrolled",
    desk_totp_not_enrolled: "no second factor is enrolled yet",
    desk_names_no_person: "this certificate names no person: apply for a new one",
    desk_enrolment_altered: "the enrolment form was altered; start again",
    desk_expiry_format: "the expiry date must be written YYYY-MM-DD",
    desk_reason_too_long: "the reason is longer than 500 characters",
    desk_place_length: "the place must be 1 to 100 characters",
    desk_slot_past: "the slot must be in the future",
    desk_validity_days: "the validity must be a whole number of days",
    desk_mailbox_validated: "the mailbox is already validated",
    desk_mailbox_not_validated: "the mailbox has not been validated yet",
    desk_no_evidence: "no identity evidence has been recorded yet",
    desk_in_person: "the identity must be checked in person (BR 3.2.4)",
    desk_own_application: "officers may not check or decide their own application",
    desk_reason_required: "a rejection needs a reason",
    desk_p12_password: "the .p12 of this application was made already; give the password you chose then to download it again",
    desk_p12_in_delivery: "the .p12 of this application is being delivered; if the download did not arrive, try again in a minute",
    code_bad_input: "The input could not be read; check it and try again.",
    code_refused: "The input was refused; check it and try again.",
    code_not_found: "This was not found.",
    code_already_revoked: "The certificate is already revoked.",
    code_conflict: "This is not possible in the current state; reload the page.",
    code_unauthenticated: "The sign-in or the code was not accepted.",
    code_wrong_code: "The code is wrong.",
    code_forbidden: "You may not do this.",
    code_too_many_requests: "Too many attempts; try again later.",
    code_contention: "Something else changed at the same time; try again.",
    code_audit_broken: "The audit log's hash chain is broken.",
    code_failed: "That did not work.",
    code_sso_failed: "Single sign-on failed; start again.",
    too_many_requests: |wait| format!("too many requests from your address; try again in {wait} seconds"),
    internal_error: |id| {
        format!("an internal error occurred (request {id}); the administrators can find it in the log")
    },
    desk_value_wrong: |left| format!("the value is not right; {left} attempts left"),
    unknown_format: |value| format!("unknown format {value:?}"),
    unknown_key_type: |value| format!("unknown key type {value:?}"),
};

/// The German texts.
pub static DE: Texts = Texts {
    lang: Lang::De,
    nav_home: "Start",
    nav_directory: "Verzeichnis",
    nav_officer: "Servicetheke",
    nav_admin: "Verwaltung",
    sign_out: "Abmelden",
    skip_to_content: "Zum Inhalt springen",
    nav_label: "Hauptmenü",
    title_not_found: "Nicht gefunden",
    title_forbidden: "Nicht erlaubt",
    title_unauthenticated: "Anmeldung nötig",
    title_internal: "Etwas ist schiefgegangen",
    title_failed: "Das hat nicht geklappt",
    sign_in: "Anmelden",
    back_to_start: "Zurück zur Startseite",
    please_sign_in: "Bitte melden Sie sich zuerst an.",
    csrf_wrong: "Das Sicherheitsmerkmal des Formulars fehlt oder ist falsch; laden Sie die Seite neu und versuchen Sie es noch einmal.",
    choose_csr: "Wählen Sie eine CSR-Datei oder fügen Sie den CSR ein.",
    csr_not_both: "Geben Sie den CSR nur einmal an: als Datei oder eingefügt, nicht beides.",
    passwords_differ: "Die beiden Passwörter unterscheiden sich.",
    role_invalid: "Die Rolle muss Sachbearbeitung oder Verwaltung sein.",
    slot_start_invalid: "Der Beginn muss ein Datum mit Uhrzeit sein (JJJJ-MM-TTTHH:MM).",
    no_such_certificate: "Dieses Zertifikat gibt es nicht.",
    certificate_unencodable: "Das Zertifikat kann nicht ausgegeben werden.",
    sso_not_started_here: "Die Anmeldung ist fehlgeschlagen: Dieser Anmeldeversuch wurde nicht in diesem Browser begonnen; bitte neu beginnen",
    page_not_found: "Diese Seite gibt es nicht.",
    portal_disabled: "Das Portal ist nicht eingeschaltet.",
    form_unreadable: "Das Formular konnte nicht gelesen werden; laden Sie die Seite neu und versuchen Sie es noch einmal.",
    sign_in_intro: "Melden Sie sich mit Ihrer dienstlichen E-Mail-Adresse an: Wir senden Ihnen einen Link, der Sie anmeldet. Ein Passwort ist nicht nötig.",
    email_address: "E-Mail-Adresse",
    send_sign_in_link: "Anmeldelink senden",
    sign_in_link_sent: "Wenn diese Adresse das Portal nutzen darf, ist ein Anmeldelink unterwegs. Er gilt einmal, 15 Minuten lang.",
    sign_in_now: "Jetzt anmelden",
    sso_default_name: "Mit Ihrem Organisationskonto anmelden",
    sso_or_link: "Oder mit einem Link per E-Mail anmelden:",
    second_factor: "Zweiter Faktor",
    totp_intro: "Sachbearbeitende und Administratoren melden sich mit einem zweiten Faktor an. Fügen Sie diesen Schlüssel Ihrer Authenticator-App hinzu (TOTP, 6 Ziffern, 30 Sekunden) und geben Sie den angezeigten Code ein.",
    totp_key: "Schlüssel",
    totp_code_app: "Code aus der App",
    totp_code: "Code aus Ihrer Authenticator-App",
    confirm: "Bestätigen",
    apply_for_certificate: "Zertifikat beantragen",
    your_applications: "Ihre Anträge",
    none_yet: "Noch keine.",
    submitted: "Eingereicht",
    profile: "Profil",
    status: "Status",
    your_certificates: "Ihre Zertifikate",
    revoked_on: "widerrufen am",
    valid_until_lower: "gültig bis",
    serial: "Seriennummer",
    download_pem: "Zertifikat herunterladen (PEM)",
    revocation_reason: "Grund des Widerrufs",
    reason_key_compromise: "Mein Schlüssel ist verloren oder kompromittiert",
    reason_superseded: "Durch ein neues Zertifikat ersetzt",
    reason_affiliation_changed: "Name oder Zugehörigkeit hat sich geändert",
    reason_cessation: "Ich brauche es nicht mehr",
    reason_unspecified: "Ohne Angabe",
    revoke_certificate: "Dieses Zertifikat widerrufen",
    renew: "Verlängern",
    state_awaiting_checks: "Prüfungen ausstehend",
    state_approved: "genehmigt: Schlüssel wählen",
    state_issued: "Zertifikat ausgestellt",
    state_rejected: "abgelehnt",
    state_withdrawn: "zurückgezogen",
    profile_sponsor_strict: "Beschäftigte, Signatur und Verschlüsselung (empfohlen)",
    profile_sponsor_multipurpose: "Beschäftigte, Mehrzweck (auch Dokumentsignatur)",
    profile_mailbox: "Nur Postfach (ohne Namen)",
    profile_private: "Nur intern, 3 Jahre (nicht öffentlich vertraut)",
    apply_intro: "Geben Sie Ihren Namen genau wie in Ausweis oder Pass an: Die Servicetheke prüft ihn bei Ihrem Besuch.",
    given_names: "Vorname(n)",
    surname: "Nachname",
    certificate_email: "E-Mail-Adresse (die des Zertifikats)",
    certificate_type: "Zertifikatstyp",
    apply: "Beantragen",
    your_application: "Ihr Antrag",
    name: "Name",
    reason: "Begründung",
    steps: "Schritte",
    step_mailbox: "Postfach mit dem zugesandten Code bestätigen",
    step_identity: "Ausweis an der Servicetheke vorzeigen",
    step_approval: "Genehmigung, dann Schlüssel wählen",
    confirm_mailbox: "Postfach bestätigen",
    code_from_mail: "Code aus der E-Mail",
    send_new_code: "Neuen Code senden",
    appointment_heading: "Termin an der Servicetheke",
    your_appointment: "Ihr Termin",
    bring_id: "Bringen Sie Ihren Personalausweis oder Pass mit.",
    no_free_slots: "Zurzeit keine freien Termine; bitte später erneut schauen.",
    free_slots: "Freie Termine",
    book: "Buchen",
    choose_key: "Wählen Sie, wie Sie Ihren Schlüssel erhalten",
    key_made_for_you: "Ein für Sie erzeugter Schlüssel als passwortgeschützte Datei (.p12)",
    key_made_for_you_text: "Die Datei enthält Ihren Schlüssel, mit Ihrem Passwort verschlüsselt; eine Kopie bleibt eine Woche hier (oder bis Sie bestätigen, dass Sie sie gesichert haben), falls der Download nicht ankommt. Wählen Sie ein Passwort mit mindestens 12 Zeichen, das nur Sie kennen. Modern passt für Thunderbird, aktuelles Windows und Outlook, Apple Mail ab macOS 14; kompatibel für älteres Windows, älteres macOS und gpgsm (Kleopatra).",
    p12_password: "Passwort für die Datei",
    p12_password_again: "Dasselbe Passwort noch einmal",
    file_format: "Dateiformat",
    format_modern: "modern (AES-256)",
    format_compat: "kompatibel (3DES, ältere Programme)",
    key_type: "Schlüsseltyp",
    rsa_works_everywhere: "funktioniert überall",
    create_p12: "Meine .p12 erzeugen und herunterladen",
    own_key: "Eigener Schlüssel (für Fortgeschrittene)",
    own_key_text: "Laden Sie einen Zertifikatsantrag (CSR, PEM oder DER) hoch oder fügen Sie ihn ein. Ihr Schlüssel verlässt Ihr Gerät nie. `certdesk enroll` erledigt das für Sie.",
    csr_file: "CSR-Datei (PEM oder DER)",
    csr_paste: "oder fügen Sie ihn ein (PEM)",
    issue_certificate: "Mein Zertifikat ausstellen",
    certificate_ready: "Ihr Zertifikat ist fertig.",
    p12_waiting: "Ihre .p12-Datei wird nach ihrer Erstellung eine Woche lang hier aufbewahrt, mit Ihrem Passwort verschlüsselt, falls ihr Download nicht angekommen ist (bis Sie bestätigen, dass Sie sie gesichert haben). Geben Sie das Passwort ein, das Sie dafür gewählt haben, um sie erneut herunterzuladen.",
    download_p12: "Meine .p12-Datei erneut herunterladen",
    p12_saved: "Ich habe meine .p12-Datei gesichert: Kopie hier löschen",
    withdraw: "Diesen Antrag zurückziehen",
    confirm_my_mailbox: "Mein Postfach bestätigen",
    certificate_revoked: "Das Zertifikat ist widerrufen:",
    revoked: "Widerrufen",
    appointment_slots: "Termine",
    find_certificates: "Zertifikate suchen und widerrufen",
    applicant: "Antragsteller/in",
    mailbox: "Postfach",
    identity: "Identität",
    checked: "geprüft",
    open: "offen",
    queue_title: "Warteschlange der Servicetheke",
    validated: "bestätigt",
    not_yet_validated: "noch nicht bestätigt",
    checked_by: "geprüft von",
    document_identity_card: "Personalausweis",
    document_passport: "Reisepass",
    document_residence_permit: "Aufenthaltstitel",
    record_identity: "Identitätsprüfung erfassen (BR 3.2.4)",
    document_type: "Dokumentart",
    issuing_authority: "Ausstellende Behörde",
    document_number: "Dokumentnummer",
    valid_until: "Gültig bis",
    in_person: "Ich habe die Person und das Originaldokument gesehen; Foto und Name stimmen überein",
    record: "Erfassen",
    decision: "Entscheidung",
    approve: "Genehmigen",
    rejection_reason: "Ablehnungsgrund",
    reject: "Ablehnen",
    application: "Antrag",
    slot_starts_at: "Beginn (UTC)",
    place: "Ort",
    publish_slot: "Termin veröffentlichen",
    upcoming_slots: "Kommende Termine",
    booked: "gebucht",
    free: "frei",
    search: "Suchen",
    certificates: "Zertifikate",
    audit_log: "Audit-Protokoll",
    staff_heading: "Sachbearbeitende und Administratoren",
    totp_enrolled: "zweiter Faktor eingerichtet",
    totp_missing: "noch kein zweiter Faktor",
    role: "Rolle",
    role_officer: "Sachbearbeitung (Registrierung)",
    role_admin: "Administrator/in",
    add_staff: "Hinzufügen und Anmeldelink senden",
    profiles_heading: "Profile und Gültigkeit",
    days_at_most: "Tage höchstens",
    set_here: "hier gesetzt",
    from_config: "aus certdesk.toml",
    days: "Tage",
    save: "Speichern",
    chain_intact: "Die Hash-Kette ist intakt",
    records: "Einträge",
    chain_head: "jüngster Hash",
    search_label: "Suche",
    export_json: "Als JSON exportieren",
    column_when: "Wann",
    column_who: "Wer",
    column_what: "Was",
    column_subject: "Gegenstand",
    column_details: "Details",
    directory_intro: "Finden Sie das aktuelle Zertifikat einer Kollegin oder eines Kollegen, um verschlüsselt zu schreiben.",
    look_up: "Nachschlagen",
    no_current_certificate: "Kein aktuelles Zertifikat.",
    download_certificate: "Zertifikat herunterladen",
    desk_link_invalid: "Dieser Anmeldelink ist ungültig, schon benutzt oder abgelaufen; fordern Sie einen neuen an.",
    desk_code_wrong: "Der Code ist falsch.",
    desk_code_wrong_or_used: "Der Code ist falsch oder wurde schon benutzt.",
    desk_value_void: "Dieser Code ist schon benutzt, abgelaufen oder nach zu vielen Versuchen gesperrt; fordern Sie einen neuen an.",
    desk_officers_only: "Diese Seite ist für die Sachbearbeitung der Registrierung.",
    desk_admins_only: "Diese Seite ist für Administratorinnen und Administratoren.",
    desk_second_factor_first: "Geben Sie zuerst Ihren zweiten Faktor (den Code der Authenticator-App) ein.",
    desk_staff_only_totp: "Nur Sachbearbeitende und Administratoren nutzen einen zweiten Faktor.",
    desk_account_disabled: "Dieses Konto ist gesperrt.",
    desk_domain_refused: "Adressen dieser Domain können hier keinen Antrag stellen.",
    desk_address_refused: "Diese E-Mail-Adresse darf das Portal nicht nutzen.",
    desk_too_many_links: "Für diese Adresse wurden zu viele Anmeldelinks angefordert; warten Sie 15 Minuten.",
    desk_too_many_codes: "Zu viele falsche Codes; warten Sie 15 Minuten (nach 20 an einem Tag einen Tag) bis zum nächsten Versuch.",
    desk_too_many_sso: "Zu viele Anmeldungen sind gerade im Gang; versuchen Sie es in einigen Minuten noch einmal.",
    desk_no_application: "Diesen Antrag gibt es nicht.",
    desk_no_certificate: "Dieses Zertifikat gibt es nicht.",
    desk_sso_not_configured: "Die Anmeldung mit dem Organisationskonto ist nicht eingerichtet.",
    desk_three_open: "Sie haben schon drei offene Anträge.",
    desk_mailbox_no_validation: "Das Postfach muss jetzt nicht bestätigt werden.",
    desk_no_appointment_needed: "Dieser Antrag braucht keinen Termin.",
    desk_slot_taken: "Dieser Termin ist nicht mehr frei, oder Sie haben schon einen gebucht.",
    desk_issue_too_early: "Ein Zertifikat wird erst nach der Prüfung von Postfach und Identität und nach der Genehmigung ausgestellt.",
    desk_totp_enrolled: "Ein zweiter Faktor ist schon eingerichtet.",
    desk_totp_not_enrolled: "Es ist noch kein zweiter Faktor eingerichtet.",
    desk_names_no_person: "Dieses Zertifikat nennt keine Person: Beantragen Sie ein neues.",
    desk_enrolment_altered: "Das Formular zur Einrichtung wurde verändert; beginnen Sie neu.",
    desk_expiry_format: "Das Ablaufdatum muss als JJJJ-MM-TT geschrieben werden.",
    desk_reason_too_long: "Die Begründung ist länger als 500 Zeichen.",
    desk_place_length: "Der Ort muss 1 bis 100 Zeichen lang sein.",
    desk_slot_past: "Der Termin muss in der Zukunft liegen.",
    desk_validity_days: "Die Gültigkeit muss eine ganze Zahl von Tagen sein.",
    desk_mailbox_validated: "Das Postfach ist schon bestätigt.",
    desk_mailbox_not_validated: "Das Postfach ist noch nicht bestätigt.",
    desk_no_evidence: "Es wurde noch keine Identitätsprüfung erfasst.",
    desk_in_person: "Die Identität muss persönlich geprüft werden (BR 3.2.4).",
    desk_own_application: "Sachbearbeitende dürfen ihren eigenen Antrag nicht prüfen oder entscheiden.",
    desk_reason_required: "Eine Ablehnung braucht eine Begründung.",
    desk_p12_password: "Die .p12-Datei dieses Antrags wurde bereits erstellt; geben Sie das Passwort ein, das Sie damals gewählt haben, um sie erneut herunterzuladen.",
    desk_p12_in_delivery: "Die .p12-Datei dieses Antrags wird gerade ausgeliefert; ist der Download nicht angekommen, versuchen Sie es in einer Minute erneut.",
    code_bad_input: "Die Eingabe konnte nicht gelesen werden; prüfen Sie sie und versuchen Sie es noch einmal.",
    code_refused: "Die Eingabe wurde abgelehnt; prüfen Sie sie und versuchen Sie es noch einmal.",
    code_not_found: "Das wurde nicht gefunden.",
    code_already_revoked: "Das Zertifikat ist schon widerrufen.",
    code_conflict: "Das ist im jetzigen Zustand nicht möglich; laden Sie die Seite neu.",
    code_unauthenticated: "Die Anmeldung oder der Code wurde nicht angenommen.",
    code_wrong_code: "Der Code ist falsch.",
    code_forbidden: "Das dürfen Sie nicht.",
    code_too_many_requests: "Zu viele Versuche; versuchen Sie es später noch einmal.",
    code_contention: "Gleichzeitig hat sich etwas anderes geändert; versuchen Sie es noch einmal.",
    code_audit_broken: "Die Hash-Kette des Audit-Protokolls ist beschädigt.",
    code_failed: "Das hat nicht geklappt.",
    code_sso_failed: "Die Anmeldung mit dem Organisationskonto ist fehlgeschlagen; bitte neu beginnen.",
    too_many_requests: |wait| format!("Zu viele Anfragen von Ihrer Adresse; versuchen Sie es in {wait} Sekunden noch einmal."),
    internal_error: |id| {
        format!("Ein interner Fehler ist aufgetreten (Anfrage {id}); die Administration findet ihn im Protokoll.")
    },
    desk_value_wrong: |left| format!("Der Code stimmt nicht; noch {left} Versuche."),
    unknown_format: |value| format!("Unbekanntes Dateiformat {value:?}."),
    unknown_key_type: |value| format!("Unbekannter Schlüsseltyp {value:?}."),
};

/// A desk sentence that has a catalogue entry.
type Known = fn(&Texts) -> &'static str;

/// The desk's sentences known to the web tier, matched by wording against [`EN`]
/// (which holds the desk's own wording) whatever their code.
const KNOWN: &[Known] = &[
    |t| t.desk_link_invalid,
    |t| t.desk_code_wrong,
    |t| t.desk_code_wrong_or_used,
    |t| t.desk_value_void,
    |t| t.desk_officers_only,
    |t| t.desk_admins_only,
    |t| t.desk_second_factor_first,
    |t| t.desk_staff_only_totp,
    |t| t.desk_account_disabled,
    |t| t.desk_domain_refused,
    |t| t.desk_address_refused,
    |t| t.desk_too_many_links,
    |t| t.desk_too_many_codes,
    |t| t.desk_too_many_sso,
    |t| t.desk_no_application,
    |t| t.desk_no_certificate,
    |t| t.desk_sso_not_configured,
    |t| t.desk_three_open,
    |t| t.desk_mailbox_no_validation,
    |t| t.desk_no_appointment_needed,
    |t| t.desk_slot_taken,
    |t| t.desk_issue_too_early,
    |t| t.desk_totp_enrolled,
    |t| t.desk_totp_not_enrolled,
    |t| t.desk_names_no_person,
    |t| t.desk_mailbox_validated,
    |t| t.desk_mailbox_not_validated,
    |t| t.desk_no_evidence,
    |t| t.desk_own_application,
    |t| t.desk_enrolment_altered,
    |t| t.desk_expiry_format,
    |t| t.desk_reason_too_long,
    |t| t.desk_place_length,
    |t| t.desk_slot_past,
    |t| t.desk_validity_days,
    |t| t.desk_in_person,
    |t| t.desk_reason_required,
    |t| t.desk_p12_password,
    |t| t.desk_p12_in_delivery,
];

impl Texts {
    /// The sentence of a page for a desk error that is not internal: the catalogue's
    /// entry when the sentence is known, else the desk's own sentence in English and
    /// a sentence for the error's code in German.
    pub fn error_message(&self, error: &DomainError) -> String {
        let message = error.to_string();
        let code = error.code();
        if let Some(entry) = KNOWN.iter().find(|entry| entry(&EN) == message) {
            return entry(self).to_string();
        }
        let left = message
            .strip_prefix("the value is not right; ")
            .and_then(|rest| rest.strip_suffix(" attempts left"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(left) = left {
            return (self.desk_value_wrong)(left);
        }
        if matches!(self.lang, Lang::En) {
            return message;
        }
        match code {
            ErrorCode::Unauthenticated if message.starts_with("single sign-on failed") => self.code_sso_failed,
            ErrorCode::BadInput => self.code_bad_input,
            ErrorCode::Refused => self.code_refused,
            ErrorCode::NotFound => self.code_not_found,
            ErrorCode::AlreadyRevoked => self.code_already_revoked,
            ErrorCode::Conflict => self.code_conflict,
            ErrorCode::Unauthenticated => self.code_unauthenticated,
            ErrorCode::WrongCode => self.code_wrong_code,
            ErrorCode::Forbidden => self.code_forbidden,
            ErrorCode::TooManyRequests => self.code_too_many_requests,
            ErrorCode::Contention => self.code_contention,
            ErrorCode::AuditBroken => self.code_audit_broken,
            _ => self.code_failed,
        }
        .to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn known_desk_sentences_are_translated() {
        let wrong = DomainError::new(ErrorCode::WrongCode, "the value is not right; 4 attempts left");
        assert_eq!(EN.error_message(&wrong), "the value is not right; 4 attempts left");
        assert_eq!(DE.error_message(&wrong), "Der Code stimmt nicht; noch 4 Versuche.");
        let officers = DomainError::new(ErrorCode::Forbidden, "this page is for registration officers");
        assert_eq!(EN.error_message(&officers), "this page is for registration officers");
        assert!(DE.error_message(&officers).starts_with("Diese Seite ist für die Sachbearbeitung"));
    }

    #[test]
    fn unknown_desk_sentences_fall_back_to_the_code_in_german() {
        let weak = DomainError::new(ErrorCode::Refused, "the password is too weak: it is a common password");
        assert_eq!(EN.error_message(&weak), "the password is too weak: it is a common password");
        assert_eq!(DE.error_message(&weak), DE.code_refused);
    }

    #[test]
    fn every_known_sentence_has_its_own_german_text() {
        for entry in KNOWN {
            assert_ne!(entry(&EN), entry(&DE));
        }
        assert_eq!(EN.all().len(), DE.all().len());
    }
}
