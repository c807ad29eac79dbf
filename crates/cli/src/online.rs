//! Online revocation checking for `certdesk smime verify` (issue 5 item 3): OCSP
//! (RFC 6960, preferred) from the certificate's Authority Information Access, then the
//! CRL from its CRL distribution points (RFC 5280 4.2.1.13), over plain HTTP with
//! timeouts and a size cap, with a small cache. Through the proxy of `HTTP_PROXY`
//! (`ALL_PROXY`, `HTTPS_PROXY`) unless `NO_PROXY` names the host.
//!
//! Only `http://` URLs are fetched: RFC 5280 4.2.1.13 and RFC 6960 Appendix A use
//! HTTP; the answers are signed, so transport security adds nothing and HTTPS would need
//! its own revocation check. Everything fetched is checked (`pki::ocsp::check_response`,
//! `pki::path::check_crls`) before it counts or is cached; a cached answer is checked
//! again when read, so a stale or tampered cache entry is ignored.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use certdesk_desk::http_client::{HttpClient, Request, Trust};
use certdesk_pki::ocsp::{self, CertIdHash, CertStatus, IssuerHashes};
use certdesk_pki::path::{check_crls_at, PathError, RevocationStatus, ValidatedPath};
use der::Decode;
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, CrlDistributionPoints};
use x509_cert::Certificate;

/// The largest body accepted: an OCSP response is a few KiB; a CRL of a large CA a few
/// tens of MiB.
const MAX_OCSP_BODY: usize = 64 * 1024;
const MAX_CRL_BODY: usize = 64 * 1024 * 1024;

/// What online checking found for one certificate.
pub enum OnlineVerdict {
    /// A current, signed answer says the certificate is not revoked.
    Good {
        /// Where the answer came from, for the report.
        source: String,
    },
    /// The certificate is revoked.
    Revoked(PathError),
    /// No source gave a usable answer; the reasons, one per source tried.
    Unknown {
        /// What went wrong with each source.
        reasons: Vec<String>,
    },
}

/// Fetches OCSP responses and CRLs with a per-request timeout and keeps what it fetched
/// in memory (one verification may check several signers of one CA) and, when a cache
/// directory is set, on disk.
pub struct Fetcher {
    http: HttpClient,
    cache_dir: Option<PathBuf>,
    memory: HashMap<String, Vec<u8>>,
}

impl Fetcher {
    /// A fetcher with `timeout` per request (connect, send and receive together).
    pub fn new(timeout: Duration, cache_dir: Option<PathBuf>, proxy: &ProxySetting) -> Result<Self, String> {
        let http = HttpClient::new(timeout, Trust::NoTls, proxy)?;
        Ok(Self { http, cache_dir, memory: HashMap::new() })
    }

    /// Checks certificate `index` of `path` (0: the leaf, 1: its issuer, ...) online at
    /// `now`, against the certificate after it.
    pub fn check_at(&mut self, path: &ValidatedPath, index: usize, now: OffsetDateTime) -> OnlineVerdict {
        let (Some(leaf_der), Some(issuer_der)) = (path.chain().get(index), path.chain().get(index + 1)) else {
            return OnlineVerdict::Unknown { reasons: vec!["the certificate is itself a trust anchor".into()] };
        };
        let Ok(leaf) = Certificate::from_der(leaf_der) else {
            return OnlineVerdict::Unknown { reasons: vec!["the certificate cannot be read".into()] };
        };
        let mut reasons = Vec::new();
        for url in ocsp_urls(&leaf) {
            match self.ocsp(&url, &leaf, issuer_der, now) {
                Ok(checked) => match checked.status() {
                    CertStatus::Good => return OnlineVerdict::Good { source: format!("OCSP {url}") },
                    CertStatus::Revoked { at, .. } => {
                        return OnlineVerdict::Revoked(PathError::Revoked {
                            subject: certdesk_pki::subject::rfc4514(leaf.tbs_certificate().subject()),
                            at: *at,
                            reason: checked.reason_code(),
                        })
                    }
                    CertStatus::Unknown => reasons.push(format!("OCSP {url}: the responder does not know it")),
                },
                Err(e) => reasons.push(format!("OCSP {url}: {e}")),
            }
        }
        for url in crl_urls(&leaf) {
            match self.crl(&url, path, index, now) {
                Ok(RevocationStatus::NotRevoked) => return OnlineVerdict::Good { source: format!("CRL {url}") },
                Ok(RevocationStatus::Unknown) => reasons.push(format!("CRL {url}: not a current CRL of the issuer")),
                Err(revoked @ PathError::Revoked { .. }) => return OnlineVerdict::Revoked(revoked),
                Err(e) => reasons.push(format!("CRL {url}: {e}")),
            }
        }
        if reasons.is_empty() {
            reasons.push("the certificate names no OCSP responder and no CRL distribution point".into());
        }
        OnlineVerdict::Unknown { reasons }
    }

