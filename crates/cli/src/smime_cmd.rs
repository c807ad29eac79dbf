//! `certdesk smime sign | verify`.

use std::path::{Path, PathBuf};

use certdesk_pki::key::{PrivateKey, PublicKeyKind};
use certdesk_pki::path::{check_crls_at, validate, RevocationStatus};
use certdesk_smime::envelope;
use certdesk_smime::mime::{self, SmimeBody};
use certdesk_smime::signed_data::{self, SignOptions, SignedDataError};
use clap::{Args, Subcommand, ValueEnum};
use der::Decode;

use crate::identity::{pem_blocks, read_certs, read_p12, read_pem_identity};
use crate::{online, usage, write_output, Failure};

/// S/MIME messages.
#[derive(Subcommand)]
pub enum SmimeCommand {
    /// Sign a message: multipart/signed (default) or opaque application/pkcs7-mime.
    Sign(SignArgs),
    /// Verify a signed message; writes the signed content, the verdict on stderr; exit 0 only if valid.
    Verify(VerifyArgs),
    /// Encrypt a message to one or more recipients (application/pkcs7-mime).
    Encrypt(EncryptArgs),
    /// Decrypt a message with a .p12, a PEM key + certificate, or the keyring.
    Decrypt(DecryptArgs),
    /// Re-encrypt an archive (mbox, Maildir or one message) to new certificates: each
    /// message encrypted to a key of the keyring is decrypted with whichever historic key
    /// it names and encrypted again, headers kept; the rest is copied as it is. Writes a
    /// new mailbox, never changes the input.
    Reencrypt(crate::reencrypt_cmd::ReencryptArgs),
    /// One keyring for every key a person has had.
    Keyring {
        #[command(flatten)]
        args: crate::keyring_cmd::KeyringArgs,
        #[command(subcommand)]
        command: crate::keyring_cmd::KeyringCommand,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("identity").required(true).args(["p12", "cert"])))]
pub struct SignArgs {
    /// The signer's .p12 (key and certificate).
    #[arg(long, requires = "password_file")]
    p12: Option<PathBuf>,
    /// File holding the .p12 password.
    #[arg(long, requires = "p12")]
    password_file: Option<PathBuf>,
    /// The signer's certificate (PEM), with --key.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The signer's private key (PEM PKCS#8 "PRIVATE KEY"), with --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// More certificates to include (PEM), e.g. the issuing CA.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// Opaque signing (application/pkcs7-mime; smime-type=signed-data).
    #[arg(long)]
    opaque: bool,
    /// Input (default stdin, or `-`).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Output (default stdout, or `-`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The content cipher.
#[derive(Clone, Copy, ValueEnum)]
pub enum Cipher {
    /// AES-256-CBC (default: what Outlook and Thunderbird read).
    #[value(name = "aes-256-cbc")]
    Aes256Cbc,
    /// AES-128-CBC.
    #[value(name = "aes-128-cbc")]
    Aes128Cbc,
    /// AES-256-GCM AuthEnvelopedData (RFC 5083; many clients cannot read it).
    #[value(name = "aes-256-gcm")]
    Aes256Gcm,
}

#[derive(Args)]
pub struct EncryptArgs {
    /// Recipient certificates (PEM), one or more.
    #[arg(long, required = true, num_args = 1..)]
    to: Vec<PathBuf>,
    /// Content cipher.
    #[arg(long, value_enum, default_value_t = Cipher::Aes256Cbc)]
    cipher: Cipher,
    /// RSA-OAEP key transport instead of PKCS#1 v1.5.
    #[arg(long)]
    oaep: bool,
    /// Input (default stdin, or `-`).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Output (default stdout, or `-`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// A .p12 with the key.
    #[arg(long, requires = "password_file", conflicts_with_all = ["cert", "keyring"])]
    p12: Option<PathBuf>,
    /// File holding the .p12 password.
    #[arg(long, requires = "p12")]
    password_file: Option<PathBuf>,
    /// The recipient certificate (PEM), with --key.
    #[arg(long, requires = "key", conflicts_with = "keyring")]
    cert: Option<PathBuf>,
    /// The recipient key (PEM PKCS#8), with --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[command(flatten)]
    keyring: crate::keyring_cmd::KeyringArgs,
    /// Input (default stdin, or `-`).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Output (default stdout, or `-`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// How revocation is checked.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RevocationMode {
    /// Fail when no current CRL or OCSP answer says the signer is not revoked.
    Require,
    /// Check what can be had; warn when status is unknown.
    Soft,
    /// Do not check.
    Off,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Trusted root certificates (PEM, one or more).
    #[arg(long)]
    trust: PathBuf,
    /// CRL files (DER or PEM).
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// Revocation checking: CRLs in the message and --crl files first, then online
    /// (OCSP from the certificate's AIA, then its CRL distribution points).
    #[arg(long, value_enum, default_value_t = RevocationMode::Soft)]
    revocation: RevocationMode,
    /// Do not fetch OCSP responses or CRLs over the network.
    #[arg(long)]
    offline: bool,
    /// Timeout in seconds for each OCSP or CRL fetch. Fetches go through the proxy of
    /// HTTP_PROXY (or HTTPS_PROXY, ALL_PROXY) unless NO_PROXY names the host.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    fetch_timeout: u64,
    /// Where fetched OCSP responses and CRLs are cached until their nextUpdate
    /// (default $XDG_CACHE_HOME/certdesk or ~/.cache/certdesk).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Input (default stdin, or `-`).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// Where to write the signed content (default stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The verdict as one JSON object on stderr instead of text (for mail gateways and
    /// scripts): `{"valid": true, "signers": [...], "warnings": [...]}` or `{"valid":
    /// false, "exit": 1|2, "reason": "..."}`.
    #[arg(long)]
    json: bool,
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    match path {
        Some(path) => std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display()))),
        None => {
            crate::take_stdin("message")?;
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| usage(format!("cannot read stdin: {e}")))?;
            Ok(buf)
        }
    }
}

