//! Pre-issuance lints (CA/B Forum S/MIME BR 4.3.1.2): the to-be-signed certificate is
//! decoded by `x509-cert` (a parser we did not write) and checked field by field
//! against its profile. Any finding stops issuance before anything is signed.
//!
//! For the CA/B Forum profiles it refuses at least everything pkilint
//! (`lint_cabf_smime_cert`) reports as ERROR or FATAL on what certdesk can produce:
//! internal names in the CRL and OCSP URLs and in mailboxes ([`internet`]), names over
//! their X.520 upper bounds, insignificant values, HTML entities and unknown countries
//! ([`attribute`]), organizationIdentifiers out of BR 7.1.4.2.2 (d), and key and
//! signature algorithm encodings outside BR 7.1.3. The CLI's differential test
//! (`crates/cli/tests/all/issue.rs`) checks this against pkilint itself.

pub mod internet;

/// Rules for the values of name attributes (X.520, RFC 5280 appendix A, CA/B Forum
/// S/MIME BR 7.1.4): upper bounds, significant content, no HTML entities, country codes.
///
/// Defined in a leaf module that [`crate::subject`] uses too, to validate subject data;
/// re-exported here, their public path.
pub mod attribute {
    pub use crate::attribute::*;
}

use der::Decode;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    ExtendedKeyUsage, KeyUsage, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::TbsCertificate;

use crate::oid;
use crate::profile::SubscriberProfile;
use crate::request::{IssuerInfo, SubscriberRequest};
use crate::subject::check_organization_identifier;
use crate::x509::{find_extension, to_offset};

