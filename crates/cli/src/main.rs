//! `certdesk`: the command-line tool. Thin: parse, call the library, render.
//!
//! Exit codes: 0 success, 1 a negative verdict or refusal, 2 bad usage or unreadable
//! input. Errors are one sentence on stderr; nothing half-written is left behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use certdesk_ca::authority::{init, Authority, InitOptions};
use certdesk_core::clock::SystemClock;
use certdesk_core::datadir::DataDir;
use certdesk_core::error::{DomainError, ErrorCode};
use certdesk_core::ports::{IssueInput, IssueRequest, Pkcs12Delivery};
use certdesk_pki::crl::RevocationReason;
use certdesk_pki::csr::ValidatedCsr;
use certdesk_pki::key::KeyAlgorithm;
use certdesk_pki::pkcs12::Format;
use certdesk_pki::profile::ProfileId;
use certdesk_pki::subject::{EmailAddress, NameField, Person};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// jemalloc, with its background threads, gives freed memory back to the system within
/// seconds, where glibc's malloc kept it in fragmented per-thread arenas: after a wave of
/// slow or hoarding clients `serve` shrinks back to its idle size (issue 14;
/// docs/design/http-server.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod enroll_cmd;
mod escrow_cmd;
mod identity;
mod jobs;
mod keyring_cmd;
mod online;
mod reencrypt_cmd;
mod smime_cmd;
mod values;
use zeroize::Zeroizing;