fn micalg(kind: PublicKeyKind) -> &'static str {
    match kind {
        PublicKeyKind::Ec(certdesk_pki::key::Curve::P384) => "sha-384",
        PublicKeyKind::Ec(certdesk_pki::key::Curve::P521) | PublicKeyKind::Ed25519 => "sha-512",
        _ => "sha-256",
    }
}

pub async fn run(command: SmimeCommand) -> Result<(), Failure> {
    run_blocking(command)
}

/// The `smime` commands (all synchronous).
pub fn run_blocking(command: SmimeCommand) -> Result<(), Failure> {
    use crate::stdio;
    match command {
        SmimeCommand::Sign(mut args) => {
            (args.input, args.out) = (stdio(args.input), stdio(args.out));
            sign(args)
        }
        SmimeCommand::Verify(mut args) => {
            (args.input, args.out) = (stdio(args.input), stdio(args.out));
            let json = args.json;
            verify(args).map_err(|failure| {
                if !json {
                    return failure;
                }
                eprintln!("{}", serde_json::json!({ "valid": false, "exit": failure.code, "reason": failure.message }));
                // Said already, as JSON.
                Failure { error: failure.error, code: failure.code, message: String::new() }
            })
        }
        SmimeCommand::Encrypt(mut args) => {
            (args.input, args.out) = (stdio(args.input), stdio(args.out));
            encrypt(args)
        }
        SmimeCommand::Decrypt(mut args) => {
            (args.input, args.out) = (stdio(args.input), stdio(args.out));
            decrypt(args)
        }
        SmimeCommand::Reencrypt(args) => crate::reencrypt_cmd::run(args),
        SmimeCommand::Keyring { args, command } => crate::keyring_cmd::run(&args, command),
    }
}

fn sign(args: SignArgs) -> Result<(), Failure> {
    let identity = match (&args.p12, &args.password_file, &args.cert, &args.key) {
        (Some(p12), Some(password_file), _, _) => read_p12(p12, password_file)?,
        (_, _, Some(cert_path), Some(key_path)) => read_pem_identity(cert_path, key_path)?,
        _ => return Err(usage("give --p12 FILE --password-file FILE, or --cert FILE --key FILE")),
    };
    let key = PrivateKey::from_pkcs8_der(&identity.key_pkcs8).map_err(|e| usage(e.to_string()))?;
    let (cert, mut chain) = (identity.cert, identity.others);
    let parsed = x509_cert::Certificate::from_der(&cert).map_err(|e| usage(e.to_string()))?;
    if parsed.tbs_certificate().subject_public_key_info() != certdesk_pki::key::Signer::public_key(&key) {
        return Err(usage("the private key does not belong to the certificate"));
    }
    if let Some(chain_path) = &args.chain {
        for extra in read_certs(chain_path)? {
            if !chain.contains(&extra) {
                chain.push(extra);
            }
        }
    }
    let options = SignOptions { signing_time: time::OffsetDateTime::now_utc(), detached: !args.opaque, chain };
    if args.opaque {
        sign_opaque_streaming(&args, &cert, &key, &options)
    } else {
        sign_streaming(&args, &cert, &key, &options)
    }
}

/// application/pkcs7-mime; smime-type=signed-data in bounded memory: the content goes
/// into the CMS object as it is read (BER with indefinite lengths, as `openssl cms
/// -sign -stream`), base64 lines as it goes, the SignerInfo at the end. With `--out`,
/// the file appears only when complete; stdout gets the message as it is made.
fn sign_opaque_streaming(args: &SignArgs, cert: &[u8], key: &PrivateKey, options: &SignOptions) -> Result<(), Failure> {
    let mut cms = Vec::with_capacity(CHUNK + CHUNK / 8);
    let signer = signed_data::stream::EncapsulatingSigner::new(cert, key, options, &mut cms).map_err(sign_failed)?;
    write_opaque_streaming(args.input.as_deref(), args.out.as_deref(), "signed-data", cms, signer)
}

fn sign_failed(e: SignedDataError) -> Failure {
    usage(format!("signing failed: {e}"))
}

/// A CMS object whose content streams in: what [`write_opaque_streaming`] drives.
trait CmsWriter {
    /// Takes the next piece of content; appends CMS bytes to `out`.
    fn push(&mut self, content: &[u8], out: &mut Vec<u8>) -> Result<(), Failure>;
    /// Appends the end of the CMS object.
    fn finish(self, out: &mut Vec<u8>) -> Result<(), Failure>;
}

impl CmsWriter for signed_data::stream::EncapsulatingSigner<'_> {
    fn push(&mut self, content: &[u8], out: &mut Vec<u8>) -> Result<(), Failure> {
        signed_data::stream::EncapsulatingSigner::push(self, content, out);
        Ok(())
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), Failure> {
        signed_data::stream::EncapsulatingSigner::finish(self, out).map_err(sign_failed)
    }
}

impl CmsWriter for envelope::stream::StreamEncryptor {
    fn push(&mut self, content: &[u8], out: &mut Vec<u8>) -> Result<(), Failure> {
        envelope::stream::StreamEncryptor::push(self, content, out).map_err(|e| usage(e.to_string()))
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), Failure> {
        envelope::stream::StreamEncryptor::finish(self, out).map_err(|e| usage(e.to_string()))
    }
}

