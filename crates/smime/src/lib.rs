#![doc = include_str!("../README.md")]

pub mod mime;
pub mod signed_data;
