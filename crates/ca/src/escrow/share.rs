//! Shamir shares of the escrow private key (docs/design/key-escrow.md).
//!
//! Splitting and combining are vsss-rs's `Gf256` (GF(2^8) arithmetic without tables or
//! secret-dependent branches); around it we keep every secret byte in [`Zeroizing`]
//! buffers, draw randomness from aws-lc-rs, and wrap each share in [`EscrowShare`]
//! (DER, PEM label `CERTDESK ESCROW SHARE`): the escrow key it belongs to (SHA-256 of
//! the escrow public key), the threshold, the number of agents, the agent's index and
//! address, and the share bytes. At init a commitment of each share is kept
//! ([`commitment`]); [`combine`] refuses, naming the share, anything that is not exactly
//! what was handed out: a share of another escrow key, the same agent twice, a share
//! whose bytes changed (forged, truncated), fewer shares than the threshold.

use std::convert::Infallible;

use der::asn1::{OctetString, Utf8StringRef};
use der::{Decode, Encode, Sequence};
use zeroize::{Zeroize, Zeroizing};

/// The PEM label of a share.
pub const PEM_LABEL: &str = "CERTDESK ESCROW SHARE";

/// The most agents one escrow key may have.
pub const MAX_AGENTS: usize = 16;

/// Why shares cannot be made or put together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareError {
    /// The threshold or the number of agents is out of range.
    #[error("a threshold of {threshold} of {total} agents: give 2 <= threshold <= agents <= {MAX_AGENTS}")]
    BadThreshold {
        /// The threshold asked for.
        threshold: usize,
        /// The number of agents.
        total: usize,
    },
    /// The same agent was named twice at init.
    #[error("agent {agent} is named twice: each share goes to a different person")]
    DuplicateAgent {
        /// The agent's address.
        agent: String,
    },
    /// The shares could not be made.
    #[error("the shares could not be made: {detail}")]
    Split {
        /// vsss-rs's reason.
        detail: String,
    },
    /// The random number generator failed.
    #[error("no random bytes: the shares were not made")]
    Random,
    /// The input is not a share (PEM or DER).
    #[error("this is not an escrow share: {detail}")]
    NotAShare {
        /// What did not decode.
        detail: String,
    },
    /// A share of another escrow key.
    #[error("the share of agent {index} ({agent}) belongs to another escrow key")]
    OtherKey {
        /// The share's agent index.
        index: u8,
        /// The share's agent.
        agent: String,
    },
    /// Two shares of the same agent.
    #[error("agent {index} ({agent}) gave a share twice: a recovery needs distinct agents")]
    SameAgentTwice {
        /// The agent index.
        index: u8,
        /// The agent.
        agent: String,
    },
    /// A share that is not the one handed out (changed, forged, truncated).
    #[error("the share of agent {index} ({agent}) is not the one handed out at init (changed or forged)")]
    Forged {
        /// The agent index.
        index: u8,
        /// The agent.
        agent: String,
    },
    /// Fewer shares than the threshold.
    #[error("{given} of the {threshold} shares needed")]
    TooFew {
        /// Shares given.
        given: usize,
        /// Shares needed.
        threshold: usize,
    },
    /// The shares did not put a secret together.
    #[error("the shares do not combine: {detail}")]
    Combine {
        /// vsss-rs's reason.
        detail: String,
    },
}

/// One agent's share, as handed out and given back.
#[derive(Clone, PartialEq, Eq)]
pub struct EscrowShare {
    /// SHA-256 of the escrow key's SubjectPublicKeyInfo (DER).
    pub key_id: [u8; 32],
    /// Shares needed to put the key together.
    pub threshold: u8,
    /// Agents (shares made).
    pub total: u8,
    /// This agent's index, 1 to `total` (the Shamir x coordinate).
    pub index: u8,
    /// The agent's address.
    pub agent: String,
    /// The share: the x coordinate, then one byte per byte of the secret.
    pub share: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EscrowShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscrowShare")
            .field("key_id", &hex::encode(self.key_id))
            .field("threshold", &self.threshold)
            .field("total", &self.total)
            .field("index", &self.index)
            .field("agent", &self.agent)
            .field("share", &"<redacted>")
            .finish()
    }
}