/// certdesk: the S/MIME certificate desk of an organisation.
#[derive(Parser)]
#[command(name = "certdesk", version, about)]
struct Cli {
    /// The CA's data directory (default ./certdesk-data), for the CA commands; also
    /// accepted after them.
    #[arg(long, env = "CERTDESK_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// File holding the CA key passphrase (else env CERTDESK_CA_PASSPHRASE), for the CA
    /// commands; also accepted after them. `-` reads it from stdin.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The data directory used when neither `--data` nor `CERTDESK_DATA` names one.
const DEFAULT_DATA: &str = "./certdesk-data";

/// The CA's data directory and passphrase file, given after a CA command (`certdesk
/// issue --data DIR ...`). The client commands (`smime`, `enroll`) do not take them, so
/// their help does not show them.
#[derive(Args, Clone, Default)]
struct CaOptions {
    /// The CA's data directory (default ./certdesk-data, or env CERTDESK_DATA).
    #[arg(long = "data", id = "ca_data", global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// File holding the CA key passphrase (else env CERTDESK_CA_PASSPHRASE); `-` reads it
    /// from stdin.
    #[arg(long = "passphrase-file", id = "ca_passphrase_file", global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// A CA command group: the CA options, then its subcommand.
#[derive(Args)]
struct WithCa<C: Subcommand> {
    #[command(flatten)]
    ca: CaOptions,
    #[command(subcommand)]
    command: C,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory: root CA, issuing CA, database, config.
    Init(InitArgs),
    /// CA certificates.
    Ca(WithCa<CaCommand>),
    /// Certificates issued: find one by mailbox or status, show one by serial.
    Cert(WithCa<CertCommand>),
    /// The public directory of certificates to encrypt to: SMIMEA records for DNS.
    Directory(WithCa<DirectoryCommand>),
    /// Key escrow: the escrow key whose shares the key recovery agents hold.
    Escrow(WithCa<escrow_cmd::EscrowCommand>),
    /// Issue a certificate: for a CSR (the applicant's own key) or with a server-generated key as .p12.
    Issue(IssueArgs),
    /// Revoke a certificate.
    Revoke(RevokeArgs),
    /// Write the current CRL (a new one is signed when it is out of date, or with --new).
    Crl(CrlArgs),
    /// The audit log.
    Audit(WithCa<AuditCommand>),
    /// Sign and verify S/MIME messages.
    #[command(subcommand)]
    Smime(smime_cmd::SmimeCommand),
    /// Serve the registration desk (portal, REST API), CA certificates, the CRL and OCSP
    /// (initialises a demo CA if there is no data directory).
    Serve(ServeArgs),
    /// Apply through a portal with a key made on this device (resumable, one step per run).
    Enroll(enroll_cmd::EnrollArgs),
    /// Portal users (registration officers, administrators).
    User(WithCa<UserCommand>),
    /// The configuration file.
    Config(WithCa<ConfigCommand>),
    /// Back up the data directory into one archive (`backup --out FILE`), or check an
    /// archive (`backup verify FILE`). Keys stay encrypted under the CA passphrase.
    Backup(BackupArgs),
    /// Restore a data directory from a backup archive (into --data, which must be new or
    /// empty unless --force).
    Restore(RestoreArgs),
    /// The key ceremony of an offline root, on the root machine: create the root, sign
    /// the issuing CA's certificate, sign the root's CRL (docs/operations/hsm.md).
    #[command(subcommand)]
    Ceremony(CeremonyCommand),
    /// Print shell completion for bash, zsh, fish, elvish or powershell (e.g.
    /// `certdesk completion bash > /etc/bash_completion.d/certdesk`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `certdesk man | man -l -`.
    Man,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an officer or administrator (or change a role); prints a one-time sign-in link.
    Add {
        /// Their e-mail address.
        #[arg(long)]
        email: String,
        /// Their role.
        #[arg(long, value_enum)]
        role: values::StaffRole,
    },
    /// List officers and administrators: role, second factor, disabled.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Disable an officer or administrator (a leaver): they can no longer sign in, and
    /// their sessions end.
    Disable {
        /// Their e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled officer or administrator again.
    Enable {
        /// Their e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Forget someone's authenticator (a lost phone): their sessions end, and the
    /// one-time sign-in link printed leads them to enrol a new one.
    ResetTotp {
        /// Their e-mail address.
        #[arg(long)]
        email: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    ca: CaOptions,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// HTTPS: certificate chain, PEM, leaf first (or http.tls_cert in certdesk.toml); reloaded when it
    /// changes.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// HTTPS: the certificate's private key, PEM (or http.tls_key in certdesk.toml).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With HTTPS: a plain-HTTP listener for CRL, OCSP and CA certificates, which relying
    /// parties fetch over http:// (or http.plain_listen in certdesk.toml), e.g. 0.0.0.0:80.
    #[arg(long)]
    plain_listen: Option<String>,
    /// Serve GET /metrics on this address only (plain HTTP, e.g. 127.0.0.1:9100) instead
    /// of the main listener (or http.metrics_listen in certdesk.toml).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Serve plain HTTP on an address other than loopback. Without it, plain HTTP is
    /// served only on loopback, behind a reverse proxy that terminates TLS: sign-in links
    /// and session cookies must not cross a network in clear.
    #[arg(long)]
    allow_plain_http: bool,
    /// Log lines (access log, failures of background jobs) to stderr as text or as
    /// JSON, one object per line. RUST_LOG-style filtering is not offered: the access
    /// log is target certdesk::access at level info.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds between status refreshes (new OCSP responses, CRL, responder renewal).
    #[arg(long, default_value_t = 10)]
    refresh_seconds: u64,
    /// The first administrator's address: until an administrator has enrolled a second
    /// factor, each start prints a one-time sign-in link for it.
    #[arg(long, default_value = "admin@certdesk.example")]
    admin_email: String,
}

/// How `serve` writes its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for journald, Loki, Elasticsearch).
    Json,
}

/// Sends `tracing` events (info and above) to stderr in the chosen format.
fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    ca: CaOptions,
    /// organizationName (at most 42 characters: the CA names "ORG S/MIME OCSP Responder"
    /// and so on must fit the 64 characters of a commonName).
    #[arg(long)]
    org: String,
    /// Country code in use, ISO 3166-1 alpha-2 (DE, GB, FR; not UK or XX).
    #[arg(long)]
    country: String,
    /// organizationIdentifier, e.g. VATDE-123456789 (BR 7.1.4.2.2 (d); its country is
    /// --country). Without it the CA cannot issue the sponsor-validated staff profiles
    /// (sponsor-strict, sponsor-multipurpose), only mailbox-validated and private ones;
    /// init says which profiles it can issue and why.
    #[arg(long)]
    org_id: Option<String>,
    /// CA key type.
    #[arg(long, value_enum, default_value_t = CaKey::P384)]
    key: CaKey,
    /// Public base URL where CRL, OCSP and CA certificates are served: plain http:// with a host, optionally a
    /// port and a path; no query, fragment or user. The CA/B Forum profiles need a public host name (not
    /// localhost, an IP address, .local, .internal, .test, ...); with the default the CA
    /// issues only the private profile.
    #[arg(long, default_value = "http://localhost:8080")]
    base_url: String,
    /// Keep the database in PostgreSQL (postgres://...) instead of the SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Make the CA keys (root, issuing CA, OCSP responder) on a PKCS#11 token (an HSM;
    /// e.g. /usr/lib/softhsm/libsofthsm2.so), sensitive and not extractable. The token's
    /// user PIN then goes where the CA passphrase goes (--passphrase-file or
    /// CERTDESK_CA_PASSPHRASE), never on the command line.
    #[arg(long, requires = "token_label", value_name = "LIB")]
    pkcs11_module: Option<PathBuf>,
    /// The token's label (with --pkcs11-module).
    #[arg(long, requires = "pkcs11_module", value_name = "LABEL")]
    token_label: Option<String>,
    /// The keys' labels on the token: LABEL-root, LABEL-issuing and LABEL-ocsp.
    #[arg(long, default_value = "certdesk", value_name = "LABEL")]
    key_label: String,
    /// Use the keys already on the token under those labels (made by the HSM's tools)
    /// instead of making new ones: ECDSA P-256 or P-384, or RSA 3072 to 4096.
    #[arg(long, requires = "pkcs11_module")]
    existing_keys: bool,
    /// The root is offline: its certificate (PEM) from `certdesk ceremony create-root`.
    /// init then makes the issuing CA's and OCSP responder's keys and ca/issuing.csr, to
    /// be signed at the ceremony (`certdesk ceremony sign-issuing`) and installed with
    /// `certdesk ca install-issuing`; no root key is on this machine.
    #[arg(long, value_name = "ROOT_PEM")]
    offline_root: Option<PathBuf>,
    /// The root and issuing CA sign with RSASSA-PSS (SHA-256; BR 7.1.3.2) instead of RSA
    /// PKCS#1 v1.5: with --key rsa4096 only. Some older mail clients cannot verify PSS.
    #[arg(long)]
    rsa_pss: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum CaKey {
    P384,
    Rsa4096,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Install the issuing CA certificate signed at the key ceremony (after `init
    /// --offline-root`), with the root's CRL; imports the ceremony's transcript into the
    /// audit log. Needs the CA passphrase (or token PIN).
    InstallIssuing {
        /// The issuing CA certificate (`certdesk ceremony sign-issuing --out`).
        #[arg(long)]
        cert: PathBuf,
        /// The root's CRL from the ceremony directory (root.crl).
        #[arg(long)]
        root_crl: PathBuf,
        /// The ceremony's transcript.jsonl, imported into the audit log.
        #[arg(long)]
        transcript: Option<PathBuf>,
    },
    /// Install a root CRL signed at a key ceremony (`certdesk ceremony sign-root-crl`).
    InstallRootCrl {
        /// The CRL (DER or PEM).
        file: PathBuf,
        /// The ceremony's transcript.jsonl, imported into the audit log.
        #[arg(long)]
        transcript: Option<PathBuf>,
    },
    /// Print the issuing CA then the root, PEM.
    Chain {
        /// Write to this file instead of stdout (`-`: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CeremonyCommand {
    /// Make the root key (file or token), the root certificate and the first root CRL in
    /// a new ceremony directory. The passphrase (or PIN) comes from --passphrase-file or
    /// CERTDESK_CA_PASSPHRASE.
    CreateRoot {
        /// The ceremony directory to make (keep it on the root machine or its media).
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        init: InitArgs,
    },
    /// Sign the issuing CA's certificate for the CSR made by `init --offline-root`.
    SignIssuing {
        #[command(flatten)]
        ca: CaOptions,
        /// The ceremony directory.
        #[arg(long)]
        dir: PathBuf,
        /// The issuing CA's CSR (DATA/ca/issuing.csr of the online CA).
        #[arg(long)]
        csr: PathBuf,
        /// Where to write the issuing CA certificate (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign the root's next CRL (at least yearly, BR 4.9.7).
    SignRootCrl {
        #[command(flatten)]
        ca: CaOptions,
        /// The ceremony directory.
        #[arg(long)]
        dir: PathBuf,
        /// Where to write the CRL (DER).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BackupArgs {
    #[command(flatten)]
    ca: CaOptions,
    /// The archive to write (a tar file; never replaces an existing file). With
    /// PostgreSQL, run `pg_dump` after it (docs/operations/backup.md).
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    verify: Option<BackupCommand>,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check an archive without restoring it: checksums, completeness, and that its
    /// database's audit chain verifies and ends at the head its manifest names.
    Verify {
        /// The archive.
        file: PathBuf,
    },
}

#[derive(Args)]
struct RestoreArgs {
    #[command(flatten)]
    ca: CaOptions,
    /// The archive (`certdesk backup --out`).
    file: PathBuf,
    /// Replace a data directory that is there (of the same CA); it is kept aside as
    /// DATA.replaced-TIME, not deleted.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum CertCommand {
    /// List the certificates issued, newest first: serial, status, valid until, profile,
    /// mailbox.
    List {
        /// Only those of this mailbox (case-insensitive).
        #[arg(long)]
        email: Option<String>,
        /// Only those in this state.
        #[arg(long, value_enum)]
        status: Option<CertState>,
        /// One JSON array on stdout, an object per certificate.
        #[arg(long)]
        json: bool,
    },
    /// Show one certificate: what the CA recorded about it, or its PEM.
    Show {
        /// Serial number in hex (colons and upper case allowed).
        serial: String,
        /// Print the certificate as PEM instead.
        #[arg(long, conflicts_with = "json")]
        pem: bool,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Write SMIMEA records (RFC 8162) for the certificates the directory lists now (not
    /// revoked, not expired, able to encrypt) of mailboxes in a zone, in zone-file
    /// syntax, for an operator who signs the zone with DNSSEC. Usage 3 (DANE-EE),
    /// selector 0, matching type 0: the whole certificate. Re-run after each issuance
    /// and revocation (or from cron) and reload the zone.
    Smimea {
        /// The DNS zone, e.g. example.org (mailboxes in it and below it).
        #[arg(long)]
        zone: String,
        /// The records' TTL in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
        /// Where to write the records (default stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Bring the existing LDAP directory of `[directory.publish]` (Active Directory,
    /// OpenLDAP) up to date once: add each certificate the directory lists and that is
    /// not yet there to its holder's entry, remove each revoked or expired one from the
    /// entry it was added to (that value only). `serve` does the same at every refresh.
    /// Exit 1 if a certificate could not be published (named on stderr; tried again next
    /// time).
    Publish,
}

/// The state of an issued certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CertState {
    /// Not revoked and within its validity period.
    Valid,
    /// Revoked.
    Revoked,
    /// Past its notAfter (and not revoked).
    Expired,
}

impl CertState {
    fn name(self) -> &'static str {
        match self {
            CertState::Valid => "valid",
            CertState::Revoked => "revoked",
            CertState::Expired => "expired",
        }
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file as `serve` and every command would, without starting
    /// anything; prints what it sets. Exit 0 when valid, 2 with the reason when not.
    Check {
        /// The file (default DATA/certdesk.toml).
        file: Option<PathBuf>,
        /// Print the result as one JSON object on stdout (`{"ok": true, "settings":
        /// [...]}`), or the failure with its error code.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the audit log; prints the head as SEQ:HASH, to be noted
    /// somewhere the CA machine cannot write (a ticket, a mail to the auditor).
    Verify {
        /// A head noted earlier (SEQ:HASH): also check that the log still holds it
        /// unchanged, so records cut off the end or a rebuilt log show.
        #[arg(long)]
        checkpoint: Option<certdesk_core::audit::Checkpoint>,
        /// Print the result as one JSON object on stdout (`{"ok": true, "records": N,
        /// "head": "SEQ:HASH"}`), or the failure with its error code.
        #[arg(long)]
        json: bool,
    },
    /// Verify the log and mail its head to the auditors of `[audit] checkpoint_to` now
    /// (`serve` does so once per `checkpoint_hours`); an alert instead if it fails.
    Checkpoint,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("keypath").required(true).args(["csr", "p12"])))]
struct IssueArgs {
    #[command(flatten)]
    ca: CaOptions,
    /// Mailbox (validated).
    #[arg(long)]
    email: String,
    /// Given name as on the ID.
    #[arg(long)]
    given_name: String,
    /// Surname as on the ID.
    #[arg(long)]
    surname: String,
    /// The certificate profile. Default: the first this CA can issue of sponsor-strict,
    /// mailbox-strict and private (`init` and `config check` say which).
    #[arg(long, value_enum)]
    profile: Option<values::ProfileArg>,
    /// The applicant's CSR (PEM or DER; `-` for stdin).
    #[arg(long)]
    csr: Option<PathBuf>,
    /// Where to write the certificate (PEM) for --csr; stdout if absent or `-`.
    #[arg(long, requires = "csr")]
    out: Option<PathBuf>,
    /// Generate the key here and write a .p12 to this file (`-`: stdout).
    #[arg(long, requires = "password_file")]
    p12: Option<PathBuf>,
    /// File holding the .p12 password (`-`: the first line of stdin).
    #[arg(long, requires = "p12")]
    password_file: Option<PathBuf>,
    /// modern (AES-256, PBKDF2-SHA256) or compat (3DES, SHA-1 MAC: macOS before 14, older
    /// Windows, gpgsm 2.2); default: what every --client imports, else modern.
    #[arg(long, value_enum, requires = "p12")]
    p12_format: Option<P12Format>,
    /// A mail client the .p12 is for (repeat for each): the format is chosen so that
    /// every one of them imports it, and their install steps are printed.
    #[arg(long = "client", value_enum, requires = "p12")]
    clients: Vec<values::ClientArg>,
    /// Key type for a server-generated key.
    #[arg(long, value_enum, default_value = "rsa3072", requires = "p12")]
    key: values::KeyArg,
    /// Replace an existing --p12 (or --out) file; without it an existing .p12 is refused,
    /// since it may hold the only copy of an earlier key.
    #[arg(long)]
    force: bool,
    /// Print the outcome as one JSON object on stdout (`{"ok": true, "serial": ...}`, the
    /// certificate's PEM included when there is no --out), or on failure `{"ok": false,
    /// "exit": 1|2, "code": N, "error": "..."}` (codes: docs/error-codes.md).
    #[arg(long)]
    json: bool,
}

/// The .p12 formats we write.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum P12Format {
    /// AES-256-CBC, PBKDF2-SHA256, SHA-256 MAC: Windows 10 1709+, macOS 14+, Thunderbird, OpenSSL 3.
    Modern,
    /// 3DES, SHA-1 MAC: macOS before 14, older Windows, gpgsm 2.2.
    Compat,
}

impl P12Format {
    /// The writer's format.
    pub(crate) fn format(self) -> Format {
        match self {
            P12Format::Modern => Format::Modern,
            P12Format::Compat => Format::Compat,
        }
    }
}

#[derive(Args)]
struct RevokeArgs {
    #[command(flatten)]
    ca: CaOptions,
    /// Serial number in hex.
    serial: String,
    /// Why (our names or the RFC 5280 ones: keyCompromise, affiliationChanged,
    /// cessationOfOperation).
    #[arg(long, value_enum)]
    reason: values::ReasonArg,
    /// Print the outcome as one JSON object on stdout, or the failure with its error code.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CrlArgs {
    #[command(flatten)]
    ca: CaOptions,
    /// The root's CRL of CA certificates (DATA/ca/root.crl, published at /crl/root.crl;
    /// re-signed at least every twelve months) instead of the issuing CA's CRL.
    #[arg(long)]
    root: bool,
    /// Sign a new CRL (needs the CA passphrase) even if the current one is up to date;
    /// without it a new one is signed only when the current one is past its nextUpdate
    /// or a certificate was revoked since.
    #[arg(long)]
    new: bool,
    /// Write to this file instead of stdout (`-`: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// PEM instead of DER.
    #[arg(long)]
    pem: bool,
    /// Print what was done as one JSON object on stdout (number, thisUpdate, nextUpdate,
    /// whether it was newly signed), or the failure with its error code; needs --out.
    #[arg(long, requires = "out")]
    json: bool,
}

/// An error with its exit code.
struct Failure {
    /// The stable error code (`docs/error-codes.md`) when the failure came from the
    /// service; else it follows from the exit code ([`Failure::error_code`]).
    error: Option<ErrorCode>,
    /// The exit code: 1 a refusal or negative verdict, 2 bad usage or a failure.
    code: u8,
    message: String,
}

impl Failure {
    /// The stable error code: the service's, or 1002 (refused) for exit 1 and 1001 (bad
    /// input) for exit 2.
    fn error_code(&self) -> ErrorCode {
        self.error.unwrap_or(if self.code == 1 { ErrorCode::Refused } else { ErrorCode::BadInput })
    }

    /// The failure as `--json` prints it: `{"ok": false, "exit": 1|2, "code": N,
    /// "error": "..."}`.
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": false,
            "exit": self.code,
            "code": self.error_code().number(),
            "error": self.message,
        })
    }
}

impl From<DomainError> for Failure {
    fn from(e: DomainError) -> Self {
        Failure { error: Some(e.code()), code: if e.is_refusal() { 1 } else { 2 }, message: e.to_string() }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { error: None, code: 2, message: message.into() }
}

fn refused(message: impl Into<String>) -> Failure {
    Failure { error: None, code: 1, message: message.into() }
}

impl Command {
    /// The CA options given after the command, for the CA commands.
    fn ca_options(&self) -> Option<&CaOptions> {
        match self {
            Command::Init(args) => Some(&args.ca),
            Command::Ca(group) => Some(&group.ca),
            Command::Cert(group) => Some(&group.ca),
            Command::Directory(group) => Some(&group.ca),
            Command::Escrow(group) => Some(&group.ca),
            Command::Issue(args) => Some(&args.ca),
            Command::Revoke(args) => Some(&args.ca),
            Command::Crl(args) => Some(&args.ca),
            Command::Audit(group) => Some(&group.ca),
            Command::Serve(args) => Some(&args.ca),
            Command::User(group) => Some(&group.ca),
            Command::Config(group) => Some(&group.ca),
            Command::Backup(args) => Some(&args.ca),
            Command::Restore(args) => Some(&args.ca),
            Command::Ceremony(CeremonyCommand::CreateRoot { init, .. }) => Some(&init.ca),
            Command::Ceremony(CeremonyCommand::SignIssuing { ca, .. } | CeremonyCommand::SignRootCrl { ca, .. }) => {
                Some(ca)
            }
            Command::Smime(_) | Command::Enroll(_) | Command::Completion { .. } | Command::Man => None,
        }
    }

    /// Whether the outcome, failures included, is printed as JSON on stdout (`--json`).
    /// (`smime verify --json` writes its verdict itself, on stderr.)
    fn json(&self) -> bool {
        match self {
            Command::Issue(args) => args.json,
            Command::Revoke(args) => args.json,
            Command::Crl(args) => args.json,
            Command::Audit(group) => matches!(group.command, AuditCommand::Verify { json: true, .. }),
            Command::Config(group) => matches!(group.command, ConfigCommand::Check { json: true, .. }),
            Command::Cert(group) => match group.command {
                CertCommand::List { json, .. } | CertCommand::Show { json, .. } => json,
            },
            _ => false,
        }
    }
}

/// Prints one JSON value on stdout, a line.
fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").and_then(|()| out.flush()).map_err(|e| usage(format!("cannot write to stdout: {e}")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.command.json();
    // `smime` is synchronous: it runs without a runtime and its worker threads, which
    // keeps the process small for the streaming commands (issue 3).
    let result = match cli.command {
        Command::Smime(command) => smime_cmd::run_blocking(command),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "certdesk", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| usage(format!("cannot render the man page: {e}")))
                .and_then(|()| {
                    std::io::Write::write_all(&mut std::io::stdout(), &page)
                        .map_err(|e| usage(format!("cannot write the man page: {e}")))
                })
        }
        command => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("certdesk: cannot start: {e}");
                    return ExitCode::from(2);
                }
            };
            // After the command, or before it, or the environment, or the default.
            let after = command.ca_options().cloned().unwrap_or_default();
            let data = after.data.or(cli.data).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
            let passphrase_file = after.passphrase_file.or(cli.passphrase_file);
            runtime.block_on(run(&data, passphrase_file.as_deref(), command))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if json => {
            if print_json(&failure.json()).is_err() {
                eprintln!("certdesk: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
        Err(failure) => {
            // An empty message: the command has said it already (e.g. as JSON).
            if !failure.message.is_empty() {
                eprintln!("certdesk: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// Whether a file argument is `-`: stdin for an input, stdout for an output.
fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// An output argument with `-` read as "stdout", which is what `None` means.
fn stdio(path: Option<PathBuf>) -> Option<PathBuf> {
    path.filter(|p| !is_stdio(p))
}

/// Set once stdin has been read for a `-` argument: it cannot be read for a second.
static STDIN_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Claims stdin for `what`; refused if another argument had it.
fn take_stdin(what: &str) -> Result<(), Failure> {
    if STDIN_TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(usage(format!(
            "the {what} cannot be read from stdin: another argument given as - was read from it; give a file"
        )));
    }
    Ok(())
}

/// Reads all of stdin for the `-` argument `what`; refused if another `-` had it.
fn read_stdin(what: &str) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    take_stdin(what)?;
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).map_err(|e| usage(format!("cannot read the {what} from stdin: {e}")))?;
    Ok(bytes)
}

/// Reads a file argument, `-` being stdin (once per run).
fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    if is_stdio(path) {
        return read_stdin(what);
    }
    std::fs::read(path).map_err(|e| usage(format!("cannot read the {what} {}: {e}", path.display())))
}

/// Reads a secret from a file (`-`: stdin): the first line, without its line ending.
fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, Failure> {
    let bytes = Zeroizing::new(if is_stdio(path) {
        read_stdin(what)?
    } else {
        std::fs::read(path).map_err(|e| usage(format!("cannot read the {what} file {}: {e}", path.display())))?
    });
    let text = std::str::from_utf8(&bytes).map_err(|_| usage(format!("the {what} file is not UTF-8")))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(usage(format!("the {what} file {} is empty", path.display())));
    }
    Ok(Zeroizing::new(line.to_string()))
}

fn ca_passphrase(cli_file: Option<&Path>) -> Result<Zeroizing<String>, Failure> {
    if let Some(path) = cli_file {
        return read_secret_file(path, "passphrase");
    }
    match std::env::var("CERTDESK_CA_PASSPHRASE") {
        Ok(value) if !value.is_empty() => Ok(Zeroizing::new(value)),
        _ => Err(usage("the CA passphrase is needed: give --passphrase-file FILE or set CERTDESK_CA_PASSPHRASE")),
    }
}

/// A database URL as `config check` shows it: the scheme and host only, never the
/// user, password (which may hold `@`, `?` or `#`), path or query.
fn database_host(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split(['?', '#']).next().unwrap_or_default().to_string();
    };
    // The authority ends at the first '/' after the last '@' (a password may hold '/').
    let authority_end = rest.rfind('@').map_or(0, |at| at + 1);
    let host = rest.get(authority_end..).unwrap_or_default();
    let host = host.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}")
}

/// What a valid configuration sets, a line each (`config check`).
fn config_summary(config: &certdesk_core::config::ValidatedConfig) -> Vec<String> {
    let raw = &config.raw;
    let mut lines = vec![
        format!("organisation: {} ({})", raw.ca.organization, raw.ca.country),
        format!("publication: CRL {}, OCSP {}, CA {}", config.urls.crl, config.urls.ocsp, config.urls.ca_issuers),
        format!("portal: {}", certdesk_desk::portal::public_url(config)),
    ];
    let profiles: Vec<String> =
        config.profiles.iter().map(|(name, profile)| format!("{name} {} days", profile.validity_days())).collect();
    lines.push(format!("profiles: {}", profiles.join(", ")));
    let availability: Vec<(ProfileId, Option<String>)> =
        ProfileId::ALL.into_iter().map(|id| (id, config.profile_unavailable(id))).collect();
    lines.extend(profile_lines(&availability, config.default_profile()));
    lines.push(format!(
        "database: {}",
        raw.database.url.as_deref().map_or("SQLite in the data directory".to_string(), database_host)
    ));
    lines.push(format!(
        "mail: {}",
        match raw.mail.transport {
            certdesk_desk::mail::MailTransport::Outbox => "outbox folder".to_string(),
            certdesk_desk::mail::MailTransport::Smtp =>
                format!("SMTP {}:{}", raw.mail.smtp_host.as_deref().unwrap_or("?"), raw.mail.smtp_port),
        }
    ));
    lines.push(format!(
        "CAA: {}",
        match &config.caa {
            Some(caa) => format!("checked, for {}", caa.identities.join(", ")),
            None => "not checked".to_string(),
        }
    ));
    lines.push(format!(
        "audit checkpoints: {}",
        if config.checkpoints.to.is_empty() {
            "off".to_string()
        } else {
            format!("to {} every {} h", config.checkpoints.to.len(), config.checkpoints.period_seconds / 3600)
        }
    ));
    lines.push(format!("single sign-on: {}", if raw.portal.oidc.is_some() { "OpenID Connect" } else { "off" }));
    lines
}

/// Which profiles a CA can issue, and why not the others (`init`, `config check`).
fn profile_lines(profiles: &[(ProfileId, Option<String>)], default: ProfileId) -> Vec<String> {
    let can: Vec<&str> = profiles.iter().filter(|(_, why)| why.is_none()).map(|(id, _)| id.name()).collect();
    let mut lines = vec![format!("can issue: {} (issue's default: {default})", can.join(", "))];
    // One line per reason, naming the profiles it holds back.
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for (id, why) in profiles {
        let Some(why) = why else { continue };
        match reasons.iter_mut().find(|(r, _)| r == why) {
            Some((_, ids)) => ids.push(id.name()),
            None => reasons.push((why, vec![id.name()])),
        }
    }
    for (why, ids) in reasons {
        lines.push(format!("cannot issue {}: {why}", ids.join(", ")));
    }
    lines
}

/// Writes `bytes` to `path` via a temporary file and a rename, or to stdout.
fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match path.filter(|p| !is_stdio(p)) {
        None => std::io::stdout().write_all(bytes).map_err(|e| usage(format!("cannot write to stdout: {e}"))),
        Some(path) => {
            let temp = TempOutput::create(path)?;
            temp.commit(bytes)
        }
    }
}

