//! The configuration file `certdesk.toml` in the data directory: one typed [`Config`]
//! (unknown keys are refused), turned into a [`ValidatedConfig`] before use.
//!
//! Secrets are never in this file: the CA passphrase comes from a file or the
//! environment (see the README).

use std::collections::BTreeMap;

use certdesk_pki::issuance::PublicationUrls;
use certdesk_pki::profile::{ProfileId, SubscriberProfile};
use certdesk_pki::subject::Organization;
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, ErrorCode};

/// The configuration as written in TOML.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The organisation and the CA.
    pub ca: CaSection,
    /// Validity per profile, in days (missing profiles take their default).
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileSection>,
    /// PKCS#12 delivery.
    #[serde(default)]
    pub pkcs12: Pkcs12Section,
    /// The database.
    #[serde(default)]
    pub database: DatabaseSection,
    /// The registration desk (web portal).
    #[serde(default)]
    pub portal: PortalSection,
    /// Outgoing mail (default: .eml files in DATA/outbox).
    #[serde(default)]
    pub mail: crate::mail_settings::MailSection,
    /// The audit log's checkpoints mailed to auditors (default: none).
    #[serde(default)]
    pub audit: AuditSection,
    /// `serve`'s listener: timeouts and connection limits.
    #[serde(default)]
    pub http: HttpSection,
    /// Where mail clients look up certificates (`[directory.ldap]`).
    #[serde(default, skip_serializing_if = "DirectorySection::is_empty")]
    pub directory: DirectorySection,
    /// Key escrow and recovery (`[escrow]`).
    #[serde(default, skip_serializing_if = "EscrowSection::is_default")]
    pub escrow: EscrowSection,
}

/// `[escrow]`: key recovery (docs/design/key-escrow.md).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EscrowSection {
    /// Hours the key recovery agents have to give their shares once a recovery is open,
    /// 1 to 168 (default 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_window_hours: Option<u32>,
}

impl EscrowSection {
    fn is_default(&self) -> bool {
        self == &EscrowSection::default()
    }

    /// The recovery window in seconds.
    ///
    /// # Errors
    /// A sentence naming the setting when it is out of range.
    pub fn recovery_window_seconds(&self) -> Result<i64, String> {
        let hours = self.recovery_window_hours.unwrap_or(24);
        if !(1..=168).contains(&hours) {
            return Err(format!("escrow.recovery_window_hours must be between 1 and 168 (a week), not {hours}"));
        }
        Ok(i64::from(hours) * 3600)
    }
}

/// `[directory]`: the directory of certificates beyond the web page.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DirectorySection {
    /// `[directory.ldap]`: the read-only LDAP server of `serve` (off without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapSection>,
    /// `[directory.publish]`: publishing certificates to an existing LDAP directory
    /// (the campus Active Directory or OpenLDAP); off without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishSection>,
}

impl DirectorySection {
    fn is_empty(&self) -> bool {
        self.ldap.is_none() && self.publish.is_none()
    }
}

/// A DN as configured: `type=value` pairs separated by commas, none empty (the
/// directory itself judges the rest).
fn looks_like_dn(text: &str) -> bool {
    !text.is_empty()
        && text
            .split(',')
            .all(|rdn| rdn.split_once('=').is_some_and(|(t, v)| !t.trim().is_empty() && !v.trim().is_empty()))
}

/// `[directory.publish]` as written: where and as whom certdesk adds each current
/// certificate to its holder's entry and removes it again on revocation or expiry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PublishSection {
    /// `ldaps://dc1.example.org` or `ldap://ldap.example.org` (with `starttls`).
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub starttls: bool,
    /// Plain `ldap://` without StartTLS to a host other than loopback (the bind
    /// password then crosses the network in clear).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain: bool,
    /// The account that may write the certificate attribute, e.g.
    /// `cn=certdesk,ou=services,dc=example,dc=org`.
    pub bind_dn: String,
    /// A file holding that account's password.
    pub bind_password_file: String,
    /// Where the people's entries are searched, e.g. `ou=people,dc=example,dc=org`.
    pub base: String,
    /// The filter finding a person's one entry, `{mail}` standing for the address
    /// (escaped, RFC 4515); default `(mail={mail})`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The attribute the certificates go in: default `userCertificate;binary`
    /// (OpenLDAP); Active Directory calls it `userCertificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// PEM file of the CA certificates the directory's TLS certificate is checked
    /// against (default: the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Seconds for connecting and for each operation (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// `[directory.publish]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishConfig {
    /// The directory's URL as written (`ldap://` or `ldaps://`).
    pub url: String,
    /// StartTLS before the bind.
    pub starttls: bool,
    /// The bind DN.
    pub bind_dn: String,
    /// The file with the bind password.
    pub bind_password_file: std::path::PathBuf,
    /// The search base.
    pub base: String,
    /// The filter, with `{mail}` in it.
    pub filter: String,
    /// The certificate attribute.
    pub attribute: String,
    /// Trust anchors for TLS, when not the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Timeout of the connection and of each operation.
    pub timeout: std::time::Duration,
}

