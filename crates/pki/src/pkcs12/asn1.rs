//! The RFC 7292 structures, with their ASN.1 definitions.
//!
//! Fields that the ASN.1 marks `DEFAULT` are `Option`s here, so a producer that
//! writes the default value explicitly (BER allows it) still decodes.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::Sequence;
use spki::AlgorithmIdentifierOwned;

/// `PFX` (RFC 7292 section 4):
///
/// ```asn1
/// PFX ::= SEQUENCE {
///   version    INTEGER {v3(3)}(v3,...),
///   authSafe   ContentInfo,
///   macData    MacData OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Pfx {
    pub(crate) version: u8,
    pub(crate) auth_safe: ContentInfo,
    #[asn1(optional = "true")]
    pub(crate) mac_data: Option<MacData>,
}

/// `MacData` (RFC 7292 section 4):
///
/// ```asn1
/// MacData ::= SEQUENCE {
///   mac        DigestInfo,
///   macSalt    OCTET STRING,
///   iterations INTEGER DEFAULT 1 }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct MacData {
    pub(crate) mac: DigestInfo,
    pub(crate) mac_salt: OctetString,
    #[asn1(optional = "true")]
    pub(crate) iterations: Option<u64>,
}

/// `DigestInfo` (RFC 8017 section 9.2, referenced by RFC 7292 section 4):
///
/// ```asn1
/// DigestInfo ::= SEQUENCE {
///   digestAlgorithm DigestAlgorithmIdentifier,
///   digest          OCTET STRING }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct DigestInfo {
    pub(crate) digest_algorithm: AlgorithmIdentifierOwned,
    pub(crate) digest: OctetString,
}

/// `ContentInfo` (RFC 5652 section 3, used by RFC 7292 section 4.1):
///
/// ```asn1
/// ContentInfo ::= SEQUENCE {
///   contentType ContentType,
///   content [0] EXPLICIT ANY DEFINED BY contentType }
/// ```
///
/// PKCS #7 (RFC 2315 section 7) made `content` OPTIONAL; we accept that.
/// `AuthenticatedSafe ::= SEQUENCE OF ContentInfo` (RFC 7292 section 4.1) is
/// `Vec<ContentInfo>`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct ContentInfo {
    pub(crate) content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub(crate) content: Option<Any>,
}

/// `EncryptedData` (RFC 5652 section 8, RFC 7292 section 4.1), as we write it:
///
/// ```asn1
/// EncryptedData ::= SEQUENCE {
///   version CMSVersion,
///   encryptedContentInfo EncryptedContentInfo,
///   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
/// ```
///
/// Reading goes through `decode_encrypted_data` in the parent module, because
/// BER producers split `encryptedContent` into a constructed `[0]`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct EncryptedData {
    pub(crate) version: u8,
    pub(crate) encrypted_content_info: EncryptedContentInfo,
}

/// `EncryptedContentInfo` (RFC 5652 section 6.1):
///
/// ```asn1
/// EncryptedContentInfo ::= SEQUENCE {
///   contentType ContentType,
///   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
///   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
/// EncryptedContent ::= OCTET STRING
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct EncryptedContentInfo {
    pub(crate) content_type: ObjectIdentifier,
    pub(crate) content_encryption_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) encrypted_content: Option<OctetString>,
}

/// `SafeBag` (RFC 7292 section 4.2); `SafeContents ::= SEQUENCE OF SafeBag` is
/// `Vec<SafeBag>`:
///
/// ```asn1
/// SafeBag ::= SEQUENCE {
///   bagId          BAG-TYPE.&id ({PKCS12BagSet}),
///   bagValue       [0] EXPLICIT BAG-TYPE.&Type({PKCS12BagSet}{@bagId}),
///   bagAttributes  SET OF PKCS12Attribute OPTIONAL }
/// ```
///
/// `bagAttributes` is kept as raw [`Any`] (a SET) so a producer that did not
/// sort the SET OF (DER ordering) still reads; see `Attribute`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct SafeBag {
    pub(crate) bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub(crate) bag_value: Any,
    #[asn1(optional = "true")]
    pub(crate) bag_attributes: Option<Any>,
}

/// `PKCS12Attribute` (RFC 7292 section 4.2, an X.501 `Attribute`):
///
/// ```asn1
/// PKCS12Attribute ::= SEQUENCE {
///   attrId      ATTRIBUTE.&id ({PKCS12AttrSet}),
///   attrValues  SET OF ATTRIBUTE.&Type ({PKCS12AttrSet}{@attrId}) }
/// ```
///
/// We write `attrValues` through [`SetOfVec`], so it is DER-sorted; we read it
/// as raw [`Any`] for the same reason as `bagAttributes`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Attribute {
    pub(crate) attr_id: ObjectIdentifier,
    pub(crate) attr_values: Any,
}

/// `PKCS12Attribute` as written, with a DER-sorted value set.
#[derive(Clone, Debug, Eq, PartialEq, Sequence, der::ValueOrd)]
pub(crate) struct AttributeOut {
    pub(crate) attr_id: ObjectIdentifier,
    pub(crate) attr_values: SetOfVec<Any>,
}

/// `CertBag` (RFC 7292 section 4.2.3):
///
/// ```asn1
/// CertBag ::= SEQUENCE {
///   certId    BAG-TYPE.&id   ({CertTypes}),
///   certValue [0] EXPLICIT BAG-TYPE.&Type ({CertTypes}{@certId}) }
/// x509Certificate BAG-TYPE ::= {OCTET STRING IDENTIFIED BY {certTypes 1}}
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct CertBag {
    pub(crate) cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub(crate) cert_value: Any,
}

/// `pkcs-12PbeParams` (RFC 7292 appendix C):
///
/// ```asn1
/// pkcs-12PbeParams ::= SEQUENCE {
///   salt        OCTET STRING,
///   iterations  INTEGER }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Pkcs12PbeParams {
    pub(crate) salt: OctetString,
    pub(crate) iterations: u64,
}
