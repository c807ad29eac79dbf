#![doc = include_str!("../README.md")]

pub mod authority;
pub mod backup;
pub mod ceremony;
pub mod escrow;
pub mod issuer;
pub mod pkcs11;
pub mod recovery;
pub mod service;
pub mod status;