/// The DER form: `SEQUENCE { version INTEGER (1), keyId OCTET STRING (32), threshold,
/// total, index INTEGER, agent UTF8String, share OCTET STRING }`.
#[derive(Sequence)]
struct ShareDer<'a> {
    version: u8,
    key_id: OctetString,
    threshold: u8,
    total: u8,
    index: u8,
    agent: Utf8StringRef<'a>,
    share: OctetString,
}

impl EscrowShare {
    /// DER.
    ///
    /// # Errors
    /// [`ShareError::NotAShare`] if a field does not encode (it always does for shares
    /// made here).
    pub fn to_der(&self) -> Result<Zeroizing<Vec<u8>>, ShareError> {
        let bad = |e: der::Error| ShareError::NotAShare { detail: e.to_string() };
        let der = ShareDer {
            version: 1,
            key_id: OctetString::new(self.key_id.to_vec()).map_err(bad)?,
            threshold: self.threshold,
            total: self.total,
            index: self.index,
            agent: Utf8StringRef::new(&self.agent).map_err(bad)?,
            share: OctetString::new(self.share.to_vec()).map_err(bad)?,
        };
        let encoded = Zeroizing::new(der.to_der().map_err(bad)?);
        der.share.into_bytes().zeroize();
        Ok(encoded)
    }

    /// PEM (`CERTDESK ESCROW SHARE`), as an agent keeps it.
    ///
    /// # Errors
    /// As [`EscrowShare::to_der`].
    pub fn to_pem(&self) -> Result<Zeroizing<String>, ShareError> {
        let der = self.to_der()?;
        // CRLF: the line ends of mail, so that putting it in a message makes no copy.
        der::pem::encode_string(PEM_LABEL, der::pem::LineEnding::CRLF, &der)
            .map(Zeroizing::new)
            .map_err(|e| ShareError::NotAShare { detail: e.to_string() })
    }

    /// Reads a share from PEM (text around the block is fine) or DER.
    ///
    /// # Errors
    /// [`ShareError::NotAShare`] for anything else, with what did not decode.
    pub fn parse(input: &[u8]) -> Result<Self, ShareError> {
        let bad = |detail: String| ShareError::NotAShare { detail };
        let der = if certdesk_pki::pem::is_pem(input) {
            let mut blocks = certdesk_pki::pem::decode_labelled(input, &[PEM_LABEL]).map_err(|e| bad(e.to_string()))?;
            if blocks.len() != 1 {
                return Err(bad(format!("{} share blocks where one was expected", blocks.len())));
            }
            Zeroizing::new(blocks.remove(0))
        } else {
            Zeroizing::new(input.to_vec())
        };
        let parsed = ShareDer::from_der(&der).map_err(|e| bad(e.to_string()))?;
        if parsed.version != 1 {
            return Err(bad(format!("version {} (this certdesk reads version 1)", parsed.version)));
        }
        let key_id: [u8; 32] =
            parsed.key_id.as_bytes().try_into().map_err(|_| bad("the escrow key id is not 32 bytes".into()))?;
        let share = Zeroizing::new(parsed.share.as_bytes().to_vec());
        let mut inner = parsed.share.into_bytes();
        inner.zeroize();
        if share.first() != Some(&parsed.index) || share.len() < 2 {
            return Err(bad("the share bytes do not match its index".into()));
        }
        if parsed.index == 0 || parsed.index > parsed.total || parsed.threshold < 2 || parsed.threshold > parsed.total {
            return Err(bad(format!(
                "index {} of {} with threshold {} is not possible",
                parsed.index, parsed.total, parsed.threshold
            )));
        }
        Ok(Self {
            key_id,
            threshold: parsed.threshold,
            total: parsed.total,
            index: parsed.index,
            agent: parsed.agent.as_str().to_string(),
            share,
        })
    }
}

/// What init keeps of a share: which agent, and the commitment to the share's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    /// The agent's index.
    pub index: u8,
    /// The agent's address.
    pub agent: String,
    /// [`commitment`] of the share handed out.
    pub commitment: [u8; 32],
}

