//! CA keys in a PKCS#11 token (an HSM; SoftHSM2 for trying), through `cryptoki`.
//!
//! A key on a token is named in the data directory by a reference file in place of the
//! encrypted key file (`ca/issuing-key.pem` and so on):
//!
//! ```text
//! # certdesk: this key is in a PKCS#11 token
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token = "certdesk"
//! label = "certdesk-issuing"
//! ```
//!
//! so the data directory, and a backup of it, hold no key at all. The token's user PIN
//! takes the place of the CA passphrase (`--passphrase-file`, `CERTDESK_CA_PASSPHRASE`):
//! never an argument. Keys are made on the token sensitive and not extractable
//! (CKA_SENSITIVE, CKA_EXTRACTABLE false), ECDSA P-256/P-384 or RSA 3072/4096.
//!
//! One PKCS#11 context per module for the process, one session per token behind a
//! mutex (signing a certificate or a CRL takes milliseconds; OCSP answers are signed
//! ahead, so the lock is not on their path). A session that fails (token removed,
//! module restarted) is opened again, and the user logged in again, on the next use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_pki::key::{KeyAlgorithm, KeyError, Signer};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::asn1::{BitString, ObjectIdentifier, OctetString, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

/// The first line of a key reference file.
pub const REFERENCE_HEADER: &str = "# certdesk: this key is in a PKCS#11 token";

use certdesk_pki::oid::{
    ECDSA_WITH_SHA256, ECDSA_WITH_SHA384, EC_PUBLIC_KEY as ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP256R1, SECP384R1,
    SHA256_WITH_RSA,
};

/// Where a key is: module, token label and key label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReference {
    /// The PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The key's CKA_LABEL (private and public key alike).
    pub label: String,
}

impl KeyReference {
    /// The reference file's text.
    pub fn to_text(&self) -> String {
        let quote = |s: &str| toml_string(s);
        format!(
            "{REFERENCE_HEADER}\nmodule = {}\ntoken = {}\nlabel = {}\n",
            quote(&self.module.display().to_string()),
            quote(&self.token),
            quote(&self.label)
        )
    }

    /// Reads a reference file's text; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Result<Self, DomainError>> {
        if !text.starts_with(REFERENCE_HEADER) {
            return None;
        }
        let damaged = |what: &str| DomainError::new(ErrorCode::DataDir, format!("a CA key reference file {what}"));
        let mut fields: HashMap<&str, String> = HashMap::new();
        for line in text.lines().skip(1).map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let Some((name, value)) = line.split_once('=') else {
                return Some(Err(damaged("has a line that is not name = \"value\"")));
            };
            let value = value.trim();
            let Some(value) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
                return Some(Err(damaged("has a value that is not quoted")));
            };
            fields.insert(name.trim(), value.replace("\\\"", "\"").replace("\\\\", "\\"));
        }
        let mut take = |name: &str| fields.remove(name).ok_or_else(|| damaged(&format!("lacks {name}")));
        Some((|| {
            Ok(KeyReference { module: PathBuf::from(take("module")?), token: take("token")?, label: take("label")? })
        })())
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn device(reference: &KeyReference, what: &str, e: CkError) -> DomainError {
    let code = match &e {
        CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange | RvError::PinInvalid, _) => {
            return DomainError::new(ErrorCode::Passphrase, format!("the PIN of token {:?} is wrong", reference.token))
        }
        CkError::Pkcs11(RvError::PinLocked, _) => {
            return DomainError::new(ErrorCode::Passphrase, format!("the PIN of token {:?} is locked", reference.token))
        }
        CkError::LibraryLoading(_) => ErrorCode::Config,
        _ => ErrorCode::Internal,
    };
    DomainError::new(
        code,
        format!("PKCS#11 ({}, token {:?}): cannot {what}: {e}", reference.module.display(), reference.token),
    )
}

/// The process's PKCS#11 contexts, one per module (C_Initialize once).
fn contexts() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Open tokens by (module, token label).
type OpenTokens = Mutex<HashMap<(PathBuf, String), Arc<Token>>>;

/// The process's open tokens, one per (module, token label).
fn tokens() -> &'static OpenTokens {
    static TOKENS: OnceLock<OpenTokens> = OnceLock::new();
    TOKENS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn context(reference: &KeyReference) -> Result<Pkcs11, DomainError> {
    let mut contexts = contexts().lock().map_err(|_| DomainError::new(ErrorCode::Internal, "PKCS#11 lock poisoned"))?;
    if let Some(context) = contexts.get(&reference.module) {
        return Ok(context.clone());
    }
    if !reference.module.is_file() {
        return Err(DomainError::new(
            ErrorCode::Config,
            format!("the PKCS#11 module {} does not exist", reference.module.display()),
        ));
    }
    let context = Pkcs11::new(&reference.module).map_err(|e| device(reference, "load the module", e))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(device(reference, "initialise the module", e)),
    }
    contexts.insert(reference.module.clone(), context.clone());
    Ok(context)
}