impl PublishSection {
    /// Checks the keys and fills in the defaults.
    pub fn checked(&self) -> Result<PublishConfig, String> {
        let url = self.url.trim().to_string();
        let (tls, rest) = if let Some(rest) = url.strip_prefix("ldaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ldap://") {
            (false, rest)
        } else {
            return Err(format!("directory.publish.url {url:?} must start with ldap:// or ldaps://"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        // host, host:port, [v6] or [v6]:port
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => match bracketed.split_once(']') {
                Some((host, tail)) => (host, tail.strip_prefix(':')),
                None => return Err(format!("directory.publish.url {url:?} has an unclosed [")),
            },
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(format!("directory.publish.url {url:?} has a port that is not a number"));
        }
        if host.is_empty() {
            return Err(format!("directory.publish.url {url:?} names no host"));
        }
        if tls && self.starttls {
            return Err("directory.publish.starttls is for ldap:// URLs; ldaps:// is TLS already".into());
        }
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !tls && !self.starttls && !loopback && !self.allow_plain {
            return Err(format!(
                "directory.publish.url {url:?} is plain LDAP to another host: the bind password would cross the \
                 network in clear; use ldaps://, starttls = true, or set allow_plain = true"
            ));
        }
        let base = self.base.trim().to_string();
        if !looks_like_dn(&base) {
            return Err(format!(
                "directory.publish.base {:?} is not a DN, e.g. ou=people,dc=example,dc=org",
                self.base
            ));
        }
        let bind_dn = self.bind_dn.trim().to_string();
        if !looks_like_dn(&bind_dn) {
            return Err(format!("directory.publish.bind_dn {:?} is not a DN", self.bind_dn));
        }
        let filter = self.filter.as_deref().unwrap_or("(mail={mail})").trim().to_string();
        if !(filter.starts_with('(') && filter.ends_with(')') && filter.contains("{mail}")) {
            return Err(format!(
                "directory.publish.filter {filter:?} must be an LDAP filter in parentheses with {{mail}} in it, \
                 e.g. (mail={{mail}})"
            ));
        }
        let attribute = self.attribute.as_deref().unwrap_or("userCertificate;binary").trim().to_string();
        let attribute_ok = attribute.split(';').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_alphabetic())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !attribute_ok {
            return Err(format!("directory.publish.attribute {attribute:?} is not an attribute description"));
        }
        let timeout = self.timeout_seconds.unwrap_or(10);
        if !(1..=600).contains(&timeout) {
            return Err(format!("directory.publish.timeout_seconds must be between 1 and 600, not {timeout}"));
        }
        Ok(PublishConfig {
            url,
            starttls: self.starttls,
            bind_dn,
            bind_password_file: std::path::PathBuf::from(&self.bind_password_file),
            base,
            filter,
            attribute,
            ca_file: self.ca_file.as_ref().map(std::path::PathBuf::from),
            timeout: std::time::Duration::from_secs(timeout),
        })
    }
}

/// `[directory.ldap]`: a read-only LDAPv3 server in `serve` for mail clients' address
/// books (defaults in [`LdapSection::checked`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LdapSection {
    /// The base DN the people are under, e.g. `ou=people,dc=example,dc=org`
    /// (clients are configured with it; the root DSE names it).
    pub base: String,
    /// Plain LDAP (with StartTLS when `[http]` has TLS), e.g. `127.0.0.1:389`: only on
    /// loopback unless `allow_plain` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// LDAPS (TLS from the first byte, the certificate of `[http]`), e.g. `0.0.0.0:636`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldaps_listen: Option<String>,
    /// Plain LDAP on an address other than loopback (the answers are public
    /// certificates; a bind password is never taken in clear there).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain: bool,
    /// Entries one search returns at most, paged or not (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<u32>,
    /// Seconds one search may take at most (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_seconds: Option<u64>,
    /// The DN of the one simple bind offered, e.g. `cn=addressbook,dc=example,dc=org`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// A file holding that bind's password (never the password itself here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<String>,
    /// Searches need that bind first (default: anonymous searches are answered).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_bind: bool,
    /// Seconds a connection may idle before it is closed (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
    /// Requests per minute per client (default 600; 0 turns the limit off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// Requests a client may send at once before the rate applies (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u32>,
    /// Connections at once (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Connections at once per client, an IP address or IPv6 /64 (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_client: Option<u32>,
}

/// `[directory.ldap]`, checked (the bind password is read by whoever serves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapConfig {
    /// The base DN as written.
    pub base: String,
    /// Plain listener.
    pub listen: Option<std::net::SocketAddr>,
    /// LDAPS listener.
    pub ldaps_listen: Option<std::net::SocketAddr>,
    /// Entries per search.
    pub size_limit: usize,
    /// Time per search.
    pub time_limit: std::time::Duration,
    /// The bind DN and its password file.
    pub bind: Option<(String, std::path::PathBuf)>,
    /// Searches need the bind.
    pub require_bind: bool,
    /// Idle time.
    pub idle_timeout: std::time::Duration,
    /// Requests per minute per client.
    pub per_minute: u32,
    /// Burst.
    pub burst: u32,
    /// Connections at once.
    pub max_connections: usize,
    /// Connections at once per client.
    pub max_connections_per_client: usize,
}