/// SHA-256("certdesk escrow share v1" || key id || threshold || total || index || share
/// bytes): binds a share to its key, its agent and the threshold it was made for; a
/// full-entropy share's hash gives nothing of it away.
pub fn commitment(key_id: &[u8; 32], threshold: u8, total: u8, index: u8, share: &[u8]) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"certdesk escrow share v1");
    context.update(key_id);
    context.update(&[threshold, total, index]);
    context.update(share);
    let digest = context.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// aws-lc-rs's random numbers for vsss-rs. rand_core's `CryptoRng` cannot fail; a
/// failure of the system generator is remembered and fails the split.
struct AwsLcRng {
    failed: bool,
}

impl rand_core::TryRng for AwsLcRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if aws_lc_rs::rand::fill(dst).is_err() {
            self.failed = true;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for AwsLcRng {}

/// Splits `secret` (the escrow private key, PKCS#8) of the escrow key `key_id` into one
/// share per agent (index = position + 1), `threshold` of which put it together; with
/// the records init keeps. Every `threshold`-subset is checked to give `secret` back.
///
/// # Errors
/// [`ShareError::BadThreshold`], [`ShareError::DuplicateAgent`], [`ShareError::Random`],
/// [`ShareError::Combine`] (a subset did not give the secret back: never seen).
pub fn split(
    secret: &[u8],
    key_id: &[u8; 32],
    threshold: usize,
    agents: &[String],
) -> Result<(Vec<EscrowShare>, Vec<ShareRecord>), ShareError> {
    let total = agents.len();
    if threshold < 2 || threshold > total || total > MAX_AGENTS {
        return Err(ShareError::BadThreshold { threshold, total });
    }
    for (i, agent) in agents.iter().enumerate() {
        if agents.iter().skip(i + 1).any(|other| other.eq_ignore_ascii_case(agent)) {
            return Err(ShareError::DuplicateAgent { agent: agent.clone() });
        }
    }
    let mut rng = AwsLcRng { failed: false };
    let raw = vsss_rs::Gf256::split_bytes(threshold, total, secret, &mut rng)
        .map_err(|e| ShareError::Split { detail: format!("{e:?}") })?;
    let raw: Vec<Zeroizing<Vec<u8>>> = raw.into_iter().map(Zeroizing::new).collect();
    if rng.failed {
        return Err(ShareError::Random);
    }
    let (threshold_u8, total_u8) = (u8::try_from(threshold), u8::try_from(total));
    let (Ok(threshold_u8), Ok(total_u8)) = (threshold_u8, total_u8) else {
        return Err(ShareError::BadThreshold { threshold, total });
    };
    let mut shares = Vec::with_capacity(total);
    let mut records = Vec::with_capacity(total);
    for (share, agent) in raw.into_iter().zip(agents) {
        let index = *share.first().ok_or(ShareError::Split { detail: "an empty share".into() })?;
        let commitment = commitment(key_id, threshold_u8, total_u8, index, &share);
        records.push(ShareRecord { index, agent: agent.clone(), commitment });
        shares.push(EscrowShare {
            key_id: *key_id,
            threshold: threshold_u8,
            total: total_u8,
            index,
            agent: agent.clone(),
            share,
        });
    }
    // Every subset of `threshold` agents must give the key back (at most C(16, 8) =
    // 12,870 subsets).
    for subset in subsets(total, threshold) {
        let chosen: Vec<EscrowShare> = subset.iter().filter_map(|&i| shares.get(i).cloned()).collect();
        let back = combine(&chosen, key_id, threshold, &records)?;
        if back.as_slice() != secret {
            return Err(ShareError::Combine { detail: "a subset of the shares did not give the key back".into() });
        }
    }
    Ok((shares, records))
}

/// The `k`-element subsets of `0..n`, in order.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(k);
    fn walk(start: usize, n: usize, k: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if current.len() == k {
            out.push(current.clone());
            return;
        }
        for i in start..n {
            current.push(i);
            walk(i + 1, n, k, current, out);
            current.pop();
        }
    }
    walk(0, n, k, &mut current, &mut out);
    out
}

