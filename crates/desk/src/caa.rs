//! CAA checking before issuance (CA/B Forum S/MIME BR 3.2.2.3 with RFC 8659 and the
//! `issuemail` property of RFC 9495).
//!
//! For the domain of every mailbox address in a certificate, [`CaaCheck::check`] finds
//! the relevant RRset (RFC 8659 section 3: the CAA records of the domain, else of its
//! parent, and so on up to the top-level domain; CNAMEs are followed by the recursive
//! resolver) and applies RFC 9495 section 4:
//! - no CAA records anywhere, or none with an `issuemail` property: issuance is not
//!   restricted;
//! - an `issuemail` property whose issuer domain is one of ours (`[ca] caa_identities`)
//!   permits it; `issuemail ";"` (no issuer) or only other CAs' domains refuse it; a
//!   malformed value permits nothing;
//! - a critical property we do not know refuses it (RFC 8659 section 4.1).
//!
//! A failed lookup (timeout, SERVFAIL, REFUSED, a garbled answer) refuses issuance: the
//! BR's exception for lookup failures outside the CA's infrastructure needs evidence we
//! cannot collect here, so the officer retries later.
//!
//! DNS is asked by a small stub resolver: one question (QTYPE 257) over UDP with a
//! random ID from a random port, EDNS0, the answer checked against ID and question, TCP
//! when the answer is truncated. The recursive resolvers are `[ca] caa_resolvers` or
//! those of `/etc/resolv.conf`; DNSSEC validation is theirs (run a validating resolver
//! such as unbound next to the CA, as the BR expect).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use certdesk_core::error::{DomainError, ErrorCode};

/// CAA resource record type (RFC 8659 section 4.1).
const TYPE_CAA: u16 = 257;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const TYPE_CNAME: u16 = 5;
/// Records of one answer read at most (a CAA RRset is a handful).
const MAX_ANSWER_RECORDS: u16 = 256;
/// CNAMEs followed within one answer.
const MAX_CNAME_HOPS: usize = 16;
/// Property tags we understand (RFC 8659, RFC 8657, RFC 9495, CA/B BR).
const KNOWN_TAGS: [&str; 6] = ["issue", "issuewild", "iodef", "issuemail", "contactemail", "contactphone"];
/// Longest DNS message read over TCP.
const MAX_TCP_MESSAGE: usize = 65_535;

/// One CAA record (RFC 8659 section 4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaRecord {
    /// The issuer-critical flag (bit 0 of the flags, value 128).
    pub critical: bool,
    /// The property tag, as sent.
    pub tag: String,
    /// The property value.
    pub value: Vec<u8>,
}

impl CaaRecord {
    /// Reads the RDATA of a CAA record.
    pub fn parse(rdata: &[u8]) -> Result<Self, String> {
        let (&flags, rest) = rdata.split_first().ok_or("an empty CAA record")?;
        let (&tag_len, rest) = rest.split_first().ok_or("a CAA record without a tag")?;
        let tag_len = usize::from(tag_len);
        if !(1..=15).contains(&tag_len) || rest.len() < tag_len {
            return Err("a CAA record with a bad tag length".into());
        }
        let (tag, value) = rest.split_at(tag_len);
        if !tag.iter().all(u8::is_ascii_alphanumeric) {
            return Err("a CAA tag that is not alphanumeric".into());
        }
        Ok(Self { critical: flags & 0x80 != 0, tag: String::from_utf8_lossy(tag).into_owned(), value: value.to_vec() })
    }
}

pub use certdesk_core::caa_syntax::issuer_domain;