/// Lints a subscriber TBSCertificate; returns one line per finding (empty = clean).
pub fn lint_subscriber(
    tbs_der: &[u8],
    profile: &SubscriberProfile,
    issuer: &IssuerInfo,
    request: &SubscriberRequest,
) -> Vec<String> {
    let mut findings = Vec::new();
    let tbs = match TbsCertificate::from_der(tbs_der) {
        Ok(tbs) => tbs,
        Err(e) => return vec![format!("e_tbs_undecodable: {e}")],
    };
    let mut fail = |code: &str, msg: String| findings.push(format!("{code}: {msg}"));

    if tbs.version() != x509_cert::certificate::Version::V3 {
        fail("e_version", "certificate is not version 3".into());
    }
    // RFC 5280 4.1.2.2 and BR 7.1: positive, at most 20 octets, at least 64 random bits.
    let serial = tbs.serial_number().as_bytes();
    if serial.len() > 20 || serial.len() < 9 || serial.first().is_none_or(|b| b & 0x80 != 0) {
        fail("e_serial", format!("serial number of {} bytes is not a positive 9..=20 octet integer", serial.len()));
    }
    if tbs.signature() != issuer.signature_algorithm() {
        fail("e_signature_algorithm", "signature field differs from the issuer's algorithm".into());
    }
    if tbs.issuer() != issuer.name() {
        fail("e_issuer_name", "issuer name differs from the issuing CA's subject".into());
    }
    // Validity (BR 6.3.2).
    match (to_offset(&tbs.validity().not_before), to_offset(&tbs.validity().not_after)) {
        (Some(nb), Some(na)) => {
            let days = (na - nb).whole_seconds() as f64 / 86_400.0;
            if na <= nb {
                fail("e_validity_order", "notAfter is not after notBefore".into());
            }
            if days > f64::from(profile.id().max_validity_days()) {
                fail(
                    "e_validity_too_long",
                    format!("{days:.1} days exceed the {} day maximum", profile.id().max_validity_days()),
                );
            }
        }
        _ => fail("e_validity_undecodable", "validity times cannot be read".into()),
    }
    // The key (BR 6.1.5, 6.1.6) and its match with the request.
    // The key passed the key rules (BR 6.1.5, 6.1.6) when it became an
    // `AcceptedPublicKey`; here it must be exactly that key.
    let key_kind = if tbs.subject_public_key_info() == request.public_key.spki() {
        Some(request.public_key.kind())
    } else {
        fail("e_public_key_mismatch", "the key is not the requested key".into());
        None
    };

    // Extensions: no duplicates, each as the profile demands.
    let extensions = tbs.extensions();
    let all = extensions.map(|e| e.as_slice()).unwrap_or_default();
    for (i, ext) in all.iter().enumerate() {
        if all.iter().skip(i + 1).any(|other| other.extn_id == ext.extn_id) {
            fail("e_duplicate_extension", format!("extension {} appears twice", ext.extn_id));
        }
    }
    let critical = |oid| all.iter().find(|e| e.extn_id == oid).map(|e| e.critical);

    match (find_extension::<KeyUsage>(extensions), key_kind) {
        (Some(ku), Some(kind)) => {
            // As the request asks (dual use, signing only, key management only: BR
            // 7.1.2.3 (e) allows each in every generation).
            let expected = request.key_use.key_usage(kind).map(|k| k.0);
            if Some(ku.0) != expected {
                fail("e_key_usage", format!("keyUsage {:?} is not {:?} for a {kind} key", ku.0, expected));
            }
            if critical(oid::CE_KEY_USAGE) != Some(true) {
                fail("e_key_usage_not_critical", "keyUsage must be critical (BR 7.1.2.3 (e))".into());
            }
        }
        (None, _) => fail("e_key_usage_missing", "keyUsage is required".into()),
        _ => {}
    }
    match find_extension::<ExtendedKeyUsage>(extensions) {
        Some(eku) => {
            if !eku.0.contains(&oid::KP_EMAIL_PROTECTION) {
                fail("e_eku_email_protection", "extKeyUsage lacks id-kp-emailProtection".into());
            }
            if profile.id().is_strict() && eku.0.len() != 1 {
                fail("e_eku_strict", "strict profiles allow only id-kp-emailProtection (BR 7.1.2.3 (f))".into());
            }
        }
        None => fail("e_eku_missing", "extKeyUsage is required (BR 7.1.2.3 (f))".into()),
    }
    match find_extension::<SubjectAltName>(extensions) {
        Some(san) => {
            let email = request.person.email.as_str();
            let has = san.0.iter().any(|n| matches!(n, GeneralName::Rfc822Name(m) if m.as_str() == email));
            if !has {
                fail("e_san_mailbox", format!("subjectAltName lacks rfc822Name {email}"));
            }
            if san.0.iter().any(|n| !matches!(n, GeneralName::Rfc822Name(_))) {
                fail("e_san_other", "subjectAltName holds names other than mailboxes".into());
            }
            if profile.id().br_policy_oid().is_some() {
                for name in &san.0 {
                    let GeneralName::Rfc822Name(mailbox) = name else { continue };
                    let domain = mailbox.as_str().rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                    if let Err(why) = internet::public_host(domain) {
                        fail(
                            "e_mailbox_internal_domain",
                            format!(
                                "the domain of {mailbox} is {why}: BR certificates name public mailboxes only \
                                 (BR 1.6.1)"
                            ),
                        );
                    }
                }
            }
        }
        None => fail("e_san_missing", "subjectAltName is required (BR 7.1.2.3 (h))".into()),
    }
    if let Some(bc) = find_extension::<BasicConstraints>(extensions) {
        if bc.ca {
            fail("e_basic_constraints_ca", "a subscriber certificate must not be a CA".into());
        }
    }
    match find_extension::<AuthorityKeyIdentifier>(extensions) {
        Some(aki) if aki.key_identifier.as_ref().map(|k| k.as_bytes()) == Some(issuer.key_identifier()) => {}
        _ => fail("e_authority_key_identifier", "authorityKeyIdentifier must name the issuing CA's key".into()),
    }
    if find_extension::<SubjectKeyIdentifier>(extensions).is_none() {
        fail("w_subject_key_identifier", "subjectKeyIdentifier is missing".into());
    }
    let http =
        |n: &GeneralName| matches!(n, GeneralName::UniformResourceIdentifier(u) if u.as_str().starts_with("http://"));
    let br = profile.id().br_policy_oid().is_some();
    // Every URL: the plain http:// form; under a BR policy, a public host (BR 1.6.1
    // Internal Name; pkilint cabf.internal_domain_name, pkix.invalid_uri_syntax).
    let mut uris: Vec<String> = Vec::new();
    if let Some(dps) = find_extension::<CrlDistributionPoints>(extensions) {
        for dp in &dps.0 {
            if let Some(DistributionPointName::FullName(names)) = &dp.distribution_point {
                uris.extend(names.iter().filter_map(|n| match n {
                    GeneralName::UniformResourceIdentifier(u) => Some(u.as_str().to_string()),
                    _ => None,
                }));
            }
        }
    }
    if let Some(aia) = find_extension::<AuthorityInfoAccessSyntax>(extensions) {
        uris.extend(aia.0.iter().filter_map(|ad| match &ad.access_location {
            GeneralName::UniformResourceIdentifier(u) => Some(u.as_str().to_string()),
            _ => None,
        }));
    }
    for uri in &uris {
        match internet::HttpUri::parse(uri) {
            Err(e) => fail("e_uri_syntax", format!("{uri}: {e}")),
            Ok(parsed) if br => {
                if let Err(why) = internet::public_host(&parsed.host) {
                    fail(
                        "e_uri_internal_name",
                        format!(
                            "{uri} names {}, which is {why}: BR certificates name public hosts only (BR 1.6.1, \
                             7.1.2.3); set a public ca.base_url",
                            parsed.host
                        ),
                    );
                }
            }
            Ok(_) => {}
        }
    }
    match find_extension::<CrlDistributionPoints>(extensions) {
        Some(dps) => {
            let ok = dps.0.iter().any(|dp| {
                matches!(&dp.distribution_point, Some(DistributionPointName::FullName(names)) if names.iter().any(http))
            });
            if !ok {
                fail("e_crl_dp_http", "cRLDistributionPoints needs an http:// URL (BR 7.1.2.3 (b))".into());
            }
        }
        None => fail("e_crl_dp_missing", "cRLDistributionPoints is required (BR 7.1.2.3 (b))".into()),
    }
    match find_extension::<AuthorityInfoAccessSyntax>(extensions) {
        Some(aia) => {
            if !aia.0.iter().all(|ad| http(&ad.access_location)) {
                fail("e_aia_http", "authorityInfoAccess locations must be http:// URLs (BR 7.1.2.3 (c))".into());
            }
        }
        None => fail("e_aia_missing", "authorityInfoAccess is required (BR 7.1.2.3 (c))".into()),
    }
    let expected_policies = profile.policies();
    match find_extension::<CertificatePolicies>(extensions) {
        Some(cp) => {
            for policy in &expected_policies {
                if !cp.0.iter().any(|p| &p.policy_identifier == policy) {
                    fail("e_policy_missing", format!("certificatePolicies lacks {policy}"));
                }
            }
        }
        None if expected_policies.is_empty() => {}
        None => fail("e_policies_missing", "certificatePolicies is required (BR 7.1.2.3 (a))".into()),
    }

    // Subject (BR 7.1.4.2).
    let subject = tbs.subject();
    let cn = subject.common_name().ok().flatten().map(|s| s.value().into_owned());
    if profile.id().names_the_person() {
        if cn.as_deref() != Some(request.person.personal_name().as_str()) {
            fail("e_subject_common_name", "commonName must be the personal name".into());
        }
        let org = subject.organization().ok().flatten().map(|s| s.value().into_owned());
        if org.as_deref() != Some(request.organization.name.as_str()) {
            fail("e_subject_organization", "organizationName must be the sponsor".into());
        }
    } else {
        if cn.as_deref() != Some(request.person.email.as_str()) {
            fail("e_subject_common_name", "commonName must be the mailbox address".into());
        }
        if subject.len() != 1 {
            fail("e_subject_mailbox_only", "a mailbox-validated subject holds only the mailbox".into());
        }
    }
    lint_names(tbs.subject(), tbs.issuer(), br, &mut fail);
    if br {
        lint_algorithms(&tbs, &mut fail);
    }
    findings
}

