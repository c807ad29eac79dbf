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
    #[error("{}", name_message(field, value, reason))]
    InvalidName {
        /// Which field.
        field: &'static str,
        /// The rejected input.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The country is not a two-letter ISO 3166-1 code in use.
    #[error("{value:?} is not a country code in use (ISO 3166-1 alpha-2, e.g. DE; the United Kingdom is GB)")]
    InvalidCountry {
        /// The rejected input.
        value: String,
    },
    /// The organizationIdentifier does not follow CA/B Forum S/MIME BR 7.1.4.2.2 (d).
    #[error("{value:?} is not a valid organizationIdentifier (e.g. VATDE-123456789): {reason}")]
    InvalidOrganizationIdentifier {
        /// The rejected input.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// DER encoding failed.
    #[error("the name could not be encoded: {0}")]
    Encoding(#[from] der::Error),
}

/// What is wrong with a name field, said to the person who typed it.
fn name_message(field: &str, value: &str, reason: &str) -> String {
    if value.trim().is_empty() {
        format!("the {field} is missing: enter it as on your identity document")
    } else {
        format!("the {field} {value:?} cannot be used: {reason}")
    }
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

/// A name field (given name, surname, organisation): 1 to 64 characters, no control
/// characters, trimmed; at least one letter, digit or symbol (not `.` or `-` alone, BR
/// 7.1.4.2.2) and no HTML character reference (`Smith &amp; Sons`).
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
        if !crate::attribute::is_significant(value) {
            return Err(err("it holds no letter or digit (a placeholder such as '.' or '-' is not a name)"));
        }
        if crate::attribute::html_entity(value).is_some() {
            return Err(err("it contains an HTML character reference such as &amp; (write the character itself)"));
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
    /// Validates organisation data: the name as a [`NameField`], the country an ISO
    /// 3166-1 alpha-2 code in use (not `UK`, not `XX`), the organizationIdentifier as
    /// BR 7.1.4.2.2 (d) and pkilint read it (see [`check_organization_identifier`]).
    pub fn new(name: &str, country: &str, identifier: Option<&str>) -> Result<Self, SubjectError> {
        let name = NameField::parse("organisation name", name)?;
        let country_ok = country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic());
        let upper = country.to_ascii_uppercase();
        if !country_ok || !crate::attribute::is_country_code(&upper) {
            return Err(SubjectError::InvalidCountry { value: country.to_string() });
        }
        let country = upper;
        let identifier = match identifier.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(id) => {
                check_organization_identifier(id, &country)
                    .map_err(|reason| SubjectError::InvalidOrganizationIdentifier { value: id.to_string(), reason })?;
                Some(id.to_string())
            }
        };
        Ok(Self { name, country, identifier })
    }
}

/// Checks an organizationIdentifier (CA/B Forum S/MIME BR 7.1.4.2.2 (d)):
/// `VAT`, `NTR` or `PSD` + the country + `-` + a registration reference (`NTR` may add
/// `+` and a state or province code of 1 to 3 letters or digits), `LEIXG-` + an ISO
/// 17442 LEI with a valid check sum, `GOV` + the country (no reference), or `INTXG`.
/// The country is the organisation's countryName (pkilint
/// cabf.smime.org_identifier_and_country_name_attribute_inconsistent).
pub fn check_organization_identifier(id: &str, country: &str) -> Result<(), &'static str> {
    let (head, reference) = match id.split_once('-') {
        Some((head, reference)) => (head, Some(reference)),
        None => (id, None),
    };
    let (prefix, state) = match head.split_once('+') {
        Some((prefix, state)) => (prefix, Some(state)),
        None => (head, None),
    };
    let (scheme, id_country) = (prefix.get(..3).unwrap_or_default(), prefix.get(3..).unwrap_or_default());
    if prefix.len() != 5 || !prefix.chars().all(|c| c.is_ascii_uppercase()) {
        return Err("it must start with a three-letter scheme and a two-letter country, e.g. VATDE-");
    }
    let reference_ok =
        |r: &str| !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || "-./".contains(c));
    match scheme {
        "VAT" | "NTR" | "PSD" => {
            if id_country != country {
                return Err("its country must be the organisation's country (countryName)");
            }
            if !reference.is_some_and(reference_ok) {
                return Err("the registration reference after '-' must be 1 to 64 letters, digits, '-', '.' or '/'");
            }
            match state {
                None => Ok(()),
                Some(sp)
                    if scheme == "NTR"
                        && (1..=3).contains(&sp.len())
                        && sp.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    Ok(())
                }
                Some(_) => Err("a state or province (+SP) is allowed only with NTR, as 1 to 3 letters or digits"),
            }
        }
        "LEI" => match (id_country, state, reference) {
            ("XG", None, Some(lei)) if is_lei(lei) => Ok(()),
            ("XG", None, Some(_)) => Err("an LEI is 18 letters or digits and 2 check digits (ISO 17442) that add up"),
            _ => Err("an LEI identifier is LEIXG- and the LEI"),
        },
        "GOV" => {
            if id_country != country {
                return Err("its country must be the organisation's country (countryName)");
            }
            match (state, reference) {
                (_, Some(_)) => Err("a GOV identifier carries no registration reference (BR 7.1.4.2.2 (d))"),
                (Some(sp), None) if !(1..=3).contains(&sp.len()) || !sp.chars().all(|c| c.is_ascii_alphanumeric()) => {
                    Err("a state or province (+SP) is 1 to 3 letters or digits")
                }
                _ => Ok(()),
            }
        }
        "INT" => match (id_country, state, reference) {
            ("XG", None, None) => Ok(()),
            _ => Err("an international organisation's identifier is INTXG, with no reference"),
        },
        _ => Err("the registration scheme must be VAT, NTR, PSD, LEI, GOV or INT"),
    }
}

