//! Key escrow (issue 15; design: docs/design/key-escrow.md). The escrow private key
//! exists only in memory: split into Shamir shares, one per key recovery agent, at
//! `escrow init`, and put together again only for a recovery that `threshold` distinct
//! agents approved.
//!
//! This first part is [`share`]: splitting and combining, with our own share format
//! (which escrow key, which agent, how many are needed) and commitments kept at init, so
//! that a share of another escrow key, a repeated or a forged one is refused by name
//! before anything is combined.

pub mod share;
