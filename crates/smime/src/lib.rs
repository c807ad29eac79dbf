#![doc = include_str!("../README.md")]

pub mod envelope;
pub mod keyring;
pub mod mime;
pub mod signed_data;
