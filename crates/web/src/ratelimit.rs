//! Per-client request limits of the portal and the REST API: a token bucket per client
//! address (IPv4 address, IPv6 /64 network, as one subscriber usually holds a whole
//! /64), for requests that change something and for directory searches. The limits
//! per address (sign-in links, mailbox values, authenticator codes) stop guessing one
//! account; this stops one client from mailing or searching through many.
//!
//! The client is the TCP peer, or, when the peer is one of `[portal] trusted_proxies`,
//! the nearest untrusted address in `X-Forwarded-For`, read hop by hop from the right
//! (what a client forges stands left of what the proxies append, so a garbage entry of
//! its own cannot make it count as the proxy). Requests without a known peer
//! (in-process tests) are not limited. Requests forwarded by a proxy on this host that
//! is not listed in `trusted_proxies` count as that proxy's (fail closed: the header
//! could be the client's own), so all its clients share one bucket; serve says so once,
//! loudly, naming the setting that fixes it.
//! The table holds at most [`MAX_CLIENTS`] buckets: full ones are dropped when it is
//! full (at most once a second, so a flood of new addresses costs no more than that),
//! and a client that still finds no room is let through rather than refused (the limit
//! is a brake, not a lock).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::time::Instant;

use certdesk_core::config::RateLimitSettings;

/// Clients tracked at once.
pub const MAX_CLIENTS: usize = 65_536;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How often a full table is swept for full buckets at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    swept: Option<Instant>,
}

/// Token buckets per client.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    table: Mutex<Table>,
    warned_untrusted_proxy: AtomicBool,
}

impl RateLimiter {
    /// A limiter with these settings (`per_minute` 0: nothing is limited).
    pub fn new(settings: RateLimitSettings) -> Self {
        Self { settings, table: Mutex::new(Table::default()), warned_untrusted_proxy: AtomicBool::new(false) }
    }

