//! The pure parts of certdesk's minimal HTTP/1.0 client (one request per connection):
//! the URL, the request bytes, the response and the TLS settings. The connection is the
//! caller's: blocking in the CLI (`smime verify` fetching OCSP responses and CRLs,
//! `enroll`), async in [`crate::oidc`]. Both read the answer until the server closes.

use std::sync::Arc;

use zeroize::Zeroizing;

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

/// The bytes of `request` to `url` (HTTP/1.0, `Connection: close`); zeroized when
/// dropped, since they may carry a client secret or a token.
pub fn request_bytes(url: &HttpUrl, request: &Request<'_>) -> Result<Zeroizing<Vec<u8>>, String> {
    let default_port = if url.tls { 443 } else { 80 };
    let host = if url.host.contains(':') { format!("[{}]", url.host) } else { url.host.clone() };
    let host_header = if url.port == default_port { host } else { format!("{host}:{}", url.port) };
    let mut head = Zeroizing::new(format!(
        "{} {} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: certdesk\r\nConnection: close\r\n",
        request.method, url.path
    ));
    for (name, value) in request.headers {
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err("a header contains a line break".into());
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    match request.body {
        Some((content_type, body)) => {
            head.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len()));
            bytes.extend_from_slice(head.as_bytes());
            bytes.extend_from_slice(body);
        }
        None => {
            head.push_str("\r\n");
            bytes.extend_from_slice(head.as_bytes());
        }
    }
    Ok(bytes)
}

/// The status and body of a complete answer (`raw`: everything the server sent before
/// closing). A body longer than `max`, shorter than its Content-Length, or in a
/// transfer encoding (which an HTTP/1.0 request does not allow) is an error.
pub fn parse_response(raw: &[u8], max: usize) -> Result<(u16, Vec<u8>), String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the answer is not an HTTP response")?;
    let head = String::from_utf8_lossy(raw.get(..split).unwrap_or_default()).to_string();
    let body = raw.get(split + 4..).unwrap_or_default();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()).ok_or("no HTTP status")?;
    let header = |wanted: &str| {
        head.lines().skip(1).find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case(wanted).then(|| value.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some() {
        return Err("the answer uses a transfer encoding".into());
    }
    let body = match header("content-length").map(|v| v.parse::<usize>()) {
        Some(Ok(len)) => body.get(..len).ok_or("the answer was cut short")?,
        Some(Err(_)) => return Err("the answer has a bad Content-Length".into()),
        None => body,
    };
    if body.len() > max {
        return Err(format!("the answer is larger than {max} bytes"));
    }
    Ok((status, body.to_vec()))
}

/// TLS settings (rustls with the aws-lc-rs provider): the system's trust store plus,
/// optionally, extra CA certificates (PEM), e.g. for a portal under a private CA.
pub fn tls_config(extra_roots_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_roots_pem {
        let certificates = certdesk_pki::pem::decode_labelled(pem, &["CERTIFICATE"])
            .map_err(|e| format!("the CA file holds no usable PEM certificate: {e}"))?;
        for der in certificates {
            roots.add(rustls::pki_types::CertificateDer::from(der)).map_err(|e| format!("bad CA certificate: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
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

    #[test]
    fn requests_carry_host_length_and_no_injected_lines() {
        let url = HttpUrl::parse("http://[::1]:8080/ocsp").unwrap();
        let request = Request { method: "POST", url: "", headers: &[("X-A", "b")], body: Some(("t/x", b"abc")) };
        let bytes = request_bytes(&url, &request).unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.starts_with("POST /ocsp HTTP/1.0\r\nHost: [::1]:8080\r\n"), "{text}");
        assert!(text.ends_with("X-A: b\r\nContent-Type: t/x\r\nContent-Length: 3\r\n\r\nabc"), "{text}");
        let evil = Request { method: "GET", url: "", headers: &[("X", "a\r\nEvil: 1")], body: None };
        assert!(request_bytes(&url, &evil).is_err());
    }

    #[test]
    fn answers_are_checked() {
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nokextra", 10).unwrap(),
            (200, b"ok".to_vec())
        );
        assert_eq!(parse_response(b"HTTP/1.1 404 Not Found\r\n\r\nno", 10).unwrap(), (404, b"no".to_vec()));
        for (raw, reason) in [
            (&b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc"[..], "cut short"),
            (b"HTTP/1.0 200 OK\r\n\r\n0123456789abc", "larger than"),
            (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc", "transfer encoding"),
            (b"HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\n", "Content-Length"),
            (b"garbage", "not an HTTP response"),
            (b"HTTP/1.0 OK\r\n\r\n", "no HTTP status"),
        ] {
            let e = parse_response(raw, 10).unwrap_err();
            assert!(e.contains(reason), "{e}");
        }
    }
}