impl LdapSection {
    /// Checks the keys and fills in the defaults.
    pub fn checked(&self) -> Result<LdapConfig, String> {
        fn within<T: PartialOrd + std::fmt::Display + Copy>(
            key: &str,
            value: Option<T>,
            default: T,
            range: std::ops::RangeInclusive<T>,
        ) -> Result<T, String> {
            let value = value.unwrap_or(default);
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(format!("directory.ldap.{key} must be between {} and {}, not {value}", range.start(), range.end()))
            }
        }
        let address = |key: &str, text: &Option<String>| -> Result<Option<std::net::SocketAddr>, String> {
            match text {
                None => Ok(None),
                Some(text) => text
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("directory.ldap.{key} {text:?} is not an address like 127.0.0.1:389")),
            }
        };
        let base = self.base.trim().to_string();
        if !looks_like_dn(&base) {
            return Err(format!(
                "directory.ldap.base {:?} is not a DN: give the base the entries are under, e.g. \
                 ou=people,dc=example,dc=org",
                self.base
            ));
        }
        let listen = address("listen", &self.listen)?;
        let ldaps_listen = address("ldaps_listen", &self.ldaps_listen)?;
        if listen.is_none() && ldaps_listen.is_none() {
            return Err("[directory.ldap] needs listen (plain LDAP, e.g. 127.0.0.1:389) or ldaps_listen".into());
        }
        if let Some(plain) = listen {
            if !plain.ip().is_loopback() && !self.allow_plain {
                return Err(format!(
                    "directory.ldap.listen {plain} is not loopback: plain LDAP crosses the network in clear; give \
                     ldaps_listen (with [http] tls_cert and tls_key; StartTLS is offered on listen too), or set \
                     allow_plain = true"
                ));
            }
        }
        let bind = match (&self.bind_dn, &self.bind_password_file) {
            (Some(dn), Some(file)) if !dn.trim().is_empty() => {
                Some((dn.trim().to_string(), std::path::PathBuf::from(file)))
            }
            (None, None) => None,
            _ => return Err("directory.ldap.bind_dn and bind_password_file go together".into()),
        };
        if self.require_bind && bind.is_none() {
            return Err("directory.ldap.require_bind needs bind_dn and bind_password_file".into());
        }
        let seconds = std::time::Duration::from_secs;
        Ok(LdapConfig {
            base,
            listen,
            ldaps_listen,
            size_limit: within("size_limit", self.size_limit, 100, 1..=100_000)? as usize,
            time_limit: seconds(within("time_limit_seconds", self.time_limit_seconds, 10, 1..=600)?),
            bind,
            require_bind: self.require_bind,
            idle_timeout: seconds(within("idle_timeout_seconds", self.idle_timeout_seconds, 300, 1..=86_400)?),
            per_minute: within("rate_limit_per_minute", self.rate_limit_per_minute, 600, 0..=1_000_000)?,
            burst: within("rate_limit_burst", self.rate_limit_burst, 100, 1..=100_000)?,
            max_connections: within("max_connections", self.max_connections, 1024, 1..=1_000_000)? as usize,
            max_connections_per_client: within(
                "max_connections_per_client",
                self.max_connections_per_client,
                16,
                1..=1_000_000,
            )? as usize,
        })
    }
}

/// `[http]`: the timeouts and connection limits of `serve`'s listener (defaults in
/// [`HttpSection::checked`]). They bound what slow or hoarding clients can hold: a
/// connection that sends half a header is closed after `header_timeout_seconds`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Seconds for a request's header, and for an idle keep-alive connection's next
    /// request (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_timeout_seconds: Option<u64>,
    /// Seconds for a request's whole body (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_timeout_seconds: Option<u64>,
    /// Connections at once (default 4096).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Connections at once from one client, an IP address or IPv6 /64; the
    /// `[portal] trusted_proxies` are not limited this way (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_client: Option<u32>,
    /// Seconds requests in flight get to finish when `serve` is stopped (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_seconds: Option<u64>,
    /// HTTPS: the certificate chain (PEM, leaf first), reloaded when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    /// HTTPS: the certificate's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    /// With HTTPS: a second, plain-HTTP listener (e.g. `0.0.0.0:80`) for the CRL, OCSP
    /// and CA certificates, which relying parties fetch over http:// (RFC 5280, RFC 6960).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_listen: Option<String>,
    /// `GET /metrics` on its own plain-HTTP listener (e.g. `127.0.0.1:9100`) instead of
    /// the main one, for a scraper on an internal network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
}

