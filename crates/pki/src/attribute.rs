//! Rules for the values of name attributes (X.520, RFC 5280 appendix A, CA/B Forum
//! S/MIME BR 7.1.4): upper bounds, significant content, no HTML entities, country codes.
//!
//! A leaf module: [`crate::subject`] applies these rules when it validates subject data,
//! and the pre-issuance lint applies them to the names of the to-be-signed certificate
//! (it re-exports them as `lint::attribute`, their public path).
//!
//! The tables (`attribute/countries.txt`, `attribute/html-entities.txt`) are made by
//! `scripts/gen-lint-tables` from the data pkilint uses, so these rules refuse at least
//! what pkilint reports (`itu.invalid_asn1_syntax`, `cabf.insignificant_attribute_value_present`,
//! `cabf.name.attribute_value_contains_html_entity`, `cabf.invalid_country_code`).

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::oid;

/// ISO 3166-1 alpha-2 codes in use.
const COUNTRIES: &str = include_str!("attribute/countries.txt");
/// HTML entity names that `html.unescape` resolves without a closing `;`.
const LEGACY_ENTITIES: &str = include_str!("attribute/html-entities.txt");

/// `ub-common-name` (RFC 5280 appendix A.1): a commonName has at most 64 characters.
pub const MAX_COMMON_NAME: usize = 64;

/// The upper bound in characters of an attribute certdesk writes or reads in names
/// (RFC 5280 appendix A.1), `None` for attributes without one here.
pub fn upper_bound(attribute: &der::asn1::ObjectIdentifier) -> Option<usize> {
    match *attribute {
        o if o == oid::AT_COMMON_NAME => Some(MAX_COMMON_NAME),
        o if o == oid::AT_ORGANIZATION => Some(64),
        o if o == oid::AT_COUNTRY => Some(2),
        o if o == oid::AT_SURNAME || o == oid::AT_GIVEN_NAME => Some(32_768),
        o if o == oid::AT_EMAIL_ADDRESS => Some(255),
        _ => None,
    }
}

/// Whether a value carries something: at least one letter, digit or symbol (Unicode
/// general categories L, N, S). `.`, `-` or only punctuation and spaces do not (BR
/// 7.1.4.2.2: "attributes MUST NOT contain metadata such as '.', '-', and ' '").
pub fn is_significant(value: &str) -> bool {
    value.chars().any(|c| {
        matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number | GeneralCategoryGroup::Symbol
        )
    })
}

/// The first HTML character reference in `value` (`&amp;`, `&#38;`, `&#x26;`, or an
/// entity HTML resolves without `;` such as `&amp` or `&copy`), as it appears.
pub fn html_entity(value: &str) -> Option<&str> {
    for (at, _) in value.match_indices('&') {
        let rest = value.get(at + 1..).unwrap_or_default();
        let mut chars = rest.chars();
        let entity_len = match chars.next() {
            // Numeric: &#123 or &#x7b, with or without ';'.
            Some('#') => {
                let digits = rest.get(1..).unwrap_or_default();
                let (hex, body) = match digits.strip_prefix(['x', 'X']) {
                    Some(body) => (true, body),
                    None => (false, digits),
                };
                let n =
                    body.chars().take_while(|c| if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() }).count();
                (n > 0).then(|| 1 + usize::from(hex) + n)
            }
            Some(_) => {
                // Named with ';' (any name: stricter than the list of HTML5 names).
                let name: String = rest.chars().take_while(|c| !"\t\n\u{c} <&#;".contains(*c)).take(33).collect();
                let name_len = name.len();
                if (1..=32).contains(&name.chars().count()) && rest.get(name_len..).is_some_and(|r| r.starts_with(';'))
                {
                    Some(name_len + 1)
                } else {
                    // Without ';': the legacy names, matched as a prefix.
                    LEGACY_ENTITIES.lines().filter(|e| rest.starts_with(e)).map(str::len).max()
                }
            }
            None => None,
        };
        if let Some(len) = entity_len {
            return value.get(at..at + 1 + len);
        }
    }
    None
}

/// Whether `code` is an ISO 3166-1 alpha-2 country code in use (upper case; `XX`,
/// `UK` or `EU` are not).
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.lines().any(|c| c == code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn significance() {
        for value in ["Ann", "Ž", "李", "1&1", "€"] {
            assert!(is_significant(value), "{value}");
        }
        for value in [".", "-", " - ", "...", "'", "\u{301}", "()"] {
            assert!(!is_significant(value), "{value:?}");
        }
    }

    #[test]
    fn html_entities_as_python_html_unescape_finds_them() {
        for (value, entity) in [
            ("Smith &amp; Sons", "&amp;"),
            ("Smith &amp Sons", "&amp"),
            ("Ben &copyright", "&copy"),
            ("A&#38;B", "&#38"),
            ("A&#x26;B", "&#x26"),
            ("x &foo; y", "&foo;"),
            ("&lt;b&gt;", "&lt;"),
        ] {
            assert_eq!(html_entity(value), Some(entity), "{value}");
        }
        for value in ["AT&T", "Smith & Sons", "M&Ms", "P&G", "a&", "& ;", "&#", "&#x"] {
            assert_eq!(html_entity(value), None, "{value}");
        }
    }

    #[test]
    fn countries() {
        assert!(is_country_code("DE") && is_country_code("GB") && is_country_code("FR"));
        for bad in ["UK", "XX", "EU", "de", "D", "DEU", ""] {
            assert!(!is_country_code(bad), "{bad}");
        }
    }
}
