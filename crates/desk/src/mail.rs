//! Outgoing mail of the registration desk: the [`Mail`] value, the [`Mailer`] trait with
//! its two transports ([`Outbox`], [`Smtp`]), the `[mail]` configuration section
//! ([`MailSection`], [`build_mailer`]) and the texts of every mail the portal sends, in
//! English and German ([`validation_mail`], [`sign_in_mail`], [`appointment_mail`],
//! [`appointment_reminder_mail`], [`certificate_ready_mail`], [`expiry_reminder_mail`],
//! [`revocation_mail`], [`audit_checkpoint_mail`], [`audit_alert_mail`]). The builders
//! hold the layout; every subject, body and date format comes from the catalogue of the
//! mail's language in [`texts`].
//!
//! Messages are RFC 5322 `text/plain; charset=utf-8` single parts built with lettre:
//! non-ASCII subjects become RFC 2047 encoded words, and the body gets whichever
//! content-transfer-encoding (7bit, quoted-printable, base64) lettre finds shortest.
//! Every message carries `Date` (from the injected [`Clock`]), a `Message-ID` at the
//! sender's domain, `Auto-Submitted: auto-generated` (RFC 3834, so that vacation
//! responders stay quiet) and, when the mail has a language, `Content-Language`.
//!
//! The default transport is the [`Outbox`]: one `.eml` file per message in
//! `DATA/outbox/`, for a demo, a test, or an operator who hands the files to another
//! mail system. Each file appears complete or not at all.
//!
//! Mail bodies never carry private keys or passwords; they do carry the mailbox
//! validation value, so [`Mail`]'s `Debug` leaves the body out, and nothing here logs.

use std::fmt;
use std::future::Future;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use certdesk_pki::crl::RevocationReason;
use lettre::address::AddressError;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

pub use certdesk_core::zone::LocalTime;
use zeroize::Zeroizing;

use certdesk_core::clock::Clock;
use certdesk_core::error::{DomainError, ErrorCode};

/// The days before `notAfter` on which [`expiry_reminder_mail`] is sent.
pub const EXPIRY_REMINDER_DAYS: [u32; 3] = [60, 30, 7];

/// The longest SMTP timeout `mail.smtp_timeout_seconds` may ask for.
const MAX_SMTP_TIMEOUT_SECONDS: u64 = 600;

pub use certdesk_core::mail_settings::{Lang, MailSection, MailTransport, SmtpTls};

pub mod texts;

use texts::{
    AppointmentCancelled, AuditAlert, AuditCheckpoint, CertificateReady, ExpiryReminder, MailTexts, RecoveryNotice,
    Revocation, SignIn, StaffInvitation, Validation, ZonedTime,
};

