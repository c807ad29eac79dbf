//! `certdesk smime reencrypt` (issue 15 item 4): an archive of encrypted mail made
//! readable with another key. Each message encrypted to a key of the keyring is
//! decrypted with whichever historic key it names and encrypted again to the given
//! certificates; its header fields (From, To, Subject, Date, Message-ID, Received, ...)
//! stay as they were, only the Content-* fields of the encrypted body are made anew.
//! Everything else (plain mail, signed-only mail, mail for which the keyring has no key,
//! damaged mail) is copied byte for byte, so no message is ever lost, and counted.
//!
//! The output is always a new mailbox, never the input changed in place: an mbox is
//! written to a temporary file renamed into place at the end, a Maildir into a
//! temporary directory renamed at the end, so a run that fails or is killed leaves no
//! half-written mailbox under the name given.
//!
//! mbox: messages start at lines beginning with `From ` (mboxo/mboxrd); each message's
//! `From ` line, and the line ends it used, are kept. The `>From ` quoting of bodies is
//! left as it is (an encrypted body is base64 and has none). Maildir: the files of `cur`
//! and `new` (names, and so flags, kept), `tmp` is skipped.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use certdesk_smime::envelope;
use certdesk_smime::mime::{self, SmimeBody};
use clap::Args;

use crate::identity::read_certs;
use crate::keyring_cmd::{Keyring, KeyringArgs};
use crate::{usage, Failure};

/// `smime reencrypt` arguments.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["mbox", "maildir", "input"])))]
pub struct ReencryptArgs {
    #[command(flatten)]
    keyring: KeyringArgs,
    /// Certificate(s) to encrypt to (PEM or DER file; repeat for several).
    #[arg(long, required = true, num_args = 1..)]
    to: Vec<PathBuf>,
    /// An mbox file to read.
    #[arg(long)]
    mbox: Option<PathBuf>,
    /// A Maildir to read (its cur and new).
    #[arg(long)]
    maildir: Option<PathBuf>,
    /// One message to read.
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// The new mailbox (an mbox file, a Maildir directory or a message file, as the
    /// input); it must not exist.
    #[arg(long)]
    out: PathBuf,
    /// Content encryption of the new messages.
    #[arg(long, value_enum, default_value_t = crate::smime_cmd::Cipher::Aes256Cbc)]
    cipher: crate::smime_cmd::Cipher,
    /// RSA-OAEP key transport for RSA recipients (default: PKCS#1 v1.5, which every
    /// client reads).
    #[arg(long)]
    oaep: bool,
}

/// What became of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Reencrypted,
    NotEncrypted,
    /// Encrypted, then signed around the encryption: a new encryption would break the
    /// signature, so it is copied as it is.
    SignedOutside,
    NoKey,
    Damaged,
}

/// The counts of a run, and the messages that could not be re-encrypted.
#[derive(Default)]
struct Summary {
    reencrypted: usize,
    not_encrypted: usize,
    signed_outside: usize,
    no_key: usize,
    damaged: usize,
    problems: Vec<String>,
}

impl Summary {
    fn count(&mut self, outcome: Outcome, which: &str, why: Option<String>) {
        match outcome {
            Outcome::Reencrypted => self.reencrypted += 1,
            Outcome::NotEncrypted => self.not_encrypted += 1,
            Outcome::SignedOutside => self.signed_outside += 1,
            Outcome::NoKey => self.no_key += 1,
            Outcome::Damaged => self.damaged += 1,
        }
        if let Some(why) = why {
            self.problems.push(format!("{which}: {why}"));
        }
    }

    fn total(&self) -> usize {
        self.reencrypted + self.not_encrypted + self.signed_outside + self.no_key + self.damaged
    }
}

/// A message made anew, or what stays as it is and why.
type Made = Result<Vec<u8>, (Outcome, Option<String>)>;

/// The keys of the keyring, decrypted when a message first names them (each costs a
/// passphrase derivation), and what to encrypt to.
struct Keys {
    keyring: Keyring,
    entries: Vec<(certdesk_smime::keyring::EntryInfo, bool, PathBuf)>,
    /// Which entries are loaded, and their keys (shared by the workers).
    loaded: std::sync::RwLock<(Vec<usize>, Vec<envelope::RecipientKey>)>,
    to: Vec<Vec<u8>>,
    options: envelope::EncryptOptions,
    smime_type: &'static str,
    rng: aws_lc_rs::rand::SystemRandom,
}