/// `[http]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Header (and keep-alive idle) time.
    pub header_timeout: std::time::Duration,
    /// Body time.
    pub body_timeout: std::time::Duration,
    /// Connections at once.
    pub max_connections: usize,
    /// Connections at once per client.
    pub max_connections_per_client: usize,
    /// Shutdown grace.
    pub shutdown_grace: std::time::Duration,
}

impl HttpSection {
    /// Checks the keys and fills in the defaults.
    pub fn checked(&self) -> Result<HttpSettings, String> {
        fn within<T: PartialOrd + std::fmt::Display + Copy>(
            key: &str,
            value: Option<T>,
            default: T,
            range: std::ops::RangeInclusive<T>,
        ) -> Result<T, String> {
            let value = value.unwrap_or(default);
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(format!("http.{key} must be between {} and {}, not {value}", range.start(), range.end()))
            }
        }
        let seconds = std::time::Duration::from_secs;
        Ok(HttpSettings {
            header_timeout: seconds(within("header_timeout_seconds", self.header_timeout_seconds, 10, 1..=600)?),
            body_timeout: seconds(within("body_timeout_seconds", self.body_timeout_seconds, 30, 1..=600)?),
            max_connections: within("max_connections", self.max_connections, 4096, 1..=1_000_000)? as usize,
            max_connections_per_client: within(
                "max_connections_per_client",
                self.max_connections_per_client,
                64,
                1..=1_000_000,
            )? as usize,
            shutdown_grace: seconds(within("shutdown_grace_seconds", self.shutdown_grace_seconds, 30, 0..=3600)?),
        })
    }
}

/// `[audit]`: who gets the audit log's head (SEQ:HASH) by mail, and how often. A copy
/// the CA machine cannot rewrite is what shows records cut off the end of the log
/// (`certdesk audit verify --checkpoint SEQ:HASH`, see the desk's `checkpoint`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Auditors' addresses (empty: no checkpoint mails).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_to: Vec<String>,
    /// Hours between checkpoint mails, 1 to 168 (default 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_hours: Option<u32>,
    /// Language of the checkpoint mails, `en` or `de` (default `en`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_language: Option<String>,
}

/// `[audit]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSettings {
    /// The auditors (empty: off).
    /// (Mailbox syntax checked here; the desk parses them again as it sends.)
    pub to: Vec<String>,
    /// Seconds between checkpoint mails.
    pub period_seconds: i64,
    /// The language of the mails.
    pub lang: crate::mail_settings::Lang,
}

/// `[portal]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortalSection {
    /// The portal's public URL for links in mails (default: `ca.base_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Mail domains whose owners may apply (e.g. `["example.org"]`); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,
    /// Profiles applicants may choose (default: sponsor-strict, sponsor-multipurpose, private).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// The organisation's time zone for pages and mails, an IANA name such as
    /// `Europe/Berlin` (default: the system's zone, else UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// `[portal.oidc]`: single sign-on through an OpenID Connect provider (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<crate::oidc_settings::OidcSection>,
    /// Form posts, API calls that change something and directory searches one client (an
    /// IP address; IPv6 by /64) may make per minute, 0 for no limit (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// How many of those may come at once before the per-minute rate applies (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u32>,
    /// Reverse proxies in front of `serve` (IP addresses) whose `X-Forwarded-For` names
    /// the client; from any other peer the header is ignored (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

/// `[portal]`'s request limit, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Requests per minute per client (0: off).
    pub per_minute: u32,
    /// Requests at once.
    pub burst: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl PortalSection {
    /// Checks the request-limit keys.
    pub fn rate_limit(&self) -> Result<RateLimitSettings, String> {
        let per_minute = self.rate_limit_per_minute.unwrap_or(60);
        if per_minute > 100_000 {
            return Err(format!("portal.rate_limit_per_minute must be at most 100000, not {per_minute}"));
        }
        let burst = self.rate_limit_burst.unwrap_or(30);
        if !(1..=10_000).contains(&burst) {
            return Err(format!("portal.rate_limit_burst must be between 1 and 10000, not {burst}"));
        }
        let mut trusted_proxies = Vec::with_capacity(self.trusted_proxies.len());
        for text in &self.trusted_proxies {
            let ip =
                text.trim().parse().map_err(|_| format!("portal.trusted_proxies: {text:?} is not an IP address"))?;
            trusted_proxies.push(ip);
        }
        Ok(RateLimitSettings { per_minute, burst, trusted_proxies })
    }
}

