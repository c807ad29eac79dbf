//! Recovery of escrowed keys (issue 15, docs/design/key-escrow.md "Recovery"): the
//! agents' shares for a recovery gathered in this process's memory (never stored; a
//! restart loses them), and, once enough are held, the escrow key put together for the
//! one request that delivers, the escrowed keys decrypted and checked against their
//! certificates, and everything wiped.

use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::share::{check, EscrowShare, ShareError, ShareRecord};
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_pki::pkcs12;
use certdesk_store::Store;

/// The shares given for each open recovery, in memory.
#[derive(Default)]
pub struct ShareGathering {
    held: Mutex<HashMap<String, Held>>,
}

/// The shares of one recovery, and whether a request is delivering it now (its shares
/// are being combined: another request gets a conflict, not "too few shares").
#[derive(Default)]
struct Held {
    shares: Vec<EscrowShare>,
    delivering: bool,
}

impl std::fmt::Debug for ShareGathering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareGathering").field("recoveries", &self.held().len()).finish()
    }
}

fn refused(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::Refused, message)
}

fn internal(message: impl std::fmt::Display) -> DomainError {
    DomainError::new(ErrorCode::Internal, message.to_string())
}

fn share_error(e: ShareError) -> DomainError {
    match e {
        ShareError::NotAShare { .. } => DomainError::new(ErrorCode::BadInput, e.to_string()),
        other => refused(other.to_string()),
    }
}

/// The escrow key's certificate and threshold, and what init kept of each share.
async fn escrow_key(store: &Store, key_id: &str) -> Result<(Vec<u8>, usize, [u8; 32], Vec<ShareRecord>), DomainError> {
    let key = store
        .escrow_keys()
        .await?
        .into_iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| internal(format!("escrow key {key_id} is not in the store")))?;
    let id: [u8; 32] = hex::decode(&key.key_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| internal("a stored escrow key id is not 32 bytes of hex"))?;
    let records = super::stored_share_records(store, key_id).await?;
    Ok((key.certificate, usize::from(key.threshold), id, records))
}

