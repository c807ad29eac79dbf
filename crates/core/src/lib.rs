#![doc = include_str!("../README.md")]

pub mod audit;
pub mod caa_syntax;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod error;
pub mod mail_settings;
pub mod oidc_settings;
pub mod ports;
pub mod records;
pub mod url;
pub mod workflow;
pub mod zone;
