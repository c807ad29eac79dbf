//! Name comparison (RFC 5280 section 7.1) and name constraints (RFC 5280 sections
//! 4.2.1.10, 6.1.3 (b)(c) and 6.1.4 (g)).
//!
//! ```text
//! NameConstraints ::= SEQUENCE {
//!      permittedSubtrees       [0]     GeneralSubtrees OPTIONAL,
//!      excludedSubtrees        [1]     GeneralSubtrees OPTIONAL }
//!
//! GeneralSubtree ::= SEQUENCE {
//!      base                    GeneralName,
//!      minimum         [0]     BaseDistance DEFAULT 0,
//!      maximum         [1]     BaseDistance OPTIONAL }
//! ```
//!
//! Instead of intersecting permitted subtrees as 6.1.4 (g) describes, the state keeps
//! the permitted subtrees of each constraining CA apart: a name must lie within one
//! subtree of its own form in every such set that has subtrees of that form. That is the
//! same test as the intersection, without having to compute intersections of subtrees.

use der::asn1::Any;
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{NameConstraints, SubjectAltName};
use x509_cert::name::{Name, RelativeDistinguishedName};
use x509_cert::Certificate;

use super::{decode_extension, subject_of, PathError};

/// The value of an attribute prepared for comparison (RFC 5280 section 7.1, a
/// simplification of RFC 4518 string preparation): case folded, leading and trailing
/// white space removed, inner runs of white space collapsed to one space. `None` for
/// values that are not character strings; those compare as encoded.
fn prepared(value: &Any) -> Option<String> {
    let bytes = value.value();
    let text: String = match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString | Tag::NumericString => {
            std::str::from_utf8(bytes).ok()?.to_owned()
        }
        Tag::TeletexString => bytes.iter().map(|&b| char::from(b)).collect(),
        Tag::BmpString => {
            let units: Vec<u16> =
                bytes.chunks(2).map(|c| c.iter().fold(0u16, |a, &b| (a << 8) | u16::from(b))).collect();
            String::from_utf16(&units).ok()?
        }
        _ => return None,
    };
    Some(text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
}

fn attributes_match(a: &AttributeTypeAndValue, b: &AttributeTypeAndValue) -> bool {
    if a.oid != b.oid {
        return false;
    }
    match (prepared(&a.value), prepared(&b.value)) {
        (Some(x), Some(y)) => x == y,
        (None, None) => a.value == b.value,
        _ => false,
    }
}

fn rdns_match(a: &RelativeDistinguishedName, b: &RelativeDistinguishedName) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| attributes_match(x, y)))
}

/// Whether two distinguished names are the same (RFC 5280 section 7.1): the same
/// number of RDNs, pairwise matching, attribute values compared after preparation.
pub(super) fn dn_equal(a: &Name, b: &Name) -> bool {
    a.iter_rdn().count() == b.iter_rdn().count() && a.iter_rdn().zip(b.iter_rdn()).all(|(x, y)| rdns_match(x, y))
}

/// Whether `name` lies in the subtree under `base` (RFC 5280 section 4.2.1.10: "a
/// name matches a directoryName constraint if the constraint is a prefix of the name").
fn dn_within(name: &Name, base: &Name) -> bool {
    base.iter_rdn().count() <= name.iter_rdn().count()
        && base.iter_rdn().zip(name.iter_rdn()).all(|(b, n)| rdns_match(b, n))
}

/// A name of a form certdesk cannot compare, or a malformed name, met by a constraint
/// of its form: the caller fails closed.
struct Unsupported;

