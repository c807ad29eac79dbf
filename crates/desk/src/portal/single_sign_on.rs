//! Sign-in through the organisation's OpenID Connect provider (`[portal.oidc]`).
//!
//! It replaces the mailed link, nothing else: the provider vouches for the e-mail
//! address (verified, unless configured otherwise), the same rules as for links decide
//! who may sign in (`allowed_domains`, staff, disabled accounts), the session is the
//! same, and officers and administrators still give their TOTP second factor.

use serde_json::json;
use zeroize::Zeroizing;

use super::{hash_secret, NewSession, Portal};
use crate::oidc::{OidcClient, OidcError, OidcSection};
use certdesk_core::datadir::DataDir;
use certdesk_core::error::{DomainError, ErrorCode};

/// Builds the client from the configuration: reads the client secret file (relative
/// paths: in the data directory). No network yet; discovery happens on first use.
pub(super) fn client(section: &OidcSection, data: &DataDir, public_url: &str) -> Result<OidcClient, DomainError> {
    let config = |message: String| DomainError::new(ErrorCode::Config, message);
    let path = data.root().join(&section.client_secret_file);
    let bytes = Zeroizing::new(certdesk_core::datadir::read(&path)?);
    let secret = Zeroizing::new(
        std::str::from_utf8(&bytes).map_err(|_| config(format!("{} is not text", path.display())))?.trim().to_string(),
    );
    if secret.is_empty() {
        return Err(config(format!("the OpenID Connect client secret file {} is empty", path.display())));
    }
    OidcClient::new(section.clone(), secret, format!("{public_url}/signin/oidc/callback")).map_err(config)
}

/// At most this many logins may be in progress at once (each row lives 10 minutes).
pub const MAX_PENDING_LOGINS: i64 = 10_000;

fn failed(e: &OidcError) -> DomainError {
    if matches!(e, OidcError::Unreachable { .. } | OidcError::Discovery { .. }) {
        tracing::warn!("single sign-on failed: {e}");
    }
    DomainError::new(ErrorCode::Unauthenticated, format!("single sign-on failed: {e}"))
}

impl Portal {
    /// The single sign-on settings, if configured (the sign-in page shows its button).
    pub fn single_sign_on(&self) -> Option<&OidcSection> {
        self.oidc.as_deref().map(OidcClient::section)
    }

    fn oidc_client(&self) -> Result<&OidcClient, DomainError> {
        self.oidc.as_deref().ok_or_else(|| DomainError::new(ErrorCode::NotFound, "single sign-on is not configured"))
    }

    /// Starts a login: stores the pending login (10 minutes, single use) and returns
    /// the provider's authorization URL and the `state` (to bind to the browser).
    pub async fn oidc_start(&self) -> Result<(String, Zeroizing<String>), DomainError> {
        let client = self.oidc_client()?;
        let now = self.now();
        if self.store().oidc_logins_pending(now).await? >= MAX_PENDING_LOGINS {
            return Err(DomainError::new(
                ErrorCode::TooManyRequests,
                "too many sign-ins are in progress; try again in a few minutes",
            ));
        }
        let start = client.start(now).await.map_err(|e| failed(&e))?;
        self.store().insert_oidc_login(&start.pending, now).await?;
        Ok((start.redirect, Zeroizing::new(start.state)))
    }

    /// Finishes a login from the provider's callback: `code` or the provider's `error`.
    /// The pending login is used up whatever happens. On success a session starts,
    /// audited as `session.sign-in` with `"method": "oidc"`.
    pub async fn oidc_complete(
        &self,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> Result<NewSession, DomainError> {
        let client = self.oidc_client()?;
        let now = self.now();
        let pending = match state {
            "" => None,
            state => self.store().take_oidc_login(&hash_secret(state)).await?,
        };
        let pending = pending.ok_or_else(|| failed(&OidcError::UnknownState))?;
        if let Some(error) = error {
            return Err(failed(&crate::oidc::provider_refused(error)));
        }
        if now > pending.expires_at {
            return Err(failed(&OidcError::Expired));
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| failed(&OidcError::Malformed { reason: "the answer has no authorization code" }))?;
        let login = client.finish(code, &pending, now).await.map_err(|e| failed(&e))?;
        let email = login.email();
        let staff = self.store().user(email).await?.is_some_and(|u| u.role != "applicant" && u.disabled_at.is_none());
        if !staff && !self.domain_allowed(email) {
            return Err(DomainError::new(ErrorCode::Forbidden, "this e-mail address may not use the portal"));
        }
        let details = json!({ "method": "oidc", "issuer": client.section().issuer, "subject": login.subject() });
        self.start_session(email, details).await
    }
}
