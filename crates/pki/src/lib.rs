#![doc = include_str!("../README.md")]

pub mod ber;
pub mod crl;
pub mod csr;
pub mod issuance;
pub mod key;
pub mod lint;
pub mod ocsp;
pub mod oid;
pub mod password;
pub mod path;
pub mod pbes2;
pub mod pem;
pub mod pkcs12;
pub mod profile;
pub mod subject;
