//! `certdesk escrow init | show | check-shares` (issue 15, docs/design/key-escrow.md):
//! the escrow key whose shares the key recovery agents hold.

use std::path::{Path, PathBuf};

use certdesk_ca::escrow::share::{EscrowShare, ShareError, ShareRecord};
use certdesk_core::audit::{seal, AuditEvent};
use certdesk_smime::{envelope, mime};
use certdesk_store::{EscrowAgentRecord, EscrowKeyRecord};
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
    /// The escrow keys, newest first, with their agents.
    Show,
    /// A drill: check that shares put the escrow key together (the key is never shown or
    /// written; an audit record says the check happened).
    CheckShares {
        /// Share files (the PEM block `CERTDESK ESCROW SHARE`, e.g. the decrypted message).
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
        EscrowCommand::CheckShares { shares } => check_shares(data, &shares).await,
    }
}

/// `out` is a new or empty directory, made private.
fn prepare_out(out: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(usage(format!(
                    "{} is not empty: give a new or empty directory for the agents' messages",
                    out.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(|e| usage(format!("cannot create {}: {e}", out.display())))?;
        }
        Err(e) => return Err(usage(format!("{} is not a directory to write to: {e}", out.display()))),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| usage(format!("cannot write {}: {e}", out.display())))?;
    }
    Ok(())
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
        let staff = store.user(agent).await?.filter(|u| u.disabled_at.is_none() && u.role != "applicant");
        if staff.is_none() {
            return Err(usage(format!(
                "{agent} is not an officer or administrator of this certdesk: key recovery agents are staff \
                 (certdesk user add --email {agent} --role officer)"
            )));
        }
        let current = store
            .certificates_of(agent)
            .await?
            .into_iter()
            .find(|c| c.revoked_at.is_none() && c.not_after > unix && !c.key_kind.eq_ignore_ascii_case("Ed25519"));
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
        other => usage(other.to_string()),
    })?;
    let key_id = hex::encode(made.key_id);
    // The messages first (synced): a crash before the record leaves shares of a key that
    // certdesk does not know, which it refuses; nothing was escrowed to it.
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let options = envelope::EncryptOptions { cipher: envelope::ContentCipher::Aes256Cbc, oaep: false };
    let mut written = Vec::with_capacity(total);
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
        let path = out.join(format!("share-{}-{}.eml", share.index, share.agent));
        crate::TempOutput::create(&path)?.commit_durable(&message, false)?;
        written.push(path);
    }
    let cert_pem = crate::pem("CERTIFICATE", &made.certificate)?;
    crate::TempOutput::create_public(&out.join("escrow-certificate.pem"))?
        .commit_durable(cert_pem.as_bytes(), false)?;
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
    println!("{key_id}");
    eprintln!(
        "certdesk: escrow key {} made; its private key is split into {total} shares, {threshold} needed, and gone",
        key_id.get(..16).unwrap_or(&key_id)
    );
    for (path, share) in written.iter().zip(&made.shares) {
        eprintln!("certdesk:   {} for {} (encrypted to their certificate)", path.display(), share.agent);
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
    Ok(())
}

async fn check_shares(data: &Path, files: &[PathBuf]) -> Result<(), Failure> {
    let mut shares = Vec::with_capacity(files.len());
    for file in files {
        let bytes = zeroize::Zeroizing::new(crate::read_file(file, "share")?);
        let share = EscrowShare::parse(&bytes).map_err(|e| usage(format!("{}: {e}", file.display())))?;
        shares.push(share);
    }
    let authority = open(data).await?;
    refuse_read_only(&authority)?;
    let store = authority.store();
    let Some(first) = shares.first() else { return Err(usage("give the share files")) };
    let key_id = hex::encode(first.key_id);
    let Some(key) = store.escrow_keys().await?.into_iter().find(|k| k.key_id == key_id) else {
        return Err(refused(format!(
            "these shares belong to escrow key {}, which this certdesk does not know",
            key_id.get(..16).unwrap_or(&key_id)
        )));
    };
    let mut records = Vec::new();
    for agent in store.escrow_agents(&key.key_id).await? {
        let mut commitment = [0u8; 32];
        hex::decode_to_slice(&agent.commitment, &mut commitment)
            .map_err(|_| usage(format!("the stored commitment of agent {} is damaged", agent.index)))?;
        records.push(ShareRecord { index: agent.index, agent: agent.email, commitment });
    }
    let outcome = certdesk_ca::escrow::recover_key(&key.certificate, &shares, &records);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let event = AuditEvent {
        actor: actor(),
        action: "escrow.check",
        subject: key.key_id.clone(),
        details: json!({
            "agents": shares.iter().map(|s| s.index).collect::<Vec<_>>(),
            "outcome": match &outcome { Ok(_) => "the shares put the key together".to_string(), Err(e) => e.to_string() },
        }),
    };
    store.append_audit(&|seq, prev| seal(&event, now, seq, prev)).await?;
    match outcome {
        Ok(_key) => {
            eprintln!(
                "certdesk: the {} shares put escrow key {} together (it matches its certificate); nothing was written",
                shares.len(),
                key.key_id.get(..16).unwrap_or(&key.key_id)
            );
            Ok(())
        }
        Err(certdesk_ca::escrow::EscrowError::Share(e)) => Err(refused(e.to_string())),
        Err(e) => Err(refused(e.to_string())),
    }
}
