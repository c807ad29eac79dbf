//! HTTPS for `serve` (rustls with the aws-lc-rs provider): the certificate chain and key
//! from PEM files, reloaded without a restart when either file changes (a renewed
//! certificate from certbot or the campus CA). A reload that fails keeps the old
//! certificate and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate `serve` presents, replaced when its files change.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

/// The HTTPS side of the listener.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<Reloading>,
    cert: PathBuf,
    key: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

/// Reads the chain (leaf first) and the key, and checks that they belong together.
fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the TLS certificate {} is not PEM: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate (PEM, BEGIN CERTIFICATE)", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key (PEM) from {}: {e}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, private, &provider)
        .map_err(|e| format!("the TLS key {} does not fit the certificate {}: {e}", key.display(), cert.display()))?;
    Ok(Arc::new(certified))
}

/// When a file last changed (and its length, for file systems with coarse times).
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Tls {
    /// Loads the certificate chain and key (PEM); TLS 1.2 and 1.3, HTTP/1.1.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        let resolver = Arc::new(Reloading { current: RwLock::new(load(cert, key)?) });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS settings: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// An acceptor for LDAPS and StartTLS: the same certificate (and reloads), no ALPN.
    pub fn ldap_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        match rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(builder) => {
                let config = builder.with_no_client_auth().with_cert_resolver(self.resolver.clone());
                tokio_rustls::TlsAcceptor::from(Arc::new(config))
            }
            // The same provider and versions as `load`, which succeeded.
            Err(_) => self.acceptor.clone(),
        }
    }

    /// The acceptor for one connection's handshake.
    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again now; `Ok(false)` if neither changed since `seen`.
    fn reload_if_changed(&self, seen: &mut Option<[(SystemTime, u64); 2]>) -> Result<bool, String> {
        let now = match (stamp(&self.cert), stamp(&self.key)) {
            (Some(c), Some(k)) => Some([c, k]),
            _ => None,
        };
        if now == *seen {
            return Ok(false);
        }
        let fresh = load(&self.cert, &self.key)?;
        *seen = now;
        match self.resolver.current.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(true)
    }

    /// Watches the files every `every` on the runtime and swaps the certificate when
    /// they change; new connections get the new one, open ones keep theirs.
    pub fn watch(&self, every: Duration) {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut seen = match (stamp(&tls.cert), stamp(&tls.key)) {
                (Some(c), Some(k)) => Some([c, k]),
                _ => None,
            };
            let mut failing = false;
            loop {
                tokio::time::sleep(every).await;
                match tls.reload_if_changed(&mut seen) {
                    Ok(true) => {
                        failing = false;
                        tracing::info!("TLS certificate reloaded from {}", tls.cert.display());
                    }
                    Ok(false) => {}
                    Err(e) if !failing => {
                        // Said once per change, not at every tick: half-written files
                        // during a renewal are normal for a moment.
                        failing = true;
                        tracing::warn!("the TLS certificate was not reloaded (the old one stays): {e}");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}