/// ISO 17442: 18 upper-case letters or digits, then two check digits (ISO 7064 MOD 97-10).
fn is_lei(lei: &str) -> bool {
    if lei.len() != 20 || !lei.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) {
        return false;
    }
    if !lei.chars().skip(18).all(|c| c.is_ascii_digit()) {
        return false;
    }
    let mut remainder: u32 = 0;
    for c in lei.chars() {
        let value = c.to_digit(36).unwrap_or(0);
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
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
    if let Some(san) = crate::x509::find_extension::<x509_cert::ext::pkix::SubjectAltName>(tbs.extensions()) {
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
pub fn escape_rfc4514(value: &str) -> String {
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

/// The subject of a CA certificate: CN, O, C. The commonName has at most 64
/// characters (`ub-common-name`, RFC 5280 appendix A).
pub fn ca_name(common_name: &str, org: &Organization) -> Result<Name, SubjectError> {
    if common_name.chars().count() > crate::attribute::MAX_COMMON_NAME {
        return Err(SubjectError::InvalidName {
            field: "CA common name",
            value: common_name.to_string(),
            reason: "it is longer than 64 characters",
        });
    }
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
        for bad_country in ["UK", "XX", "EU"] {
            assert!(Organization::new("Uni", bad_country, None).is_err(), "{bad_country}");
        }
        for name in [".", "-", "Smith &amp; Sons"] {
            assert!(Organization::new(name, "DE", None).is_err(), "{name}");
        }
        for good in [
            "VATDE-123456789",
            "NTRDE+BY-HRB123",
            "PSDDE-BAFIN-1",
            "GOVDE",
            "GOVDE+BY",
            "INTXG",
            "LEIXG-5493001KJTIIGC8Y1R12",
        ] {
            assert!(Organization::new("Uni", "DE", Some(good)).is_ok(), "{good}");
        }
        for bad in [
            "VATFR-123",
            "VATDE+BY-1",
            "VATDE",
            "GOVDE-1",
            "INTXG-1",
            "LEIXG-5493001KJTIIGC8Y1R13",
            "XYZDE-1",
            "VAT:DE-1",
            "vatde-1",
        ] {
            assert!(Organization::new("Uni", "DE", Some(bad)).is_err(), "{bad}");
        }
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
        let empty = NameField::parse("given name", " ").unwrap_err().to_string();
        assert_eq!(empty, "the given name is missing: enter it as on your identity document");
        let dot = NameField::parse("surname", ".").unwrap_err().to_string();
        assert!(dot.starts_with("the surname \".\" cannot be used: it holds no letter"), "{dot}");
        for bad in [".", "-", " . ", "Smith &amp; Sons", "A&#38;B"] {
            assert!(NameField::parse("surname", bad).is_err(), "{bad}");
        }
        for good in ["AT&T", "O'Brien", "Müller-Lüdenscheidt", "李"] {
            assert!(NameField::parse("surname", good).is_ok(), "{good}");
        }
        let org = Organization::new("Uni", "DE", None).unwrap();
        assert!(ca_name(&"x".repeat(65), &org).is_err());
    }
}