const CONTENT_LANGUAGE: HeaderName = HeaderName::new_from_ascii_str("Content-Language");
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// An error of the mail component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// A recipient address does not parse.
    #[error("not a valid e-mail address: {input:?}")]
    InvalidAddress {
        /// What was given.
        input: String,
        /// Why lettre refused it.
        #[source]
        source: AddressError,
    },
    /// `mail.from` does not parse as a mailbox.
    #[error("mail.from is not a mailbox like \"certdesk <certdesk@example.org>\": {input:?}")]
    InvalidSender {
        /// What was given.
        input: String,
        /// Why lettre refused it.
        #[source]
        source: AddressError,
    },
    /// `transport = "smtp"` without `smtp_host`.
    #[error("mail.transport = \"smtp\" needs mail.smtp_host")]
    MissingSmtpHost,
    /// Only one of `smtp_username` and `smtp_password_file` is set.
    #[error("mail.smtp_username and mail.smtp_password_file go together; {missing} is missing")]
    IncompleteCredentials {
        /// The key that is missing.
        missing: &'static str,
    },
    /// Credentials with `smtp_tls = "none"` would cross the network in clear text.
    #[error(
        "SMTP credentials are refused over an unencrypted connection: set mail.smtp_tls to \"starttls\" or \"tls\""
    )]
    CredentialsWithoutTls,
    /// `smtp_timeout_seconds` is zero or too large.
    #[error("mail.smtp_timeout_seconds must be between 1 and {max}, not {value}")]
    InvalidTimeout {
        /// What was given.
        value: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// The password file can't be read.
    #[error("cannot read the SMTP password file {path}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The password file holds nothing but line breaks.
    #[error("the SMTP password file {path} is empty")]
    EmptyPassword {
        /// The file.
        path: PathBuf,
    },
    /// The extra CA file can't be read.
    #[error("cannot read the SMTP CA file {path}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The extra CA file holds no PEM certificate we can read.
    #[error("the SMTP CA file cannot be read: {reason}")]
    CaPem {
        /// What is wrong with its PEM.
        reason: certdesk_pki::pem::PemError,
    },
    /// TLS parameters (trust roots, extra CA) could not be set up.
    #[error("TLS setup for the SMTP server {host} failed")]
    Tls {
        /// The SMTP host.
        host: String,
        /// lettre's error.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// lettre refused to build the message.
    #[error("cannot build the message")]
    Compose {
        /// lettre's error.
        #[source]
        source: lettre::error::Error,
    },
    /// The system random generator failed (Message-ID, file name).
    #[error("the system random generator failed")]
    Random,
    /// The outbox directory can't be created.
    #[error("cannot create the outbox directory {path}")]
    OutboxDirectory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A message file can't be written; nothing was left behind.
    #[error("cannot write the message file {path}")]
    OutboxWrite {
        /// The file that was being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The background task writing a message file died.
    #[error("the outbox write task failed")]
    Task {
        /// tokio's error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The SMTP server could not be reached or refused the message.
    #[error("SMTP delivery via {host}:{port} failed")]
    Smtp {
        /// The SMTP host.
        host: String,
        /// The port.
        port: u16,
        /// lettre's error (connection, TLS, timeout or the server's reply).
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

impl MailError {
    /// The stable code under which the service reports this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            MailError::InvalidAddress { .. } => ErrorCode::BadInput,
            MailError::InvalidSender { .. }
            | MailError::MissingSmtpHost
            | MailError::IncompleteCredentials { .. }
            | MailError::CredentialsWithoutTls
            | MailError::InvalidTimeout { .. }
            | MailError::PasswordFile { .. }
            | MailError::EmptyPassword { .. }
            | MailError::CaFile { .. }
            | MailError::CaPem { .. }
            | MailError::Tls { .. } => ErrorCode::Config,
            MailError::Compose { .. }
            | MailError::Random
            | MailError::OutboxDirectory { .. }
            | MailError::OutboxWrite { .. }
            | MailError::Task { .. }
            | MailError::Smtp { .. } => ErrorCode::Internal,
        }
    }
}

impl From<InvalidMailAddress> for MailError {
    fn from(e: InvalidMailAddress) -> Self {
        MailError::InvalidAddress { input: e.input, source: e.source }
    }
}

impl From<MailError> for DomainError {
    fn from(error: MailError) -> Self {
        // The sentence only: sources may carry server replies, which belong in the log.
        DomainError::new(error.code(), error.to_string())
    }
}

/// A mail address that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("not a valid e-mail address: {input:?}")]
pub struct InvalidMailAddress {
    /// What was given.
    pub input: String,
    /// Why lettre refused it.
    #[source]
    pub source: AddressError,
}

/// A recipient address, parsed by lettre (`local@domain`, no display name, no line breaks).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MailAddress(Address);

impl MailAddress {
    /// Parses an address; surrounding white space is ignored.
    pub fn parse(input: &str) -> Result<Self, InvalidMailAddress> {
        Address::from_str(input.trim())
            .map(MailAddress)
            .map_err(|source| InvalidMailAddress { input: input.to_string(), source })
    }

    /// The address as lettre holds it.
    pub fn address(&self) -> &Address {
        &self.0
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl FromStr for MailAddress {
    type Err = InvalidMailAddress;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        MailAddress::parse(input)
    }
}

impl fmt::Display for MailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `From` of every message: `Name <address>` or a bare address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender(Mailbox);

impl Sender {
    /// Parses `mail.from`.
    pub fn parse(input: &str) -> Result<Self, MailError> {
        Mailbox::from_str(input.trim())
            .map(Sender)
            .map_err(|source| MailError::InvalidSender { input: input.to_string(), source })
    }

    /// The address part (the SMTP envelope sender).
    pub fn address(&self) -> &str {
        self.0.email.as_ref()
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One plain-text mail to one recipient.
///
/// `Debug` shows the body's length, never the body: it may carry a validation value.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    to: MailAddress,
    subject: String,
    body: String,
    language: Option<Lang>,
}

impl Mail {
    /// A mail. Control characters in the subject (line breaks included) become spaces, so
    /// a subject can't add header lines; line breaks in the body become `\n` (lettre
    /// writes CRLF).
    pub fn new(to: MailAddress, subject: &str, body: &str) -> Self {
        let subject: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let body = body.replace("\r\n", "\n").replace('\r', "\n");
        Self { to, subject: subject.trim().to_string(), body, language: None }
    }

    /// The same mail, marked as written in `language` (`Content-Language`).
    pub fn with_language(mut self, language: Lang) -> Self {
        self.language = Some(language);
        self
    }

    /// The recipient.
    pub fn to(&self) -> &MailAddress {
        &self.to
    }

    /// The subject (UTF-8; encoded per RFC 2047 when sent).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text body.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The language of subject and body, if known.
    pub fn language(&self) -> Option<Lang> {
        self.language
    }
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("body_len", &self.body.len())
            .field("language", &self.language)
            .finish()
    }
}

/// The future a [`Mailer`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

/// Something that sends mail. Object-safe, so the service holds an `Arc<dyn Mailer>`
/// chosen by configuration, and tests can hand in their own.
pub trait Mailer: Send + Sync + fmt::Debug {
    /// Sends one mail; `Ok` means the transport accepted it (file written, SMTP server
    /// replied 250 to the data).
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a>;
}

/// Builds the RFC 5322 message for `mail`.
fn compose(from: &Sender, mail: &Mail, now: OffsetDateTime) -> Result<Message, MailError> {
    let message_id = format!("<{}.{}@{}>", now.unix_timestamp(), random_hex(16)?, from.0.email.domain());
    let mut builder = Message::builder()
        .from(from.0.clone())
        .to(Mailbox::new(None, mail.to.address().clone()))
        .subject(mail.subject.clone())
        .date(SystemTime::from(now))
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN)
        .raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".to_string()));
    if let Some(language) = mail.language {
        builder = builder.raw_header(HeaderValue::new(CONTENT_LANGUAGE, language.tag().to_string()));
    }
    builder.body(mail.body.clone()).map_err(|source| MailError::Compose { source })
}

/// `bytes` random bytes from the system generator, hex-encoded.
fn random_hex(bytes: usize) -> Result<String, MailError> {
    let mut buffer = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buffer).map_err(|_| MailError::Random)?;
    Ok(hex::encode(buffer))
}

/// Writes every message as an `.eml` file into a directory.
///
/// Names are `<UTC time>-<random>.eml` (e.g. `20250301T143000.123456Z-3f9a0c1b2d4e5f60.eml`),
/// so a plain sort is the order of sending. A file is written under a hidden temporary
/// name (`.<name>.tmp`) in the same directory, synced, then renamed: a reader that
/// lists `*.eml` sees complete messages only. Files are mode 0600.
pub struct Outbox {
    directory: PathBuf,
    from: Sender,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox").field("directory", &self.directory).field("from", &self.from).finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens the outbox, creating the directory (mode 0700, parents as needed) if it is
    /// missing. An existing directory keeps its mode.
    pub fn open(directory: &Path, from: Sender, clock: Arc<dyn Clock>) -> Result<Self, MailError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(directory)
            .map_err(|source| MailError::OutboxDirectory { path: directory.to_path_buf(), source })?;
        Ok(Self { directory: directory.to_path_buf(), from, clock })
    }

    /// The directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Writes `mail` and returns the path of the new file.
    pub async fn deliver(&self, mail: &Mail) -> Result<PathBuf, MailError> {
        let now = self.clock.now();
        let message = compose(&self.from, mail, now)?;
        let name = format!("{}-{}.eml", file_time(now), random_hex(8)?);
        let directory = self.directory.clone();
        let bytes = message.formatted();
        tokio::task::spawn_blocking(move || write_atomically(&directory, &name, &bytes))
            .await
            .map_err(|source| MailError::Task { source })?
    }
}

impl Mailer for Outbox {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move { self.deliver(mail).await.map(|_| ()) })
    }
}

/// `20250301T143000.123456Z`: sorts as text in time order.
fn file_time(now: OffsetDateTime) -> String {
    const FORMAT: &[FormatItem<'static>] =
        format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:6]Z");
    let utc = now.to_offset(time::UtcOffset::UTC);
    // Formatting a complete OffsetDateTime only fails for years beyond 9999 without the
    // `large-dates` feature; the Unix time still sorts correctly in that impossible case.
    utc.format(FORMAT).unwrap_or_else(|_| utc.unix_timestamp().to_string())
}

