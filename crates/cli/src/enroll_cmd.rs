//! `certdesk enroll`: apply through the portal's REST API with a key made on this
//! device. The workflow spans days (mailbox code, a visit to the service desk), so the
//! command is resumable: each run does what can be done now, saves its progress in a
//! state directory (0700; the session token 0600) and says what comes next.
//!
//! 1. no session: mails a sign-in link (`--link LINK` on the next run signs in);
//! 2. no application: applies (`--given-name`, `--surname`), the portal mails a code;
//! 3. `--code CODE`: confirms the mailbox; then the applicant visits the desk: the
//!    run lists the free appointments and `--book ID` books one;
//! 4. once approved: generates the key here, sends only a CSR, and writes the
//!    certificate and a password-protected .p12 (`--password-file`) into the state
//!    directory. The private key never leaves this device unencrypted.
//!
//! Besides: `--renew SERIAL` starts a renewal (it continues as above; with the identity
//! and mailbox checks reused it waits only for an officer's approval), `--revoke SERIAL [--reason
//! R]` revokes one's own certificate. A session that has ended (after 12 hours) is
//! forgotten and the next run mails a new sign-in link.

use std::path::{Path, PathBuf};
use std::time::Duration;

use certdesk_desk::http_client::{HttpClient, ProxySetting, Request, Trust};
use certdesk_pki::key::PrivateKey;
use certdesk_pki::pkcs12;
use clap::Args;
use serde_json::{json, Value};

use crate::{read_secret_file, refused, usage, Failure, TempOutput};

/// Arguments of `certdesk enroll`.
#[derive(Args)]
pub struct EnrollArgs {
    /// The portal, e.g. `https://certs.example.org`; reached through the proxy of
    /// HTTPS_PROXY (or HTTP_PROXY, ALL_PROXY) unless NO_PROXY names it.
    #[arg(long)]
    server: String,
    /// Your e-mail address.
    #[arg(long)]
    email: String,
    /// Given name as on your ID (first run).
    #[arg(long)]
    given_name: Option<String>,
    /// Surname as on your ID (first run).
    #[arg(long)]
    surname: Option<String>,
    /// Certificate profile; default: the first the portal offers.
    #[arg(long, value_enum)]
    profile: Option<crate::values::ProfileArg>,
    /// The sign-in link from the mail.
    #[arg(long)]
    link: Option<String>,
    /// The mailbox code from the mail.
    #[arg(long)]
    code: Option<String>,
    /// Key type made on this device.
    #[arg(long, value_enum, default_value = "rsa3072")]
    key: crate::values::KeyArg,
    /// File with the password for the .p12 written at the end.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// .p12 format: modern (AES-256, PBKDF2-SHA256) or compat (3DES, SHA-1 MAC: macOS
    /// before 14, older Windows, gpgsm 2.2); default: what every --client imports, else
    /// modern.
    #[arg(long, value_enum)]
    p12_format: Option<crate::P12Format>,
    /// A mail client you will use the certificate in (repeat for each): the .p12 is made
    /// so that every one of them imports it, and their install steps are printed.
    #[arg(long = "client", value_enum)]
    clients: Vec<crate::values::ClientArg>,
    /// Book this appointment at the service desk (the run before lists the free ones).
    /// An id may start with `-` (slots opened before certdesk stopped making such ids).
    #[arg(long, allow_hyphen_values = true)]
    book: Option<String>,
    /// Renew this certificate of yours (serial in hex): a new application that reuses
    /// the identity and mailbox checks while they are recent enough.
    #[arg(long, conflicts_with = "revoke")]
    renew: Option<String>,
    /// Revoke this certificate of yours (serial in hex), e.g. when its key is lost.
    #[arg(long)]
    revoke: Option<String>,
    /// Why, with --revoke: unspecified, key-compromise, affiliation-changed,
    /// superseded or cessation-of-operation.
    #[arg(long, default_value = "unspecified", requires = "revoke")]
    reason: String,
    /// Where progress, the certificate and the .p12 are kept.
    #[arg(long, default_value = "certdesk-enroll")]
    dir: PathBuf,
    /// Extra CA certificates (PEM) to trust for an https:// portal.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

struct Api {
    server: String,
    http: HttpClient,
    token: Option<String>,
    /// Where the session token is kept (removed when the portal says it has ended).
    session_file: PathBuf,
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Vec<u8>), Failure> {
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("Authorization", b.as_str())).collect();
        let payload = body.map(|b| b.to_string().into_bytes());
        let url = format!("{}{path}", self.server);
        let request =
            Request { method, url: &url, headers: &headers, body: payload.as_deref().map(|p| ("application/json", p)) };
        self.http.send(&request, 1024 * 1024).map_err(|e| usage(format!("cannot reach {}: {e}", self.server)))
    }

    /// A JSON call that must succeed; a problem document becomes its `detail`.
    fn json(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let (status, bytes) = self.call(method, path, body)?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let detail = get(&value, "detail").as_str().unwrap_or("no explanation given").to_string();
        // 401 is also a wrong mailbox code (problem code 1014); the session has ended
        // only if the portal no longer knows it at all.
        let wrong_code = get(&value, "code").as_u64() == Some(1014);
        if status == 401 && !wrong_code && self.token.is_some() && path != "/api/v1/me" {
            if let Ok((401, _)) = self.call("GET", "/api/v1/me", None) {
                let _ = std::fs::remove_file(&self.session_file);
                return Err(refused(format!(
                    "{detail}: your session has ended; run this command again to be mailed a new sign-in link"
                )));
            }
        }
        Err(if status >= 500 { usage(format!("the portal failed: {detail}")) } else { refused(detail) })
    }
}

