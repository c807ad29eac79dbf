//! certdesk's HTTP client, a thin layer over `ureq` (blocking, HTTP/1.1) with rustls and
//! the aws-lc-rs provider (docs/design/http-client.md). Used by the CLI (`smime verify`
//! fetching OCSP responses and CRLs, `enroll`) and, inside `spawn_blocking`, by
//! [`crate::oidc`].
//!
//! What it adds to `ureq`: one time limit for the whole exchange, a cap on the answer's
//! size, no redirects followed, plain URLs only (no user information or fragment),
//! https:// only where the caller gave TLS settings, a proxy from the environment (but
//! never for a loopback address), and errors as one short sentence.

use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

pub use certdesk_core::url::HttpUrl;

/// One request: method, URL, extra header fields and an optional (content type, body).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The URL.
    pub url: &'a str,
    /// Extra header fields, e.g. `("Authorization", "Bearer ...")`.
    pub headers: &'a [(&'a str, &'a str)],
    /// Content type and body.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// Which HTTP proxy the client goes through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxySetting {
    /// The usual environment variables, read when the client is built: `ALL_PROXY`,
    /// `HTTPS_PROXY` or `HTTP_PROXY` (the first set; lower-case names too), except for
    /// the hosts in `NO_PROXY`.
    #[default]
    FromEnvironment,
    /// No proxy.
    Direct,
    /// This proxy, e.g. `http://proxy.example.org:3128`.
    Url(String),
}

/// Where https:// servers' certificates are checked against.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Trust<'a> {
    /// No https://: such URLs are refused (revocation data is fetched over http://).
    NoTls,
    /// The system's trust store plus, optionally, extra CA certificates (PEM), e.g. for
    /// a portal under a private CA.
    System {
        /// Extra CA certificates, PEM.
        extra_roots_pem: Option<&'a [u8]>,
    },
}

/// A client: TLS settings, proxy and time limit, with a pool of kept-alive connections.
/// Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    tls: bool,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("proxy", &self.agent.config().proxy().map(|p| p.uri().to_string()))
            .finish()
    }
}

impl HttpClient {
    /// A client whose every exchange (name lookup, connecting, proxy, TLS, sending and
    /// receiving) ends after `timeout`.
    pub fn new(timeout: Duration, trust: Trust<'_>, proxy: &ProxySetting) -> Result<Self, String> {
        let proxy = match proxy {
            ProxySetting::FromEnvironment => ureq::Proxy::try_from_env(),
            ProxySetting::Direct => None,
            ProxySetting::Url(url) => {
                Some(ureq::Proxy::new(url).map_err(|e| format!("the proxy {url:?} is not usable: {e}"))?)
            }
        };
        let roots = match trust {
            Trust::NoTls => Vec::new(),
            Trust::System { extra_roots_pem } => root_certificates(extra_roots_pem)?,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent("certdesk")
            .proxy(proxy)
            .tls_config(tls)
            .build();
        Ok(Self { agent: config.new_agent(), tls: matches!(trust, Trust::System { .. }), timeout })
    }

    /// The proxy requests go through (none for loopback addresses), for a report.
    pub fn proxy(&self) -> Option<String> {
        self.agent.config().proxy().map(|p| format!("{}:{}", p.host(), p.port()))
    }

    /// Sends `request`; returns the status and the body, which must not be longer than
    /// `max` bytes. Any status is returned; redirects are not followed.
    pub fn send(&self, request: &Request<'_>, max: usize) -> Result<(u16, Vec<u8>), String> {
        let url = HttpUrl::parse(request.url)?;
        if url.tls && !self.tls {
            return Err("https:// is not used for this".into());
        }
        let mut builder = ureq::http::Request::builder().method(request.method).uri(request.url);
        for (name, value) in request.headers {
            if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
                return Err("a header contains a line break".into());
            }
            builder = builder.header(*name, *value);
        }
        let loopback = is_loopback(&url.host);
        let mut response = match request.body {
            Some((content_type, body)) => {
                let request = builder.header("Content-Type", content_type).body(body).map_err(bad_request)?;
                self.run(request, loopback)
            }
            None => self.run(builder.body(()).map_err(bad_request)?, loopback),
        }
        .map_err(|e| self.describe(e, &url, max))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::try_from(max).unwrap_or(u64::MAX))
            .read_to_vec()
            .map_err(|e| self.describe(e, &url, max))?;
        Ok((status, body))
    }

    fn run<S: ureq::AsSendBody>(
        &self,
        request: ureq::http::Request<S>,
        loopback: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        if loopback {
            // A proxy cannot reach this machine's loopback address.
            self.agent.run(self.agent.configure_request(request).proxy(None).build())
        } else {
            self.agent.run(request)
        }
    }

    /// One short sentence for a failed exchange.
    fn describe(&self, error: ureq::Error, url: &HttpUrl, max: usize) -> String {
        use std::io::ErrorKind;
        let host = &url.host;
        match error {
            ureq::Error::Timeout(_) => "timed out".into(),
            ureq::Error::BodyExceedsLimit(_) => format!("the answer is larger than {max} bytes"),
            ureq::Error::HostNotFound => format!("cannot resolve {host}"),
            ureq::Error::ConnectionFailed => format!("cannot connect to {host}"),
            ureq::Error::ConnectProxyFailed(reason) => {
                format!("the proxy {} did not connect to {host}: {reason}", self.proxy().unwrap_or_default())
            }
            ureq::Error::Io(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => "timed out".into(),
            ureq::Error::Io(e) if e.kind() == ErrorKind::UnexpectedEof => "the answer was cut short".into(),
            ureq::Error::Io(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused
                        | ErrorKind::ConnectionReset
                        | ErrorKind::HostUnreachable
                        | ErrorKind::NetworkUnreachable
                        | ErrorKind::AddrNotAvailable
                ) =>
            {
                format!("cannot connect to {host}: {e}")
            }
            // rustls reports a refused certificate through the stream.
            ureq::Error::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
                format!("TLS with {host} failed: {e}")
            }
            ureq::Error::Io(e) => format!("the exchange with {host} failed: {e}"),
            ureq::Error::Tls(reason) => format!("TLS with {host} failed: {reason}"),
            ureq::Error::Rustls(e) => format!("TLS with {host} failed: {e}"),
            ureq::Error::Protocol(e) => format!("the answer is not HTTP: {e}"),
            ureq::Error::LargeResponseHeader(..) => "the answer's header is too large".into(),
            other => other.to_string(),
        }
    }
}

