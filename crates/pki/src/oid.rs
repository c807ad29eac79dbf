//! Object identifiers used across certdesk, with the document that assigns each.
//!
//! Kept in one place so every module names an algorithm or extension the same way.

use const_oid::ObjectIdentifier as Oid;

/// `rsaEncryption` (RFC 8017 appendix A.1).
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// `sha256WithRSAEncryption` (RFC 8017 appendix A.2.4).
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// `sha384WithRSAEncryption` (RFC 8017 appendix A.2.4).
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// `sha512WithRSAEncryption` (RFC 8017 appendix A.2.4).
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// `id-RSASSA-PSS` (RFC 8017 appendix A.2.3).
pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// `id-ecPublicKey` (RFC 5480 section 2.1.1).
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` (RFC 5480 section 2.1.1.1).
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` (RFC 5480 section 2.1.1.1).
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
/// `secp521r1` (RFC 5480 section 2.1.1.1).
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
/// `ecdsa-with-SHA256` (RFC 5758 section 3.2).
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// `ecdsa-with-SHA384` (RFC 5758 section 3.2).
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// `ecdsa-with-SHA512` (RFC 5758 section 3.2).
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// `id-Ed25519` (RFC 8410 section 3).
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
/// `id-sha256` (RFC 5754 section 2.2).
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// `id-sha384` (RFC 5754 section 2.3).
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// `id-sha512` (RFC 5754 section 2.4).
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
/// `id-sha1` (RFC 3279 section 2.1; OIW `1.3.14.3.2.26`), still the CertID hash most
/// OCSP clients send (RFC 5019 section 2.1.1).
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// `id-mgf1` (RFC 8017 appendix A.2.1).
pub const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");

/// `id-at-commonName` (X.520).
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
/// `id-at-surname` (X.520).
pub const AT_SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
/// `id-at-countryName` (X.520).
pub const AT_COUNTRY: Oid = Oid::new_unwrap("2.5.4.6");
/// `id-at-organizationName` (X.520).
pub const AT_ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
/// `id-at-givenName` (X.520).
pub const AT_GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
/// `id-at-organizationIdentifier` (X.520, 2.5.4.97; CA/B Forum S/MIME BR 7.1.4.2.2 (d)).
pub const AT_ORGANIZATION_IDENTIFIER: Oid = Oid::new_unwrap("2.5.4.97");

/// `id-kp-emailProtection` (RFC 5280 section 4.2.1.12).
pub const KP_EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
/// `id-kp-clientAuth` (RFC 5280 section 4.2.1.12).
pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
/// `id-ad-ocsp` (RFC 5280 section 4.2.2.1).
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
/// `id-kp-OCSPSigning` (RFC 5280 section 4.2.1.12; RFC 6960 section 4.2.2.2).
pub const KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
/// `id-pkix-ocsp-basic` (RFC 6960 section 4.2.1).
pub const OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// `id-pkix-ocsp-nonce` (RFC 6960 section 4.4.1, as updated by RFC 9654).
pub const OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// `id-pkix-ocsp-nocheck` (RFC 6960 section 4.2.2.2.1).
pub const OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// `id-ad-caIssuers` (RFC 5280 section 4.2.2.1).
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

/// `id-ce-subjectKeyIdentifier` (RFC 5280 section 4.2.1.2).
pub const CE_SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
/// `id-ce-keyUsage` (RFC 5280 section 4.2.1.3).
pub const CE_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// `id-ce-subjectAltName` (RFC 5280 section 4.2.1.6).
pub const CE_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
/// `id-ce-basicConstraints` (RFC 5280 section 4.2.1.9).
pub const CE_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// `id-ce-cRLNumber` (RFC 5280 section 5.2.3).
pub const CE_CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
/// `id-ce-cRLReasons` (RFC 5280 section 5.3.1).
pub const CE_CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
/// `id-ce-cRLDistributionPoints` (RFC 5280 section 4.2.1.13).
pub const CE_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
/// `id-ce-certificatePolicies` (RFC 5280 section 4.2.1.4).
pub const CE_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
/// `id-ce-authorityKeyIdentifier` (RFC 5280 section 4.2.1.1).
pub const CE_AUTHORITY_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.35");
/// `id-ce-extKeyUsage` (RFC 5280 section 4.2.1.12).
pub const CE_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// `id-pe-authorityInfoAccess` (RFC 5280 section 4.2.2.1).
pub const PE_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");