/// As [`write_output`], for what is public anyway (certificates, CA chains, CRLs): the
/// file is readable by all (0644), so a web server running as another user can publish
/// it.
fn write_public_output(path: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match path.filter(|p| !is_stdio(p)) {
        None => write_output(None, bytes),
        Some(path) => TempOutput::create_public(path)?.commit(bytes),
    }
}

/// A temporary file next to the destination, removed unless committed.
struct TempOutput {
    temp: PathBuf,
    dest: PathBuf,
    file: Option<std::fs::File>,
}

impl TempOutput {
    /// A file only its owner reads (0600): decrypted mail, keys, .p12 files.
    fn create(dest: &Path) -> Result<Self, Failure> {
        Self::create_with_mode(dest, 0o600)
    }

    /// A file anyone may read (0644): certificates, CA chains, CRLs.
    fn create_public(dest: &Path) -> Result<Self, Failure> {
        Self::create_with_mode(dest, 0o644)
    }

    fn create_with_mode(
        dest: &Path,
        #[cfg_attr(not(unix), allow(unused_variables))] mode: u32,
    ) -> Result<Self, Failure> {
        let name = dest.file_name().ok_or_else(|| usage(format!("{} is not a file name", dest.display())))?;
        if dest.is_dir() {
            return Err(usage(format!("{} is a directory; give a file name", dest.display())));
        }
        // A device or pipe (/dev/null, a FIFO) would be replaced by the rename: refused.
        if let Ok(meta) = std::fs::metadata(dest) {
            if !meta.file_type().is_file() {
                return Err(usage(format!(
                    "{} is not a regular file (a device or a pipe): certdesk writes a file whole and renames it \
                     into place, which would replace it; write to stdout instead (leave out the option, or give -)",
                    dest.display()
                )));
            }
        }
        let prefix = format!(".{}.tmp-", name.to_string_lossy());
        remove_stale_temporaries(dest, &prefix);
        let temp = dest.with_file_name(format!("{prefix}{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let file = options.open(&temp).map_err(|e| usage(format!("cannot write {}: {e}", dest.display())))?;
        // The mode given at creation is narrowed by the umask; set it as meant.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| usage(format!("cannot write {}: {e}", dest.display())))?;
        }
        Ok(Self { temp, dest: dest.to_path_buf(), file: Some(file) })
    }

    /// Makes sure `bytes` fit where the file goes (writes and syncs that many zeros, then
    /// empties the file), so that a full filesystem is found before anything is signed.
    fn reserved(mut self, bytes: usize) -> Result<Self, Failure> {
        use std::io::{Seek, SeekFrom};
        let dest = self.dest.clone();
        let fail = |e: std::io::Error| usage(format!("cannot write {}: {e}", dest.display()));
        let file = self.file.as_mut().ok_or_else(|| usage("output already written"))?;
        file.write_all(&vec![0u8; bytes]).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        file.set_len(0).map_err(fail)?;
        file.seek(SeekFrom::Start(0)).map_err(fail)?;
        Ok(self)
    }

    /// Appends to the temporary file; nothing shows under the destination name until
    /// [`TempOutput::commit`].
    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let dest = &self.dest;
        let file = self.file.as_mut().ok_or_else(|| usage("output already written"))?;
        file.write_all(bytes).map_err(|e| usage(format!("cannot write {}: {e}", dest.display())))
    }

