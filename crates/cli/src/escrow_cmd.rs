//! `certdesk escrow init | show | profile | check-shares` (issue 15, docs/design/key-escrow.md):
//! the escrow key whose shares the key recovery agents hold.

use std::path::{Path, PathBuf};

use certdesk_ca::escrow::share::{EscrowShare, ShareError};
use certdesk_core::audit::{seal, AuditEvent};
use certdesk_smime::{envelope, mime};
use certdesk_store::{EscrowAgentRecord, EscrowKeyRecord, EscrowMode};
use clap::Subcommand;
use serde_json::json;

use crate::{actor, open, refuse_read_only, refused, usage, Failure};

/// Escrow commands.
#[derive(Subcommand)]
pub enum EscrowCommand {
    /// Make an escrow key and split its private key into one share per key recovery
    /// agent, THRESHOLD of which are needed to recover an escrowed key; each share is
    /// written as an S/MIME message encrypted to its agent's current certificate (send
    /// each file to its agent), then the private key is gone. A newer escrow key retires
    /// the one before for new certificates (recoveries of older ones keep using theirs).
    Init {
        /// The agents' addresses, comma-separated: officers or administrators of this
        /// certdesk, each with a current certificate that can encrypt.
        #[arg(long, value_delimiter = ',', required = true)]
        agents: Vec<String>,
        /// Shares needed to recover (2 <= threshold <= agents <= 16).
        #[arg(long)]
        threshold: usize,
        /// A new (or empty) directory for the agents' messages and the escrow certificate.
        #[arg(long)]
        out: PathBuf,
    },
    /// The escrow keys, newest first, with their agents, and the profiles that escrow.
    Show,
    /// Whether a profile escrows the keys the desk makes for it (`on`), makes two keys
    /// of which only the encryption one is escrowed and the signing one never
    /// (`separate`), or neither (`off`, the default). Applicants are told before they
    /// choose how their key is made; keys of their own (a CSR) are never escrowed. `on`
    /// and `separate` need an escrow key in use.
    Profile {
        /// The profile (sponsor-strict, sponsor-multipurpose, mailbox-strict,
        /// mailbox-multipurpose, private).
        profile: String,
        /// `on`, `separate` or `off`.
        mode: String,
    },
    /// A drill: check that each share is the one handed out (against the commitment kept
    /// at init), one by one: no share is combined with another and nothing is written but
    /// an audit record per share. Read a share from the decrypted message on stdin (`-`)
    /// rather than saving it in clear.
    CheckShares {
        /// Share files or `-` (the PEM block `CERTDESK ESCROW SHARE`, e.g. the decrypted
        /// message).
        #[arg(required = true, num_args = 1..)]
        shares: Vec<PathBuf>,
    },
}

fn share_failure(e: ShareError) -> Failure {
    match e {
        ShareError::BadThreshold { .. } | ShareError::DuplicateAgent { .. } | ShareError::NotAShare { .. } => {
            usage(e.to_string())
        }
        other => refused(other.to_string()),
    }
}

/// Runs an escrow command on the data directory `data`.
pub async fn run(data: &Path, command: EscrowCommand) -> Result<(), Failure> {
    match command {
        EscrowCommand::Init { agents, threshold, out } => init(data, agents, threshold, &out).await,
        EscrowCommand::Show => show(data).await,
        EscrowCommand::Profile { profile, mode } => set_profile(data, &profile, &mode).await,
        EscrowCommand::CheckShares { shares } => check_shares(data, &shares).await,
    }
}

/// `out` is a new directory (made private and durable) or an empty one; never a
/// symbolic link.
fn prepare_out(out: &Path) -> Result<(), Failure> {
    match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(usage(format!("{} is a symbolic link: give a directory", out.display())));
        }
        Ok(meta) if !meta.is_dir() => return Err(usage(format!("{} is not a directory", out.display()))),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(out).map_err(|e| usage(format!("cannot read {}: {e}", out.display())))?;
            if entries.next().is_some() {
                return Err(usage(format!(
                    "{} is not empty: give a new or empty directory for the agents' messages",
                    out.display()
                )));
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| usage(format!("cannot write {}: {e}", out.display())))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(out).map_err(|e| usage(format!("cannot create {}: {e}", out.display())))?;
            // The new directory's name, durable before anything is recorded.
            let parent = match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if let Ok(dir) = std::fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        Err(e) => return Err(usage(format!("{} is not a directory to write to: {e}", out.display()))),
    }
    Ok(())
}

