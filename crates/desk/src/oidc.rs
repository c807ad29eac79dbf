//! OpenID Connect single sign-on for the portal: the relying-party side of the
//! authorization-code flow ([OpenID Connect Core 1.0] §3.1) with PKCE ([RFC 7636],
//! `S256`), `state` and `nonce`.
//!
//! This module holds the protocol: the `[portal.oidc]` settings, discovery
//! ([OpenID Connect Discovery 1.0] §4), the authorization request, the token request
//! (`client_secret_basic` or `client_secret_post`, RFC 6749 §2.3.1), and the ID token
//! validation of Core §3.1.3.7 (JWS signature with a JWKS key: RS256, PS256, ES256,
//! ES384, verified by `jsonwebtoken` on aws-lc-rs; never `none` or HMAC; `iss`, `aud`,
//! `azp`, `exp`, `iat`, `nbf`, `nonce`). The
//! pending logins live in the database (`store::oidc`), and the session is started by
//! the portal (`portal::single_sign_on`), with the same rules as a mailed link.
//!
//! Only `https://` URLs are fetched; `http://` only for a loopback issuer (tests, a
//! local proxy). The exchanges go through [`crate::http_client`] (blocking `ureq`, run
//! with `spawn_blocking`; a proxy from `HTTPS_PROXY`/`NO_PROXY`). Time comes from the
//! caller (the injected clock).
//!
//! [OpenID Connect Core 1.0]: https://openid.net/specs/openid-connect-core-1_0.html
//! [OpenID Connect Discovery 1.0]: https://openid.net/specs/openid-connect-discovery-1_0.html
//! [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636

use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::http_client::{HttpClient, ProxySetting, Request, Trust};

/// A pending login is valid 10 minutes.
pub const PENDING_MINUTES: i64 = 10;
/// Clock skew tolerated on `exp`, `iat` and `nbf`, in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 120;
/// Discovery documents and key sets are fetched again after this many seconds.
const CACHE_SECONDS: i64 = 3600;
/// An unknown `kid` makes the key set be fetched again at most this often (seconds).
const KEY_REFRESH_SECONDS: i64 = 60;
/// Largest answer accepted from the identity provider.
const MAX_ANSWER: usize = 512 * 1024;
/// Time limit of one exchange with the identity provider.
const TIMEOUT: Duration = Duration::from_secs(10);

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use certdesk_core::oidc_settings::OidcSection;

/// Why single sign-on failed. Every variant is one clear sentence for the sign-in page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OidcError {
    /// The identity provider could not be reached or answered nonsense.
    #[error("the identity provider could not be reached: {reason}")]
    Unreachable {
        /// What went wrong.
        reason: String,
    },
    /// The discovery document is unusable.
    #[error("the identity provider's configuration is unusable: {reason}")]
    Discovery {
        /// What is wrong.
        reason: String,
    },
    /// The provider answered the authorization request with an error.
    #[error("the identity provider refused the sign-in ({error})")]
    ProviderRefused {
        /// The `error` code (RFC 6749 §4.1.2.1).
        error: String,
    },
    /// No such pending login: wrong, used or forged `state`.
    #[error("this sign-in attempt is unknown or was already used; start again")]
    UnknownState,
    /// The pending login is older than 10 minutes.
    #[error("this sign-in attempt has expired; start again")]
    Expired,
    /// The token endpoint refused the code.
    #[error("the identity provider refused the authorization code ({error})")]
    TokenRefused {
        /// The `error` code (RFC 6749 §5.2) or the HTTP status.
        error: String,
    },
    /// The ID token is malformed.
    #[error("the ID token is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The ID token's algorithm is not accepted.
    #[error("the ID token's signature algorithm {alg:?} is not accepted")]
    Algorithm {
        /// The `alg` header.
        alg: String,
    },
    /// No key of the provider verifies the signature.
    #[error("the ID token's signature is not valid")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("the ID token was issued by someone else")]
    WrongIssuer,
    /// `aud` does not name this portal, or `azp` names another client.
    #[error("the ID token is not meant for this portal")]
    WrongAudience,
    /// `exp` has passed (or `iat`/`nbf` are out of range).
    #[error("the ID token has expired or is not yet valid")]
    TokenExpired,
    /// `nonce` does not match the pending login.
    #[error("the ID token does not belong to this sign-in attempt")]
    NonceMismatch,
    /// The e-mail claim is missing or not an address.
    #[error("the identity provider gave no usable e-mail address")]
    NoEmail,
    /// `email_verified` is not true.
    #[error("the identity provider has not verified this e-mail address")]
    EmailUnverified,
}

