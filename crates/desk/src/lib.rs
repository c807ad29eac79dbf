#![doc = include_str!("../README.md")]

pub mod advisor;
pub mod caa;
pub mod checkpoint;
pub mod directory;
pub mod http_client;
pub mod mail;
pub mod oidc;
pub mod portal;
pub mod publish;
pub mod totp;