/// Whether the relevant RRset `rrset` lets a CA known by `identities` issue for a
/// mailbox (RFC 9495 section 4): `Ok(why)` or `Err(why not)`.
pub fn decide(rrset: &[CaaRecord], identities: &[String]) -> Result<String, String> {
    if let Some(unknown) =
        rrset.iter().find(|r| r.critical && !KNOWN_TAGS.iter().any(|t| r.tag.eq_ignore_ascii_case(t)))
    {
        return Err(format!("a critical CAA property {:?} this CA does not understand", unknown.tag));
    }
    let mail: Vec<&CaaRecord> = rrset.iter().filter(|r| r.tag.eq_ignore_ascii_case("issuemail")).collect();
    if mail.is_empty() {
        return Ok("CAA records, none for e-mail (issuemail)".into());
    }
    let mut named = Vec::new();
    for record in &mail {
        match issuer_domain(&record.value) {
            Some(Some(domain)) if identities.iter().any(|i| i.eq_ignore_ascii_case(&domain)) => {
                return Ok(format!("issuemail permits {domain}"));
            }
            Some(Some(domain)) => named.push(domain),
            Some(None) => named.push("no CA (\";\")".into()),
            None => named.push(format!("a malformed value {:?}", String::from_utf8_lossy(&record.value))),
        }
    }
    Err(format!("issuemail names {}, not this CA ({})", named.join(", "), identities.join(", ")))
}

/// The names whose CAA records are looked up for `domain`, nearest first, up to the
/// top-level domain (RFC 8659 section 3).
pub fn climb(domain: &str) -> Vec<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut names = vec![domain.clone()];
    let mut rest = domain.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        names.push(parent.to_string());
        rest = parent;
    }
    names
}

/// A DNS answer for one name.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The CAA records (empty: none, or no such name).
    Records(Vec<CaaRecord>),
}

/// CAA checks against DNS (`[ca] caa = "check"`).
#[derive(Clone, Debug)]
pub struct CaaCheck {
    resolvers: Vec<SocketAddr>,
    identities: Vec<String>,
    timeout: Duration,
}

/// What the desk does about CAA (`[ca] caa`): check before an application is taken
/// and before issuance, or not at all. The note it returns goes into the CA's audit
/// record of the issuance.
#[derive(Clone, Debug)]
pub struct CaaPolicy(Option<CaaCheck>);

impl CaaPolicy {
    /// The policy `config` sets (5 seconds per DNS question).
    pub fn from_config(config: &certdesk_core::config::ValidatedConfig) -> Self {
        Self(config.caa.as_ref().map(|settings| {
            let resolvers =
                if settings.resolvers.is_empty() { CaaCheck::system_resolvers() } else { settings.resolvers.clone() };
            CaaCheck::new(resolvers, settings.identities.clone(), Duration::from_secs(5))
        }))
    }

    /// What CAA says about issuing for mailboxes at `domain`: the note for the audit
    /// record, or the refusal.
    pub async fn evidence(&self, domain: &str) -> Result<String, DomainError> {
        match &self.0 {
            Some(check) => check.check(domain).await,
            None => Ok("not checked ([ca] caa = off)".to_string()),
        }
    }
}

impl CaaCheck {
    /// A check that asks `resolvers` (in turn) and accepts `issuemail` records naming
    /// one of `identities`.
    pub fn new(resolvers: Vec<SocketAddr>, identities: Vec<String>, timeout: Duration) -> Self {
        Self { resolvers, identities: identities.iter().map(|i| i.to_ascii_lowercase()).collect(), timeout }
    }

    /// The resolvers of `/etc/resolv.conf` (port 53).
    pub fn system_resolvers() -> Vec<SocketAddr> {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("nameserver"))
            .filter_map(|rest| rest.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }

    /// Checks that CAA lets this CA issue for mailboxes at `domain`; `Ok` says why (for
    /// the audit log), `Err` why not, or that the lookup failed.
    pub async fn check(&self, domain: &str) -> Result<String, DomainError> {
        let refused = |why: String| DomainError::new(ErrorCode::Refused, format!("CAA for {domain}: {why}"));
        for name in climb(domain) {
            let Answer::Records(records) = self.lookup(&name).await.map_err(|e| {
                refused(format!("the lookup of {name} failed ({e}); issuance is refused until it succeeds"))
            })?;
            if !records.is_empty() {
                return decide(&records, &self.identities).map(|why| format!("{name}: {why}")).map_err(refused);
            }
        }
        Ok(format!("{domain}: no CAA records"))
    }