pub use certdesk_core::oidc_settings::allowed_url;

/// The provider's endpoints from its discovery document.
#[derive(Clone, Debug)]
pub struct ProviderMetadata {
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `jwks_uri`.
    pub jwks_uri: String,
    /// Whether the token endpoint takes `client_secret_basic` (else `client_secret_post`).
    pub basic_auth: bool,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Value>,
}

/// A JWS algorithm we accept for ID tokens (asymmetric only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JwsAlgorithm {
    Rs256,
    Ps256,
    Es256,
    Es384,
}

impl JwsAlgorithm {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "ES256" => Some(Self::Es256),
            "ES384" => Some(Self::Es384),
            // `none`, HS256/384/512 (a shared secret is no proof of the provider) and
            // anything else are refused.
            _ => None,
        }
    }

    fn algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Ps256 => jsonwebtoken::Algorithm::PS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::Es384 => jsonwebtoken::Algorithm::ES384,
        }
    }

    /// Whether `key` may verify this algorithm: a signing key (or one without `use`)
    /// of the right type (and curve), whose `alg`, if named, is this one.
    fn suits(self, key: &Jwk) -> bool {
        let named = match self {
            Self::Rs256 => KeyAlgorithm::RS256,
            Self::Ps256 => KeyAlgorithm::PS256,
            Self::Es256 => KeyAlgorithm::ES256,
            Self::Es384 => KeyAlgorithm::ES384,
        };
        if key.common.key_algorithm.is_some_and(|a| a != named)
            || key.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return false;
        }
        match (self, &key.algorithm) {
            (Self::Rs256 | Self::Ps256, AlgorithmParameters::RSA(_)) => true,
            (Self::Es256, AlgorithmParameters::EllipticCurve(ec)) => ec.curve == EllipticCurve::P256,
            (Self::Es384, AlgorithmParameters::EllipticCurve(ec)) => ec.curve == EllipticCurve::P384,
            _ => false,
        }
    }

    /// The claims of `token` if `key` verifies its signature with this algorithm.
    fn verify(self, key: &Jwk, token: &str) -> Option<Value> {
        if !self.suits(key) {
            return None;
        }
        let key = jsonwebtoken::DecodingKey::from_jwk(key).ok()?;
        // Only the signature: the claims are checked by `check_claims` (Core §3.1.3.7).
        let mut validation = jsonwebtoken::Validation::new(self.algorithm());
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(token, &key, &validation).ok().map(|data| data.claims)
    }
}

pub use certdesk_core::records::PendingLogin;

/// A new login: where to send the browser, the `state` (for the browser-binding
/// cookie) and what to store.
pub struct LoginStart {
    /// The authorization request URL.
    pub redirect: String,
    /// The `state` value.
    pub state: String,
    /// To store until the callback.
    pub pending: PendingLogin,
}

/// The verified result of a login: the lower-case e-mail address the provider vouches for.
#[derive(Debug)]
pub struct VerifiedLogin {
    email: String,
    subject: String,
}

impl VerifiedLogin {
    /// The lower-case e-mail address.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The provider's `sub`.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

struct Cached<T> {
    value: T,
    fetched_at: i64,
}

/// The relying party: settings, TLS, and the cached discovery document and keys.
pub struct OidcClient {
    section: OidcSection,
    client_secret: Zeroizing<String>,
    redirect_uri: String,
    http: HttpClient,
    provider: tokio::sync::Mutex<Option<Cached<ProviderMetadata>>>,
    keys: tokio::sync::Mutex<Option<Cached<Vec<Jwk>>>>,
}

/// SHA-256, hex.
fn sha256_hex(text: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}

fn random_b64(bytes: usize) -> Result<String, OidcError> {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| OidcError::Unreachable { reason: "no randomness".into() })?;
    Ok(B64URL.encode(buf.as_slice()))
}

