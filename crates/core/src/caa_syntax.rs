//! The syntax of a CAA `issue`/`issuemail` value (RFC 8659 section 4.2), shared by the
//! configuration check and the desk's CAA lookups.

/// The issuer domain of an `issuemail` value (RFC 8659 section 4.2 syntax): `Some(None)`
/// for no issuer (`";"`, empty), `None` for a malformed value.
pub fn issuer_domain(value: &[u8]) -> Option<Option<String>> {
    let text = std::str::from_utf8(value).ok()?;
    let wsp = |c: char| c == ' ' || c == '\t';
    let (name, parameters) = match text.split_once(';') {
        Some((name, parameters)) => (name.trim_matches(wsp), Some(parameters)),
        None => (text.trim_matches(wsp), None),
    };
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        matches!((bytes.first(), bytes.last()), (Some(a), Some(z)) if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    };
    if !name.is_empty() && !name.split('.').all(label_ok) {
        return None;
    }
    for parameter in parameters.unwrap_or_default().split(';').map(|p| p.trim_matches(wsp)) {
        if parameter.is_empty() {
            continue;
        }
        let (tag, value) = parameter.split_once('=')?;
        let value = value.trim_matches(wsp);
        if !label_ok(tag.trim_matches(wsp)) || !value.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b';') {
            return None;
        }
    }
    Some((!name.is_empty()).then(|| name.to_ascii_lowercase()))
}
