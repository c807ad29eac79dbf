//! `[portal.oidc]`: single sign-on settings (the sign-in itself is the desk's `oidc`).

use serde::{Deserialize, Serialize};

use crate::url::HttpUrl;

/// `[portal.oidc]`: single sign-on through an OpenID Connect provider (absent: off).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The issuer identifier, e.g. `https://login.example.org/realms/staff`; the
    /// discovery document must name exactly this issuer.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// A file holding the client secret (relative paths: in the data directory).
    pub client_secret_file: String,
    /// Scopes requested (must include `openid`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The sign-in button's text (default: "Sign in with your organisation account",
    /// in German on German pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The ID token claim holding the e-mail address.
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    /// Whether `email_verified` must be true.
    #[serde(default = "default_true")]
    pub require_email_verified: bool,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into()]
}

fn default_email_claim() -> String {
    "email".into()
}

fn default_true() -> bool {
    true
}

impl OidcSection {
    /// Checks the values (for `Config::validate`); the message names the bad key.
    pub fn check(&self) -> Result<(), String> {
        allowed_url(&self.issuer).map_err(|e| format!("portal.oidc.issuer: {e}"))?;
        if self.issuer.contains(['?', '#']) {
            return Err("portal.oidc.issuer must not have a query or fragment".into());
        }
        if self.client_id.trim().is_empty() || self.client_id.chars().any(char::is_control) {
            return Err("portal.oidc.client_id must not be empty".into());
        }
        if self.client_secret_file.trim().is_empty() {
            return Err("portal.oidc.client_secret_file must name a file".into());
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err("portal.oidc.scopes must include \"openid\"".into());
        }
        if self.scopes.iter().any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_graphic() && c != '"')) {
            return Err("portal.oidc.scopes must be plain words".into());
        }
        if self.email_claim.trim().is_empty() {
            return Err("portal.oidc.email_claim must not be empty".into());
        }
        Ok(())
    }
}

/// Whether `url` may be fetched: `https://`, or `http://` to a loopback host.
pub fn allowed_url(url: &str) -> Result<(), String> {
    let parsed = HttpUrl::parse(url)?;
    if parsed.tls || is_loopback(&parsed.host) {
        Ok(())
    } else {
        Err(format!("{url:?} must be an https:// URL (http:// only for a loopback address)"))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