    /// What was written so far, read back from the temporary file.
    fn read_back(&mut self) -> Result<Vec<u8>, Failure> {
        let file = self.file.as_mut().ok_or_else(|| usage("output already written"))?;
        file.flush().map_err(|e| usage(format!("cannot write {}: {e}", self.dest.display())))?;
        std::fs::read(&self.temp).map_err(|e| usage(format!("cannot read back {}: {e}", self.temp.display())))
    }

    /// Writes and renames into place: readers see all of it or nothing.
    fn commit(self, bytes: &[u8]) -> Result<(), Failure> {
        self.finish(bytes, false, true)
    }

    /// As [`TempOutput::commit`], and on disk, name included, before returning (for a
    /// .p12 whose key exists nowhere else). Unless `replace`, a file that appeared under
    /// the name meanwhile is never replaced (linked, not renamed, into place).
    fn commit_durable(self, bytes: &[u8], replace: bool) -> Result<(), Failure> {
        self.finish(bytes, true, replace)
    }

    fn finish(mut self, bytes: &[u8], durable: bool, replace: bool) -> Result<(), Failure> {
        let fail = |e: std::io::Error| usage(format!("cannot write {}: {e}", self.dest.display()));
        let mut file = self.file.take().ok_or_else(|| usage("output already written"))?;
        file.write_all(bytes).map_err(fail)?;
        if durable {
            file.sync_all().map_err(fail)?;
        }
        let taken = || {
            usage(format!(
                "{} appeared meanwhile and may hold an earlier key; it was left as it is",
                self.dest.display()
            ))
        };
        if replace {
            std::fs::rename(&self.temp, &self.dest).map_err(fail)?;
        } else {
            match std::fs::hard_link(&self.temp, &self.dest) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.temp);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(taken()),
                // A filesystem without hard links (SMB, some FUSE mounts): check, then
                // rename; only a file made in between could still be replaced.
                Err(_) => {
                    if self.dest.exists() {
                        return Err(taken());
                    }
                    std::fs::rename(&self.temp, &self.dest).map_err(fail)?;
                }
            }
        }
        if durable {
            // The new name itself survives a power cut only once its directory is synced.
            // The file is in place either way: a failure here is a warning, not a loss.
            let dir = match self.dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
                eprintln!(
                    "certdesk: warning: {} is written, but its folder could not be synced: {e}",
                    self.dest.display()
                );
            }
        }
        Ok(())
    }
}

/// Room checked for before anything is signed: a .p12 with an RSA-4096 key and the
/// chain, or a certificate PEM, is far smaller.
const RESERVE_BYTES: usize = 64 * 1024;

