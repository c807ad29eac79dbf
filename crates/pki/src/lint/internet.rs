//! Internet names in certificates: the http:// URLs of cRLDistributionPoints and
//! authorityInfoAccess (CA/B Forum S/MIME BR 7.1.2.3 (b), (c)) and mailbox domains.
//!
//! A publicly-trusted certificate must not name an *Internal Name* (BR 1.6.1): a host
//! that is not under a top-level domain of the Public Suffix List, an IP address, or a
//! single label. pkilint reports these as `cabf.internal_domain_name` and, for URLs its
//! syntax check refuses (`localhost`), `pkix.invalid_uri_syntax`. The top-level domains
//! are in `tlds.txt`, made by `scripts/gen-lint-tables` from the list pkilint uses.

/// The top-level domains of the Public Suffix List (lower case, IDN as `xn--`), without
/// the special-use names.
const TLDS: &str = include_str!("tlds.txt");

/// [`TLDS`] as a set, made once: every certificate's mailbox domain and URLs are looked
/// up in it (a scan of the 1,400 lines took most of the lint's time).
static TLD_SET: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| TLDS.lines().map(str::trim).filter(|l| !l.is_empty()).collect());

/// Why a host is not a public Internet name (reads after "which is").
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InternalName {
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// One label only (`localhost`, `pki`).
    SingleLabel,
    /// Under a special-use or reserved top-level domain.
    Reserved {
        /// The top-level domain, e.g. `test`.
        tld: String,
        /// Where it is reserved.
        by: &'static str,
    },
    /// Under a top-level domain that does not exist (not in the Public Suffix List).
    UnknownTopLevelDomain {
        /// The top-level domain.
        tld: String,
    },
}

impl std::fmt::Display for InternalName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InternalName::IpAddress => f.write_str("an IP address"),
            InternalName::SingleLabel => f.write_str("a single-label name"),
            InternalName::Reserved { tld, by } => write!(f, "reserved for internal use (.{tld}, {by})"),
            InternalName::UnknownTopLevelDomain { tld } => {
                write!(f, "not under a public top-level domain (.{tld} is none)")
            }
        }
    }
}

/// Special-use names a public certificate never names, with where they are reserved.
const RESERVED: [(&str, &str); 9] = [
    ("localhost", "RFC 6761"),
    ("test", "RFC 6761"),
    ("example", "RFC 6761"),
    ("invalid", "RFC 6761"),
    ("local", "RFC 6762"),
    ("onion", "RFC 7686"),
    ("arpa", "RFC 8375 home.arpa"),
    ("alt", "RFC 9476"),
    ("internal", "ICANN, for private networks"),
];

/// Whether `host` (a DNS name or an IP address, as in a URL's authority) is a public
/// Internet name a CA/B Forum certificate may carry. `Err` says why not.
pub fn public_host(host: &str) -> Result<(), InternalName> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() || is_dotted_numeric(bare) {
        return Err(InternalName::IpAddress);
    }
    let lower = bare.trim_end_matches('.').to_ascii_lowercase();
    let Some((_, tld)) = lower.rsplit_once('.') else {
        return match RESERVED.iter().find(|(name, _)| *name == lower) {
            Some((name, by)) => Err(InternalName::Reserved { tld: (*name).to_string(), by }),
            None => Err(InternalName::SingleLabel),
        };
    };
    if let Some((name, by)) = RESERVED.iter().find(|(name, _)| *name == tld) {
        return Err(InternalName::Reserved { tld: (*name).to_string(), by });
    }
    if !TLD_SET.contains(tld) {
        return Err(InternalName::UnknownTopLevelDomain { tld: tld.to_string() });
    }
    Ok(())
}

/// `1.2.3` or `010.0.0.1`: what some resolvers take for an IPv4 address.
fn is_dotted_numeric(host: &str) -> bool {
    !host.is_empty() && host.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// An `http://host[:port]/path` URL as certdesk writes into certificates, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUri {
    /// The host: a DNS name (lower case) or an IP address (IPv6 in brackets).
    pub host: String,
    /// The port, if one is given.
    pub port: Option<u16>,
    /// The path, empty or starting with `/`.
    pub path: String,
}

/// Why a URL is not one certdesk writes into a certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// Not `http://` (CRL and OCSP are served over plain HTTP, BR 7.1.2.3).
    #[error("it is not an http:// URL (CRL and OCSP are served over plain HTTP, BR 7.1.2.3)")]
    NotHttp,
    /// User information (`user:password@`).
    #[error("it carries user information (user:password@): certificates name public locations")]
    UserInfo,
    /// A query (`?...`).
    #[error("it has a query (?...): certdesk appends /crl/issuing.crl, /ocsp and /ca/issuing.crt to it")]
    Query,
    /// A fragment (`#...`).
    #[error("it has a fragment (#...): certdesk appends /crl/issuing.crl, /ocsp and /ca/issuing.crt to it")]
    Fragment,
    /// The host is not a valid DNS name or IP address.
    #[error("its host {host:?} is not a valid host name (letters, digits and hyphens, labels of 1 to 63, ASCII: write an IDN as xn--)")]
    Host {
        /// The host as given.
        host: String,
    },
    /// The port is not 1 to 65535 written plainly.
    #[error("its port {port:?} is not a number from 1 to 65535")]
    Port {
        /// The port as given.
        port: String,
    },
    /// The path holds characters a URL does not carry unencoded.
    #[error("its path {path:?} holds characters that are not allowed in a URL (RFC 3986 3.3)")]
    Path {
        /// The path as given.
        path: String,
    },
}

