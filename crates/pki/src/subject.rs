//! Validated subject data: e-mail addresses, personal names and the organisation, and
//! the X.501 names built from them.
//!
//! Parse, don't validate: raw strings become these types at the edge, and issuance
//! accepts only these types. The subject of a certificate is always built from
//! validated data, never copied from a CSR.

use der::asn1::{Any, Ia5String, PrintableString, SetOfVec, Utf8StringRef};
use der::{Decode, Encode};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::oid;

/// Errors in subject data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubjectError {
    /// Not a usable e-mail address.
    #[error("{value:?} is not a valid e-mail address: {reason}")]
    InvalidEmail {
        /// The rejected input.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A name field is empty, too long or contains control characters.
    #[error("the {field} {value:?} is not acceptable: {reason}")]
    InvalidName {
        /// Which field.
        field: &'static str,
        /// The rejected input.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The country is not a two-letter ISO 3166-1 code.
    #[error("{value:?} is not a two-letter country code (ISO 3166-1 alpha-2, e.g. DE)")]
    InvalidCountry {
        /// The rejected input.
        value: String,
    },
    /// The organizationIdentifier does not follow CA/B Forum S/MIME BR 7.1.4.2.2 (d).
    #[error("{value:?} is not an organizationIdentifier of the form TTTCC-reference (e.g. VATDE-123456789)")]
    InvalidOrganizationIdentifier {
        /// The rejected input.
        value: String,
    },
    /// DER encoding failed.
    #[error("the name could not be encoded: {0}")]
    Encoding(#[from] der::Error),
}

/// An e-mail address usable as an rfc822Name (RFC 5280 4.2.1.6): ASCII, a dot-atom
/// local part (RFC 5321 4.1.2) and a domain of LDH labels with at least one dot. The
/// domain is lower-cased; the local part is kept as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Validates an address.
    pub fn parse(input: &str) -> Result<Self, SubjectError> {
        let err = |reason| SubjectError::InvalidEmail { value: input.to_string(), reason };
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err(err("it is longer than 254 characters"));
        }
        if !trimmed.is_ascii() {
            return Err(err("internationalised addresses (SmtpUTF8Mailbox) are not supported yet"));
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(|| err("it has no @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(err("the part before @ must have 1 to 64 characters"));
        }
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if local.split('.').any(|atom| atom.is_empty() || !atom.chars().all(atext)) {
            return Err(err("the part before @ contains characters that are not allowed"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(err("the domain must contain a dot"));
        }
        for label in &labels {
            let ldh = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if label.is_empty() || label.len() > 63 || !ldh || label.starts_with('-') || label.ends_with('-') {
                return Err(err("the domain is not a valid host name"));
            }
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    /// The domain (after the `@`), in lower case.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name field (given name, surname, organisation): 1 to 64 characters (the X.520
/// upper bound `ub-name`), no control characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameField(String);

impl NameField {
    /// Validates a field; `field` names it in the error.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, SubjectError> {
        let value = input.trim();
        let err = |reason| SubjectError::InvalidName { field, value: input.to_string(), reason };
        if value.is_empty() {
            return Err(err("it is empty"));
        }
        if value.chars().count() > 64 {
            return Err(err("it is longer than 64 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(err("it contains control characters"));
        }
        Ok(Self(value.to_string()))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person as identified by the registration officer (CA/B Forum S/MIME BR 3.2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// Mailbox whose control was validated (BR 3.2.2).
    pub email: EmailAddress,
    /// Given name as on the identity document.
    pub given_name: NameField,
    /// Surname as on the identity document.
    pub surname: NameField,
}

impl Person {
    /// The personal name "Given Surname" used as commonName (BR 7.1.4.2.2 (a)).
    pub fn personal_name(&self) -> String {
        format!("{} {}", self.given_name.as_str(), self.surname.as_str())
    }
}

/// The sponsoring organisation (BR 7.1.4.2.2 (b), (d), (n)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// organizationName.
    pub name: NameField,
    /// countryName, ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// organizationIdentifier (e.g. `VATDE-123456789`), when the organisation has one.
    pub identifier: Option<String>,
}

impl Organization {
    /// Validates organisation data.
    pub fn new(name: &str, country: &str, identifier: Option<&str>) -> Result<Self, SubjectError> {
        let name = NameField::parse("organisation name", name)?;
        let country_ok = country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic());
        if !country_ok {
            return Err(SubjectError::InvalidCountry { value: country.to_string() });
        }
        let country = country.to_ascii_uppercase();
        let identifier = match identifier.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(id) => {
                // BR 7.1.4.2.2 (d): 3 letters registration scheme, 2 letters country,
                // optional "+" and state code, hyphen, registration reference.
                let (prefix, reference) = id
                    .split_once('-')
                    .ok_or_else(|| SubjectError::InvalidOrganizationIdentifier { value: id.to_string() })?;
                let scheme_ok = prefix.len() >= 5
                    && prefix.chars().take(5).all(|c| c.is_ascii_uppercase())
                    && ["VAT", "NTR", "PSD", "LEI", "GOV", "INT"].iter().any(|s| prefix.starts_with(s));
                let reference_ok = !reference.is_empty()
                    && reference.len() <= 64
                    && reference.chars().all(|c| c.is_ascii_alphanumeric() || "-./".contains(c));
                if !scheme_ok || !reference_ok {
                    return Err(SubjectError::InvalidOrganizationIdentifier { value: id.to_string() });
                }
                Some(id.to_string())
            }
        };
        Ok(Self { name, country, identifier })
    }
}

/// Builds an X.501 Name, one attribute per RDN, in the order given.
#[derive(Default)]
pub struct NameBuilder {
    rdns: RdnSequence,
}

impl NameBuilder {
    /// Adds a UTF8String attribute.
    pub fn utf8(mut self, oid: der::asn1::ObjectIdentifier, value: &str) -> Result<Self, SubjectError> {
        let value = Any::encode_from(&Utf8StringRef::new(value)?)?;
        self.push(oid, value)?;
        Ok(self)
    }

    /// Adds a PrintableString attribute (countryName, RFC 5280 appendix A).
    pub fn printable(mut self, oid: der::asn1::ObjectIdentifier, value: &str) -> Result<Self, SubjectError> {
        let value = Any::encode_from(&PrintableString::new(value)?)?;
        self.push(oid, value)?;
        Ok(self)
    }

    /// Adds an IA5String attribute.
    pub fn ia5(mut self, oid: der::asn1::ObjectIdentifier, value: &str) -> Result<Self, SubjectError> {
        let value = Any::encode_from(&Ia5String::new(value)?)?;
        self.push(oid, value)?;
        Ok(self)
    }

    fn push(&mut self, oid: der::asn1::ObjectIdentifier, value: Any) -> Result<(), SubjectError> {
        let mut set = SetOfVec::new();
        set.insert(AttributeTypeAndValue { oid, value })?;
        let mut rdn = RelativeDistinguishedName::default();
        for atv in set.iter() {
            rdn.insert(atv.clone())?;
        }
        self.rdns.push(rdn);
        Ok(())
    }

    /// The finished name.
    pub fn build(self) -> Result<Name, SubjectError> {
        // Encode and decode: the name is checked by the same parser that reads names.
        Ok(Name::from_der(&self.rdns.to_der()?)?)
    }
}

/// A name as an RFC 4514 string (most specific RDN first), e.g.
/// `CN=Jane Doe,GN=Jane,SN=Doe,organizationIdentifier=VATDE-1,O=Uni,C=DE`.
/// Attributes certdesk writes get their short names; others appear as dotted OIDs
/// with the value's DER in hex (RFC 4514 2.4).
pub fn rfc4514(name: &Name) -> String {
    let short = |oid: &der::asn1::ObjectIdentifier| match *oid {
        o if o == oid::AT_COMMON_NAME => Some("CN"),
        o if o == oid::AT_SURNAME => Some("SN"),
        o if o == oid::AT_GIVEN_NAME => Some("GN"),
        o if o == oid::AT_ORGANIZATION => Some("O"),
        o if o == oid::AT_COUNTRY => Some("C"),
        o if o == oid::AT_ORGANIZATION_IDENTIFIER => Some("organizationIdentifier"),
        o if o == oid::AT_EMAIL_ADDRESS => Some("emailAddress"),
        _ => None,
    };
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let text = match (short(&atv.oid), std::str::from_utf8(atv.value.value())) {
                    (Some(label), Ok(value)) => Some(format!("{label}={}", escape_rfc4514(value))),
                    _ => None,
                };
                text.unwrap_or_else(|| {
                    let der = atv.value.to_der().unwrap_or_default();
                    format!("{}=#{}", atv.oid, hex::encode(der))
                })
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

/// The mailboxes a certificate is issued to, as RFC 8550 section 3 reads them: the
/// rfc822Name entries of its subjectAltName, then the PKCS #9 emailAddress attributes of
/// its subject (where older certificates keep them), each once, as written.
pub fn certificate_mailboxes(cert: &x509_cert::Certificate) -> Vec<String> {
    let tbs = cert.tbs_certificate();
    let mut out: Vec<String> = Vec::new();
    if let Some(san) = crate::issuance::find_extension::<x509_cert::ext::pkix::SubjectAltName>(tbs.extensions()) {
        for name in san.0 {
            if let x509_cert::ext::pkix::name::GeneralName::Rfc822Name(mailbox) = name {
                out.push(mailbox.as_str().to_owned());
            }
        }
    }
    for attribute in tbs.subject().iter().filter(|a| a.oid == oid::AT_EMAIL_ADDRESS) {
        if let Ok(mailbox) = attribute.value.decode_as::<Ia5String>() {
            let mailbox = mailbox.as_str().to_owned();
            if !out.iter().any(|m| m.eq_ignore_ascii_case(&mailbox)) {
                out.push(mailbox);
            }
        }
    }
    out
}

/// RFC 4514 2.4 escaping of an attribute value.
fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject of a CA certificate: CN, O, C.
pub fn ca_name(common_name: &str, org: &Organization) -> Result<Name, SubjectError> {
    NameBuilder::default()
        .printable(oid::AT_COUNTRY, &org.country)?
        .utf8(oid::AT_ORGANIZATION, org.name.as_str())?
        .utf8(oid::AT_COMMON_NAME, common_name)?
        .build()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_parse_and_domain_is_lowercased() {
        assert_eq!(EmailAddress::parse("Jane.Doe@Uni-Example.DE").unwrap().as_str(), "Jane.Doe@uni-example.de");
        assert_eq!(EmailAddress::parse("a+b@x.y").unwrap().local_part(), "a+b");
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@x.de",
            "jane@localhost",
            "ja ne@x.de",
            "jane..doe@x.de",
            "jane@-x.de",
            "jäne@x.de",
            "a@b@c",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn organisation_rules() {
        assert!(Organization::new("Uni", "de", Some("VATDE-123456789")).is_ok());
        assert_eq!(Organization::new("Uni", "de", None).unwrap().country, "DE");
        assert!(Organization::new("Uni", "Germany", None).is_err());
        assert!(Organization::new("Uni", "DE", Some("123")).is_err());
        assert!(Organization::new("", "DE", None).is_err());
    }

    #[test]
    fn rfc4514_strings_are_most_specific_first_and_escaped() {
        let org = Organization::new("Uni, Inc", "de", None).unwrap();
        let name = ca_name("Root + CA", &org).unwrap();
        assert_eq!(rfc4514(&name), "CN=Root \\+ CA,O=Uni\\, Inc,C=DE");
    }

    #[test]
    fn name_fields_refuse_control_characters() {
        assert!(NameField::parse("given name", "Ann\u{0}").is_err());
        assert!(NameField::parse("given name", &"x".repeat(65)).is_err());
        assert_eq!(NameField::parse("given name", "  Ann ").unwrap().as_str(), "Ann");
    }
}
