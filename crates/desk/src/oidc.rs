//! OpenID Connect single sign-on for the portal: the relying-party side of the
//! authorization-code flow ([OpenID Connect Core 1.0] §3.1) with PKCE ([RFC 7636],
//! `S256`), `state` and `nonce`.
//!
//! This module holds the protocol: the `[portal.oidc]` settings, discovery
//! ([OpenID Connect Discovery 1.0] §4), the authorization request, the token request
//! (`client_secret_basic` or `client_secret_post`, RFC 6749 §2.3.1), and the ID token
//! validation of Core §3.1.3.7 (JWS signature with a JWKS key: RS256, PS256, ES256,
//! ES384; never `none` or HMAC; `iss`, `aud`, `azp`, `exp`, `iat`, `nbf`, `nonce`). The
//! pending logins live in the database (`store::oidc`), and the session is started by
//! the portal (`portal::single_sign_on`), with the same rules as a mailed link.
//!
//! Only `https://` URLs are fetched; `http://` only for a loopback issuer (tests, a
//! local proxy). Time comes from the caller (the injected clock).
//!
//! [OpenID Connect Core 1.0]: https://openid.net/specs/openid-connect-core-1_0.html
//! [OpenID Connect Discovery 1.0]: https://openid.net/specs/openid-connect-discovery-1_0.html
//! [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::http_client::{parse_response, request_bytes, tls_config, HttpUrl, Request};

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