    /// The client of a request from `peer` with these headers, as the limit counts it.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        let trusted = |ip: IpAddr| self.settings.trusted_proxies.iter().any(|p| canonical(*p) == ip);
        let forwarded = headers.get_all("x-forwarded-for");
        if !trusted(client) {
            if client.is_loopback()
                && forwarded.iter().next().is_some()
                && self.settings.per_minute > 0
                && !self.warned_untrusted_proxy.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "requests come through a proxy at {client} that is not in [portal] \
                     trusted_proxies; its clients cannot be told apart and share one request limit until it is \
                     listed there"
                );
            }
            return network(client);
        }
        // Right to left: each trusted proxy names the hop before it; an entry that is
        // not an address ends the walk and the proxy that wrote it counts.
        // Split as bytes: a hop that is not ASCII (a client's own) spoils only itself.
        let hops: Vec<&[u8]> = forwarded.iter().flat_map(|v| v.as_bytes().split(|b| *b == b',')).collect();
        for hop in hops.iter().rev() {
            if !trusted(client) {
                break;
            }
            match std::str::from_utf8(hop).ok().and_then(parse_hop) {
                Some(ip) => client = canonical(ip),
                None => break,
            }
        }
        network(client)
    }

    /// Takes one request of `client` at `now`; `Err(seconds)` to wait when its bucket is
    /// empty.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if self.settings.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.settings.per_minute) / 60.0;
        let burst = f64::from(self.settings.burst);
        let Ok(mut table) = self.table.lock() else {
            return Ok(());
        };
        let refill = |bucket: &Bucket| (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        if !table.buckets.contains_key(&client) && table.buckets.len() >= MAX_CLIENTS {
            if table.swept.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY) {
                table.buckets.retain(|_, bucket| refill(bucket) < burst);
                table.swept = Some(now);
            }
            if table.buckets.len() >= MAX_CLIENTS {
                return Ok(());
            }
        }
        let bucket = table.buckets.entry(client).or_insert(Bucket { tokens: burst, at: now });
        let tokens = refill(bucket);
        if tokens >= 1.0 {
            *bucket = Bucket { tokens: tokens - 1.0, at: now };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(((1.0 - tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`, `[2001:db8::1]`); anything else (`unknown`, garbage) is `None`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// IPv4-mapped IPv6 addresses as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What one client is: an IPv4 address, an IPv6 /64.
pub(crate) fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn limiter(per_minute: u32, burst: u32, proxies: &[&str]) -> RateLimiter {
        RateLimiter::new(RateLimitSettings {
            per_minute,
            burst,
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = limiter(60, 3, &[]);
        let t0 = Instant::now();
        let me = ip("192.0.2.1");
        for _ in 0..3 {
            limiter.take(me, t0).unwrap();
        }
        assert_eq!(limiter.take(me, t0), Err(1));
        // Another client has its own bucket.
        limiter.take(ip("192.0.2.2"), t0).unwrap();
        // One a second comes back.
        limiter.take(me, t0 + Duration::from_millis(1_000)).unwrap();
        assert!(limiter.take(me, t0 + Duration::from_millis(1_100)).is_err());
        // Refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(3_600);
        for _ in 0..3 {
            limiter.take(me, later).unwrap();
        }
        assert!(limiter.take(me, later).is_err());
        // Off.
        let off = super::RateLimiter::new(RateLimitSettings { per_minute: 0, burst: 1, trusted_proxies: vec![] });
        for _ in 0..100 {
            off.take(me, t0).unwrap();
        }
    }

    #[test]
    fn the_wait_is_how_long_a_token_takes() {
        let limiter = limiter(6, 1, &[]);
        let t0 = Instant::now();
        limiter.take(ip("192.0.2.1"), t0).unwrap();
        assert_eq!(limiter.take(ip("192.0.2.1"), t0), Err(10));
        assert_eq!(limiter.take(ip("192.0.2.1"), t0 + Duration::from_secs(4)), Err(6));
    }

    #[test]
    fn clients_are_addresses_and_ipv6_networks() {
        let limiter = limiter(60, 1, &[]);
        let none = HeaderMap::new();
        assert_eq!(limiter.client(ip("2001:db8:1:2:3:4:5:6"), &none), ip("2001:db8:1:2::"));
        assert_eq!(limiter.client(ip("::ffff:192.0.2.7"), &none), ip("192.0.2.7"));
        // An untrusted peer's X-Forwarded-For is ignored.
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.9".parse().unwrap());
        assert_eq!(limiter.client(ip("192.0.2.7"), &headers), ip("192.0.2.7"));
        let t0 = Instant::now();
        limiter.take(ip("2001:db8:1:2::"), t0).unwrap();
        assert!(limiter.take(limiter.client(ip("2001:db8:1:2:ffff::1"), &none), t0).is_err());
    }

    #[test]
    fn trusted_proxies_name_the_client() {
        let limiter = limiter(60, 1, &["10.0.0.1", "10.0.0.2"]);
        let mut headers = HeaderMap::new();
        // Forged left part, then the client, then the inner proxy.
        headers.insert("x-forwarded-for", "203.0.113.66, 198.51.100.9, 10.0.0.2".parse().unwrap());
        assert_eq!(limiter.client(ip("10.0.0.1"), &headers), ip("198.51.100.9"));
        // A forged entry the client put first that is not an address, or not even ASCII,
        // changes nothing: the hops the proxies appended still name it.
        headers.insert("x-forwarded-for", "not-an-address, 198.51.100.9".parse().unwrap());
        assert_eq!(limiter.client(ip("10.0.0.1"), &headers), ip("198.51.100.9"));
        headers.insert("x-forwarded-for", HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.9").unwrap());
        assert_eq!(limiter.client(ip("10.0.0.1"), &headers), ip("198.51.100.9"));
        // Ports and brackets, as some proxies write them; two header lines read in order.
        headers.insert("x-forwarded-for", "[2001:db8:5::1]:443".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.2:8080".parse().unwrap());
        assert_eq!(limiter.client(ip("10.0.0.1"), &headers), ip("2001:db8:5::"));
        // What a trusted proxy wrote that is not an address: that proxy counts.
        headers.insert("x-forwarded-for", "198.51.100.9, unknown".parse().unwrap());
        assert_eq!(limiter.client(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
        // No header: the proxy.
        assert_eq!(limiter.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
    }

    #[test]
    fn an_untrusted_proxy_on_this_host_counts_as_one_client() {
        let limiter = limiter(60, 1, &[]);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.9".parse().unwrap());
        // Behind a local reverse proxy nobody listed: the header may be the client's
        // own, so the proxy counts (and serve warns).
        assert_eq!(limiter.client(ip("127.0.0.1"), &headers), ip("127.0.0.1"));
        assert_eq!(limiter.client(ip("::1"), &headers), ip("::"));
        assert!(limiter.warned_untrusted_proxy.load(Ordering::Relaxed));
        assert_eq!(limiter.client(ip("192.0.2.7"), &headers), ip("192.0.2.7"));
        // Listed: its clients are told apart.
        let listed = super::RateLimiter::new(RateLimitSettings {
            per_minute: 60,
            burst: 1,
            trusted_proxies: vec![ip("127.0.0.1")],
        });
        assert_eq!(listed.client(ip("127.0.0.1"), &headers), ip("198.51.100.9"));
        assert!(!listed.warned_untrusted_proxy.load(Ordering::Relaxed));
    }

    #[test]
    fn a_full_table_drops_full_buckets_and_never_refuses_for_room() {
        let limiter = limiter(60, 2, &[]);
        let t0 = Instant::now();
        for n in 0..MAX_CLIENTS as u32 {
            limiter.take(IpAddr::V4(std::net::Ipv4Addr::from(n)), t0).unwrap();
        }
        // All half-empty: a newcomer finds no room and passes untracked.
        let newcomer = ip("255.255.255.255");
        for _ in 0..5 {
            limiter.take(newcomer, t0).unwrap();
        }
        // Swept once, not for every newcomer: the table was not touched again.
        assert_eq!(limiter.table.lock().unwrap().swept, Some(t0));
        // A second later every bucket is full again: dropped, the newcomer is tracked.
        let later = t0 + Duration::from_secs(1);
        limiter.take(newcomer, later).unwrap();
        limiter.take(newcomer, later).unwrap();
        assert!(limiter.take(newcomer, later).is_err());
        assert_eq!(limiter.table.lock().unwrap().buckets.len(), 1);
    }
}