/// An opaque application/pkcs7-mime message in bounded memory: the input's header block
/// splits into the outer header fields and the MIME entity, the entity streams through
/// `writer` after `cms` (the start of the CMS object), base64 lines as it goes. With an
/// output path, the file appears only when complete; stdout gets the message as it is
/// made.
fn write_opaque_streaming(
    input_path: Option<&Path>,
    out_path: Option<&Path>,
    smime_type: &str,
    mut cms: Vec<u8>,
    mut writer: impl CmsWriter,
) -> Result<(), Failure> {
    let mime_error = |e: mime::MimeError| usage(e.to_string());
    let mut splitter = mime::stream::EntitySplitter::new();
    let mut lines = mime::stream::Base64Lines::new();
    let mut input = open_input(input_path)?;
    let mut sink = Sink::new(out_path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut inner = Vec::with_capacity(CHUNK + CHUNK / 8);
    let mut out = Vec::with_capacity(2 * CHUNK);
    let mut started = false;
    loop {
        let chunk = read_chunk(&mut input, &mut buf, input_path)?;
        let at_end = chunk.is_empty();
        if at_end {
            splitter.finish(&mut inner).map_err(mime_error)?;
        } else {
            splitter.push(chunk, &mut inner).map_err(mime_error)?;
        }
        if !started {
            let Some(outer) = splitter.take_outer() else { continue };
            out.extend_from_slice(&mime::stream::opaque_header(&outer, smime_type));
            started = true;
        }
        writer.push(&inner, &mut cms)?;
        inner.clear();
        lines.push(&cms, &mut out);
        cms.clear();
        sink.write(&out)?;
        out.clear();
        if at_end {
            break;
        }
    }
    writer.finish(&mut cms)?;
    lines.push(&cms, &mut out);
    lines.finish(&mut out);
    sink.write(&out)?;
    sink.commit()
}

/// multipart/signed in bounded memory: the header and first boundary are written as soon
/// as the input's header block is read, the content streams through canonicalisation
/// and the digest into the output, and the signature part is appended at the end.
/// With `--out`, the file appears only when complete; stdout gets the message as it is
/// made.
fn sign_streaming(args: &SignArgs, cert: &[u8], key: &PrivateKey, options: &SignOptions) -> Result<(), Failure> {
    let mut signer = signed_data::stream::ContentSigner::new(cert, key, options).map_err(sign_failed)?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let boundary = mime::stream::random_boundary(&rng).map_err(|e| usage(e.to_string()))?;
    let mut writer = mime::stream::MultipartSignedWriter::new(micalg(key.kind()), boundary);
    let mut input = open_input(args.input.as_deref())?;
    let mut sink = Sink::new(args.out.as_deref())?;
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + CHUNK / 8);
    let mime_error = |e: mime::MimeError| usage(e.to_string());
    loop {
        let chunk = read_chunk(&mut input, &mut buf, args.input.as_deref())?;
        if chunk.is_empty() {
            break;
        }
        writer.push(chunk, &mut out, &mut |signed| signer.update(signed)).map_err(mime_error)?;
        sink.write(&out)?;
        out.clear();
    }
    writer.end_content(&mut out, &mut |signed| signer.update(signed)).map_err(mime_error)?;
    let cms = signer.finish().map_err(sign_failed)?;
    writer.finish(&cms, &mut out);
    sink.write(&out)?;
    sink.commit()
}

/// The Sender, else From, address of a message's header (RFC 8550 3).
fn sender_of(entity: &mime::Entity) -> Option<String> {
    let from = entity.header("Sender").or_else(|| entity.header("From"))?;
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => from.get(open + 1..close)?,
        _ => from,
    };
    Some(address.trim().to_ascii_lowercase())
}

/// The mailboxes of a certificate (subjectAltName, then the subject's emailAddress, RFC
/// 8550 section 3), lower case.
fn certificate_addresses(cert: &[u8]) -> Vec<String> {
    let Ok(cert) = certdesk_pki::path::decode_certificate(cert) else { return Vec::new() };
    certdesk_pki::subject::certificate_mailboxes(&cert).iter().map(|m| m.to_ascii_lowercase()).collect()
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure { error: None, code: 1, message: format!("signature NOT valid: {}", message.into()) }
}

fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let anchors = read_certs(&args.trust)?;
    let mut crls = Vec::new();
    for path in &args.crl {
        let bytes = crate::read_file(path, "CRL")?;
        crls.extend(pem_blocks(&bytes, "X509 CRL", path)?);
    }
    let path = args.input.as_deref();
    let mut input = open_input(path)?;
    let mut buf = vec![0u8; CHUNK];
    let first = read_chunk(&mut input, &mut buf, path)?.to_vec();
    let Head { entity, body, more } = read_head(&mut input, &mut buf, path, first)?;
    let sender = sender_of(&entity);
    let content_type = entity.header("Content-Type").unwrap_or_default().to_string();
    let boundary = (entity.media_type() == "multipart/signed")
        .then(|| mime::parameter(&content_type, "boundary"))
        .flatten()
        .filter(|b| !b.is_empty());
    if boundary.is_none() && streamable_opaque(&entity) == Some(true) {
        let head = Head { entity, body, more };
        return verify_opaque_streaming(&args, &anchors, crls, head, input, buf, sender.as_deref());
    }
    let Some(boundary) = boundary else {
        // Anything else is read whole.
        let message = read_rest(Head { entity, body, more }, &mut input, &mut buf, path)?;
        let verified = verify_in_memory(&message)?;
        let report = check_signers(&args, &anchors, crls, &verified, sender.as_deref())?;
        // Only now, with every check passed, is any content written.
        write_output(args.out.as_deref(), &verified.content)?;
        return print_report(report);
    };

    // multipart/signed streams: the first part is hashed (with the micalg digests) and
    // held in a temporary file; the signature part is small and kept.
    // From a file, the announced digests suffice (a signer using another is checked by
    // reading the file again); stdin cannot be read twice, so every digest is computed.
    let algorithms = if path.is_some() { micalg_digests(&content_type) } else { micalg_digests("") };
    let mut hashers: Vec<(signed_data::DigestAlgorithm, aws_lc_rs::digest::Context)> =
        algorithms.iter().map(|a| (*a, aws_lc_rs::digest::Context::new(digest_of(*a)))).collect();
    let mut held = HeldOutput::new(args.out.as_deref())?;
    let mut splitter = mime::stream::SignedSplitter::new(&boundary);
    // The first part's bytes are collected per input chunk, then hashed and written in
    // one go (not line by line).
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK + 1024);
    let mut flush = |pending: &mut Vec<u8>, held: &mut HeldOutput| -> Result<(), Failure> {
        for (_, context) in hashers.iter_mut() {
            context.update(pending);
        }
        held.write(pending)?;
        pending.clear();
        Ok(())
    };
    {
        let broken = |e: mime::MimeError| usage(e.to_string());
        stream_body(&body, more, &mut input, &mut buf, path, &mut |piece| {
            splitter.push(piece, &mut |b| pending.extend_from_slice(b)).map_err(broken)?;
            flush(&mut pending, &mut held)
        })?;
        let part = splitter.finish(&mut |b| pending.extend_from_slice(b)).map_err(broken)?;
        flush(&mut pending, &mut held)?;
        let signature = mime::signature_part(&part).map_err(broken)?;
        let digests: Vec<(signed_data::DigestAlgorithm, Vec<u8>)> =
            hashers.into_iter().map(|(a, context)| (a, context.finish().as_ref().to_vec())).collect();
        let verified = match signed_data::verify_detached_digests(&signature, &digests, &[]) {
            // A signer with another digest or without signed attributes needs the content
            // itself: a file is read again; from stdin the held first part is read back.
            Err(SignedDataError::ContentNeeded { .. }) if path.is_some() => {
                drop(held);
                return verify_file_in_memory(&args, &anchors, crls, sender.as_deref());
            }
            Err(SignedDataError::ContentNeeded { .. }) => {
                signed_data::verify(&signature, Some(&held.read_back()?), &[]).map_err(verify_failure)?
            }
            other => other.map_err(verify_failure)?,
        };
        let report = check_signers(&args, &anchors, crls, &verified, sender.as_deref())?;
        // Only now, with every check passed, is the content released.
        held.commit()?;
        print_report(report)
    }
}