/// `application/x-www-form-urlencoded` / query component encoding.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl OidcClient {
    /// Builds the client (no network yet). `redirect_uri` is the portal's callback URL.
    pub fn new(section: OidcSection, client_secret: Zeroizing<String>, redirect_uri: String) -> Result<Self, String> {
        section.check()?;
        let http = HttpClient::new(TIMEOUT, Trust::System { extra_roots_pem: None }, &ProxySetting::FromEnvironment)?;
        Ok(Self {
            section,
            client_secret,
            redirect_uri,
            http,
            provider: tokio::sync::Mutex::new(None),
            keys: tokio::sync::Mutex::new(None),
        })
    }

    /// The settings.
    pub fn section(&self) -> &OidcSection {
        &self.section
    }

    /// The discovery document (cached for an hour).
    pub async fn provider(&self, now: i64) -> Result<ProviderMetadata, OidcError> {
        let mut cache = self.provider.lock().await;
        if let Some(cached) = cache.as_ref() {
            if (0..CACHE_SECONDS).contains(&(now - cached.fetched_at)) {
                return Ok(cached.value.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", self.section.issuer.trim_end_matches('/'));
        let (status, body) = fetch(&self.http, &Request { method: "GET", url: &url, headers: &[], body: None }).await?;
        let discovery = |reason: String| OidcError::Discovery { reason };
        if status != 200 {
            return Err(discovery(format!("HTTP status {status}")));
        }
        let doc: DiscoveryDocument =
            serde_json::from_slice(&body).map_err(|e| discovery(format!("not a discovery document: {e}")))?;
        // Discovery §4.3: the issuer must be exactly the one configured.
        if doc.issuer != self.section.issuer {
            return Err(discovery(format!("it names the issuer {:?}", doc.issuer)));
        }
        for url in [&doc.authorization_endpoint, &doc.token_endpoint, &doc.jwks_uri] {
            allowed_url(url).map_err(discovery)?;
        }
        // RFC 8414 §2: the default is client_secret_basic.
        let basic_auth = match &doc.token_endpoint_auth_methods_supported {
            None => true,
            Some(methods) if methods.iter().any(|m| m == "client_secret_basic") => true,
            Some(methods) if methods.iter().any(|m| m == "client_secret_post") => false,
            Some(_) => return Err(discovery("its token endpoint takes neither client_secret_basic nor _post".into())),
        };
        let metadata = ProviderMetadata {
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            jwks_uri: doc.jwks_uri,
            basic_auth,
        };
        *cache = Some(Cached { value: metadata.clone(), fetched_at: now });
        Ok(metadata)
    }

    /// Starts a login: fresh `state`, `nonce` and PKCE verifier (256 bits each), and
    /// the authorization request URL (Core §3.1.2.1, RFC 7636 §4.3).
    pub async fn start(&self, now: i64) -> Result<LoginStart, OidcError> {
        let provider = self.provider(now).await?;
        let state = random_b64(32)?;
        let nonce = random_b64(32)?;
        let verifier = random_b64(32)?;
        let challenge = B64URL.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
        let separator = if provider.authorization_endpoint.contains('?') { '&' } else { '?' };
        let redirect = format!(
            "{endpoint}{separator}response_type=code&client_id={client}&redirect_uri={redirect}&scope={scope}\
             &state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
            endpoint = provider.authorization_endpoint,
            client = form_encode(&self.section.client_id),
            redirect = form_encode(&self.redirect_uri),
            scope = form_encode(&self.section.scopes.join(" ")),
        );
        let pending = PendingLogin {
            state_hash: sha256_hex(&state),
            nonce_hash: sha256_hex(&nonce),
            code_verifier: verifier,
            created_at: now,
            expires_at: now + PENDING_MINUTES * 60,
        };
        Ok(LoginStart { redirect, state, pending })
    }

    /// Redeems the code (with the PKCE verifier of `pending`) and validates the ID
    /// token (Core §3.1.3.5 and §3.1.3.7). `pending` must already be consumed and unexpired.
    pub async fn finish(&self, code: &str, pending: &PendingLogin, now: i64) -> Result<VerifiedLogin, OidcError> {
        let provider = self.provider(now).await?;
        let id_token = self.redeem(&provider, code, &pending.code_verifier).await?;
        let header = split_token(&id_token)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
        let algorithm = JwsAlgorithm::from_name(alg).ok_or_else(|| OidcError::Algorithm { alg: alg.to_string() })?;
        let kid = header.get("kid").and_then(Value::as_str);
        let claims = self.verify_signature(&provider, algorithm, kid, id_token.trim(), now).await?;
        self.check_claims(&claims, &pending.nonce_hash, now)
    }

    async fn redeem(&self, provider: &ProviderMetadata, code: &str, verifier: &str) -> Result<String, OidcError> {
        let mut form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            form_encode(code),
            form_encode(&self.redirect_uri),
            form_encode(verifier)
        );
        let mut authorization = None;
        if provider.basic_auth {
            // RFC 6749 §2.3.1: both parts form-encoded before base64.
            let pair = format!("{}:{}", form_encode(&self.section.client_id), form_encode(&self.client_secret));
            authorization = Some(Zeroizing::new(format!("Basic {}", base64::prelude::BASE64_STANDARD.encode(pair))));
        } else {
            form.push_str(&format!(
                "&client_id={}&client_secret={}",
                form_encode(&self.section.client_id),
                form_encode(&self.client_secret)
            ));
        }
        let form = Zeroizing::new(form);
        let mut headers = vec![("Accept", "application/json")];
        if let Some(value) = &authorization {
            headers.push(("Authorization", value.as_str()));
        }
        let request = Request {
            method: "POST",
            url: &provider.token_endpoint,
            headers: &headers,
            body: Some(("application/x-www-form-urlencoded", form.as_bytes())),
        };
        let (status, body) = fetch(&self.http, &request).await?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != 200 {
            let error =
                answer.get("error").and_then(Value::as_str).map(short).unwrap_or_else(|| format!("HTTP {status}"));
            return Err(OidcError::TokenRefused { error });
        }
        answer
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(OidcError::Malformed { reason: "the token answer has no id_token" })
    }

    async fn verify_signature(
        &self,
        provider: &ProviderMetadata,
        algorithm: JwsAlgorithm,
        kid: Option<&str>,
        token: &str,
        now: i64,
    ) -> Result<Value, OidcError> {
        let mut keys = self.keys.lock().await;
        let fresh = |c: &Cached<Vec<Jwk>>| (0..CACHE_SECONDS).contains(&(now - c.fetched_at));
        let matches = |k: &Jwk| kid.is_none() || k.common.key_id.as_deref() == kid;
        let known = keys.as_ref().filter(|c| fresh(c)).is_some_and(|c| c.value.iter().any(matches));
        // Fetch when nothing is cached, the cache is old, or the key is unknown (the
        // provider rotated its keys; at most once a minute).
        let stale = keys.as_ref().is_none_or(|c| !fresh(c));
        let may_refresh = keys.as_ref().is_none_or(|c| now - c.fetched_at >= KEY_REFRESH_SECONDS);
        if stale || (!known && may_refresh) {
            let request = Request { method: "GET", url: &provider.jwks_uri, headers: &[], body: None };
            let (status, body) = fetch(&self.http, &request).await?;
            if status != 200 {
                return Err(OidcError::Discovery { reason: format!("the key set answered HTTP status {status}") });
            }
            let set: JwkSet = serde_json::from_slice(&body)
                .map_err(|_| OidcError::Discovery { reason: "the key set is not a JWK set".into() })?;
            // Keys we cannot read are skipped, not fatal.
            let parsed = set.keys.into_iter().filter_map(|k| serde_json::from_value::<Jwk>(k).ok()).collect();
            *keys = Some(Cached { value: parsed, fetched_at: now });
        }
        let candidates = keys.as_ref().map(|c| c.value.as_slice()).unwrap_or_default();
        candidates.iter().filter(|k| matches(k)).find_map(|k| algorithm.verify(k, token)).ok_or(OidcError::BadSignature)
    }

    fn check_claims(&self, claims: &Value, nonce_hash: &str, now: i64) -> Result<VerifiedLogin, OidcError> {
        // 2. iss
        if claims.get("iss").and_then(Value::as_str) != Some(self.section.issuer.as_str()) {
            return Err(OidcError::WrongIssuer);
        }
        // 3. aud contains our client_id; 4./5. azp when several audiences or present.
        let client = self.section.client_id.as_str();
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&client) {
            return Err(OidcError::WrongAudience);
        }
        let azp = claims.get("azp").and_then(Value::as_str);
        if (audiences.len() > 1 && azp.is_none()) || azp.is_some_and(|a| a != client) {
            return Err(OidcError::WrongAudience);
        }
        // 9. exp; 10. iat (not in the future, not older than a pending login); nbf.
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let exp = number("exp").ok_or(OidcError::Malformed { reason: "exp is missing" })?;
        let iat = number("iat").ok_or(OidcError::Malformed { reason: "iat is missing" })?;
        if now >= exp.saturating_add(CLOCK_SKEW_SECONDS)
            || iat > now.saturating_add(CLOCK_SKEW_SECONDS)
            || iat < now.saturating_sub(PENDING_MINUTES * 60 + CLOCK_SKEW_SECONDS)
            || number("nbf").is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECONDS))
        {
            return Err(OidcError::TokenExpired);
        }
        // 11. nonce (compared as hashes: only the hash is stored).
        let nonce = claims.get("nonce").and_then(Value::as_str).ok_or(OidcError::NonceMismatch)?;
        if verify_slices_are_equal(sha256_hex(nonce).as_bytes(), nonce_hash.as_bytes()).is_err() {
            return Err(OidcError::NonceMismatch);
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(OidcError::Malformed { reason: "sub is missing" })?;
        let email = claims.get(self.section.email_claim.as_str()).and_then(Value::as_str).ok_or(OidcError::NoEmail)?;
        let email = certdesk_pki::subject::EmailAddress::parse(email.trim())
            .map_err(|_| OidcError::NoEmail)?
            .as_str()
            .to_ascii_lowercase();
        if self.section.require_email_verified {
            // Some providers send the boolean as a string.
            let verified = match claims.get("email_verified") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "true",
                _ => false,
            };
            if !verified {
                return Err(OidcError::EmailUnverified);
            }
        }
        Ok(VerifiedLogin { email, subject: subject.to_string() })
    }
}

