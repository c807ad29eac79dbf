//! The CA behind the desk's port ([`certdesk_core::ports::CertificateAuthority`]): the
//! unlocked issuing CA of one `serve` process, which issues and revokes for the desk
//! and refreshes its own OCSP responses and CRL at once afterwards.

use std::sync::Arc;

use async_trait::async_trait;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::ports::{CertificateAuthority, IssueRequest, Issued, Pkcs12Delivery};
use certdesk_core::records::CertificateRecord;
use certdesk_pki::crl::RevocationReason;
use certdesk_pki::key::{AcceptedPublicKey, KeyAlgorithm};
use zeroize::Zeroizing;

use crate::authority::Authority;
use crate::status::StatusService;

/// The CA as the desk reaches it. Holds the status service (and through it the
/// unlocked issuing key); hands out neither.
pub struct CaService {
    status: Arc<StatusService>,
    /// Escrow shares given for open recoveries (issue 15), in memory only.
    shares: crate::escrow::recover::ShareGathering,
}

impl std::fmt::Debug for CaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaService").finish_non_exhaustive()
    }
}

impl CaService {
    /// The CA of `status`'s process.
    pub fn new(status: Arc<StatusService>) -> Self {
        Self { status, shares: crate::escrow::recover::ShareGathering::default() }
    }

    fn authority(&self) -> &Authority {
        self.status.authority()
    }

    /// Signs what changed at once, so this process answers OCSP and serves the CRL
    /// with the new state (the other processes follow within their refresh interval).
    async fn refresh(&self) {
        if let Err(e) = self.status.refresh().await {
            eprintln!("certdesk: status refresh after a change failed (the next refresh retries): {e}");
        }
    }
}

#[async_trait]
impl CertificateAuthority for CaService {
    async fn issue(
        &self,
        request: IssueRequest,
        public_key: AcceptedPublicKey,
        actor: &str,
    ) -> Result<Issued, DomainError> {
        let issued = self.authority().issue(self.status.issuer(), request, public_key, actor).await?;
        self.refresh().await;
        Ok(issued)
    }

    async fn issue_pkcs12(
        &self,
        request: IssueRequest,
        key: KeyAlgorithm,
        delivery: Pkcs12Delivery,
        actor: &str,
    ) -> Result<(Issued, Vec<u8>), DomainError> {
        let (mut issued, p12) = self
            .authority()
            .issue_with_generated_key(self.status.issuer(), request, key, delivery, None, actor)
            .await?;
        self.refresh().await;
        // The certificate of the application (for a profile that escrows separately,
        // the encryption one; the signing certificate is in the .p12 beside it).
        if issued.is_empty() {
            return Err(DomainError::new(ErrorCode::Internal, "an issuance returned no certificate"));
        }
        Ok((issued.swap_remove(0), p12))
    }

    fn chain(&self) -> &[Vec<u8>] {
        self.status.issuer().chain()
    }

    async fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
        actor: &str,
    ) -> Result<CertificateRecord, DomainError> {
        let record = self.authority().revoke(serial, reason, actor).await?;
        self.refresh().await;
        Ok(record)
    }

    async fn take_escrow_share(
        &self,
        recovery_id: &str,
        key_id: &str,
        agent_index: u8,
        share: Zeroizing<Vec<u8>>,
    ) -> Result<usize, DomainError> {
        self.shares.take(self.authority().store(), recovery_id, key_id, agent_index, &share).await
    }

    fn escrow_shares_held(&self, recovery_id: &str) -> usize {
        self.shares.count(recovery_id)
    }

    async fn recover_escrowed_keys(
        &self,
        recovery_id: &str,
        key_id: &str,
        serials: &[String],
        delivery: Pkcs12Delivery,
    ) -> Result<Vec<u8>, DomainError> {
        if let Err(e) = certdesk_pki::password::check_strength(&delivery.password, &[]) {
            // The shares stay: the recipient chooses a better password.
            return Err(DomainError::new(ErrorCode::Refused, format!(".p12 password: {e}")));
        }
        let chain = self.status.issuer().chain().to_vec();
        self.shares.recover(self.authority(), recovery_id, key_id, serials, chain, delivery).await
    }

    fn forget_escrow_shares(&self, recovery_id: &str) {
        self.shares.forget(recovery_id);
    }

    fn forget_escrow_share(&self, recovery_id: &str, agent_index: u8) {
        self.shares.forget_one(recovery_id, agent_index);
    }
}
