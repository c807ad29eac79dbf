//! Publishing certificates to an existing LDAP directory (issue 16, `[directory.publish]`):
//! the campus Active Directory or OpenLDAP, where mail clients already look.
//!
//! One pass ([`Publisher::run_once`]) brings the directory to what certdesk's own
//! directory lists (the store's one query and [`crate::directory::listable`]): each
//! listed certificate not yet published is added as one more value of the certificate
//! attribute of its holder's one entry; each published certificate no longer listed
//! (revoked, expired) is removed from the entry it was added to, that value only, never
//! the person's other certificates (some of them from other CAs); when that entry no
//! longer holds it (renamed or moved since: a name change, another department), from
//! the holder's one entry found by mail now. Each publication and
//! removal is recorded with its audit record in one transaction, after the directory
//! said yes.
//!
//! Crash-safe by being idempotent: a pass killed after the directory changed but before
//! the record is written does the change again on the next pass, and the directory's
//! `attributeOrValueExists` (adding a value that is there) and `noSuchAttribute` (removing
//! one that is not) count as done. A failure (no entry for the address, the directory
//! down, refused) is reported and retried on a later pass, backing off per certificate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ldap3::{LdapConnAsync, LdapConnSettings, Mod, Scope};
use serde_json::json;
use zeroize::Zeroizing;

use certdesk_core::audit::{seal, AuditEvent};
use certdesk_core::config::PublishConfig;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_store::{Publication, Store};

/// LDAP result codes a publication treats as done (RFC 4511 appendix A).
const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
const NO_SUCH_ATTRIBUTE: u32 = 16;
const NO_SUCH_OBJECT: u32 = 32;

/// The longest a failed certificate waits before the next attempt.
const MAX_BACKOFF_SECONDS: i64 = 3600;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Certificates added to an entry: (serial, DN).
    pub published: Vec<(String, String)>,
    /// Certificates removed from an entry: (serial, DN).
    pub removed: Vec<(String, String)>,
    /// Certificates that could not be published or removed this time: (serial, why).
    pub failed: Vec<(String, String)>,
    /// Certificates skipped because an earlier failure's back-off has not passed.
    pub deferred: usize,
}

impl PublishReport {
    /// True when nothing had to change.
    pub fn is_empty(&self) -> bool {
        self.published.is_empty() && self.removed.is_empty() && self.failed.is_empty() && self.deferred == 0
    }
}

/// Publishes to one directory; keeps the back-off of failed certificates between
/// passes.
pub struct Publisher {
    config: PublishConfig,
    password: Zeroizing<String>,
    tls: Arc<rustls::ClientConfig>,
    /// serial -> (failures in a row, not before).
    backoff: Mutex<HashMap<String, (u32, i64)>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("url", &self.config.url).field("bind_dn", &self.config.bind_dn).finish()
    }
}

/// A change the pass makes.
enum Change {
    Add { serial: String, email: String, der: Vec<u8> },
    Remove { publication: Publication, der: Option<Vec<u8>>, why: &'static str },
}

impl Change {
    fn serial(&self) -> &str {
        match self {
            Change::Add { serial, .. } => serial,
            Change::Remove { publication, .. } => &publication.serial,
        }
    }
}

impl Publisher {
    /// A publisher for `config`, whose bind password is `password`; the TLS trust
    /// anchors are `config.ca_file`'s certificates (PEM), else the system's.
    pub fn new(config: PublishConfig, password: Zeroizing<String>) -> Result<Self, DomainError> {
        let bad = |why: String| DomainError::new(ErrorCode::Config, why);
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| bad(format!("directory.publish.ca_file {}: {e}", path.display())))?;
                let certificates = certdesk_pki::pem::decode_labelled(&pem, &["CERTIFICATE"]).map_err(|e| {
                    bad(format!("directory.publish.ca_file {} holds no PEM certificate: {e}", path.display()))
                })?;
                for der in certificates {
                    roots.add(rustls::pki_types::CertificateDer::from(der)).map_err(|e| {
                        bad(format!("directory.publish.ca_file {}: a certificate is not usable: {e}", path.display()))
                    })?;
                }
            }
            None => {
                for der in rustls_native_certs::load_native_certs().certs {
                    // A system certificate rustls cannot use is left out, as browsers do.
                    let _ = roots.add(der);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS for the directory: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { config, password, tls: Arc::new(tls), backoff: Mutex::new(HashMap::new()) })
    }