/// A token with a logged-in session.
pub struct Token {
    reference: KeyReference,
    context: Pkcs11,
    pin: Zeroizing<String>,
    session: Mutex<Option<Live>>,
    /// When the module was last started again after losing the token.
    last_reset: Mutex<Option<std::time::Instant>>,
}

/// How often opening a session is tried before giving up (about 1 s in all).
const CONNECT_ATTEMPTS: u32 = 4;

/// How often a module that lost its token is started again (C_Finalize, C_Initialize).
const RESET_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

struct Live {
    session: Session,
    handles: HashMap<String, ObjectHandle>,
}

impl Live {
    /// The private key labelled `label` (looked up once per session); `None` if there
    /// is none, or several under the label.
    fn private_handle(&mut self, label: &str) -> Result<Option<ObjectHandle>, CkError> {
        if let Some(handle) = self.handles.get(label) {
            return Ok(Some(*handle));
        }
        let template = [Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(label.as_bytes().to_vec())];
        Ok(match self.session.find_objects(&template)?.as_slice() {
            [handle] => {
                self.handles.insert(label.to_string(), *handle);
                Some(*handle)
            }
            _ => None,
        })
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("module", &self.reference.module).field("token", &self.reference.token).finish()
    }
}

impl Token {
    /// Opens (once per process) the token a reference names and logs in with `pin`.
    pub fn open(reference: &KeyReference, pin: &str) -> Result<Arc<Token>, DomainError> {
        let key = (reference.module.clone(), reference.token.clone());
        let mut open = tokens().lock().map_err(|_| DomainError::new(ErrorCode::Internal, "PKCS#11 lock poisoned"))?;
        if let Some(token) = open.get(&key) {
            if token.pin.as_str() != pin {
                return Err(DomainError::new(
                    ErrorCode::Passphrase,
                    format!("the PIN of token {:?} is wrong", reference.token),
                ));
            }
            return Ok(token.clone());
        }
        let token = Arc::new(Token {
            reference: KeyReference { label: String::new(), ..reference.clone() },
            context: context(reference)?,
            pin: Zeroizing::new(pin.to_string()),
            session: Mutex::new(None),
            last_reset: Mutex::new(None),
        });
        // Log in now: a wrong PIN or a missing token shows at once.
        token.with_session("open a session", |_| Ok(()))?;
        open.insert(key, token.clone());
        Ok(token)
    }

    fn slot(&self) -> Result<Slot, DomainError> {
        let slots = self.context.get_slots_with_token().map_err(|e| device(&self.reference, "list the slots", e))?;
        let mut unreadable = None;
        for slot in slots {
            // A slot whose token cannot be read (another one being set up, a broken
            // reader) does not keep us from ours.
            match self.context.get_token_info(slot) {
                Ok(info) if info.label().trim_end() == self.reference.token => return Ok(slot),
                Ok(_) => {}
                Err(e) => unreadable = Some(e),
            }
        }
        if let Some(e) = unreadable {
            return Err(device(&self.reference, "read a token", e));
        }
        Err(DomainError::new(
            ErrorCode::Config,
            format!(
                "the PKCS#11 module {} has no token labelled {:?} (is it plugged in?)",
                self.reference.module.display(),
                self.reference.token
            ),
        ))
    }