impl ShareGathering {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding the lock leaves the shares as they were: still usable.
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks `pem` (the agent's decrypted message or the share alone) as the share of
    /// agent `agent_index` of escrow key `key_id` handed out at init, and keeps it for
    /// `recovery_id`. Returns the number of distinct agents' shares held.
    ///
    /// # Errors
    /// [`ErrorCode::BadInput`] for text without a share; [`ErrorCode::Refused`] for
    /// another key's share, another agent's, one not handed out (forged, truncated), or
    /// one given twice.
    pub async fn take(
        &self,
        store: &Store,
        recovery_id: &str,
        key_id: &str,
        agent_index: u8,
        pem: &[u8],
    ) -> Result<usize, DomainError> {
        let share = EscrowShare::parse(pem).map_err(share_error)?;
        let (_, threshold, id, records) = escrow_key(store, key_id).await?;
        check(&share, &id, threshold, &records).map_err(share_error)?;
        if share.index != agent_index {
            return Err(refused(format!(
                "this is the share of agent {} ({}), not yours: each agent gives their own",
                share.index, share.agent
            )));
        }
        let mut held = self.held();
        let entry = held.entry(recovery_id.to_string()).or_default();
        if entry.delivering {
            return Err(DomainError::new(ErrorCode::Conflict, "the keys of this recovery are being handed out"));
        }
        if entry.shares.iter().any(|s| s.index == share.index) {
            return Err(share_error(ShareError::SameAgentTwice { index: share.index, agent: share.agent }));
        }
        entry.shares.push(share);
        Ok(entry.shares.len())
    }

    /// Distinct agents' shares held for a recovery.
    pub fn count(&self, recovery_id: &str) -> usize {
        self.held().get(recovery_id).map_or(0, |h| h.shares.len())
    }

    /// Wipes the shares of a recovery (their buffers are `Zeroizing`).
    pub fn forget(&self, recovery_id: &str) {
        self.held().remove(recovery_id);
    }

    /// Wipes the share of agent `index` of a recovery (its approval was not recorded).
    pub fn forget_one(&self, recovery_id: &str, index: u8) {
        if let Some(held) = self.held().get_mut(recovery_id) {
            held.shares.retain(|s| s.index != index);
        }
    }

    /// Takes the shares of a recovery out for one delivery: a second request meanwhile
    /// gets [`ErrorCode::Conflict`]; [`Delivering`] forgets them when dropped.
    fn take_out(&self, recovery_id: &str) -> Result<Delivering<'_>, DomainError> {
        let mut held = self.held();
        let entry = held.get_mut(recovery_id).filter(|h| !h.shares.is_empty()).ok_or_else(|| {
            DomainError::new(ErrorCode::Conflict, "no shares are held for this recovery in this process")
        })?;
        if entry.delivering {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "the keys of this recovery are being handed out in another request",
            ));
        }
        entry.delivering = true;
        let shares = entry.shares.clone();
        Ok(Delivering { gathering: self, recovery_id: recovery_id.to_string(), shares: Some(shares) })
    }

    /// Puts the escrow key together from the shares of `recovery_id` (forgotten here
    /// whatever the outcome), decrypts the escrowed keys of `serials`, checks each
    /// against its certificate and writes them all in one .p12 (the recipient's password
    /// and format, the CA's iteration count) with the CA `chain`. Runs the key work off
    /// the async threads.
    ///
    /// # Errors
    /// [`ErrorCode::Refused`] if the shares do not give the escrow key back, a serial
    /// was not escrowed to this key, or a key does not match its certificate.
    pub async fn recover(
        &self,
        authority: &crate::authority::Authority,
        recovery_id: &str,
        key_id: &str,
        serials: &[String],
        chain: Vec<Vec<u8>>,
        delivery: certdesk_core::ports::Pkcs12Delivery,
    ) -> Result<Vec<u8>, DomainError> {
        let mut delivering = self.take_out(recovery_id)?;
        let shares = delivering.shares.take().unwrap_or_default();
        let store = authority.store();
        let options = pkcs12::WriteOptions {
            format: delivery.format,
            iterations: authority.config().pkcs12_iterations,
            friendly_name: None,
        };
        let password = delivery.password;
        let (certificate, threshold, _, records) = escrow_key(store, key_id).await?;
        if shares.len() < threshold {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                format!("{} of the {threshold} shares needed are held: the agents give theirs again", shares.len()),
            ));
        }
        let mut escrowed = Vec::with_capacity(serials.len());
        for serial in serials {
            let blob = store.escrowed_key(serial).await?.filter(|e| e.key_id == key_id).ok_or_else(|| {
                refused(format!("the key of certificate {serial} is not escrowed to this escrow key"))
            })?;
            let cert = store
                .certificate(serial)
                .await?
                .ok_or_else(|| internal(format!("certificate {serial} is escrowed but not in the store")))?;
            escrowed.push((serial.clone(), blob.blob, cert.der, cert.subject, cert.not_after));
        }
        let result = tokio::task::spawn_blocking(move || {
            let escrow_pkcs8 = super::recover_key(&certificate, threshold, &shares, &records)
                .map_err(|e| refused(format!("the shares do not give the escrow key back: {e}")))?;
            drop(shares);
            let recipient = certdesk_smime::envelope::RecipientKey::new(&escrow_pkcs8, &certificate)
                .map_err(|e| internal(format!("the escrow key: {e}")))?;
            drop(escrow_pkcs8);
            let mut keys: Vec<(Zeroizing<Vec<u8>>, Vec<u8>, String)> = Vec::with_capacity(escrowed.len());
            for (serial, blob, cert_der, subject, not_after) in escrowed {
                let pkcs8 = Zeroizing::new(
                    certdesk_smime::envelope::decrypt(&blob, std::slice::from_ref(&recipient))
                        .map_err(|e| refused(format!("the escrowed key of {serial} cannot be decrypted: {e}")))?,
                );
                super::key_of_certificate(&pkcs8, &cert_der).map_err(|why| {
                    let why = match why {
                        super::KeyMismatch::NoKey => "is no private key",
                        super::KeyMismatch::BadCertificate => "has a certificate that does not decode",
                        super::KeyMismatch::OtherKey => "is not the key of its certificate",
                    };
                    refused(format!("the escrowed key of {serial} {why}"))
                })?;
                let until = certdesk_core::clock::unix_text(not_after);
                keys.push((pkcs8, cert_der, format!("{subject} (until {until}, serial {serial})")));
            }
            drop(recipient);
            let bundles: Vec<pkcs12::Bundle<'_>> = keys
                .iter()
                .map(|(key, cert, name)| pkcs12::Bundle {
                    key_pkcs8_der: key,
                    cert_der: cert,
                    friendly_name: Some(name),
                })
                .collect();
            pkcs12::write_all(&bundles, &chain, &password, &options, &aws_lc_rs::rand::SystemRandom::new())
                .map_err(|e| refused(format!("the .p12: {e}")))
        })
        .await
        .map_err(|e| internal(format!("the recovery task failed: {e}")))?;
        drop(delivering);
        result
    }
}

/// A delivery in progress: when it ends, whatever the outcome, the recovery's shares
/// are forgotten (wiped).
struct Delivering<'a> {
    gathering: &'a ShareGathering,
    recovery_id: String,
    shares: Option<Vec<EscrowShare>>,
}

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.gathering.forget(&self.recovery_id);
    }
}