/// Removes temporary files `PREFIX<pid>` next to `dest` left by a process of ours that
/// no longer runs (killed before it could clean up). Files of running processes, and
/// anything not named so, stay.
fn remove_stale_temporaries(dest: &Path, prefix: &str) {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        // Not committed (or rename failed): leave nothing half-written.
        if self.temp.exists() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn pem(label: &'static str, der: &[u8]) -> Result<String, Failure> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).map_err(|e| usage(e.to_string()))
}

async fn open(data: &Path) -> Result<Authority, Failure> {
    Ok(Authority::open(DataDir::new(data), Arc::new(SystemClock)).await?)
}

/// What `init` (and `ceremony create-root`) are asked for.
fn init_options(args: InitArgs) -> InitOptions {
    InitOptions {
        organization: args.org,
        country: args.country,
        organization_identifier: args.org_id,
        base_url: args.base_url,
        key: match args.key {
            CaKey::P384 => KeyAlgorithm::P384,
            CaKey::Rsa4096 => KeyAlgorithm::Rsa4096,
        },
        database_url: args.database_url,
        pkcs11: match (args.pkcs11_module, args.token_label) {
            (Some(module), Some(token)) => Some(certdesk_ca::authority::TokenInit {
                module,
                token,
                key_label: args.key_label,
                existing: args.existing_keys,
            }),
            _ => None,
        },
        offline_root: args.offline_root,
        rsa_pss: args.rsa_pss,
    }
}

/// Binds a further listener of `serve` (`what`: its name in messages).
async fn bind_listener(text: &str, what: &str, example: &str) -> Result<tokio::net::TcpListener, Failure> {
    let addr: std::net::SocketAddr =
        text.parse().map_err(|_| usage(format!("{what} address {text:?} is not an address like {example}")))?;
    tokio::net::TcpListener::bind(addr).await.map_err(|e| usage(format!("cannot listen on {addr}: {e}")))
}

async fn run(data: &Path, passphrase_file: Option<&Path>, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init(args) => {
            let passphrase = ca_passphrase(passphrase_file)?;
            let options = init_options(args);
            let report = init(&DataDir::new(data), options, passphrase, &SystemClock, &actor()).await?;
            if report.awaiting_issuing {
                eprintln!(
                    "certdesk: initialised {} with an offline root: take {} to the key ceremony (`certdesk ceremony \
                     sign-issuing`), then install the certificate with `certdesk ca install-issuing`",
                    data.display(),
                    DataDir::new(data).issuing_csr().display()
                );
                return Ok(());
            }
            eprintln!("certdesk: initialised {} (root CA and issuing CA created)", data.display());
            for line in profile_lines(&report.profiles, report.default_profile) {
                eprintln!("certdesk: {line}");
            }
            Ok(())
        }
        Command::Ca(WithCa { command: CaCommand::InstallIssuing { cert, root_crl, transcript }, .. }) => {
            let secret = ca_passphrase(passphrase_file)?;
            let transcript = transcript.map(|t| read_text(&t, "transcript")).transpose()?;
            let issuing = certdesk_ca::ceremony::install_issuing(
                &DataDir::new(data),
                &read_file(&cert, "issuing CA certificate")?,
                &read_file(&root_crl, "root CRL")?,
                transcript.as_deref(),
                &secret,
                &SystemClock,
                &actor(),
            )
            .await?;
            eprintln!(
                "certdesk: issuing CA certificate installed (SHA-256 {}); {} is ready",
                hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &issuing)),
                data.display()
            );
            Ok(())
        }
        Command::Ca(WithCa { command: CaCommand::InstallRootCrl { file, transcript }, .. }) => {
            let authority = open(data).await?;
            refuse_read_only(&authority)?;
            let transcript = transcript.map(|t| read_text(&t, "transcript")).transpose()?;
            let number = certdesk_ca::ceremony::install_root_crl(
                &authority,
                &read_file(&file, "root CRL")?,
                transcript.as_deref(),
                &actor(),
            )
            .await?;
            eprintln!("certdesk: root CRL number {number} installed");
            Ok(())
        }
        Command::Ceremony(command) => ceremony(command, passphrase_file),
        Command::Ca(WithCa { command: CaCommand::Chain { out }, .. }) => {
            let authority = open(data).await?;
            let mut text = String::new();
            for der in authority.chain()? {
                text.push_str(&pem("CERTIFICATE", &der)?);
            }
            write_public_output(stdio(out).as_deref(), text.as_bytes())
        }
        Command::Cert(WithCa { command, .. }) => cert(data, command).await,
        Command::Directory(WithCa { command: DirectoryCommand::Smimea { zone, ttl, out }, .. }) => {
            let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
            let domain_like = !zone.is_empty()
                && zone.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !domain_like {
                return Err(usage(format!("--zone {zone:?} is not a DNS zone name like example.org")));
            }
            let authority = open(data).await?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let certs = authority.store().directory_certificates(now, None).await?;
            let records = certdesk_desk::directory::smimea_records(&certs, now, &zone, ttl);
            let mut text = format!(
                "; SMIMEA records (RFC 8162) of the certificates certdesk lists for {zone} at {}\n",
                certdesk_core::clock::unix_text(now)
            );
            for line in &records {
                text.push_str(line);
                text.push('\n');
            }
            write_public_output(out.as_deref(), text.as_bytes())?;
            eprintln!("certdesk: {} SMIMEA record(s) for {zone}", records.len());
            Ok(())
        }
        Command::Escrow(WithCa { command, .. }) => escrow_cmd::run(data, command).await,
        Command::Directory(WithCa { command: DirectoryCommand::Publish, .. }) => {
            let authority = open(data).await?;
            refuse_read_only(&authority)?;
            let Some(publisher) = directory_publisher(authority.config())? else {
                return Err(usage("[directory.publish] is not in certdesk.toml: nothing to publish to"));
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let publisher = Arc::new(publisher);
            let report = jobs::publish_pass(publisher.clone(), authority.store().clone(), now, actor()).await?;
            report_publication(publisher.url(), &report);
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(refused(format!("{} certificate(s) not published; tried again next time", report.failed.len())))
            }
        }
        Command::Backup(BackupArgs { verify: Some(BackupCommand::Verify { file }), .. }) => {
            let manifest = certdesk_ca::backup::verify_archive(&file).await?;
            println!("{}", backup_summary(&manifest));
            eprintln!("certdesk: {} is intact", file.display());
            Ok(())
        }
        Command::Backup(BackupArgs { out, .. }) => {
            let out = out.ok_or_else(|| usage("give --out FILE (or `backup verify FILE`)"))?;
            if is_stdio(&out) {
                return Err(usage(
                    "a backup goes to a file (checked and linked into place), not to stdout: give --out FILE",
                ));
            }
            let authority = open(data).await?;
            refuse_read_only(&authority)?;
            let manifest = certdesk_ca::backup::backup(&authority, &out, &actor()).await?;
            println!("{}", backup_summary(&manifest));
            eprintln!("certdesk: backup written to {}", out.display());
            if manifest.backend == certdesk_store::Backend::Postgres {
                eprintln!(
                    "certdesk: the database is PostgreSQL and not in the archive: run `pg_dump --format=custom` now \
                     and keep the dump with the archive (docs/operations/backup.md)"
                );
            }
            Ok(())
        }
        Command::Restore(args) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let restored =
                certdesk_ca::backup::restore(&args.file, &DataDir::new(data), args.force, &actor(), now).await?;
            println!("{}", backup_summary(&restored.manifest));
            if let Some(aside) = &restored.kept_aside {
                eprintln!("certdesk: the data directory that was there is kept as {}", aside.display());
            }
            eprintln!(
                "certdesk: restored into {}; next crlNumber {} (root {}), past any the CA may have used since the \
                 backup of {}. Certificates issued after it are not in the database (OCSP answers unknown for \
                 them): re-issue them. Run `certdesk crl --new` now, and `certdesk crl --root --new` (with an \
                 offline root: at the key ceremony)",
                data.display(),
                restored.crl_floors.0,
                restored.crl_floors.1,
                certdesk_core::clock::unix_text(restored.manifest.created_at)
            );
            Ok(())
        }
        Command::Issue(args) => issue(data, passphrase_file, args).await,
        Command::Revoke(args) => {
            let reason = args.reason.reason;
            let authority = open_for_change(data).await?;
            let record = authority.revoke(&args.serial, reason, &actor()).await?;
            if args.json {
                return print_json(&serde_json::json!({
                    "ok": true,
                    "serial": record.serial.to_string(),
                    "email": record.email,
                    "reason": reason.name(),
                    "revoked_at": record.revoked_at.map(certdesk_core::clock::unix_text),
                }));
            }
            eprintln!(
                "certdesk: revoked {} ({}), reason {}; run `certdesk crl` to publish a new CRL",
                record.serial,
                record.email,
                reason.name()
            );
            Ok(())
        }
        Command::Crl(args) => {
            let authority = open(data).await?;
            // The current CRL as it is, unless --new or it is out of date (past its
            // nextUpdate, or a certificate was revoked since): then a new one, which
            // needs the CA passphrase.
            let current = match (args.new, args.root) {
                (true, _) => None,
                (false, true) => authority.current_root_crl().await?,
                (false, false) => authority.current_crl().await?,
            };
            let (crl, fresh) = match current {
                Some(crl) => (crl, false),
                None => {
                    refuse_read_only(&authority)?;
                    let passphrase = ca_passphrase(passphrase_file)?;
                    report_recovery(&authority.recover("system:recovery").await?);
                    let crl = if args.root {
                        authority.issue_root_crl(passphrase, &actor()).await?
                    } else {
                        let issuer = authority.unlock(passphrase).await?;
                        authority.issue_crl(&issuer, &actor()).await?
                    };
                    (crl, true)
                }
            };
            let next_update = certdesk_core::clock::unix_text(crl.next_update);
            let bytes = if args.pem { pem("X509 CRL", &crl.der)?.into_bytes() } else { crl.der };
            let out = stdio(args.out);
            if args.json && out.is_none() {
                return Err(usage("--json prints on stdout: give the CRL a file with --out FILE"));
            }
            write_public_output(out.as_deref(), &bytes)?;
            if args.json {
                return print_json(&serde_json::json!({
                    "ok": true,
                    "crl": if args.root { "root" } else { "issuing" },
                    "number": crl.number,
                    "this_update": certdesk_core::clock::unix_text(crl.this_update),
                    "next_update": next_update,
                    "new": fresh,
                }));
            }
            let what = if fresh { "issued" } else { "is current" };
            eprintln!("certdesk: CRL number {} {what} (next update {next_update})", crl.number);
            Ok(())
        }
        Command::Smime(command) => smime_cmd::run(command).await,
        // Handled in `main` without a runtime.
        Command::Completion { .. } | Command::Man => Ok(()),
        Command::Serve(args) => serve(data, passphrase_file, args).await,
        Command::Enroll(args) => tokio::task::spawn_blocking(move || enroll_cmd::run(args))
            .await
            .map_err(|e| usage(format!("enroll failed: {e}")))?,
        Command::User(WithCa { command: UserCommand::List { json }, .. }) => {
            let authority = open(data).await?;
            let staff = authority.store().staff().await?;
            let entries: Vec<serde_json::Value> = staff
                .iter()
                .map(|u| {
                    serde_json::json!({
                        "email": u.email,
                        "role": u.role,
                        "second_factor": u.totp_secret.is_some(),
                        "disabled_at": u.disabled_at.map(certdesk_core::clock::unix_text),
                    })
                })
                .collect();
            if json {
                return print_json(&serde_json::Value::Array(entries));
            }
            let mut out = std::io::stdout().lock();
            for u in &staff {
                let factor = if u.totp_secret.is_some() { "authenticator" } else { "no authenticator yet" };
                let state = u.disabled_at.map_or("active".to_string(), |at| {
                    format!("disabled since {}", certdesk_core::clock::unix_text(at))
                });
                writeln!(out, "{}  {:<7}  {factor:<20}  {state}", u.email, u.role)
                    .map_err(|e| usage(format!("cannot write to stdout: {e}")))?;
            }
            Ok(())
        }
        Command::User(WithCa { command: UserCommand::Disable { email }, .. }) => {
            staff_change(data, &email, certdesk_desk::portal::StaffChange::Disable).await?;
            eprintln!("certdesk: {email} is disabled; their sessions ended");
            Ok(())
        }
        Command::User(WithCa { command: UserCommand::Enable { email }, .. }) => {
            staff_change(data, &email, certdesk_desk::portal::StaffChange::Enable).await?;
            eprintln!("certdesk: {email} can sign in again");
            Ok(())
        }
        Command::User(WithCa { command: UserCommand::ResetTotp { email }, .. }) => {
            let authority = staff_change(data, &email, certdesk_desk::portal::StaffChange::ResetSecondFactor).await?;
            let url = certdesk_desk::portal::public_url(authority.config());
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let link = certdesk_desk::portal::sign_in_link(authority.store(), now, &url, &email).await?;
            println!("{link}");
            eprintln!(
                "certdesk: {email}'s authenticator is forgotten and their sessions ended; the link above signs \
                 them in once within {} minutes to enrol a new one",
                certdesk_desk::portal::SIGN_IN_MINUTES
            );
            Ok(())
        }
        Command::User(WithCa { command: UserCommand::Add { email, role }, .. }) => {
            let role = match role {
                values::StaffRole::Officer => certdesk_desk::portal::Role::Officer,
                values::StaffRole::Admin => certdesk_desk::portal::Role::Admin,
            };
            let authority = open(data).await?;
            refuse_read_only(&authority)?;
            let url = certdesk_desk::portal::public_url(authority.config());
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let link = certdesk_desk::portal::add_staff(authority.store(), now, &url, &email, role, &actor()).await?;
            println!("{link}");
            eprintln!(
                "certdesk: {email} is now {}; the link above signs them in once within {} minutes",
                role.name(),
                certdesk_desk::portal::SIGN_IN_MINUTES
            );
            Ok(())
        }
        Command::Config(WithCa { command: ConfigCommand::Check { file, json }, .. }) => {
            let path = file.unwrap_or_else(|| DataDir::new(data).config());
            let bytes = read_file(&path, "configuration")?;
            let text = String::from_utf8(bytes).map_err(|_| usage(format!("{} is not UTF-8", path.display())))?;
            let config_error = |message: String| Failure { error: Some(ErrorCode::Config), code: 2, message };
            let config = certdesk_core::config::Config::from_toml(&text)
                .and_then(certdesk_core::config::Config::validate)
                .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
            certdesk_desk::mail::check_section(&config.raw.mail)
                .map_err(|e| config_error(format!("{}: [mail] {e}", path.display())))?;
            if json {
                return print_json(&serde_json::json!({
                    "ok": true,
                    "file": path.display().to_string(),
                    "settings": config_summary(&config),
                }));
            }
            for line in config_summary(&config) {
                println!("{line}");
            }
            eprintln!("certdesk: {} is valid", path.display());
            Ok(())
        }
        Command::Audit(WithCa { command: AuditCommand::Verify { checkpoint, json }, .. }) => {
            let authority = open(data).await?;
            let chain = match &checkpoint {
                Some(checkpoint) => authority.verify_audit_since(checkpoint).await?,
                None => authority.verify_audit().await?,
            };
            if json {
                return print_json(&serde_json::json!({
                    "ok": true,
                    "records": chain.records,
                    "head": format!("{}:{}", chain.records, chain.head),
                    "checkpoint_held": checkpoint.map(|c| format!("{}:{}", c.seq, c.hash)),
                }));
            }
            let held = checkpoint.map(|c| format!(", checkpoint {}:{} held", c.seq, c.hash)).unwrap_or_default();
            println!("audit log intact: {} records, head {}:{}{held}", chain.records, chain.records, chain.head);
            Ok(())
        }
        Command::Audit(WithCa { command: AuditCommand::Checkpoint, .. }) => {
            let dir = DataDir::new(data);
            let clock: Arc<dyn certdesk_core::clock::Clock> = Arc::new(SystemClock);
            let authority = Authority::open(dir.clone(), clock.clone()).await?;
            refuse_read_only(&authority)?;
            let config = authority.config();
            if config.checkpoints.to.is_empty() {
                return Err(usage("no auditors to mail: set [audit] checkpoint_to in certdesk.toml"));
            }
            let mailer = certdesk_desk::mail::build_mailer(&config.raw.mail, &dir.outbox(), clock.clone())
                .map_err(certdesk_core::error::DomainError::from)?;
            let to: Vec<&str> = config.checkpoints.to.iter().map(|a| a.as_str()).collect();
            let outcome = certdesk_desk::checkpoint::send_due(
                authority.store(),
                mailer.as_ref(),
                &config.checkpoints,
                &config.raw.ca.organization,
                &config.zone.at(clock.now()),
                true,
            )
            .await?;
            match outcome {
                certdesk_desk::checkpoint::CheckpointOutcome::Sent(checkpoint) => {
                    println!("{checkpoint}");
                    eprintln!("certdesk: audit log intact; checkpoint {checkpoint} mailed to {}", to.join(", "));
                    Ok(())
                }
                certdesk_desk::checkpoint::CheckpointOutcome::Alert(reason) => {
                    Err(Failure::from(certdesk_core::error::DomainError::new(
                        certdesk_core::error::ErrorCode::AuditBroken,
                        format!("{reason}; the auditors ({}) were alerted", to.join(", ")),
                    )))
                }
                certdesk_desk::checkpoint::CheckpointOutcome::Off
                | certdesk_desk::checkpoint::CheckpointOutcome::NotDue => {
                    Err(usage("the audit log is empty: nothing to mail"))
                }
            }
        }
    }
}