/// Puts the secret of escrow key `key_id` (made for `threshold` shares, as recorded at
/// init: never as a share says) together from `shares`, each checked against the records
/// kept at init first: another key's share, an agent twice, a share that is not the one
/// handed out (its bytes, agent or threshold changed), or fewer than the threshold are
/// refused by name, and nothing is combined.
///
/// # Errors
/// The [`ShareError`] of the first share refused, or [`ShareError::TooFew`].
pub fn combine(
    shares: &[EscrowShare],
    key_id: &[u8; 32],
    threshold: usize,
    records: &[ShareRecord],
) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    let mut seen: Vec<u8> = Vec::with_capacity(shares.len());
    for share in shares {
        if seen.contains(&share.index) {
            return Err(ShareError::SameAgentTwice { index: share.index, agent: share.agent.clone() });
        }
        check(share, key_id, threshold, records)?;
        seen.push(share.index);
    }
    if shares.len() < threshold.max(2) {
        return Err(ShareError::TooFew { given: shares.len(), threshold });
    }
    let raw: Vec<Vec<u8>> = shares.iter().map(|s| s.share.to_vec()).collect();
    let raw = ZeroizingShares(raw);
    let secret = vsss_rs::Gf256::combine_bytes(&raw.0).map_err(|e| ShareError::Combine { detail: format!("{e:?}") })?;
    Ok(Zeroizing::new(secret))
}

/// Checks one share against the records kept at init: of escrow key `key_id` (made for
/// `threshold` shares), handed out to the agent it names, unchanged. An agent can check
/// their share alone this way, without anyone gathering shares.
///
/// # Errors
/// [`ShareError::OtherKey`] or [`ShareError::Forged`].
pub fn check(
    share: &EscrowShare,
    key_id: &[u8; 32],
    threshold: usize,
    records: &[ShareRecord],
) -> Result<(), ShareError> {
    if &share.key_id != key_id {
        return Err(ShareError::OtherKey { index: share.index, agent: share.agent.clone() });
    }
    let handed_out = records.iter().find(|r| r.index == share.index);
    let genuine = handed_out.is_some_and(|record| {
        let expected = commitment(key_id, share.threshold, share.total, share.index, &share.share);
        // Constant time: the commitment is public, but nothing is lost by it.
        aws_lc_rs::constant_time::verify_slices_are_equal(&expected, &record.commitment).is_ok()
            && record.agent.eq_ignore_ascii_case(&share.agent)
    });
    if !genuine || usize::from(share.threshold) != threshold {
        return Err(ShareError::Forged { index: share.index, agent: share.agent.clone() });
    }
    Ok(())
}

/// Copies of share bytes, wiped when dropped.
struct ZeroizingShares(Vec<Vec<u8>>);