/// One verification key from the JWKS.
#[derive(Clone, Debug, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
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

    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// Verifies `signature` over `message` with `key`, if the key suits the algorithm.
    fn verify(self, key: &Jwk, message: &[u8], signature: &[u8]) -> bool {
        if key.alg.as_deref().is_some_and(|a| a != self.name()) || key.usage.as_deref().is_some_and(|u| u != "sig") {
            return false;
        }
        let decode = |v: &Option<String>| v.as_deref().and_then(|v| B64URL.decode(v).ok());
        match self {
            Self::Rs256 | Self::Ps256 => {
                let (Some(n), Some(e)) = (decode(&key.n), decode(&key.e)) else { return false };
                if key.kty != "RSA" {
                    return false;
                }
                let algorithm = if self == Self::Rs256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                    .verify(algorithm, message, signature)
                    .is_ok()
            }
            Self::Es256 | Self::Es384 => {
                let (curve, size, algorithm): (&str, usize, &'static dyn VerificationAlgorithm) = if self == Self::Es256
                {
                    ("P-256", 32, &signature::ECDSA_P256_SHA256_FIXED)
                } else {
                    ("P-384", 48, &signature::ECDSA_P384_SHA384_FIXED)
                };
                let (Some(x), Some(y)) = (decode(&key.x), decode(&key.y)) else { return false };
                if key.kty != "EC" || key.crv.as_deref() != Some(curve) || x.len() != size || y.len() != size {
                    return false;
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                UnparsedPublicKey::new(algorithm, point).verify(message, signature).is_ok()
            }
        }
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
    tls: Arc<rustls::ClientConfig>,
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
        let tls = tls_config(None)?;
        Ok(Self {
            section,
            client_secret,
            redirect_uri,
            tls,
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
        let (status, body) = fetch(&self.tls, &Request { method: "GET", url: &url, headers: &[], body: None }).await?;
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
        let (header, claims, message, signature) = split_token(&id_token)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
        let algorithm = JwsAlgorithm::from_name(alg).ok_or_else(|| OidcError::Algorithm { alg: alg.to_string() })?;
        let kid = header.get("kid").and_then(Value::as_str);
        self.verify_signature(&provider, algorithm, kid, message.as_bytes(), &signature, now).await?;
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
        let (status, body) = fetch(&self.tls, &request).await?;
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
        message: &[u8],
        signature: &[u8],
        now: i64,
    ) -> Result<(), OidcError> {
        let mut keys = self.keys.lock().await;
        let fresh = |c: &Cached<Vec<Jwk>>| (0..CACHE_SECONDS).contains(&(now - c.fetched_at));
        let matches = |k: &Jwk| kid.is_none() || k.kid.as_deref() == kid;
        let known = keys.as_ref().filter(|c| fresh(c)).is_some_and(|c| c.value.iter().any(matches));
        // Fetch when nothing is cached, the cache is old, or the key is unknown (the
        // provider rotated its keys; at most once a minute).
        let stale = keys.as_ref().is_none_or(|c| !fresh(c));
        let may_refresh = keys.as_ref().is_none_or(|c| now - c.fetched_at >= KEY_REFRESH_SECONDS);
        if stale || (!known && may_refresh) {
            let request = Request { method: "GET", url: &provider.jwks_uri, headers: &[], body: None };
            let (status, body) = fetch(&self.tls, &request).await?;
            if status != 200 {
                return Err(OidcError::Discovery { reason: format!("the key set answered HTTP status {status}") });
            }
            let set: JwkSet = serde_json::from_slice(&body)
                .map_err(|_| OidcError::Discovery { reason: "the key set is not a JWK set".into() })?;
            // Keys of kinds we do not know are skipped, not fatal.
            let parsed = set.keys.into_iter().filter_map(|k| serde_json::from_value::<Jwk>(k).ok()).collect();
            *keys = Some(Cached { value: parsed, fetched_at: now });
        }
        let candidates = keys.as_ref().map(|c| c.value.as_slice()).unwrap_or_default();
        if candidates.iter().filter(|k| matches(k)).any(|k| algorithm.verify(k, message, signature)) {
            Ok(())
        } else {
            Err(OidcError::BadSignature)
        }
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

type SplitToken = (Value, Value, String, Vec<u8>);

/// Takes a JWS compact serialisation apart: header, claims, signing input, signature.
fn split_token(token: &str) -> Result<SplitToken, OidcError> {
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
    let claims_value = json(claims)?;
    let signature = B64URL.decode(signature).map_err(|_| malformed("the signature is not base64url"))?;
    Ok((header_value, claims_value, format!("{header}.{claims}"), signature))
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.0 client (one request per connection) over tokio and rustls.

async fn fetch(tls: &Arc<rustls::ClientConfig>, request: &Request<'_>) -> Result<(u16, Vec<u8>), OidcError> {
    let unreachable = |reason: String| OidcError::Unreachable { reason };
    allowed_url(request.url).map_err(unreachable)?;
    match tokio::time::timeout(TIMEOUT, exchange(tls, request)).await {
        Ok(result) => result.map_err(unreachable),
        Err(_) => Err(unreachable("timed out".into())),
    }
}

async fn exchange(tls: &Arc<rustls::ClientConfig>, request: &Request<'_>) -> Result<(u16, Vec<u8>), String> {
    let url = HttpUrl::parse(request.url)?;
    let bytes = request_bytes(&url, request)?;
    let stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", url.host))?;
    let raw = if url.tls {
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|_| format!("{} is not a valid server name", url.host))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS with {} failed: {e}", url.host))?;
        round_trip(stream, &bytes).await?
    } else {
        round_trip(stream, &bytes).await?
    };
    parse_response(&raw, MAX_ANSWER)
}

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Result<Vec<u8>, String> {
    stream.write_all(request).await.map_err(|e| format!("sending failed: {e}"))?;
    stream.flush().await.map_err(|e| format!("sending failed: {e}"))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if raw.len() > MAX_ANSWER + 16 * 1024 {
                    return Err(format!("the answer is larger than {MAX_ANSWER} bytes"));
                }
            }
            // A TLS peer that closes without close_notify after a complete answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(format!("receiving failed: {e}")),
        }
    }
    Ok(raw)
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
        let (header, _, input, sig) = split_token(&format!("{}.{}.", part(r#"{"alg":"none"}"#), part("{}"))).unwrap();
        assert_eq!(header["alg"], "none");
        assert_eq!(input, format!("{}.{}", part(r#"{"alg":"none"}"#), part("{}")));
        assert!(sig.is_empty());
        let crit = format!("{}.{}.", part(r#"{"alg":"ES256","crit":["x"]}"#), part("{}"));
        assert!(split_token(&crit).is_err());
    }

    #[test]
    fn form_encoding_escapes_everything_but_unreserved() {
        assert_eq!(form_encode("a b+c/é"), "a%20b%2Bc%2F%C3%A9");
    }
}