    /// Opens a session and logs in; if that fails, the module may have lost the token
    /// (removed and put back, its daemon restarted) or another process is writing it:
    /// after a pause it is started again (at most every [`RESET_EVERY`]) and the session
    /// tried again, [`CONNECT_ATTEMPTS`] times in all.
    fn connect(&self) -> Result<Live, DomainError> {
        let mut last = None;
        for attempt in 0..CONNECT_ATTEMPTS {
            match self.try_connect() {
                Ok(live) => return Ok(live),
                // A wrong PIN is not tried again: tokens lock after a few.
                Err(e) if e.code() == ErrorCode::Passphrase => return Err(e),
                Err(e) => {
                    last = Some(e);
                    if attempt + 1 < CONNECT_ATTEMPTS {
                        // Another process may be writing the token (SoftHSM keeps it in
                        // files), or it was pulled and is back: a moment, then again.
                        std::thread::sleep(std::time::Duration::from_millis(100 * u64::from(attempt + 1)));
                        self.reset_module();
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| DomainError::new(ErrorCode::Internal, "PKCS#11: cannot open a session")))
    }

    fn reset_module(&self) -> bool {
        let Ok(mut last) = self.last_reset.lock() else { return false };
        if last.is_some_and(|at| at.elapsed() < RESET_EVERY) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        tracing::warn!(
            "PKCS#11: starting the module {} again to find token {:?}",
            self.reference.module.display(),
            self.reference.token
        );
        let _ = self.context.clone().finalize();
        matches!(
            self.context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)),
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _))
        )
    }

    fn try_connect(&self) -> Result<Live, DomainError> {
        let slot = self.slot()?;
        let session = self.context.open_rw_session(slot).map_err(|e| device(&self.reference, "open a session", e))?;
        let pin = AuthPin::new(self.pin.as_str().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(device(&self.reference, "log in", e)),
        }
        Ok(Live { session, handles: HashMap::new() })
    }

    /// Runs `f` with the session, opened (and logged in) if need be. A failure that may
    /// come from a lost session (token removed and back, module restarted) is tried
    /// once more on a new session.
    fn with_session<T>(&self, what: &str, f: impl Fn(&mut Live) -> Result<T, CkError>) -> Result<T, DomainError> {
        let mut guard =
            self.session.lock().map_err(|_| DomainError::new(ErrorCode::Internal, "PKCS#11 lock poisoned"))?;
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(self.connect()?);
            }
            let Some(live) = guard.as_mut() else { continue };
            match f(live) {
                Ok(value) => return Ok(value),
                Err(CkError::Pkcs11(
                    RvError::SessionHandleInvalid
                    | RvError::CryptokiNotInitialized
                    | RvError::GeneralError
                    | RvError::SessionClosed
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::DeviceError
                    | RvError::UserNotLoggedIn
                    | RvError::ObjectHandleInvalid
                    | RvError::KeyHandleInvalid,
                    _,
                )) if attempt == 0 => {
                    *guard = None;
                }
                Err(e) => {
                    // The next use starts from a new session.
                    *guard = None;
                    return Err(device(&self.reference, what, e));
                }
            }
        }
        Err(DomainError::new(ErrorCode::Internal, format!("PKCS#11: cannot {what}")))
    }

    /// Makes a key pair on the token under `label`: the private key sensitive and not
    /// extractable. Refused if the label is taken.
    pub fn generate(self: &Arc<Self>, label: &str, algorithm: KeyAlgorithm) -> Result<TokenKey, DomainError> {
        if self.find_private(label).is_ok() {
            return Err(DomainError::new(
                ErrorCode::DataDir,
                format!("token {:?} already holds a key labelled {label:?}", self.reference.token),
            ));
        }
        let common_public =
            vec![Attribute::Token(true), Attribute::Verify(true), Attribute::Label(label.as_bytes().to_vec())];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            // A CA key signs and does nothing else.
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let (mechanism, public) = match algorithm {
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
                let curve = if algorithm == KeyAlgorithm::P256 { SECP256R1 } else { SECP384R1 };
                let params = curve.to_der().map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))?;
                let mut public = common_public;
                public.push(Attribute::EcParams(params));
                (Mechanism::EccKeyPairGen, public)
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let bits = if algorithm == KeyAlgorithm::Rsa3072 { 3072u64 } else { 4096 };
                let mut public = common_public;
                public.push(Attribute::ModulusBits(bits.into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                (Mechanism::RsaPkcsKeyPairGen, public)
            }
        };
        self.with_session("generate a key", |live| {
            live.session.generate_key_pair(&mechanism, &public, &private).map(|_| ())
        })?;
        self.key(label)
    }

    fn find_private(&self, label: &str) -> Result<ObjectHandle, DomainError> {
        self.with_session("find a key", |live| live.private_handle(label))?.ok_or_else(|| {
            DomainError::new(
                ErrorCode::Config,
                format!("token {:?} holds no private key labelled {label:?} (or more than one)", self.reference.token),
            )
        })
    }

    /// The key labelled `label`: its public key read from the token.
    pub fn key(self: &Arc<Self>, label: &str) -> Result<TokenKey, DomainError> {
        let private = self.find_private(label)?;
        let attributes = self.with_session("read a key", |live| {
            live.session.get_attributes(
                private,
                &[AttributeType::KeyType, AttributeType::Sign, AttributeType::Sensitive, AttributeType::Extractable],
            )
        })?;
        let mut key_type = None;
        for attribute in &attributes {
            if let Attribute::KeyType(t) = attribute {
                key_type = Some(*t);
            }
        }
        let wrong = |why: &str| {
            DomainError::new(ErrorCode::Config, format!("the key {label:?} on token {:?} {why}", self.reference.token))
        };
        let public_template = |class| [Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())];
        let label_owned = label.to_string();
        let public = self.with_session("find a public key", |live| {
            let _ = &label_owned;
            live.session.find_objects(&public_template(ObjectClass::PUBLIC_KEY))
        })?;
        let Some(public) = public.first().copied() else {
            return Err(wrong("has no public key beside it"));
        };
        let (spki, kind) = match key_type {
            Some(KeyType::EC) => {
                let values = self.with_session("read a public key", |live| {
                    live.session.get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
                })?;
                let (mut params, mut point) = (None, None);
                for value in values {
                    match value {
                        Attribute::EcParams(p) => params = Some(p),
                        Attribute::EcPoint(p) => point = Some(p),
                        _ => {}
                    }
                }
                let curve = ObjectIdentifier::from_der(&params.ok_or_else(|| wrong("lacks its curve"))?)
                    .map_err(|_| wrong("is on a named curve we do not read"))?;
                let kind = if curve == SECP256R1 {
                    TokenKeyKind::P256
                } else if curve == SECP384R1 {
                    TokenKeyKind::P384
                } else {
                    return Err(wrong("is on a curve other than P-256 and P-384"));
                };
                // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point.
                let raw = point.ok_or_else(|| wrong("lacks its point"))?;
                let point = OctetString::from_der(&raw).map(|o| o.as_bytes().to_vec()).unwrap_or(raw);
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: ID_EC_PUBLIC_KEY,
                        parameters: Some(der::Any::from(&curve)),
                    },
                    subject_public_key: BitString::from_bytes(&point).map_err(|_| wrong("has a damaged point"))?,
                };
                (spki, kind)
            }
            Some(KeyType::RSA) => {
                let values = self.with_session("read a public key", |live| {
                    live.session.get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])
                })?;
                let (mut modulus, mut exponent) = (None, None);
                for value in values {
                    match value {
                        Attribute::Modulus(m) => modulus = Some(m),
                        Attribute::PublicExponent(e) => exponent = Some(e),
                        _ => {}
                    }
                }
                let modulus = modulus.ok_or_else(|| wrong("lacks its modulus"))?;
                let exponent = exponent.ok_or_else(|| wrong("lacks its exponent"))?;
                let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
                if !(3072..=4096).contains(&bits) {
                    return Err(wrong(&format!("is RSA-{bits}; CA keys are RSA 3072 to 4096 or ECDSA")));
                }
                let rsa = RsaPublicKey {
                    modulus: UintRef::new(&modulus).map_err(|_| wrong("has a damaged modulus"))?,
                    exponent: UintRef::new(&exponent).map_err(|_| wrong("has a damaged exponent"))?,
                };
                let der = rsa.to_der().map_err(|_| wrong("has a damaged public key"))?;
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: RSA_ENCRYPTION,
                        parameters: Some(der::asn1::Null.into()),
                    },
                    subject_public_key: BitString::from_bytes(&der).map_err(|_| wrong("has a damaged public key"))?,
                };
                (spki, TokenKeyKind::Rsa)
            }
            _ => return Err(wrong("is neither ECDSA nor RSA")),
        };
        let key = TokenKey { token: self.clone(), label: label.to_string(), spki, kind };
        // The public key found by label must be the private key's: a test signature
        // verified with it (another key under the same label would pass unnoticed).
        let probe = b"certdesk: does the public key belong to the private key?";
        let paired = key.sign(probe).is_ok_and(|signature| {
            certdesk_pki::key::verify_signature(&key.spki, &key.signature_algorithm(), probe, &signature).is_ok()
        });
        if !paired {
            return Err(wrong("has a public key beside it that does not belong to it"));
        }
        Ok(key)
    }

    /// Whether the key labelled `label` was made on the token and never left it:
    /// sensitive and not extractable now, always sensitive and never extractable, and
    /// local (generated there, not imported). Checked before a CA uses a key it did not
    /// make.
    pub fn key_is_locked_in(&self, label: &str) -> Result<bool, DomainError> {
        let private = self.find_private(label)?;
        let wanted = [
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Local,
        ];
        let values = self.with_session("read a key", |live| live.session.get_attributes(private, &wanted))?;
        let mut locked = values.len() == wanted.len();
        for value in values {
            locked &= match value {
                Attribute::Sensitive(v) | Attribute::AlwaysSensitive(v) | Attribute::NeverExtractable(v) => v,
                Attribute::Local(v) => v,
                Attribute::Extractable(v) => !v,
                _ => false,
            };
        }
        Ok(locked)
    }
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    exponent: UintRef<'a>,
}