/// A signer without signed attributes (or with a digest the streamed path did not
/// compute) needs the content itself: the input file is read again and verified in
/// memory.
fn verify_file_in_memory(
    args: &VerifyArgs,
    anchors: &[Vec<u8>],
    crls: Vec<Vec<u8>>,
    sender: Option<&str>,
) -> Result<(), Failure> {
    let verified = verify_in_memory(&read_input(args.input.as_deref())?)?;
    let report = check_signers(args, anchors, crls, &verified, sender)?;
    write_output(args.out.as_deref(), &verified.content)?;
    print_report(report)
}

/// For a base64 application/pkcs7-mime message (what the streaming paths read): whether
/// its smime-type says signed-data. `None` for anything else, which is read whole.
fn streamable_opaque(entity: &mime::Entity) -> Option<bool> {
    let opaque = matches!(entity.media_type().as_str(), "application/pkcs7-mime" | "application/x-pkcs7-mime");
    let base64 = entity.header("Content-Transfer-Encoding").is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    let content_type = entity.header("Content-Type").unwrap_or_default();
    let signed = mime::parameter(content_type, "smime-type").is_some_and(|t| t.eq_ignore_ascii_case("signed-data"));
    (opaque && base64).then_some(signed)
}

/// Opaque signed-data in bounded memory: the base64 body is decoded and the CMS
/// object read as it arrives; the content is hashed and held in a temporary file, and
/// released only when every signature and the signer's path check out.
fn verify_opaque_streaming(
    args: &VerifyArgs,
    anchors: &[Vec<u8>],
    crls: Vec<Vec<u8>>,
    head: Head,
    mut input: Box<dyn std::io::Read>,
    mut buf: Vec<u8>,
    sender: Option<&str>,
) -> Result<(), Failure> {
    let path = args.input.as_deref();
    let mut held = HeldOutput::new(args.out.as_deref())?;
    // From stdin the CMS object is also kept (an unnamed temporary file): a signer
    // without signed attributes is checked against it at the end.
    let mut spool = if path.is_none() { Some(HeldOutput::new(None)?) } else { None };
    let mut reader = signed_data::stream::EncapsulatedReader::new();
    let mut carrier = Carrier::Base64(mime::stream::Base64Decoder::new());
    let mut cms = Vec::with_capacity(CHUNK);
    let mut content = Vec::with_capacity(CHUNK);
    let mut step = |bytes: &[u8], carrier: &mut Carrier, held: &mut HeldOutput| -> Result<(), Failure> {
        carrier.decode(bytes, &mut cms)?;
        if let Some(spool) = spool.as_mut() {
            spool.write(&cms)?;
        }
        reader.push(&cms, &mut content).map_err(verify_failure)?;
        cms.clear();
        held.write(&content)?;
        content.clear();
        Ok(())
    };
    stream_body(&head.body, head.more, &mut input, &mut buf, path, &mut |piece| step(piece, &mut carrier, &mut held))?;
    carrier.finish()?;
    let verified = match reader.finish() {
        // A signer without signed attributes (or with a digest the message did not
        // announce) needs the content itself: the file is read again, or the kept CMS
        // object of stdin read back.
        Err(SignedDataError::ContentNeeded { .. }) => match spool.as_mut() {
            None => {
                drop(held);
                return verify_file_in_memory(args, anchors, crls, sender);
            }
            Some(spool) => signed_data::verify(&spool.read_back()?, None, &[]).map_err(verify_failure)?,
        },
        other => other.map_err(verify_failure)?,
    };
    let report = check_signers(args, anchors, crls, &verified, sender)?;
    // Only now, with every check passed, is the content released.
    held.commit()?;
    print_report(report)
}

/// The digests `micalg` announces (RFC 8551 3.5.3.2); all three when it names none we know.
fn micalg_digests(content_type: &str) -> Vec<signed_data::DigestAlgorithm> {
    use signed_data::DigestAlgorithm::{Sha256, Sha384, Sha512};
    let named: Vec<_> = mime::parameter(content_type, "micalg")
        .unwrap_or_default()
        .split(',')
        .filter_map(|name| match name.trim().to_ascii_lowercase().as_str() {
            "sha-256" | "sha256" => Some(Sha256),
            "sha-384" | "sha384" => Some(Sha384),
            "sha-512" | "sha512" => Some(Sha512),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        vec![Sha256, Sha384, Sha512]
    } else {
        named
    }
}

fn digest_of(algorithm: signed_data::DigestAlgorithm) -> &'static aws_lc_rs::digest::Algorithm {
    match algorithm {
        signed_data::DigestAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
        signed_data::DigestAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
        _ => &aws_lc_rs::digest::SHA256,
    }
}

fn verify_failure(e: SignedDataError) -> Failure {
    match e {
        SignedDataError::Malformed { .. } | SignedDataError::NotSignedData { .. } => usage(e.to_string()),
        other => invalid(other.to_string()),
    }
}

