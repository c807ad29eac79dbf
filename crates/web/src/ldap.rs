//! The directory where mail clients look (issue 16): a read-only LDAPv3 server for
//! recipients' certificates, as Thunderbird's and Outlook's address books query it.
//!
//! One entry per person under the configured base DN (`mail=ADDRESS,BASE`) with `mail`,
//! `cn`, `sn`, `givenName`, `objectClass` and `userCertificate;binary` (every
//! certificate one can encrypt to: not revoked, not expired), from the same query as the
//! web directory ([`certdesk_desk::directory`]). The entries are held in memory and
//! replaced every refresh interval; a certificate that expires in between is left out
//! at once, a revocation within the interval.
//!
//! The wire format is `ldap3_proto` (Kanidm's LDAP protocol crate); what is answered is
//! decided here: the root DSE, anonymous or simple bind, search with equality,
//! substring, presence, ordering and approximate matches under and/or/not
//! (three-valued, RFC 4511 4.5.1.7), attribute lists, size and time limits, simple
//! paged results (RFC 2696), StartTLS and "Who am I?". Every write operation is refused
//! (`unwillingToPerform`). A request that does not decode ends the connection with a
//! notice of disconnection (`protocolError`); requests are bounded in size and nesting,
//! connections in number (in all and per client) and idle time, requests per client by
//! a token bucket like the HTTP side's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapExtendedResponse, LdapFilter, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode,
    LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope, LdapSubstringFilter,
};
use ldap3_proto::{LdapCodec, LdapMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, Framed};
use zeroize::Zeroizing;

use certdesk_desk::directory::DirectoryPerson;

/// The largest request accepted, in bytes (a search with a long filter is a few
/// hundred).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// The deepest BER nesting accepted (a filter of and/or/not nests; clients send 3 or 4).
pub const MAX_NESTING: usize = 32;
/// The paged-results control (RFC 2696).
const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";
/// StartTLS (RFC 4511 4.14).
const START_TLS_OID: &str = "1.3.6.1.4.1.1466.20037";
/// "Who am I?" (RFC 4532).
const WHO_AM_I_OID: &str = "1.3.6.1.4.1.4203.1.11.3";
/// Entries between two looks at the clock during a search.
const CLOCK_EVERY: usize = 256;

/// How the LDAP server answers (`[directory.ldap]` in certdesk.toml, checked).
#[derive(Clone)]
pub struct LdapSettings {
    /// The base DN the entries are under, as configured.
    pub base: String,
    /// Entries one search returns at most, paged or not.
    pub size_limit: usize,
    /// Time one search may take at most.
    pub time_limit: Duration,
    /// The DN and password of a simple bind, when one is configured.
    pub bind: Option<(String, Zeroizing<String>)>,
    /// Searches need that bind first (the root DSE stays readable).
    pub require_bind: bool,
    /// A connection without a request for this long is closed.
    pub idle_timeout: Duration,
    /// Requests per minute per client (0: no limit), after a burst of `burst`.
    pub per_minute: u32,
    /// Requests at once before the rate applies.
    pub burst: u32,
    /// Connections at once.
    pub max_connections: usize,
    /// Connections at once per client (an IP address, IPv6 by /64).
    pub max_connections_per_client: usize,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("base", &self.base)
            .field("size_limit", &self.size_limit)
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .field("require_bind", &self.require_bind)
            .finish_non_exhaustive()
    }
}