impl Drop for ZeroizingShares {
    fn drop(&mut self) {
        for share in &mut self.0 {
            share.zeroize();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn agents(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("agent{i}@example.org")).collect()
    }

    fn secret() -> Vec<u8> {
        // A P-384 PKCS#8 is about 185 bytes; any bytes do here.
        (0..185u32).map(|i| (i * 37 % 251) as u8).collect()
    }

    #[test]
    fn every_subset_of_the_threshold_gives_the_key_back() {
        let key_id = [7u8; 32];
        for (threshold, total) in [(2, 3), (3, 5), (2, 2), (4, 4)] {
            let (shares, records) = split(&secret(), &key_id, threshold, &agents(total)).unwrap();
            assert_eq!(shares.len(), total);
            assert_eq!(records.len(), total);
            for subset in subsets(total, threshold) {
                let chosen: Vec<EscrowShare> = subset.iter().map(|&i| shares[i].clone()).collect();
                assert_eq!(combine(&chosen, &key_id, threshold, &records).unwrap().as_slice(), secret().as_slice());
            }
            // All of them work too.
            assert_eq!(combine(&shares, &key_id, threshold, &records).unwrap().as_slice(), secret().as_slice());
            // Fewer than the threshold: refused, nothing combined.
            let few: Vec<EscrowShare> = shares.iter().take(threshold - 1).cloned().collect();
            assert_eq!(
                combine(&few, &key_id, threshold, &records),
                Err(ShareError::TooFew { given: threshold - 1, threshold })
            );
        }
        assert_eq!(subsets(16, 8).len(), 12_870);
    }

    #[test]
    fn shares_are_refused_by_name() {
        let key_id = [1u8; 32];
        let (shares, records) = split(&secret(), &key_id, 2, &agents(3)).unwrap();
        // The same agent twice.
        let twice = vec![shares[0].clone(), shares[0].clone()];
        assert!(matches!(combine(&twice, &key_id, 2, &records), Err(ShareError::SameAgentTwice { index: 1, .. })));
        // A share of another escrow key (made for it, with its records).
        let other_id = [2u8; 32];
        let (other, _) = split(&secret(), &other_id, 2, &agents(3)).unwrap();
        let mixed = vec![shares[0].clone(), other[1].clone()];
        assert!(matches!(combine(&mixed, &key_id, 2, &records), Err(ShareError::OtherKey { index: 2, .. })));
        // Another key's share relabelled as ours: its bytes are not the ones handed out.
        let mut relabelled = other[1].clone();
        relabelled.key_id = key_id;
        let forged = vec![shares[0].clone(), relabelled];
        assert!(matches!(combine(&forged, &key_id, 2, &records), Err(ShareError::Forged { index: 2, .. })));
        // One byte changed, or cut short.
        let mut flipped = shares[2].clone();
        flipped.share[40] ^= 1;
        assert!(matches!(
            combine(&[shares[0].clone(), flipped], &key_id, 2, &records),
            Err(ShareError::Forged { index: 3, .. })
        ));
        let mut short = shares[2].clone();
        short.share.truncate(100);
        assert!(matches!(
            combine(&[shares[0].clone(), short], &key_id, 2, &records),
            Err(ShareError::Forged { index: 3, .. })
        ));
        // A 3-of-5 share relabelled 2-of-5 (to need fewer agents): not the one handed out.
        let (five, five_records) = split(&secret(), &key_id, 3, &agents(5)).unwrap();
        let mut lowered = vec![five[0].clone(), five[1].clone()];
        for share in &mut lowered {
            share.threshold = 2;
        }
        assert!(matches!(combine(&lowered, &key_id, 3, &five_records), Err(ShareError::Forged { index: 1, .. })));
        assert!(matches!(combine(&lowered, &key_id, 2, &five_records), Err(ShareError::Forged { index: 1, .. })));
        // Another agent's name on a share.
        let mut renamed = shares[1].clone();
        renamed.agent = "mallory@example.org".into();
        assert!(matches!(
            combine(&[shares[0].clone(), renamed], &key_id, 2, &records),
            Err(ShareError::Forged { index: 2, .. })
        ));
        // Bad parameters at init.
        assert!(matches!(split(&secret(), &key_id, 1, &agents(3)), Err(ShareError::BadThreshold { .. })));
        assert!(matches!(split(&secret(), &key_id, 4, &agents(3)), Err(ShareError::BadThreshold { .. })));
        assert!(matches!(split(&secret(), &key_id, 2, &agents(17)), Err(ShareError::BadThreshold { .. })));
        let mut same = agents(3);
        same[2] = "AGENT1@example.org".into();
        assert!(matches!(split(&secret(), &key_id, 2, &same), Err(ShareError::DuplicateAgent { .. })));
    }

    #[test]
    fn shares_travel_as_pem_and_der() {
        let key_id = [9u8; 32];
        let (shares, records) = split(&secret(), &key_id, 2, &agents(3)).unwrap();
        let pem = shares[1].to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTDESK ESCROW SHARE-----"));
        let with_text = format!("Your share, keep it safe:\n\n{}\nThanks.\n", pem.as_str());
        let back = EscrowShare::parse(with_text.as_bytes()).unwrap();
        assert_eq!(back, shares[1]);
        assert!(!format!("{back:?}").contains(&hex::encode(&back.share[1..8])), "Debug shows no share bytes");
        let der = shares[2].to_der().unwrap();
        let from_der = EscrowShare::parse(&der).unwrap();
        assert_eq!(combine(&[back, from_der], &key_id, 2, &records).unwrap().as_slice(), secret().as_slice());
        // Garbage, a truncated DER, two blocks, another PEM label: not a share.
        for bad in [
            b"not a share".to_vec(),
            der[..der.len() - 5].to_vec(),
            format!("{}{}", pem.as_str(), pem.as_str()).into_bytes(),
            b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".to_vec(),
        ] {
            assert!(matches!(EscrowShare::parse(&bad), Err(ShareError::NotAShare { .. })), "{bad:?}");
        }
    }
}