fn form(name: &GeneralName) -> &'static str {
    match name {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

/// `dNSName` (RFC 5280 section 4.2.1.10): "any DNS name that can be constructed by
/// simply adding zero or more labels to the left-hand side of the name satisfies the
/// name constraint". A leading period (common practice) admits subdomains only.
fn dns_within(name: &str, base: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let base = base.trim_end_matches('.').to_ascii_lowercase();
    if base.is_empty() {
        return true;
    }
    if base.starts_with('.') {
        return name.ends_with(&base);
    }
    name == base || name.strip_suffix(&base).is_some_and(|rest| rest.ends_with('.'))
}

/// `rfc822Name` (RFC 5280 section 4.2.1.10): "a constraint may specify a particular
/// mailbox, all addresses at a particular host, or all mailboxes in a domain. To
/// indicate a particular mailbox, the constraint is the complete mail address. [...]
/// To indicate all Internet mail addresses on a particular host, the constraint is
/// specified as the host name. [...] To specify any address within a domain, the
/// constraint is specified with a leading period".
fn mailbox_within(name: &str, base: &str) -> Result<bool, Unsupported> {
    let Some((local, host)) = name.rsplit_once('@') else { return Err(Unsupported) };
    if let Some((base_local, base_host)) = base.rsplit_once('@') {
        return Ok(local == base_local && host.eq_ignore_ascii_case(base_host));
    }
    let host = host.to_ascii_lowercase();
    let base = base.to_ascii_lowercase();
    if base.starts_with('.') {
        Ok(host.ends_with(&base))
    } else {
        Ok(host == base)
    }
}

/// The host of a URI with an authority (`scheme://[userinfo@]host[:port]/...`).
fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host =
        if let Some(v6) = host_port.strip_prefix('[') { v6.split(']').next()? } else { host_port.split(':').next()? };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `uniformResourceIdentifier` (RFC 5280 section 4.2.1.10): "the constraint MUST be
/// specified as a fully qualified domain name and MAY specify a host or a domain [...]
/// When the constraint begins with a period, it MAY be expanded with one or more
/// labels". A URI without a host fails closed.
fn uri_within(name: &str, base: &str) -> Result<bool, Unsupported> {
    let host = uri_host(name).ok_or(Unsupported)?;
    let base = base.to_ascii_lowercase();
    if base.starts_with('.') {
        Ok(host.ends_with(&base))
    } else {
        Ok(host == base)
    }
}

/// `iPAddress` (RFC 5280 section 4.2.1.10): the constraint is an address and a mask of
/// the same length.
fn ip_within(name: &[u8], base: &[u8]) -> Result<bool, Unsupported> {
    if base.len() != name.len() * 2 || !(name.len() == 4 || name.len() == 16) {
        return Err(Unsupported);
    }
    let (address, mask) = base.split_at(name.len());
    Ok(name.iter().zip(address).zip(mask).all(|((n, a), m)| n & m == a & m))
}

/// `Some(within)` if `base` has the form of `name`, `None` otherwise.
fn within(name: &GeneralName, base: &GeneralName) -> Option<Result<bool, Unsupported>> {
    Some(match (name, base) {
        (GeneralName::DirectoryName(n), GeneralName::DirectoryName(b)) => Ok(dn_within(n, b)),
        (GeneralName::Rfc822Name(n), GeneralName::Rfc822Name(b)) => mailbox_within(n.as_str(), b.as_str()),
        (GeneralName::DnsName(n), GeneralName::DnsName(b)) => Ok(dns_within(n.as_str(), b.as_str())),
        (GeneralName::UniformResourceIdentifier(n), GeneralName::UniformResourceIdentifier(b)) => {
            uri_within(n.as_str(), b.as_str())
        }
        (GeneralName::IpAddress(n), GeneralName::IpAddress(b)) => ip_within(n.as_bytes(), b.as_bytes()),
        (n, b) if form(n) == form(b) => Err(Unsupported),
        _ => return None,
    })
}

fn describe(name: &GeneralName) -> String {
    match name {
        GeneralName::DirectoryName(n) => crate::subject::rfc4514(n),
        GeneralName::Rfc822Name(s) | GeneralName::DnsName(s) | GeneralName::UniformResourceIdentifier(s) => {
            s.as_str().to_owned()
        }
        GeneralName::IpAddress(ip) => hex::encode(ip.as_bytes()),
        other => form(other).to_owned(),
    }
}

/// The names of a certificate that name constraints apply to: the subject DN (when
/// not empty), its emailAddress attributes as rfc822Names, and the subjectAltName
/// entries (RFC 5280 section 6.1.3 (b)(c), 4.2.1.10).
fn names_of(cert: &Certificate) -> Result<Vec<GeneralName>, PathError> {
    let tbs = cert.tbs_certificate();
    let mut names = Vec::new();
    let subject = tbs.subject();
    if !subject.is_empty() {
        names.push(GeneralName::DirectoryName(subject.clone()));
    }
    // emailAddress is an rfc822Name for name constraints (RFC 5280 section 4.2.1.10:
    // "the rfc822Name constraint MUST be applied to the attribute of type emailAddress
    // in the subject distinguished name").
    for attribute in subject.iter().filter(|a| a.oid == crate::oid::AT_EMAIL_ADDRESS) {
        let mailbox = attribute
            .value
            .decode_as::<der::asn1::Ia5String>()
            .map_err(|e| PathError::Malformed { reason: format!("emailAddress of {}: {e}", subject_of(cert)) })?;
        names.push(GeneralName::Rfc822Name(mailbox));
    }
    if let Some(san) = decode_extension::<SubjectAltName>(cert)? {
        names.extend(san.0);
    }
    Ok(names)
}

/// The permitted and excluded subtrees gathered so far along a path.
#[derive(Debug, Default)]
pub(super) struct NameConstraintsState {
    /// The permittedSubtrees of each constraining CA, kept apart.
    permitted: Vec<Vec<GeneralSubtree>>,
    /// The union of all excludedSubtrees (6.1.4 (g)(2)).
    excluded: Vec<GeneralSubtree>,
}

impl NameConstraintsState {
    /// 6.1.4 (g): take up the nameConstraints of CA certificate `cert`. RFC 5280
    /// section 4.2.1.10 says minimum MUST be zero and maximum MUST be absent; other
    /// values are refused rather than ignored.
    pub(super) fn update(&mut self, cert: &Certificate) -> Result<(), PathError> {
        let Some(constraints) = decode_extension::<NameConstraints>(cert)? else { return Ok(()) };
        let all = constraints.permitted_subtrees.iter().flatten().chain(constraints.excluded_subtrees.iter().flatten());
        for subtree in all {
            if subtree.minimum != 0 || subtree.maximum.is_some() {
                return Err(PathError::UnsupportedNameConstraint {
                    subject: subject_of(cert),
                    form: "minimum or maximum BaseDistance",
                });
            }
        }
        if let Some(permitted) = constraints.permitted_subtrees {
            self.permitted.push(permitted);
        }
        self.excluded.extend(constraints.excluded_subtrees.into_iter().flatten());
        Ok(())
    }

    /// 6.1.3 (b)(c): every name of `cert` lies within the permitted subtrees and
    /// outside the excluded subtrees. A constraint of a form certdesk cannot compare
    /// fails when the certificate has a name of that form.
    pub(super) fn check(&self, cert: &Certificate) -> Result<(), PathError> {
        if self.permitted.is_empty() && self.excluded.is_empty() {
            return Ok(());
        }
        let subject = subject_of(cert);
        let unsupported =
            |name: &GeneralName| PathError::UnsupportedNameConstraint { subject: subject.clone(), form: form(name) };
        for name in names_of(cert)? {
            for set in &self.permitted {
                let mut of_form = false;
                let mut inside = false;
                for subtree in set {
                    match within(&name, &subtree.base) {
                        None => {}
                        Some(Err(Unsupported)) => return Err(unsupported(&name)),
                        Some(Ok(hit)) => {
                            of_form = true;
                            inside |= hit;
                        }
                    }
                }
                if of_form && !inside {
                    return Err(PathError::NameNotPermitted {
                        subject,
                        name: describe(&name),
                        reason: "outside the permitted subtrees",
                    });
                }
            }
            for subtree in &self.excluded {
                match within(&name, &subtree.base) {
                    None | Some(Ok(false)) => {}
                    Some(Err(Unsupported)) => return Err(unsupported(&name)),
                    Some(Ok(true)) => {
                        return Err(PathError::NameNotPermitted {
                            subject,
                            name: describe(&name),
                            reason: "within an excluded subtree",
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn dns_names_match_whole_labels() {
        assert!(dns_within("example.com", "example.com"));
        assert!(dns_within("www.Example.com", "example.COM"));
        assert!(!dns_within("wwwexample.com", "example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("a.example.com", ".example.com"));
        assert!(dns_within("anything", ""));
    }

    #[test]
    fn mailboxes_hosts_and_domains() {
        let ok = |n, b| mailbox_within(n, b).ok();
        assert_eq!(ok("alice@example.com", "alice@example.com"), Some(true));
        assert_eq!(ok("bob@example.com", "alice@example.com"), Some(false));
        assert_eq!(ok("alice@EXAMPLE.com", "example.com"), Some(true));
        assert_eq!(ok("alice@mail.example.com", "example.com"), Some(false));
        assert_eq!(ok("alice@mail.example.com", ".example.com"), Some(true));
        assert_eq!(ok("alice@example.com", ".example.com"), Some(false));
        assert!(mailbox_within("no-at-sign", "example.com").is_err());
    }

    #[test]
    fn uri_hosts_and_ip_ranges() {
        assert_eq!(uri_within("http://user@Host.example.com:80/x", "host.example.com").ok(), Some(true));
        assert_eq!(uri_within("http://a.example.com/", ".example.com").ok(), Some(true));
        assert_eq!(uri_within("http://example.com/", ".example.com").ok(), Some(false));
        assert!(uri_within("mailto:a@example.com", "example.com").is_err());
        assert_eq!(ip_within(&[10, 1, 2, 3], &[10, 0, 0, 0, 255, 0, 0, 0]).ok(), Some(true));
        assert_eq!(ip_within(&[11, 1, 2, 3], &[10, 0, 0, 0, 255, 0, 0, 0]).ok(), Some(false));
        assert!(ip_within(&[10, 1, 2, 3], &[10, 0, 0, 0]).is_err());
    }

    #[test]
    fn distinguished_names_compare_after_preparation() {
        let a = Name::from_str("CN=Alice  Smith,O=Example,C=US").unwrap();
        let b = Name::from_str("CN=alice smith,O=EXAMPLE,C=US").unwrap();
        let base = Name::from_str("O=Example,C=US").unwrap();
        let other = Name::from_str("O=Other,C=US").unwrap();
        assert!(dn_equal(&a, &b));
        assert!(dn_within(&a, &base));
        assert!(!dn_within(&a, &other));
        assert!(!dn_within(&base, &a));
    }
}