/// The agents' messages written so far, removed unless the escrow key was recorded (a
/// message of a key certdesk does not know must not be sent).
struct Written(Vec<PathBuf>);

impl Drop for Written {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn init(data: &Path, agents: Vec<String>, threshold: usize, out: &Path) -> Result<(), Failure> {
    let agents: Vec<String> = agents.iter().map(|a| a.trim().to_ascii_lowercase()).filter(|a| !a.is_empty()).collect();
    let total = agents.len();
    if threshold < 2 || threshold > total || total > certdesk_ca::escrow::share::MAX_AGENTS {
        return Err(share_failure(ShareError::BadThreshold { threshold, total }));
    }
    let authority = open(data).await?;
    refuse_read_only(&authority)?;
    let store = authority.store();
    let now = time::OffsetDateTime::now_utc();
    let unix = now.unix_timestamp();
    // Each agent: staff, with a current certificate that can encrypt (the newest).
    let mut certificates = Vec::with_capacity(total);
    for agent in &agents {
        let staff =
            store.user(agent).await?.filter(|u| u.disabled_at.is_none() && (u.role == "officer" || u.role == "admin"));
        if staff.is_none() {
            return Err(usage(format!(
                "{agent} is not an officer or administrator of this certdesk: key recovery agents are staff \
                 (certdesk user add --email {agent} --role officer)"
            )));
        }
        // The newest that is valid now, not revoked, and whose key usage allows
        // encryption (the directory's rule).
        let current =
            store.certificates_of(agent).await?.into_iter().find(|c| certdesk_desk::directory::listable(c, unix));
        let Some(current) = current else {
            return Err(usage(format!(
                "{agent} has no current certificate that can encrypt: the share is sent encrypted to it; issue one first"
            )));
        };
        certificates.push(current);
    }
    prepare_out(out)?;
    let organization = authority.config().raw.ca.organization.clone();
    let made = certdesk_ca::escrow::create(&organization, threshold, &agents, now).map_err(|e| match e {
        certdesk_ca::escrow::EscrowError::Share(e) => share_failure(e),
        other => Failure { error: None, code: 2, message: format!("the escrow key could not be made: {other}") },
    })?;
    let key_id = hex::encode(made.key_id);
    // The messages first (synced): a crash before the record leaves shares of a key that
    // certdesk does not know, which it refuses; nothing was escrowed to it.
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let options = envelope::EncryptOptions { cipher: envelope::ContentCipher::Aes256Cbc, oaep: false };
    let mut written = Written(Vec::with_capacity(total + 1));
    for (share, certificate) in made.shares.iter().zip(&certificates) {
        let pem = share.to_pem().map_err(share_failure)?;
        let text = zeroize::Zeroizing::new(format!(
            "To: {agent}\r\nSubject: Your share of the certdesk key escrow ({threshold} of {total} needed)\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             You are key recovery agent {index} of {total} for the escrow key {short} of {organization}.\r\n\
             When a recovery is asked for, {threshold} agents give their shares; keep this message\r\n\
             (it stays encrypted to your certificate) and never forward the share in clear.\r\n\r\n{pem}",
            agent = share.agent,
            index = share.index,
            short = key_id.get(..16).unwrap_or(&key_id),
            pem = pem.as_str(),
        ));
        let (outer, inner) = mime::split_for_signing(text.as_bytes()).map_err(|e| usage(e.to_string()))?;
        let inner = zeroize::Zeroizing::new(inner);
        let cms = envelope::encrypt(&inner, std::slice::from_ref(&certificate.der), &options, &rng)
            .map_err(|e| usage(format!("encrypting to {}'s certificate {}: {e}", share.agent, certificate.serial)))?;
        let message = mime::build_opaque(&outer, &cms, "enveloped-data");
        let path = out.join(format!("share-{}.eml", share.index));
        crate::TempOutput::create(&path)?.commit_durable(&message, false)?;
        written.0.push(path);
    }
    let cert_pem = crate::pem("CERTIFICATE", &made.certificate)?;
    let cert_path = out.join("escrow-certificate.pem");
    crate::TempOutput::create_public(&cert_path)?.commit_durable(cert_pem.as_bytes(), false)?;
    written.0.push(cert_path);
    let previous = store.current_escrow_key().await?;
    let key = EscrowKeyRecord {
        key_id: key_id.clone(),
        certificate: made.certificate.clone(),
        threshold: made.shares.first().map_or(0, |s| s.threshold),
        total: made.shares.first().map_or(0, |s| s.total),
        created_at: unix,
        retired_at: None,
    };
    let records: Vec<EscrowAgentRecord> = made
        .records
        .iter()
        .zip(&certificates)
        .map(|(record, certificate)| EscrowAgentRecord {
            index: record.index,
            email: record.agent.clone(),
            agent_serial: certificate.serial.to_string(),
            commitment: hex::encode(record.commitment),
        })
        .collect();
    let event = AuditEvent {
        actor: actor(),
        action: "escrow.init",
        subject: key_id.clone(),
        details: json!({
            "threshold": threshold,
            "agents": records.iter().map(|a| json!({ "index": a.index, "email": a.email, "certificate": a.agent_serial })).collect::<Vec<_>>(),
            "retires": previous.as_ref().map(|p| p.key_id.clone()),
        }),
    };
    store.record_escrow_key(&key, &records, &|seq, prev| seal(&event, unix, seq, prev)).await?;
    // Recorded: the messages are the agents' now.
    let written = std::mem::take(&mut written.0);
    println!("{key_id}");
    eprintln!(
        "certdesk: escrow key {} made; its private key is split into {total} shares, {threshold} needed, and gone",
        key_id.get(..16).unwrap_or(&key_id)
    );
    for (path, share) in written.iter().zip(&made.shares) {
        eprintln!(
            "certdesk:   {} for agent {} {} (encrypted to their certificate)",
            path.display(),
            share.index,
            share.agent
        );
    }
    if let Some(previous) = previous {
        eprintln!(
            "certdesk: escrow key {} is retired for new certificates (its agents keep their shares for the keys \
             escrowed to it)",
            previous.key_id.get(..16).unwrap_or(&previous.key_id)
        );
    }
    Ok(())
}

async fn set_profile(data: &Path, profile: &str, mode: &str) -> Result<(), Failure> {
    let id = certdesk_pki::profile::ProfileId::parse(profile).map_err(|e| usage(e.to_string()))?;
    let mode = EscrowMode::parse(mode).map_err(|e| usage(e.to_string()))?;
    let authority = open(data).await?;
    refuse_read_only(&authority)?;
    let store = authority.store();
    let key = store.current_escrow_key().await?;
    if mode.escrows() && key.is_none() {
        return Err(refused(format!(
            "there is no escrow key to escrow the keys of {id} to: create one first with `certdesk escrow init`"
        )));
    }
    if store.escrow_mode(id.name()).await? == mode {
        eprintln!("certdesk: escrow is already {} for {id}", mode.name());
        return Ok(());
    }
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let event = AuditEvent {
        actor: actor(),
        action: "profile.escrow",
        subject: id.name().to_string(),
        details: json!({ "mode": mode.name(), "escrow_key": key.as_ref().map(|k| k.key_id.clone()) }),
    };
    store.set_profile_escrow(id.name(), mode, &actor(), at, &|seq, prev| seal(&event, at, seq, prev)).await?;
    match mode {
        EscrowMode::On => eprintln!(
            "certdesk: the keys certdesk makes for {id} certificates are escrowed from now on (applicants are told \
             before they choose; keys of their own are never escrowed)"
        ),
        EscrowMode::Separate => eprintln!(
            "certdesk: {id} certificates made with a key certdesk makes come as two from now on: one to sign \
             (its key never escrowed) and one to encrypt (its key escrowed); applicants are told before they \
             choose, and keys of their own are never escrowed"
        ),
        EscrowMode::Off => eprintln!(
            "certdesk: keys made for {id} certificates are no longer escrowed (the keys escrowed so far stay \
             recoverable)"
        ),
    }
    Ok(())
}

async fn show(data: &Path) -> Result<(), Failure> {
    let authority = open(data).await?;
    let store = authority.store();
    let keys = store.escrow_keys().await?;
    if keys.is_empty() {
        eprintln!("certdesk: no escrow key (certdesk escrow init)");
    }
    for key in keys {
        let state = match key.retired_at {
            None => "in use".to_string(),
            Some(at) => format!("retired {}", certdesk_core::clock::unix_text(at)),
        };
        println!(
            "{}  {} of {}  made {}  {state}",
            key.key_id,
            key.threshold,
            key.total,
            certdesk_core::clock::unix_text(key.created_at)
        );
        for agent in store.escrow_agents(&key.key_id).await? {
            println!(
                "  agent {}  {}  (share encrypted to certificate {})",
                agent.index, agent.email, agent.agent_serial
            );
        }
    }
    let escrowing: Vec<String> =
        store.profile_escrow().await?.into_iter().filter(|(_, m)| *m == EscrowMode::On).map(|(p, _)| p).collect();
    let kept = store.escrowed_keys().await?.len();
    if escrowing.is_empty() {
        println!("profiles that escrow: none (certdesk escrow profile PROFILE on)");
    } else {
        println!("profiles that escrow: {}", escrowing.join(", "));
    }
    println!("escrowed keys: {kept}");
    Ok(())
}

async fn check_shares(data: &Path, files: &[PathBuf]) -> Result<(), Failure> {
    let mut shares: Vec<EscrowShare> = Vec::with_capacity(files.len());
    for file in files {
        let bytes = zeroize::Zeroizing::new(crate::read_file(file, "share")?);
        let share = EscrowShare::parse(&bytes).map_err(|e| usage(format!("{}: {e}", file.display())))?;
        if shares.iter().any(|s| s.key_id == share.key_id && s.index == share.index) {
            return Err(usage(format!("{}: the share of agent {} is given twice", file.display(), share.index)));
        }
        shares.push(share);
    }
    let authority = open(data).await?;
    refuse_read_only(&authority)?;
    let store = authority.store();
    let keys = store.escrow_keys().await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut failed = 0;
    for share in &shares {
        let key_id = hex::encode(share.key_id);
        let outcome = match keys.iter().find(|k| k.key_id == key_id) {
            None => Err(format!(
                "the share of agent {} belongs to escrow key {}, which this certdesk does not know",
                share.index,
                key_id.get(..16).unwrap_or(&key_id)
            )),
            Some(key) => {
                let records = certdesk_ca::escrow::stored_share_records(store, &key.key_id).await?;
                certdesk_ca::escrow::share::check(share, &share.key_id, usize::from(key.threshold), &records)
                    .map_err(|e| e.to_string())
            }
        };
        let event = AuditEvent {
            actor: actor(),
            action: "escrow.check",
            subject: key_id.clone(),
            details: json!({
                "agent": share.index,
                "outcome": match &outcome { Ok(()) => "the share is the one handed out".to_string(), Err(e) => e.clone() },
            }),
        };
        store.append_audit(&|seq, prev| seal(&event, now, seq, prev)).await?;
        match outcome {
            Ok(()) => eprintln!(
                "certdesk: the share of agent {} ({}) is the one handed out for escrow key {}",
                share.index,
                share.agent,
                key_id.get(..16).unwrap_or(&key_id)
            ),
            Err(why) => {
                failed += 1;
                eprintln!("certdesk: {why}");
            }
        }
    }
    if failed > 0 {
        return Err(refused(format!("{failed} of {} share(s) are not the ones handed out", shares.len())));
    }
    Ok(())
}