fn verify_in_memory(message: &[u8]) -> Result<signed_data::VerifiedMessage, Failure> {
    let body = mime::parse(message).map_err(|e| usage(e.to_string()))?;
    let verified = match &body {
        SmimeBody::MultipartSigned(parts) => signed_data::verify(&parts.signature, Some(&parts.signed), &[]),
        SmimeBody::Opaque { cms, smime_type } => {
            if smime_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("enveloped-data")) {
                return Err(usage("the message is encrypted, not signed: use certdesk smime decrypt"));
            }
            signed_data::verify(cms, None, &[])
        }
    };
    verified.map_err(verify_failure)
}

/// What `verify` prints once everything passed: each signer and any warnings, as text
/// or (`--json`) as one object.
struct Report {
    signers: Vec<SignerReport>,
    warnings: Vec<String>,
    json: bool,
}

/// One signer's verdict: its addresses, its chain (signer first, as RFC 4514 names),
/// the signingTime it states and what revocation checking found.
struct SignerReport {
    addresses: Vec<String>,
    chain: Vec<String>,
    signing_time: Option<String>,
    revocation: String,
}

impl SignerReport {
    fn text(&self) -> String {
        format!(
            "  signer:     {}\n  addresses:  {}\n  chain:      {}\n  signed at:  {}\n  revocation: {}",
            self.chain.first().map(String::as_str).unwrap_or_default(),
            if self.addresses.is_empty() { "none".to_string() } else { self.addresses.join(", ") },
            self.chain.join(" -> "),
            self.signing_time.as_deref().unwrap_or("not stated"),
            self.revocation
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "signer": self.chain.first(),
            "addresses": self.addresses,
            "chain": self.chain,
            "signing_time": self.signing_time,
            "revocation": self.revocation,
        })
    }
}

fn print_report(report: Report) -> Result<(), Failure> {
    if report.json {
        let signers: Vec<serde_json::Value> = report.signers.iter().map(SignerReport::json).collect();
        let verdict = serde_json::json!({ "valid": true, "signers": signers, "warnings": report.warnings });
        eprintln!("{verdict}");
        return Ok(());
    }
    let lines: Vec<String> = report.signers.iter().map(SignerReport::text).collect();
    eprintln!("certdesk: signature valid\n{}", lines.join("\n"));
    for warning in report.warnings {
        eprintln!("certdesk: warning: {warning}");
    }
    Ok(())
}

/// Where the CRLs and CRL issuers at hand come from: the `--crl` files and the message.
struct AtHand<'a> {
    crls: &'a [Vec<u8>],
    /// Certificates that may have signed a CRL (indirect CRLs, a rolled-over key).
    crl_issuers: &'a [Vec<u8>],
}

/// The revocation status of certificate `index` of `path` (0: the signer): from the CRLs
/// at hand first (for every certificate, whether or not it names a distribution point),
/// then online unless `--offline`. A CA certificate that nothing at hand covers and that
/// publishes no OCSP responder and no CRL distribution point has no status to find:
/// [`Status::PublishesNothing`].
fn status_of(
    path: &certdesk_pki::path::ValidatedPath,
    index: usize,
    at_hand: &AtHand<'_>,
    fetcher: Option<&mut online::Fetcher>,
    now: time::OffsetDateTime,
) -> Result<Status, Failure> {
    let offline =
        check_crls_at(path, at_hand.crls, at_hand.crl_issuers, now, index).map_err(|e| invalid(e.to_string()))?;
    if offline == RevocationStatus::NotRevoked {
        return Ok(Status::Checked(online::OnlineVerdict::Good { source: "a current CRL at hand".to_string() }));
    }
    let cert = path.chain().get(index).and_then(|c| certdesk_pki::path::decode_certificate(c).ok());
    if let Some(cert) = cert.as_ref().filter(|_| index > 0) {
        if online::ocsp_urls(cert).is_empty() && online::crl_urls(cert).is_empty() {
            return Ok(Status::PublishesNothing);
        }
    }
    Ok(Status::Checked(match fetcher {
        Some(fetcher) => fetcher.check_at(path, index, now),
        None => online::OnlineVerdict::Unknown { reasons: vec!["no current CRL at hand and --offline".to_string()] },
    }))
}

/// What [`status_of`] found.
enum Status {
    Checked(online::OnlineVerdict),
    /// A CA certificate with no CRL at hand covering it and nothing published.
    PublishesNothing,
}

