//! Readers of decoded X.509 structures (RFC 5280): an extension by its type, and a
//! `Time` as an [`OffsetDateTime`].
//!
//! A leaf module, so that subject, lint, issuance, path and OCSP code can all read
//! certificates without naming each other. [`find_extension`] is public as
//! `issuance::find_extension`.

use const_oid::AssociatedOid;
use der::Decode;
use time::OffsetDateTime;
use x509_cert::ext::Extensions;
use x509_cert::time::Time;

/// A `Time` (RFC 5280 4.1.2.5: UTCTime or GeneralizedTime, whole seconds) as an
/// [`OffsetDateTime`] in UTC; `None` if it is out of the range `time` can hold.
pub(crate) fn to_offset(t: &Time) -> Option<OffsetDateTime> {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// Finds and decodes the extension of type `T`, if present and well-formed.
pub fn find_extension<T: AssociatedOid + for<'a> Decode<'a>>(extensions: Option<&Extensions>) -> Option<T> {
    extensions?.iter().find(|e| e.extn_id == T::OID).and_then(|e| T::from_der(e.extn_value.as_bytes()).ok())
}