    fn ocsp(
        &mut self,
        url: &str,
        leaf: &Certificate,
        issuer_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<ocsp::CheckedStatus, String> {
        let serial = leaf.tbs_certificate().serial_number().as_bytes();
        let key = cache_key("ocsp", &[url.as_bytes(), issuer_der, serial]);
        if let Some(cached) = self.cached(&key) {
            if let Ok(checked) = ocsp::check_response(&cached, issuer_der, serial, None, now) {
                return Ok(checked);
            }
        }
        let hashes = IssuerHashes::new(issuer_der).map_err(|e| e.to_string())?;
        // SHA-1 CertIDs are what RFC 5019 responders (and ours) index by; SHA-256 is
        // also understood by ours, but many responders answer only SHA-1.
        let cert_id = hashes.cert_id(CertIdHash::Sha1, serial);
        let mut nonce = [0u8; 16];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "no randomness for the nonce".to_string())?;
        let request = ocsp::build_request(&[cert_id], Some(&nonce)).map_err(|e| e.to_string())?;
        let body = http(&self.http, url, Some(("application/ocsp-request", &request)), MAX_OCSP_BODY)?;
        let checked = ocsp::check_response(&body, issuer_der, serial, Some(&nonce), now).map_err(|e| e.to_string())?;
        self.store(&key, &body);
        Ok(checked)
    }

    fn crl(
        &mut self,
        url: &str,
        path: &ValidatedPath,
        index: usize,
        now: OffsetDateTime,
    ) -> Result<RevocationStatus, PathError> {
        let key = cache_key("crl", &[url.as_bytes()]);
        if let Some(cached) = self.cached(&key) {
            if check_crls_at(path, std::slice::from_ref(&cached), &[], now, index)? == RevocationStatus::NotRevoked {
                return Ok(RevocationStatus::NotRevoked);
            }
        }
        let body = http(&self.http, url, None, MAX_CRL_BODY).map_err(|reason| PathError::Malformed { reason })?;
        let status = check_crls_at(path, std::slice::from_ref(&body), &[], now, index)?;
        if status == RevocationStatus::NotRevoked {
            self.store(&key, &body);
        }
        Ok(status)
    }

    fn cached(&self, key: &str) -> Option<Vec<u8>> {
        if let Some(bytes) = self.memory.get(key) {
            return Some(bytes.clone());
        }
        let dir = self.cache_dir.as_ref()?;
        std::fs::read(dir.join(key)).ok()
    }