/// One entry of the snapshot.
#[derive(Debug)]
struct Person {
    dn: String,
    mail: String,
    common_name: String,
    given_name: Option<String>,
    surname: String,
    certificates: Vec<(Vec<u8>, i64)>,
    /// The attributes filters test, values in lower case (made once per refresh, so
    /// that a search that scans everyone copies nothing).
    searchable: Vec<(&'static str, Vec<Vec<u8>>)>,
}

impl Person {
    /// The person has a certificate that has not expired at `now`.
    fn current(&self, now: i64) -> bool {
        self.certificates.iter().any(|(_, not_after)| *not_after >= now)
    }
}

/// The attributes with a sorted index, by their lower-case names.
const INDEXED: [&str; 4] = ["mail", "cn", "sn", "givenname"];

/// The people of the directory at one refresh.
#[derive(Debug, Default)]
struct Snapshot {
    people: Vec<Person>,
    /// Normalised DN -> index.
    by_dn: HashMap<String, usize>,
    /// For each attribute of [`INDEXED`]: (lower-case value, index), sorted, for
    /// equality and initial-substring filters (address-book autocompletion) without a
    /// scan.
    sorted: [Vec<(String, usize)>; 4],
    /// For each attribute of [`INDEXED`]: three characters -> the people (ascending)
    /// with a value holding them, for substrings anywhere ("contains").
    grams: [HashMap<[char; 3], Vec<usize>>; 4],
}

impl Snapshot {
    /// The people a filter can match, in directory order, when an index narrows them
    /// down (a superset: the filter is still evaluated on each); `None` when only a scan
    /// can tell. `filter` has its values in lower case ([`lowered`]).
    fn indexed(&self, filter: &LdapFilter) -> Option<Vec<usize>> {
        // An item on an attribute this directory does not know is Undefined for every
        // person: it adds no one to an or.
        let unknown = |attr: &str| {
            let name = canonical(attr);
            !KNOWN_ATTRIBUTES.iter().any(|known| known.eq_ignore_ascii_case(name))
        };
        let slot = |attr: &str| {
            let name = canonical(attr);
            INDEXED.iter().position(|i| i.eq_ignore_ascii_case(name))
        };
        let sorted = |attr: &str| slot(attr).and_then(|at| self.sorted.get(at));
        let mut found: Vec<usize> = match filter {
            LdapFilter::Equality(attr, _) | LdapFilter::Substring(attr, _) | LdapFilter::Present(attr)
                if unknown(attr) =>
            {
                return Some(Vec::new())
            }
            LdapFilter::Equality(attr, value) => {
                let list = sorted(attr)?;
                let from = list.partition_point(|(v, _)| v.as_str() < value.as_str());
                list.get(from..)?.iter().take_while(|(v, _)| v == value).map(|(_, i)| *i).collect()
            }
            LdapFilter::Substring(attr, LdapSubstringFilter { initial: Some(prefix), .. }) => {
                let list = sorted(attr)?;
                let from = list.partition_point(|(v, _)| v.as_str() < prefix.as_str());
                list.get(from..)?.iter().take_while(|(v, _)| v.starts_with(prefix.as_str())).map(|(_, i)| *i).collect()
            }
            LdapFilter::Substring(attr, parts) => {
                // Everyone with a value holding each three characters of the parts:
                // the rarest first, narrowed by the next rarest while many are left.
                let grams = self.grams.get(slot(attr)?)?;
                let mut lists: Vec<&[usize]> = Vec::new();
                for part in parts.any.iter().chain(parts.final_.iter()) {
                    let chars: Vec<char> = part.chars().collect();
                    for window in chars.windows(3) {
                        let Ok(gram) = <[char; 3]>::try_from(window) else { continue };
                        lists.push(grams.get(&gram).map_or(&[][..], Vec::as_slice));
                    }
                }
                lists.sort_unstable_by_key(|l| l.len());
                let mut lists = lists.into_iter();
                let mut found = lists.next()?.to_vec();
                for next in lists {
                    if found.len() <= 32 {
                        break;
                    }
                    found.retain(|i| next.binary_search(i).is_ok());
                }
                found
            }
            LdapFilter::Or(items) => {
                let mut all = Vec::new();
                for item in items {
                    all.extend(self.indexed(item)?);
                }
                all
            }
            LdapFilter::And(items) => items.iter().filter_map(|item| self.indexed(item)).min_by_key(Vec::len)?,
            _ => return None,
        };
        found.sort_unstable();
        found.dedup();
        Some(found)
    }
}

/// The LDAP directory: the settings and the people, replaced at each refresh.
pub struct Directory {
    settings: LdapSettings,
    base_norm: String,
    base_classes: Vec<&'static str>,
    snapshot: RwLock<Arc<Snapshot>>,
    limiter: crate::ratelimit::RateLimiter,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Why the base DN cannot be used.
pub fn check_base(base: &str) -> Result<(), String> {
    let rdns = split_dn(base)
        .ok_or_else(|| format!("directory.ldap.base {base:?} is not a DN like ou=people,dc=example,dc=org"))?;
    if rdns.is_empty() {
        return Err("directory.ldap.base is empty: give a DN like ou=people,dc=example,dc=org".into());
    }
    Ok(())
}

impl Directory {
    /// A directory with no one in it yet; `tls` offers StartTLS on plain connections.
    pub fn new(settings: LdapSettings, tls: Option<&crate::tls::Tls>) -> Result<Self, String> {
        check_base(&settings.base)?;
        let base_norm = normalize_dn(&settings.base).unwrap_or_default();
        let first_type = base_norm.split('=').next().unwrap_or_default().to_string();
        let base_classes = match first_type.as_str() {
            "ou" => vec!["top", "organizationalUnit"],
            "o" => vec!["top", "organization"],
            "dc" => vec!["top", "domain"],
            _ => vec!["top", "extensibleObject"],
        };
        let limiter = crate::ratelimit::RateLimiter::new(certdesk_core::config::RateLimitSettings {
            per_minute: settings.per_minute,
            burst: settings.burst,
            trusted_proxies: Vec::new(),
        });
        Ok(Self {
            settings,
            base_norm,
            base_classes,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            limiter,
            tls: tls.map(crate::tls::Tls::ldap_acceptor),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &LdapSettings {
        &self.settings
    }

    /// Replaces the people answered from now on.
    pub fn replace(&self, people: Vec<DirectoryPerson>) {
        let mut snapshot = Snapshot::default();
        for person in people {
            let dn = format!("mail={},{}", certdesk_pki::subject::escape_rfc4514(&person.mail), self.settings.base);
            let index = snapshot.people.len();
            if let Some(norm) = normalize_dn(&dn) {
                snapshot.by_dn.insert(norm, index);
            }
            // sn is mandatory in the person object class: the local part stands in.
            let surname =
                person.surname.clone().unwrap_or_else(|| person.mail.split('@').next().unwrap_or_default().to_string());
            let lower = |text: &str| vec![text.to_lowercase().into_bytes()];
            let mut searchable: Vec<(&'static str, Vec<Vec<u8>>)> = vec![
                ("objectClass", PERSON_CLASSES.iter().map(|c| c.to_ascii_lowercase().into_bytes()).collect()),
                ("mail", lower(&person.mail)),
                ("cn", lower(&person.common_name)),
                ("sn", lower(&surname)),
            ];
            if let Some(given) = &person.given_name {
                searchable.push(("givenName", lower(given)));
            }
            // Binary: only presence can be tested (every person here has one).
            searchable.push(("userCertificate;binary", vec![Vec::new()]));
            for (name, values) in &searchable {
                let Some(at) = INDEXED.iter().position(|i| name.eq_ignore_ascii_case(i)) else { continue };
                for value in values {
                    let text = String::from_utf8_lossy(value).into_owned();
                    if let Some(grams) = snapshot.grams.get_mut(at) {
                        let chars: Vec<char> = text.chars().collect();
                        for window in chars.windows(3) {
                            let Ok(gram) = <[char; 3]>::try_from(window) else { continue };
                            let people = grams.entry(gram).or_default();
                            if people.last() != Some(&index) {
                                people.push(index);
                            }
                        }
                    }
                    if let Some(list) = snapshot.sorted.get_mut(at) {
                        list.push((text, index));
                    }
                }
            }
            snapshot.people.push(Person {
                dn,
                mail: person.mail,
                common_name: person.common_name,
                given_name: person.given_name,
                surname,
                certificates: person.certificates,
                searchable,
            });
        }
        for list in &mut snapshot.sorted {
            list.sort_unstable();
        }
        let fresh = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// Reads the directory from the desk again; the number of people in it.
    pub async fn refresh(
        &self,
        portal: &certdesk_desk::portal::Portal,
    ) -> Result<usize, certdesk_core::error::DomainError> {
        let people = portal.directory_people().await?;
        let count = people.len();
        self.replace(people);
        Ok(count)
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// What a connection knows about itself.
#[derive(Debug, Clone)]
pub struct Session {
    /// The DN of a successful simple bind.
    pub bound: Option<String>,
    /// The connection is encrypted (LDAPS or after StartTLS).
    pub encrypted: bool,
    /// The peer is on this machine.
    pub loopback: bool,
    /// The client the request limit counts.
    pub client: IpAddr,
}

/// What follows an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Then {
    /// Read the next request.
    Continue,
    /// Close the connection (unbind).
    Close,
    /// Start TLS on the connection, then continue.
    StartTls,
}

fn result(code: LdapResultCode, message: impl Into<String>) -> LdapResult {
    LdapResult { code, matcheddn: String::new(), message: message.into(), referral: Vec::new() }
}

fn message(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg { msgid, op, ctrl: Vec::new() }
}

impl Directory {
    /// Decodes requests from `bytes` as a connection does (the same framing and bounds)
    /// and answers each, encoding the replies; the encoded replies, and the decoding
    /// error that would end the connection, if any. For the fuzz target
    /// (`fuzz/fuzz_targets/ldap_request.rs`) and tests: it never touches the network.
    pub fn answer_bytes(&self, session: &mut Session, bytes: &[u8], now: i64) -> (Vec<u8>, Option<String>) {
        let mut codec = BoundedCodec::new();
        let mut input = BytesMut::from(bytes);
        let mut output = BytesMut::new();
        loop {
            match codec.decode(&mut input) {
                Ok(Some(request)) => {
                    let (replies, then) = self.answer(session, request, now);
                    for reply in replies {
                        if let Err(e) = codec.encode(reply, &mut output) {
                            return (output.to_vec(), Some(format!("a reply did not encode: {e}")));
                        }
                    }
                    if then != Then::Continue {
                        return (output.to_vec(), None);
                    }
                }
                Ok(None) => return (output.to_vec(), None),
                Err(e) => return (output.to_vec(), Some(e.to_string())),
            }
        }
    }

    /// Answers one request at `now` (Unix seconds); the replies in order and what to do
    /// next.
    pub fn answer(&self, session: &mut Session, request: LdapMsg, now: i64) -> (Vec<LdapMsg>, Then) {
        let msgid = request.msgid;
        if let Err(wait) = self.limiter.take(session.client, tokio::time::Instant::now()) {
            let busy = result(LdapResultCode::Busy, format!("too many requests from this client: wait {wait} s"));
            let reply = match request.op {
                LdapOp::UnbindRequest | LdapOp::AbandonRequest(_) => return (Vec::new(), Then::Continue),
                LdapOp::BindRequest(_) => {
                    LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse { res: busy, saslcreds: None })
                }
                LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(busy),
                LdapOp::ExtendedRequest(_) => {
                    LdapOp::ExtendedResponse(LdapExtendedResponse { res: busy, name: None, value: None })
                }
                LdapOp::CompareRequest(_) => LdapOp::CompareResult(busy),
                _ => return (vec![notice(LdapResultCode::Busy, "too many requests")], Then::Close),
            };
            return (vec![message(msgid, reply)], Then::Continue);
        }
        match request.op {
            LdapOp::BindRequest(bind) => (vec![message(msgid, self.bind(session, bind))], Then::Continue),
            LdapOp::UnbindRequest => (Vec::new(), Then::Close),
            LdapOp::SearchRequest(search) => (self.search(session, msgid, &request.ctrl, search, now), Then::Continue),
            LdapOp::AbandonRequest(_) => (Vec::new(), Then::Continue),
            LdapOp::ExtendedRequest(extended) => {
                let reply = |res, value: Option<Vec<u8>>| {
                    message(msgid, LdapOp::ExtendedResponse(LdapExtendedResponse { res, name: None, value }))
                };
                match extended.name.as_str() {
                    START_TLS_OID if session.encrypted => (
                        vec![reply(result(LdapResultCode::OperationsError, "TLS is already on"), None)],
                        Then::Continue,
                    ),
                    START_TLS_OID if self.tls.is_some() => {
                        let done = message(
                            msgid,
                            LdapOp::ExtendedResponse(LdapExtendedResponse {
                                res: result(LdapResultCode::Success, ""),
                                name: Some(START_TLS_OID.to_string()),
                                value: None,
                            }),
                        );
                        (vec![done], Then::StartTls)
                    }
                    START_TLS_OID => (
                        vec![reply(
                            result(LdapResultCode::Unavailable, "StartTLS needs [http] tls_cert and tls_key"),
                            None,
                        )],
                        Then::Continue,
                    ),
                    WHO_AM_I_OID => {
                        let id = session.bound.as_ref().map(|dn| format!("dn:{dn}")).unwrap_or_default();
                        (vec![reply(result(LdapResultCode::Success, ""), Some(id.into_bytes()))], Then::Continue)
                    }
                    other => (
                        vec![reply(
                            result(
                                LdapResultCode::ProtocolError,
                                format!("extended operation {other} is not supported"),
                            ),
                            None,
                        )],
                        Then::Continue,
                    ),
                }
            }
            LdapOp::CompareRequest(_) => (
                vec![message(
                    msgid,
                    LdapOp::CompareResult(result(
                        LdapResultCode::UnwillingToPerform,
                        "compare is not offered: search for the entry",
                    )),
                )],
                Then::Continue,
            ),
            LdapOp::AddRequest(_) => (vec![read_only(msgid, LdapOp::AddResponse)], Then::Continue),
            LdapOp::DelRequest(_) => (vec![read_only(msgid, LdapOp::DelResponse)], Then::Continue),
            LdapOp::ModifyRequest(_) => (vec![read_only(msgid, LdapOp::ModifyResponse)], Then::Continue),
            LdapOp::ModifyDNRequest(_) => (vec![read_only(msgid, LdapOp::ModifyDNResponse)], Then::Continue),
            _ => (vec![notice(LdapResultCode::ProtocolError, "not a request a client sends")], Then::Close),
        }
    }

    fn bind(&self, session: &mut Session, bind: ldap3_proto::proto::LdapBindRequest) -> LdapOp {
        let respond = |code, text: &str| {
            LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse { res: result(code, text), saslcreds: None })
        };
        if bind.version != 3 {
            return respond(LdapResultCode::ProtocolError, "only LDAP version 3 is spoken");
        }
        let password = match bind.cred {
            LdapBindCred::Simple(password) => Zeroizing::new(password),
            LdapBindCred::SASL(_) | LdapBindCred::Unsupported => {
                return respond(LdapResultCode::AuthMethodNotSupported, "only simple bind is offered")
            }
        };
        session.bound = None;
        if bind.dn.is_empty() && password.is_empty() {
            return respond(LdapResultCode::Success, "");
        }
        if password.is_empty() {
            // RFC 4513 5.1.2: an unauthenticated bind (a name, no password) is refused.
            return respond(LdapResultCode::UnwillingToPerform, "a bind with a name needs its password");
        }
        if !session.encrypted && !session.loopback {
            return respond(
                LdapResultCode::ConfidentialityRequired,
                "a password is not sent in clear: use LDAPS or StartTLS",
            );
        }
        let Some((dn, expected)) = &self.settings.bind else {
            return respond(LdapResultCode::InvalidCredentials, "");
        };
        let same_dn = normalize_dn(&bind.dn).is_some_and(|given| Some(given) == normalize_dn(dn));
        let same_password =
            aws_lc_rs::constant_time::verify_slices_are_equal(password.as_bytes(), expected.as_bytes()).is_ok();
        if same_dn && same_password {
            session.bound = Some(dn.clone());
            respond(LdapResultCode::Success, "")
        } else {
            tracing::info!(target: "certdesk::ldap", client = %session.client, "LDAP bind refused: wrong name or password");
            respond(LdapResultCode::InvalidCredentials, "")
        }
    }

    fn search(
        &self,
        session: &Session,
        msgid: i32,
        controls: &[LdapControl],
        request: LdapSearchRequest,
        now: i64,
    ) -> Vec<LdapMsg> {
        let started = Instant::now();
        let done = |res: LdapResult, ctrl: Vec<LdapControl>| LdapMsg { msgid, op: LdapOp::SearchResultDone(res), ctrl };
        let mut paging: Option<(usize, usize)> = None;
        for control in controls {
            match control {
                LdapControl::SimplePagedResults { size, cookie } => {
                    let offset = match cookie.as_slice() {
                        [] => 0,
                        bytes => match <[u8; 8]>::try_from(bytes) {
                            Ok(raw) => u64::from_be_bytes(raw) as usize,
                            Err(_) => {
                                return vec![done(
                                    result(LdapResultCode::UnwillingToPerform, "this paged-results cookie is not ours"),
                                    Vec::new(),
                                )]
                            }
                        },
                    };
                    paging = Some((usize::try_from(*size).unwrap_or(0), offset));
                }
                LdapControl::Unknown { criticality: true, oid, .. } => {
                    return vec![done(
                        result(LdapResultCode::UnavailableCriticalExtension, format!("control {oid} is not supported")),
                        Vec::new(),
                    )]
                }
                LdapControl::SyncRequest { criticality: true, .. } => {
                    return vec![done(
                        result(LdapResultCode::UnavailableCriticalExtension, "content synchronisation is not offered"),
                        Vec::new(),
                    )]
                }
                _ => {}
            }
        }
        if filter_depth(&request.filter) > MAX_NESTING {
            return vec![done(result(LdapResultCode::AdminLimitExceeded, "the filter nests too deeply"), Vec::new())];
        }
        let wanted = Wanted::new(&request.attrs, request.typesonly);
        // Values are compared in lower case: the filter's once, here.
        let filter = lowered(&request.filter);
        // The root DSE: what a client reads first to learn the base.
        if request.base.is_empty() && request.scope == LdapSearchScope::Base {
            let entry = self.root_dse();
            let mut out = Vec::new();
            if eval_filter(&filter, &|attr| entry_values(&entry, attr)) == Tri::True {
                out.push(message(msgid, LdapOp::SearchResultEntry(wanted.project(&entry, true))));
            }
            out.push(done(result(LdapResultCode::Success, ""), Vec::new()));
            return out;
        }
        if self.settings.require_bind && session.bound.is_none() {
            return vec![done(
                result(
                    LdapResultCode::InsufficentAccessRights,
                    "bind first: this directory answers bound clients only",
                ),
                Vec::new(),
            )];
        }
        let Some(base) = normalize_dn(&request.base) else {
            return vec![done(result(LdapResultCode::InvalidDNSyntax, "the search base is not a DN"), Vec::new())];
        };
        let snapshot = self.current();
        // The candidates: the base entry (None) and people (Some(index)).
        let mut candidates: Vec<Option<usize>> = Vec::new();
        let everyone = || -> Box<dyn Iterator<Item = Option<usize>>> {
            match snapshot.indexed(&filter) {
                Some(found) => Box::new(found.into_iter().map(Some)),
                None => Box::new((0..snapshot.people.len()).map(Some)),
            }
        };
        if base == self.base_norm {
            match request.scope {
                LdapSearchScope::Base => candidates.push(None),
                LdapSearchScope::OneLevel | LdapSearchScope::Children => candidates.extend(everyone()),
                LdapSearchScope::Subtree => {
                    candidates.push(None);
                    candidates.extend(everyone());
                }
            }
        } else if let Some(index) = snapshot.by_dn.get(&base) {
            if matches!(request.scope, LdapSearchScope::Base | LdapSearchScope::Subtree) {
                candidates.push(Some(*index));
            }
        } else {
            let below = base.ends_with(&format!(",{}", self.base_norm));
            let mut res = result(LdapResultCode::NoSuchObject, format!("no entry {}", request.base));
            if below {
                res.matcheddn = self.settings.base.clone();
            }
            return vec![done(res, Vec::new())];
        }
        let limit = match usize::try_from(request.sizelimit) {
            Ok(n) if n > 0 => n.min(self.settings.size_limit),
            _ => self.settings.size_limit,
        };
        let time_limit = match u64::try_from(request.timelimit) {
            Ok(s) if s > 0 => Duration::from_secs(s).min(self.settings.time_limit),
            _ => self.settings.time_limit,
        };
        let (page_size, skip) = match paging {
            Some((0, _)) => {
                // RFC 2696: a size of zero abandons the paged search.
                let end = LdapControl::SimplePagedResults { size: 0, cookie: Vec::new() };
                return vec![done(result(LdapResultCode::Success, ""), vec![end])];
            }
            Some((size, offset)) => (Some(size), offset),
            None => (None, 0),
        };
        let mut out = Vec::new();
        let mut matched = 0usize;
        let mut sent = 0usize;
        let mut code = LdapResultCode::Success;
        let mut text = String::new();
        let mut next_cookie = Vec::new();
        for (seen, candidate) in candidates.into_iter().enumerate() {
            if seen % CLOCK_EVERY == CLOCK_EVERY - 1 && started.elapsed() > time_limit {
                code = LdapResultCode::TimeLimitExceeded;
                text = format!("the search took longer than {} s", time_limit.as_secs());
                break;
            }
            // The filter is tested first; the entry is made only for a match.
            let entry = match candidate {
                None => {
                    let entry = self.base_entry();
                    if eval_filter(&filter, &|attr| entry_values(&entry, attr)) != Tri::True {
                        continue;
                    }
                    entry
                }
                Some(index) => {
                    let Some(person) = snapshot.people.get(index).filter(|p| p.current(now)) else { continue };
                    if eval_filter(&filter, &|attr| searchable_values(person, attr)) != Tri::True {
                        continue;
                    }
                    match person_entry(person, now) {
                        Some(entry) => entry,
                        None => continue,
                    }
                }
            };
            if matched >= limit {
                code = LdapResultCode::SizeLimitExceeded;
                text = format!("more than {limit} entries match: narrow the filter");
                break;
            }
            matched += 1;
            if matched <= skip {
                continue;
            }
            if page_size.is_some_and(|size| sent >= size) {
                next_cookie = (matched as u64 - 1).to_be_bytes().to_vec();
                break;
            }
            out.push(message(msgid, LdapOp::SearchResultEntry(wanted.project(&entry, false))));
            sent += 1;
        }
        let controls = if paging.is_some() {
            // An empty cookie says the last page; a size-limited search ends paging too.
            if code != LdapResultCode::Success {
                next_cookie.clear();
            }
            vec![LdapControl::SimplePagedResults { size: 0, cookie: next_cookie }]
        } else {
            Vec::new()
        };
        out.push(done(result(code, text), controls));
        out
    }

    fn root_dse(&self) -> Entry {
        let mut extensions = vec![WHO_AM_I_OID.to_string()];
        if self.tls.is_some() {
            extensions.push(START_TLS_OID.to_string());
        }
        Entry {
            dn: String::new(),
            attributes: vec![
                ("objectClass", vec!["top".into()]),
                ("namingContexts", vec![self.settings.base.clone().into_bytes()]),
                ("supportedLDAPVersion", vec!["3".into()]),
                ("supportedControl", vec![PAGED_RESULTS_OID.into()]),
                ("supportedExtension", extensions.into_iter().map(String::into_bytes).collect()),
                ("supportedSASLMechanisms", Vec::new()),
                ("vendorName", vec!["certdesk".into()]),
                ("vendorVersion", vec![env!("CARGO_PKG_VERSION").into()]),
            ],
        }
    }

    fn base_entry(&self) -> Entry {
        let (kind, value) = first_rdn(&self.settings.base).unwrap_or_default();
        let mut attributes: Vec<(&'static str, Vec<Vec<u8>>)> =
            vec![("objectClass", self.base_classes.iter().map(|c| c.as_bytes().to_vec()).collect())];
        let naming = match kind.as_str() {
            "ou" => Some("ou"),
            "o" => Some("o"),
            "dc" => Some("dc"),
            "cn" => Some("cn"),
            _ => None,
        };
        if let Some(naming) = naming {
            attributes.push((naming, vec![value.into_bytes()]));
        }
        Entry { dn: self.settings.base.clone(), attributes }
    }
}

fn read_only(msgid: i32, op: fn(LdapResult) -> LdapOp) -> LdapMsg {
    message(msgid, op(result(LdapResultCode::UnwillingToPerform, "this directory is read-only")))
}

/// A notice of disconnection (RFC 4511 4.4.1).
fn notice(code: LdapResultCode, text: &str) -> LdapMsg {
    ldap3_proto::DisconnectionNotice::gen_response(code, text)
}

/// An entry as answered: its DN and attributes with their names as published.
#[derive(Debug, Clone)]
struct Entry {
    dn: String,
    attributes: Vec<(&'static str, Vec<Vec<u8>>)>,
}

fn person_entry(person: &Person, now: i64) -> Option<Entry> {
    let certificates: Vec<Vec<u8>> =
        person.certificates.iter().filter(|(_, not_after)| *not_after >= now).map(|(der, _)| der.clone()).collect();
    if certificates.is_empty() {
        return None;
    }
    let mut attributes: Vec<(&'static str, Vec<Vec<u8>>)> = vec![
        ("objectClass", PERSON_CLASSES.iter().map(|c| c.as_bytes().to_vec()).collect()),
        ("mail", vec![person.mail.clone().into_bytes()]),
        ("cn", vec![person.common_name.clone().into_bytes()]),
        ("sn", vec![person.surname.clone().into_bytes()]),
    ];
    if let Some(given) = &person.given_name {
        attributes.push(("givenName", vec![given.clone().into_bytes()]));
    }
    attributes.push(("userCertificate;binary", certificates));
    Some(Entry { dn: person.dn.clone(), attributes })
}

/// The object classes of a person's entry.
const PERSON_CLASSES: [&str; 4] = ["top", "person", "organizationalPerson", "inetOrgPerson"];

/// The values of an attribute (compared without its options, case-insensitively);
/// `None` when the attribute type is unknown to this directory (the filter item is then
/// Undefined).
fn entry_values<'a>(entry: &'a Entry, attr: &str) -> Option<Values<'a>> {
    find_values(&entry.attributes, attr, false)
}

/// [`entry_values`] of a person's entry, from the lower-case copy made at the refresh.
fn searchable_values<'a>(person: &'a Person, attr: &str) -> Option<Values<'a>> {
    find_values(&person.searchable, attr, true)
}

fn find_values<'a>(attributes: &'a [(&'static str, Vec<Vec<u8>>)], attr: &str, lower: bool) -> Option<Values<'a>> {
    let name = attr.split(';').next().unwrap_or_default();
    let found = attributes
        .iter()
        .find(|(published, _)| published.split(';').next().is_some_and(|p| p.eq_ignore_ascii_case(name)));
    match found {
        Some((published, values)) => Some(Values { binary: published.contains(";binary"), lower, values }),
        None if KNOWN_ATTRIBUTES.iter().any(|known| known.eq_ignore_ascii_case(name)) => {
            Some(Values { binary: false, lower, values: &[] })
        }
        None => None,
    }
}

/// Attribute types this directory knows, though an entry may not have them.
const KNOWN_ATTRIBUTES: &[&str] = &[
    "objectClass",
    "mail",
    "cn",
    "commonName",
    "sn",
    "surname",
    "givenName",
    "userCertificate",
    "ou",
    "o",
    "dc",
    "namingContexts",
    "supportedLDAPVersion",
    "supportedControl",
    "supportedExtension",
    "supportedSASLMechanisms",
    "vendorName",
    "vendorVersion",
];

/// The values of one attribute of one entry.
struct Values<'a> {
    binary: bool,
    /// The values are in lower case already.
    lower: bool,
    values: &'a [Vec<u8>],
}

impl<'a> Values<'a> {
    /// The values as lower-case text.
    fn texts(&self) -> impl Iterator<Item = std::borrow::Cow<'a, str>> + '_ {
        self.values.iter().map(|v| {
            let text = String::from_utf8_lossy(v);
            if self.lower {
                text
            } else {
                std::borrow::Cow::Owned(text.to_lowercase())
            }
        })
    }
}

/// The result of a filter item (RFC 4511 4.5.1.7): True, False or Undefined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Undefined,
}

fn filter_depth(filter: &LdapFilter) -> usize {
    match filter {
        LdapFilter::And(items) | LdapFilter::Or(items) => 1 + items.iter().map(filter_depth).max().unwrap_or(0),
        LdapFilter::Not(inner) => 1 + filter_depth(inner),
        _ => 1,
    }
}

/// The filter with its assertion values in lower case (matching is case-insensitive:
/// the values of entries are compared in lower case too).
fn lowered(filter: &LdapFilter) -> LdapFilter {
    let lower = |parts: &LdapSubstringFilter| LdapSubstringFilter {
        initial: parts.initial.as_ref().map(|s| s.to_lowercase()),
        any: parts.any.iter().map(|s| s.to_lowercase()).collect(),
        final_: parts.final_.as_ref().map(|s| s.to_lowercase()),
    };
    match filter {
        LdapFilter::And(items) => LdapFilter::And(items.iter().map(lowered).collect()),
        LdapFilter::Or(items) => LdapFilter::Or(items.iter().map(lowered).collect()),
        LdapFilter::Not(inner) => LdapFilter::Not(Box::new(lowered(inner))),
        LdapFilter::Equality(attr, value) => LdapFilter::Equality(attr.clone(), value.to_lowercase()),
        LdapFilter::Approx(attr, value) => LdapFilter::Approx(attr.clone(), value.to_lowercase()),
        LdapFilter::GreaterOrEqual(attr, value) => LdapFilter::GreaterOrEqual(attr.clone(), value.to_lowercase()),
        LdapFilter::LessOrEqual(attr, value) => LdapFilter::LessOrEqual(attr.clone(), value.to_lowercase()),
        LdapFilter::Substring(attr, parts) => LdapFilter::Substring(attr.clone(), lower(parts)),
        other => other.clone(),
    }
}

/// The attribute's name without options, with the aliases clients use mapped to the
/// names of this directory.
fn canonical(attr: &str) -> &str {
    let name = attr.split(';').next().unwrap_or_default();
    let is = |alias: &str| name.eq_ignore_ascii_case(alias);
    if is("commonName") {
        "cn"
    } else if is("surname") {
        "sn"
    } else if is("email") || is("emailAddress") || is("rfc822Mailbox") {
        "mail"
    } else {
        name
    }
}

/// Tests `filter` (its values in lower case: [`lowered`]) against an entry's values.
fn eval_filter<'a>(filter: &LdapFilter, values: &dyn Fn(&str) -> Option<Values<'a>>) -> Tri {
    let tri = |hit: bool| if hit { Tri::True } else { Tri::False };
    match filter {
        LdapFilter::And(items) => {
            let mut out = Tri::True;
            for item in items {
                match eval_filter(item, values) {
                    Tri::False => return Tri::False,
                    Tri::Undefined => out = Tri::Undefined,
                    Tri::True => {}
                }
            }
            out
        }
        LdapFilter::Or(items) => {
            let mut out = Tri::False;
            for item in items {
                match eval_filter(item, values) {
                    Tri::True => return Tri::True,
                    Tri::Undefined => out = Tri::Undefined,
                    Tri::False => {}
                }
            }
            out
        }
        LdapFilter::Not(inner) => match eval_filter(inner, values) {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Undefined => Tri::Undefined,
        },
        LdapFilter::Present(attr) => match values(canonical(attr)) {
            Some(found) if !found.values.is_empty() => Tri::True,
            _ => Tri::False,
        },
        LdapFilter::Equality(attr, wanted) | LdapFilter::Approx(attr, wanted) => match values(canonical(attr)) {
            None => Tri::Undefined,
            Some(found) if found.binary => Tri::Undefined,
            Some(found) => tri(found.texts().any(|t| t == wanted.as_str())),
        },
        LdapFilter::GreaterOrEqual(attr, bound) | LdapFilter::LessOrEqual(attr, bound) => {
            match values(canonical(attr)) {
                None => Tri::Undefined,
                Some(found) if found.binary => Tri::Undefined,
                Some(found) => {
                    let greater = matches!(filter, LdapFilter::GreaterOrEqual(..));
                    tri(found.texts().any(|t| if greater { *t >= **bound } else { *t <= **bound }))
                }
            }
        }
        LdapFilter::Substring(attr, parts) => match values(canonical(attr)) {
            None => Tri::Undefined,
            Some(found) if found.binary => Tri::Undefined,
            Some(found) => tri(found.texts().any(|t| substring_matches(&t, parts))),
        },
        LdapFilter::Extensible(_) => Tri::Undefined,
    }
}

/// initial*any*...*final, in order and without overlap (`text` and `parts` are in lower
/// case already).
fn substring_matches(text: &str, parts: &LdapSubstringFilter) -> bool {
    let mut rest = text;
    if let Some(initial) = &parts.initial {
        match rest.strip_prefix(initial.as_str()) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    for any in &parts.any {
        match rest.find(any.as_str()) {
            Some(at) => rest = rest.get(at + any.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    match &parts.final_ {
        Some(last) => rest.ends_with(last.as_str()),
        None => true,
    }
}

/// The attributes a search asked for.
struct Wanted {
    all_user: bool,
    names: Vec<String>,
    types_only: bool,
}

impl Wanted {
    fn new(attrs: &[String], types_only: bool) -> Self {
        let names: Vec<String> = attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
        let all_user = names.is_empty() || names.iter().any(|n| n == "*");
        Self { all_user, names, types_only }
    }

    /// The entry with the asked-for attributes. "1.1" alone asks for none; "+" asks for
    /// the root DSE's operational attributes, which `*` (or no list) gives as well.
    fn project(&self, entry: &Entry, root: bool) -> LdapSearchResultEntry {
        let asked = |published: &str| {
            let lower = published.to_ascii_lowercase();
            let bare = lower.split(';').next().unwrap_or_default().to_string();
            let alias = match bare.as_str() {
                "cn" => Some("commonname"),
                "sn" => Some("surname"),
                _ => None,
            };
            self.all_user
                || (root && self.names.iter().any(|n| n == "+"))
                || self.names.iter().any(|n| {
                    let n_bare = n.split(';').next().unwrap_or_default();
                    *n == lower || n_bare == bare || alias.is_some_and(|a| a == n_bare)
                })
        };
        let attributes = entry
            .attributes
            .iter()
            .filter(|(published, values)| asked(published) && !values.is_empty())
            .map(|(published, values)| LdapPartialAttribute {
                atype: (*published).to_string(),
                vals: if self.types_only { Vec::new() } else { values.clone() },
            })
            .collect();
        LdapSearchResultEntry { dn: entry.dn.clone(), attributes }
    }
}

/// Splits a DN into its RDNs at unescaped commas; `None` if an RDN has no `=`.
fn split_dn(dn: &str) -> Option<Vec<String>> {
    let dn = dn.trim();
    if dn.is_empty() {
        return Some(Vec::new());
    }
    let mut rdns = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' || c == ';' {
            rdns.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    rdns.push(current);
    rdns.iter().all(|rdn| rdn.split_once('=').is_some_and(|(t, _)| !t.trim().is_empty())).then_some(rdns)
}

/// A DN for comparison: types and values trimmed and lower case (every attribute this
/// directory names in a DN matches case-insensitively).
fn normalize_dn(dn: &str) -> Option<String> {
    let rdns = split_dn(dn)?;
    Some(
        rdns.iter()
            .map(|rdn| {
                let (kind, value) = rdn.split_once('=').unwrap_or((rdn, ""));
                format!("{}={}", kind.trim().to_ascii_lowercase(), value.trim().to_lowercase())
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The type (lower case) and value of a DN's first RDN.
fn first_rdn(dn: &str) -> Option<(String, String)> {
    let rdns = split_dn(dn)?;
    let (kind, value) = rdns.first()?.split_once('=')?;
    Some((kind.trim().to_ascii_lowercase(), value.trim().to_string()))
}

/// Connections at once, in all and per client.
#[derive(Default)]
struct Connections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives its place back.
struct Admitted {
    table: Arc<Mutex<Connections>>,
    client: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut table = match self.table.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        table.total = table.total.saturating_sub(1);
        if let Some(count) = table.per_client.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                table.per_client.remove(&self.client);
            }
        }
    }
}

fn admit(table: &Arc<Mutex<Connections>>, settings: &LdapSettings, client: IpAddr) -> Option<Admitted> {
    let mut guard = match table.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if guard.total >= settings.max_connections {
        return None;
    }
    let count = guard.per_client.entry(client).or_insert(0);
    if *count >= settings.max_connections_per_client {
        return None;
    }
    *count += 1;
    guard.total += 1;
    Some(Admitted { table: table.clone(), client })
}

/// How a listener's connections start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain LDAP (StartTLS on request, when TLS is configured).
    Plain,
    /// LDAPS: TLS from the first byte.
    Tls,
}

/// Serves `directory` on `listener` until `shutdown` completes; `clock` gives the time
/// that decides expiry.
pub async fn serve(
    listener: tokio::net::TcpListener,
    directory: Arc<Directory>,
    transport: Transport,
    clock: Arc<dyn certdesk_core::clock::Clock>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let table = Arc::new(Mutex::new(Connections::default()));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(target: "certdesk::ldap", "LDAP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let client = crate::ratelimit::network(crate::ratelimit::canonical(peer.ip()));
        let Some(admitted) = admit(&table, &directory.settings, client) else {
            // Too many connections: closed at once, before a byte is read.
            drop(stream);
            continue;
        };
        let directory = directory.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let session = Session { bound: None, encrypted: false, loopback: peer.ip().is_loopback(), client };
            connection(directory, stream, transport, session, clock).await;
        });
    }
}

async fn connection(
    directory: Arc<Directory>,
    stream: tokio::net::TcpStream,
    transport: Transport,
    mut session: Session,
    clock: Arc<dyn certdesk_core::clock::Clock>,
) {
    let handshake = directory.settings.idle_timeout.min(Duration::from_secs(10));
    let plain = match transport {
        Transport::Tls => {
            let Some(acceptor) = directory.tls.clone() else { return };
            let Ok(Ok(tls)) = tokio::time::timeout(handshake, acceptor.accept(stream)).await else { return };
            session.encrypted = true;
            exchange(&directory, tls, &mut session, &*clock).await;
            return;
        }
        Transport::Plain => stream,
    };
    let Some(plain) = exchange(&directory, plain, &mut session, &*clock).await else { return };
    let Some(acceptor) = directory.tls.clone() else { return };
    let Ok(Ok(tls)) = tokio::time::timeout(handshake, acceptor.accept(plain)).await else { return };
    session.encrypted = true;
    // RFC 4513 3.1.3: the bind state stays as it was; nothing is bound before TLS here
    // unless on loopback.
    exchange(&directory, tls, &mut session, &*clock).await;
}

/// Reads requests and writes answers until the client leaves, idles too long, sends
/// something that does not decode, or asks for TLS (then the stream is handed back).
/// LDAP framing with the bounds checked on the first bytes: a message that is not a
/// SEQUENCE, or announces more than [`MAX_REQUEST_BYTES`], is refused at once instead of
/// waiting for bytes that will never make an LDAP message.
struct BoundedCodec(LdapCodec);

impl BoundedCodec {
    fn new() -> Self {
        Self(LdapCodec::new(Some(MAX_REQUEST_BYTES), Some(MAX_NESTING)))
    }
}

/// The length a BER header announces, when the header is complete: `Ok(None)` for
/// more bytes needed.
fn announced_length(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    let Some(&first) = buf.first() else { return Ok(None) };
    if first != 0x30 {
        return Err("an LDAP message is a SEQUENCE");
    }
    let Some(&len) = buf.get(1) else { return Ok(None) };
    if len < 0x80 {
        return Ok(Some(usize::from(len)));
    }
    let octets = usize::from(len & 0x7f);
    if octets == 0 || octets > 4 {
        return Err("the message length is not a definite length of at most four octets");
    }
    let Some(bytes) = buf.get(2..2 + octets) else { return Ok(None) };
    Ok(Some(bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))))
}

/// The tags of the request operations a client sends (RFC 4511 4.2 to 4.12: bind,
/// unbind, search, modify, add, delete, modify DN, compare, abandon, extended).
const REQUEST_TAGS: [u8; 10] = [0x60, 0x42, 0x63, 0x66, 0x68, 0x4a, 0x6c, 0x6e, 0x50, 0x77];

/// Checks the operation's tag once it has arrived: a tag that is no request is refused
/// here (ldap3_proto prints unknown ones to stdout, which a client must not reach).
/// `Ok` while the bytes are not there yet.
fn request_tag_ok(buf: &[u8]) -> Result<(), &'static str> {
    let Some(&len) = buf.get(1) else { return Ok(()) };
    let header = if len < 0x80 { 2 } else { 2 + usize::from(len & 0x7f) };
    match (buf.get(header), buf.get(header + 1)) {
        (Some(&0x02), Some(&id_len)) if id_len < 0x80 => match buf.get(header + 2 + usize::from(id_len)) {
            Some(tag) if !REQUEST_TAGS.contains(tag) => Err("the operation is no LDAP request"),
            _ => Ok(()),
        },
        (Some(&0x02), Some(_)) => Err("the message ID is longer than an LDAP message ID"),
        (Some(_), _) => Err("an LDAP message starts with its message ID"),
        (None, _) => Ok(()),
    }
}

impl Decoder for BoundedCodec {
    type Item = LdapMsg;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, std::io::Error> {
        match announced_length(buf) {
            Err(why) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why)),
            Ok(Some(n)) if n > MAX_REQUEST_BYTES => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("a message of {n} bytes is over the bound of {MAX_REQUEST_BYTES}"),
                ))
            }
            Ok(_) => {}
        }
        request_tag_ok(buf).map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidData, why))?;
        self.0.decode(buf)
    }
}