impl Keys {
    /// Loads the keyring keys a message names (on first use); whether there is one.
    fn load_recipients(&self, wanted: &[envelope::RecipientId]) -> Result<bool, Failure> {
        let mut any = false;
        let poisoned = || usage("a worker failed while loading a key");
        for (i, (info, _, key_file)) in self.entries.iter().enumerate() {
            if !info.named_by(wanted) {
                continue;
            }
            any = true;
            if self.loaded.read().map_err(|_| poisoned())?.0.contains(&i) {
                continue;
            }
            let mut loaded = self.loaded.write().map_err(|_| poisoned())?;
            if !loaded.0.contains(&i) {
                let key = self.keyring.private_key(key_file)?;
                let cert = self.keyring.certificate(info)?;
                loaded.1.push(envelope::RecipientKey::new(&key, &cert).map_err(|e| usage(e.to_string()))?);
                loaded.0.push(i);
            }
        }
        Ok(any)
    }

    /// The message made anew, or why it stays as it is.
    fn reencrypt(&self, message: &[u8]) -> Result<Made, Failure> {
        let signed_outside = || {
            Ok(Err((
                Outcome::SignedOutside,
                Some("encrypted, then signed around the encryption: copied as it is".to_string()),
            )))
        };
        let cms = match mime::parse(message) {
            Ok(SmimeBody::Opaque { cms, smime_type }) => {
                let kind = smime_type.unwrap_or_default().to_ascii_lowercase();
                if kind == "signed-data" || kind == "certs-only" {
                    return match signed_content(&cms) {
                        Some(content) if wraps_encryption(&content) => signed_outside(),
                        _ => Ok(Err((Outcome::NotEncrypted, None))),
                    };
                }
                cms
            }
            // Signed only, or encrypted and then signed around it.
            Ok(SmimeBody::MultipartSigned(parts)) => {
                if wraps_encryption(&parts.signed) {
                    return signed_outside();
                }
                return Ok(Err((Outcome::NotEncrypted, None)));
            }
            // Mail that does not even say it is encrypted (plain mail with odd header
            // lines, a broken signed-only message) is not counted as damaged.
            Err(e) if declares_encryption(message) => return Ok(Err((Outcome::Damaged, Some(e.to_string())))),
            Err(_) => return Ok(Err((Outcome::NotEncrypted, None))),
        };
        let wanted = match envelope::recipients(&cms) {
            Ok(wanted) => wanted,
            // application/pkcs7-mime without smime-type holding SignedData.
            Err(envelope::EnvelopeError::NotEnvelopedData { .. }) => {
                return match signed_content(&cms) {
                    Some(content) if wraps_encryption(&content) => signed_outside(),
                    _ => Ok(Err((Outcome::NotEncrypted, None))),
                };
            }
            Err(e) => return Ok(Err((Outcome::Damaged, Some(e.to_string())))),
        };
        if !self.load_recipients(&wanted)? {
            return Ok(Err((Outcome::NoKey, Some("no key in the keyring matches a recipient".to_string()))));
        }
        let decrypted = {
            let loaded = self.loaded.read().map_err(|_| usage("a worker failed while loading a key"))?;
            envelope::decrypt(&cms, &loaded.1)
        };
        let content = match decrypted {
            Ok(content) => zeroize::Zeroizing::new(content),
            Err(e) => return Ok(Err((Outcome::Damaged, Some(e.to_string())))),
        };
        let new_cms =
            envelope::encrypt(&content, &self.to, &self.options, &self.rng).map_err(|e| usage(e.to_string()))?;
        let (outer, _) = mime::split_for_signing(message).map_err(|e| usage(e.to_string()))?;
        let mut made = mime::build_opaque(&outer, &new_cms, self.smime_type);
        // The line ends the message had (mbox and Maildir files usually have LF).
        if !message.contains(&b'\r') {
            made.retain(|b| *b != b'\r');
        }
        Ok(Ok(made))
    }
}

/// The content of an opaque SignedData (the signature is not judged: `smime verify`
/// does that), when it parses.
fn signed_content(cms: &[u8]) -> Option<Vec<u8>> {
    certdesk_smime::signed_data::verify(cms, None, &[]).ok().map(|verified| verified.content)
}

/// The signed content is an encrypted message (MIME or a bare CMS object).
fn wraps_encryption(content: &[u8]) -> bool {
    match mime::parse(content) {
        Ok(SmimeBody::Opaque { cms, .. }) => envelope::recipients(&cms).is_ok(),
        _ => content.first() == Some(&0x30) && envelope::recipients(content).is_ok(),
    }
}

