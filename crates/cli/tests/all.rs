//! Integration tests of the `certdesk` binary, checked by tools we did not write:
//! OpenSSL, pkilint, gpgsm, NSS pk12util and Java keytool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

mod all {
    mod backup;
    mod bad_input;
    pub mod browser;
    mod ceremony;
    pub mod clients;
    pub mod common;
    mod conventions;
    mod crash;
    mod encrypt_keyring;
    mod enroll;
    mod escrow;
    mod init;
    mod issue;
    mod ldap;
    mod lenient_input;
    mod nested;
    mod pkcs11;
    mod pkcs12_clients;
    mod pkits_smime;
    mod proxy;
    mod reencrypt;
    mod revoke_crl;
    pub mod serve;
    mod smime;
    mod streaming;
}
