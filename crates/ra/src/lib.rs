#![doc = include_str!("../README.md")]

pub mod audit;
pub mod authority;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod error;
pub mod http;
pub mod http_client;
pub mod issuer;
pub mod mail;
pub mod oidc;
pub mod portal;
pub mod status;
pub mod store;
pub mod totp;
pub mod workflow;