/// A short printable excerpt of a provider's error code (it is shown on a page).
fn short(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}

/// The provider's `error` parameter as shown to the user.
pub fn provider_refused(error: &str) -> OidcError {
    OidcError::ProviderRefused { error: short(error) }
}

/// Checks the shape of a JWS compact serialisation (three parts, header and claims JSON
/// objects, a base64url signature, no critical header parameters) and returns the
/// header, so that a refused algorithm is named before any key is fetched.
fn split_token(token: &str) -> Result<Value, OidcError> {
    let malformed = |reason| OidcError::Malformed { reason };
    let mut parts = token.trim().split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("it is not a signed JWT"));
    };
    let json = |part: &str| -> Result<Value, OidcError> {
        let bytes = B64URL.decode(part).map_err(|_| malformed("a part is not base64url"))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| malformed("a part is not JSON"))?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(malformed("a part is not a JSON object"))
        }
    };
    let header_value = json(header)?;
    if header_value.get("crit").is_some() {
        return Err(malformed("it has critical header parameters"));
    }
    json(claims)?;
    B64URL.decode(signature).map_err(|_| malformed("the signature is not base64url"))?;
    Ok(header_value)
}

// ---------------------------------------------------------------------------------------
// The exchanges: blocking `ureq` on tokio's blocking threads.