/// The subject and issuer names: X.520 upper bounds for every profile (a longer value
/// is malformed ASN.1: pkilint FATAL); for BR profiles also significant values, no HTML
/// entities, existing country codes, and an organizationIdentifier of BR 7.1.4.2.2 (d)
/// that agrees with countryName.
fn lint_names(
    subject: &x509_cert::name::Name,
    issuer: &x509_cert::name::Name,
    br: bool,
    fail: &mut impl FnMut(&str, String),
) {
    let label = |oid: &der::asn1::ObjectIdentifier| match *oid {
        o if o == oid::AT_COMMON_NAME => "commonName".to_string(),
        o if o == oid::AT_SURNAME => "surname".to_string(),
        o if o == oid::AT_GIVEN_NAME => "givenName".to_string(),
        o if o == oid::AT_ORGANIZATION => "organizationName".to_string(),
        o if o == oid::AT_COUNTRY => "countryName".to_string(),
        o if o == oid::AT_ORGANIZATION_IDENTIFIER => "organizationIdentifier".to_string(),
        o if o == oid::AT_EMAIL_ADDRESS => "emailAddress".to_string(),
        other => other.to_string(),
    };
    for (which, name) in [("subject", subject), ("issuer", issuer)] {
        let mut country: Option<String> = None;
        let mut organization_identifier: Option<String> = None;
        for atv in name.iter() {
            let Some(value) = attribute_text(&atv.value) else {
                fail("e_name_value_encoding", format!("the {which} {} is not a string", label(&atv.oid)));
                continue;
            };
            let chars = value.chars().count();
            if let Some(max) = attribute::upper_bound(&atv.oid) {
                if chars > max || chars == 0 {
                    fail(
                        "e_name_too_long",
                        format!(
                            "the {which} {} {value:?} has {chars} characters; X.520 allows 1 to {max} (RFC 5280 appendix A)",
                            label(&atv.oid)
                        ),
                    );
                }
            }
            if !br {
                continue;
            }
            if !attribute::is_significant(&value) {
                fail(
                    "e_name_insignificant",
                    format!(
                        "the {which} {} {value:?} holds no letter, digit or symbol (BR 7.1.4.2.2)",
                        label(&atv.oid)
                    ),
                );
            }
            if let Some(entity) = attribute::html_entity(&value) {
                fail(
                    "e_name_html_entity",
                    format!("the {which} {} {value:?} holds the HTML entity {entity:?}", label(&atv.oid)),
                );
            }
            if atv.oid == oid::AT_COUNTRY {
                if !attribute::is_country_code(&value) {
                    fail(
                        "e_country_code",
                        format!("the {which} countryName {value:?} is not an ISO 3166-1 alpha-2 code in use"),
                    );
                }
                country = Some(value.clone());
            }
            if atv.oid == oid::AT_ORGANIZATION_IDENTIFIER {
                organization_identifier = Some(value.clone());
            }
        }
        if let (Some(id), "subject") = (organization_identifier, which) {
            if let Err(why) = check_organization_identifier(&id, country.as_deref().unwrap_or_default()) {
                fail("e_organization_identifier", format!("the subject organizationIdentifier {id:?}: {why}"));
            }
        }
    }
}