    /// The directory's URL (for messages).
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// One pass at `now`: adds what is listed and not published, removes what is
    /// published and not listed. Connects only when something is to change. An error
    /// is returned when the directory cannot be reached or bound to (nothing changed);
    /// failures of single certificates are in the report.
    pub async fn run_once(&self, store: &Store, now: i64, actor: &str) -> Result<PublishReport, DomainError> {
        let listed: Vec<_> = store
            .directory_certificates(now, None)
            .await?
            .into_iter()
            .filter(|c| crate::directory::listable(c, now))
            .collect();
        let published = store.directory_publications().await?;
        let published_serials: HashSet<&str> = published.iter().map(|p| p.serial.as_str()).collect();
        let listed_serials: HashSet<&str> = listed.iter().map(|c| c.serial.as_str()).collect();
        let mut changes = Vec::new();
        for cert in &listed {
            if !published_serials.contains(cert.serial.as_str()) {
                changes.push(Change::Add {
                    serial: cert.serial.to_string(),
                    email: cert.email.clone(),
                    der: cert.der.clone(),
                });
            }
        }
        for publication in published {
            if listed_serials.contains(publication.serial.as_str()) {
                continue;
            }
            let record = store.certificate(&publication.serial).await?;
            let why = match &record {
                Some(c) if c.revoked_at.is_some() => "revoked",
                Some(c) if c.not_after < now => "expired",
                Some(_) => "no longer listed",
                None => "not in the store",
            };
            changes.push(Change::Remove { der: record.map(|c| c.der), publication, why });
        }
        let mut report = PublishReport::default();
        let due: Vec<Change> = {
            let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            changes
                .into_iter()
                .filter(|change| match backoff.get(change.serial()) {
                    Some((_, not_before)) if *not_before > now => {
                        report.deferred += 1;
                        false
                    }
                    _ => true,
                })
                .collect()
        };
        if due.is_empty() {
            return Ok(report);
        }
        let mut ldap = self.connect().await?;
        for change in due {
            let serial = change.serial().to_string();
            let outcome = match change {
                Change::Add { serial, email, der } => self.add(&mut ldap, store, now, actor, serial, email, der).await,
                Change::Remove { publication, der, why } => {
                    self.remove(&mut ldap, store, now, actor, publication, der, why).await
                }
            };
            match outcome {
                Ok(Done::Published(dn)) => report.published.push((serial.clone(), dn)),
                Ok(Done::Removed(dn)) => report.removed.push((serial.clone(), dn)),
                Err(why) => {
                    self.failed(&serial, now);
                    report.failed.push((serial, why));
                    continue;
                }
            }
            self.backoff.lock().unwrap_or_else(|p| p.into_inner()).remove(&serial);
        }
        let _ = ldap.unbind().await;
        Ok(report)
    }