/// `[ca]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// organizationName of the sponsor (the organisation).
    pub organization: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// organizationIdentifier (BR 7.1.4.2.2 (d)), e.g. `VATDE-123456789`; required by
    /// the sponsor-validated BR profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_identifier: Option<String>,
    /// Public base URL for CRL, OCSP and CA-certificate links, e.g. `http://pki.example.org`.
    pub base_url: String,
    /// The organisation's own certificate-policy OID for the `private` profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_policy_oid: Option<String>,
    /// CAA checking of every mailbox domain before issuance (S/MIME BR 3.2.2.3, RFC 9495
    /// `issuemail`): `check` or `off` (default `off`; publicly-trusted CAs must check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caa: Option<String>,
    /// The issuer domains that name this CA in `issuemail` records, as disclosed in its
    /// CPS (default: the host of `base_url`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// Recursive DNS resolvers for CAA lookups, `IP` or `IP:PORT`, ideally a validating
    /// one next to the CA (default: the nameservers of /etc/resolv.conf).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_resolvers: Vec<String>,
    /// The root and issuing CA sign with RSASSA-PSS (SHA-256, BR 7.1.3.2) instead of
    /// RSA PKCS#1 v1.5; RSA CA keys only. Set by `init --rsa-pss`; never change it later
    /// (the issuing CA certificate's own signature says what the root used).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rsa_pss: bool,
}

/// `[ca] caa`, checked: who this CA is in `issuemail` records and whom to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaSettings {
    /// Issuer domains naming this CA (lower case).
    pub identities: Vec<String>,
    /// Resolvers (empty: /etc/resolv.conf).
    pub resolvers: Vec<std::net::SocketAddr>,
}

/// `[profiles.NAME]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    /// Validity in days.
    pub validity_days: u32,
}

/// `[pkcs12]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs12Section {
    /// PBKDF2 iterations for new .p12 files.
    #[serde(default = "default_iterations")]
    pub iterations: u32,
}

impl Default for Pkcs12Section {
    fn default() -> Self {
        Self { iterations: default_iterations() }
    }
}

fn default_iterations() -> u32 {
    600_000
}

/// `[database]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://...` or `postgres://...`; default: `certdesk.db` in the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A configuration whose values have been checked.
#[derive(Clone, Debug)]
pub struct ValidatedConfig {
    /// The raw config (for writing back).
    pub raw: Config,
    /// The organisation.
    pub organization: Organization,
    /// Where CRL, OCSP and CA certificate are published.
    pub urls: PublicationUrls,
    /// Where the root's CRL of CA certificates is published (`BASE/crl/root.crl`), named
    /// in the issuing CA certificate.
    pub root_crl_url: String,
    /// Each profile with its validity.
    pub profiles: BTreeMap<&'static str, SubscriberProfile>,
    /// PBKDF2 iterations for .p12 files.
    pub pkcs12_iterations: u32,
    /// The audit checkpoint mails.
    pub checkpoints: CheckpointSettings,
    /// How long agents have to give their shares to an open key recovery (seconds).
    pub recovery_window_seconds: i64,
    /// CAA checking before issuance (`None`: off).
    pub caa: Option<CaaSettings>,
    /// Why the base URL cannot go into CA/B Forum certificates (an internal name such as
    /// `localhost`), `None` when it is public.
    pub internal_base: Option<String>,
    /// The organisation's time zone (`[portal] time_zone`, else the system's).
    pub zone: crate::zone::OrgZone,
}