    async fn lookup(&self, name: &str) -> Result<Answer, String> {
        if self.resolvers.is_empty() {
            return Err("no DNS resolver is configured (caa_resolvers, /etc/resolv.conf)".into());
        }
        let mut last = String::new();
        for resolver in &self.resolvers {
            match tokio::time::timeout(self.timeout, ask(*resolver, name)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => last = format!("{resolver}: {e}"),
                Err(_) => last = format!("{resolver}: no answer within {} s", self.timeout.as_secs()),
            }
        }
        Err(last)
    }
}

/// One question to one resolver: UDP, then TCP if the answer was truncated.
async fn ask(resolver: SocketAddr, name: &str) -> Result<Answer, String> {
    let mut id = [0u8; 2];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| "no randomness")?;
    let id = u16::from_be_bytes(id);
    let query = query(id, name)?;
    let bind: SocketAddr = if resolver.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(resolver).await.map_err(|e| e.to_string())?;
    socket.send(&query).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    loop {
        let len = socket.recv(&mut buf).await.map_err(|e| e.to_string())?;
        let message = buf.get(..len).unwrap_or_default();
        // Answers with another ID (late, spoofed) are dropped; wait for ours.
        if message.get(..2) != Some(&id.to_be_bytes()[..]) {
            continue;
        }
        match parse_response(message, id, name)? {
            Parsed::Truncated => break,
            Parsed::Answer(answer) => return Ok(answer),
        }
    }
    let mut stream = tokio::net::TcpStream::connect(resolver).await.map_err(|e| e.to_string())?;
    let len = u16::try_from(query.len()).map_err(|_| "the query is too long")?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).await.map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let len = usize::from(u16::from_be_bytes(len)).min(MAX_TCP_MESSAGE);
    let mut message = vec![0u8; len];
    stream.read_exact(&mut message).await.map_err(|e| e.to_string())?;
    match parse_response(&message, id, name)? {
        Parsed::Answer(answer) => Ok(answer),
        Parsed::Truncated => Err("a truncated answer over TCP".into()),
    }
}

/// The wire form of `name`.
fn encode_name(name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len()).ok().filter(|l| (1..=63).contains(l)).ok_or("a bad domain label")?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(out)
}

/// A recursive query for the CAA records of `name`, with EDNS0 (1232-byte answers) and
/// the AD bit (RFC 6840 section 5.7).
fn query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1]);
    out.extend_from_slice(&encode_name(name)?);
    out.extend_from_slice(&TYPE_CAA.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root name, type 41, UDP size 1232, no extended flags, no options.
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&1232u16.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Ok(out)
}

#[derive(Debug)]
enum Parsed {
    Truncated,
    Answer(Answer),
}

/// Reads a name at `pos` (following compression pointers, at most 64), lower case;
/// returns it and where the name ends in the message.
fn read_name(message: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let bad = || "a garbled name in the answer".to_string();
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *message.get(pos).ok_or_else(bad)?;
        match len {
            0 => {
                return Ok((labels.join("."), end.unwrap_or(pos + 1)));
            }
            0xc0..=0xff => {
                let low = *message.get(pos + 1).ok_or_else(bad)?;
                end.get_or_insert(pos + 2);
                pos = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            }
            1..=63 => {
                let label = message.get(pos + 1..pos + 1 + usize::from(len)).ok_or_else(bad)?;
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                pos += 1 + usize::from(len);
            }
            _ => return Err(bad()),
        }
    }
    Err(bad())
}

fn u16_at(message: &[u8], pos: usize) -> Result<u16, String> {
    let bytes: [u8; 2] = message.get(pos..pos + 2).and_then(|b| b.try_into().ok()).ok_or("a short answer")?;
    Ok(u16::from_be_bytes(bytes))
}