async fn fetch(http: &HttpClient, request: &Request<'_>) -> Result<(u16, Vec<u8>), OidcError> {
    let unreachable = |reason: String| OidcError::Unreachable { reason };
    allowed_url(request.url).map_err(unreachable)?;
    // Owned copies for the blocking thread; the secrets among them are zeroized.
    let http = http.clone();
    let method = request.method.to_string();
    let url = request.url.to_string();
    let headers: Vec<(String, Zeroizing<String>)> =
        request.headers.iter().map(|(n, v)| (n.to_string(), Zeroizing::new(v.to_string()))).collect();
    let body = request.body.map(|(t, b)| (t.to_string(), Zeroizing::new(b.to_vec())));
    let exchange = tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let request = Request {
            method: &method,
            url: &url,
            headers: &headers,
            body: body.as_ref().map(|(t, b)| (t.as_str(), b.as_slice())),
        };
        http.send(&request, MAX_ANSWER)
    });
    match exchange.await {
        Ok(result) => result.map_err(unreachable),
        Err(_) => Err(unreachable("the exchange was cancelled".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn section() -> OidcSection {
        OidcSection {
            issuer: "https://idp.example.org".into(),
            client_id: "certdesk".into(),
            client_secret_file: "oidc-secret".into(),
            scopes: vec!["openid".into(), "email".into()],
            display_name: None,
            email_claim: "email".into(),
            require_email_verified: true,
        }
    }

    #[test]
    fn only_https_or_loopback_issuers_are_accepted() {
        assert!(section().check().is_ok());
        for issuer in ["http://127.0.0.1:8080", "http://localhost/x", "http://[::1]:1/"] {
            assert!(OidcSection { issuer: issuer.into(), ..section() }.check().is_ok(), "{issuer}");
        }
        for issuer in ["http://idp.example.org", "ftp://idp", "https://", "https://idp/?a=b", "https://u@idp/"] {
            assert!(OidcSection { issuer: issuer.into(), ..section() }.check().is_err(), "{issuer}");
        }
        assert!(OidcSection { scopes: vec!["email".into()], ..section() }.check().is_err());
        assert!(OidcSection { client_id: " ".into(), ..section() }.check().is_err());
    }

    #[test]
    fn algorithms_none_and_hmac_are_refused() {
        for alg in ["none", "HS256", "HS384", "HS512", "RS1", ""] {
            assert_eq!(JwsAlgorithm::from_name(alg), None, "{alg}");
        }
        assert_eq!(JwsAlgorithm::from_name("ES256"), Some(JwsAlgorithm::Es256));
    }

    #[test]
    fn tokens_must_have_three_json_parts() {
        assert!(split_token("a.b").is_err());
        assert!(split_token("a.b.c.d").is_err());
        let part = |v: &str| B64URL.encode(v);
        assert!(split_token(&format!("{}.{}.", part("[]"), part("{}"))).is_err());
        let header = split_token(&format!("{}.{}.", part(r#"{"alg":"none"}"#), part("{}"))).unwrap();
        assert_eq!(header["alg"], "none");
        assert!(split_token(&format!("{}.{}.a*b", part(r#"{"alg":"ES256"}"#), part("{}"))).is_err());
        let crit = format!("{}.{}.", part(r#"{"alg":"ES256","crit":["x"]}"#), part("{}"));
        assert!(split_token(&crit).is_err());
    }

    #[test]
    fn only_suitable_signing_keys_verify() {
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = key.public_key().as_ref();
        let (x, y) = (B64URL.encode(&point[1..33]), B64URL.encode(&point[33..65]));
        let jwk = |extra: Value| -> Jwk {
            let mut value = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y });
            value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value(value).unwrap()
        };
        let input = format!("{}.{}", B64URL.encode(r#"{"alg":"ES256"}"#), B64URL.encode(r#"{"sub":"a"}"#));
        let signature = key.sign(&rng, input.as_bytes()).unwrap();
        let token = format!("{input}.{}", B64URL.encode(signature.as_ref()));
        let es256 = JwsAlgorithm::Es256;
        assert_eq!(es256.verify(&jwk(serde_json::json!({})), &token).unwrap()["sub"], "a");
        assert!(es256.verify(&jwk(serde_json::json!({ "use": "sig", "alg": "ES256" })), &token).is_some());
        // An encryption key, a key for another algorithm, another curve: not used.
        assert!(es256.verify(&jwk(serde_json::json!({ "use": "enc" })), &token).is_none());
        assert!(es256.verify(&jwk(serde_json::json!({ "alg": "ES384" })), &token).is_none());
        assert!(JwsAlgorithm::Es384.verify(&jwk(serde_json::json!({})), &token).is_none());
        assert!(JwsAlgorithm::Rs256.verify(&jwk(serde_json::json!({})), &token).is_none());
        // A tampered token.
        let tampered = token.replacen(&B64URL.encode(r#"{"sub":"a"}"#), &B64URL.encode(r#"{"sub":"b"}"#), 1);
        assert!(es256.verify(&jwk(serde_json::json!({})), &tampered).is_none());
        // A shared-secret key is never a candidate.
        let oct: Jwk = serde_json::from_value(serde_json::json!({ "kty": "oct", "k": "c2VjcmV0" })).unwrap();
        for algorithm in [JwsAlgorithm::Rs256, JwsAlgorithm::Ps256, JwsAlgorithm::Es256, JwsAlgorithm::Es384] {
            assert!(!algorithm.suits(&oct));
        }
    }

    #[test]
    fn form_encoding_escapes_everything_but_unreserved() {
        assert_eq!(form_encode("a b+c/é"), "a%20b%2Bc%2F%C3%A9");
    }
}