impl Config {
    /// Parses TOML.
    /// An error names the line and column and what is wrong, but never quotes the line
    /// (it may hold a secret written where it does not belong).
    pub fn from_toml(text: &str) -> Result<Self, DomainError> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| {
                let before = text.get(..span.start).unwrap_or_default();
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(" at line {line}, column {column}")
            });
            DomainError::new(
                ErrorCode::Config,
                format!("the configuration is invalid{}: {}", at.unwrap_or_default(), e.message().trim_end()),
            )
        })
    }

    /// Writes TOML.
    pub fn to_toml(&self) -> Result<String, DomainError> {
        toml::to_string_pretty(self).map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
    }

    /// Checks every value.
    pub fn validate(self) -> Result<ValidatedConfig, DomainError> {
        let bad = |msg: String| DomainError::new(ErrorCode::Config, msg);
        let organization =
            Organization::new(&self.ca.organization, &self.ca.country, self.ca.organization_identifier.as_deref())
                .map_err(|e| bad(e.to_string()))?;
        let base = self.ca.base_url.trim_end_matches('/');
        let base_host = match certdesk_pki::lint::internet::HttpUri::parse(base) {
            Ok(uri) => uri.host,
            Err(e) => {
                return Err(bad(format!(
                    "ca.base_url {:?} is not a base URL certdesk can publish under: {e}; give a plain \
                     http://host[:port][/path], e.g. http://pki.example.org",
                    self.ca.base_url
                )))
            }
        };
        // BR certificates name public hosts only (BR 1.6.1 Internal Name, 7.1.2.3).
        let internal_base = certdesk_pki::lint::internet::public_host(&base_host).err().map(|why| {
            format!(
                "ca.base_url {base} names {base_host}, which is {why}; CA/B Forum certificates name public \
                 CRL and OCSP URLs only (BR 1.6.1, 7.1.2.3): set a public base URL (init --base-url, or [ca] \
                 base_url in certdesk.toml), e.g. http://pki.your-domain.org"
            )
        });
        let urls = PublicationUrls {
            crl: format!("{base}/crl/issuing.crl"),
            ca_issuers: format!("{base}/ca/issuing.crt"),
            ocsp: format!("{base}/ocsp"),
        };
        let root_crl_url = format!("{base}/crl/root.crl");
        let private_policy = match &self.ca.private_policy_oid {
            None => None,
            Some(text) => Some(
                const_oid::ObjectIdentifier::new(text)
                    .map_err(|_| bad(format!("ca.private_policy_oid {text:?} is not an OID")))?,
            ),
        };
        for name in self.profiles.keys() {
            if ProfileId::ALL.iter().all(|p| p.name() != name) {
                return Err(bad(format!("[profiles.{name}] is not a profile")));
            }
        }
        let mut profiles = BTreeMap::new();
        for id in ProfileId::ALL {
            let days =
                self.profiles.get(id.name()).map(|p| p.validity_days).unwrap_or_else(|| id.default_validity_days());
            let profile = SubscriberProfile::new(id, days, private_policy).map_err(|e| bad(e.to_string()))?;
            profiles.insert(id.name(), profile);
        }
        if !(10_000..=10_000_000).contains(&self.pkcs12.iterations) {
            return Err(bad("pkcs12.iterations must be between 10000 and 10000000".into()));
        }
        if let Some(url) = &self.database.url {
            let known = ["sqlite:", "postgres://", "postgresql://"].iter().any(|p| url.starts_with(p));
            if !known {
                return Err(bad("database.url must start with sqlite: or postgres://".into()));
            }
        }
        if let Some(oidc) = &self.portal.oidc {
            oidc.check().map_err(bad)?;
        }
        self.portal.rate_limit().map_err(bad)?;
        self.http.checked().map_err(bad)?;
        if let Some(ldap) = &self.directory.ldap {
            ldap.checked().map_err(bad)?;
        }
        if let Some(publish) = &self.directory.publish {
            publish.checked().map_err(bad)?;
        }
        let checkpoints = self.audit.check().map_err(bad)?;
        let recovery_window_seconds = self.escrow.recovery_window_seconds().map_err(bad)?;
        let caa = self.ca.caa_settings().map_err(bad)?;
        let pkcs12_iterations = self.pkcs12.iterations;
        let zone = crate::zone::OrgZone::from_setting(self.portal.time_zone.as_deref()).map_err(bad)?;
        Ok(ValidatedConfig {
            raw: self,
            organization,
            urls,
            root_crl_url,
            profiles,
            pkcs12_iterations,
            checkpoints,
            recovery_window_seconds,
            caa,
            internal_base,
            zone,
        })
    }
}

impl CaSection {
    /// Checks the CAA keys.
    pub fn caa_settings(&self) -> Result<Option<CaaSettings>, String> {
        match self.caa.as_deref() {
            None | Some("off") => return Ok(None),
            Some("check") => {}
            Some(other) => return Err(format!("ca.caa must be check or off, not {other:?}")),
        }
        let mut identities = Vec::new();
        for identity in &self.caa_identities {
            let domain = identity.trim().to_ascii_lowercase();
            if crate::caa_syntax::issuer_domain(domain.as_bytes()) != Some(Some(domain.clone())) {
                return Err(format!("ca.caa_identities: {identity:?} is not a domain name"));
            }
            identities.push(domain);
        }
        if identities.is_empty() {
            let host = self
                .base_url
                .trim_start_matches("http://")
                .split(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if crate::caa_syntax::issuer_domain(host.as_bytes()) != Some(Some(host.clone())) {
                return Err("ca.caa = \"check\" needs ca.caa_identities (the host of ca.base_url is no domain)".into());
            }
            identities.push(host);
        }
        let mut resolvers = Vec::new();
        for text in &self.caa_resolvers {
            let text = text.trim();
            let address = text
                .parse::<std::net::SocketAddr>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| std::net::SocketAddr::new(ip, 53)))
                .map_err(|_| format!("ca.caa_resolvers: {text:?} is not IP or IP:PORT"))?;
            resolvers.push(address);
        }
        Ok(Some(CaaSettings { identities, resolvers }))
    }
}

impl AuditSection {
    /// Checks the section.
    pub fn check(&self) -> Result<CheckpointSettings, String> {
        let mut to = Vec::with_capacity(self.checkpoint_to.len());
        for address in &self.checkpoint_to {
            let parsed = certdesk_pki::subject::EmailAddress::parse(address.trim())
                .map_err(|e| format!("audit.checkpoint_to {address:?} is not a mail address: {e}"))?;
            to.push(parsed.as_str().to_string());
        }
        let hours = self.checkpoint_hours.unwrap_or(24);
        if !(1..=168).contains(&hours) {
            return Err(format!("audit.checkpoint_hours must be between 1 and 168 (a week), not {hours}"));
        }
        let lang = match self.checkpoint_language.as_deref() {
            None | Some("en") => crate::mail_settings::Lang::En,
            Some("de") => crate::mail_settings::Lang::De,
            Some(other) => return Err(format!("audit.checkpoint_language must be en or de, not {other:?}")),
        };
        Ok(CheckpointSettings { to, period_seconds: i64::from(hours) * 3600, lang })
    }
}

