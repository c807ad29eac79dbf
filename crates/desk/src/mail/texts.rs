//! The texts of the desk's mails: one catalogue per language ([`EN`], [`DE`]), chosen
//! once per mail with [`MailTexts::of`]. The builders in [`crate::mail`] take every
//! subject, body and date format from the catalogue, so a text missing in one language
//! is a compile error (both catalogues are literals of one struct).
//!
//! Texts with parameters are functions of a small struct naming the parameters
//! ([`Validation`], [`SignIn`], …). The mail's layout stays with the builder: the
//! greeting, a blank line, the body, a blank line, the signature separator `-- ` and the
//! [`MailTexts::footer`].

use certdesk_core::mail_settings::Lang;
use time::format_description::FormatItem;
use time::macros::{datetime, format_description};

/// A formatted time and its zone (`UTC`, `CET`, `UTC-03:00`), for [`MailTexts::time_with_zone`].
#[derive(Clone, Copy, Debug)]
pub struct ZonedTime<'a> {
    /// The date and time, formatted with [`MailTexts::time_format`].
    pub local: &'a str,
    /// The zone's abbreviation at that time.
    pub zone: &'a str,
    /// The zone's IANA name (`Europe/Berlin`), empty for UTC.
    pub region: &'a str,
}

/// The parameters of the mailbox validation mail.
#[derive(Clone, Copy, Debug)]
pub struct Validation<'a> {
    /// The application the value belongs to.
    pub application_id: &'a str,
    /// The link that confirms the mailbox.
    pub link: &'a str,
    /// The value to type in instead.
    pub value: &'a str,
    /// When the value stops working (formatted).
    pub until: &'a str,
}

/// The parameters of the sign-in mail.
#[derive(Clone, Copy, Debug)]
pub struct SignIn<'a> {
    /// The sign-in link.
    pub link: &'a str,
    /// When the link stops working (formatted).
    pub until: &'a str,
}

/// The parameters of the certificate-ready mail.
#[derive(Clone, Copy, Debug)]
pub struct CertificateReady<'a> {
    /// The certificate's serial number.
    pub serial: &'a str,
    /// The download link.
    pub link: &'a str,
}

/// The parameters of the key recovery notices to the holder.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryNotice<'a> {
    /// Who receives the keys (the holder, or a successor or stand-in).
    pub recipient: &'a str,
    /// How many keys.
    pub keys: usize,
    /// The recovery's page.
    pub link: &'a str,
}

/// The parameters of the expiry reminder.
#[derive(Clone, Copy, Debug)]
pub struct ExpiryReminder<'a> {
    /// Whole days until `notAfter` (0: today, 1: tomorrow).
    pub days_left: u32,
    /// The certificate's serial number.
    pub serial: &'a str,
    /// `notAfter` (formatted).
    pub end: &'a str,
    /// The link to request a new certificate.
    pub renew_link: &'a str,
}

/// The parameters of the revocation notice.
#[derive(Clone, Copy, Debug)]
pub struct Revocation<'a> {
    /// The certificate's serial number.
    pub serial: &'a str,
    /// When it was revoked (formatted).
    pub when: &'a str,
    /// The reason, one of the catalogue's `reason_*` texts.
    pub reason: &'a str,
}

/// The parameters of the auditors' checkpoint mail.
#[derive(Clone, Copy, Debug)]
pub struct AuditCheckpoint<'a> {
    /// The organisation running the desk.
    pub organization: &'a str,
    /// When the log was verified (formatted).
    pub when: &'a str,
    /// How many records the log held.
    pub records: i64,
    /// The checkpoint, `SEQ:HASH`.
    pub checkpoint: &'a str,
}

/// The parameters of the auditors' alert mail.
#[derive(Clone, Copy, Debug)]
pub struct AuditAlert<'a> {
    /// The organisation running the desk.
    pub organization: &'a str,
    /// When the check failed (formatted).
    pub when: &'a str,
    /// Where and how the log failed its check.
    pub reason: &'a str,
}

