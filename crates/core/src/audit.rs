//! The audit log (CA/B Forum S/MIME BR 5.4.1): every state change is an append-only,
//! hash-chained record of who did what, to what, and when.
//!
//! Record `n` stores `hash_n = SHA-256(seq | at | actor | action | subject | details |
//! hash_{n-1})` (fields length-prefixed), with `hash_0` = 64 zeros. Changing any field
//! of any record, or removing or reordering records, breaks the chain at that point;
//! [`verify`] says where. The database also refuses UPDATE and DELETE on the table.
//! Removing the newest records is only detectable against an external copy of the last
//! hash (`certdesk audit verify` prints it, so it can be recorded elsewhere).

use aws_lc_rs::digest::{Context, SHA256};

use crate::records::AuditRow;

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to record.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// Who: `cli:<user>`, `officer:<email>`, `system`.
    pub actor: String,
    /// What, dotted: `ca.init`, `certificate.issue`, `certificate.revoke`, `crl.issue`.
    pub action: &'static str,
    /// On what: a serial, an e-mail address, a CRL number.
    pub subject: String,
    /// Structured details (never secrets).
    pub details: serde_json::Value,
}

fn hash(seq: i64, at: i64, actor: &str, action: &str, subject: &str, details: &str, prev: &str) -> String {
    let mut ctx = Context::new(&SHA256);
    for field in [seq.to_string().as_str(), at.to_string().as_str(), actor, action, subject, details, prev] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// Seals an event into the record that follows `prev_hash` at position `seq`.
pub fn seal(event: &AuditEvent, at: i64, seq: i64, prev_hash: &str) -> AuditRow {
    let details = event.details.to_string();
    AuditRow {
        seq,
        at,
        actor: event.actor.clone(),
        action: event.action.to_string(),
        subject: event.subject.clone(),
        hash: hash(seq, at, &event.actor, event.action, &event.subject, &details, prev_hash),
        details,
        prev_hash: prev_hash.to_string(),
    }
}

/// The result of a successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChain {
    /// Number of records.
    pub records: usize,
    /// Hash of the newest record (record it elsewhere to detect truncation).
    pub head: String,
}

/// A record of the chain noted elsewhere (its sequence number and hash, as
/// `certdesk audit verify` prints the head): a later check against it shows that no
/// record up to it was removed or rewritten, which the chain alone cannot show for
/// records cut off its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The record's sequence number.
    pub seq: i64,
    /// Its hash (hex).
    pub hash: String,
}

impl std::fmt::Display for Checkpoint {
    /// `SEQ:HASH`, as [`Checkpoint::from_str`](std::str::FromStr) reads it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = String;

    /// `SEQ:HASH`, e.g. `42:9f86d0...`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a checkpoint SEQ:HASH (as `audit verify` prints the head)");
        let (seq, hash) = text.split_once(':').ok_or_else(bad)?;
        let seq = seq.trim().parse::<i64>().ok().filter(|s| *s >= 1).ok_or_else(bad)?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self { seq, hash })
    }
}

/// Checks the chain ([`verify`]) and that it still holds `checkpoint` unchanged.
pub fn verify_with_checkpoint(rows: &[AuditRow], checkpoint: &Checkpoint) -> Result<VerifiedChain, BrokenChain> {
    let verified = verify(rows)?;
    let index = usize::try_from(checkpoint.seq - 1)
        .map_err(|_| BrokenChain { seq: checkpoint.seq, reason: "no such record" })?;
    match rows.get(index) {
        None => {
            Err(BrokenChain { seq: checkpoint.seq, reason: "records up to the checkpoint were removed from the end" })
        }
        Some(row) if row.hash != checkpoint.hash => {
            Err(BrokenChain { seq: checkpoint.seq, reason: "it differs from the checkpoint: the log was rewritten" })
        }
        Some(_) => Ok(verified),
    }
}

/// Where and how the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the audit log is broken at record {seq}: {reason}")]
pub struct BrokenChain {
    /// The first bad record (or the missing sequence number).
    pub seq: i64,
    /// What is wrong.
    pub reason: &'static str,
}