    /// Backs a failed certificate off: one minute, doubling, at most an hour.
    fn failed(&self, serial: &str, now: i64) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = backoff.entry(serial.to_string()).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        let wait = 60i64.saturating_mul(1i64 << entry.0.min(7).saturating_sub(1)).min(MAX_BACKOFF_SECONDS);
        entry.1 = now.saturating_add(wait);
    }

    async fn connect(&self) -> Result<ldap3::Ldap, DomainError> {
        let unreachable =
            |why: String| DomainError::new(ErrorCode::Internal, format!("directory {}: {why}", self.config.url));
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_starttls(self.config.starttls)
            .set_config(self.tls.clone());
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|e| unreachable(format!("cannot connect: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::warn!(target: "certdesk::publish", "LDAP connection to the directory ended: {e}");
            }
        });
        let bound = ldap
            .with_timeout(self.config.timeout)
            .simple_bind(&self.config.bind_dn, &self.password)
            .await
            .map_err(|e| unreachable(format!("bind as {}: {e}", self.config.bind_dn)))?;
        if bound.rc != 0 {
            return Err(unreachable(format!(
                "bind as {} refused: {}",
                self.config.bind_dn,
                describe(bound.rc, &bound.text)
            )));
        }
        Ok(ldap)
    }

    /// The one entry of `email`.
    async fn entry_of(&self, ldap: &mut ldap3::Ldap, email: &str) -> Result<String, String> {
        let filter = self.config.filter.replace("{mail}", &ldap3::ldap_escape(email));
        let mut dns = self.entries_of(ldap, email).await?;
        match dns.len() {
            1 => Ok(dns.remove(0)),
            0 => Err(format!("no entry for {email} under {} ({filter})", self.config.base)),
            n => {
                Err(format!("{n} entries for {email} under {} ({filter}); the filter must find one", self.config.base))
            }
        }
    }

    /// The DNs of the entries of `email`; an error when the search fails.
    async fn entries_of(&self, ldap: &mut ldap3::Ldap, email: &str) -> Result<Vec<String>, String> {
        let filter = self.config.filter.replace("{mail}", &ldap3::ldap_escape(email));
        let (entries, result) = ldap
            .with_timeout(self.config.timeout)
            .search(&self.config.base, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .map_err(|e| format!("search {filter}: {e}"))?
            .non_error()
            .map_err(|e| format!("search {filter}: {e}"))?;
        if result.rc != 0 {
            return Err(format!("search {filter}: {}", describe(result.rc, &result.text)));
        }
        // Continuation references (Active Directory sends them for its partitions) and
        // intermediate messages are no entries; an entry that does not decode is an
        // error, never a panic (ldap3's SearchEntry::construct would panic on it).
        let mut dns = Vec::new();
        for entry in entries.iter().filter(|e| !e.is_ref() && !e.is_intermediate()) {
            dns.push(
                entry_dn(entry)
                    .ok_or_else(|| format!("search {filter}: the directory sent an entry that does not decode"))?,
            );
        }
        Ok(dns)
    }

    #[allow(clippy::too_many_arguments)]
    async fn add(
        &self,
        ldap: &mut ldap3::Ldap,
        store: &Store,
        now: i64,
        actor: &str,
        serial: String,
        email: String,
        der: Vec<u8>,
    ) -> Result<Done, String> {
        let dn = self.entry_of(ldap, &email).await?;
        let attribute = self.config.attribute.clone();
        let result = ldap
            .with_timeout(self.config.timeout)
            .modify(&dn, vec![Mod::Add(attribute.clone().into_bytes(), HashSet::from([der]))])
            .await
            .map_err(|e| format!("add to {dn}: {e}"))?;
        if result.rc != 0 && result.rc != ATTRIBUTE_OR_VALUE_EXISTS {
            return Err(format!("add to {dn}: {}", describe(result.rc, &result.text)));
        }
        let publication = Publication { serial: serial.clone(), email, dn: dn.clone(), attribute };
        let event = AuditEvent {
            actor: actor.to_string(),
            action: "directory.publish",
            subject: serial,
            details: json!({ "directory": self.config.url, "dn": dn, "attribute": publication.attribute }),
        };
        store
            .record_publication(&publication, now, &|seq, prev| seal(&event, now, seq, prev))
            .await
            .map_err(|e| format!("published to {dn}, but not recorded (done again next time): {e}"))?;
        Ok(Done::Published(dn))
    }

    #[allow(clippy::too_many_arguments)]
    async fn remove(
        &self,
        ldap: &mut ldap3::Ldap,
        store: &Store,
        now: i64,
        actor: &str,
        publication: Publication,
        der: Option<Vec<u8>>,
        why: &'static str,
    ) -> Result<Done, String> {
        let mut dn = publication.dn.clone();
        let mut moved_from = None;
        // Without the certificate there is no value to remove; only the record goes.
        let outcome = match der {
            Some(der) => {
                let outcome = self.delete_value(ldap, &dn, &publication.attribute, &der).await?;
                if outcome != "the entry is gone" {
                    outcome
                } else {
                    // No entry at the DN it was added to: the entry may have been renamed
                    // or moved since (a name change, another department); the holder's
                    // entry now, when it is one other entry, is where the value went.
                    let now_at = self.entries_of(ldap, &publication.email).await?;
                    match now_at.as_slice() {
                        [other] if same_dn(other, &dn) => outcome,
                        [other] => {
                            let there = self.delete_value(ldap, other, &publication.attribute, &der).await?;
                            moved_from = Some(std::mem::replace(&mut dn, other.clone()));
                            match there {
                                "removed" => "removed from the entry it moved to",
                                _ => "was not there, nor in the entry it moved to",
                            }
                        }
                        _ => outcome,
                    }
                }
            }
            None => "the certificate is not in the store",
        };
        let event = AuditEvent {
            actor: actor.to_string(),
            action: "directory.unpublish",
            subject: publication.serial.clone(),
            details: json!({
                "directory": self.config.url,
                "dn": dn,
                "attribute": publication.attribute,
                "reason": why,
                "outcome": outcome,
                "moved_from": moved_from,
            }),
        };
        store
            .record_unpublication(&publication.serial, &|seq, prev| seal(&event, now, seq, prev))
            .await
            .map_err(|e| format!("removed from {dn}, but not recorded (done again next time): {e}"))?;
        Ok(Done::Removed(dn))
    }
}