impl ValidatedConfig {
    /// The profile with its configured validity.
    pub fn profile(&self, id: ProfileId) -> Result<&SubscriberProfile, DomainError> {
        self.profiles
            .get(id.name())
            .ok_or_else(|| DomainError::new(ErrorCode::Config, format!("profile {id} is not configured")))
    }

    /// A profile as issuance uses it: this configuration's, with the validity an
    /// administrator set on the portal (`overrides`: profile name, days; kept by the
    /// store) if any.
    pub fn profile_with(&self, id: ProfileId, overrides: &[(String, i64)]) -> Result<SubscriberProfile, DomainError> {
        let configured = self.profile(id)?;
        match overrides.iter().find(|(name, _)| name == id.name()) {
            Some((_, days)) => configured
                .with_validity(u32::try_from(*days).unwrap_or(0))
                .map_err(|e| DomainError::new(ErrorCode::Config, format!("the validity set on the portal: {e}"))),
            None => Ok(configured.clone()),
        }
    }

    /// Why this CA cannot issue under `id`, `None` when it can: the CA/B Forum profiles
    /// need a public base URL, the sponsor-validated ones also the organisation's
    /// organizationIdentifier (BR 7.1.4.2.2 (d)).
    pub fn profile_unavailable(&self, id: ProfileId) -> Option<String> {
        id.br_policy_oid()?;
        if id.names_the_person() && self.organization.identifier.is_none() {
            return Some(
                "sponsor-validated certificates carry the organisation's organizationIdentifier (BR 7.1.4.2.2 \
                 (d)) and this CA has none: set [ca] organization_identifier in certdesk.toml (init --org-id), \
                 e.g. VATDE-123456789"
                    .to_string(),
            );
        }
        self.internal_base.clone()
    }

    /// The profile `certdesk issue` uses when none is named: the first this CA can issue
    /// of sponsor-strict (staff certificates), mailbox-strict and private.
    pub fn default_profile(&self) -> ProfileId {
        [ProfileId::SponsorStrict, ProfileId::MailboxStrict]
            .into_iter()
            .find(|id| self.profile_unavailable(*id).is_none())
            .unwrap_or(ProfileId::Private)
    }