async fn issue(data: &Path, passphrase_file: Option<&Path>, args: IssueArgs) -> Result<(), Failure> {
    // Validate every input, and open every destination, before touching the CA: nothing
    // is signed that cannot be handed over.
    let email = EmailAddress::parse(&args.email).map_err(|e| usage(e.to_string()))?;
    let given_name = NameField::parse("given name", &args.given_name).map_err(|e| usage(e.to_string()))?;
    let surname = NameField::parse("surname", &args.surname).map_err(|e| usage(e.to_string()))?;
    let profile = args.profile.map(|p| p.0);
    let person = Person { email, given_name, surname };

    if let Some(csr_path) = &args.csr {
        let bytes = read_file(csr_path, "CSR")?;
        let csr = ValidatedCsr::parse(&bytes).map_err(|e| match e {
            certdesk_pki::csr::CsrError::Malformed { .. } => usage(e.to_string()),
            other => refused(other.to_string()),
        })?;
        let out = stdio(args.out.clone());
        let output = out.as_deref().map(|out| TempOutput::create_public(out)?.reserved(RESERVE_BYTES)).transpose()?;
        let passphrase = ca_passphrase(passphrase_file)?;
        let authority = open_for_change(data).await?;
        let input = issue_input(&authority, person, profile);
        let request = issue_request(&authority, input).await?;
        let issuer = authority.unlock(passphrase).await?;
        let issued = authority.issue(&issuer, request, csr.into_public_key(), &actor()).await?;
        let record = &issued.record;
        let serial = record.serial.clone();
        let text = pem("CERTIFICATE", &record.der)?;
        let written = match (output, args.json) {
            (Some(out), _) => out.commit(text.as_bytes()),
            (None, false) => write_output(None, text.as_bytes()),
            // The certificate goes into the JSON object.
            (None, true) => Ok(()),
        };
        written.map_err(|f| Failure {
            error: f.error,
            code: f.code,
            message: format!(
                "{}; certificate {serial} was issued and recorded (its key is yours, nothing is lost): \
                 `serve` publishes it at /directory/{serial}.pem",
                f.message
            ),
        })?;
        if args.json {
            let extra = out.is_none().then_some(("certificate", text));
            return print_json(&issued_json(record, extra));
        }
        eprintln!("certdesk: issued serial {} to {} ({})", record.serial, record.email, record.profile);
        return Ok(());
    }

    let (Some(p12_path), Some(password_file)) = (&args.p12, &args.password_file) else {
        return Err(usage("give --csr FILE, or --p12 OUT with --password-file FILE"));
    };
    let to_stdout = is_stdio(p12_path);
    if to_stdout && args.json {
        return Err(usage("--json prints on stdout: give the .p12 a file (--p12 FILE), not -"));
    }
    let key = args.key.0;
    let password = read_secret_file(password_file, "password")?;
    let clients: Vec<certdesk_desk::advisor::MailClient> = args.clients.iter().map(|c| c.0).collect();
    let format = match args.p12_format {
        Some(chosen) => chosen.format(),
        None => certdesk_desk::advisor::advise(&clients).format,
    };
    if p12_path.is_dir() {
        return Err(usage(format!("{} is a directory; give a file name", p12_path.display())));
    }
    if !to_stdout && !args.force && p12_path.exists() {
        return Err(usage(format!(
            "{} exists and may hold the only copy of an earlier key; choose another file or give --force",
            p12_path.display()
        )));
    }
    let output = if to_stdout { None } else { Some(TempOutput::create(p12_path)?.reserved(RESERVE_BYTES)?) };
    let passphrase = ca_passphrase(passphrase_file)?;
    let authority = open_for_change(data).await?;
    let input = issue_input(&authority, person, profile);
    let request = issue_request(&authority, input).await?;
    let issuer = authority.unlock(passphrase).await?;
    let destination =
        if to_stdout { None } else { Some(std::path::absolute(p12_path).unwrap_or_else(|_| p12_path.clone())) };
    let (issued, p12) = authority
        .issue_with_generated_key(
            &issuer,
            request,
            key,
            Pkcs12Delivery { password, format },
            destination.as_deref(),
            &actor(),
        )
        .await?;
    // The first certificate is the application's (the encryption one of a profile that
    // escrows separately; the signing one follows).
    let Some(main) = issued.first() else { return Err(refused("the issuance returned no certificate")) };
    let serial = main.record.serial.clone();
    let companions: Vec<String> = issued.iter().skip(1).map(|i| i.record.serial.to_string()).collect();
    let written = match output {
        Some(output) => output.commit_durable(&p12, args.force),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&p12).and_then(|()| out.flush()).map_err(|e| usage(format!("cannot write to stdout: {e}")))
        }
    };
    if let Err(f) = written {
        // The key exists only in the stored .p12: revoke rather than leave a certificate
        // that colleagues would encrypt to and nobody can read.
        let note = format!("its .p12 could not be written to {}: {}", p12_path.display(), f.message);
        let mut revoked = Ok(());
        for each in companions.iter().chain(std::iter::once(&serial.to_string())) {
            if let Err(e) =
                authority.revoke_noted(each, RevocationReason::CessationOfOperation, &actor(), Some(&note)).await
            {
                revoked = Err((each.clone(), e));
            }
        }
        let outcome = match revoked {
            Ok(()) => "it was revoked (its key was never delivered)".to_string(),
            Err((each, e)) => {
                format!("revoking it failed too ({e}): run `certdesk revoke {each} --reason cessation-of-operation`")
            }
        };
        return Err(Failure {
            error: f.error,
            code: f.code,
            message: format!("{}; certificate {serial} was issued and {outcome}", f.message),
        });
    }
    certdesk_ca::recovery::fault_point("written");
    if !authority.delivered(&serial).await? {
        return Err(refused(format!(
            "{} was written, but certificate {serial} had been revoked meanwhile by a recovery that took this \
             process for dead (see `certdesk audit verify` and the audit log); issue a new one",
            p12_path.display()
        )));
    }
    if args.json {
        let mut value = issued_json(&main.record, Some(("p12", p12_path.display().to_string())));
        if let (false, Some(map)) = (companions.is_empty(), value.as_object_mut()) {
            map.insert("signing_serials".into(), serde_json::json!(companions));
        }
        return print_json(&value);
    }
    eprintln!(
        "certdesk: issued serial {} to {} ({}), key and certificate in {}",
        main.record.serial,
        main.record.email,
        main.record.profile,
        if to_stdout { "the .p12 on stdout".to_string() } else { p12_path.display().to_string() }
    );
    if let Some(escrowed) = authority.store().escrowed_key(main.record.serial.as_str()).await? {
        let which = if companions.is_empty() { "this key" } else { "the encryption key" };
        eprintln!(
            "certdesk: the {} profile escrows the keys certdesk makes: a copy of {which} is kept encrypted to \
             escrow key {}, and key recovery agents together can recover it (tell the holder)",
            main.record.profile,
            escrowed.key_id.get(..16).unwrap_or(&escrowed.key_id)
        );
    }
    for signing in &companions {
        eprintln!(
            "certdesk: and serial {signing}, a certificate for signing only, its key in the same file and never \
             escrowed (serial {} is for encryption only)",
            main.record.serial
        );
    }
    print_install_steps(&clients, format);
    Ok(())
}

/// After a .p12 for named mail clients: which format was made and why, and each
/// client's install steps (stderr; stdout may carry the .p12).
pub(crate) fn print_install_steps(clients: &[certdesk_desk::advisor::MailClient], format: Format) {
    if clients.is_empty() {
        return;
    }
    let lang = certdesk_core::mail_settings::Lang::En;
    let advice = certdesk_desk::advisor::advise(clients);
    let why = if format != advice.format {
        "as --p12-format asked; the advisor would have chosen the other one".to_string()
    } else if advice.compat_for.is_empty() {
        "every client named reads it".to_string()
    } else {
        let names: Vec<&str> = advice.compat_for.iter().map(|c| c.label(lang)).collect();
        format!("for {}", names.join(", "))
    };
    let name = if format == Format::Compat { "compat" } else { "modern" };
    eprintln!("certdesk: .p12 format {name} ({why}); install it in each client:\n");
    eprintln!("{}", certdesk_desk::advisor::install_text(clients, lang));
}

/// `user disable / enable / reset-totp`: the change, audited as this user.
async fn staff_change(
    data: &Path,
    email: &str,
    change: certdesk_desk::portal::StaffChange,
) -> Result<Authority, Failure> {
    let authority = open(data).await?;
    refuse_read_only(&authority)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    certdesk_desk::portal::change_staff(authority.store(), now, email, change, &actor()).await?;
    Ok(authority)
}

/// Reads a text file argument (`-`: stdin).
fn read_text(path: &Path, what: &str) -> Result<String, Failure> {
    String::from_utf8(read_file(path, what)?).map_err(|_| usage(format!("the {what} {} is not UTF-8", path.display())))
}

/// `certdesk ceremony ...` (on the root machine; synchronous).
fn ceremony(command: CeremonyCommand, passphrase_file: Option<&Path>) -> Result<(), Failure> {
    use certdesk_ca::ceremony::{create_root, describe, sign_issuing, sign_root_crl_at_ceremony, CeremonyDir};
    let print = |record: &serde_json::Value| println!("{}", describe(record));
    match command {
        CeremonyCommand::CreateRoot { dir, init } => {
            if init.database_url.is_some() || init.offline_root.is_some() {
                return Err(usage("create-root makes a root only: --database-url and --offline-root belong to init"));
            }
            let secret = ca_passphrase(passphrase_file)?;
            let options = init_options(init);
            let dir = CeremonyDir::new(dir);
            let record = create_root(&dir, options, &secret, &SystemClock, &actor())?;
            print(&record);
            eprintln!(
                "certdesk: root made in {}: give root.pem to `certdesk init --offline-root` on the online machine",
                dir.root_cert().display()
            );
            Ok(())
        }
        CeremonyCommand::SignIssuing { dir, csr, out, .. } => {
            if is_stdio(&out) {
                return Err(usage("--out - : give the issuing CA certificate a file name"));
            }
            let secret = ca_passphrase(passphrase_file)?;
            let output = TempOutput::create_public(&out)?;
            let (issuing, record) =
                sign_issuing(&CeremonyDir::new(dir), &read_file(&csr, "CSR")?, &secret, &SystemClock, &actor())?;
            output.commit(pem("CERTIFICATE", &issuing)?.as_bytes())?;
            print(&record);
            eprintln!(
                "certdesk: issuing CA certificate written to {}: install it online with `certdesk ca install-issuing`",
                out.display()
            );
            Ok(())
        }
        CeremonyCommand::SignRootCrl { dir, out, .. } => {
            if is_stdio(&out) {
                return Err(usage("--out - : give the root CRL a file name"));
            }
            let secret = ca_passphrase(passphrase_file)?;
            let output = TempOutput::create_public(&out)?;
            let (crl, record) = sign_root_crl_at_ceremony(&CeremonyDir::new(dir), &secret, &SystemClock, &actor())?;
            output.commit(&crl)?;
            print(&record);
            eprintln!(
                "certdesk: root CRL written to {}: install it online with `certdesk ca install-root-crl`",
                out.display()
            );
            Ok(())
        }
    }
}