fn bad_request(e: ureq::http::Error) -> String {
    format!("the request cannot be sent: {e}")
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The system's trust store plus the certificates of `extra_roots_pem`.
fn root_certificates(extra_roots_pem: Option<&[u8]>) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut roots: Vec<_> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(pem) = extra_roots_pem {
        let certificates = certdesk_pki::pem::decode_labelled(pem, &["CERTIFICATE"])
            .map_err(|e| format!("the CA file holds no usable PEM certificate: {e}"))?;
        for der in certificates {
            // Refused here rather than at the first connection.
            webpki_root(&der)?;
            roots.push(ureq::tls::Certificate::from_der(&der).to_owned());
        }
    }
    Ok(roots)
}

/// Checks that `der` can serve as a trust anchor.
fn webpki_root(der: &[u8]) -> Result<(), String> {
    let mut store = rustls::RootCertStore::empty();
    store.add(rustls::pki_types::CertificateDer::from(der)).map_err(|e| format!("bad CA certificate: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn urls_are_taken_apart_or_refused() {
        let url = HttpUrl::parse("https://IdP.example.org:8443/a/b?x=1").unwrap();
        assert_eq!(
            (url.tls, url.host.as_str(), url.port, url.path.as_str()),
            (true, "idp.example.org", 8443, "/a/b?x=1")
        );
        let url = HttpUrl::parse("http://[::1]:8080?q").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("::1", 8080, "/?q"));
        assert_eq!(HttpUrl::parse("http://ocsp.example.org").unwrap().path, "/");
        for bad in
            ["ftp://x/", "http://", "http://u@h/", "http://h/#f", "http://h/a b", "http://h:99999/", "http://:80/"]
        {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    /// Reads one request head (and a body of `Content-Length` bytes) from `stream`.
    fn read_request(stream: &mut std::net::TcpStream) -> String {
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).unwrap() == 0 {
                break;
            }
            raw.push(byte[0]);
        }
        let head = String::from_utf8(raw).unwrap();
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0usize);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).unwrap();
        head + &String::from_utf8(body).unwrap()
    }

    /// A server that answers one connection with `answer`; returns its address and
    /// what it was sent.
    fn serve_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let request = read_request(&mut stream);
            stream.write_all(answer).unwrap();
            request
        });
        (addr, server)
    }

    fn client(proxy: ProxySetting) -> HttpClient {
        HttpClient::new(Duration::from_secs(5), Trust::NoTls, &proxy).unwrap()
    }

    #[test]
    fn requests_carry_host_length_and_no_injected_lines() {
        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let request = Request {
            method: "POST",
            url: &format!("http://{addr}/ocsp"),
            headers: &[("X-A", "b")],
            body: Some(("t/x", b"abc")),
        };
        assert_eq!(client(ProxySetting::Direct).send(&request, 10).unwrap(), (200, b"ok".to_vec()));
        let sent = server.join().unwrap();
        let lower = sent.to_ascii_lowercase();
        assert!(sent.starts_with("POST /ocsp HTTP/1.1\r\n"), "{sent}");
        for line in [format!("host: {addr}"), "x-a: b".into(), "content-type: t/x".into(), "content-length: 3".into()] {
            assert!(lower.contains(&format!("\r\n{line}\r\n")), "{line} in {sent}");
        }
        assert!(sent.ends_with("\r\n\r\nabc"), "{sent}");
        let evil = Request { method: "GET", url: "http://127.0.0.1:9/", headers: &[("X", "a\r\nEvil: 1")], body: None };
        assert!(client(ProxySetting::Direct).send(&evil, 10).unwrap_err().contains("line break"));
    }

    #[test]
    fn answers_are_checked() {
        // Chunked answers are read, and their size counts too.
        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        let get = |url: &str| {
            client(ProxySetting::Direct).send(&Request { method: "GET", url, headers: &[], body: None }, 10)
        };
        assert_eq!(get(&format!("http://{addr}/")).unwrap(), (200, b"abc".to_vec()));
        server.join().unwrap();
        // Statuses other than 200 come back as they are; redirects are not followed.
        let (addr, server) =
            serve_once(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(get(&format!("http://{addr}/")).unwrap(), (302, Vec::new()));
        server.join().unwrap();
        for (answer, reason) in [
            (&b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc"[..], "cut short"),
            (b"HTTP/1.0 200 OK\r\n\r\n0123456789abc", "larger than 10 bytes"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789a", "larger than 10 bytes"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n0123456789a\r\n0\r\n\r\n", "larger than"),
            (b"garbage\r\n\r\n", "not HTTP"),
        ] {
            let (addr, server) = serve_once(answer);
            let e = get(&format!("http://{addr}/x")).unwrap_err();
            assert!(e.contains(reason), "{e} for {:?}", String::from_utf8_lossy(answer));
            server.join().unwrap();
        }
        assert!(get("https://127.0.0.1:9/").unwrap_err().contains("https:// is not used"));
        assert!(get("http://u@127.0.0.1:9/").is_err());
    }

    #[test]
    fn the_time_limit_covers_a_trickling_body() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/crl", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            read_request(&mut stream);
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n").unwrap();
            // One byte every 100 ms until the client gives up.
            while stream.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let client = HttpClient::new(Duration::from_millis(500), Trust::NoTls, &ProxySetting::Direct).unwrap();
        let start = std::time::Instant::now();
        let e = client.send(&request_to(&url), 1000).unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn an_http_proxy_is_used_and_passed_by_for_loopback() {
        // The proxy: takes a CONNECT to the named host (which it, not we, would look
        // up), says yes, and plays the server at the other end of the tunnel.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let connect = read_request(&mut stream);
            stream.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
            let request = read_request(&mut stream);
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ncrl").unwrap();
            (connect, request)
        });
        let client = client(ProxySetting::Url(proxy.clone()));
        assert_eq!(client.proxy(), Some(proxy.trim_start_matches("http://").to_string()));
        let request = Request { method: "GET", url: "http://crl.example.invalid/ca.crl", headers: &[], body: None };
        assert_eq!(client.send(&request, 100).unwrap(), (200, b"crl".to_vec()));
        let (connect, request) = server.join().unwrap();
        assert!(connect.starts_with("CONNECT crl.example.invalid:80 HTTP/1.1\r\n"), "{connect}");
        assert!(request.starts_with("GET /ca.crl HTTP/1.1\r\n"), "{request}");
        assert!(request.to_ascii_lowercase().contains("\r\nhost: crl.example.invalid\r\n"), "{request}");

        // A proxy that refuses the tunnel: said so.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            read_request(&mut stream);
            stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").unwrap();
        });
        let e = super::HttpClient::new(Duration::from_secs(5), Trust::NoTls, &ProxySetting::Url(proxy))
            .unwrap()
            .send(&request_to("http://crl.example.invalid/ca.crl"), 100)
            .unwrap_err();
        assert!(e.contains("proxy") && e.contains("crl.example.invalid"), "{e}");
        server.join().unwrap();

        // A loopback address is reached directly even with a proxy set (here one that
        // nobody listens on).
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_proxy = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let client =
            super::HttpClient::new(Duration::from_secs(5), Trust::NoTls, &ProxySetting::Url(dead_proxy)).unwrap();
        assert_eq!(client.send(&request_to(&format!("http://{addr}/")), 10).unwrap(), (200, b"ok".to_vec()));
        server.join().unwrap();
    }

    fn request_to(url: &str) -> Request<'_> {
        Request { method: "GET", url, headers: &[], body: None }
    }

    #[test]
    fn extra_roots_must_be_certificates() {
        let e = HttpClient::new(
            Duration::from_secs(1),
            Trust::System { extra_roots_pem: Some(b"no PEM here") },
            &ProxySetting::Direct,
        )
        .unwrap_err();
        assert!(e.contains("no usable PEM certificate"), "{e}");
    }
}