    /// Every profile with the validity issuance uses under `overrides`: (profile, days,
    /// whether it was set on the portal).
    pub fn profile_settings(&self, overrides: &[(String, i64)]) -> Vec<(ProfileId, u32, bool)> {
        let mut out = Vec::new();
        for id in ProfileId::ALL {
            if let Ok(profile) = self.profile_with(id, overrides) {
                let set = overrides.iter().any(|(name, _)| name == id.name());
                out.push((id, profile.validity_days(), set));
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[ca]
organization = "Example University"
country = "DE"
organization_identifier = "VATDE-123456789"
base_url = "http://pki.example.org/"

[profiles.private]
validity_days = 1095
"#;

    #[test]
    fn directory_publish_is_checked() {
        let with = |keys: &str| {
            let text = format!(
                "{GOOD}\n[directory.publish]\nbind_dn = \"cn=certdesk,dc=example,dc=org\"\n\
                 bind_password_file = \"pw\"\nbase = \"ou=people,dc=example,dc=org\"\n{keys}\n"
            );
            Config::from_toml(&text).unwrap().validate().map(|_| ()).map_err(|e| e.to_string())
        };
        with("url = \"ldaps://dc1.example.org\"").unwrap();
        with("url = \"ldap://ldap.example.org:389\"\nstarttls = true").unwrap();
        with("url = \"ldap://127.0.0.1:3389\"").unwrap();
        with("url = \"ldap://[::1]:3389\"").unwrap();
        let plain = with("url = \"ldap://ldap.example.org\"").unwrap_err();
        assert!(plain.contains("would cross the network in clear; use ldaps://"), "{plain}");
        with("url = \"ldap://ldap.example.org\"\nallow_plain = true").unwrap();
        assert!(with("url = \"http://x\"").unwrap_err().contains("ldap:// or ldaps://"));
        assert!(with("url = \"ldaps://x:port\"").unwrap_err().contains("not a number"));
        assert!(with("url = \"ldaps://x\"\nstarttls = true").unwrap_err().contains("TLS already"));
        assert!(with("url = \"ldaps://x\"\nfilter = \"(uid=jane)\"")
            .unwrap_err()
            .contains("with {mail} in it, e.g. (mail={mail})"));
        assert!(with("url = \"ldaps://x\"\nattribute = \"user cert\"").unwrap_err().contains("attribute"));
        assert!(with("url = \"ldaps://x\"\ntimeout_seconds = 0").unwrap_err().contains("timeout_seconds"));
        let checked = Config::from_toml(&format!(
            "{GOOD}\n[directory.publish]\nurl = \"ldaps://dc1\"\nbind_dn = \"cn=a,dc=b\"\n\
             bind_password_file = \"pw\"\nbase = \"dc=b\"\n"
        ))
        .unwrap()
        .directory
        .publish
        .unwrap()
        .checked()
        .unwrap();
        assert_eq!((checked.filter.as_str(), checked.attribute.as_str()), ("(mail={mail})", "userCertificate;binary"));
    }

    #[test]
    fn good_config_validates_with_defaults() {
        let config = Config::from_toml(GOOD).unwrap().validate().unwrap();
        assert_eq!(config.urls.crl, "http://pki.example.org/crl/issuing.crl");
        assert_eq!(config.profile(ProfileId::SponsorStrict).unwrap().validity_days(), 730);
        assert_eq!(config.profile(ProfileId::Private).unwrap().validity_days(), 1095);
        assert_eq!(config.pkcs12_iterations, 600_000);
        assert!(ProfileId::ALL.iter().all(|id| config.profile_unavailable(*id).is_none()));
        assert_eq!(config.default_profile(), ProfileId::SponsorStrict);
        assert_eq!(config.recovery_window_seconds, 24 * 3600);
    }

    #[test]
    fn the_recovery_window_is_read_and_checked() {
        let with = |hours: &str| {
            Config::from_toml(&format!(
                "{GOOD}
[escrow]
recovery_window_hours = {hours}
"
            ))
        };
        assert_eq!(with("8").unwrap().validate().unwrap().recovery_window_seconds, 8 * 3600);
        for bad in ["0", "169"] {
            let err = with(bad).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains("escrow.recovery_window_hours must be between 1 and 168"), "{err}");
        }
        assert!(with("-1").is_err());
        assert!(
            Config::from_toml(&format!(
                "{GOOD}
[escrow]
window = 1
"
            ))
            .is_err(),
            "unknown key"
        );
        // Written back only when set.
        let default = Config::from_toml(GOOD).unwrap().to_toml().unwrap();
        assert!(!default.contains("[escrow]"), "{default}");
        assert!(with("8").unwrap().to_toml().unwrap().contains("recovery_window_hours = 8"));
    }

    #[test]
    fn the_time_zone_is_read_and_an_unknown_one_refused() {
        let berlin = format!("{GOOD}\n[portal]\ntime_zone = \"Europe/Berlin\"\n");
        let config = Config::from_toml(&berlin).unwrap().validate().unwrap();
        assert_eq!(config.zone.name(), "Europe/Berlin");
        let atlantis = berlin.replace("Europe/Berlin", "Europe/Atlantis");
        let err = Config::from_toml(&atlantis).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("portal.time_zone \"Europe/Atlantis\""), "{err}");
    }

    #[test]
    fn profiles_a_ca_cannot_issue_say_why() {
        let local = GOOD.replace("http://pki.example.org/", "http://localhost:8080");
        let config = Config::from_toml(&local).unwrap().validate().unwrap();
        let why = config.profile_unavailable(ProfileId::SponsorStrict).unwrap();
        assert!(why.contains("localhost") && why.contains("public base URL"), "{why}");
        assert!(config.profile_unavailable(ProfileId::MailboxStrict).is_some());
        assert!(config.profile_unavailable(ProfileId::Private).is_none());
        assert_eq!(config.default_profile(), ProfileId::Private);
        let no_id = GOOD.replace("organization_identifier = \"VATDE-123456789\"\n", "");
        let config = Config::from_toml(&no_id).unwrap().validate().unwrap();
        assert!(config.profile_unavailable(ProfileId::SponsorStrict).unwrap().contains("organizationIdentifier"));
        assert!(config.profile_unavailable(ProfileId::MailboxStrict).is_none());
        assert_eq!(config.default_profile(), ProfileId::MailboxStrict);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Config::from_toml(&format!("{GOOD}\n[extra]\nx = 1\n")).is_err());
        let too_long =
            GOOD.replace("[profiles.private]", "[profiles.sponsor-strict]\nvalidity_days = 900\n[profiles.private]");
        assert!(Config::from_toml(&too_long).unwrap().validate().is_err());
        let https = GOOD.replace("http://pki", "https://pki");
        assert!(Config::from_toml(&https).unwrap().validate().is_err());
        for (url, why) in [
            ("http://pki.example.org/?x=1", "query"),
            ("http://pki.example.org/#x", "fragment"),
            ("http://u:p@pki.example.org/", "user information"),
            ("http://pki example.org/", "host"),
        ] {
            let text = GOOD.replace("http://pki.example.org/", url);
            let err = Config::from_toml(&text).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        let bad_profile = GOOD.replace("[profiles.private]", "[profiles.gold]\nvalidity_days = 1\n[profiles.private]");
        assert!(Config::from_toml(&bad_profile).unwrap().validate().is_err());
    }
}
