//! Test helpers shared by the certdesk crates (never published, never a normal
//! dependency): deterministic mutation of parser inputs.

pub mod mutation;