/// A backup archive's manifest, a line each.
fn backup_summary(manifest: &certdesk_ca::backup::Manifest) -> String {
    [
        format!("created: {}", certdesk_core::clock::unix_text(manifest.created_at)),
        format!("certdesk: {}", manifest.version),
        format!(
            "database: {}",
            match manifest.backend {
                certdesk_store::Backend::Sqlite => "SQLite, in the archive",
                certdesk_store::Backend::Postgres => "PostgreSQL, in its pg_dump",
            }
        ),
        format!("root CA SHA-256: {}", manifest.root_sha256),
        format!("issuing CA SHA-256: {}", manifest.issuing_sha256),
        format!("audit head: {}", manifest.audit_head),
        format!("files: {}", manifest.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")),
    ]
    .join("\n")
}

/// What `issue --json` says about a certificate issued, with one more field if given.
fn issued_json(record: &certdesk_core::records::CertificateRecord, extra: Option<(&str, String)>) -> serde_json::Value {
    let mut value = serde_json::json!({
        "ok": true,
        "serial": record.serial.to_string(),
        "email": record.email,
        "subject": record.subject,
        "profile": record.profile.name(),
        "key": record.key_kind,
        "not_before": certdesk_core::clock::unix_text(record.not_before),
        "not_after": certdesk_core::clock::unix_text(record.not_after),
    });
    if let (Some((name, field)), Some(object)) = (extra, value.as_object_mut()) {
        object.insert(name.to_string(), serde_json::Value::String(field));
    }
    value
}

/// `certdesk cert list` and `cert show`.
async fn cert(data: &Path, command: CertCommand) -> Result<(), Failure> {
    let authority = open(data).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let state = |record: &certdesk_core::records::CertificateRecord| match record.revoked_at {
        Some(_) => CertState::Revoked,
        None if record.not_after < now => CertState::Expired,
        None => CertState::Valid,
    };
    let describe = |record: &certdesk_core::records::CertificateRecord| {
        serde_json::json!({
            "serial": record.serial.to_string(),
            "status": state(record).name(),
            "email": record.email,
            "subject": record.subject,
            "profile": record.profile.name(),
            "key": record.key_kind,
            "not_before": certdesk_core::clock::unix_text(record.not_before),
            "not_after": certdesk_core::clock::unix_text(record.not_after),
            "issued_at": certdesk_core::clock::unix_text(record.issued_at),
            "revoked_at": record.revoked_at.map(certdesk_core::clock::unix_text),
            "revocation_reason": record.revocation_reason.map(|r| r.name()),
        })
    };
    match command {
        CertCommand::List { email, status, json } => {
            let mut records = authority.store().certificates().await?;
            records.retain(|r| {
                email.as_ref().is_none_or(|e| r.email.eq_ignore_ascii_case(e.trim()))
                    && status.is_none_or(|s| state(r) == s)
            });
            records.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then_with(|| a.serial.cmp(&b.serial)));
            if json {
                return print_json(&serde_json::Value::Array(records.iter().map(describe).collect()));
            }
            let mut out = std::io::stdout().lock();
            let date = |at: i64| certdesk_core::clock::unix_text(at).get(..10).unwrap_or_default().to_string();
            for r in &records {
                writeln!(
                    out,
                    "{}  {:<7}  {}  {:<20}  {}",
                    r.serial,
                    state(r).name(),
                    date(r.not_after),
                    r.profile.name(),
                    r.email
                )
                .map_err(|e| usage(format!("cannot write to stdout: {e}")))?;
            }
            if records.is_empty() {
                eprintln!("certdesk: no certificate matches");
            }
            Ok(())
        }
        CertCommand::Show { serial, pem: as_pem, json } => {
            let parsed = certdesk_core::records::Serial::parse(&serial)?;
            let record = authority.store().certificate(&parsed.to_string()).await?.ok_or_else(|| {
                Failure::from(DomainError::new(ErrorCode::NotFound, format!("no certificate with serial {parsed}")))
            })?;
            if as_pem {
                return write_output(None, pem("CERTIFICATE", &record.der)?.as_bytes());
            }
            let value = describe(&record);
            if json {
                return print_json(&value);
            }
            let mut text = String::new();
            if let serde_json::Value::Object(fields) = &value {
                for (name, field) in fields {
                    match field {
                        serde_json::Value::Null => {}
                        serde_json::Value::String(v) => text.push_str(&format!("{name}: {v}\n")),
                        other => text.push_str(&format!("{name}: {other}\n")),
                    }
                }
            }
            write_output(None, text.as_bytes())
        }
    }
}

/// The person and the profile asked for, or the CA's default profile.
fn issue_input(authority: &Authority, person: Person, profile: Option<ProfileId>) -> IssueInput {
    IssueInput { person, profile: profile.unwrap_or_else(|| authority.config().default_profile()) }
}

/// What the CA is asked for a certificate issued here: the person and profile, and what
/// CAA says for the mailbox's domain (`[ca] caa`).
async fn issue_request(authority: &Authority, input: IssueInput) -> Result<IssueRequest, Failure> {
    let caa =
        certdesk_desk::caa::CaaPolicy::from_config(authority.config()).evidence(input.person.email.domain()).await?;
    Ok(IssueRequest { input, caa, application: None })
}

/// Opens the data directory for a command that changes CA state, after resolving what
/// crashed issuances left behind (`certdesk_ca::recovery`).
async fn open_for_change(data: &Path) -> Result<Authority, Failure> {
    let authority = open(data).await?;
    refuse_read_only(&authority)?;
    let report = authority.recover("system:recovery").await?;
    report_recovery(&report);
    Ok(authority)
}

/// A data directory this user cannot write opens read-only (for `audit verify`, a
/// current `crl`, `ca chain`); a command that changes state says so before anything.
fn refuse_read_only(authority: &Authority) -> Result<(), Failure> {
    if authority.store().read_only() {
        return Err(usage(format!(
            "{} cannot be written by this user, so its database opened read-only; this command changes it",
            authority.data().root().display()
        )));
    }
    Ok(())
}

fn report_recovery(report: &certdesk_ca::recovery::RecoveryReport) {
    for serial in &report.abandoned {
        eprintln!("certdesk: recovery: the issuance of serial {serial} never completed; abandoned (audited)");
    }
    for serial in &report.delivered {
        eprintln!("certdesk: recovery: the .p12 of serial {serial} had been delivered");
    }
    for serial in &report.revoked_undelivered {
        eprintln!("certdesk: recovery: the .p12 of serial {serial} was never delivered; the certificate is revoked");
    }
    for serial in &report.expired {
        eprintln!("certdesk: the portal's stored .p12 of serial {serial} is a week old and deleted");
    }
}