impl HttpUri {
    /// Parses a URL of the form certdesk writes into certificates: `http://`, a host
    /// (DNS name of LDH labels, IPv4 address or bracketed IPv6 address), an optional
    /// port and an optional path of RFC 3986 `pchar`s; no user information, query or
    /// fragment. Every such URL with a public host passes pkilint's URI syntax check.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = match uri.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => uri.get(7..).unwrap_or_default(),
            _ => return Err(UriError::NotHttp),
        };
        if rest.contains('#') {
            return Err(UriError::Fragment);
        }
        if rest.contains('?') {
            return Err(UriError::Query);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UriError::UserInfo);
        }
        let (host, port) = if let Some(v6_end) = authority.strip_prefix('[').and_then(|r| r.find(']')) {
            let host = authority.get(..v6_end + 2).unwrap_or_default();
            let after = authority.get(v6_end + 2..).unwrap_or_default();
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(UriError::Host { host: authority.to_string() }),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            host.parse::<std::net::Ipv4Addr>().is_ok() || is_dns_name(host)
        };
        if !host_ok {
            return Err(UriError::Host { host: host.to_string() });
        }
        let port = match port {
            None => None,
            Some(text) => {
                let plain = !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
                match text.parse::<u16>() {
                    Ok(n) if plain && n > 0 => Some(n),
                    _ => return Err(UriError::Port { port: text.to_string() }),
                }
            }
        };
        let pchar = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:/".contains(c);
        let bytes = path.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let ok = if b == b'%' {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                let ok = hex(i + 1) && hex(i + 2);
                i += 2;
                ok
            } else {
                pchar(char::from(b))
            };
            if !ok {
                return Err(UriError::Path { path: path.to_string() });
            }
            i += 1;
        }
        Ok(Self { host: host.to_ascii_lowercase(), port, path: path.to_string() })
    }
}

/// A DNS name of LDH labels (RFC 1123 2.1): 1 to 63 characters each, no hyphen at
/// either end, at most 253 characters, no trailing dot. The last label is not all digits.
pub fn is_dns_name(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    labels_ok && !is_dotted_numeric(host)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn public_and_internal_hosts() {
        for public in ["pki.example.org", "PKI.Example.ORG", "x.co.uk", "pki.xn--p1ai", "a.b.c.de"] {
            assert_eq!(public_host(public), Ok(()), "{public}");
        }
        let internal = [
            ("localhost", "reserved"),
            ("pki", "single-label"),
            ("127.0.0.1", "IP"),
            ("[::1]", "IP"),
            ("10.1.2.3", "IP"),
            ("1.2.3", "IP"),
            ("pki.local", "reserved"),
            ("pki.internal", "reserved"),
            ("pki.localhost", "reserved"),
            ("pki.test", "reserved"),
            ("pki.example", "reserved"),
            ("pki.invalid", "reserved"),
            ("pki.onion", "reserved"),
            ("x.home.arpa", "reserved"),
            ("pki.corp", "not under a public"),
            ("pki.lan", "not under a public"),
            ("pki.zz", "not under a public"),
        ];
        for (host, why) in internal {
            let err = public_host(host).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(why), "{host}: {text}");
        }
    }

    #[test]
    fn uris_parse_or_say_why_not() {
        let u = HttpUri::parse("http://pki.example.org:8080/ca/x.crl").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("pki.example.org", Some(8080), "/ca/x.crl"));
        assert_eq!(HttpUri::parse("http://[::1]:80/ocsp").unwrap().host, "[::1]");
        assert_eq!(HttpUri::parse("http://127.0.0.1").unwrap().path, "");
        assert!(HttpUri::parse("http://pki.example.org/a%20b~c").is_ok());
        let cases = [
            ("https://pki.example.org", UriError::NotHttp),
            ("ldap://pki.example.org", UriError::NotHttp),
            ("http://u:p@pki.example.org/", UriError::UserInfo),
            ("http://pki.example.org/?x=1", UriError::Query),
            ("http://pki.example.org/#top", UriError::Fragment),
        ];
        for (uri, want) in cases {
            assert_eq!(HttpUri::parse(uri), Err(want), "{uri}");
        }
        for bad_host in
            ["http://", "http://pki_x.org", "http://-a.org", "http://a..org", "http://bücher.de", "http://1.2.3"]
        {
            assert!(matches!(HttpUri::parse(bad_host), Err(UriError::Host { .. })), "{bad_host}");
        }
        for bad_port in ["http://a.org:0", "http://a.org:08080", "http://a.org:65536", "http://a.org:"] {
            assert!(matches!(HttpUri::parse(bad_port), Err(UriError::Port { .. })), "{bad_port}");
        }
        for bad_path in ["http://a.org/a b", "http://a.org/%zz", "http://a.org/\"x\"", "http://a.org/ä"] {
            assert!(matches!(HttpUri::parse(bad_path), Err(UriError::Path { .. })), "{bad_path}");
        }
    }
}