impl Encoder<LdapMsg> for BoundedCodec {
    type Error = std::io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut BytesMut) -> Result<(), std::io::Error> {
        self.0.encode(msg, buf)
    }
}

/// Closes after a notice of disconnection so that the client reads it: the write side
/// is shut (FIN after the notice), then what the client still sends is read and dropped
/// for a moment (bounded), since closing with unread bytes would reset the connection
/// and the notice could be lost.
async fn close_gracefully<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 1 << 20 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    directory: &Directory,
    stream: S,
    session: &mut Session,
    clock: &dyn certdesk_core::clock::Clock,
) -> Option<S> {
    let mut framed = Framed::new(stream, BoundedCodec::new());
    loop {
        let next = tokio::time::timeout(directory.settings.idle_timeout, framed.next()).await;
        let request = match next {
            Err(_) => {
                let _ = framed.send(notice(LdapResultCode::Unavailable, "idle for too long")).await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                tracing::info!(target: "certdesk::ldap", client = %session.client, "LDAP request refused: {e}");
                let _ =
                    framed.send(notice(LdapResultCode::ProtocolError, "the request is not LDAP that decodes")).await;
                close_gracefully(framed.into_inner()).await;
                return None;
            }
            Ok(Some(Ok(request))) => request,
        };
        let (replies, then) = directory.answer(session, request, clock.now().unix_timestamp());
        for reply in replies {
            if framed.feed(reply).await.is_err() {
                return None;
            }
        }
        if framed.flush().await.is_err() {
            return None;
        }
        match then {
            Then::Continue => {}
            Then::Close => return None,
            Then::StartTls => {
                let parts = framed.into_parts();
                // Bytes sent after the StartTLS request, before the handshake: a
                // protocol violation (and a known injection attack); close.
                if !parts.read_buf.is_empty() {
                    return None;
                }
                return Some(parts.io);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn person(mail: &str, given: Option<&str>, sn: Option<&str>, not_after: i64) -> DirectoryPerson {
        DirectoryPerson {
            mail: mail.into(),
            common_name: match (given, sn) {
                (Some(g), Some(s)) => format!("{g} {s}"),
                _ => mail.into(),
            },
            given_name: given.map(Into::into),
            surname: sn.map(Into::into),
            certificates: vec![(format!("cert of {mail}").into_bytes(), not_after)],
        }
    }

    fn directory() -> Directory {
        let dir = Directory::new(
            LdapSettings {
                base: "ou=People, dc=example,dc=org".into(),
                size_limit: 3,
                time_limit: Duration::from_secs(10),
                bind: Some(("cn=reader,dc=example,dc=org".into(), Zeroizing::new("s3cret".into()))),
                require_bind: false,
                idle_timeout: Duration::from_secs(60),
                per_minute: 0,
                burst: 1,
                max_connections: 10,
                max_connections_per_client: 2,
            },
            None,
        );
        let Ok(dir) = dir else { panic!("directory") };
        dir.replace(vec![
            person("jane.doe@example.org", Some("Jane"), Some("Doe"), 2000),
            person("john+x@example.org", Some("John"), Some("Roe"), 2000),
            person("old@example.org", None, None, 500),
            person("max@example.org", Some("Max"), Some("Mustermann"), 2000),
            person("erika@example.org", Some("Erika"), Some("Mustermann"), 2000),
        ]);
        dir
    }

    fn session() -> Session {
        Session { bound: None, encrypted: false, loopback: true, client: IpAddr::from([127, 0, 0, 1]) }
    }

    fn search(dir: &Directory, base: &str, filter: &str, attrs: &[&str], ctrl: Vec<LdapControl>) -> Vec<LdapMsg> {
        let Ok(filter) = ldap3_proto::parse_ldap_filter_str(filter) else { panic!("filter {filter}") };
        let request = LdapMsg {
            msgid: 7,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: base.into(),
                scope: LdapSearchScope::Subtree,
                aliases: ldap3_proto::proto::LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter,
                attrs: attrs.iter().map(|a| a.to_string()).collect(),
            }),
            ctrl,
        };
        dir.answer(&mut session(), request, 1000).0
    }

    fn dns(replies: &[LdapMsg]) -> Vec<String> {
        replies
            .iter()
            .filter_map(|m| match &m.op {
                LdapOp::SearchResultEntry(e) => Some(e.dn.clone()),
                _ => None,
            })
            .collect()
    }

    fn done_code(replies: &[LdapMsg]) -> Option<LdapResultCode> {
        replies.last().and_then(|m| match &m.op {
            LdapOp::SearchResultDone(res) => Some(res.code.clone()),
            _ => None,
        })
    }

    const BASE: &str = "ou=people,dc=example,dc=org";

    #[test]
    fn filters_as_mail_clients_send_them() {
        let dir = directory();
        // Thunderbird's certificate lookup.
        let found = search(&dir, BASE, "(mail=Jane.Doe@example.org)", &["userCertificate;binary"], Vec::new());
        assert_eq!(dns(&found), ["mail=jane.doe@example.org,ou=People, dc=example,dc=org"]);
        // Address-book autocompletion.
        let found = search(&dir, BASE, "(|(cn=*muster*)(mail=muster*)(sn=muster*))", &["cn", "mail"], Vec::new());
        assert_eq!(dns(&found).len(), 2, "{found:?}");
        assert_eq!(done_code(&found), Some(LdapResultCode::Success));
        // Expired at 1000: not listed.
        let found = search(&dir, BASE, "(mail=old@example.org)", &[], Vec::new());
        assert!(dns(&found).is_empty());
        // An unknown attribute is Undefined, and so is its negation.
        let found = search(&dir, BASE, "(!(favouriteDrink=tea))", &[], Vec::new());
        assert!(dns(&found).is_empty());
        let found = search(&dir, BASE, "(&(objectClass=inetOrgPerson)(!(sn=Mustermann)))", &[], Vec::new());
        assert_eq!(dns(&found).len(), 2, "{found:?}");
        // Escaped DN of a mailbox with '+', found by its DN as base.
        let found =
            search(&dir, "MAIL=john\\+x@example.org,ou=people,dc=example,dc=org", "(objectClass=*)", &[], Vec::new());
        assert_eq!(dns(&found).len(), 1, "{found:?}");
    }

    #[test]
    fn answer_bytes_decodes_answers_and_encodes() {
        let dir = directory();
        // Two requests in one buffer, as the fuzz seeds send them: a search, then an
        // unbind, then bytes that are never read.
        let mut wire = BytesMut::new();
        let mut codec = BoundedCodec::new();
        let search = LdapMsg {
            msgid: 7,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: BASE.into(),
                scope: LdapSearchScope::Subtree,
                aliases: ldap3_proto::proto::LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: LdapFilter::Equality("mail".into(), "jane.doe@example.org".into()),
                attrs: vec!["mail".into()],
            }),
            ctrl: Vec::new(),
        };
        codec.encode(search, &mut wire).unwrap();
        codec.encode(LdapMsg { msgid: 8, op: LdapOp::UnbindRequest, ctrl: Vec::new() }, &mut wire).unwrap();
        wire.extend_from_slice(b"never read");
        let (out, error) = dir.answer_bytes(&mut session(), &wire, 1000);
        assert_eq!(error, None);
        let mut out = BytesMut::from(&out[..]);
        // Replies are no requests: read them with the plain codec, as a client does.
        let mut codec = LdapCodec::default();
        let entry = codec.decode(&mut out).unwrap().unwrap();
        assert!(format!("{entry:?}").contains("jane.doe@example.org"), "{entry:?}");
        let done = codec.decode(&mut out).unwrap().unwrap();
        assert!(matches!(done.op, LdapOp::SearchResultDone(ref r) if r.code == LdapResultCode::Success), "{done:?}");
        assert!(out.is_empty(), "nothing after the unbind");
        let (out, error) = dir.answer_bytes(&mut session(), b"GET / HTTP/1.1\r\n", 1000);
        assert!(out.is_empty() && error.is_some_and(|e| e.contains("SEQUENCE")));
    }

    #[test]
    fn size_limit_and_paging() {
        let dir = directory();
        let found = search(&dir, BASE, "(mail=*)", &["mail"], Vec::new());
        assert_eq!(dns(&found).len(), 3);
        assert_eq!(done_code(&found), Some(LdapResultCode::SizeLimitExceeded));
        let page = |cookie: Vec<u8>| {
            search(&dir, BASE, "(sn=*)", &["mail"], vec![LdapControl::SimplePagedResults { size: 2, cookie }])
        };
        let first = page(Vec::new());
        assert_eq!(dns(&first).len(), 2);
        let cookie = match first.last().map(|m| m.ctrl.clone()).unwrap_or_default().first() {
            Some(LdapControl::SimplePagedResults { cookie, .. }) => cookie.clone(),
            other => panic!("no paging control: {other:?}"),
        };
        assert!(!cookie.is_empty());
        let second = page(cookie);
        assert_eq!(dns(&second).len(), 1, "{second:?}");
        assert!(dns(&first).iter().all(|dn| !dns(&second).contains(dn)));
        let bad = page(vec![1, 2, 3]);
        assert_eq!(done_code(&bad), Some(LdapResultCode::UnwillingToPerform));
    }

    #[test]
    fn root_dse_bases_and_writes() {
        let dir = directory();
        let request = |op| LdapMsg { msgid: 1, op, ctrl: Vec::new() };
        let root = dir.answer(
            &mut session(),
            request(LdapOp::SearchRequest(LdapSearchRequest {
                base: String::new(),
                scope: LdapSearchScope::Base,
                aliases: ldap3_proto::proto::LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: LdapFilter::Present("objectClass".into()),
                attrs: vec!["namingContexts".into()],
            })),
            1000,
        );
        let Some(LdapOp::SearchResultEntry(entry)) = root.0.first().map(|m| m.op.clone()) else { panic!("{root:?}") };
        assert_eq!(entry.attributes.len(), 1);
        assert_eq!(
            entry.attributes.first().map(|a| a.vals.clone()),
            Some(vec![b"ou=People, dc=example,dc=org".to_vec()])
        );
        let other = search(&dir, "dc=elsewhere", "(objectClass=*)", &[], Vec::new());
        assert_eq!(done_code(&other), Some(LdapResultCode::NoSuchObject));
        let del = dir.answer(&mut session(), request(LdapOp::DelRequest(BASE.into())), 1000);
        assert!(
            matches!(del.0.first().map(|m| &m.op), Some(LdapOp::DelResponse(r)) if r.code == LdapResultCode::UnwillingToPerform)
        );
    }

    #[test]
    fn binds() {
        let dir = directory();
        let bind = |dn: &str, pw: &str, s: &mut Session| {
            let op = LdapOp::BindRequest(ldap3_proto::proto::LdapBindRequest {
                version: 3,
                dn: dn.into(),
                cred: LdapBindCred::Simple(pw.into()),
            });
            match dir.answer(s, LdapMsg { msgid: 1, op, ctrl: Vec::new() }, 1000).0.first().map(|m| m.op.clone()) {
                Some(LdapOp::BindResponse(r)) => r.res.code,
                other => panic!("{other:?}"),
            }
        };
        let mut s = session();
        assert_eq!(bind("cn=reader,dc=example,dc=org", "wrong", &mut s), LdapResultCode::InvalidCredentials);
        assert_eq!(bind("CN=Reader, dc=example,dc=org", "s3cret", &mut s), LdapResultCode::Success);
        assert_eq!(s.bound.as_deref(), Some("cn=reader,dc=example,dc=org"));
        assert_eq!(bind("cn=reader,dc=example,dc=org", "", &mut s), LdapResultCode::UnwillingToPerform);
        let mut remote = Session { loopback: false, ..session() };
        assert_eq!(bind("cn=reader,dc=example,dc=org", "s3cret", &mut remote), LdapResultCode::ConfidentialityRequired);
    }

    #[test]
    fn framing_refuses_early() {
        assert_eq!(announced_length(&[]), Ok(None));
        assert_eq!(announced_length(&[0x30]), Ok(None));
        assert_eq!(announced_length(&[0x30, 0x05]), Ok(Some(5)));
        assert_eq!(announced_length(&[0x30, 0x82, 0x01]), Ok(None));
        assert_eq!(announced_length(&[0x30, 0x82, 0x01, 0x00]), Ok(Some(256)));
        assert!(announced_length(b"GET / HTTP/1.1").is_err());
        assert!(announced_length(&[0x30, 0x80]).is_err(), "indefinite length");
        assert!(announced_length(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        let mut codec = BoundedCodec::new();
        let mut huge = BytesMut::from(&[0x30u8, 0x84, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(codec.decode(&mut huge).is_err(), "refused before the bytes arrive");
        let mut partial = BytesMut::from(&[0x30u8, 0x0c, 0x02, 0x01][..]);
        assert!(matches!(codec.decode(&mut partial), Ok(None)));
        // A message whose operation is no request (tag 0, a search result entry).
        for tag in [0x00u8, 0x64] {
            let mut odd = BytesMut::from(&[0x30u8, 0x05, 0x02, 0x01, 0x01, tag, 0x00][..]);
            assert!(codec.decode(&mut odd).is_err(), "tag {tag:#x}");
        }
        let mut long_id = BytesMut::from(&[0x30u8, 0x05, 0x02, 0x81, 0x01, 0x01, 0x42][..]);
        assert!(codec.decode(&mut long_id).is_err());
        let mut unbind = BytesMut::from(&[0x30u8, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00][..]);
        assert!(matches!(codec.decode(&mut unbind), Ok(Some(_))));
    }

    /// The indexes narrow a search down, never change its answer: for each filter, the
    /// people a full scan matches are among the indexed candidates, in directory order.
    #[test]
    fn indexes_agree_with_a_scan() {
        let dir = directory();
        dir.replace(vec![
            person("jane.doe@example.org", Some("Jane"), Some("Doe"), 2000),
            person("JÜRGEN.Öz@example.org", Some("Jürgen"), Some("Öz"), 2000),
            person("doe@example.org", None, None, 2000),
            person("janet@example.org", Some("Janet"), Some("Doering"), 2000),
            person("max@example.org", Some("Max"), Some("Mustermann"), 2000),
        ]);
        let snapshot = dir.current();
        let filters = [
            "(mail=jane.doe@example.org)",
            "(MAIL=Jane.Doe@Example.org)",
            "(email=jane.doe@example.org)",
            "(cn=jane*)",
            "(sn=doe*)",
            "(surname=DOE)",
            "(givenName=jü*)",
            "(mail=jürgen.öz@example.org)",
            "(|(cn=doe*)(mail=doe*)(sn=doe*))",
            "(|(mail=max@example.org)(proxyAddresses=smtp:max@example.org))",
            "(&(objectClass=inetOrgPerson)(sn=doe*))",
            "(&(mail=*)(cn=ja*))",
            "(|(cn=*doe*)(sn=doe))",
            "(!(sn=doe))",
            "(cn=jane*doe)",
            "(userCertificate=*)",
            "(proxyAddresses=x*)",
            "(cn=*doe*)",
            "(mail=*XAMPLE.or*)",
            "(cn=*jür*)",
            "(sn=*rm*)",
            "(mail=*zzz*)",
            "(|(cn=*ane*)(mail=*ane*)(sn=*ane*))",
            "(sn=*ing)",
        ];
        let mut narrowed = 0;
        for text in filters {
            let Ok(parsed) = ldap3_proto::parse_ldap_filter_str(text) else { panic!("filter {text}") };
            let filter = lowered(&parsed);
            let scan: Vec<usize> = (0..snapshot.people.len())
                .filter(|&i| eval_filter(&filter, &|attr| searchable_values(&snapshot.people[i], attr)) == Tri::True)
                .collect();
            let Some(candidates) = snapshot.indexed(&filter) else { continue };
            narrowed += 1;
            assert!(candidates.windows(2).all(|w| w[0] < w[1]), "{text}: {candidates:?} not in order");
            assert!(scan.iter().all(|i| candidates.contains(i)), "{text}: scan {scan:?}, index {candidates:?}");
            assert!(candidates.len() < snapshot.people.len() || scan.len() == snapshot.people.len(), "{text}");
        }
        assert!(narrowed >= 18, "the indexes answered only {narrowed} of the filters");
        // And through a whole search: the answers are those of the scan.
        let found = search(&dir, BASE, "(|(cn=doe*)(mail=doe*)(sn=DOE*))", &["mail"], Vec::new());
        assert_eq!(dns(&found).len(), 3, "{found:?}");
    }

    #[test]
    fn substrings() {
        let parts = |i: Option<&str>, a: &[&str], f: Option<&str>| LdapSubstringFilter {
            initial: i.map(Into::into),
            any: a.iter().map(|s| s.to_string()).collect(),
            final_: f.map(Into::into),
        };
        // Case-insensitive: the filter's values are lowered once per search.
        let upper = LdapFilter::Substring("mail".into(), parts(Some("JANE"), &["DOE"], Some(".Org")));
        let LdapFilter::Substring(_, lower) = lowered(&upper) else { panic!("a substring filter stays one") };
        assert!(substring_matches("jane.doe@example.org", &lower));
        assert!(!substring_matches("jane.doe@example.org", &parts(Some("jane"), &["jane"], None)));
        assert!(!substring_matches("abc", &parts(Some("ab"), &[], Some("bc"))));
        assert_eq!(certdesk_pki::subject::escape_rfc4514(" a+b,c "), "\\ a\\+b\\,c\\ ");
    }
}