/// BR 7.1.3.1 and 7.1.3.2: the subject key and the signature algorithm must be encoded
/// exactly as listed (pkilint cabf.smime.prohibited_spki_algorithm_encoding,
/// cabf.smime.prohibited_signature_algorithm_encoding): RSA, P-256, P-384 or Ed25519
/// keys; RSA PKCS#1 v1.5 or RSASSA-PSS with SHA-2, ECDSA with SHA-256 or SHA-384, or
/// Ed25519.
fn lint_algorithms(tbs: &TbsCertificate, fail: &mut impl FnMut(&str, String)) {
    use der::Encode;
    const KEYS: [&str; 4] = [
        "300d06092a864886f70d0101010500",
        "301306072a8648ce3d020106082a8648ce3d030107",
        "301006072a8648ce3d020106052b81040022",
        "300506032b6570",
    ];
    const SIGNATURES: [&str; 9] = [
        "300d06092a864886f70d01010b0500",
        "300d06092a864886f70d01010c0500",
        "300d06092a864886f70d01010d0500",
        // RSASSA-PSS with SHA-256, SHA-384, SHA-512 (MGF1 with the same hash, salt of its length).
        "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
        "304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130",
        "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140",
        "300a06082a8648ce3d040302",
        "300a06082a8648ce3d040303",
        "300506032b6570",
    ];
    let key = tbs.subject_public_key_info().algorithm.to_der().map(hex::encode).unwrap_or_default();
    if !KEYS.contains(&key.as_str()) {
        let curve = tbs
            .subject_public_key_info()
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
        let what =
            if curve == Some(oid::SECP521R1) { "a P-521 key".to_string() } else { format!("the key algorithm {key}") };
        fail(
            "e_key_algorithm",
            format!("{what} is not allowed in S/MIME BR certificates (BR 7.1.3.1): use RSA, P-256, P-384 or Ed25519"),
        );
    }
    let signature = tbs.signature().to_der().map(hex::encode).unwrap_or_default();
    if !SIGNATURES.contains(&signature.as_str()) {
        fail(
            "e_signature_algorithm_encoding",
            format!("the issuing CA's signature algorithm {signature} is not one BR 7.1.3.2 allows"),
        );
    }
}

/// The text of a directory string (UTF8String, PrintableString, IA5String), if it is one.
fn attribute_text(value: &der::asn1::Any) -> Option<String> {
    use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    use der::{Tag, Tagged};
    match value.tag() {
        Tag::Utf8String => value.decode_as::<Utf8StringRef<'_>>().ok().map(|s| s.as_str().to_string()),
        Tag::PrintableString => value.decode_as::<PrintableStringRef<'_>>().ok().map(|s| s.as_str().to_string()),
        Tag::Ia5String => value.decode_as::<Ia5StringRef<'_>>().ok().map(|s| s.as_str().to_string()),
        _ => None,
    }
}