/// A JSON member, `Null` when absent (never panics, unlike indexing).
fn get<'a>(value: &'a Value, name: &str) -> &'a Value {
    value.get(name).unwrap_or(&Value::Null)
}

fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let _ = std::fs::remove_file(path);
    let temp = TempOutput::create(path)?;
    temp.commit(text.as_bytes())
}

fn read_state(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Runs one step of the enrolment.
pub fn run(args: EnrollArgs) -> Result<(), Failure> {
    let server = args.server.trim_end_matches('/').to_string();
    if !server.starts_with("https://") && !server.starts_with("http://") {
        return Err(usage("--server must be an http:// or https:// URL"));
    }
    if server.starts_with("http://")
        && !server.starts_with("http://127.0.0.1")
        && !server.starts_with("http://localhost")
    {
        eprintln!("certdesk: warning: {server} is not https: the session token travels unencrypted");
    }
    let key = args.key.0;
    let extra = args
        .ca_file
        .as_ref()
        .map(|p| std::fs::read(p).map_err(|e| usage(format!("cannot read {}: {e}", p.display()))))
        .transpose()?;
    // Through the proxy of HTTPS_PROXY/HTTP_PROXY unless NO_PROXY names the portal.
    let http = HttpClient::new(
        Duration::from_secs(60),
        Trust::System { extra_roots_pem: extra.as_deref() },
        &ProxySetting::FromEnvironment,
    )
    .map_err(usage)?;
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let session_file = dir.join("session");
    let mut api = Api { server: server.clone(), http, token: read_state(dir, "session"), session_file };

    // 1. Sign in.
    if api.token.is_none() {
        let Some(link) = &args.link else {
            api.json("POST", "/api/v1/sign-in", Some(json!({ "email": args.email })))?;
            eprintln!("certdesk: a sign-in link was mailed to {}; run this command again with --link LINK", args.email);
            return Ok(());
        };
        let session = api.json("POST", "/api/v1/sessions", Some(json!({ "token": link })))?;
        let token =
            get(&session, "token").as_str().ok_or_else(|| usage("the portal sent no session token"))?.to_string();
        write_private(&dir.join("session"), &token)?;
        api.token = Some(token);
        eprintln!("certdesk: signed in as {}", args.email);
    }

    // Revoking one's own certificate needs only the session.
    if let Some(serial) = &args.revoke {
        let cert = api.json(
            "POST",
            &format!("/api/v1/certificates/{}/revoke", path_segment(serial)?),
            Some(json!({ "reason": args.reason })),
        )?;
        eprintln!(
            "certdesk: certificate {} revoked ({}); mail encrypted to it can still be decrypted with its key",
            get(&cert, "serial").as_str().unwrap_or(serial),
            args.reason
        );
        return Ok(());
    }
    // A renewal is a new application; the steps below carry it on. An application of
    // this directory still under way is finished first, not forgotten.
    if let Some(serial) = &args.renew {
        if let Some(open) = read_state(dir, "application") {
            let app = api.json("GET", &format!("/api/v1/applications/{}", path_segment(&open)?), None)?;
            let state = get(&app, "state").as_str().unwrap_or_default();
            if !matches!(state, "issued" | "rejected" | "withdrawn") {
                return Err(refused(format!(
                    "application {open} is still {state}: finish it first (run without --renew)"
                )));
            }
        }
        let app =
            api.json("POST", &format!("/api/v1/certificates/{}/renew", path_segment(serial)?), Some(json!({})))?;
        let id = application_id(&app)?;
        write_private(&dir.join("application"), &id)?;
        eprintln!("certdesk: renewal of {serial} applied for (application {id})");
    }

    // 2. Apply.
    let id = match read_state(dir, "application") {
        Some(id) => path_segment(&id)?.to_string(),
        None => {
            let (Some(given), Some(surname)) = (&args.given_name, &args.surname) else {
                return Err(usage("give --given-name and --surname (as on your ID) to apply"));
            };
            let app = api.json(
                "POST",
                "/api/v1/applications",
                Some(match &args.profile {
                    Some(profile) => json!({ "given_name": given, "surname": surname, "profile": profile.0.name() }),
                    None => json!({ "given_name": given, "surname": surname }),
                }),
            )?;
            let id = application_id(&app)?;
            write_private(&dir.join("application"), &id)?;
            eprintln!(
                "certdesk: applied (application {id}); a code was mailed to {}: run again with --code CODE",
                args.email
            );
            if args.code.is_none() {
                return Ok(());
            }
            id
        }
    };

    // 3. The mailbox code.
    let mut app = api.json("GET", &format!("/api/v1/applications/{id}"), None)?;
    if get(&app, "mailbox_validated") == false {
        let Some(code) = &args.code else {
            eprintln!("certdesk: confirm your mailbox: run again with --code CODE (from the mail)");
            return Ok(());
        };
        app = api.json("POST", &format!("/api/v1/applications/{id}/mailbox"), Some(json!({ "value": code })))?;
        eprintln!("certdesk: mailbox confirmed");
    }

    // 4. The key, once approved.
    match get(&app, "state").as_str().unwrap_or_default() {
        "awaiting-checks" => appointment(&api, &id, &app, args.book.as_deref()),
        "approved" => {
            let Some(password_file) = &args.password_file else {
                return Err(usage("approved: give --password-file FILE with the password for your .p12"));
            };
            let password = read_secret_file(password_file, "password")?;
            certdesk_pki::password::check_strength(&password, &[&args.email])
                .map_err(|e| refused(format!(".p12 password: {e}")))?;
            // A renewal never replaces the files of an earlier certificate: its key may
            // exist nowhere else.
            let (p12_path, pem_path) = fresh_names(dir);
            let p12_out = TempOutput::create(&p12_path)?;
            eprintln!("certdesk: approved; making a {} key on this device", key.name());
            let private = PrivateKey::generate(key).map_err(|e| usage(e.to_string()))?;
            let csr = certdesk_pki::csr::build(&private).map_err(|e| usage(e.to_string()))?;
            let csr_pem = crate::pem("CERTIFICATE REQUEST", &csr)?;
            let cert = api.json("POST", &format!("/api/v1/applications/{id}/csr"), Some(json!({ "csr": csr_pem })))?;
            let serial = get(&cert, "serial").as_str().unwrap_or_default().to_string();
            let cert_pem = get(&cert, "pem").as_str().ok_or_else(|| usage("the portal sent no certificate"))?;
            let cert_der = certdesk_pki::pem::decode_first(cert_pem.as_bytes(), &["CERTIFICATE"])
                .map_err(|e| usage(format!("the portal's certificate: {e}")))?;
            let chain_pem = get(&cert, "chain_pem").as_str().unwrap_or_default();
            let chain = match certdesk_pki::pem::decode_labelled(chain_pem.as_bytes(), &["CERTIFICATE"]) {
                Ok(chain) => chain,
                Err(certdesk_pki::pem::PemError::Missing { .. }) => Vec::new(),
                Err(e) => return Err(usage(format!("the portal's chain: {e}"))),
            };
            let clients: Vec<certdesk_desk::advisor::MailClient> = args.clients.iter().map(|c| c.0).collect();
            let format = match args.p12_format {
                Some(chosen) => chosen.format(),
                None => certdesk_desk::advisor::advise(&clients).format,
            };
            let options = pkcs12::WriteOptions { format, iterations: 600_000, friendly_name: Some(args.email.clone()) };
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let p12 = pkcs12::write(private.pkcs8_der(), &cert_der, &chain, &password, &options, &rng)
                .map_err(|e| usage(e.to_string()))?;
            p12_out.commit_durable(&p12, false).map_err(|f| Failure {
                error: f.error,
                code: f.code,
                message: format!(
                    "{}; certificate {serial} was issued but its key is lost: revoke it on the portal",
                    f.message
                ),
            })?;
            write_private(&pem_path, &format!("{cert_pem}{chain_pem}"))?;
            println!("{}", p12_path.display());
            eprintln!(
                "certdesk: issued serial {serial}; your key and certificate are in {} (import it into your mail \
                 client or `certdesk smime keyring import`)",
                p12_path.display()
            );
            crate::print_install_steps(&clients, format);
            Ok(())
        }
        "issued" => {
            eprintln!(
                "certdesk: already issued (serial {}); see {}",
                get(&app, "serial").as_str().unwrap_or("?"),
                dir.display()
            );
            Ok(())
        }
        other => Err(refused(format!(
            "the application is {other}{}",
            get(&app, "decision_reason").as_str().map(|r| format!(": {r}")).unwrap_or_default()
        ))),
    }
}

/// A serial or application id as one URL path segment: letters, digits, `:`, `-` and
/// `_` only (no `/`, `.`, `%`, `?` or `#` that would point elsewhere).
fn path_segment(text: &str) -> Result<&str, Failure> {
    let text = text.trim();
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_')) {
        return Err(usage(format!("{text:?} is not a certificate serial or application id")));
    }
    Ok(text)
}