/// Checks the answer to query `id` for `name` and collects its CAA records: only those
/// of class IN owned by `name` or by a name a CNAME of the answer leads to from it
/// (RFC 8659 4.2); anything else a resolver put in the answer section is ignored.
fn parse_response(message: &[u8], id: u16, name: &str) -> Result<Parsed, String> {
    if u16_at(message, 0)? != id {
        return Err("an answer to another question".into());
    }
    let flags = u16_at(message, 2)?;
    if flags & 0x8000 == 0 || flags & 0x7800 != 0 {
        return Err("not an answer to a standard query".into());
    }
    // The question first: an answer, NXDOMAIN included, counts only for ours. A
    // truncated answer may come without it; it is asked again over TCP in any case.
    let truncated = flags & 0x0200 != 0;
    let questions = u16_at(message, 4)?;
    if truncated && questions == 0 {
        return Ok(Parsed::Truncated);
    }
    if questions != 1 {
        return Err("an answer without our question".into());
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let (qname, pos) = read_name(message, 12)?;
    if qname != name || u16_at(message, pos)? != TYPE_CAA || u16_at(message, pos + 2)? != CLASS_IN {
        return Err("an answer to another question".into());
    }
    if truncated {
        return Ok(Parsed::Truncated);
    }
    match flags & 0x000f {
        0 => {}
        3 => return Ok(Parsed::Answer(Answer::Records(Vec::new()))),
        2 => return Err("the resolver answered SERVFAIL".into()),
        5 => return Err("the resolver refused the query".into()),
        rcode => return Err(format!("the resolver answered RCODE {rcode}")),
    }
    let answers = u16_at(message, 6)?;
    if answers > MAX_ANSWER_RECORDS {
        return Err(format!("an answer of {answers} records (at most {MAX_ANSWER_RECORDS} are read)"));
    }
    let mut pos = pos + 4;
    // (owner, type, class, rdata offset, rdata)
    let mut section = Vec::with_capacity(usize::from(answers.min(64)));
    for _ in 0..answers {
        let (owner, after) = read_name(message, pos)?;
        let rtype = u16_at(message, after)?;
        let class = u16_at(message, after + 2)?;
        let rdlen = usize::from(u16_at(message, after + 8)?);
        let start = after + 10;
        let rdata = message.get(start..start + rdlen).ok_or("a record runs past the answer")?;
        section.push((owner, rtype, class, start, rdata));
        pos = start + rdlen;
    }
    // The names the question leads to through the answer's CNAMEs (at most
    // MAX_CNAME_HOPS of them).
    let mut owners = vec![name];
    for _ in 0..MAX_CNAME_HOPS {
        let mut grew = false;
        for (owner, rtype, class, start, _) in &section {
            if *rtype == TYPE_CNAME && *class == CLASS_IN && owners.contains(owner) {
                let (target, _) = read_name(message, *start)?;
                if !owners.contains(&target) {
                    owners.push(target);
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    let mut records = Vec::new();
    for (owner, rtype, class, _, rdata) in &section {
        if *rtype == TYPE_CAA && *class == CLASS_IN && owners.contains(owner) {
            records.push(CaaRecord::parse(rdata)?);
        }
    }
    Ok(Parsed::Answer(Answer::Records(records)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn record(critical: bool, tag: &str, value: &str) -> CaaRecord {
        CaaRecord { critical, tag: tag.into(), value: value.as_bytes().to_vec() }
    }

    fn ours() -> Vec<String> {
        vec!["pki.example.org".into()]
    }

    #[test]
    fn issuemail_values_follow_rfc_8659_syntax() {
        let domain = |v: &str| issuer_domain(v.as_bytes());
        assert_eq!(domain("pki.example.org"), Some(Some("pki.example.org".into())));
        assert_eq!(domain("  PKI.Example.org ; account=230123 "), Some(Some("pki.example.org".into())));
        assert_eq!(domain("ca.example; a=1; b=two"), Some(Some("ca.example".into())));
        assert_eq!(domain(";"), Some(None));
        assert_eq!(domain(""), Some(None));
        for bad in ["-bad.example", "a..b", "ca.example; =x", "ca.example; a=b c", "ca_example", "ca.example;a=;b"] {
            assert_eq!(domain(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_relevant_rrset_decides_as_rfc_9495_says() {
        // No issuemail: not restricted (issue/issuewild are about TLS).
        assert!(decide(&[record(false, "issue", "letsencrypt.org")], &ours()).is_ok());
        // Ours among others.
        let rrset = [record(false, "issuemail", "ca.other"), record(false, "issuemail", "pki.example.org; x=1")];
        assert_eq!(decide(&rrset, &ours()).unwrap(), "issuemail permits pki.example.org");
        // Only others, nobody, malformed.
        let why = decide(&[record(false, "issuemail", "ca.other")], &ours()).unwrap_err();
        assert!(why.contains("ca.other") && why.contains("pki.example.org"), "{why}");
        assert!(decide(&[record(false, "issuemail", ";")], &ours()).unwrap_err().contains("no CA"));
        assert!(decide(&[record(false, "issuemail", "pki.example.org;;=")], &ours())
            .unwrap_err()
            .contains("malformed"));
        // A critical unknown property refuses even with ours; a known critical one does not.
        let rrset = [record(true, "tbs", "x"), record(false, "issuemail", "pki.example.org")];
        assert!(decide(&rrset, &ours()).unwrap_err().contains("critical"));
        let rrset = [record(true, "issueMail", "pki.example.org")];
        assert!(decide(&rrset, &ours()).is_ok());
    }

    #[test]
    fn records_and_names_read_from_the_wire() {
        assert_eq!(CaaRecord::parse(b"\x80\x09issuemailca.example").unwrap(), record(true, "issuemail", "ca.example"));
        assert_eq!(CaaRecord::parse(b"\x00\x05issue").unwrap(), record(false, "issue", ""));
        for bad in [&b""[..], b"\x00", b"\x00\x00", b"\x00\x10issuemail", b"\x00\x05is_ue"] {
            assert!(CaaRecord::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            climb("Mail.Dept.Example.org."),
            ["mail.dept.example.org", "dept.example.org", "example.org", "org"]
        );
        // A pointer loop ends in an error, not a hang.
        let message = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 12];
        assert!(read_name(&message, 12).is_err());
    }

    /// What the fake resolver answers for a name.
    #[derive(Clone)]
    enum Zone {
        Records(Vec<CaaRecord>),
        ServFail,
        /// Truncated over UDP, the records over TCP.
        Large(Vec<CaaRecord>),
    }

    fn answer(query: &[u8], zones: &HashMap<String, Zone>, tcp: bool) -> Vec<u8> {
        let (name, end) = read_name(query, 12).unwrap();
        let question = &query[12..end + 4];
        let (rcode, truncated, records) = match zones.get(&name) {
            None => (3u16, false, Vec::new()),
            Some(Zone::ServFail) => (2, false, Vec::new()),
            Some(Zone::Records(r)) => (0, false, r.clone()),
            Some(Zone::Large(r)) => (0, !tcp, if tcp { r.clone() } else { Vec::new() }),
        };
        let flags = 0x8180 | rcode | if truncated { 0x0200 } else { 0 };
        let mut out = query[..2].to_vec();
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&(records.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(question);
        for r in records {
            let mut rdata = vec![if r.critical { 0x80 } else { 0 }, r.tag.len() as u8];
            rdata.extend_from_slice(r.tag.as_bytes());
            rdata.extend_from_slice(&r.value);
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&TYPE_CAA.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&[0, 0, 1, 0]);
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }

    /// A resolver on 127.0.0.1 (UDP and TCP on one port) answering from `zones`.
    async fn fake_resolver(zones: HashMap<String, Zone>) -> SocketAddr {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(address).await.unwrap();
        let udp_zones = zones.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                let reply = answer(&buf[..len], &udp_zones, false);
                let _ = udp.send_to(&reply, peer).await;
            }
        });
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let mut len = [0u8; 2];
                stream.read_exact(&mut len).await.unwrap();
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                stream.read_exact(&mut query).await.unwrap();
                let reply = answer(&query, &zones, true);
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                stream.write_all(&framed).await.unwrap();
            }
        });
        address
    }

    #[tokio::test]
    async fn checks_against_a_resolver() {
        let zones = HashMap::from([
            ("example.org".to_string(), Zone::Records(vec![record(false, "issuemail", "pki.example.org")])),
            ("other.example".to_string(), Zone::Records(vec![record(false, "issuemail", "ca.other")])),
            ("nobody.example".to_string(), Zone::Records(vec![record(false, "issuemail", ";")])),
            ("fail.example".to_string(), Zone::ServFail),
            ("big.example".to_string(), Zone::Large(vec![record(false, "issuemail", "pki.example.org")])),
            ("tls.example".to_string(), Zone::Records(vec![record(false, "issue", "ca.other")])),
        ]);
        let resolver = fake_resolver(zones).await;
        let check = CaaCheck::new(vec![resolver], ours(), Duration::from_secs(5));
        // At the domain, and found by climbing from a subdomain (NXDOMAIN below).
        assert_eq!(check.check("example.org").await.unwrap(), "example.org: issuemail permits pki.example.org");
        assert_eq!(
            check.check("mail.dept.example.org").await.unwrap(),
            "example.org: issuemail permits pki.example.org"
        );
        // Over TCP after a truncated UDP answer.
        assert_eq!(check.check("big.example").await.unwrap(), "big.example: issuemail permits pki.example.org");
        // No CAA anywhere; CAA only for TLS.
        assert_eq!(check.check("free.example").await.unwrap(), "free.example: no CAA records");
        assert!(check.check("tls.example").await.unwrap().contains("none for e-mail"));
        // Refused: another CA, nobody, a failed lookup.
        for (domain, needle) in
            [("other.example", "issuemail names ca.other"), ("nobody.example", "no CA"), ("fail.example", "SERVFAIL")]
        {
            let err = check.check(domain).await.unwrap_err();
            assert_eq!(err.code(), ErrorCode::Refused);
            assert!(err.to_string().contains(needle), "{domain}: {err}");
        }
    }

    #[tokio::test]
    async fn a_silent_resolver_is_a_failed_lookup() {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let check = CaaCheck::new(vec![silent.local_addr().unwrap()], ours(), Duration::from_millis(300));
        let err = check.check("example.org").await.unwrap_err();
        assert!(err.to_string().contains("no answer within"), "{err}");
        let none = CaaCheck::new(Vec::new(), ours(), Duration::from_secs(1));
        assert!(none.check("example.org").await.unwrap_err().to_string().contains("no DNS resolver"));
    }

    /// End to end with the CA: with `[ca] caa = "check"` a mailbox whose domain names
    /// another CA gets no evidence, so nothing is asked of the CA, signed or stored; one
    /// whose domain names ours is issued and the CA's audit record says what CAA said.
    #[tokio::test]
    async fn caa_evidence_decides_before_the_ca_signs() {
        use certdesk_ca::authority::{init, Authority, InitOptions};
        use certdesk_core::ports::{IssueInput, IssueRequest};
        use certdesk_pki::key::{KeyAlgorithm, PrivateKey};
        use certdesk_pki::profile::ProfileId;
        use certdesk_pki::subject::{EmailAddress, NameField, Person};
        use zeroize::Zeroizing;

        let zones = HashMap::from([
            ("example.org".to_string(), Zone::Records(vec![record(false, "issuemail", "pki.example.org")])),
            ("other.example".to_string(), Zone::Records(vec![record(false, "issuemail", "ca.other")])),
        ]);
        let resolver = fake_resolver(zones).await;
        let dir = tempfile::tempdir().unwrap();
        let clock = certdesk_core::clock::FixedClock(time::macros::datetime!(2026-11-25 12:00 UTC));
        let data = certdesk_core::datadir::DataDir::new(dir.path().join("data"));
        let options = InitOptions {
            organization: "Example University".into(),
            country: "DE".into(),
            organization_identifier: Some("VATDE-123456789".into()),
            base_url: "http://pki.example.org".into(),
            key: KeyAlgorithm::P384,
            database_url: None,
            pkcs11: None,
            offline_root: None,
            rsa_pss: false,
        };
        let passphrase = "correct horse battery staple";
        init(&data, options, Zeroizing::new(passphrase.into()), &clock, "test").await.unwrap();
        let config = std::fs::read_to_string(data.config()).unwrap();
        let config = config.replace(
            "base_url = \"http://pki.example.org\"\n",
            &format!("base_url = \"http://pki.example.org\"\ncaa = \"check\"\ncaa_resolvers = [\"{resolver}\"]\n"),
        );
        std::fs::write(data.config(), config).unwrap();
        let authority = Authority::open(data, std::sync::Arc::new(clock)).await.unwrap();
        let issuer = authority.unlock(Zeroizing::new(passphrase.into())).await.unwrap();
        let input = |email: &str| IssueInput {
            person: Person {
                email: EmailAddress::parse(email).unwrap(),
                given_name: NameField::parse("given name", "Jane").unwrap(),
                surname: NameField::parse("surname", "Doe").unwrap(),
            },
            profile: ProfileId::SponsorStrict,
        };
        let key = || PrivateKey::generate(KeyAlgorithm::P256).unwrap().accepted_public_key().unwrap();
        let log_before = authority.store().audit_log().await.unwrap().len();
        // What the desk asks when an application is made and before issuance.
        let policy = CaaPolicy::from_config(authority.config());
        let refused = policy.evidence("other.example").await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Refused);
        assert!(refused.to_string().contains("CAA for other.example: issuemail names ca.other"), "{refused}");
        assert!(authority.store().certificates().await.unwrap().is_empty());
        assert_eq!(authority.store().audit_log().await.unwrap().len(), log_before);

        let caa = policy.evidence("example.org").await.unwrap();
        assert!(caa.contains("permits"), "{caa}");
        let request = IssueRequest { input: input("jane.doe@example.org"), caa, application: None };
        let issued = authority.issue(&issuer, request, key(), "test").await.unwrap();
        let log = authority.store().audit_log().await.unwrap();
        let record = log.iter().find(|r| r.subject == issued.record.serial).unwrap();
        assert!(record.details.contains("example.org: issuemail permits pki.example.org"), "{}", record.details);
    }

    #[test]
    fn the_ca_section_is_checked() {
        let section = |caa: Option<&str>, identities: &[&str], resolvers: &[&str]| certdesk_core::config::CaSection {
            organization: "Example".into(),
            country: "DE".into(),
            organization_identifier: None,
            base_url: "http://pki.example.org:8080/x".into(),
            private_policy_oid: None,
            caa: caa.map(Into::into),
            caa_identities: identities.iter().map(|s| s.to_string()).collect(),
            caa_resolvers: resolvers.iter().map(|s| s.to_string()).collect(),
            rsa_pss: false,
        };
        assert_eq!(section(None, &[], &[]).caa_settings().unwrap(), None);
        assert_eq!(section(Some("off"), &["x.example"], &[]).caa_settings().unwrap(), None);
        assert!(section(Some("maybe"), &[], &[]).caa_settings().unwrap_err().contains("check or off"));
        let on = section(Some("check"), &[], &["192.0.2.53", "[2001:db8::53]:5353"]).caa_settings().unwrap().unwrap();
        assert_eq!(on.identities, ["pki.example.org"]);
        assert_eq!(on.resolvers, ["192.0.2.53:53".parse().unwrap(), "[2001:db8::53]:5353".parse().unwrap()]);
        let named = section(Some("check"), &["CA.Example.NET"], &[]).caa_settings().unwrap().unwrap();
        assert_eq!(named.identities, ["ca.example.net"]);
        assert!(section(Some("check"), &["not a domain"], &[]).caa_settings().unwrap_err().contains("caa_identities"));
        assert!(section(Some("check"), &[], &["dns.example"]).caa_settings().unwrap_err().contains("caa_resolvers"));
    }

    /// A name in DNS wire form, written out in full.
    fn encode(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    /// A DNS answer to `qname`, names written out in full.
    fn message(id: u16, flags: u16, qname: &str, records: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = id.to_be_bytes().to_vec();
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&(records.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&encode(qname));
        out.extend_from_slice(&TYPE_CAA.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        for (owner, rtype, rdata) in records {
            out.extend_from_slice(&encode(owner));
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&[0, 0, 1, 0]);
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(rdata);
        }
        out
    }

    fn caa_rdata(tag: &str, value: &str) -> Vec<u8> {
        let mut rdata = vec![0, tag.len() as u8];
        rdata.extend_from_slice(tag.as_bytes());
        rdata.extend_from_slice(value.as_bytes());
        rdata
    }

    #[test]
    fn only_the_records_of_the_name_asked_count() {
        let records = |answer: &[u8]| match parse_response(answer, 7, "Mail.Example.org.") {
            Ok(Parsed::Answer(Answer::Records(r))) => r.into_iter().map(|r| r.value).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        // Ours, a CNAME's target's, and a stray record of another name a resolver added.
        let cname = encode("alias.example.net");
        let answer = message(
            7,
            0x8180,
            "mail.example.org",
            &[
                ("mail.example.org", TYPE_CNAME, cname),
                ("alias.example.net", TYPE_CAA, caa_rdata("issuemail", "pki.example.org")),
                ("evil.example", TYPE_CAA, caa_rdata("issuemail", "ca.other")),
            ],
        );
        assert_eq!(records(&answer), [b"pki.example.org".to_vec()]);
        let answer =
            message(7, 0x8180, "mail.example.org", &[("other.example.org", TYPE_CAA, caa_rdata("issuemail", ";"))]);
        assert!(records(&answer).is_empty());
        // NXDOMAIN, SERVFAIL and truncation count only for our question.
        for flags in [0x8183, 0x8182, 0x8380] {
            let other = message(7, flags, "other.example.org", &[]);
            assert_eq!(parse_response(&other, 7, "mail.example.org").unwrap_err(), "an answer to another question");
        }
        assert!(matches!(
            parse_response(&message(7, 0x8183, "mail.example.org", &[]), 7, "mail.example.org"),
            Ok(Parsed::Answer(Answer::Records(r))) if r.is_empty()
        ));
        assert!(matches!(
            parse_response(&message(7, 0x8380, "mail.example.org", &[]), 7, "mail.example.org"),
            Ok(Parsed::Truncated)
        ));
    }

    #[test]
    fn garbled_answers_are_errors_never_panics() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let zones = HashMap::from([(
            "example.org".to_string(),
            Zone::Records(vec![record(false, "issuemail", "pki.example.org"), record(true, "issue", ";")]),
        )]);
        let query = query(0x1234, "example.org").unwrap();
        let seed = answer(&query, &zones, false);
        assert!(
            matches!(parse_response(&seed, 0x1234, "example.org"), Ok(Parsed::Answer(Answer::Records(r))) if r.len() == 2)
        );
        let mut inputs = hostile();
        inputs.extend(mutants(&seed, 400, 3));
        let tried = never_panics("DNS answer", &inputs, |b| {
            let _ = parse_response(b, 0x1234, "example.org");
        });
        assert!(tried > 400);
    }
}
