//! The mail settings of `certdesk.toml` (`[mail]`) and the mail vocabulary the
//! configuration needs (languages). Sending mail is the desk's
//! (`certdesk_desk::mail`); nothing here opens a connection.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The language of a mail's text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English (the fallback).
    #[default]
    En,
    /// German.
    De,
}

impl Lang {
    /// The language for a BCP 47 tag such as `de`, `de-AT` or `en-GB` (case-insensitive);
    /// anything that is not German falls back to English.
    pub fn from_tag(tag: &str) -> Lang {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("de") {
            Lang::De
        } else {
            Lang::En
        }
    }

    /// The tag written into `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }
}

/// How the SMTP connection is protected (`mail.smtp_tls`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SmtpTls {
    /// `"starttls"`: plain connect, then STARTTLS, required (no fallback to clear text).
    #[default]
    #[serde(rename = "starttls")]
    StartTls,
    /// `"tls"`: TLS from the first byte (SMTPS, usually port 465).
    #[serde(rename = "tls")]
    Implicit,
    /// `"none"`: clear text, for a relay on the same host or a trusted network only;
    /// credentials are refused in this mode.
    #[serde(rename = "none")]
    Plaintext,
}

/// Which transport `[mail]` selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// `.eml` files in `DATA/outbox/`.
    #[default]
    Outbox,
    /// An SMTP server.
    Smtp,
}

/// The `[mail]` section of `certdesk.toml` (`config.rs` embeds it as `mail`, with
/// `#[serde(default)]`). Every key has a default, so a file without `[mail]` keeps
/// working and writes mail to the outbox.
///
/// ```toml
/// [mail]
/// from = "PKI Desk <pki@example.org>"
/// transport = "smtp"                  # or "outbox" (default)
/// smtp_host = "mail.example.org"
/// smtp_port = 587                     # default; 465 goes with smtp_tls = "tls"
/// smtp_tls = "starttls"               # default; or "tls", or "none" (no credentials then)
/// smtp_username = "pki"
/// smtp_password_file = "/etc/certdesk/smtp-password"
/// ```
///
/// Relative paths are taken relative to the working directory; the caller resolves them
/// against the data directory first if it wants that.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSection {
    /// The `From` of every mail (default `certdesk <certdesk@localhost>`).
    pub from: String,
    /// `outbox` (default) or `smtp`.
    pub transport: MailTransport,
    /// The SMTP server; required with `transport = "smtp"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    /// The SMTP port (default 587, submission).
    pub smtp_port: u16,
    /// `starttls` (default), `tls` or `none`.
    pub smtp_tls: SmtpTls,
    /// The SMTP login name; needs `smtp_password_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_username: Option<String>,
    /// A file holding the SMTP password (one line; a trailing line break is ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<PathBuf>,
    /// Timeout in seconds for connecting and for each SMTP command (default 30).
    pub smtp_timeout_seconds: u64,
    /// A PEM file with extra trust anchors for the SMTP server's certificate, for a relay
    /// under a private CA (default: the system trust store only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_ca_file: Option<PathBuf>,
}

impl Default for MailSection {
    fn default() -> Self {
        Self {
            from: "certdesk <certdesk@localhost>".to_string(),
            transport: MailTransport::Outbox,
            smtp_host: None,
            smtp_port: 587,
            smtp_tls: SmtpTls::StartTls,
            smtp_username: None,
            smtp_password_file: None,
            smtp_timeout_seconds: 30,
            smtp_ca_file: None,
        }
    }
}