/// Writes `dir/.name.tmp`, syncs it and renames it to `dir/name`; on failure removes
/// the temporary file.
fn write_atomically(directory: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, MailError> {
    let target = directory.join(name);
    let temporary = directory.join(format!(".{name}.tmp"));
    let write = || -> io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(source) = write() {
        let _ = std::fs::remove_file(&temporary);
        return Err(MailError::OutboxWrite { path: temporary, source });
    }
    if let Err(source) = std::fs::rename(&temporary, &target) {
        let _ = std::fs::remove_file(&temporary);
        return Err(MailError::OutboxWrite { path: target, source });
    }
    // Make the rename itself durable. The message is already visible and complete, so a
    // failure here must not be reported as "not sent" (the caller would send it again).
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(directory) {
        let _ = dir.sync_all();
    }
    Ok(target)
}

/// SMTP login data. `Debug` hides the password.
#[derive(Clone)]
pub struct SmtpCredentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Everything [`Smtp::new`] needs, with secrets already read.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Server name (also the name the TLS certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connection protection.
    pub tls: SmtpTls,
    /// Login, if the server wants one.
    pub credentials: Option<SmtpCredentials>,
    /// Timeout for connecting and for each SMTP command.
    pub timeout: Duration,
    /// Extra trust anchors (PEM) besides the system store, for a relay with a private CA.
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// Sends through an SMTP server (one connection per message).
///
/// TLS is rustls with the aws-lc-rs provider; server certificates are checked against the
/// system trust store (plus [`SmtpSettings::extra_roots_pem`]) and the host name.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    from: Sender,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Smtp {
    /// Sets up the transport (no connection is made yet).
    pub fn new(settings: SmtpSettings, from: Sender, clock: Arc<dyn Clock>) -> Result<Self, MailError> {
        let SmtpSettings { host, port, tls, credentials, timeout, extra_roots_pem } = settings;
        let tls_error = |source| MailError::Tls { host: host.clone(), source };
        let tls_parameters = || -> Result<TlsParameters, MailError> {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(pem) = &extra_roots_pem {
                // Our PEM reader (text around the blocks, a byte order mark), then DER.
                let certificates = certdesk_pki::pem::decode_labelled(pem, &["CERTIFICATE"])
                    .map_err(|reason| MailError::CaPem { reason })?;
                for der in certificates {
                    builder = builder.add_root_certificate(Certificate::from_der(der).map_err(tls_error)?);
                }
            }
            builder.build().map_err(tls_error)
        };
        let tls = match tls {
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters()?),
            SmtpTls::Plaintext => {
                if credentials.is_some() {
                    return Err(MailError::CredentialsWithoutTls);
                }
                Tls::None
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(credentials) = credentials {
            builder = builder
                .credentials(Credentials::new(credentials.username.clone(), credentials.password.as_str().to_string()));
        }
        Ok(Self { transport: builder.build(), host, port, from, clock })
    }
}

impl Mailer for Smtp {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            let message = compose(&self.from, mail, self.clock.now())?;
            self.transport.send(message).await.map(|_| ()).map_err(|source| MailError::Smtp {
                host: self.host.clone(),
                port: self.port,
                source,
            })
        })
    }
}

/// Checks `section` and builds its mailer: an [`Outbox`] in `outbox_dir` (normally
/// `DATA/outbox`, created 0700 if missing) or an [`Smtp`] transport. Reads the password
/// and CA files named in the section; connects to nothing.
///
/// With `transport = "outbox"` the `smtp_*` keys are not checked beyond their TOML types,
/// so an SMTP setup can be prepared before it is switched on.
pub fn build_mailer(
    section: &MailSection,
    outbox_dir: &Path,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Mailer>, MailError> {
    let from = Sender::parse(&section.from)?;
    match section.transport {
        MailTransport::Outbox => Ok(Arc::new(Outbox::open(outbox_dir, from, clock)?)),
        MailTransport::Smtp => Ok(Arc::new(Smtp::new(smtp_settings(section)?, from, clock)?)),
    }
}

/// Checks `section` as [`build_mailer`] would (the sender, and for SMTP the host,
/// timeout, credentials and the password and CA files), without opening the outbox or
/// a connection.
pub fn check_section(section: &MailSection) -> Result<(), MailError> {
    Sender::parse(&section.from)?;
    if section.transport == MailTransport::Smtp {
        smtp_settings(section)?;
    }
    Ok(())
}

/// The validated SMTP part of `section`, with the password and CA files read.
fn smtp_settings(section: &MailSection) -> Result<SmtpSettings, MailError> {
    let host = section.smtp_host.as_deref().map(str::trim).filter(|host| !host.is_empty());
    let host = host.ok_or(MailError::MissingSmtpHost)?.to_string();
    let seconds = section.smtp_timeout_seconds;
    if seconds == 0 || seconds > MAX_SMTP_TIMEOUT_SECONDS {
        return Err(MailError::InvalidTimeout { value: seconds, max: MAX_SMTP_TIMEOUT_SECONDS });
    }
    let credentials = match (&section.smtp_username, &section.smtp_password_file) {
        (None, None) => None,
        (Some(_), None) => return Err(MailError::IncompleteCredentials { missing: "smtp_password_file" }),
        (None, Some(_)) => return Err(MailError::IncompleteCredentials { missing: "smtp_username" }),
        (Some(username), Some(path)) => {
            // Checked before the file is read, so the password is never even loaded.
            if section.smtp_tls == SmtpTls::Plaintext {
                return Err(MailError::CredentialsWithoutTls);
            }
            Some(SmtpCredentials { username: username.clone(), password: read_password(path)? })
        }
    };
    let extra_roots_pem = match &section.smtp_ca_file {
        None => None,
        Some(path) => Some(std::fs::read(path).map_err(|source| MailError::CaFile { path: path.clone(), source })?),
    };
    Ok(SmtpSettings {
        host,
        port: section.smtp_port,
        tls: section.smtp_tls,
        credentials,
        timeout: Duration::from_secs(seconds),
        extra_roots_pem,
    })
}

/// Reads a one-line password file; a trailing `\n` or `\r\n` is not part of the password.
fn read_password(path: &Path) -> Result<Zeroizing<String>, MailError> {
    let content = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| MailError::PasswordFile { path: path.to_path_buf(), source })?,
    );
    let password = content.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(MailError::EmptyPassword { path: path.to_path_buf() });
    }
    Ok(Zeroizing::new(password.to_string()))
}

// ----------------------------------------------------------------------------------
// Texts
// ----------------------------------------------------------------------------------

