//! The domain error of the service, with stable error codes.
//!
//! Codes are part of the API (CLI `--json`, REST problem documents): a code keeps its
//! number forever, and a retired code stays reserved. See `docs/error-codes.md`.

/// Stable error codes. Explicit values; never renumber, never reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Input could not be read (file, PEM, DER, CSR).
    BadInput = 1001,
    /// Input is well-formed but refused by policy (weak key, weak password, bad e-mail).
    Refused = 1002,
    /// No such certificate.
    NotFound = 1003,
    /// The certificate is already revoked.
    AlreadyRevoked = 1004,
    /// The data directory is missing, incomplete or already initialised.
    DataDir = 1005,
    /// The CA passphrase is wrong or missing.
    Passphrase = 1006,
    /// The configuration is invalid.
    Config = 1007,
    /// The audit log failed verification.
    AuditBroken = 1008,
    /// The request conflicts with the current state (changed meanwhile, already done).
    Conflict = 1009,
    /// Not signed in, or the sign-in link or code is invalid or used.
    Unauthenticated = 1010,
    /// Signed in, but not allowed to do this.
    Forbidden = 1011,
    /// Too many attempts; try again later.
    TooManyRequests = 1012,
    /// A concurrent change took what this one needed (a crlNumber, an application's
    /// version); the operation may be tried again.
    Contention = 1013,
    /// A one-time value or code given is wrong, used up or expired (the mailbox value,
    /// an authenticator code); the session, if any, stands.
    WrongCode = 1014,
    /// A request body over the limit (HTTP 413).
    TooLarge = 1015,
    /// A request body not received within the time allowed (HTTP 408).
    RequestTimeout = 1016,
    /// The resource does not take this HTTP method (HTTP 405).
    MethodNotAllowed = 1017,
    /// Database failure.
    Database = 1501,
    /// Internal failure (crypto library, I/O).
    Internal = 1502,
}

impl ErrorCode {
    /// The numeric code.
    pub fn number(self) -> u16 {
        self as u16
    }
}

/// An error of the certdesk service: a stable code and one clear sentence.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    code: ErrorCode,
    message: String,
}

impl DomainError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Whether the error is a negative verdict or refusal (CLI exit 1) rather than bad
    /// usage, unreadable input or a failure (exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::Refused
                | ErrorCode::AlreadyRevoked
                | ErrorCode::NotFound
                | ErrorCode::AuditBroken
                | ErrorCode::Conflict
                | ErrorCode::Unauthenticated
                | ErrorCode::Forbidden
                | ErrorCode::TooManyRequests
                | ErrorCode::Contention
                | ErrorCode::WrongCode
                | ErrorCode::TooLarge
                | ErrorCode::RequestTimeout
                | ErrorCode::MethodNotAllowed
        )
    }
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        DomainError::new(ErrorCode::Database, format!("database error: {e}"))
    }
}