/// The header block names an application/pkcs7-mime body.
fn declares_encryption(message: &[u8]) -> bool {
    let head_end = memchr::memmem::find(message, b"\n\n")
        .or_else(|| memchr::memmem::find(message, b"\r\n\r\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(message.get(..head_end).unwrap_or_default()).to_ascii_lowercase();
    head.contains("pkcs7-mime")
}

/// Runs `smime reencrypt`.
pub fn run(args: ReencryptArgs) -> Result<(), Failure> {
    let source = [&args.mbox, &args.maildir, &args.input].into_iter().flatten().next().cloned();
    let source = source.ok_or_else(|| usage("give --mbox, --maildir or --in"))?;
    if args.out.exists() || args.out.symlink_metadata().is_ok() {
        return Err(usage(format!(
            "{} exists: reencrypt writes a new mailbox and never writes over one (the input stays as it is)",
            args.out.display()
        )));
    }
    // The new mailbox must not go into the input (a Maildir's cur, say).
    if let (Ok(input), Some(parent), Some(name)) = (source.canonicalize(), args.out.parent(), args.out.file_name()) {
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if parent.canonicalize().is_ok_and(|p| p.join(name).starts_with(&input)) {
            return Err(usage(format!(
                "{} lies inside the input {}: write the new mailbox elsewhere",
                args.out.display(),
                source.display()
            )));
        }
    }
    let mut to = Vec::new();
    for path in &args.to {
        to.extend(read_certs(path)?);
    }
    let cipher = match args.cipher {
        crate::smime_cmd::Cipher::Aes256Cbc => envelope::ContentCipher::Aes256Cbc,
        crate::smime_cmd::Cipher::Aes128Cbc => envelope::ContentCipher::Aes128Cbc,
        crate::smime_cmd::Cipher::Aes256Gcm => envelope::ContentCipher::Aes256Gcm,
    };
    let smime_type = if cipher == envelope::ContentCipher::Aes256Gcm { "authEnveloped-data" } else { "enveloped-data" };
    let options = envelope::EncryptOptions { cipher, oaep: args.oaep };
    // The certificates must take encryption before anything is read.
    envelope::encrypt(b"check", &to, &options, &aws_lc_rs::rand::SystemRandom::new())
        .map_err(|e| usage(format!("--to: {e}")))?;
    let keyring = Keyring::locate(&args.keyring)?;
    let entries = keyring.entries()?;
    let keys = Keys {
        keyring,
        entries,
        loaded: std::sync::RwLock::new((Vec::new(), Vec::new())),
        to,
        options,
        smime_type,
        rng: aws_lc_rs::rand::SystemRandom::new(),
    };
    let mut summary = Summary::default();
    if let Some(mbox) = &args.mbox {
        reencrypt_mbox(mbox, &args.out, &keys, &mut summary)?;
    } else if let Some(maildir) = &args.maildir {
        reencrypt_maildir(maildir, &args.out, &keys, &mut summary)?;
    } else {
        let message = crate::read_file(&source, "message")?;
        let mut out = crate::TempOutput::create(&args.out)?;
        let made = count(keys.reencrypt(&message)?, "the message", &mut summary);
        out.write(made.as_deref().unwrap_or(&message))?;
        out.commit_durable(&[], false)?;
    }
    eprintln!(
        "certdesk: {} messages: {} re-encrypted, {} not encrypted, {} no key, {} damaged{}; written to {}",
        summary.total(),
        summary.reencrypted,
        summary.not_encrypted,
        summary.no_key,
        summary.damaged,
        if summary.signed_outside > 0 {
            format!(", {} signed around the encryption (copied as they are)", summary.signed_outside)
        } else {
            String::new()
        },
        args.out.display()
    );
    for problem in &summary.problems {
        eprintln!("certdesk:   {problem}");
    }
    if summary.no_key + summary.damaged + summary.signed_outside > 0 {
        return Err(Failure {
            error: None,
            code: 1,
            message: "some encrypted messages could not be re-encrypted and were copied as they are (listed \
                      above): keep the old keys for them"
                .into(),
        });
    }
    Ok(())
}

/// What became of one message, counted: the new bytes, or `None` to copy it as it is.
fn count(made: Made, which: &str, summary: &mut Summary) -> Option<Vec<u8>> {
    match made {
        Ok(made) => {
            summary.count(Outcome::Reencrypted, which, None);
            Some(made)
        }
        Err((outcome, why)) => {
            summary.count(outcome, which, why);
            None
        }
    }
}

/// Messages at a time: read, made anew on every core, written in order.
const BATCH: usize = 64;

/// Each message made anew (or not), in order, on every core (a private-key operation
/// per message is the cost).
fn reencrypt_all(keys: &Keys, messages: &[&[u8]]) -> Result<Vec<Made>, Failure> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8).min(messages.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Made, Failure>>>> =
        messages.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (Some(message), Some(slot)) = (messages.get(i), results.get(i)) else { break };
                let made = keys.reencrypt(message);
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(made);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| Err(usage("a worker stopped before its message")))
        })
        .collect()
}