/// Path validation, the sender rule and revocation for every signer (RFC 5280, RFC 8550).
fn check_signers(
    args: &VerifyArgs,
    anchors: &[Vec<u8>],
    mut crls: Vec<Vec<u8>>,
    verified: &signed_data::VerifiedMessage,
    sender: Option<&str>,
) -> Result<Report, Failure> {
    crls.extend(verified.crls.iter().cloned());
    let now = time::OffsetDateTime::now_utc();
    let mut fetcher = (!args.offline)
        .then(|| {
            online::Fetcher::new(
                std::time::Duration::from_secs(args.fetch_timeout),
                args.cache_dir.clone().or_else(online::default_cache_dir),
                &online::ProxySetting::FromEnvironment,
            )
        })
        .transpose()
        .map_err(usage)?;
    let mut signers = Vec::new();
    let mut warnings = Vec::new();
    for signature in &verified.signatures {
        let path = validate(signature.signer_certificate(), &verified.certificates, anchors, now)
            .map_err(|e| invalid(e.to_string()))?;
        let addresses = certificate_addresses(signature.signer_certificate());
        if let Some(sender) = sender {
            if !addresses.is_empty() && !addresses.iter().any(|a| a == sender) {
                return Err(invalid(format!(
                    "the message is from {sender}, but the certificate is for {} (RFC 8550 3)",
                    addresses.join(", ")
                )));
            }
        }
        let revocation = if args.revocation == RevocationMode::Off {
            "not checked (--revocation off)".to_string()
        } else {
            // The signer, then each CA up to (not including) the trust anchor.
            let at_hand = AtHand { crls: &crls, crl_issuers: &verified.certificates };
            let mut parts = Vec::new();
            for index in 0..path.chain().len().saturating_sub(1) {
                let ca = (index > 0).then(|| {
                    path.chain().get(index).and_then(|c| certdesk_pki::path::decode_certificate(c).ok()).map_or_else(
                        || "a CA".to_string(),
                        |c| certdesk_pki::subject::rfc4514(c.tbs_certificate().subject()),
                    )
                });
                let of = ca.as_ref().map(|ca| format!(" of CA {ca}")).unwrap_or_default();
                let verdict = match status_of(&path, index, &at_hand, fetcher.as_mut(), now)? {
                    Status::Checked(verdict) => verdict,
                    Status::PublishesNothing => {
                        // As NSS and OpenSSL's default: nothing published and no CRL of its
                        // issuer at hand, so there is nothing to check; the verdict says so.
                        parts.push(format!(
                            "CA {}: publishes no revocation information and no CRL at hand covers it",
                            ca.as_deref().unwrap_or("a CA")
                        ));
                        continue;
                    }
                };
                match verdict {
                    online::OnlineVerdict::Good { source } => match &ca {
                        None => parts.push(format!("not revoked ({source})")),
                        Some(ca) => parts.push(format!("CA {ca} not revoked ({source})")),
                    },
                    online::OnlineVerdict::Revoked(e) => return Err(invalid(e.to_string())),
                    online::OnlineVerdict::Unknown { reasons } if args.revocation == RevocationMode::Require => {
                        return Err(invalid(format!(
                            "revocation status{of} unknown (--revocation require): {}",
                            reasons.join("; ")
                        )));
                    }
                    online::OnlineVerdict::Unknown { reasons } => {
                        warnings.push(format!("revocation status{of} unknown: {}", reasons.join("; ")));
                        parts.push(if ca.is_none() { "unknown".to_string() } else { format!("CA{of}: unknown") });
                    }
                }
            }
            parts.join("; ")
        };
        let chain: Vec<String> = path
            .chain()
            .iter()
            .filter_map(|c| certdesk_pki::path::decode_certificate(c).ok())
            .map(|c| certdesk_pki::subject::rfc4514(c.tbs_certificate().subject()))
            .collect();
        let signing_time =
            signature.signing_time().and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
        signers.push(SignerReport { addresses, chain, signing_time, revocation });
    }
    Ok(Report { signers, warnings, json: args.json })
}

fn encrypt(args: EncryptArgs) -> Result<(), Failure> {
    let mut recipients = Vec::new();
    for path in &args.to {
        recipients.extend(read_certs(path)?);
    }
    let cipher = match args.cipher {
        Cipher::Aes256Cbc => envelope::ContentCipher::Aes256Cbc,
        Cipher::Aes128Cbc => envelope::ContentCipher::Aes128Cbc,
        Cipher::Aes256Gcm => envelope::ContentCipher::Aes256Gcm,
    };
    let options = envelope::EncryptOptions { cipher, oaep: args.oaep };
    if cipher != envelope::ContentCipher::Aes256Gcm {
        return encrypt_streaming(&args, &recipients, &options);
    }
    // AES-GCM (AuthEnvelopedData) is built in memory.
    let input = read_input(args.input.as_deref())?;
    let (outer, inner) = mime::split_for_signing(&input).map_err(|e| usage(e.to_string()))?;
    let cms = envelope::encrypt(&inner, &recipients, &options, &aws_lc_rs::rand::SystemRandom::new())
        .map_err(|e| usage(e.to_string()))?;
    let smime_type = if matches!(args.cipher, Cipher::Aes256Gcm) { "authEnveloped-data" } else { "enveloped-data" };
    write_output(args.out.as_deref(), &mime::build_opaque(&outer, &cms, smime_type))
}

/// EnvelopedData with AES-CBC in bounded memory: BER with indefinite lengths, the
/// ciphertext in segments, base64 lines as it goes. With `--out`, the file appears only
/// when complete; stdout gets the message as it is made.
fn encrypt_streaming(
    args: &EncryptArgs,
    recipients: &[Vec<u8>],
    options: &envelope::EncryptOptions,
) -> Result<(), Failure> {
    let mut cms = Vec::with_capacity(CHUNK + CHUNK / 8);
    let encryptor =
        envelope::stream::StreamEncryptor::new(recipients, options, &aws_lc_rs::rand::SystemRandom::new(), &mut cms)
            .map_err(|e| usage(e.to_string()))?;
    write_opaque_streaming(args.input.as_deref(), args.out.as_deref(), "enveloped-data", cms, encryptor)
}

fn decrypt_failure(e: envelope::EnvelopeError) -> Failure {
    match e {
        envelope::EnvelopeError::Malformed { .. } | envelope::EnvelopeError::NotEnvelopedData { .. } => {
            usage(e.to_string())
        }
        other => Failure { error: None, code: 1, message: other.to_string() },
    }
}

/// The enveloped CMS object in a message, looking inside encrypt-then-sign messages
/// (an opaque or multipart signature around the encrypted part, RFC 8551 3.7). The outer
/// signature is not judged here: `smime verify` does that.
fn find_enveloped(mut message: Vec<u8>) -> Result<Vec<u8>, Failure> {
    for _ in 0..4 {
        let signed_content = match mime::parse(&message) {
            Ok(SmimeBody::Opaque { cms, smime_type }) => {
                let signed = smime_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("signed-data"));
                if !signed {
                    return Ok(cms);
                }
                signed_data::verify(&cms, None, &[]).map_err(|e| usage(format!("the signed layer: {e}")))?.content
            }
            Ok(SmimeBody::MultipartSigned(parts)) => parts.signed,
            // A bare DER/BER CMS object is accepted too.
            Err(_) if message.first() == Some(&0x30) => return Ok(message),
            Err(e) => return Err(usage(e.to_string())),
        };
        message = signed_content;
    }
    Err(usage("the message nests signatures too deeply to find the encrypted part"))
}