/// A time for people in the organisation's zone, named, as the catalogue writes it:
/// `2025-03-01 14:30 UTC`, `2025-06-30 10:00 CEST (Europe/Berlin)`,
/// `30.06.2025, 10:00 Uhr (CEST, Europe/Berlin)`.
fn human_time(texts: &MailTexts, at: &LocalTime) -> String {
    // Formatting a complete OffsetDateTime can't fail for years 0..=9999; fall back to the
    // Display form rather than send an empty time.
    let local = at.at.format(texts.time_format).unwrap_or_else(|_| at.at.to_string());
    let region = if at.zone == at.abbreviation || at.zone == "UTC" { "" } else { at.zone.as_str() };
    (texts.time_with_zone)(&ZonedTime { local: &local, zone: &at.abbreviation, region })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for byte in component.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The mail in the catalogue's language: the greeting, `text`, then the signature
/// separator and the footer.
fn finish(texts: &MailTexts, to: &MailAddress, subject: &str, text: &str) -> Mail {
    let body = format!("{}\n\n{text}\n\n-- \n{}\n", texts.greeting, texts.footer);
    Mail::new(to.clone(), subject, &body).with_language(texts.lang)
}

/// The mailbox validation mail (BR 3.2.2.2): the random `value` and a link that carries
/// it, `{portal_base_url}/validate/{application_id}?value={value}` (both percent-encoded);
/// the portal serves that route and also accepts the value typed in.
pub fn validation_mail(
    lang: Lang,
    to: &MailAddress,
    portal_base_url: &str,
    application_id: &str,
    value: &str,
    expires_at: &LocalTime,
    escrow: bool,
) -> Mail {
    let texts = MailTexts::of(lang);
    let link = format!(
        "{}/validate/{}?value={}",
        portal_base_url.trim_end_matches('/'),
        percent_encode(application_id),
        percent_encode(value)
    );
    let until = human_time(texts, expires_at);
    let mut body = (texts.validation_body)(&Validation { application_id, link: &link, value, until: &until });
    if escrow {
        body.push_str(&format!("\n\n{}", texts.escrow_before));
    }
    finish(texts, to, texts.validation_subject, &body)
}

/// The sign-in link for the portal.
pub fn sign_in_mail(lang: Lang, to: &MailAddress, link: &str, expires_at: &LocalTime) -> Mail {
    let texts = MailTexts::of(lang);
    let until = human_time(texts, expires_at);
    finish(texts, to, texts.sign_in_subject, &(texts.sign_in_body)(&SignIn { link, until: &until }))
}

/// The confirmation of an appointment for the identity check. `when` is shown in the
/// offset it carries (pass the desk's local time); `place_note` (room, address) may be empty.
pub fn appointment_mail(lang: Lang, to: &MailAddress, when: &LocalTime, place_note: &str) -> Mail {
    appointment(lang, to, when, place_note, false)
}

/// The reminder, the day before, of an appointment booked earlier.
pub fn appointment_reminder_mail(lang: Lang, to: &MailAddress, when: &LocalTime, place_note: &str) -> Mail {
    appointment(lang, to, when, place_note, true)
}

/// The appointment's confirmation or (`reminder`) its reminder: the opening sentence,
/// the time and the place (if any) indented on lines of their own, what to bring.
fn appointment(lang: Lang, to: &MailAddress, when: &LocalTime, place_note: &str, reminder: bool) -> Mail {
    let texts = MailTexts::of(lang);
    let at = human_time(texts, when);
    let place = place_note.trim();
    let place_line = if place.is_empty() { String::new() } else { format!("  {place}\n") };
    let (subject, opening) = if reminder {
        (texts.reminder_subject, texts.reminder_opening)
    } else {
        (texts.appointment_subject, texts.appointment_opening)
    };
    finish(texts, to, subject, &format!("{opening}\n\n  {at}\n{place_line}\n{}", texts.appointment_bring_id))
}

/// The desk cancelled an appointment at `when`; `link` is the application's page.
pub fn appointment_cancelled_mail(lang: Lang, to: &MailAddress, when: &LocalTime, link: &str) -> Mail {
    let texts = MailTexts::of(lang);
    let when = human_time(texts, when);
    finish(texts, to, texts.cancelled_subject, &(texts.cancelled_body)(&AppointmentCancelled { when: &when, link }))
}

/// The mail to a new officer (`admin`: administrator) with their first sign-in link.
pub fn staff_invitation_mail(lang: Lang, to: &MailAddress, admin: bool, link: &str, until: &LocalTime) -> Mail {
    let texts = MailTexts::of(lang);
    let until = human_time(texts, until);
    let role = if admin { texts.role_admin } else { texts.role_officer };
    let invitation = StaffInvitation { role, link, until: &until };
    finish(texts, to, &(texts.invitation_subject)(&invitation), &(texts.invitation_body)(&invitation))
}

/// The certificate has been issued; `link` leads to the download, `guide` to the
/// install guide for every client; the install steps of `clients` (the mail clients the
/// person named, see [`crate::advisor`]) follow.
pub fn certificate_ready_mail(
    lang: Lang,
    to: &MailAddress,
    serial: &str,
    link: &str,
    clients: &[crate::advisor::MailClient],
    guide: &str,
    escrowed: bool,
) -> Mail {
    let texts = MailTexts::of(lang);
    let mut body = (texts.ready_body)(&CertificateReady { serial, link });
    if escrowed {
        body.push_str(&format!("\n\n{}", texts.escrow_issued));
    }
    if !clients.is_empty() {
        body.push_str(&format!(
            "\n\n{}\n\n{}",
            texts.ready_install_heading,
            crate::advisor::install_text(clients, lang)
        ));
    }
    body.push_str(&format!("\n\n{}", (texts.ready_guide)(guide)));
    finish(texts, to, texts.ready_subject, &body)
}

/// The notice to the holder that a recovery of `keys` of their escrowed keys for
/// `recipient` was asked for (`delivered`: that the keys were handed out).
pub fn recovery_mail(lang: Lang, to: &MailAddress, delivered: bool, recipient: &str, keys: usize, link: &str) -> Mail {
    let texts = MailTexts::of(lang);
    let notice = RecoveryNotice { recipient, keys, link };
    if delivered {
        finish(texts, to, texts.recovery_delivered_subject, &(texts.recovery_delivered_body)(&notice))
    } else {
        finish(texts, to, texts.recovery_requested_subject, &(texts.recovery_requested_body)(&notice))
    }
}

/// A reminder that a certificate expires in `days_left` days (see [`EXPIRY_REMINDER_DAYS`]).
pub fn expiry_reminder_mail(
    lang: Lang,
    to: &MailAddress,
    serial: &str,
    not_after: &LocalTime,
    days_left: u32,
    renew_link: &str,
) -> Mail {
    let texts = MailTexts::of(lang);
    let end = human_time(texts, not_after);
    let reminder = ExpiryReminder { days_left, serial, end: &end, renew_link };
    finish(texts, to, &(texts.expiry_subject)(&reminder), &(texts.expiry_body)(&reminder))
}

/// The notice that a certificate was revoked at `at`.
pub fn revocation_mail(lang: Lang, to: &MailAddress, serial: &str, reason: RevocationReason, at: &LocalTime) -> Mail {
    let texts = MailTexts::of(lang);
    let when = human_time(texts, at);
    let reason = match reason {
        RevocationReason::Unspecified => texts.reason_unspecified,
        RevocationReason::KeyCompromise => texts.reason_key_compromise,
        RevocationReason::AffiliationChanged => texts.reason_affiliation_changed,
        RevocationReason::Superseded => texts.reason_superseded,
        RevocationReason::CessationOfOperation => texts.reason_cessation_of_operation,
    };
    let body = (texts.revocation_body)(&Revocation { serial, when: &when, reason });
    finish(texts, to, texts.revocation_subject, &body)
}

/// The audit log's head at `at`, for an auditor to keep where the CA machine cannot
/// write (see `crate::checkpoint`): `checkpoint` is `SEQ:HASH`.
pub fn audit_checkpoint_mail(
    lang: Lang,
    to: &MailAddress,
    organization: &str,
    checkpoint: &str,
    records: i64,
    at: &LocalTime,
) -> Mail {
    let texts = MailTexts::of(lang);
    let when = human_time(texts, at);
    let head = AuditCheckpoint { organization, when: &when, records, checkpoint };
    finish(texts, to, &(texts.checkpoint_subject)(&head), &(texts.checkpoint_body)(&head))
}

/// The alert that the audit log failed its check at `at` (`reason` says where and how).
pub fn audit_alert_mail(lang: Lang, to: &MailAddress, organization: &str, reason: &str, at: &LocalTime) -> Mail {
    let texts = MailTexts::of(lang);
    let when = human_time(texts, at);
    let alert = AuditAlert { organization, when: &when, reason };
    finish(texts, to, &(texts.alert_subject)(&alert), &(texts.alert_body)(&alert))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use time::macros::datetime;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::TcpListener;

    use super::*;
    use certdesk_core::clock::FixedClock;

    const NOW: OffsetDateTime = datetime!(2025-03-01 14:30:05.25 UTC);

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock(NOW))
    }

    fn alice() -> MailAddress {
        MailAddress::parse("alice@example.org").unwrap()
    }

    fn sender() -> Sender {
        Sender::parse("PKI Desk <pki@example.org>").unwrap()
    }

    /// Names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn normalize(text: &str) -> String {
        text.replace("\r\n", "\n")
    }

    #[tokio::test]
    async fn outbox_writes_a_parseable_message() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outbox");
        let outbox = Outbox::open(&dir, sender(), clock()).unwrap();
        let expires = LocalTime::utc(datetime!(2025-03-02 14:30 UTC));
        let mail = validation_mail(
            Lang::De,
            &alice(),
            "https://pki.example.org/",
            "A-42",
            "7Kq9-xZ2mP4vW8rT",
            &expires,
            false,
        );
        let path = outbox.deliver(&mail).await.unwrap();

        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with("20250301T143005.250000Z-"), "{name}");
        assert!(name.ends_with(".eml"), "{name}");
        assert_eq!(names(&dir), vec![name]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        }

        let raw = std::fs::read(&path).unwrap();
        // The whole message is 7-bit: the German subject and body are encoded.
        assert!(raw.is_ascii(), "{}", String::from_utf8_lossy(&raw));
        let text = String::from_utf8(raw.clone()).unwrap();
        let subject_line = text.lines().find(|line| line.starts_with("Subject:")).unwrap();
        assert!(subject_line.to_ascii_lowercase().contains("=?utf-8?"), "{subject_line}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(text.contains("Content-Language: de\r\n"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-generated\r\n"), "{text}");

        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Bitte bestätigen Sie Ihre E-Mail-Adresse"));
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!(to.address(), Some("alice@example.org"));
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("pki@example.org"));
        assert_eq!(from.name(), Some("PKI Desk"));
        assert_eq!(parsed.date().unwrap().to_timestamp(), NOW.unix_timestamp());
        let message_id = parsed.message_id().unwrap();
        assert!(message_id.ends_with("@example.org"), "{message_id}");
        let body = parsed.body_text(0).unwrap();
        assert_eq!(normalize(&body).trim_end(), mail.body().trim_end());
        assert!(body.contains("7Kq9-xZ2mP4vW8rT"));
        assert!(body.contains("https://pki.example.org/validate/A-42?value=7Kq9-xZ2mP4vW8rT"));
        assert!(body.contains("Der Code ist gültig bis 02.03.2025, 14:30 Uhr (UTC)."), "{body}");
    }

    #[tokio::test]
    async fn files_appear_only_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outbox");
        let outbox = Arc::new(Outbox::open(&dir, sender(), clock()).unwrap());

        // A reader polls the folder the whole time and keeps every .eml it sees.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (dir, stop) = (dir.clone(), Arc::clone(&stop));
            tokio::task::spawn_blocking(move || {
                let mut seen: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
                while !stop.load(Ordering::SeqCst) {
                    for name in names(&dir).into_iter().filter(|name| name.ends_with(".eml")) {
                        if let Ok(bytes) = std::fs::read(dir.join(&name)) {
                            seen.entry(name).or_default().push(bytes);
                        }
                    }
                }
                seen
            })
        };
        // Large bodies, so that a non-atomic write would be caught half-way.
        let line = "Zeile mit Umlauten: äöü ß – ".repeat(40);
        let mut sends = Vec::new();
        for i in 0..12 {
            let outbox = Arc::clone(&outbox);
            let body = format!("{}\nEND {i}\n", format!("{line}\n").repeat(200));
            sends.push(tokio::spawn(async move {
                outbox.deliver(&Mail::new(alice(), &format!("Nachricht {i}"), &body)).await.unwrap()
            }));
        }
        for send in sends {
            send.await.unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        let seen = reader.await.unwrap();

        let final_names = names(&dir);
        assert_eq!(final_names.len(), 12, "{final_names:?}");
        assert!(final_names.iter().all(|name| name.ends_with(".eml")), "temporary files left: {final_names:?}");
        for name in &final_names {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
            let i: usize = parsed.subject().unwrap().trim_start_matches("Nachricht ").parse().unwrap();
            assert!(parsed.body_text(0).unwrap().contains(&format!("END {i}")));
            for observed in seen.get(name).into_iter().flatten() {
                assert!(observed == &bytes, "{name} was seen incomplete ({} of {} bytes)", observed.len(), bytes.len());
            }
        }
    }

    #[tokio::test]
    async fn unwritable_outbox_fails_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();

        // A file where the directory should be: opening fails.
        let blocked = tmp.path().join("blocked");
        std::fs::write(&blocked, b"not a directory").unwrap();
        let err = Outbox::open(&blocked, sender(), clock()).unwrap_err();
        assert!(matches!(err, MailError::OutboxDirectory { .. }), "{err:?}");

        // The directory disappears after opening and a file takes its place: sending
        // fails (root ignores mode bits, so a read-only directory would prove nothing).
        let dir = tmp.path().join("outbox");
        let outbox = Outbox::open(&dir, sender(), clock()).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        std::fs::write(&dir, b"in the way").unwrap();
        let err = outbox.send(&Mail::new(alice(), "Test", "Text")).await.unwrap_err();
        assert!(matches!(err, MailError::OutboxWrite { .. }), "{err:?}");
        assert_eq!(err.code(), ErrorCode::Internal);
        assert_eq!(names(tmp.path()), vec!["blocked".to_string(), "outbox".to_string()]);
        assert_eq!(std::fs::read(&dir).unwrap(), b"in the way");

        // A missing directory (removed after opening): nothing is created.
        let gone = tmp.path().join("gone");
        let outbox = Outbox::open(&gone, sender(), clock()).unwrap();
        std::fs::remove_dir(&gone).unwrap();
        let err = outbox.send(&Mail::new(alice(), "Test", "Text")).await.unwrap_err();
        assert!(matches!(err, MailError::OutboxWrite { .. }), "{err:?}");
        assert!(!gone.exists());
    }

    #[test]
    fn invalid_addresses_are_refused() {
        for bad in ["", "alice", "alice@", "@example.org", "Alice <alice@example.org>", "a@b\r\nBcc: eve@example.org"] {
            let err = MailError::from(MailAddress::parse(bad).unwrap_err());
            assert!(matches!(err, MailError::InvalidAddress { .. }), "{bad:?}: {err:?}");
            assert_eq!(err.code(), ErrorCode::BadInput);
        }
        assert_eq!(MailAddress::parse(" alice@example.org ").unwrap().as_str(), "alice@example.org");
        assert!(matches!(Sender::parse("no address here"), Err(MailError::InvalidSender { .. })));
        assert_eq!(Sender::parse(&MailSection::default().from).unwrap().address(), "certdesk@localhost");
    }

    #[test]
    fn subject_cannot_add_header_lines() {
        let mail = Mail::new(alice(), "Hello\r\nBcc: eve@example.org", "a\r\nb\rc\n");
        assert_eq!(mail.subject(), "Hello  Bcc: eve@example.org");
        assert_eq!(mail.body(), "a\nb\nc\n");
        let debug = format!("{mail:?}");
        assert!(!debug.contains("a\\nb"), "{debug}");
    }

    #[test]
    fn lang_from_tag() {
        assert_eq!(Lang::from_tag("de"), Lang::De);
        assert_eq!(Lang::from_tag("DE-at"), Lang::De);
        assert_eq!(Lang::from_tag("de_CH"), Lang::De);
        assert_eq!(Lang::from_tag("en-GB"), Lang::En);
        assert_eq!(Lang::from_tag("fr"), Lang::En);
        assert_eq!(Lang::from_tag(""), Lang::En);
        assert_eq!(Lang::from_tag("deu"), Lang::En);
    }

    #[test]
    fn section_defaults_and_unknown_keys() {
        let section: MailSection = toml::from_str("").unwrap();
        assert_eq!(section, MailSection::default());
        assert_eq!(section.from, "certdesk <certdesk@localhost>");
        assert_eq!(section.transport, MailTransport::Outbox);
        assert_eq!(section.smtp_port, 587);
        assert_eq!(section.smtp_tls, SmtpTls::StartTls);

        let section: MailSection = toml::from_str(
            "transport = \"smtp\"\nsmtp_host = \"mail.example.org\"\nsmtp_tls = \"tls\"\nsmtp_port = 465",
        )
        .unwrap();
        assert_eq!(section.smtp_tls, SmtpTls::Implicit);
        assert!(toml::from_str::<MailSection>("smtp_password = \"secret\"").is_err());
        assert!(toml::from_str::<MailSection>("smtp_tls = \"maybe\"").is_err());
    }

    #[tokio::test]
    async fn build_mailer_checks_the_section() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox_dir = tmp.path().join("outbox");

        // Default: the outbox, created on the way.
        let mailer = build_mailer(&MailSection::default(), &outbox_dir, clock()).unwrap();
        assert!(format!("{mailer:?}").starts_with("Outbox"));
        assert!(outbox_dir.is_dir());

        let smtp = MailSection { transport: MailTransport::Smtp, ..MailSection::default() };
        let err = build_mailer(&smtp, &outbox_dir, clock()).unwrap_err();
        assert!(matches!(err, MailError::MissingSmtpHost), "{err:?}");
        assert_eq!(err.code(), ErrorCode::Config);
        let blank = MailSection { smtp_host: Some("  ".into()), ..smtp.clone() };
        assert!(matches!(build_mailer(&blank, &outbox_dir, clock()), Err(MailError::MissingSmtpHost)));

        let smtp = MailSection { smtp_host: Some("mail.example.org".into()), ..smtp };
        let password_file = tmp.path().join("smtp-password");
        std::fs::write(&password_file, "s3cret pass\n").unwrap();

        let only_user = MailSection { smtp_username: Some("pki".into()), ..smtp.clone() };
        assert!(matches!(
            build_mailer(&only_user, &outbox_dir, clock()),
            Err(MailError::IncompleteCredentials { missing: "smtp_password_file" })
        ));
        let only_file = MailSection { smtp_password_file: Some(password_file.clone()), ..smtp.clone() };
        assert!(matches!(
            build_mailer(&only_file, &outbox_dir, clock()),
            Err(MailError::IncompleteCredentials { missing: "smtp_username" })
        ));
        let with_login = MailSection { smtp_username: Some("pki".into()), ..only_file };
        let plaintext_login = MailSection { smtp_tls: SmtpTls::Plaintext, ..with_login.clone() };
        assert!(matches!(build_mailer(&plaintext_login, &outbox_dir, clock()), Err(MailError::CredentialsWithoutTls)));
        let missing_file = MailSection { smtp_password_file: Some(tmp.path().join("nope")), ..with_login.clone() };
        assert!(matches!(build_mailer(&missing_file, &outbox_dir, clock()), Err(MailError::PasswordFile { .. })));
        let empty_file = tmp.path().join("empty");
        std::fs::write(&empty_file, "\r\n").unwrap();
        let empty = MailSection { smtp_password_file: Some(empty_file), ..with_login.clone() };
        assert!(matches!(build_mailer(&empty, &outbox_dir, clock()), Err(MailError::EmptyPassword { .. })));
        let zero_timeout = MailSection { smtp_timeout_seconds: 0, ..smtp.clone() };
        assert!(matches!(build_mailer(&zero_timeout, &outbox_dir, clock()), Err(MailError::InvalidTimeout { .. })));

        let missing_ca = MailSection { smtp_ca_file: Some(tmp.path().join("no-ca.pem")), ..smtp.clone() };
        assert!(matches!(build_mailer(&missing_ca, &outbox_dir, clock()), Err(MailError::CaFile { .. })));

        // A complete setup builds (no connection yet), and the password shows nowhere.
        let mailer = build_mailer(&with_login, &outbox_dir, clock()).unwrap();
        let debug = format!("{mailer:?}");
        assert!(debug.starts_with("Smtp") && debug.contains("mail.example.org"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert_eq!(read_password(&password_file).unwrap().as_str(), "s3cret pass");
        let settings = smtp_settings(&with_login).unwrap();
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    /// A one-connection SMTP server speaking just enough of RFC 5321. Returns the
    /// envelope commands and the message as received (dot-unstuffed).
    async fn fake_smtp_server(listener: TcpListener) -> (Vec<String>, Vec<u8>) {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut commands = Vec::new();
        let mut data = Vec::new();
        write.write_all(b"220 fake.test ESMTP\r\n").await.unwrap();
        loop {
            let mut line = Vec::new();
            if read.read_until(b'\n', &mut line).await.unwrap() == 0 {
                break;
            }
            let command = String::from_utf8_lossy(&line).trim_end().to_string();
            let verb = command.split(' ').next().unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 fake.test\r\n",
                "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                "DATA" => {
                    write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.unwrap();
                    loop {
                        let mut line = Vec::new();
                        assert!(read.read_until(b'\n', &mut line).await.unwrap() > 0, "connection closed in DATA");
                        if line == b".\r\n" {
                            break;
                        }
                        let unstuffed = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
                        data.extend_from_slice(unstuffed);
                    }
                    b"250 OK queued\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 Bye\r\n").await.unwrap();
                    commands.push(command);
                    break;
                }
                _ => b"502 Command not implemented\r\n",
            };
            commands.push(command);
            write.write_all(reply).await.unwrap();
        }
        (commands, data)
    }

    #[tokio::test]
    async fn smtp_delivers_to_a_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(fake_smtp_server(listener));

        let section = MailSection {
            from: "PKI Desk <pki@example.org>".into(),
            transport: MailTransport::Smtp,
            smtp_host: Some("127.0.0.1".into()),
            smtp_port: port,
            smtp_tls: SmtpTls::Plaintext,
            smtp_timeout_seconds: 5,
            ..MailSection::default()
        };
        let tmp = tempfile::tempdir().unwrap();
        let mailer = build_mailer(&section, &tmp.path().join("outbox"), clock()).unwrap();
        let link = "https://pki.example.org/certificates/7A3F00C1";
        let mail =
            certificate_ready_mail(Lang::En, &alice(), "7A3F00C1", link, &[], "https://pki.example.org/install", false);
        tokio::time::timeout(Duration::from_secs(10), mailer.send(&mail)).await.unwrap().unwrap();
        let (commands, data) = tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();

        assert!(commands.iter().any(|c| c == "MAIL FROM:<pki@example.org>"), "{commands:?}");
        assert!(commands.iter().any(|c| c == "RCPT TO:<alice@example.org>"), "{commands:?}");
        let parsed = mail_parser::MessageParser::default().parse(&data).unwrap();
        assert_eq!(parsed.subject(), Some("Your certificate is ready"));
        assert_eq!(parsed.to().unwrap().first().unwrap().address(), Some("alice@example.org"));
        assert_eq!(normalize(&parsed.body_text(0).unwrap()).trim_end(), mail.body().trim_end());
        // The outbox was not used.
        assert!(!tmp.path().join("outbox").exists());
    }

    #[tokio::test]
    async fn smtp_failure_is_an_error() {
        // Nothing listens on the port once the listener is dropped.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let settings = SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::Plaintext,
            credentials: None,
            timeout: Duration::from_secs(5),
            extra_roots_pem: None,
        };
        let smtp = Smtp::new(settings, sender(), clock()).unwrap();
        let err = smtp.send(&Mail::new(alice(), "Test", "Text")).await.unwrap_err();
        assert!(matches!(err, MailError::Smtp { port: p, .. } if p == port), "{err:?}");
    }

    #[test]
    fn audit_mails_in_both_languages() {
        let at = &LocalTime::utc(datetime!(2025-06-30 08:05 UTC));
        let checkpoint = format!("42:{}", "ab".repeat(32));
        let ok_en = audit_checkpoint_mail(Lang::En, &alice(), "Example Org", &checkpoint, 42, at);
        let ok_de = audit_checkpoint_mail(Lang::De, &alice(), "Example Org", &checkpoint, 42, at);
        let alert_en = audit_alert_mail(Lang::En, &alice(), "Example Org", "record 7: hash mismatch", at);
        let alert_de = audit_alert_mail(Lang::De, &alice(), "Example Org", "record 7: hash mismatch", at);
        assert_eq!(ok_en.subject(), "Audit checkpoint of Example Org: record 42");
        assert!(ok_de.subject().starts_with("Prüfpunkt"));
        for mail in [&ok_en, &ok_de] {
            assert!(mail.body().contains(&format!("\ncertdesk audit verify --checkpoint {checkpoint}\n")));
            assert!(mail.body().contains(&format!("\n{checkpoint}\n")));
        }
        assert!(ok_en.body().contains("2025-06-30 08:05 UTC"));
        assert!(alert_en.subject().starts_with("ALERT") && alert_de.subject().starts_with("WARNUNG"));
        for mail in [&ok_en, &ok_de, &alert_en, &alert_de] {
            assert!(!mail.body().contains('{') && !mail.body().contains('}'), "{}", mail.body());
            assert!(mail.body().contains("Example Org") && mail.body().contains("\n-- \n"));
        }
        for mail in [&alert_en, &alert_de] {
            assert!(mail.body().contains("\nrecord 7: hash mismatch\n"));
        }
    }

    #[test]
    fn texts_in_both_languages() {
        let at = &LocalTime::utc(datetime!(2025-06-30 08:05 UTC));
        let berlin = certdesk_core::zone::OrgZone::named("Europe/Berlin").unwrap();
        let local = &berlin.at(datetime!(2025-06-30 08:00 UTC));
        let link = "https://pki.example.org/x";
        let mails = [
            validation_mail(Lang::En, &alice(), "https://pki.example.org", "id 1/2", "v+a=l", at, false),
            validation_mail(Lang::De, &alice(), "https://pki.example.org", "id 1/2", "v+a=l", at, false),
            sign_in_mail(Lang::En, &alice(), link, at),
            sign_in_mail(Lang::De, &alice(), link, at),
            appointment_mail(Lang::En, &alice(), local, "Room 1.23, Main Street 1"),
            appointment_mail(Lang::De, &alice(), local, ""),
            appointment_reminder_mail(Lang::En, &alice(), local, "Room 1.23"),
            appointment_reminder_mail(Lang::De, &alice(), local, ""),
            certificate_ready_mail(Lang::En, &alice(), "01AB", link, &[], link, false),
            certificate_ready_mail(Lang::De, &alice(), "01AB", link, &[], link, false),
            expiry_reminder_mail(Lang::En, &alice(), "01AB", at, 30, link),
            expiry_reminder_mail(Lang::De, &alice(), "01AB", at, 7, link),
            revocation_mail(Lang::En, &alice(), "01AB", RevocationReason::KeyCompromise, at),
            revocation_mail(Lang::De, &alice(), "01AB", RevocationReason::Superseded, at),
        ];
        for (i, mail) in mails.iter().enumerate() {
            let lang = if i % 2 == 0 { Lang::En } else { Lang::De };
            assert_eq!(mail.language(), Some(lang));
            assert_eq!(mail.to(), &alice());
            assert!(!mail.subject().is_empty());
            assert!(!mail.body().contains('{') && !mail.body().contains('}'), "{}", mail.body());
            assert!(mail.body().ends_with("\n"), "{}", mail.body());
            assert!(mail.body().contains("\n-- \n"));
        }
        let [val_en, val_de, sign_en, sign_de, appt_en, appt_de, remind_en, remind_de, ready_en, ready_de, exp_en, exp_de, rev_en, rev_de] =
            &mails;
        assert!(remind_en.subject().starts_with("Reminder") && remind_en.body().contains("Room 1.23"));
        assert!(remind_de.body().contains("30.06.2025, 10:00 Uhr (CEST, Europe/Berlin)"));
        assert!(val_en.body().contains("https://pki.example.org/validate/id%201%2F2?value=v%2Ba%3Dl"));
        assert!(val_en.body().contains("\nv+a=l\n"));
        assert!(val_en.body().contains("2025-06-30 08:05 UTC"));
        assert!(val_de.body().contains("gültig bis 30.06.2025, 08:05 Uhr (UTC)"));
        assert_eq!(val_de.subject(), "Bitte bestätigen Sie Ihre E-Mail-Adresse");
        assert!(sign_en.body().contains(link) && sign_de.body().contains(link));
        assert!(
            appt_en.body().contains("2025-06-30 10:00 CEST (Europe/Berlin)") && appt_en.body().contains("Room 1.23")
        );
        assert!(appt_de.body().contains("30.06.2025, 10:00 Uhr (CEST, Europe/Berlin)"));
        assert_eq!(appt_de.subject(), "Ihr Termin zur Identitätsprüfung");
        assert!(ready_en.body().contains("01AB") && ready_de.body().contains("Seriennummer 01AB"));
        assert_eq!(exp_en.subject(), "Your certificate expires in 30 days");
        assert_eq!(exp_de.subject(), "Ihr Zertifikat läuft in 7 Tagen ab");
        assert!(exp_de.body().contains("läuft am 30.06.2025, 08:05 Uhr (UTC) ab"));
        assert_eq!(
            expiry_reminder_mail(Lang::De, &alice(), "01", at, 1, link).subject(),
            "Ihr Zertifikat läuft morgen ab"
        );
        assert_eq!(
            expiry_reminder_mail(Lang::En, &alice(), "01", at, 0, link).subject(),
            "Your certificate expires today"
        );
        assert!(rev_en.body().contains("the private key may have been compromised"));
        assert!(rev_de.body().contains("Grund: es wurde durch ein neues Zertifikat ersetzt."));
        assert_eq!(rev_de.subject(), "Ihr Zertifikat wurde widerrufen");
    }

    /// What the caller puts into the mails of [`every_mail`]: not catalogue texts, so the
    /// language checks leave them out (the audit alert's reason is the checker's English).
    const PARAMETERS: &[&str] = &[
        "https://pki.example.org/validate/A-42?value=7Kq9-xZ2mP4vW8rT",
        "https://pki.example.org/renew",
        "https://pki.example.org/x",
        "alice@example.org",
        "Room 1.23, Main Street 1",
        "Example Org",
        "42:abcdef0123",
        "record 7: hash mismatch",
        "7Kq9-xZ2mP4vW8rT",
        "A-42",
        "01AB",
        "Europe/Berlin",
        "CET",
    ];

    /// Every mail the desk sends, from every builder with fixed inputs, with every
    /// variant of its text (reminder, today, tomorrow, every revocation reason).
    fn every_mail(lang: Lang) -> Vec<Mail> {
        let at = &LocalTime::utc(datetime!(2025-06-30 08:05 UTC));
        let berlin = certdesk_core::zone::OrgZone::named("Europe/Berlin").unwrap();
        let local = &berlin.at(datetime!(2025-12-01 08:30 UTC));
        let link = "https://pki.example.org/x";
        let mut mails = vec![
            validation_mail(lang, &alice(), "https://pki.example.org/", "A-42", "7Kq9-xZ2mP4vW8rT", at, false),
            sign_in_mail(lang, &alice(), link, local),
            appointment_mail(lang, &alice(), local, "Room 1.23, Main Street 1"),
            appointment_mail(lang, &alice(), at, ""),
            appointment_reminder_mail(lang, &alice(), local, "Room 1.23, Main Street 1"),
            appointment_cancelled_mail(lang, &alice(), local, link),
            staff_invitation_mail(lang, &alice(), false, link, local),
            staff_invitation_mail(lang, &alice(), true, link, at),
            certificate_ready_mail(lang, &alice(), "01AB", link, &[], link, false),
            certificate_ready_mail(lang, &alice(), "01AB", link, &crate::advisor::MailClient::ALL, link, false),
            certificate_ready_mail(lang, &alice(), "01AB", link, &[], link, true),
            validation_mail(lang, &alice(), "https://pki.example.org/", "A-42", "7Kq9-xZ2mP4vW8rT", at, true),
            recovery_mail(lang, &alice(), false, "successor@example.org", 2, link),
            recovery_mail(lang, &alice(), true, "alice@example.org", 1, link),
            audit_checkpoint_mail(lang, &alice(), "Example Org", "42:abcdef0123", 42, at),
            audit_alert_mail(lang, &alice(), "Example Org", "record 7: hash mismatch", local),
        ];
        for days in [0, 1, 30] {
            mails.push(expiry_reminder_mail(lang, &alice(), "01AB", at, days, "https://pki.example.org/renew"));
        }
        for reason in [
            RevocationReason::Unspecified,
            RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged,
            RevocationReason::Superseded,
            RevocationReason::CessationOfOperation,
        ] {
            mails.push(revocation_mail(lang, &alice(), "01AB", reason, local));
        }
        mails
    }

    /// Every mail in `own`'s language is marked so (`language()` and the
    /// `Content-Language` header), shows every text of `own` somewhere and, parameters
    /// left out, none of `other`'s texts that differ from `own`'s.
    fn assert_only_texts_of(own: &MailTexts, other: &MailTexts) {
        let own_texts = own.fixed_texts();
        let (shared, foreign): (Vec<String>, Vec<String>) =
            other.fixed_texts().into_iter().partition(|text| own_texts.contains(text));
        // Only the command line is the same in both languages; anything else shared is
        // a text left untranslated.
        assert_eq!(shared, ["certdesk audit verify --checkpoint"]);
        assert!(foreign.len() > 40, "{foreign:?}");
        let mut unseen: Vec<&String> = own_texts.iter().collect();
        for mail in every_mail(own.lang) {
            assert_eq!(mail.language(), Some(own.lang), "{mail:?}");
            let raw = String::from_utf8(compose(&sender(), &mail, NOW).unwrap().formatted()).unwrap();
            assert!(raw.contains(&format!("\r\nContent-Language: {}\r\n", own.lang.tag())), "{raw}");
            let mut text = format!("{}\n{}", mail.subject(), mail.body());
            for parameter in PARAMETERS {
                text = text.replace(parameter, "\u{1}");
            }
            unseen.retain(|own_text| !text.contains(own_text.as_str()));
            for foreign_text in &foreign {
                assert!(!text.contains(foreign_text.as_str()), "{foreign_text:?} in {:?}:\n{text}", own.lang);
            }
        }
        // The mails above are all the catalogue has: none of its texts went untested.
        assert!(unseen.is_empty(), "{:?} texts in no mail: {unseen:?}", own.lang);
    }

    #[test]
    fn german_mails_show_no_english_text() {
        assert_only_texts_of(&texts::DE, &texts::EN);
    }

    #[test]
    fn english_mails_show_no_german_text() {
        assert_only_texts_of(&texts::EN, &texts::DE);
    }

    #[test]
    fn catalogue_pieces_leave_out_parameters() {
        let pieces = texts::EN.fixed_texts();
        assert!(pieces.contains(&"Hello,".to_string()), "{pieces:?}");
        assert!(pieces.contains(&"Reason:".to_string()), "{pieces:?}");
        assert!(pieces.contains(&"days".to_string()), "{pieces:?}");
        assert!(pieces.iter().all(|piece| !piece.contains('\u{1}') && !piece.contains("987654321")), "{pieces:?}");
        assert!(texts::DE.fixed_texts().contains(&"Uhr".to_string()));
        assert!(std::ptr::eq(MailTexts::of(Lang::De), &texts::DE));
        assert!(std::ptr::eq(MailTexts::of(Lang::En), &texts::EN));
    }
}