/// `mailbox-validated` strict (CA/B Forum S/MIME BR 7.1.6.1).
pub const BR_MAILBOX_STRICT: Oid = Oid::new_unwrap("2.23.140.1.5.1.3");
/// `mailbox-validated` multipurpose (CA/B Forum S/MIME BR 7.1.6.1).
pub const BR_MAILBOX_MULTIPURPOSE: Oid = Oid::new_unwrap("2.23.140.1.5.1.2");
/// `sponsor-validated` strict (CA/B Forum S/MIME BR 7.1.6.1).
pub const BR_SPONSOR_STRICT: Oid = Oid::new_unwrap("2.23.140.1.5.3.3");
/// `sponsor-validated` multipurpose (CA/B Forum S/MIME BR 7.1.6.1).
pub const BR_SPONSOR_MULTIPURPOSE: Oid = Oid::new_unwrap("2.23.140.1.5.3.2");

/// `id-data` (RFC 5652 section 4).
pub const CMS_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// `id-signedData` (RFC 5652 section 5.1).
pub const CMS_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// `id-contentType` (RFC 5652 section 11.1).
pub const CMS_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
/// `id-messageDigest` (RFC 5652 section 11.2).
pub const CMS_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
/// `id-signingTime` (RFC 5652 section 11.3).
pub const CMS_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
/// PKCS #9 emailAddress (RFC 2985), where older certificates keep the mailbox.
pub const AT_EMAIL_ADDRESS: Oid = Oid::new_unwrap("1.2.840.113549.1.9.1");
/// `smimeCapabilities` (RFC 8551 section 2.5.2).
pub const SMIME_CAPABILITIES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.15");
/// `id-aa-signingCertificateV2` (RFC 5035 section 3).
pub const AA_SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// `id-aes128-CBC` (RFC 3565 section 4.1).
pub const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
/// `id-aes256-CBC` (RFC 3565 section 4.1).
pub const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");

/// `id-envelopedData` (RFC 5652 section 6.1).
pub const CMS_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
/// `id-ct-authEnvelopedData` (RFC 5083 section 2.1).
pub const CMS_AUTH_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.23");
/// `id-aes192-CBC` (RFC 3565 section 4.1).
pub const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
/// `id-aes128-GCM` (RFC 5084 section 3.2).
pub const AES128_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.6");
/// `id-aes192-GCM` (RFC 5084 section 3.2).
pub const AES192_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.26");
/// `id-aes256-GCM` (RFC 5084 section 3.2).
pub const AES256_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.46");
/// `id-aes128-wrap` (RFC 3565 section 2.3.2, RFC 3394).
pub const AES128_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.5");
/// `id-aes192-wrap` (RFC 3565 section 2.3.2, RFC 3394).
pub const AES192_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.25");
/// `id-aes256-wrap` (RFC 3565 section 2.3.2, RFC 3394).
pub const AES256_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.45");
/// `id-RSAES-OAEP` (RFC 8017 appendix A.2.1; CMS use in RFC 3560).
pub const RSAES_OAEP: Oid = Oid::new_unwrap("1.2.840.113549.1.1.7");
/// `id-pSpecified` (RFC 8017 appendix A.2.1).
pub const P_SPECIFIED: Oid = Oid::new_unwrap("1.2.840.113549.1.1.9");
/// `id-sha224` (RFC 5754 section 2.1).
pub const SHA224: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.4");
/// `dhSinglePass-stdDH-sha1kdf-scheme` (RFC 5753 section 7.1.4; OpenSSL's CMS default).
pub const ECDH_STD_SHA1_KDF: Oid = Oid::new_unwrap("1.3.133.16.840.63.0.2");
/// `dhSinglePass-stdDH-sha224kdf-scheme` (RFC 5753 section 7.1.4).
pub const ECDH_STD_SHA224_KDF: Oid = Oid::new_unwrap("1.3.132.1.11.0");
/// `dhSinglePass-stdDH-sha256kdf-scheme` (RFC 5753 section 7.1.4).
pub const ECDH_STD_SHA256_KDF: Oid = Oid::new_unwrap("1.3.132.1.11.1");
/// `dhSinglePass-stdDH-sha384kdf-scheme` (RFC 5753 section 7.1.4).
pub const ECDH_STD_SHA384_KDF: Oid = Oid::new_unwrap("1.3.132.1.11.2");
/// `dhSinglePass-stdDH-sha512kdf-scheme` (RFC 5753 section 7.1.4).
pub const ECDH_STD_SHA512_KDF: Oid = Oid::new_unwrap("1.3.132.1.11.3");