async fn serve(data: &Path, passphrase_file: Option<&Path>, args: ServeArgs) -> Result<(), Failure> {
    let listen: std::net::SocketAddr = args
        .listen
        .parse()
        .map_err(|_| usage(format!("--listen {:?} is not an address like 127.0.0.1:8080", args.listen)))?;
    if args.refresh_seconds == 0 {
        return Err(usage("--refresh-seconds must be at least 1"));
    }
    init_logs(args.log_format);
    // Bound first: a demo CA's URLs name the port actually bound (`--listen ...:0`).
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| usage(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| usage(e.to_string()))?;
    let dir = DataDir::new(data);
    if !data.exists() {
        eprintln!("certdesk: {} does not exist: creating a DEMO CA there.", data.display());
        certdesk_ca::authority::init_demo(&dir, &format!("http://{bound}"), &SystemClock).await?;
        eprintln!(
            "certdesk: WARNING: the demo CA's passphrase is stored next to its keys in {}. \
             Never use a demo CA for real certificates: run `certdesk init` with your own passphrase.",
            dir.demo_passphrase().display()
        );
    }
    let passphrase = match (passphrase_file, std::env::var("CERTDESK_CA_PASSPHRASE")) {
        (None, Err(_)) if dir.demo_passphrase().is_file() => read_secret_file(&dir.demo_passphrase(), "passphrase")?,
        _ => ca_passphrase(passphrase_file)?,
    };
    let clock: Arc<dyn certdesk_core::clock::Clock> = Arc::new(SystemClock);
    let authority = Arc::new(Authority::open(dir.clone(), clock.clone()).await?);
    refuse_read_only(&authority)?;
    report_recovery(&authority.recover(jobs::ACTOR).await?);
    let issuer = authority.unlock(passphrase.clone()).await?;
    let responder_dir = dir.clone();
    let responder =
        tokio::task::spawn_blocking(move || certdesk_ca::issuer::OcspResponder::unlock(&responder_dir, &passphrase))
            .await
            .map_err(|e| usage(e.to_string()))??;
    let chain = authority.chain()?;
    let store = authority.store().clone();
    let config = authority.config().clone();
    let status =
        Arc::new(certdesk_ca::status::StatusService::new(authority.clone(), issuer, responder, clock.clone())?);
    let report = status.refresh().await?;
    let tls = serve_tls(&args, &config.raw.http)?;
    if tls.is_none() && !bound.ip().is_loopback() && !args.allow_plain_http {
        return Err(usage(format!(
            "refusing to serve plain HTTP on {bound}: sign-in links and session cookies would cross the network \
             in clear. Give --tls-cert and --tls-key (or [http] tls_cert and tls_key), or listen on 127.0.0.1 \
             behind a reverse proxy that terminates TLS, or --allow-plain-http if something else encrypts the way"
        )));
    }
    let plain_listen = args.plain_listen.clone().or_else(|| config.raw.http.plain_listen.clone());
    let plain_listener = match (&plain_listen, &tls) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(usage(
                "--plain-listen (or [http] plain_listen) is for the status routes beside HTTPS; without TLS the \
                 main listener already speaks plain HTTP",
            ))
        }
        (Some(text), Some(_)) => Some(bind_listener(text, "plain listen", "0.0.0.0:80").await?),
    };
    let metrics_listen = args.metrics_listen.clone().or_else(|| config.raw.http.metrics_listen.clone());
    let metrics_listener = match &metrics_listen {
        None => None,
        Some(text) => Some(bind_listener(text, "metrics listen", "127.0.0.1:9100").await?),
    };
    let metrics = Arc::new(certdesk_web::metrics::Metrics::new());
    let mailer: Arc<dyn certdesk_desk::mail::Mailer> = Arc::new(certdesk_web::metrics::CountingMailer::new(
        certdesk_desk::mail::build_mailer(&config.raw.mail, &dir.outbox(), clock.clone())
            .map_err(certdesk_core::error::DomainError::from)?,
        metrics.clone(),
    ));
    let portal_key = certdesk_desk::portal::load_portal_key(&dir)?;
    // The desk and the web tier get the CA only through its ports (certdesk_core::ports).
    let ca: Arc<dyn certdesk_core::ports::CertificateAuthority> =
        Arc::new(certdesk_ca::service::CaService::new(status.clone()));
    let portal = Arc::new(certdesk_desk::portal::Portal::new(
        ca,
        store.clone(),
        config.clone(),
        &dir,
        mailer,
        portal_key,
        clock.clone(),
    )?);
    eprintln!(
        "certdesk: serving on {}://{bound} (portal /, REST API /api/v1 with OpenAPI /api/openapi.json, OCSP /ocsp, \
         CRL /crl/issuing.crl, CA /ca/chain.pem); {} OCSP responses pre-signed; mail goes to {}",
        if tls.is_some() { "https" } else { "http" },
        report.signed,
        match config.raw.mail.transport {
            certdesk_desk::mail::MailTransport::Outbox => dir.outbox().display().to_string(),
            certdesk_desk::mail::MailTransport::Smtp => "the SMTP server".to_string(),
        }
    );
    eprintln!(
        "certdesk: CAA issuemail checks {}; audit checkpoints {}",
        match &config.caa {
            Some(caa) => format!("on (this CA is {})", caa.identities.join(", ")),
            None => "off ([ca] caa = \"check\" turns them on; publicly-trusted CAs must)".to_string(),
        },
        if config.checkpoints.to.is_empty() {
            "not mailed ([audit] checkpoint_to)".to_string()
        } else {
            format!(
                "mailed to {} every {} hours",
                config.checkpoints.to.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "),
                config.checkpoints.period_seconds / 3600
            )
        }
    );
    let offered: Vec<&str> = portal.profiles().iter().map(|p| p.name()).collect();
    eprintln!("certdesk: the portal offers the profiles {}", offered.join(", "));
    if let Some(why) = &config.internal_base {
        eprintln!("certdesk: no CA/B Forum profiles: {why}");
    }
    let limit = config.raw.portal.rate_limit().map_err(usage)?;
    if limit.per_minute == 0 {
        eprintln!("certdesk: request limit per client off ([portal] rate_limit_per_minute = 0)");
    } else {
        eprintln!(
            "certdesk: request limit per client: {} at once, then {} a minute; behind a reverse proxy, list it in \
             [portal] trusted_proxies (now: {})",
            limit.burst,
            limit.per_minute,
            if limit.trusted_proxies.is_empty() {
                "none".to_string()
            } else {
                limit.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            }
        );
    }
    if !certdesk_desk::portal::has_enrolled_admin(&store).await? {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let link = certdesk_desk::portal::add_staff(
            &store,
            now,
            portal.public_url(),
            &args.admin_email,
            certdesk_desk::portal::Role::Admin,
            "system:serve-bootstrap",
        )
        .await?;
        eprintln!(
            "certdesk: first administrator ({}): sign in once within {} minutes with\n  {link}\n\
             then enrol an authenticator app (TOTP) and add officers on /admin",
            args.admin_email,
            certdesk_desk::portal::SIGN_IN_MINUTES
        );
    }
    if let Some(warning) = certdesk_ca::authority::root_crl_warning(&dir, time::OffsetDateTime::now_utc()) {
        eprintln!("certdesk: WARNING: {warning}");
    }
    let publisher: Arc<dyn certdesk_core::ports::StatusPublisher> = status.clone();
    let state_clock = clock.clone();
    let mut state = certdesk_web::AppState::new(publisher, chain, clock, Some(portal.clone()), Some(dir.root_crl()))?;
    state.metrics = metrics;
    state.metrics_apart = metrics_listener.is_some();
    let state = Arc::new(state);
    let http = config.raw.http.checked().map_err(usage)?;
    eprintln!(
        "certdesk: connections: {} at once, {} per client; {} s for a request header (and between requests), \
         {} s for a body; on SIGTERM or SIGINT requests in flight get {} s to finish ([http] in certdesk.toml)",
        http.max_connections,
        http.max_connections_per_client,
        http.header_timeout.as_secs(),
        http.body_timeout.as_secs(),
        http.shutdown_grace.as_secs()
    );
    let limits = certdesk_web::server::ServerLimits {
        header_timeout: http.header_timeout,
        body_timeout: http.body_timeout,
        max_connections: http.max_connections,
        max_connections_per_client: http.max_connections_per_client,
        proxies: limit.trusted_proxies.clone(),
        shutdown_grace: http.shutdown_grace,
    };
    if let Some(warning) = plain_portal_warning(portal.public_url()) {
        eprintln!("certdesk: WARNING: {warning}");
    }
    let ldap = match &config.raw.directory.ldap {
        None => None,
        Some(section) => Some(ldap_directory(section, tls.as_ref(), &portal).await?),
    };
    let stop = stop_signal().map_err(|e| usage(format!("cannot watch for SIGTERM and SIGINT: {e}")))?;
    let (stopping, stop_seen) = tokio::sync::watch::channel(false);
    // Completes when the main listener stops (for the further listeners).
    let on_stop = || {
        let mut seen = stop_seen.clone();
        async move {
            let _ = seen.wait_for(|stop| *stop).await;
        }
    };
    let plain = match plain_listener {
        Some(plain_listener) => {
            let plain_addr = plain_listener.local_addr().map_err(|e| usage(e.to_string()))?;
            eprintln!("certdesk: status routes (CRL, OCSP, CA certificates) also on http://{plain_addr}");
            Some(tokio::spawn(certdesk_web::server::serve_plain_status(
                plain_listener,
                state.clone(),
                portal.public_url().to_string(),
                limits.clone(),
                on_stop(),
            )))
        }
        None => None,
    };
    let metrics_server = match metrics_listener {
        Some(metrics_listener) => {
            let metrics_addr = metrics_listener.local_addr().map_err(|e| usage(e.to_string()))?;
            eprintln!("certdesk: metrics on http://{metrics_addr}/metrics (not on the main listener)");
            Some(tokio::spawn(certdesk_web::server::serve_metrics(
                metrics_listener,
                state.clone(),
                limits.clone(),
                on_stop(),
            )))
        }
        None => None,
    };
    let mut ldap_servers = Vec::new();
    let directory = match ldap {
        Some((directory, listeners)) => {
            for (listener, transport) in listeners {
                ldap_servers.push(tokio::spawn(certdesk_web::ldap::serve(
                    listener,
                    directory.clone(),
                    transport,
                    state_clock.clone(),
                    on_stop(),
                )));
            }
            Some(directory)
        }
        None => None,
    };
    if let Some(tls) = &tls {
        tls.watch(std::time::Duration::from_secs(5));
    }
    let directory_publisher = directory_publisher(&config)?.map(Arc::new);
    if let Some(publisher) = &directory_publisher {
        eprintln!(
            "certdesk: publishing certificates to {} at every refresh ({} s) ([directory.publish])",
            publisher.url(),
            args.refresh_seconds
        );
    }
    jobs::spawn(
        authority,
        status,
        Some(portal),
        jobs::Directories { ldap: directory, publisher: directory_publisher },
        std::time::Duration::from_secs(args.refresh_seconds),
    );
    let main_stop = async move {
        stop.await;
        let _ = stopping.send(true);
    };
    let stopped = certdesk_web::server::serve(listener, state, limits, tls, main_stop).await?;
    for server in [plain, metrics_server].into_iter().flatten() {
        let _ = server.await;
    }
    for server in ldap_servers {
        let _ = server.await;
    }
    if stopped.cut_off {
        eprintln!("certdesk: stopped; requests still running after {} s were cut off", http.shutdown_grace.as_secs());
    } else {
        eprintln!("certdesk: stopped; every request in flight was answered");
    }
    Ok(())
}

/// The HTTPS settings of `serve` (flags before `[http]`), loaded.
fn serve_tls(
    args: &ServeArgs,
    http: &certdesk_core::config::HttpSection,
) -> Result<Option<certdesk_web::tls::Tls>, Failure> {
    let (cert, key) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => match (&http.tls_cert, &http.tls_key) {
            (Some(cert), Some(key)) => (PathBuf::from(cert), PathBuf::from(key)),
            (None, None) => return Ok(None),
            _ => return Err(usage("[http] tls_cert and tls_key go together")),
        },
    };
    certdesk_web::tls::Tls::load(&cert, &key).map(Some).map_err(usage)
}

/// The publisher of `[directory.publish]`, if configured (its password read now).
fn directory_publisher(
    config: &certdesk_core::config::ValidatedConfig,
) -> Result<Option<certdesk_desk::publish::Publisher>, Failure> {
    let Some(section) = &config.raw.directory.publish else { return Ok(None) };
    let checked = section.checked().map_err(usage)?;
    let password = read_secret_file(&checked.bind_password_file, "directory.publish.bind_password")?;
    Ok(Some(certdesk_desk::publish::Publisher::new(checked, password)?))
}

/// Says on stderr what a publishing pass did.
pub(crate) fn report_publication(url: &str, report: &certdesk_desk::publish::PublishReport) {
    for (serial, dn) in &report.published {
        eprintln!("certdesk: published {serial} to {dn}");
    }
    for (serial, dn) in &report.removed {
        eprintln!("certdesk: removed {serial} from {dn}");
    }
    for (serial, why) in &report.failed {
        eprintln!("certdesk: NOT published {serial}: {why}");
    }
    if report.deferred > 0 {
        eprintln!("certdesk: {} certificate(s) wait after failures (tried again later)", report.deferred);
    }
    eprintln!(
        "certdesk: {url}: {} published, {} removed, {} failed",
        report.published.len(),
        report.removed.len(),
        report.failed.len()
    );
}

/// The LDAP directory of `serve` (`[directory.ldap]`): filled once now, with its
/// listeners bound.
async fn ldap_directory(
    section: &certdesk_core::config::LdapSection,
    tls: Option<&certdesk_web::tls::Tls>,
    portal: &certdesk_desk::portal::Portal,
) -> Result<(Arc<certdesk_web::ldap::Directory>, Vec<(tokio::net::TcpListener, certdesk_web::ldap::Transport)>), Failure>
{
    let checked = section.checked().map_err(usage)?;
    let bind = match &checked.bind {
        None => None,
        Some((dn, file)) => Some((dn.clone(), read_secret_file(file, "directory.ldap.bind_password")?)),
    };
    if checked.ldaps_listen.is_some() && tls.is_none() {
        return Err(usage(
            "directory.ldap.ldaps_listen needs the HTTPS certificate: give --tls-cert and --tls-key (or [http] \
             tls_cert and tls_key)",
        ));
    }
    let settings = certdesk_web::ldap::LdapSettings {
        base: checked.base.clone(),
        size_limit: checked.size_limit,
        time_limit: checked.time_limit,
        bind,
        require_bind: checked.require_bind,
        idle_timeout: checked.idle_timeout,
        per_minute: checked.per_minute,
        burst: checked.burst,
        max_connections: checked.max_connections,
        max_connections_per_client: checked.max_connections_per_client,
    };
    let directory = Arc::new(certdesk_web::ldap::Directory::new(settings, tls).map_err(usage)?);
    let people = directory.refresh(portal).await?;
    let mut listeners = Vec::new();
    for (address, transport, scheme) in [
        (checked.listen, certdesk_web::ldap::Transport::Plain, "ldap"),
        (checked.ldaps_listen, certdesk_web::ldap::Transport::Tls, "ldaps"),
    ] {
        let Some(address) = address else { continue };
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| usage(format!("cannot listen for LDAP on {address}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| usage(e.to_string()))?;
        eprintln!(
            "certdesk: LDAP directory on {scheme}://{bound} base {:?}: {people} people; {}{}",
            checked.base,
            if checked.require_bind { "searches need a bind" } else { "anonymous searches answered" },
            if transport == certdesk_web::ldap::Transport::Plain && tls.is_some() { "; StartTLS offered" } else { "" }
        );
        listeners.push((listener, transport));
    }
    Ok((directory, listeners))
}

/// A warning when the portal's links are plain http:// to a host other than loopback:
/// sign-in links would then travel in clear.
fn plain_portal_warning(public_url: &str) -> Option<String> {
    certdesk_core::url::is_plain_over_network(public_url).then(|| {
        format!(
            "the portal's links are plain {public_url}: sign-in links and session cookies travel in clear. Serve \
             HTTPS (--tls-cert/--tls-key or a reverse proxy) and set [portal] public_url to the https:// address"
        )
    })
}

/// Completes at the first SIGTERM (systemd, docker stop) or SIGINT (Ctrl-C).
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        eprintln!("certdesk: {name}: no new connections; finishing the requests in flight");
    })
}