/// The decryption keys: the --p12, the PEM key and certificate, or the keyring keys of
/// the recipients `wanted` names.
fn decryption_keys(
    args: &DecryptArgs,
    wanted: impl FnOnce() -> Result<Vec<envelope::RecipientId>, envelope::EnvelopeError>,
) -> Result<Vec<envelope::RecipientKey>, Failure> {
    Ok(match (&args.p12, &args.password_file, &args.cert, &args.key) {
        (Some(p12), Some(password_file), _, _) => {
            let identity = read_p12(p12, password_file)?;
            vec![envelope::RecipientKey::new(&identity.key_pkcs8, &identity.cert).map_err(|e| usage(e.to_string()))?]
        }
        (_, _, Some(cert_path), Some(key_path)) => {
            let identity = read_pem_identity(cert_path, key_path)?;
            vec![envelope::RecipientKey::new(&identity.key_pkcs8, &identity.cert).map_err(|e| usage(e.to_string()))?]
        }
        _ => {
            // The keyring: only the keys the message names are decrypted.
            let keyring = crate::keyring_cmd::Keyring::locate(&args.keyring)?;
            let wanted = wanted().map_err(decrypt_failure)?;
            let mut keys = Vec::new();
            for (info, _, key_file) in keyring.entries()? {
                if info.named_by(&wanted) {
                    let key = keyring.private_key(&key_file)?;
                    let cert = keyring.certificate(&info)?;
                    keys.push(envelope::RecipientKey::new(&key, &cert).map_err(|e| usage(e.to_string()))?);
                }
            }
            if keys.is_empty() {
                return Err(Failure {
                    error: None,
                    code: 1,
                    message: "no key in the keyring matches a recipient of this message".into(),
                });
            }
            keys
        }
    })
}

/// How the CMS object sits in the input.
enum Carrier {
    /// Bare DER/BER.
    Raw,
    /// The base64 body of an application/pkcs7-mime message.
    Base64(mime::stream::Base64Decoder),
}

impl Carrier {
    fn decode(&mut self, input: &[u8], cms: &mut Vec<u8>) -> Result<(), Failure> {
        match self {
            Carrier::Raw => {
                cms.extend_from_slice(input);
                Ok(())
            }
            Carrier::Base64(decoder) => decoder.push(input, cms).map_err(|e| usage(e.to_string())),
        }
    }

    fn finish(&self) -> Result<(), Failure> {
        match self {
            Carrier::Raw => Ok(()),
            Carrier::Base64(decoder) => decoder.finish().map_err(|e| usage(e.to_string())),
        }
    }
}

/// Decrypts in bounded memory: the MIME header and base64 are read as they come, the
/// start of the CMS object up to the encrypted content is parsed, the key unwrapped,
/// and the content decrypted chunk by chunk into a temporary file (next to --out, or an
/// unnamed one for stdout) that is renamed (or copied to stdout) only when the whole
/// message decrypted and its padding checked: a failure leaves no plaintext anywhere.
/// Messages that are not a bare or base64 application/pkcs7-mime EnvelopedData
/// (encrypt-then-sign, other transfer encodings) are decrypted in memory as before.
fn decrypt(args: DecryptArgs) -> Result<(), Failure> {
    let path = args.input.as_deref();
    let mut input = open_input(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut cms = Vec::with_capacity(CHUNK);
    let first = read_chunk(&mut input, &mut buf, path)?.to_vec();
    let mut carrier = if first.first() == Some(&0x30) {
        cms.extend_from_slice(&first);
        Carrier::Raw
    } else {
        let head = read_head(&mut input, &mut buf, path, first)?;
        let entity = &head.entity;
        if streamable_opaque(entity) != Some(false) {
            // Anything else is read whole and handled as before.
            let message = read_rest(head, &mut input, &mut buf, path)?;
            return decrypt_in_memory(&args, message);
        }
        let body = head.body;
        let mut carrier = Carrier::Base64(mime::stream::Base64Decoder::new());
        carrier.decode(&body, &mut cms)?;
        carrier
    };

    let mut reader = envelope::stream::EnvelopeReader::new();
    let mut at_end = false;
    loop {
        let ready = reader.push(&cms).map_err(decrypt_failure)?;
        cms.clear();
        if ready {
            break;
        }
        let chunk = read_chunk(&mut input, &mut buf, path)?;
        if chunk.is_empty() {
            carrier.finish()?;
            at_end = true;
            break;
        }
        carrier.decode(chunk, &mut cms)?;
    }
    let keys = decryption_keys(&args, || reader.recipients())?;
    let mut decryptor = reader.open(&keys).map_err(decrypt_failure)?;
    let mut held = HeldOutput::new(args.out.as_deref())?;
    let mut out = Vec::with_capacity(CHUNK + 64);
    while !at_end {
        let chunk = read_chunk(&mut input, &mut buf, path)?;
        if chunk.is_empty() {
            carrier.finish()?;
            at_end = true;
        }
        carrier.decode(chunk, &mut cms)?;
        decryptor.push(&cms, &mut out).map_err(decrypt_failure)?;
        cms.clear();
        held.write(&out)?;
        out.clear();
    }
    decryptor.finish(&mut out).map_err(decrypt_failure)?;
    held.write(&out)?;
    held.commit()
}

/// A message's header block read from a stream: the header fields, the canonical body
/// bytes read with them, and the canonicalizer to go on with (`None`: the input ended).
struct Head {
    entity: mime::Entity,
    body: Vec<u8>,
    more: Option<mime::stream::Canonicalizer>,
}

/// Reads input (starting with `first`) until the header block is known.
fn read_head(
    input: &mut dyn std::io::Read,
    buf: &mut [u8],
    path: Option<&Path>,
    first: Vec<u8>,
) -> Result<Head, Failure> {
    let mut reader = mime::stream::HeaderReader::new();
    let mut chunk = first;
    let (headers, body, more) = loop {
        if chunk.is_empty() {
            let (headers, body) = reader.finish().map_err(|e| usage(e.to_string()))?;
            break (headers, body, None);
        }
        if let Some((headers, body)) = reader.push(&chunk).map_err(|e| usage(e.to_string()))? {
            break (headers, body, Some(reader.into_canonicalizer()));
        }
        chunk = read_chunk(input, buf, path)?.to_vec();
    };
    Ok(Head { entity: mime::Entity { headers, body: Vec::new() }, body, more })
}

/// The whole message, canonical: the header block, the body read so far and the rest of
/// the input (for the paths that work in memory).
fn read_rest(
    head: Head,
    input: &mut dyn std::io::Read,
    buf: &mut [u8],
    path: Option<&Path>,
) -> Result<Vec<u8>, Failure> {
    let mut message = Vec::new();
    for header in &head.entity.headers {
        message.extend_from_slice(&header.raw);
    }
    if !head.entity.headers.is_empty() {
        message.extend_from_slice(b"\r\n");
    }
    stream_body(&head.body, head.more, input, buf, path, &mut |piece| {
        message.extend_from_slice(piece);
        Ok(())
    })?;
    Ok(message)
}

/// Passes a message's canonical body to `each` piece by piece: what [`read_head`] read
/// with the header block, then the rest of the input as it is read.
fn stream_body(
    body: &[u8],
    more: Option<mime::stream::Canonicalizer>,
    input: &mut dyn std::io::Read,
    buf: &mut [u8],
    path: Option<&Path>,
    each: &mut dyn FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    each(body)?;
    let Some(mut canon) = more else { return Ok(()) };
    let mut canonical = Vec::with_capacity(CHUNK + 1024);
    loop {
        let chunk = read_chunk(input, buf, path)?;
        if chunk.is_empty() {
            break;
        }
        canon.push(chunk, &mut canonical);
        each(&canonical)?;
        canonical.clear();
    }
    canon.finish(&mut canonical);
    each(&canonical)
}

fn decrypt_in_memory(args: &DecryptArgs, message: Vec<u8>) -> Result<(), Failure> {
    let cms = find_enveloped(message)?;
    let keys = decryption_keys(args, || envelope::recipients(&cms))?;
    let content = envelope::decrypt(&cms, &keys).map_err(decrypt_failure)?;
    write_output(args.out.as_deref(), &content)
}

/// Input is read in chunks of this size (64 KiB): large enough that system calls do
/// not count (256 KiB measured no faster), small enough that a chunk and what it
/// becomes stay in the CPU cache and the process stays small (issue 3: memory not
/// above `openssl cms`).
const CHUNK: usize = 64 * 1024;

fn open_input(path: Option<&Path>) -> Result<Box<dyn std::io::Read>, Failure> {
    match path {
        Some(path) => {
            Ok(Box::new(std::fs::File::open(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?))
        }
        None => {
            crate::take_stdin("message")?;
            Ok(Box::new(std::io::stdin().lock()))
        }
    }
}

/// Fills `buf` as far as the input goes; an empty slice at the end of the input.
fn read_chunk<'b>(input: &mut dyn std::io::Read, buf: &'b mut [u8], path: Option<&Path>) -> Result<&'b [u8], Failure> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let what = path.map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
                return Err(usage(format!("cannot read {what}: {e}")));
            }
        }
    }
    Ok(buf.get(..filled).unwrap_or_default())
}

