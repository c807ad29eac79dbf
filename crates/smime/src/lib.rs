#![doc = include_str!("../README.md")]

mod ber_stream;
pub mod envelope;
pub mod keyring;
pub mod mime;
pub mod signed_data;