    /// Keeps a checked answer. A failing disk cache only costs a refetch next time.
    fn store(&mut self, key: &str, bytes: &[u8]) {
        self.memory.insert(key.to_string(), bytes.to_vec());
        let Some(dir) = &self.cache_dir else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let temp = dir.join(format!(".{key}.{}", std::process::id()));
        if std::fs::write(&temp, bytes).is_ok() && std::fs::rename(&temp, dir.join(key)).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/certdesk` or `~/.cache/certdesk`.
pub fn default_cache_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("certdesk")),
        None => std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache/certdesk")),
    }
}

fn cache_key(kind: &str, parts: &[&[u8]]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    format!("{kind}-{}.der", hex::encode(context.finish().as_ref()))
}

/// The OCSP responder URLs of the certificate's AIA extension (RFC 5280 4.2.2.1).
pub fn ocsp_urls(cert: &Certificate) -> Vec<String> {
    let aia = certdesk_pki::issuance::find_extension::<AuthorityInfoAccessSyntax>(cert.tbs_certificate().extensions());
    aia.map(|aia| {
        aia.0
            .iter()
            .filter(|ad| ad.access_method == certdesk_pki::oid::AD_OCSP)
            .filter_map(|ad| match &ad.access_location {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str().to_string()),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The URLs of the certificate's CRL distribution points (RFC 5280 4.2.1.13).
pub fn crl_urls(cert: &Certificate) -> Vec<String> {
    let dps = certdesk_pki::issuance::find_extension::<CrlDistributionPoints>(cert.tbs_certificate().extensions());
    dps.map(|dps| {
        dps.0
            .iter()
            .filter_map(|dp| match &dp.distribution_point {
                Some(DistributionPointName::FullName(names)) => Some(names),
                _ => None,
            })
            .flatten()
            .filter_map(|name| match name {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str().to_string()),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

pub use certdesk_desk::http_client::ProxySetting;

/// One plain-HTTP request (GET, or POST with `body`) for revocation data; returns the
/// body of a 200 response of at most `max` bytes.
fn http(client: &HttpClient, url: &str, body: Option<(&str, &[u8])>, max: usize) -> Result<Vec<u8>, String> {
    if !url.starts_with("http://") {
        return Err("only http:// URLs are fetched".into());
    }
    let method = if body.is_some() { "POST" } else { "GET" };
    let (status, body) = client.send(&Request { method, url, headers: &[], body }, max)?;
    if status != 200 {
        return Err(format!("HTTP status {status}"));
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use certdesk_desk::http_client::HttpUrl;

    use super::*;

    fn client(timeout: Duration) -> HttpClient {
        HttpClient::new(timeout, Trust::NoTls, &ProxySetting::Direct).unwrap()
    }

    #[test]
    fn urls_are_taken_apart_or_refused() {
        let u = HttpUrl::parse("http://pki.example.org/ocsp").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("pki.example.org", 80, "/ocsp"));
        let u = HttpUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("127.0.0.1", 8080, "/"));
        let u = HttpUrl::parse("http://[::1]:81/crl/issuing.crl").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        assert!(HttpUrl::parse("https://x/").unwrap().tls);
        assert_eq!(HttpUrl::parse("https://x/").unwrap().port, 443);
        assert!(http(&client(Duration::from_secs(1)), "https://x/", None, 10).unwrap_err().contains("only http://"));
        for bad in ["ldap://x/", "http://", "http://user@x/", "http://x:port/", "http://x/a b"] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fetching_fails_cleanly_on_refused_slow_and_oversized_answers() {
        // Nothing listens: refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = http(&client(Duration::from_secs(2)), &format!("http://{addr}/x"), None, 100).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");

        // A server that accepts and never answers: timed out, in about the timeout.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            drop(s);
        });
        let start = Instant::now();
        let err = http(&client(Duration::from_millis(300)), &format!("http://{addr}/x"), None, 100).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(1));
        hold.join().unwrap();

        // Oversized, not 200, and cut short.
        for (answer, expect) in [
            ("HTTP/1.0 200 OK\r\n\r\n".to_string() + &"x".repeat(200_000), "larger than"),
            ("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(), "HTTP status 404"),
            ("HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_string(), "cut short"),
        ] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
            });
            let err = http(&client(Duration::from_secs(5)), &format!("http://{addr}/x"), None, 100).unwrap_err();
            assert!(err.contains(expect), "{err}");
            server.join().unwrap();
        }
    }
}