/// A progress bar on stderr when it is a terminal (hidden otherwise).
fn progress(length: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(length), indicatif::ProgressDrawTarget::stderr());
    let template = format!("{{bar:40}} {{{unit}}}/{{total_{unit}}} {{per_sec}} eta {{eta}}");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// The Message-ID of a message (for the list of problems), else its position.
fn name_of(message: &[u8], position: usize) -> String {
    let head_end = memchr::memmem::find(message, b"\n\n")
        .or_else(|| memchr::memmem::find(message, b"\r\n\r\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(message.get(..head_end).unwrap_or_default());
    let id = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("Message-ID").then(|| value.trim().to_string())
    });
    match id {
        Some(id) if !id.is_empty() => format!("message {position} {id}"),
        _ => format!("message {position}"),
    }
}

fn reencrypt_mbox(path: &Path, out: &Path, keys: &Keys, summary: &mut Summary) -> Result<(), Failure> {
    let file = std::fs::File::open(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut output = crate::TempOutput::create(out)?;
    let bar = progress(size, "bytes");
    let read_failed = |e: std::io::Error| usage(format!("cannot read {}: {e}", path.display()));
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line).map_err(read_failed)? == 0 {
        return Err(usage(format!("{} is empty: no mbox", path.display())));
    }
    if !line.starts_with(b"From ") {
        return Err(usage(format!("{} is not an mbox: it does not start with a \"From \" line", path.display())));
    }
    let mut position = 0;
    let mut done_bytes = 0u64;
    let mut at_end = false;
    while !at_end {
        // A batch of messages: (From line, message with its trailing blank line, the
        // length of that trailer, the last of the mbox).
        let mut batch: Vec<(Vec<u8>, Vec<u8>, usize, bool)> = Vec::with_capacity(BATCH);
        while batch.len() < BATCH && !at_end {
            // `line` is this message's From line; read the message up to the next one.
            let from_line = std::mem::take(&mut line);
            let mut message = Vec::new();
            at_end = loop {
                if reader.read_until(b'\n', &mut line).map_err(read_failed)? == 0 {
                    break true;
                }
                if line.starts_with(b"From ") {
                    break false;
                }
                message.append(&mut line);
            };
            // The blank line that separates messages belongs to the mbox, not the message.
            let trailer_len = if message.ends_with(b"\r\n\r\n") {
                2
            } else if message.ends_with(b"\n\n") {
                1
            } else {
                0
            };
            batch.push((from_line, message, trailer_len, at_end));
        }
        let bodies: Vec<&[u8]> = batch
            .iter()
            .map(|(_, message, trailer_len, _)| message.get(..message.len() - trailer_len).unwrap_or_default())
            .collect();
        let made_all = reencrypt_all(keys, &bodies)?;
        for ((from_line, message, trailer_len, last), made) in batch.iter().zip(made_all) {
            position += 1;
            done_bytes += (from_line.len() + message.len()) as u64;
            let body = message.get(..message.len() - trailer_len).unwrap_or_default();
            let which = name_of(body, position);
            let mut chunk = from_line.clone();
            match count(made, &which, summary) {
                Some(made) => {
                    chunk.extend_from_slice(&made);
                    let newline: &[u8] = if body.ends_with(b"\r\n") { b"\r\n" } else { b"\n" };
                    if !chunk.ends_with(b"\n") {
                        chunk.extend_from_slice(newline);
                    }
                    chunk.extend_from_slice(message.get(message.len() - trailer_len..).unwrap_or_default());
                    if *trailer_len == 0 && !last {
                        chunk.extend_from_slice(newline);
                    }
                }
                None => chunk.extend_from_slice(message),
            }
            output.write(&chunk)?;
        }
        bar.set_position(done_bytes);
    }
    bar.finish_and_clear();
    // Synced, and never over a file that appeared under the name meanwhile.
    output.commit_durable(&[], false)
}

