//! Plain http(s) URLs taken apart (no user information, no fragment).

/// An `http(s)://host[:port]/path[?query]` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`.
    pub tls: bool,
    /// The host name or address (IPv6 without brackets), lower case.
    pub host: String,
    /// The port (80 or 443 unless given).
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses a plain URL: no user information, no fragment, no spaces or control
    /// characters.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} is not an http(s):// URL"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        if authority.is_empty()
            || authority.contains('@')
            || path.contains('#')
            || path.chars().any(|c| c.is_ascii_control() || c == ' ')
        {
            return Err(format!("{url:?} is not a plain URL"));
        }
        let default_port = if tls { 443 } else { 80 };
        let bad_port = || format!("{url:?} has a bad port");
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            // An IPv6 address: `[addr]` or `[addr]:port`.
            let (host, after) = bracketed.split_once(']').ok_or_else(|| format!("{url:?} has an unclosed ["))?;
            let port = match after {
                "" => default_port,
                _ => after.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()).ok_or_else(bad_port)?,
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad_port())?),
                None => (authority, default_port),
            }
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(Self { tls, host, port, path })
    }
}

/// Whether links to `url` travel in clear over a network: plain `http://` to a host other
/// than loopback (`localhost`, 127.0.0.0/8, `::1`). Sign-in links and session cookies
/// must not (`serve` warns at start and the admin page says so).
pub fn is_plain_over_network(url: &str) -> bool {
    match HttpUrl::parse(url) {
        Ok(parsed) => {
            !parsed.tls
                && parsed.host != "localhost"
                && !parsed.host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_links_over_a_network_are_told_from_loopback_and_https() {
        for clear in ["http://pki.example.org", "http://10.0.0.5:8080/portal", "http://[2001:db8::1]/"] {
            assert!(is_plain_over_network(clear), "{clear}");
        }
        for safe in ["https://pki.example.org", "http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:80/"] {
            assert!(!is_plain_over_network(safe), "{safe}");
        }
    }
}