#[derive(Sequence)]
struct EcdsaSignature<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKeyKind {
    P256,
    P384,
    Rsa,
    /// RSA signing with RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt).
    RsaPss,
}

/// A signing key on a token.
#[derive(Clone)]
pub struct TokenKey {
    token: Arc<Token>,
    label: String,
    spki: SubjectPublicKeyInfoOwned,
    kind: TokenKeyKind,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("token", &self.token).field("label", &self.label).finish()
    }
}

impl TokenKey {
    /// The same key signing with RSASSA-PSS; `None` if it is not RSA.
    pub fn with_rsa_pss(self) -> Option<Self> {
        matches!(self.kind, TokenKeyKind::Rsa | TokenKeyKind::RsaPss)
            .then_some(Self { kind: TokenKeyKind::RsaPss, ..self })
    }

    /// The reference file naming this key.
    pub fn reference(&self) -> KeyReference {
        KeyReference { label: self.label.clone(), ..self.token.reference.clone() }
    }
}

impl Signer for TokenKey {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        // The same choices as for keys in files (certdesk_pki::key::PrivateKey).
        match self.kind {
            TokenKeyKind::P256 => AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA256, parameters: None },
            TokenKeyKind::P384 => AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA384, parameters: None },
            TokenKeyKind::Rsa => {
                AlgorithmIdentifierOwned { oid: SHA256_WITH_RSA, parameters: Some(der::asn1::Null.into()) }
            }
            TokenKeyKind::RsaPss => certdesk_pki::key::rsa_pss_sha256_algorithm(),
        }
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |e: DomainError| KeyError::Device { reason: e.to_string() };
        let (mechanism, input) = match self.kind {
            TokenKeyKind::P256 => {
                (Mechanism::Ecdsa, aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message).as_ref().to_vec())
            }
            TokenKeyKind::P384 => {
                (Mechanism::Ecdsa, aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, message).as_ref().to_vec())
            }
            TokenKeyKind::Rsa => (Mechanism::Sha256RsaPkcs, message.to_vec()),
            TokenKeyKind::RsaPss => (
                Mechanism::Sha256RsaPkcsPss(cryptoki::mechanism::rsa::PkcsPssParams {
                    hash_alg: cryptoki::mechanism::MechanismType::SHA256,
                    mgf: cryptoki::mechanism::rsa::PkcsMgfType::MGF1_SHA256,
                    s_len: 32u64.into(),
                }),
                message.to_vec(),
            ),
        };
        let label = self.label.clone();
        let signature = self
            .token
            .with_session("sign", |live| {
                // A key gone from the token (or a token replaced) is tried on a new session.
                let handle = live
                    .private_handle(&label)?
                    .ok_or(CkError::Pkcs11(RvError::KeyHandleInvalid, cryptoki::context::Function::FindObjects))?;
                live.session.sign(&mechanism, handle, &input)
            })
            .map_err(failed)?;
        match self.kind {
            TokenKeyKind::Rsa | TokenKeyKind::RsaPss => Ok(signature),
            // PKCS#11 gives r || s; X.509 wants ECDSA-Sig-Value (RFC 5480).
            TokenKeyKind::P256 | TokenKeyKind::P384 => {
                let half = signature.len() / 2;
                let (r, s) = signature.split_at(half);
                let strip = |v: &'_ [u8]| -> Vec<u8> {
                    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len().saturating_sub(1));
                    v.get(start..).unwrap_or_default().to_vec()
                };
                let (r, s) = (strip(r), strip(s));
                let sig = EcdsaSignature {
                    r: UintRef::new(&r).map_err(|_| KeyError::Crypto { operation: "sign" })?,
                    s: UintRef::new(&s).map_err(|_| KeyError::Crypto { operation: "sign" })?,
                };
                sig.to_der().map_err(|_| KeyError::Crypto { operation: "sign" })
            }
        }
    }
}

/// Reads a key file: `Some(reference)` if it names a key on a token.
pub fn reference_in(bytes: &[u8]) -> Option<Result<KeyReference, DomainError>> {
    let text = std::str::from_utf8(bytes).ok()?;
    KeyReference::parse(text)
}

/// The module path as given, made absolute (a reference file outlives the directory
/// `init` ran in).
pub fn absolute_module(module: &Path) -> PathBuf {
    std::path::absolute(module).unwrap_or_else(|_| module.to_path_buf())
}