fn reencrypt_maildir(path: &Path, out: &Path, keys: &Keys, summary: &mut Summary) -> Result<(), Failure> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let dir = path.join(sub);
        let listing = std::fs::read_dir(&dir)
            .map_err(|e| usage(format!("{} is not a Maildir (no readable {sub} directory: {e})", path.display())))?;
        for entry in listing {
            let entry = entry.map_err(|e| usage(format!("cannot read {}: {e}", dir.display())))?;
            // A message may be a symbolic link: what it points to counts.
            if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                files.push((sub, entry.file_name()));
            }
        }
    }
    files.sort();
    // The Maildir's own files (dovecot-keywords gives the flag letters of file names
    // their meaning) are copied; Maildir++ folders (.Sent, ...) are each a Maildir of
    // their own and are named, not entered.
    let mut extras = Vec::new();
    let mut folders = Vec::new();
    let listing = std::fs::read_dir(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    for entry in listing {
        let entry = entry.map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        let name = entry.file_name();
        let meta = std::fs::metadata(entry.path());
        if meta.as_ref().is_ok_and(|m| m.is_file()) {
            extras.push(name);
        } else if meta.is_ok_and(|m| m.is_dir()) && name.to_string_lossy().starts_with('.') {
            folders.push(name.to_string_lossy().into_owned());
        }
    }
    folders.sort();
    // Written into a private directory beside the destination, renamed into place at
    // the end; a run that fails removes it, one that was killed leaves it to be removed
    // by the next run.
    let name = out.file_name().ok_or_else(|| usage(format!("{} is not a directory name", out.display())))?;
    let prefix = format!(".{}.partial-", name.to_string_lossy());
    remove_stale_staging(out, &prefix);
    let staging = out.with_file_name(format!("{prefix}{}", std::process::id()));
    let result = (|| {
        std::fs::create_dir(&staging).map_err(|e| usage(format!("cannot create {}: {e}", staging.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| usage(format!("cannot create {}: {e}", staging.display())))?;
        }
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir(staging.join(sub))
                .map_err(|e| usage(format!("cannot create {}: {e}", staging.display())))?;
        }
        for extra in &extras {
            let (from, to) = (path.join(extra), staging.join(extra));
            std::fs::copy(&from, &to).map_err(|e| usage(format!("cannot copy {}: {e}", from.display())))?;
        }
        let bar = progress(files.len() as u64, "pos");
        for (batch_start, batch) in files.chunks(BATCH).enumerate().map(|(i, b)| (i * BATCH, b)) {
            let mut messages = Vec::with_capacity(batch.len());
            for (sub, file_name) in batch {
                let source = path.join(sub).join(file_name);
                let mut message = Vec::new();
                std::fs::File::open(&source)
                    .and_then(|mut f| f.read_to_end(&mut message))
                    .map_err(|e| usage(format!("cannot read {}: {e}", source.display())))?;
                messages.push(message);
            }
            let bodies: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let made_all = reencrypt_all(keys, &bodies)?;
            for (offset, (((sub, file_name), message), made)) in batch.iter().zip(&messages).zip(made_all).enumerate() {
                let which = format!("{sub}/{}", file_name.to_string_lossy());
                let which = match name_of(message, batch_start + offset + 1) {
                    id if id.contains('<') => format!("{which} {}", id.split_once(' ').map_or("", |x| x.1)),
                    _ => which,
                };
                let made = count(made, &which, summary);
                write_new(&staging.join(sub).join(file_name), made.as_deref().unwrap_or(message))?;
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        if out.symlink_metadata().is_ok() {
            return Err(usage(format!("{} appeared meanwhile; it was left as it is", out.display())));
        }
        std::fs::rename(&staging, out).map_err(|e| usage(format!("cannot write {}: {e}", out.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if !folders.is_empty() {
        eprintln!(
            "certdesk: the Maildir++ folders {} of {} are Maildirs of their own and were not included: run \
             reencrypt on each",
            folders.join(", "),
            path.display()
        );
    }
    result
}

/// A new file (0600) with `bytes`, in the private staging directory.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

/// Removes staging directories of earlier runs that were killed (their process is gone).
fn remove_stale_staging(out: &Path, prefix: &str) {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Without /proc a live run cannot be told from a dead one: nothing is removed.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(listing) = std::fs::read_dir(&parent) else { return };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
