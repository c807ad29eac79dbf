#![doc = include_str!("../README.md")]

pub mod envelope;
pub mod keyring;
pub mod mime;
#[cfg(test)]
mod mutation;
pub mod signed_data;