/// Where streamed output goes: a temporary file renamed to --out when complete, or
/// stdout as it is made.
enum Sink {
    File(crate::TempOutput),
    Stdout(std::io::StdoutLock<'static>),
}

impl Sink {
    fn new(path: Option<&Path>) -> Result<Self, Failure> {
        Ok(match path {
            Some(path) => Sink::File(crate::TempOutput::create(path)?),
            None => Sink::Stdout(std::io::stdout().lock()),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        use std::io::Write;
        match self {
            Sink::File(temp) => temp.write(bytes),
            Sink::Stdout(out) => out.write_all(bytes).map_err(|e| usage(format!("cannot write to stdout: {e}"))),
        }
    }

    fn commit(self) -> Result<(), Failure> {
        use std::io::Write;
        match self {
            Sink::File(temp) => temp.commit(&[]),
            Sink::Stdout(mut out) => out.flush().map_err(|e| usage(format!("cannot write to stdout: {e}"))),
        }
    }
}

/// Decrypted output held back until the whole message has decrypted: a temporary file
/// next to --out (renamed on success), or for stdout an unnamed temporary file (created
/// 0600 in the temporary directory and unlinked at once) copied to stdout on success.
enum HeldOutput {
    File(crate::TempOutput),
    Unnamed(std::fs::File),
}

impl HeldOutput {
    fn new(path: Option<&Path>) -> Result<Self, Failure> {
        if let Some(path) = path {
            return Ok(HeldOutput::File(crate::TempOutput::create(path)?));
        }
        let mut random = [0u8; 16];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| usage("no random bytes for a temporary file name"))?;
        let temp =
            std::env::temp_dir().join(format!(".certdesk-decrypt-{}-{}", std::process::id(), hex::encode(random)));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&temp)
            .map_err(|e| usage(format!("cannot create a temporary file {}: {e}", temp.display())))?;
        // Unlinked at once: the plaintext has no name and goes away with the process.
        let _ = std::fs::remove_file(&temp);
        Ok(HeldOutput::Unnamed(file))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        use std::io::Write;
        match self {
            HeldOutput::File(temp) => temp.write(bytes),
            HeldOutput::Unnamed(file) => {
                file.write_all(bytes).map_err(|e| usage(format!("cannot write a temporary file: {e}")))
            }
        }
    }

    /// Everything written so far (for a check that needs the content itself).
    fn read_back(&mut self) -> Result<Vec<u8>, Failure> {
        use std::io::{Read, Seek};
        match self {
            HeldOutput::File(temp) => temp.read_back(),
            HeldOutput::Unnamed(file) => {
                let fail = |e: std::io::Error| usage(format!("cannot read a temporary file: {e}"));
                let mut out = Vec::new();
                file.rewind().map_err(fail)?;
                file.read_to_end(&mut out).map_err(fail)?;
                Ok(out)
            }
        }
    }

    fn commit(self) -> Result<(), Failure> {
        use std::io::{Seek, Write};
        match self {
            HeldOutput::File(temp) => temp.commit(&[]),
            HeldOutput::Unnamed(mut file) => {
                let fail = |e: std::io::Error| usage(format!("cannot write to stdout: {e}"));
                file.rewind().map_err(fail)?;
                let mut stdout = std::io::stdout().lock();
                std::io::copy(&mut file, &mut stdout).map_err(fail)?;
                stdout.flush().map_err(fail)
            }
        }
    }
}