/// Checks sequence numbers and every hash.
pub fn verify(rows: &[AuditRow]) -> Result<VerifiedChain, BrokenChain> {
    let mut prev = GENESIS.to_string();
    for (index, row) in rows.iter().enumerate() {
        let expected_seq = index as i64 + 1;
        if row.seq != expected_seq {
            return Err(BrokenChain { seq: expected_seq, reason: "a record is missing" });
        }
        if row.prev_hash != prev {
            return Err(BrokenChain { seq: row.seq, reason: "it does not follow the record before it" });
        }
        let recomputed = hash(row.seq, row.at, &row.actor, &row.action, &row.subject, &row.details, &row.prev_hash);
        if recomputed != row.hash {
            return Err(BrokenChain { seq: row.seq, reason: "its content was changed" });
        }
        prev = row.hash.clone();
    }
    Ok(VerifiedChain { records: rows.len(), head: prev })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for seq in 1..=n {
            let prev = rows.last().map(|r| r.hash.clone()).unwrap_or_else(|| GENESIS.to_string());
            let event = AuditEvent {
                actor: "cli:test".into(),
                action: "certificate.issue",
                subject: format!("serial-{seq}"),
                details: serde_json::json!({ "n": seq }),
            };
            rows.push(seal(&event, 1_700_000_000 + seq, seq, &prev));
        }
        rows
    }

    #[test]
    fn intact_chain_verifies() {
        let rows = chain(5);
        assert_eq!(verify(&rows).unwrap(), VerifiedChain { records: 5, head: rows[4].hash.clone() });
    }

    #[test]
    fn changed_removed_and_reordered_records_are_found() {
        let mut changed = chain(5);
        changed[2].actor = "cli:mallory".into();
        assert_eq!(verify(&changed).unwrap_err().seq, 3);

        let mut removed = chain(5);
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err(), BrokenChain { seq: 2, reason: "a record is missing" });

        let mut rehashed = chain(5);
        rehashed[3].details = "{}".into();
        rehashed[3].hash =
            hash(4, rehashed[3].at, "cli:test", "certificate.issue", "serial-4", "{}", &rehashed[3].prev_hash);
        assert_eq!(verify(&rehashed).unwrap_err().seq, 5);
    }

    #[test]
    fn checkpoints_catch_truncation_and_rewriting() {
        let rows = chain(5);
        let at = |n: usize| Checkpoint { seq: n as i64, hash: rows[n - 1].hash.clone() };
        assert_eq!(verify_with_checkpoint(&rows, &at(3)).unwrap().records, 5);
        assert_eq!(verify_with_checkpoint(&rows, &at(5)).unwrap().records, 5);
        // The last two records cut off: the chain alone still verifies, the checkpoint does not.
        assert!(verify(&rows[..3]).is_ok());
        let err = verify_with_checkpoint(&rows[..3], &at(5)).unwrap_err();
        assert!(err.reason.contains("removed"), "{err}");
        // A whole new chain (every hash recomputed) in place of the old one.
        let mut rebuilt: Vec<AuditRow> = Vec::new();
        for seq in 1..=5 {
            let prev = rebuilt.last().map(|r| r.hash.clone()).unwrap_or_else(|| GENESIS.to_string());
            let event = AuditEvent {
                actor: "cli:test".into(),
                action: "certificate.issue",
                subject: format!("forged-{seq}"),
                details: serde_json::json!({ "n": seq }),
            };
            rebuilt.push(seal(&event, 1_700_000_000 + seq, seq, &prev));
        }
        assert!(verify(&rebuilt).is_ok());
        let err = verify_with_checkpoint(&rebuilt, &at(3)).unwrap_err();
        assert!(err.reason.contains("rewritten"), "{err}");
        // Parsing.
        let text = format!("3:{}", rows[2].hash.to_ascii_uppercase());
        assert_eq!(text.parse::<Checkpoint>().unwrap(), at(3));
        for bad in ["", "3", "0:ab", "x:ab", "3:zz", &format!("-1:{}", rows[0].hash)] {
            assert!(bad.parse::<Checkpoint>().is_err(), "{bad}");
        }
    }
}