impl Publisher {
    /// Removes one value of `attribute` from the entry `dn`: "removed", or why there was
    /// nothing to remove; an error when the directory refused.
    async fn delete_value(
        &self,
        ldap: &mut ldap3::Ldap,
        dn: &str,
        attribute: &str,
        der: &[u8],
    ) -> Result<&'static str, String> {
        let result = ldap
            .with_timeout(self.config.timeout)
            .modify(dn, vec![Mod::Delete(attribute.as_bytes().to_vec(), HashSet::from([der.to_vec()]))])
            .await
            .map_err(|e| format!("remove from {dn}: {e}"))?;
        match result.rc {
            0 => Ok("removed"),
            NO_SUCH_ATTRIBUTE => Ok("was not there"),
            NO_SUCH_OBJECT => Ok("the entry is gone"),
            rc => Err(format!("remove from {dn}: {}", describe(rc, &result.text))),
        }
    }
}

/// Two spellings of one DN (case, spaces around `,` and `=`).
fn same_dn(a: &str, b: &str) -> bool {
    let norm = |dn: &str| -> String {
        dn.split(',')
            .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
            .collect::<Vec<_>>()
            .join(",")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

/// The DN of a search result entry (an LDAPString, UTF-8), if it decodes.
fn entry_dn(entry: &ldap3::ResultEntry) -> Option<String> {
    let mut parts = entry.0.clone().match_id(4)?.expect_constructed()?.into_iter();
    String::from_utf8(parts.next()?.expect_primitive()?).ok()
}

enum Done {
    Published(String),
    Removed(String),
}

/// An LDAP result code with its name (RFC 4511 appendix A) and the server's text.
fn describe(rc: u32, text: &str) -> String {
    let name = match rc {
        1 => "operationsError",
        2 => "protocolError",
        8 => "strongerAuthRequired",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        65 => "objectClassViolation",
        _ => "result",
    };
    if text.is_empty() {
        format!("{name} ({rc})")
    } else {
        format!("{name} ({rc}): {text}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_by_their_spelling_only() {
        assert!(same_dn("uid=Jane,OU=People, dc=example,dc=org", "uid=jane,ou=people,dc=example,dc=org"));
        assert!(!same_dn("uid=jane,ou=staff,dc=example,dc=org", "uid=jane,ou=people,dc=example,dc=org"));
    }

    #[test]
    fn result_codes_are_named() {
        assert_eq!(describe(49, ""), "invalidCredentials (49)");
        assert_eq!(describe(50, "no write access"), "insufficientAccessRights (50): no write access");
        assert_eq!(describe(99, ""), "result (99)");
    }

    #[test]
    fn backoff_doubles_to_an_hour() {
        let config = certdesk_core::config::PublishSection {
            url: "ldap://127.0.0.1:389".into(),
            bind_dn: "cn=certdesk,dc=example,dc=org".into(),
            bind_password_file: "pw".into(),
            base: "dc=example,dc=org".into(),
            ..Default::default()
        }
        .checked()
        .unwrap();
        let publisher = Publisher::new(config, Zeroizing::new("pw".into())).unwrap();
        let waits: Vec<i64> = (0..8)
            .map(|_| {
                publisher.failed("01", 1000);
                publisher.backoff.lock().unwrap()["01"].1 - 1000
            })
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }
}