/// The parameters of the notice that the desk cancelled an appointment.
#[derive(Clone, Copy, Debug)]
pub struct AppointmentCancelled<'a> {
    /// The time of the cancelled appointment (formatted).
    pub when: &'a str,
    /// The application's page, where a new appointment is booked.
    pub link: &'a str,
}

/// The parameters of the mail that tells someone they were made an officer or
/// administrator.
#[derive(Clone, Copy, Debug)]
pub struct StaffInvitation<'a> {
    /// The role, one of the catalogue's `role_*` texts.
    pub role: &'a str,
    /// The single-use sign-in link.
    pub link: &'a str,
    /// When the link stops working (formatted).
    pub until: &'a str,
}

/// The texts of every mail in one language.
pub struct MailTexts {
    /// The language of the catalogue (the mail's `Content-Language`).
    pub lang: Lang,
    /// How a date and time are written (without the zone).
    pub time_format: &'static [FormatItem<'static>],
    /// A formatted time with its zone.
    pub time_with_zone: fn(&ZonedTime<'_>) -> String,
    /// The first line of every mail.
    pub greeting: &'static str,
    /// The line after the signature separator of every mail.
    pub footer: &'static str,

    /// Subject of the mailbox validation mail.
    pub validation_subject: &'static str,
    /// Body of the mailbox validation mail.
    pub validation_body: fn(&Validation<'_>) -> String,

    /// Subject of the sign-in mail.
    pub sign_in_subject: &'static str,
    /// Body of the sign-in mail.
    pub sign_in_body: fn(&SignIn<'_>) -> String,

    /// Subject of the appointment confirmation.
    pub appointment_subject: &'static str,
    /// First sentence of the appointment confirmation (before the time and place).
    pub appointment_opening: &'static str,
    /// Subject of the appointment reminder.
    pub reminder_subject: &'static str,
    /// First sentence of the appointment reminder (before the time and place).
    pub reminder_opening: &'static str,
    /// What to bring to the appointment (after the time and place).
    pub appointment_bring_id: &'static str,
    /// Subject of the notice that the desk cancelled an appointment.
    pub cancelled_subject: &'static str,
    /// Body of that notice.
    pub cancelled_body: fn(&AppointmentCancelled<'_>) -> String,

    /// Subject of the mail to a new officer or administrator.
    pub invitation_subject: fn(&StaffInvitation<'_>) -> String,
    /// Body of that mail.
    pub invitation_body: fn(&StaffInvitation<'_>) -> String,
    /// The officer role, as the invitation names it.
    pub role_officer: &'static str,
    /// The administrator role, as the invitation names it.
    pub role_admin: &'static str,

    /// Subject of the certificate-ready mail.
    pub ready_subject: &'static str,
    /// Body of the certificate-ready mail.
    pub ready_body: fn(&CertificateReady<'_>) -> String,
    /// The heading above the install steps for the person's mail clients.
    pub ready_install_heading: &'static str,
    /// The sentence that points to the install guide for every client (its link).
    pub ready_guide: fn(&str) -> String,
    /// The escrow notice of a profile that escrows the keys the desk makes (BR 4.12.1),
    /// in the validation mail: before the applicant chooses how the key is made.
    pub escrow_before: &'static str,
    /// The notice in the certificate-ready mail that this certificate's key is escrowed.
    pub escrow_issued: &'static str,
    /// Subject of the notice that a recovery of the holder's escrowed keys was asked for.
    pub recovery_requested_subject: &'static str,
    /// Body of that notice.
    pub recovery_requested_body: fn(&RecoveryNotice<'_>) -> String,
    /// Subject of the notice that the holder's escrowed keys were handed out.
    pub recovery_delivered_subject: &'static str,
    /// Body of that notice.
    pub recovery_delivered_body: fn(&RecoveryNotice<'_>) -> String,

    /// Subject of the expiry reminder.
    pub expiry_subject: fn(&ExpiryReminder<'_>) -> String,
    /// Body of the expiry reminder.
    pub expiry_body: fn(&ExpiryReminder<'_>) -> String,

    /// Subject of the revocation notice.
    pub revocation_subject: &'static str,
    /// Body of the revocation notice.
    pub revocation_body: fn(&Revocation<'_>) -> String,
    /// Revocation reason `unspecified`.
    pub reason_unspecified: &'static str,
    /// Revocation reason `keyCompromise`.
    pub reason_key_compromise: &'static str,
    /// Revocation reason `affiliationChanged`.
    pub reason_affiliation_changed: &'static str,
    /// Revocation reason `superseded`.
    pub reason_superseded: &'static str,
    /// Revocation reason `cessationOfOperation`.
    pub reason_cessation_of_operation: &'static str,

    /// Subject of the auditors' checkpoint mail.
    pub checkpoint_subject: fn(&AuditCheckpoint<'_>) -> String,
    /// Body of the auditors' checkpoint mail.
    pub checkpoint_body: fn(&AuditCheckpoint<'_>) -> String,

    /// Subject of the auditors' alert mail.
    pub alert_subject: fn(&AuditAlert<'_>) -> String,
    /// Body of the auditors' alert mail.
    pub alert_body: fn(&AuditAlert<'_>) -> String,
}

impl MailTexts {
    /// The catalogue of a language.
    pub fn of(lang: Lang) -> &'static MailTexts {
        match lang {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// Every text of the catalogue without its parameters, in pieces: the plain texts and
    /// the fixed parts of the texts with parameters (rendered with placeholder parameters
    /// and cut there), each cut further at line breaks and sentence ends, trimmed; only
    /// pieces with a letter. For tests that look for one language's texts in another
    /// language's mails.
    pub fn fixed_texts(&self) -> Vec<String> {
        // Spelled out without `..`: a new field is a compile error here until it is listed,
        // and a warning (denied in CI) until it is rendered below.
        let MailTexts {
            lang: _,
            time_format,
            time_with_zone,
            greeting,
            footer,
            validation_subject,
            validation_body,
            sign_in_subject,
            sign_in_body,
            appointment_subject,
            appointment_opening,
            reminder_subject,
            reminder_opening,
            appointment_bring_id,
            cancelled_subject,
            cancelled_body,
            invitation_subject,
            invitation_body,
            role_officer,
            role_admin,
            ready_subject,
            ready_body,
            ready_install_heading,
            ready_guide,
            escrow_before,
            escrow_issued,
            recovery_requested_subject,
            recovery_requested_body,
            recovery_delivered_subject,
            recovery_delivered_body,
            expiry_subject,
            expiry_body,
            revocation_subject,
            revocation_body,
            reason_unspecified,
            reason_key_compromise,
            reason_affiliation_changed,
            reason_superseded,
            reason_cessation_of_operation,
            checkpoint_subject,
            checkpoint_body,
            alert_subject,
            alert_body,
        } = self;

        const MARK: &str = "\u{1}";
        const NUMBER: u32 = 987_654_321;
        let sample_time = datetime!(2001-02-03 04:05 UTC).format(*time_format).unwrap_or_default();
        let expiry = |days_left| ExpiryReminder { days_left, serial: MARK, end: MARK, renew_link: MARK };
        let checkpoint =
            AuditCheckpoint { organization: MARK, when: MARK, records: i64::from(NUMBER), checkpoint: MARK };
        let alert = AuditAlert { organization: MARK, when: MARK, reason: MARK };

        let mut texts: Vec<String> = [
            greeting,
            footer,
            validation_subject,
            sign_in_subject,
            appointment_subject,
            appointment_opening,
            reminder_subject,
            reminder_opening,
            appointment_bring_id,
            cancelled_subject,
            role_officer,
            role_admin,
            ready_subject,
            ready_install_heading,
            escrow_before,
            escrow_issued,
            recovery_requested_subject,
            recovery_delivered_subject,
            revocation_subject,
            reason_unspecified,
            reason_key_compromise,
            reason_affiliation_changed,
            reason_superseded,
            reason_cessation_of_operation,
        ]
        .iter()
        .map(|text| text.to_string())
        .collect();
        texts.extend([
            // The words of a formatted time (digits and punctuation are cut below).
            sample_time.replace(|c: char| !c.is_alphabetic(), MARK),
            time_with_zone(&ZonedTime { local: MARK, zone: MARK, region: "" }),
            time_with_zone(&ZonedTime { local: MARK, zone: MARK, region: MARK }),
            validation_body(&Validation { application_id: MARK, link: MARK, value: MARK, until: MARK }),
            sign_in_body(&SignIn { link: MARK, until: MARK }),
            cancelled_body(&AppointmentCancelled { when: MARK, link: MARK }),
            invitation_subject(&StaffInvitation { role: MARK, link: MARK, until: MARK }),
            invitation_body(&StaffInvitation { role: MARK, link: MARK, until: MARK }),
            ready_body(&CertificateReady { serial: MARK, link: MARK }),
            ready_guide(MARK),
            recovery_requested_body(&RecoveryNotice { recipient: MARK, keys: NUMBER as usize, link: MARK }),
            recovery_delivered_body(&RecoveryNotice { recipient: MARK, keys: NUMBER as usize, link: MARK }),
            expiry_subject(&expiry(0)),
            expiry_subject(&expiry(1)),
            expiry_subject(&expiry(NUMBER)),
            expiry_body(&expiry(NUMBER)),
            revocation_body(&Revocation { serial: MARK, when: MARK, reason: MARK }),
            checkpoint_subject(&checkpoint),
            checkpoint_body(&checkpoint),
            alert_subject(&alert),
            alert_body(&alert),
        ]);

        let number = NUMBER.to_string();
        let mut pieces = Vec::new();
        for text in texts {
            let text = text.replace(&number, MARK).replace('\n', MARK).replace(". ", &format!(".{MARK}"));
            for piece in text.split(MARK) {
                let piece = piece.trim();
                if piece.chars().any(char::is_alphabetic) {
                    pieces.push(piece.to_string());
                }
            }
        }
        pieces
    }
}

/// The English texts.
pub static EN: MailTexts = MailTexts {
    lang: Lang::En,
    time_format: format_description!("[year]-[month]-[day] [hour]:[minute]"),
    time_with_zone: |&ZonedTime { local, zone, region }| match region {
        "" => format!("{local} {zone}"),
        region => format!("{local} {zone} ({region})"),
    },
    greeting: "Hello,",
    footer: "This message was sent automatically by the certificate desk. Please do not reply to it.",

    validation_subject: "Please confirm your e-mail address",
    validation_body: |&Validation { application_id, link, value, until }| {
        format!(
            "an S/MIME certificate has been requested for this e-mail address (application {application_id}).\n\n\
             To confirm that this mailbox is yours, please open this link:\n\n\
             {link}\n\n\
             or enter this code on the application page:\n\n\
             {value}\n\n\
             The code is valid until {until}.\n\n\
             If you did not request a certificate, you can ignore this message: without confirmation, no \
             certificate will be issued."
        )
    },

    sign_in_subject: "Your sign-in link",
    sign_in_body: |&SignIn { link, until }| {
        format!(
            "please open this link to sign in to the certificate portal:\n\n\
             {link}\n\n\
             The link is valid until {until}. If you did not ask to sign in, you can ignore this message."
        )
    },

    appointment_subject: "Your appointment for the identity check",
    appointment_opening: "your appointment at the certificate desk is confirmed:",
    reminder_subject: "Reminder: your appointment for the identity check",
    reminder_opening: "this is a reminder of your appointment at the certificate desk:",
    appointment_bring_id: "Please bring an official photo ID (identity card or passport). If you cannot come, you can \
                           move or cancel the appointment on your application page.",
    cancelled_subject: "Your appointment for the identity check was cancelled",
    cancelled_body: |&AppointmentCancelled { when, link }| {
        format!(
            "the certificate desk had to cancel your appointment of {when}. We are sorry.\n\n\
             Please choose a new appointment on your application page:\n\n\
             {link}\n\n\
             Your application stays as it is; nothing you did so far is lost."
        )
    },
    invitation_subject: |&StaffInvitation { role, .. }| format!("You were made {role} of the certificate desk"),
    invitation_body: |&StaffInvitation { role, link, until }| {
        format!(
            "you were made {role} of the certificate desk. To sign in for the first time, open this link:\n\n\
             {link}\n\n\
             The link is valid until {until} and works once. After signing in you set up a second factor: \
             keep an authenticator app (any app for time-based one-time codes) at hand and scan the code \
             the page shows. From then on you sign in with a link by mail and a code from the app.\n\n\
             If you did not expect this message, please tell the certificate desk."
        )
    },
    role_officer: "a registration officer",
    role_admin: "an administrator",

    ready_subject: "Your certificate is ready",
    ready_body: |&CertificateReady { serial, link }| {
        format!(
            "your S/MIME certificate (serial number {serial}) has been issued. You can download it here:\n\n\
             {link}"
        )
    },
    ready_install_heading: "How to install it in the mail clients you named:",
    ready_guide: |link| {
        format!(
            "Install it in each mail client you use (PC, notebook, phone) and keep your old certificates: \
             they open mail encrypted to them. Steps for every client:\n\n{link}"
        )
    },
    escrow_before: "Key escrow: for this type of certificate, a key that the certificate desk makes for you is \
                    kept in escrow, encrypted, so that it can be recovered if you lose it or if your encrypted mail \
                    must be read by a successor. Only several key recovery agents together can recover it, only as \
                    the certificate policy allows; every recovery is recorded and you are told by mail. A key of your \
                    own (a certificate signing request) is never escrowed.",
    escrow_issued: "The key of this certificate was made by the certificate desk and is kept in escrow, encrypted. \
                    Only several key recovery agents together can recover it, only as the certificate policy allows; \
                    you will be told by mail of every recovery.",
    recovery_requested_subject: "A recovery of your escrowed keys was requested",
    recovery_requested_body: |&RecoveryNotice { recipient, keys, link }| {
        format!(
            "a recovery of {keys} of your escrowed keys was requested, for {recipient}. Key recovery agents \
             must approve it before anything is handed out. If you did not expect this, please contact the \
             certificate desk at once. The request:\n\n{link}"
        )
    },
    recovery_delivered_subject: "Your escrowed keys were recovered",
    recovery_delivered_body: |&RecoveryNotice { recipient, keys, link }| {
        format!(
            "{keys} of your escrowed keys were recovered and handed out to {recipient}, after key recovery \
             agents approved it. If you did not expect this, please contact the certificate desk at once. \
             The recovery:\n\n{link}"
        )
    },

    expiry_subject: |&ExpiryReminder { days_left, .. }| match days_left {
        0 => "Your certificate expires today".to_string(),
        1 => "Your certificate expires tomorrow".to_string(),
        days => format!("Your certificate expires in {days} days"),
    },
    expiry_body: |&ExpiryReminder { serial, end, renew_link, .. }| {
        format!(
            "your S/MIME certificate (serial number {serial}) expires on {end}. To keep signing mail and \
             receiving encrypted mail, please request a new certificate in time:\n\n\
             {renew_link}\n\n\
             Keep the old certificate and its key even after it has expired: you need them to read \
             messages that were encrypted to it."
        )
    },

    revocation_subject: "Your certificate has been revoked",
    revocation_body: |&Revocation { serial, when, reason }| {
        format!(
            "your S/MIME certificate (serial number {serial}) was revoked on {when}.\n\
             Reason: {reason}.\n\n\
             From now on it can no longer be used: new signatures made with it will be rejected, and \
             mail to you should no longer be encrypted with it. Keep its key to read messages you have \
             already received. If you did not expect this, please contact the certificate desk."
        )
    },
    reason_unspecified: "no reason given",
    reason_key_compromise: "the private key may have been compromised",
    reason_affiliation_changed: "the details in the certificate are no longer correct",
    reason_superseded: "it has been replaced by a new certificate",
    reason_cessation_of_operation: "it is no longer needed",

    checkpoint_subject: |&AuditCheckpoint { organization, records, .. }| {
        format!("Audit checkpoint of {organization}: record {records}")
    },
    checkpoint_body: |&AuditCheckpoint { organization, when, records, checkpoint }| {
        format!(
            "the audit log of the certificate desk of {organization} verified intact on {when}. It \
             held {records} records; the newest one is this checkpoint:\n\n\
             {checkpoint}\n\n\
             Please keep this message where the operators of the certificate desk cannot change it. \
             To check later that no record up to this one was removed or rewritten, run on the CA \
             machine:\n\n\
             certdesk audit verify --checkpoint {checkpoint}\n\n\
             An error from that command means the log was changed after this message was sent."
        )
    },

    alert_subject: |&AuditAlert { organization, .. }| {
        format!("ALERT: the audit log of {organization} fails verification")
    },
    alert_body: |&AuditAlert { organization, when, reason }| {
        format!(
            "the audit log of the certificate desk of {organization} failed its check on {when}:\n\n\
             {reason}\n\n\
             Records were changed, removed or added outside the certificate desk. Compare the log with \
             the last checkpoint you hold (certdesk audit verify --checkpoint SEQ:HASH) and find out who \
             had access to the database."
        )
    },
};

/// The German texts.
pub static DE: MailTexts = MailTexts {
    lang: Lang::De,
    time_format: format_description!("[day].[month].[year], [hour]:[minute] Uhr"),
    time_with_zone: |&ZonedTime { local, zone, region }| match region {
        "" => format!("{local} ({zone})"),
        region => format!("{local} ({zone}, {region})"),
    },
    greeting: "Guten Tag,",
    footer: "Diese Nachricht wurde automatisch von der Zertifikatsstelle versandt. Bitte antworten Sie nicht darauf.",

    validation_subject: "Bitte bestätigen Sie Ihre E-Mail-Adresse",
    validation_body: |&Validation { application_id, link, value, until }| {
        format!(
            "für diese E-Mail-Adresse wurde ein S/MIME-Zertifikat beantragt (Antrag {application_id}).\n\n\
             Bitte bestätigen Sie, dass dieses Postfach Ihnen gehört, indem Sie diesen Link öffnen:\n\n\
             {link}\n\n\
             oder diesen Code auf der Antragsseite eingeben:\n\n\
             {value}\n\n\
             Der Code ist gültig bis {until}.\n\n\
             Wenn Sie kein Zertifikat beantragt haben, können Sie diese Nachricht ignorieren: Ohne Bestätigung \
             wird kein Zertifikat ausgestellt."
        )
    },

    sign_in_subject: "Ihr Anmeldelink",
    sign_in_body: |&SignIn { link, until }| {
        format!(
            "mit diesem Link melden Sie sich im Zertifikatsportal an:\n\n\
             {link}\n\n\
             Der Link ist gültig bis {until}. Wenn Sie keine Anmeldung angefordert haben, können Sie diese \
             Nachricht ignorieren."
        )
    },

    appointment_subject: "Ihr Termin zur Identitätsprüfung",
    appointment_opening: "Ihr Termin bei der Zertifikatsstelle ist bestätigt:",
    reminder_subject: "Erinnerung: Ihr Termin zur Identitätsprüfung",
    reminder_opening: "wir erinnern Sie an Ihren Termin bei der Zertifikatsstelle:",
    appointment_bring_id: "Bitte bringen Sie einen amtlichen Lichtbildausweis (Personalausweis oder Reisepass) mit. \
                           Falls Sie den Termin nicht wahrnehmen können, können Sie ihn auf Ihrer Antragsseite \
                           verlegen oder absagen.",
    cancelled_subject: "Ihr Termin für die Identitätsprüfung wurde abgesagt",
    cancelled_body: |&AppointmentCancelled { when, link }| {
        format!(
            "die Zertifikatsstelle musste Ihren Termin am {when} leider absagen.\n\n\
             Bitte wählen Sie auf Ihrer Antragsseite einen neuen Termin:\n\n\
             {link}\n\n\
             Ihr Antrag bleibt bestehen; nichts von dem, was Sie bisher erledigt haben, geht verloren."
        )
    },
    invitation_subject: |&StaffInvitation { role, .. }| format!("Sie wurden {role} der Zertifikatsstelle"),
    invitation_body: |&StaffInvitation { role, link, until }| {
        format!(
            "Sie wurden {role} der Zertifikatsstelle. Um sich zum ersten Mal anzumelden, öffnen Sie \
             diesen Link:\n\n\
             {link}\n\n\
             Der Link ist gültig bis {until} und funktioniert einmal. Nach der Anmeldung richten Sie einen \
             zweiten Faktor ein: Halten Sie eine Authenticator-App (jede App für zeitbasierte Einmalcodes) \
             bereit und scannen Sie den Code, den die Seite zeigt. Danach melden Sie sich mit einem Link per \
             E-Mail und einem Code aus der App an.\n\n\
             Falls Sie diese Nachricht nicht erwartet haben, geben Sie bitte der Zertifikatsstelle Bescheid."
        )
    },
    role_officer: "Registrierungsmitarbeiterin oder Registrierungsmitarbeiter",
    role_admin: "Administratorin oder Administrator",

    ready_subject: "Ihr Zertifikat ist bereit",
    ready_body: |&CertificateReady { serial, link }| {
        format!(
            "Ihr S/MIME-Zertifikat (Seriennummer {serial}) wurde ausgestellt. Sie können es hier \
             herunterladen:\n\n\
             {link}"
        )
    },
    ready_install_heading: "So richten Sie es in den genannten Mail-Programmen ein:",
    ready_guide: |link| {
        format!(
            "Richten Sie es in jedem Mail-Programm ein, das Sie nutzen (PC, Notebook, Telefon), und behalten \
             Sie Ihre alten Zertifikate: Sie öffnen Nachrichten, die an sie verschlüsselt wurden. Anleitungen \
             für jedes Programm:\n\n{link}"
        )
    },
    escrow_before: "Schlüsselhinterlegung: Bei dieser Zertifikatsart wird ein Schlüssel, den die Zertifikatsstelle \
                    für Sie erzeugt, verschlüsselt hinterlegt, damit er wiederhergestellt werden kann, wenn Sie ihn \
                    verlieren oder eine Nachfolge Ihre verschlüsselten Nachrichten lesen muss. Nur mehrere \
                    Wiederherstellungsbeauftragte gemeinsam können ihn wiederherstellen, nur wie die \
                    Zertifizierungsrichtlinie es erlaubt; jede Wiederherstellung wird protokolliert und Ihnen per \
                    Mail mitgeteilt. Ein eigener Schlüssel (ein Zertifikatsantrag) wird nie hinterlegt.",
    escrow_issued: "Der Schlüssel dieses Zertifikats wurde von der Zertifikatsstelle erzeugt und ist verschlüsselt \
                    hinterlegt. Nur mehrere Wiederherstellungsbeauftragte gemeinsam können ihn wiederherstellen, nur \
                    wie die Zertifizierungsrichtlinie es erlaubt; jede Wiederherstellung wird Ihnen per Mail \
                    mitgeteilt.",
    recovery_requested_subject: "Eine Wiederherstellung Ihrer hinterlegten Schlüssel wurde beantragt",
    recovery_requested_body: |&RecoveryNotice { recipient, keys, link }| {
        format!(
            "für {recipient} wurde die Wiederherstellung von {keys} Ihrer hinterlegten Schlüssel beantragt. \
             Wiederherstellungsbeauftragte müssen zustimmen, bevor etwas herausgegeben wird. Falls Sie das \
             nicht erwartet haben, wenden Sie sich bitte sofort an die Zertifikatsstelle. Der Antrag:\n\n{link}"
        )
    },
    recovery_delivered_subject: "Ihre hinterlegten Schlüssel wurden wiederhergestellt",
    recovery_delivered_body: |&RecoveryNotice { recipient, keys, link }| {
        format!(
            "{keys} Ihrer hinterlegten Schlüssel wurden nach Zustimmung der Wiederherstellungsbeauftragten \
             wiederhergestellt und an {recipient} herausgegeben. Falls Sie das nicht erwartet haben, wenden \
             Sie sich bitte sofort an die Zertifikatsstelle. Die Wiederherstellung:\n\n{link}"
        )
    },

    expiry_subject: |&ExpiryReminder { days_left, .. }| match days_left {
        0 => "Ihr Zertifikat läuft heute ab".to_string(),
        1 => "Ihr Zertifikat läuft morgen ab".to_string(),
        days => format!("Ihr Zertifikat läuft in {days} Tagen ab"),
    },
    expiry_body: |&ExpiryReminder { serial, end, renew_link, .. }| {
        format!(
            "Ihr S/MIME-Zertifikat (Seriennummer {serial}) läuft am {end} ab. Damit Sie weiterhin \
             E-Mails signieren und verschlüsselte E-Mails empfangen können, beantragen Sie bitte \
             rechtzeitig ein neues Zertifikat:\n\n\
             {renew_link}\n\n\
             Bewahren Sie das alte Zertifikat und seinen Schlüssel auch nach dem Ablauf auf: Sie brauchen \
             beides, um E-Mails zu lesen, die damit verschlüsselt wurden."
        )
    },

    revocation_subject: "Ihr Zertifikat wurde widerrufen",
    revocation_body: |&Revocation { serial, when, reason }| {
        format!(
            "Ihr S/MIME-Zertifikat (Seriennummer {serial}) wurde am {when} widerrufen.\n\
             Grund: {reason}.\n\n\
             Ab jetzt kann es nicht mehr verwendet werden: Neue Signaturen damit werden abgelehnt, und \
             E-Mails an Sie sollten nicht mehr damit verschlüsselt werden. Bewahren Sie den Schlüssel auf, \
             um bereits empfangene Nachrichten lesen zu können. Falls Sie das nicht erwartet haben, wenden \
             Sie sich bitte an die Zertifikatsstelle."
        )
    },
    reason_unspecified: "kein Grund angegeben",
    reason_key_compromise: "der private Schlüssel ist möglicherweise kompromittiert",
    reason_affiliation_changed: "die Angaben im Zertifikat stimmen nicht mehr",
    reason_superseded: "es wurde durch ein neues Zertifikat ersetzt",
    reason_cessation_of_operation: "es wird nicht mehr benötigt",

    checkpoint_subject: |&AuditCheckpoint { organization, records, .. }| {
        format!("Prüfpunkt des Audit-Protokolls von {organization}: Eintrag {records}")
    },
    checkpoint_body: |&AuditCheckpoint { organization, when, records, checkpoint }| {
        format!(
            "das Audit-Protokoll der Zertifikatsstelle von {organization} war am {when} unversehrt. \
             Es enthielt {records} Einträge; der neueste ist dieser Prüfpunkt:\n\n\
             {checkpoint}\n\n\
             Bitte bewahren Sie diese Nachricht dort auf, wo die Betreiber der Zertifikatsstelle sie \
             nicht ändern können. Um später zu prüfen, dass kein Eintrag bis zu diesem entfernt oder \
             umgeschrieben wurde, führen Sie auf dem CA-Rechner aus:\n\n\
             certdesk audit verify --checkpoint {checkpoint}\n\n\
             Meldet der Befehl einen Fehler, wurde das Protokoll nach dem Versand dieser Nachricht \
             verändert."
        )
    },

    alert_subject: |&AuditAlert { organization, .. }| {
        format!("WARNUNG: das Audit-Protokoll von {organization} ist nicht unversehrt")
    },
    alert_body: |&AuditAlert { organization, when, reason }| {
        format!(
            "die Prüfung des Audit-Protokolls der Zertifikatsstelle von {organization} ist am {when} \
             fehlgeschlagen:\n\n\
             {reason}\n\n\
             Einträge wurden außerhalb der Zertifikatsstelle geändert, entfernt oder hinzugefügt. \
             Vergleichen Sie das Protokoll mit dem letzten Prüfpunkt, den Sie haben (certdesk audit \
             verify --checkpoint SEQ:HASH), und klären Sie, wer Zugriff auf die Datenbank hatte."
        )
    },
};