/// The id of an application the portal sent.
fn application_id(app: &Value) -> Result<String, Failure> {
    let id = get(app, "id").as_str().ok_or_else(|| usage("the portal sent no application id"))?;
    Ok(path_segment(id)?.to_string())
}

/// Awaiting the desk: books `--book` when given, else shows the appointment booked or
/// the free ones.
fn appointment(api: &Api, id: &str, app: &Value, book: Option<&str>) -> Result<(), Failure> {
    let when = |v: &Value| {
        v.as_i64()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC")).ok())
            .unwrap_or_else(|| "?".into())
    };
    if get(app, "identity_verified") == true {
        eprintln!("certdesk: your ID was checked; run this command again once the application is approved");
        return Ok(());
    }
    if let Some(slot) = book {
        let booked =
            api.json("POST", &format!("/api/v1/applications/{id}/appointment"), Some(json!({ "slot_id": slot })))?;
        eprintln!(
            "certdesk: booked: {} at {}; bring an official photo ID. Run this command again after the approval",
            when(get(&booked, "starts_at")),
            get(&booked, "place").as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let booked = get(app, "appointment");
    if !booked.is_null() {
        eprintln!(
            "certdesk: your appointment: {} at {}; bring an official photo ID. Run this command again after the \
             approval",
            when(get(booked, "starts_at")),
            get(booked, "place").as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let slots = api.json("GET", "/api/v1/slots", None)?;
    let free = slots.as_array().map(Vec::as_slice).unwrap_or_default();
    if free.is_empty() {
        eprintln!("certdesk: next: show your ID at the service desk; no appointment is free yet, try again later");
        return Ok(());
    }
    println!("free appointments at the service desk:");
    for slot in free {
        println!(
            "  {}  {}  {}",
            get(slot, "id").as_str().unwrap_or("?"),
            when(get(slot, "starts_at")),
            get(slot, "place").as_str().unwrap_or("?")
        );
    }
    eprintln!("certdesk: next: book one with --book ID and show your ID at the service desk");
    Ok(())
}

/// `certificate.p12` and `certificate.pem` in `dir`, or with the first number from 2 on
/// for which neither exists yet.
fn fresh_names(dir: &Path) -> (PathBuf, PathBuf) {
    let names =
        |suffix: String| (dir.join(format!("certificate{suffix}.p12")), dir.join(format!("certificate{suffix}.pem")));
    let mut n = 1u32;
    loop {
        let (p12, pem) = names(if n == 1 { String::new() } else { format!("-{n}") });
        if !p12.exists() && !pem.exists() {
            return (p12, pem);
        }
        n += 1;
    }
}
